"""``mainspring``: the command-line entry point."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mainspring import __version__
from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.cli.deciding import decide, replay, why
from mainspring.cli.decisions import decisions
from mainspring.cli.deployments import deployments
from mainspring.cli.events import events
from mainspring.cli.features import features
from mainspring.cli.models import models
from mainspring.cli.serve import serve
from mainspring.cli.tokens import tokens
from mainspring.cli.worker import worker
from mainspring.config import CONFIG_FILE, STATE_DIR

TEMPLATE = """\
# Mainspring project settings. Environment variables override them:
# MAINSPRING_METADATA, MAINSPRING_ARTIFACTS, MAINSPRING_S3__ENDPOINT_URL, ...
name: {name}
# metadata: sqlite:///.mainspring/metadata.db      # or postgresql://user:pw@host:5432/db
# artifacts: file://.mainspring/artifacts          # or s3://bucket/prefix
# online: sqlite:///.mainspring/online.db          # or redis://127.0.0.1:6379/0
# events: sqlite:///.mainspring/events.db          # or kafka://127.0.0.1:9092
# s3:
#   endpoint_url: http://127.0.0.1:9000
# api:
#   host: 127.0.0.1
#   port: 8000
# audit:                     # the decision log
#   personal:                # dropped, or hashed with the key in .mainspring/audit.key
#     ssn: drop
#     email: hash
#   durability: fsync        # or process (faster; survives a killed process, not a power cut)
#   segments: [region]       # entity/context fields whose override rates are metered
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mainspring")
@click.option(
    "--project",
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("MAINSPRING_PROJECT", "."),
    show_default=".",
    help="The project directory (env MAINSPRING_PROJECT).",
)
@click.option(
    "--as",
    "as_user",
    metavar="NAME",
    help="Act as NAME while the project has no tokens (env MAINSPRING_USER).",
)
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def cli(ctx: click.Context, directory: Path, as_user: str | None, json_output: bool) -> None:
    """Mainspring: models as first-class, audited parts of a system."""
    state = Cli(directory, as_user, os.environ.get("MAINSPRING_TOKEN"), json_output)
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(directory: Path) -> None:
    """Create a project in DIRECTORY (mainspring.yaml and the embedded stores)."""
    from mainspring.project import Project

    with handled():
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / CONFIG_FILE
        if not config.exists():
            config.write_text(TEMPLATE.format(name=directory.resolve().name), encoding="utf-8")
        ignore = directory / ".gitignore"
        lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
        if f"{STATE_DIR}/" not in lines:
            ignore.write_text("\n".join([*lines, f"{STATE_DIR}/"]) + "\n", encoding="utf-8")
        with Project.open(directory) as project:
            click.echo(f"project {project.settings.name!r} ready in {directory.resolve()}")
            click.echo(f"  metadata:  {project.settings.metadata}")
            click.echo(f"  artifacts: {project.settings.artifacts}")


@cli.command()
@click.option("--host", help="Interface to bind (default from settings: 127.0.0.1).")
@click.option("--port", type=int, help="Port (default from settings: 8000).")
@pass_cli
def up(cli: Cli, host: str | None, port: int | None) -> None:
    """Run the control-plane REST API (OpenAPI at /docs) and the web UI (/ui)."""
    import uvicorn

    from mainspring.api.app import create_app

    with handled():
        project = cli.project
        settings = project.settings.api
        app = create_app(project)
        uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_level="info")


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to create the demo project (default: a fresh temp dir).",
)
def demo(directory: Path | None) -> None:
    """Walk through the registry: train, register, approve (four eyes), promote, load, predict."""
    from mainspring.demo.registry import run

    with handled():
        run(directory)


cli.add_command(models)
cli.add_command(tokens)
cli.add_command(features)
cli.add_command(serve)
cli.add_command(deployments)
cli.add_command(worker)
cli.add_command(events)
cli.add_command(decisions)
for command in (decide, why, replay):  # the decision service's part of the group
    decisions.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mainspring")
