"""``mainspring worker``: run a processor on the project's event log until stopped."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from mainspring.cli.context import Cli, handled, pass_cli
from mainspring.errors import InvalidInputError

if TYPE_CHECKING:
    from mainspring.events import Processor


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
    from mainspring.events import Materialize

    with handled():
        processor = Materialize(path, table, topics)
        _run(cli, processor, group, batch_size, until_idle, validate)


def _run(
    cli: Cli,
    processor: Processor,
    group: str | None,
    batch_size: int,
    until_idle: bool,
    validate: bool = False,
) -> None:
    """Run ``processor`` until SIGTERM/Ctrl-C (or idle), then report its counters."""
    from mainspring.events import SchemaRegistry, Worker

    log = cli.project.events
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


GROUP = click.option("--group", help="Consumer group (default: the processor's name).")
BATCH = click.option("--batch-size", default=500, show_default=True, help="Events per batch.")
IDLE = click.option("--until-idle", is_flag=True, help="Stop once the group has caught up.")
VALIDATE = click.option(
    "--validate", is_flag=True, help="Dead-letter events that fail their schema."
)


@worker.command()
@click.argument("views", nargs=-1, required=True)
@click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The definitions file with the views' transformations (default: features.py).",
)
@click.option(
    "--ledger",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file recording applied events [.mainspring/streams.db].",
)
@click.option(
    "--offline/--no-offline",
    default=True,
    show_default=True,
    help="Append rows to the views' offline_path.",
)
@GROUP
@BATCH
@IDLE
@VALIDATE
@pass_cli
def features(
    cli: Cli,
    views: tuple[str, ...],
    file: Path | None,
    ledger: Path | None,
    offline: bool,
    group: str | None,
    batch_size: int,
    until_idle: bool,
    validate: bool,
) -> None:
    """Ingest the topics of stream-sourced feature VIEWS into the online store (and offline
    Parquet), each event once, through the views' transformations."""
    from mainspring.features.definition_file import DEFAULT_FILE, load_definitions
    from mainspring.features.streaming import StreamIngest

    with handled():
        project = cli.project
        definitions = file or project.settings.project_dir / DEFAULT_FILE
        if file is not None or definitions.is_file():
            project.features.load(load_definitions(definitions))
        path = ledger or project.settings.project_dir / ".mainspring" / "streams.db"
        processor = StreamIngest(project.features, views, ledger=path, offline=offline)
        _run(cli, processor, group, batch_size, until_idle, validate)


@worker.command()
@click.argument("model")
@click.option("--requests", required=True, help="The topic of request events.")
@click.option("--predictions", required=True, help="The topic to produce predictions to.")
@click.option("--version", "version", help="A version, alias or deployment arm [the default].")
@GROUP
@BATCH
@IDLE
@VALIDATE
@pass_cli
def predict(
    cli: Cli,
    model: str,
    requests: str,
    predictions: str,
    version: str | None,
    group: str | None,
    batch_size: int,
    until_idle: bool,
    validate: bool,
) -> None:
    """Score request events with MODEL (a model or deployment) and produce the predictions,
    one predict call per polled batch; invalid requests go to REQUESTS.dlq."""
    from mainspring.serving import DataPlane
    from mainspring.serving.asynchronous import AsyncInference
    from mainspring.serving.deployments import DeploymentStore

    with handled():
        project = cli.project
        plane = DataPlane(project.registry, deployments=DeploymentStore(project.metadata))
        plane.start()
        try:
            processor = AsyncInference(
                plane,
                project.events,
                model,
                requests=requests,
                predictions=predictions,
                version=version,
            )
            _run(cli, processor, group, batch_size, until_idle, validate)
        finally:
            plane.close()


@worker.command()
@click.option("--left", required=True, help="The topic answered (predictions, decisions).")
@click.option("--right", required=True, help="The topic of answers (outcomes).")
@click.option("--into", required=True, help="The topic to produce joined records to.")
@click.option(
    "--left-key",
    default="idempotency-key",
    show_default=True,
    help="Payload field with the join id on the left (or idempotency-key).",
)
@click.option(
    "--right-key",
    default="idempotency-key",
    show_default=True,
    help="Payload field with the join id on the right (or idempotency-key).",
)
@click.option(
    "--window",
    default="7d",
    show_default=True,
    help="How late an answer may come: 30s, 15m, 6h, 7d.",
)
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite file of the join's state [.mainspring/join-LEFT-RIGHT.db].",
)
@GROUP
@BATCH
@IDLE
@pass_cli
def join(
    cli: Cli,
    left: str,
    right: str,
    into: str,
    left_key: str,
    right_key: str,
    window: str,
    state: Path | None,
    group: str | None,
    batch_size: int,
    until_idle: bool,
) -> None:
    """Match RIGHT events (outcomes) to the LEFT events (predictions) they answer, by id, and
    produce labelled records to INTO; answers later than the window go to RIGHT.dlq."""
    from mainspring.events.join import TopicJoin

    with handled():
        project = cli.project
        path = state or project.settings.project_dir / ".mainspring" / f"join-{left}-{right}.db"
        processor = TopicJoin(
            project.events,
            path,
            left=left,
            right=right,
            into=into,
            window=parse_duration(window),
            left_key=left_key,
            right_key=right_key,
        )
        _run(cli, processor, group, batch_size, until_idle)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``6h``, ``7d`` as a timedelta.

    >>> parse_duration("7d")
    datetime.timedelta(days=7)
    """
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()) or int(number) <= 0:
        raise InvalidInputError(
            f"--window {text!r} is not a duration; write a positive number with s, m, h or d "
            "(e.g. 7d)",
            field="window",
        )
    return timedelta(seconds=int(number) * _UNITS[unit])


@worker.command()
@click.option(
    "--topic", "topics", multiple=True, default=("outcomes",), show_default=True,
    help="A topic of outcome events (repeat).",
)  # fmt: skip
@click.option("--group", help="Consumer group (default: mainspring-outcomes).")
@click.option("--batch-size", default=500, show_default=True, help="Events per batch.")
@click.option("--until-idle", is_flag=True, help="Stop once the group has caught up.")
@pass_cli
def outcomes(
    cli: Cli, topics: tuple[str, ...], group: str | None, batch_size: int, until_idle: bool
) -> None:
    """Attach outcome events ({decision_id, value, at}) to their logged decisions, each once."""
    from mainspring.audit import OutcomeProcessor

    with handled():
        _run(cli, OutcomeProcessor(cli.project.decisions, topics), group, batch_size, until_idle)


@worker.command()
@click.option(
    "--topic", default="decision-requests", show_default=True,
    help="The topic of decision requests: {deployment, entity, context, request_id}.",
)  # fmt: skip
@click.option("--group", help="Consumer group (default: decide-TOPIC).")
@click.option("--batch-size", default=200, show_default=True, help="Events per batch.")
@click.option("--until-idle", is_flag=True, help="Stop once the group has caught up.")
@pass_cli
def decide(cli: Cli, topic: str, group: str | None, batch_size: int, until_idle: bool) -> None:
    """Decide each request event with its deployment; answers are mirrored to `decisions`."""
    from mainspring.cli.deciding import decision_service
    from mainspring.serving.decision_requests import DecisionRequests

    with handled():
        service = decision_service(cli)
        try:
            _run(cli, DecisionRequests(service, topic), group, batch_size, until_idle)
        finally:
            service.plane.close()
