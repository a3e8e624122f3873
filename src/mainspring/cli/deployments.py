"""``mainspring deployments …``: deployments, their arms, weights and decision policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import InvalidInputError


def _arm(text: str) -> dict[str, Any]:
    """``NAME=MODEL@ALIAS[:ROLE[:WEIGHT]]`` or ``NAME=MODEL/VERSION[...]``."""
    name, sep, rest = text.partition("=")
    target, _, tail = rest.partition(":")
    model, marker, version = target.partition("@") if "@" in target else target.partition("/")
    if not sep or not name or not marker or not model or not version:
        raise InvalidInputError(
            f"--arm {text!r}: use NAME=MODEL@ALIAS or NAME=MODEL/VERSION, optionally followed "
            "by :ROLE and :WEIGHT (e.g. next=credit/3:canary:10)",
            field="arm",
        )
    role, _, weight = tail.partition(":")
    arm: dict[str, Any] = {"name": name, "model": model, "version": version}
    if role:
        arm["role"] = role
    if weight:
        try:
            arm["weight"] = float(weight)
        except ValueError:
            raise InvalidInputError(
                f"--arm {text!r}: weight must be a number", field="arm"
            ) from None
    return arm


def _policy(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid JSON: {exc}", field="policy") from None


@click.group()
def deployments() -> None:
    """Deployments: named endpoints over model arms, with an optional decision policy."""


@deployments.command("set")
@click.argument("name")
@click.option(
    "--arm", "arms", multiple=True, required=True,
    help="NAME=MODEL@ALIAS|MODEL/VERSION[:ROLE[:WEIGHT]] (repeat; one champion).",
)  # fmt: skip
@click.option("--features", help="The feature service a deciding deployment reads.")
@click.option("--policy", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A decision policy, YAML or JSON (see docs/decisions.md).")  # fmt: skip
@click.option("--reason", default="", help="Why (kept in the history).")
@pass_cli
def set_(
    cli: Cli,
    name: str,
    arms: tuple[str, ...],
    features: str | None,
    policy: Path | None,
    reason: str,
) -> None:
    """Create or replace deployment NAME."""
    from mainspring.records import ModelRef
    from mainspring.serving.deployments import (
        Deployment,
        DeploymentStore,
        arms_from,
        check_policy_output,
        decision_fields,
    )
    from mainspring.serving.explaining import unexplained_arms

    with handled():
        actor = cli.principal("alias").name
        project = cli.project
        parsed = arms_from([_arm(a) for a in arms])
        extra = decision_fields(
            {"features": features, "policy": _policy(policy) if policy is not None else None}
        )
        deployment = Deployment(name, parsed, **extra)
        for arm in parsed:  # every arm must resolve now, not when traffic arrives
            sep = "/" if arm.version.isdigit() else "@"
            project.registry.get(ModelRef.parse(f"{arm.model}{sep}{arm.version}", field="arm"))
        if deployment.features is not None:
            project.features.selection(deployment.features)
        check_policy_output(project.registry, deployment)  # a score column every arm has
        stored = DeploymentStore(project.metadata).put(deployment, actor=actor, reason=reason)
        for warning in unexplained_arms(project.registry, stored):
            click.echo(f"warning: {warning}", err=True)
        cli.emit(
            stored.to_dict(),
            lambda: click.echo(
                f"deployment {stored.name} revision {stored.revision}: "
                + ", ".join(f"{a.name}={a.model}/{a.version} ({a.role})" for a in stored.arms)
                + (" — decides" if stored.decides else "")
            ),
        )


@deployments.command("list")
@pass_cli
def list_(cli: Cli) -> None:
    """Every deployment."""
    from mainspring.serving.deployments import DeploymentStore

    with handled():
        found = DeploymentStore(cli.project.metadata).list()

        def human() -> None:
            for d in found:
                arms = ", ".join(f"{a.name}:{a.role}" for a in d.arms)
                click.echo(f"{d.name}  r{d.revision}  {arms}{'  decides' if d.decides else ''}")

        cli.emit([d.to_dict() for d in found], human)


@deployments.command()
@click.argument("name")
@pass_cli
def show(cli: Cli, name: str) -> None:
    """One deployment, with its policy."""
    from mainspring.serving.deployments import DeploymentStore

    with handled():
        found = DeploymentStore(cli.project.metadata).get(name)
        cli.emit(found.to_dict(), lambda: click.echo(json.dumps(found.to_dict(), indent=2)))
