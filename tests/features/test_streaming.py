"""Stream ingestion: events → transformation → online store and offline Parquet, each event once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from mainspring.errors import InvalidInputError
from mainspring.events import Worker
from mainspring.features import Entity, FeatureView, Field, FileSource, StreamSource, streaming
from mainspring.features.streaming import StreamIngest
from mainspring.project import Project
from mainspring.records import IDEMPOTENCY_KEY, Event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", {"customer_id": "int64"})


def spend(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    amount = columns["amount"].astype(float)
    return {"amount": amount, "log_amount": np.log1p(amount), "big": amount > 50}


payments = FeatureView(
    "payments",
    customer,
    [Field("amount"), Field("log_amount"), Field("big", "bool")],
    StreamSource("payments", offline_path="streams/payments"),
    transformation=spend,
)
plain = FeatureView(
    "balance",
    customer,
    [Field("balance")],
    StreamSource("balances"),
)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.open(tmp_path) as opened:
        opened.features.apply([customer, payments, plain], actor="alice")
        yield opened


def payment_events(n: int, entities: int = 20, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    events = []
    for i in range(n):
        cid = int(rng.integers(entities))
        events.append(
            Event(
                "payments",
                {"customer_id": cid, "amount": float(rng.integers(0, 100))},
                key=str(cid),
                event_time=T0 + timedelta(seconds=int(rng.integers(0, 10_000)), microseconds=i),
            )
        )
    return events


def ingest(project: Project, views: list[str], **kw: Any) -> StreamIngest:
    ledger = project.settings.project_dir / ".mainspring" / "streams.db"
    return StreamIngest(project.features, views, ledger=ledger, **kw)


def run(project: Project, processor: StreamIngest, group: str | None = None) -> int:
    return Worker(project.events, processor, group=group, batch_size=64).run(until_idle=True).events


def test_online_values_equal_the_offline_retrieval_for_the_same_entity_and_time(
    project: Project,
) -> None:
    project.events.create_topic("payments", partitions=3)
    events = payment_events(600)
    project.events.produce(events)
    processor = ingest(project, ["payments"])
    assert run(project, processor) == 600
    assert processor.applied() == 600
    processor.close()

    ids = sorted({e.payload["customer_id"] for e in events})
    latest = {}
    for e in events:
        cid = e.payload["customer_id"]
        if cid not in latest or e.event_time > latest[cid].event_time:
            latest[cid] = e
    end = T0 + timedelta(days=1)
    online = project.features.get_online_features(
        ["payments"], [{"customer_id": c} for c in ids], now=end
    )
    frame = pd.DataFrame({"customer_id": ids, "event_timestamp": [end] * len(ids)})
    offline = project.features.get_historical_features(frame, ["payments"]).data
    offline = offline.set_index("customer_id").loc[ids]
    assert online.values["amount"] == [latest[c].payload["amount"] for c in ids]
    assert online.values["amount"] == offline["amount"].tolist()
    assert online.values["log_amount"] == offline["log_amount"].tolist()
    assert online.values["big"] == offline["big"].tolist()
    assert online.event_timestamps["payments"] == [latest[c].event_time for c in ids]

    # at an earlier time the training set sees the streamed row of that time, not the latest
    middle = T0 + timedelta(seconds=5000)
    frame = pd.DataFrame({"customer_id": ids, "event_timestamp": [middle] * len(ids)})
    past = project.features.get_historical_features(frame, ["payments"]).data
    for cid, amount in zip(past["customer_id"], past["amount"], strict=True):
        before = [e for e in events if e.payload["customer_id"] == cid and e.event_time <= middle]
        want = max(before, key=lambda e: e.event_time).payload["amount"] if before else None
        assert (amount if not pd.isna(amount) else None) == want


def test_a_replay_applies_nothing_twice_and_a_late_event_never_moves_a_value_back(
    project: Project,
) -> None:
    events = payment_events(200, entities=5)
    project.events.produce(events)
    processor = ingest(project, ["payments"])
    run(project, processor)
    files = sorted((project.settings.project_dir / "streams" / "payments").glob("*.parquet"))
    before = project.features.get_online_features(["payments"], {"customer_id": [0, 1, 2]})

    # a new group reads the whole topic again; the same events are produced again too
    project.events.produce(events[:50])
    assert run(project, processor, group="replay") == 250
    assert processor.applied() == 200
    again = sorted((project.settings.project_dir / "streams" / "payments").glob("*.parquet"))
    assert again == files
    assert (
        project.features.get_online_features(["payments"], {"customer_id": [0, 1, 2]}).values
        == before.values
    )

    # a genuinely new but older event for customer 0: kept offline, not online
    late = Event(
        "payments", {"customer_id": 0, "amount": 99.0}, key="0", event_time=T0 - timedelta(days=1)
    )
    project.events.produce([late])
    run(project, processor)
    assert processor.applied() == 201
    after = project.features.get_online_features(["payments"], {"customer_id": [0]})
    assert after.values["amount"] == before.values["amount"][:1]
    frame = pd.DataFrame({"customer_id": [0], "event_timestamp": [T0 - timedelta(hours=1)]})
    assert project.features.get_historical_features(frame, ["payments"]).data["amount"][0] == 99.0
    processor.close()


def test_idempotency_keys_dedupe_events_with_different_ids(project: Project) -> None:
    first = Event(
        "balances", {"customer_id": 7, "balance": 10.0}, key="7", headers={IDEMPOTENCY_KEY: "b-1"}
    )
    twin = Event(
        "balances", {"customer_id": 7, "balance": 99.0}, key="7", headers={IDEMPOTENCY_KEY: "b-1"}
    )
    project.events.produce([first, twin])
    processor = ingest(project, ["balance"])
    run(project, processor)
    assert processor.applied() == 1
    online = project.features.get_online_features(["balance"], {"customer_id": [7]})
    assert online.values["balance"] == [10.0]
    processor.close()


def test_a_bad_event_is_dead_lettered_with_the_reason_and_the_others_apply(
    project: Project,
) -> None:
    good = [
        Event("balances", {"customer_id": i, "balance": float(i)}, key=str(i)) for i in range(5)
    ]
    bad = Event("balances", {"balance": 1.0}, key="x")
    wrong = Event("balances", {"customer_id": "nine", "balance": 1.0}, key="y")
    project.events.produce([*good[:2], bad, *good[2:], wrong])
    processor = ingest(project, ["balance"])
    stats = Worker(project.events, processor, batch_size=64).run(until_idle=True)
    assert stats.dead_lettered == 2 and processor.applied() == 5
    letters = project.events.read("balances.dlq", 0, 0)
    reasons = sorted(e.headers["dlq-reason"] for e in letters)
    assert "no join key column 'customer_id'" in reasons[0]
    assert "join key 'customer_id' must be int64" in reasons[1]
    online = project.features.get_online_features(["balance"], {"customer_id": list(range(5))})
    assert online.values["balance"] == [0.0, 1.0, 2.0, 3.0, 4.0]
    processor.close()


def test_views_without_a_stream_source_or_offline_rows_are_refused_by_name(
    project: Project, tmp_path: Path
) -> None:
    pd.DataFrame({"customer_id": [1], "event_timestamp": [T0], "income": [1.0]}).to_parquet(
        tmp_path / "profile.parquet"
    )
    batch = FeatureView("profile", customer, [Field("income")], FileSource("profile.parquet"))
    project.features.apply([batch], actor="alice")
    with pytest.raises(InvalidInputError, match="'profile' has a file source, not a stream"):
        ingest(project, ["profile"])
    frame = pd.DataFrame({"customer_id": [1], "event_timestamp": [T0]})
    with pytest.raises(InvalidInputError, match="without an offline_path"):
        project.features.get_historical_features(frame, ["balance"])
    with pytest.raises(InvalidInputError, match="no rows of topic 'payments' have been streamed"):
        project.features.get_historical_features(frame, ["payments"])
    # materializing every view leaves the stream views to their streams
    assert [run.view for run in project.features.materialize(end=T0)] == ["profile"]


def test_offline_rows_left_in_the_outbox_by_a_crash_are_written_by_the_next_run(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.events.produce(payment_events(30))
    processor = ingest(project, ["payments"])
    # the crash: the batch is committed, its file never written out
    monkeypatch.setattr(streaming, "write_out", lambda target, data: None)
    run(project, processor)
    processor.sink.close()
    monkeypatch.undo()
    directory = project.settings.project_dir / "streams" / "payments"
    assert not list(directory.glob("*.parquet"))
    reopened = ingest(project, ["payments"])  # flushes on start
    rows = pd.read_parquet(directory)
    assert len(rows) == 30 and reopened.flush() == 0
    reopened.close()
