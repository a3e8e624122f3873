"""``mainspring tokens …``: API tokens and their roles."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.records import Role

console = Console(highlight=False)


@click.group()
def tokens() -> None:
    """Create, list and revoke API tokens. The first token turns authentication on."""


@tokens.command()
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="A role (repeatable).",
)
@pass_cli
def create(cli: Cli, name: str, roles: tuple[str, ...]) -> None:
    """Create a token for NAME; it is printed once, only its hash is kept."""
    with handled():
        actor = cli.principal("admin").name
        token = cli.project.tokens.create(name, roles, actor=actor)
        cli.emit({"name": name, "roles": sorted(roles), "token": token}, lambda: click.echo(token))


@tokens.command("list")
@pass_cli
def list_tokens(cli: Cli) -> None:
    """List tokens (never their secrets)."""
    with handled():
        cli.principal("admin")
        found = cli.project.tokens.list()

        def human() -> None:
            table = Table("name", "roles", "created", "revoked")
            for t in found:
                table.add_row(
                    t.name,
                    ", ".join(sorted(r.value for r in t.roles)),
                    f"{t.created_at:%Y-%m-%d %H:%M} by {t.created_by}",
                    f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
                )
            console.print(table)

        cli.emit(
            [
                {
                    "name": t.name,
                    "roles": sorted(r.value for r in t.roles),
                    "created_at": t.created_at.isoformat(),
                    "created_by": t.created_by,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in found
            ],
            human,
        )


@tokens.command()
@click.argument("name")
@pass_cli
def revoke(cli: Cli, name: str) -> None:
    """Revoke every token of NAME."""
    with handled():
        actor = cli.principal("admin").name
        count = cli.project.tokens.revoke(name, actor=actor)
        cli.emit({"revoked": count}, lambda: click.echo(f"revoked {count} token(s) of {name}"))
