"""The worker loop: batches, commits after processing, retries with backoff, dead letters for
events its processor rejects, graceful stop, lag."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from mainspring.errors import StorageError
from mainspring.events import Backoff, Materialize, SchemaRegistry, SqliteSink, Worker, lag
from mainspring.events.deadletter import REASON, STAGE
from mainspring.records import Event
from mainspring.storage.eventlog import SqliteEventLog
from mainspring.storage.memory import memory_event_log

FAST = Backoff(initial_s=0.001, max_s=0.01)


class Recorder:
    """A processor that records what it saw and fails as told."""

    name = "recorder"

    def __init__(self, topics: Sequence[str], *, poison: int | None = None, flaky: int = 0) -> None:
        self.topics = list(topics)
        self.batches: list[list[int]] = []
        self.poison = poison
        self.flaky = flaky

    def process(self, events: Sequence[Event]) -> None:
        if self.flaky:
            self.flaky -= 1
            raise StorageError("sink is down")
        if any(e.payload["n"] == self.poison for e in events):
            raise ValueError(f"cannot handle {self.poison}")
        self.batches.append([e.payload["n"] for e in events])

    def close(self) -> None:
        pass

    @property
    def seen(self) -> list[int]:
        return [n for batch in self.batches for n in batch]


def test_batches_are_bounded_and_offsets_committed_after_processing() -> None:
    log = memory_event_log()
    log.produce([Event("t", {"n": n}) for n in range(25)])
    processor = Recorder(["t"])
    worker = Worker(log, processor, batch_size=10)
    stats = worker.run(until_idle=True)
    assert [len(b) for b in processor.batches] == [10, 10, 5]
    assert (stats.events, stats.batches, worker.lag()) == (25, 3, 0)
    assert log.committed("recorder", "t") == {0: 25}


def test_a_poison_event_goes_to_the_dead_letter_topic_and_the_rest_flows() -> None:
    log = memory_event_log()
    log.produce([Event("t", {"n": n}) for n in range(6)])
    processor = Recorder(["t"], poison=3)
    stats = Worker(log, processor, backoff=FAST).run(until_idle=True)
    assert processor.seen == [0, 1, 2, 4, 5]
    assert stats.dead_lettered == 1
    [dead] = log.read("t.dlq", 0, 0)
    assert dead.payload == {"n": 3}
    assert dead.headers[STAGE] == "process"
    assert dead.headers[REASON] == "ValueError: cannot handle 3"
    assert lag(log, "recorder", ["t"]) == 0


def test_events_failing_their_schema_are_dead_lettered_by_the_worker() -> None:
    log = memory_event_log()
    schemas = SchemaRegistry(log)
    schemas.register(
        "t", {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}}
    )
    log.produce([Event("t", {"n": n}) for n in range(6)])  # produced without validation
    processor = Recorder(["t"])
    Worker(log, processor, schemas=schemas).run(until_idle=True)
    assert processor.seen == [0, 1, 2, 3]
    assert [e.payload["n"] for e in log.read("t.dlq", 0, 0)] == [4, 5]


def test_a_sink_that_is_down_is_retried_with_backoff() -> None:
    log = memory_event_log()
    log.produce([Event("t", {"n": n}) for n in range(3)])
    processor = Recorder(["t"], flaky=3)
    stats = Worker(log, processor, backoff=FAST).run(until_idle=True)
    assert processor.seen == [0, 1, 2]
    assert stats.retries == 3


def test_a_worker_gives_up_after_max_retries_without_committing() -> None:
    log = memory_event_log()
    log.produce([Event("t", {"n": 0})])
    worker = Worker(log, Recorder(["t"], flaky=10), backoff=FAST, max_retries=2)
    with pytest.raises(StorageError, match="sink is down"):
        worker.run(until_idle=True)
    assert worker.lag() == 1


def test_stop_finishes_and_commits(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    view = Materialize(tmp_path / "view.db", "v", ["t"])
    worker = Worker(log, view, batch_size=7, poll_timeout_s=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    log.produce([Event("t", {"n": n}, key=f"k{n}") for n in range(30)])
    deadline = time.monotonic() + 60
    while worker.lag() and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert len(view.rows()) == 30 and worker.lag() == 0
    # the group left: a new member gets every partition at once
    consumer = log.consumer(worker.group, ["t"])
    assert consumer.assignment() == [("t", 0)]
    consumer.close()
    view.close()
    log.close()


def test_replayed_events_take_effect_once(tmp_path: Path) -> None:
    log = memory_event_log()
    log.produce([Event("t", {"n": n}, key=f"k{n % 3}") for n in range(9)])
    view = Materialize(tmp_path / "view.db", "v", ["t"])
    Worker(log, view).run(until_idle=True)
    before = view.rows()
    Worker(log, view, group="another-group").run(until_idle=True)  # a full replay
    assert view.rows() == before == [("k0", {"n": 6}, 3), ("k1", {"n": 7}, 3), ("k2", {"n": 8}, 3)]
    view.close()


def test_sink_rolls_back_a_failed_batch(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "s.db")
    sink.execute("CREATE TABLE seen (n INTEGER)")
    events = [Event("t", {"n": n}, partition=0, offset=n) for n in range(3)]

    def effect(conn: object, event: Event) -> None:
        if event.payload["n"] == 2:
            raise ValueError("boom")
        sink._conn.execute("INSERT INTO seen VALUES (?)", (event.payload["n"],))

    with pytest.raises(ValueError):
        sink.apply(events, effect)
    assert sink.execute("SELECT COUNT(*) FROM seen") == [(0,)]
    assert sink.apply(events[:2], effect) == 2
    assert sink.apply(events[:2], effect) == 0
    sink.close()
