"""The topic join: outcomes matched to the predictions they answer, late arrivals within a window,
each pair emitted once, state that survives a kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mainspring.errors import InvalidInputError
from mainspring.events import TopicJoin, Worker
from mainspring.records import IDEMPOTENCY_KEY, Event
from mainspring.storage.eventlog import SqliteEventLog
from mainspring.storage.memory import memory_event_log

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAINSPRING = str(Path(sys.executable).parent / "mainspring")


def prediction(rid: str, at: datetime, score: float = 0.5) -> Event:
    return Event(
        "predictions",
        {"request_id": rid, "score": score},
        key=rid,
        event_time=at,
        headers={IDEMPOTENCY_KEY: rid},
    )


def outcome(rid: str, at: datetime, label: int = 1) -> Event:
    return Event("outcomes", {"request_id": rid, "label": label}, key=rid, event_time=at)


def make_join(log: SqliteEventLog, path: Path, window: timedelta = timedelta(hours=1)) -> TopicJoin:
    return TopicJoin(
        log,
        path / "join.db",
        left="predictions",
        right="outcomes",
        into="labelled",
        right_key="request_id",
        window=window,
    )


def test_outcomes_in_any_order_join_their_predictions_once(tmp_path: Path) -> None:
    log = memory_event_log()
    log.produce([outcome("a", T0 + timedelta(minutes=5)), prediction("b", T0)])
    log.produce([prediction("a", T0), outcome("b", T0 + timedelta(minutes=50), label=0)])
    log.produce([prediction("a", T0)])  # a duplicate (same idempotency key): ignored
    join = make_join(log, tmp_path)
    Worker(log, join, batch_size=2).run(until_idle=True)
    labelled = {e.payload["id"]: e for e in log.read("labelled", 0, 0)}
    assert sorted(labelled) == ["a", "b"]
    assert labelled["a"].payload["right"]["label"] == 1
    assert labelled["b"].payload["delay_s"] == 3000.0
    assert labelled["b"].idempotency_key == "b" and labelled["b"].key == "b"
    assert join.joined() == 2 and join.pending() == {}


def test_late_second_and_unanswerable_outcomes_are_dead_lettered_with_the_reason(
    tmp_path: Path,
) -> None:
    log = memory_event_log()
    log.produce(
        [
            prediction("late", T0),
            outcome("late", T0 + timedelta(hours=2)),  # past the one-hour window
            prediction("twice", T0),
            outcome("twice", T0 + timedelta(minutes=1)),
            outcome("twice", T0 + timedelta(minutes=2)),  # a second answer
            outcome("orphan", T0),  # no prediction ever comes
            Event("outcomes", {"label": 1}, event_time=T0),  # no join id
            prediction("clock", T0 + timedelta(hours=3)),  # moves event time past the window
        ]
    )
    join = make_join(log, tmp_path)
    stats = Worker(log, join).run(until_idle=True)
    assert stats.dead_lettered == 0  # the join dead-letters by itself, nothing is refused
    labelled = log.read("labelled", 0, 0)
    assert [e.payload["id"] for e in labelled] == ["twice"]
    reasons = sorted(e.headers["dlq-reason"] for e in log.read("outcomes.dlq", 0, 0))
    assert reasons == [
        "a second outcomes event for id 'twice'; the first counts",
        "arrived 2:00:00 after predictions event 'late'; the window is 1:00:00",
        "event of 'outcomes' has no join id 'request_id' in its payload",
        "no predictions event with its id came within the window of 1:00:00",
    ]
    assert join.pending() == {"left": 1}  # "clock" waits; "late" and the rest are settled


def test_a_join_needs_two_topics_and_a_positive_window(tmp_path: Path) -> None:
    log = memory_event_log()
    with pytest.raises(InvalidInputError, match="different topics"):
        TopicJoin(log, tmp_path / "j.db", left="a", right="a", into="b", window=timedelta(1))
    with pytest.raises(InvalidInputError, match="window"):
        TopicJoin(log, tmp_path / "j.db", left="a", right="b", into="c", window=timedelta(0))


def test_the_outbox_left_by_a_crash_is_emitted_on_restart_with_the_same_ids(
    tmp_path: Path,
) -> None:
    log = memory_event_log()
    log.produce([prediction("a", T0), outcome("a", T0)])
    join = make_join(log, tmp_path)
    join.flush = lambda: 0  # type: ignore[method-assign]  # the crash: committed, not produced
    Worker(log, join).run(until_idle=True)
    join.close()
    assert log.read("labelled", 0, 0) == []
    again = make_join(log, tmp_path)  # emits the outbox on start
    (emitted,) = log.read("labelled", 0, 0)
    assert emitted.payload["id"] == "a" and again.flush() == 0 and again.joined() == 1


PAIRS = 1500


def joined_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            return [r[0] for r in conn.execute("SELECT id FROM join_done")]
    except sqlite3.OperationalError:
        return []


def test_join_worker_killed_mid_stream_neither_loses_nor_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    log = SqliteEventLog(path)
    events = []
    for i in range(PAIRS):
        events.append(prediction(f"r{i}", T0 + timedelta(seconds=i)))
        events.append(outcome(f"r{i}", T0 + timedelta(seconds=i + 30), label=i % 2))
    log.create_topic("predictions", partitions=2)
    log.create_topic("outcomes", partitions=2)
    log.produce(events)
    state = tmp_path / "join.db"
    env = {**os.environ, "MAINSPRING_EVENTS": f"sqlite:///{path}?session_timeout_s=2"}
    command = [
        MAINSPRING,
        "-C",
        str(tmp_path),
        "worker",
        "join",
        "--left",
        "predictions",
        "--right",
        "outcomes",
        "--into",
        "labelled",
        "--right-key",
        "request_id",
        "--window",
        "1h",
        "--state",
        str(state),
        "--batch-size",
        "30",
    ]
    with (tmp_path / f"w-{uuid.uuid4().hex[:4]}.log").open("wb") as out:
        first = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while len(joined_ids(state)) < 200:
        assert time.monotonic() < deadline, "the first worker made no progress"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    assert len(joined_ids(state)) < PAIRS, "the worker was killed mid-stream"
    second = subprocess.run([*command, "--until-idle"], env=env, capture_output=True, timeout=360)
    assert second.returncode == 0, second.stdout.decode() + second.stderr.decode()

    assert sorted(joined_ids(state)) == sorted(f"r{i}" for i in range(PAIRS))
    emitted: dict[str, Event] = {}
    for partition in range(log.partitions("labelled")):
        offset = 0
        while batch := log.read("labelled", partition, offset, limit=1000):
            for event in batch:
                held = emitted.setdefault(event.idempotency_key, event)
                assert held.id == event.id  # a re-emitted record is the same record
            offset = batch[-1].offset + 1  # type: ignore[operator]
    assert len(emitted) == PAIRS
    labels = {k: e.payload["right"]["label"] for k, e in emitted.items()}
    assert labels == {f"r{i}": i % 2 for i in range(PAIRS)}
    log.close()
