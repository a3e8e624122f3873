"""``mainspring worker``: run a processor on the project's event log until stopped."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from mainspring.cli.context import Cli, handled, pass_cli


@click.group()
def worker() -> None:
    """Run stream processors on the event log (settings key ``events``).

    Several workers with the same group share the topics' partitions. SIGTERM or Ctrl-C finishes
    the batch in hand, commits it and leaves the group.
    """


@worker.command()
@click.option("--topic", "topics", multiple=True, required=True, help="A topic to read (repeat).")
@click.option(
    "--into",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite database to keep the table in.",
)
@click.option("--table", required=True, help="The table: one row per key, the latest payload.")
@click.option("--group", help="Consumer group (default: materialize-TABLE).")
@click.option("--batch-size", default=500, show_default=True, help="Events per transaction.")
@click.option("--until-idle", is_flag=True, help="Stop once the group has caught up.")
@click.option("--validate", is_flag=True, help="Dead-letter events that fail their schema.")
@pass_cli
def materialize(
    cli: Cli,
    topics: tuple[str, ...],
    path: Path,
    table: str,
    group: str | None,
    batch_size: int,
    until_idle: bool,
    validate: bool,
) -> None:
    """Keep the latest payload of every key of TOPIC(s) in a SQLite table, each event once."""
    from mainspring.events import Materialize, SchemaRegistry, Worker

    with handled():
        log = cli.project.events
        processor = Materialize(path, table, topics)
        schemas = SchemaRegistry(log) if validate else None
        runner = Worker(log, processor, group=group, batch_size=batch_size, schemas=schemas)

        def stop(signum: int, frame: FrameType | None) -> None:
            runner.stop()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            stats = runner.run(until_idle=until_idle)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            processor.close()
        data = {
            "group": runner.group,
            "events": stats.events,
            "batches": stats.batches,
            "dead_lettered": stats.dead_lettered,
            "retries": stats.retries,
            "lag": runner.lag(),
        }
        cli.emit(
            data,
            lambda: click.echo(
                f"{runner.group}: processed {stats.events} events in {stats.batches} batches, "
                f"dead-lettered {stats.dead_lettered}, retries {stats.retries}, lag {data['lag']}"
            ),
        )


@worker.command()
@click.option(
    "--topic",
    "topics",
    multiple=True,
    default=("outcomes",),
    show_default=True,
    help="A topic of outcome events (repeat).",
)
@click.option("--group", help="Consumer group (default: mainspring-outcomes).")
@click.option("--batch-size", default=500, show_default=True, help="Events per batch.")
@click.option("--until-idle", is_flag=True, help="Stop once the group has caught up.")
@pass_cli
def outcomes(
    cli: Cli, topics: tuple[str, ...], group: str | None, batch_size: int, until_idle: bool
) -> None:
    """Attach outcome events ({decision_id, value, at}) to their logged decisions, each once."""
    from mainspring.audit import OutcomeProcessor
    from mainspring.events import Worker

    with handled():
        log = cli.project.events
        processor = OutcomeProcessor(cli.project.decisions, topics)
        runner = Worker(log, processor, group=group, batch_size=batch_size)

        def stop(signum: int, frame: FrameType | None) -> None:
            runner.stop()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            stats = runner.run(until_idle=until_idle)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        data = {
            "group": runner.group,
            "events": stats.events,
            "dead_lettered": stats.dead_lettered,
            "lag": runner.lag(),
        }
        cli.emit(
            data,
            lambda: click.echo(
                f"{runner.group}: {stats.events} outcome events, dead-lettered "
                f"{stats.dead_lettered}, lag {data['lag']}"
            ),
        )
