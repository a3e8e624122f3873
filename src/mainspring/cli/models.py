"""``mainspring models …``: the registry from the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.cli.versions import background_line, console, show_version
from mainspring.errors import InvalidInputError
from mainspring.records import Lineage, ModelRef, ModelVersion, Signature


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"{option} {item!r} must look like key=value", field=option)
        out[key] = value
    return out


def _version_ref(text: str) -> tuple[str, int]:
    ref = ModelRef.parse(text)
    if ref.version is None:
        raise InvalidInputError(f"{text!r} must name a version: NAME/VERSION", field="model")
    return ref.name, ref.version


@click.group()
def models() -> None:
    """Register, inspect, approve and promote model versions."""


@models.command()
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--flavor", help="Model format, when it cannot be recognised from the file.")
@click.option(
    "--signature",
    "signature_json",
    help='Input signature as JSON, or @file.json: {"inputs": [{"name": ..., "dtype": ...}]}',
)
@click.option("--metric", "metrics", multiple=True, metavar="K=V", help="A metric (repeatable).")
@click.option("--tag", "tags", multiple=True, metavar="K=V", help="A tag (repeatable).")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A parameter (repeatable).")
@click.option("--description", default="", help="What this version is.")
@click.option("--run-id", help="The training run that produced it.")
@click.option("--parent-version", type=int, help="The version it was derived from.")
@click.option("--trusted", is_flag=True, help="Accept a plain pickle (it can run code on load).")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A sample of the training data (Parquet or CSV): compute and store global importance "
    "and a background sample with the version.",
)
@pass_cli
def register(
    cli: Cli,
    name: str,
    file: Path,
    flavor: str | None,
    signature_json: str | None,
    metrics: tuple[str, ...],
    tags: tuple[str, ...],
    params: tuple[str, ...],
    description: str,
    run_id: str | None,
    parent_version: int | None,
    trusted: bool,
    data: Path | None,
) -> None:
    """Register FILE (a model file or an MLflow model directory) as a new version of NAME."""
    with handled():
        actor = cli.principal("register").name
        signature = None
        if signature_json:
            text = (
                Path(signature_json[1:]).read_text(encoding="utf-8")
                if signature_json.startswith("@")
                else signature_json
            )
            try:
                signature = Signature.from_dict(json.loads(text))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"--signature is not valid JSON: {exc}", field="signature"
                ) from None
        metric_values: dict[str, Any] = {}
        for key, value in _pairs(metrics, "--metric").items():
            try:
                metric_values[key] = float(value)
            except ValueError:
                raise InvalidInputError(
                    f"--metric {key}={value!r} is not a number", field=f"metrics.{key}"
                ) from None
        lineage = (
            Lineage(run_id=run_id, parent_version=parent_version)
            if run_id or parent_version
            else None
        )
        arguments: dict[str, Any] = {
            "actor": actor,
            "flavor": flavor,
            "signature": signature,
            "metrics": metric_values,
            "tags": _pairs(tags, "--tag"),
            "params": _pairs(params, "--param"),
            "lineage": lineage,
            "description": description,
            "trusted": trusted,
        }
        if data is None:
            version = cli.project.registry.register(name, file, **arguments)
        else:
            from mainspring.pipelines.importance import register_with_importance

            version = register_with_importance(
                cli.project.registry, name, file, data=data,
                progress=not cli.json_output, **arguments,
            )  # fmt: skip
        cli.emit(
            version.to_dict(),
            lambda: click.echo(
                f"registered {version.name}/{version.version} ({version.flavor}, "
                f"sha256:{version.digest[:12]}…)"
            ),
        )


@models.command("list")
@pass_cli
def list_models(cli: Cli) -> None:
    """List registered models."""
    with handled():
        cli.principal("read")
        found = cli.project.registry.list_models()

        def human() -> None:
            table = Table("model", "latest", "aliases", "created")
            for m in found:
                table.add_row(
                    m.name,
                    str(m.latest_version),
                    ", ".join(f"{a}→{v}" for a, v in m.aliases.items()) or "-",
                    f"{m.created_at:%Y-%m-%d %H:%M} by {m.created_by}",
                )
            console.print(table if found else "no models registered yet")

        cli.emit([m.to_dict() for m in found], human)


@models.command()
@click.argument("ref")
@pass_cli
def show(cli: Cli, ref: str) -> None:
    """Show a version: REF is NAME, NAME/VERSION or NAME@ALIAS."""
    with handled():
        cli.principal("read")
        version = cli.project.registry.get(ref)
        cli.emit(version.to_dict(), lambda: show_version(version))


@models.command()
@click.argument("ref")
@click.option(
    "--data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A sample of the training data (Parquet or CSV) to compute importance from.",
)
@click.option("--rows", type=click.IntRange(min=1), help="Rows to explain (default: 10,000 for "
              "tree models, 200 otherwise), sampled from the data.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the samples.")
@click.option("--trusted", is_flag=True, help="Allow loading a plain pickle.")
@pass_cli
def importance(
    cli: Cli, ref: str, data: Path | None, rows: int | None, seed: int, trusted: bool
) -> None:
    """Global importance of REF: compute and store it from --data, or show the stored one.

    Importance is the mean absolute SHAP value of each feature over a sample of the data (exact
    TreeSHAP for LightGBM and XGBoost, the model-agnostic explainer otherwise); a background sample
    of up to 100 rows is stored with it for explaining the decisions of non-tree models.
    """
    with handled():
        if data is None:
            cli.principal("read")
            version = cli.project.registry.get(ref)
        else:
            from mainspring.pipelines.importance import store_importance

            actor = cli.principal("register").name
            version = store_importance(
                cli.project.registry, ref, data, actor=actor, rows=rows, seed=seed,
                progress=not cli.json_output, trusted=trusted,
            )  # fmt: skip
        found = version.importance

        def human() -> None:
            if found is None:
                click.echo(
                    f"{version.ref} has no stored importance: compute it with "
                    f"`mainspring models importance {version.ref} --data FILE`"
                )
                return
            table = Table("feature", "mean |SHAP|")
            for name, value in found.values.items():
                table.add_row(name, f"{value:.6g}")
            console.print(table)
            click.echo(
                f"{version.ref}: {found.method} over {found.rows:,} rows; background "
                f"{background_line(version)}; by {found.computed_by} at "
                f"{found.computed_at:%Y-%m-%d %H:%M:%S} UTC"
            )

        cli.emit(found.to_dict() if found else None, human)


@models.command()
@click.argument("target", metavar="NAME@ALIAS")
@click.argument("version", type=int)
@click.option("--reason", default="", help="Why the alias moves.")
@pass_cli
def alias(cli: Cli, target: str, version: int, reason: str) -> None:
    """Point NAME@ALIAS at VERSION (champion needs an approved version)."""
    with handled():
        ref = ModelRef.parse(target)
        if ref.alias is None:
            raise InvalidInputError(f"{target!r} must look like NAME@ALIAS", field="alias")
        actor = cli.principal("alias").name
        moved = cli.project.registry.set_alias(
            ref.name, ref.alias, version, actor=actor, reason=reason
        )
        cli.emit(moved.to_dict(), lambda: click.echo(f"{target} → version {moved.version}"))


def _approval_command(operation: str, verb: str, needs_reason: bool) -> click.Command:
    @click.argument("ref", metavar="NAME/VERSION")
    @click.option(
        "--reason",
        required=needs_reason,
        default=None if needs_reason else "",
        help="Why." + (" Required." if needs_reason else ""),
    )
    @pass_cli
    def command(cli: Cli, ref: str, reason: str) -> None:
        with handled():
            name, number = _version_ref(ref)
            actor = cli.principal(operation).name
            method = getattr(cli.project.registry, operation.replace("-", "_"))
            version: ModelVersion = method(name, number, actor=actor, reason=reason)
            cli.emit(
                version.to_dict(),
                lambda: click.echo(
                    f"{name}/{number}: approval {version.approval.value} ({verb} by {actor})"
                ),
            )

    command.__doc__ = {
        "request-approval": "Ask for NAME/VERSION to be approved.",
        "approve": "Approve NAME/VERSION (not your own: four eyes).",
        "reject": "Reject NAME/VERSION, with a reason.",
    }[operation]
    return click.command(operation)(command)


models.add_command(_approval_command("request-approval", "requested", False))
models.add_command(_approval_command("approve", "approved", True))
models.add_command(_approval_command("reject", "rejected", True))


@models.command()
@click.argument("target", metavar="NAME@ALIAS")
@click.option("--reason", required=True, help="Why you roll back.")
@pass_cli
def rollback(cli: Cli, target: str, reason: str) -> None:
    """Move NAME@ALIAS back to the version it pointed at before."""
    with handled():
        ref = ModelRef.parse(target)
        if ref.alias is None:
            raise InvalidInputError(f"{target!r} must look like NAME@ALIAS", field="alias")
        actor = cli.principal("rollback").name
        version = cli.project.registry.rollback(ref.name, ref.alias, actor=actor, reason=reason)
        cli.emit(
            version.to_dict(),
            lambda: click.echo(f"{target} rolled back to version {version.version}"),
        )


@models.command()
@click.argument("name", required=False)
@pass_cli
def history(cli: Cli, name: str | None) -> None:
    """The registry history (all of it, or of model NAME)."""
    with handled():
        cli.principal("read")
        entries = cli.project.registry.history(name)

        def human() -> None:
            table = Table("#", "when (UTC)", "who", "what", "subject", "why")
            for e in entries:
                table.add_row(
                    str(e.seq),
                    f"{e.at:%Y-%m-%d %H:%M:%S}",
                    e.actor,
                    e.action,
                    e.subject,
                    e.reason or "-",
                )
            console.print(table)

        cli.emit([e.to_dict() for e in entries], human)


@models.command()
@pass_cli
def verify(cli: Cli) -> None:
    """Check the registry history's hash chain; names the first altered entry."""
    with handled():
        cli.principal("read")
        result = cli.project.registry.verify()
        cli.emit(
            {
                "ok": result.ok,
                "checked": result.checked,
                "first_bad_seq": result.first_bad_seq,
                "problem": result.problem,
            },
            lambda: click.echo(str(result)),
        )
        if not result.ok:
            raise SystemExit(6)


@models.command()
@click.argument("ref")
@click.argument("rows_json", metavar="ROWS")
@click.option("--trusted", is_flag=True, help="Allow loading a plain pickle.")
@pass_cli
def predict(cli: Cli, ref: str, rows_json: str, trusted: bool) -> None:
    """Load REF and score ROWS: a JSON object of feature values, or a list of them."""
    with handled():
        cli.principal("read")
        try:
            rows = json.loads(rows_json)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"ROWS is not valid JSON: {exc}", field="rows") from None
        records = [rows] if isinstance(rows, dict) else rows
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInputError("ROWS must be an object or a list of objects", field="rows")
        loaded = cli.project.registry.load(ref, trusted=trusted)
        columns = {n: [r.get(n, math.nan) for r in records] for n in loaded.signature.input_names}
        missing = [n for n in loaded.signature.input_names if all(n not in r for r in records)]
        if missing:
            raise InvalidInputError(
                f"feature {missing[0]!r} is missing; the model needs: "
                f"{', '.join(loaded.signature.input_names)}",
                field=missing[0],
            )
        scores = loaded.predict(columns).tolist()
        cli.emit(
            {"model": str(loaded.version.ref), "scores": scores},
            lambda: click.echo(f"{loaded.version.ref}: {scores}"),
        )
