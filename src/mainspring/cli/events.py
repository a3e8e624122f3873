"""``mainspring events``: produce to, read from and measure the project's event log."""

from __future__ import annotations

import json

import click

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import InvalidInputError
from mainspring.records import Event


@click.group()
def events() -> None:
    """Topics of the event log (settings key ``events``)."""


@events.command()
@click.argument("topic")
@click.argument("payload")
@click.option("--key", help="Events with one key keep their order (one partition).")
@click.option("--header", "headers", multiple=True, metavar="NAME=VALUE", help="Repeatable.")
@pass_cli
def produce(cli: Cli, topic: str, payload: str, key: str | None, headers: tuple[str, ...]) -> None:
    """Append one event with a JSON PAYLOAD to TOPIC (checked against its schema, if any)."""
    from mainspring.events import Publisher

    with handled():
        try:
            body = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"payload is not JSON: {exc}", field="payload") from None
        if not isinstance(body, dict):
            raise InvalidInputError("payload must be a JSON object", field="payload")
        pairs = dict(h.split("=", 1) for h in headers if "=" in h)
        result = Publisher(cli.project.events).publish([Event(topic, body, key=key, headers=pairs)])
        [event] = result.accepted or result.dead_lettered
        cli.emit(
            event.to_dict(),
            lambda: click.echo(f"{event.topic}[{event.partition}]@{event.offset} {event.id}"),
        )


@events.command()
@click.argument("topic")
@click.option("-n", "count", default=10, show_default=True, help="How many of the newest.")
@pass_cli
def tail(cli: Cli, topic: str, count: int) -> None:
    """Print the newest events of TOPIC (per partition), oldest first."""
    with handled():
        log = cli.project.events
        found: list[Event] = []
        for partition, (low, high) in log.watermarks(topic).items():
            found += log.read(topic, partition, max(low, high - count), limit=count)
        found.sort(key=lambda e: (e.event_time, e.partition, e.offset))
        newest = found[-count:]

        def human() -> None:
            for e in newest:
                click.echo(
                    f"{e.topic}[{e.partition}]@{e.offset} {e.event_time.isoformat()} "
                    f"key={e.key} {json.dumps(e.payload)}"
                )

        cli.emit([e.to_dict() for e in newest], human)


@events.command()
@click.argument("group")
@click.argument("topics", nargs=-1, required=True)
@pass_cli
def lag(cli: Cli, group: str, topics: tuple[str, ...]) -> None:
    """How many events of TOPICS consumer group GROUP has not committed yet."""
    from mainspring.events import lag as group_lag

    with handled():
        behind = group_lag(cli.project.events, group, topics)
        cli.emit(
            {"group": group, "topics": list(topics), "lag": behind}, lambda: click.echo(behind)
        )
