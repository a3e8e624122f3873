"""The streaming step of the demo: applicant updates as events → online features → asynchronous
predictions by the champion → outcomes joined to the predictions they answer.

``run(project)`` needs a ``credit-risk`` champion in the project's registry (the demo's first
step registers it); everything runs in-process on the project's event log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from mainspring.demo.data import FEATURES, credit_data
from mainspring.events import TopicJoin, Worker
from mainspring.features import Entity, FeatureView, Field, StreamSource
from mainspring.features.streaming import StreamIngest
from mainspring.project import Project
from mainspring.records import Event
from mainspring.serving import DataPlane
from mainspring.serving.asynchronous import AsyncInference

console = Console(highlight=False)

MODEL = "credit-risk"
UPDATES = "applicant-updates"
REQUESTS = "score-requests"
PREDICTIONS = "scores"
OUTCOMES = "repayments"
LABELLED = "labelled-scores"
APPLICANTS = 200
START = datetime(2026, 11, 1, tzinfo=UTC)

live_applicant = Entity("applicant", {"applicant_id": "int64"}, "a credit applicant")
live_profile = FeatureView(
    "applicant_live",
    live_applicant,
    [Field(name) for name in FEATURES],
    StreamSource(UPDATES, offline_path="demo-streams/applicant_live"),
    description="the applicant profile, as updates stream in",
)


@dataclass(frozen=True)
class StreamingDemo:
    """What the streaming walk-through produced."""

    updates: int
    applied: int
    predictions: list[Event]
    labelled: list[Event]


def _read_all(project: Project, topic: str) -> list[Event]:
    log = project.events
    out: list[Event] = []
    for partition, (low, high) in sorted(log.watermarks(topic).items()):
        offset = low
        while offset < high:
            batch = log.read(topic, partition, offset, limit=1000)
            if not batch:
                break
            out.extend(batch)
            offset = (batch[-1].offset or 0) + 1
    return out


def run(project: Project, *, actor: str = "alice") -> StreamingDemo:
    """Stream applicant updates into online features, score a few applicants asynchronously and
    join their repayment outcomes."""
    console.rule("[bold]Streaming: events → online features → asynchronous scores → outcomes")
    store, log = project.features, project.events
    store.apply([live_applicant, live_profile], actor=actor)
    directory = project.settings.project_dir / ".mainspring"
    for topic in (UPDATES, REQUESTS, PREDICTIONS, OUTCOMES):
        log.create_topic(topic, partitions=2)

    # 1. two rounds of updates per applicant; the later one wins online
    x, _ = credit_data(APPLICANTS * 2, seed=21)
    updates = [
        Event(
            UPDATES,
            {"applicant_id": i % APPLICANTS, **dict(zip(FEATURES, row, strict=True))},
            key=str(i % APPLICANTS),
            event_time=START + timedelta(minutes=i),
        )
        for i, row in enumerate(x.tolist())
    ]
    log.produce(updates)
    ingest = StreamIngest(store, ["applicant_live"], ledger=directory / "streams.db")
    Worker(log, ingest).run(until_idle=True)
    applied = ingest.applied()
    ingest.close()
    console.print(
        f"{len(updates)} applicant updates on topic {UPDATES!r} → {applied} applied to the online "
        "store (and appended to the offline Parquet files for training)"
    )

    # 2. score requests built from the online features; the champion answers asynchronously
    ids = [3, 14, 15, 92]
    online = store.get_online_features(["applicant_live"], {"applicant_id": ids})
    requests = [
        Event(
            REQUESTS,
            {"id": f"req-{i}", "inputs": {name: row[name] for name in FEATURES}},
            key=str(i),
        )
        for i, row in zip(ids, online.rows(), strict=True)
    ]
    log.produce(requests)
    plane = DataPlane(project.registry)
    plane.start()
    scorer = AsyncInference(
        plane, log, f"{MODEL}@champion", requests=REQUESTS, predictions=PREDICTIONS
    )
    Worker(log, scorer).run(until_idle=True)
    plane.close()
    predictions = sorted(_read_all(project, PREDICTIONS), key=lambda e: e.payload["request_id"])
    table = Table("request", "applicant", "model", "P(default)")
    for event in predictions:
        outputs = event.payload["outputs"]
        table.add_row(
            event.payload["request_id"],
            event.key or "",
            f"{event.payload['model']} v{event.payload['version']}",
            f"{list(outputs.values())[-1]:.3f}",
        )
    console.print(table)

    # 3. repayment outcomes arrive later and are joined to the scores they answer
    outcomes = [
        Event(
            OUTCOMES,
            {"request_id": e.payload["request_id"], "defaulted": n % 2},
            key=e.key,
            event_time=e.event_time + timedelta(days=30),
        )
        for n, e in enumerate(predictions)
    ]
    log.produce(outcomes)
    join = TopicJoin(
        log,
        directory / "join-scores.db",
        left=PREDICTIONS,
        right=OUTCOMES,
        into=LABELLED,
        right_key="request_id",
        window=timedelta(days=90),
    )
    Worker(log, join).run(until_idle=True)
    join.close()
    labelled = _read_all(project, LABELLED)
    console.print(
        f"{len(outcomes)} repayment outcomes joined to their scores → {len(labelled)} labelled "
        f"records on topic {LABELLED!r}, ready for monitoring and retraining"
    )
    return StreamingDemo(len(updates), applied, predictions, labelled)
