"""``mainspring features …``: the feature store from the command line."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import InvalidInputError
from mainspring.features.definition_file import DEFAULT_FILE, load_definitions

console = Console(highlight=False)

FILE_OPTION = click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"The definitions file (default: {DEFAULT_FILE} in the project).",
)


def _definitions_file(cli: Cli, file: Path | None) -> Path:
    return file if file is not None else cli.project.settings.project_dir / DEFAULT_FILE


@click.group()
def features() -> None:
    """Define, materialize and serve features."""


@features.command()
@FILE_OPTION
@click.option(
    "--check-sources/--no-check-sources",
    default=True,
    show_default=True,
    help="Try each view on a sample of its source first.",
)
@pass_cli
def apply(cli: Cli, file: Path | None, check_sources: bool) -> None:
    """Validate and register the definitions of the definitions file."""
    with handled():
        actor = cli.principal("register").name
        definitions = load_definitions(_definitions_file(cli, file))
        changed = cli.project.features.apply(definitions, actor=actor, check_sources=check_sources)

        def human() -> None:
            for r in changed:
                click.echo(f"applied {r.kind} {r.name} v{r.version}")
            if not changed:
                click.echo(f"no changes ({len(definitions)} definitions up to date)")

        cli.emit([r.to_dict() for r in changed], human)


@features.command("list")
@click.option(
    "--kind",
    type=click.Choice(["view", "entity", "service", "ondemand"]),
    default="view",
    show_default=True,
)
@pass_cli
def list_definitions(cli: Cli, kind: str) -> None:
    """List the registered feature views (or entities, services)."""
    with handled():
        cli.principal("read")
        found = cli.project.features.definitions(kind)

        def human() -> None:
            table = Table(kind, "version", "details", "applied")
            for r in found:
                d = r.definition
                if kind == "view":
                    details = f"{d['entity']['name']}: " + ", ".join(
                        f"{f['name']}:{f['dtype']}" for f in d["fields"]
                    )
                elif kind == "entity":
                    details = ", ".join(f"{k}:{t}" for k, t in d["join_keys"].items())
                elif kind == "ondemand":
                    details = (
                        "context "
                        + ", ".join(f"{f['name']}:{f['dtype']}" for f in d["context"])
                        + " → "
                        + ", ".join(f"{f['name']}:{f['dtype']}" for f in d["fields"])
                    )
                else:
                    details = ", ".join(d["features"])
                table.add_row(
                    r.name,
                    str(r.version),
                    details,
                    f"{r.created_at:%Y-%m-%d %H:%M} by {r.created_by}",
                )
            console.print(table if found else f"no {kind} registered yet")

        cli.emit([r.to_dict() for r in found], human)


@features.command()
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["view", "entity", "service", "ondemand"]),
    default="view",
    show_default=True,
)
@pass_cli
def show(cli: Cli, name: str, kind: str) -> None:
    """Show a definition (and, for a view, its online statistics)."""
    with handled():
        cli.principal("read")
        store = cli.project.features
        found = store.get(kind, name)
        data: dict[str, Any] = found.to_dict()
        if kind == "view":
            data["statistics"] = store.statistics(name)
        cli.emit(data, lambda: console.print_json(json.dumps(data, default=str)))


@features.command()
@click.argument("views", nargs=-1)
@click.option(
    "--full", is_flag=True, help="Read all rows again, not only those since the last run."
)
@click.option("--end", help="Materialize rows up to this ISO time with zone (default: now).")
@FILE_OPTION
@pass_cli
def materialize(
    cli: Cli, views: tuple[str, ...], full: bool, end: str | None, file: Path | None
) -> None:
    """Copy the latest feature rows to the online store (all views unless VIEWS are given)."""
    with handled():
        actor = cli.principal("register").name
        until = _time(end, "--end") if end else None
        path = _definitions_file(cli, file)
        store = cli.project.features
        if path.exists():
            store.load(load_definitions(path))
        runs = store.materialize(
            list(views) or None, end=until, full=full, actor=actor, progress=not cli.json_output
        )

        def human() -> None:
            for run in runs:
                since = run.start.isoformat() if run.start else "the beginning"
                click.echo(
                    f"materialized {run.view} v{run.version}: {run.rows} rows "
                    f"({since} → {run.end.isoformat()})"
                )

        cli.emit([r.to_dict() for r in runs], human)


@features.command()
@click.argument("features_ref", metavar="FEATURES")
@click.argument("entities")
@click.option(
    "--context",
    "context_json",
    default=None,
    help='Request context for on-demand features, as JSON: {"amount": 120.5}, or a list of '
    "one object per entity.",
)
@FILE_OPTION
@pass_cli
def get(
    cli: Cli, features_ref: str, entities: str, context_json: str | None, file: Path | None
) -> None:
    """Online features: FEATURES is a service name or comma-separated view[:feature] references;
    ENTITIES is JSON: one object of join keys, or a list of them."""
    with handled():
        cli.principal("read")
        context = None
        if context_json is not None:
            try:
                context = json.loads(context_json)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"--context is not valid JSON: {exc}", field="context"
                ) from None
        if file is not None:  # otherwise the store reads the project's own file when needed
            cli.project.features.load(load_definitions(file))
        try:
            keys = json.loads(entities)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"ENTITIES is not valid JSON: {exc}", field="entities"
            ) from None
        if isinstance(keys, dict):
            keys = [keys]
        if not isinstance(keys, list):
            raise InvalidInputError(
                "ENTITIES must be a JSON object of join keys or a list of them", field="entities"
            )
        refs: str | list[str] = features_ref
        if "," in features_ref or ":" in features_ref:
            refs = [r.strip() for r in features_ref.split(",") if r.strip()]
        result = cli.project.features.get_online_features(refs, keys, context=context)

        def human() -> None:
            rows = result.rows()
            names = list(rows[0]) if rows else []
            table = Table(*names)
            for row in rows:
                table.add_row(*("-" if v is None else str(v) for v in row.values()))
            console.print(table)

        cli.emit(result.to_dict(), human)


def _time(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{option} {text!r} is not an ISO time", field=option) from None
    if value.tzinfo is None:
        raise InvalidInputError(
            f"{option} {text!r} has no time zone; add one, e.g. {text}+00:00", field=option
        )
    return value
