"""The mirror to the event log: in order, idempotency key = record id, and a crash re-publishes."""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.audit.conftest import T0, decision
from tests.storage.turns import recorded_naps, turn_is_free

from mainspring.audit import DecisionLog, writer
from mainspring.audit.entries import Row, stamp
from mainspring.audit.outbox import _PAGE, EVENT_TIME_US, Mirror, to_event
from mainspring.errors import StorageError
from mainspring.records import IDEMPOTENCY_KEY, Event, Outcome
from mainspring.storage import open_metadata_store
from mainspring.storage.base import EventLog
from mainspring.storage.eventcodec import encode, micros
from mainspring.storage.eventlog import SqliteEventLog
from mainspring.storage.memory import memory_event_log
from mainspring.storage.sql import SqlMetadataStore


class Crashing:
    """An event log that dies: before producing (``after=False``) or right after (``True``)."""

    def __init__(self, inner: EventLog, *, after: bool) -> None:
        self.inner = inner
        self.after = after
        self.url = inner.url

    def produce(self, events: Sequence[Event]) -> list[Event]:
        if not self.after:
            raise StorageError("event log unreachable")
        self.inner.produce(events)
        raise StorageError("the process died before moving the cursor")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def published(events: EventLog, topic: str = "decisions") -> list[str]:
    return [e.headers[IDEMPOTENCY_KEY] for e in events.read(topic, 0, 0, limit=10_000)]


def test_committed_records_are_published_in_order(store: SqlMetadataStore) -> None:
    events = memory_event_log()
    with DecisionLog(store, events=events) as log:
        for i in range(1, 6):
            log.append(decision(i, review_required=i == 2))
        log.attach_outcome(Outcome("d-1", 0, id="o-1"))
        log.review("d-2", reviewer="ann", action="accept", reason_code="ok")
    assert published(events) == ["d-1", "d-2", "d-3", "d-4", "d-5"]
    assert published(events, "decision-outcomes") == ["o-1"]
    (review,) = events.read("decision-reviews", 0, 0)
    assert review.key == "d-2" and review.payload["record"]["reason_code"] == "ok"
    first = events.read("decisions", 0, 0)[0]
    assert first.payload["seq"] == 1 and first.payload["record"]["id"] == "d-1"
    assert first.payload["hash"] == DecisionLog(store).get("d-1").hash


@pytest.mark.parametrize("after", [False, True], ids=["before-produce", "after-produce"])
def test_a_crash_while_publishing_republishes_instead_of_losing(
    store: SqlMetadataStore, after: bool
) -> None:
    events = memory_event_log()
    log = DecisionLog(store, events=Crashing(events, after=after))  # type: ignore[arg-type]
    for i in range(1, 4):
        log.append(decision(i))
    with pytest.raises(StorageError):
        log.publish_pending()
    log.close()  # its last pass fails too: the cursor stays where it was
    assert log.mirror is not None and log.mirror.cursor() == 0

    with DecisionLog(store, events=events) as reopened:  # the next process
        reopened.append(decision(4))
        reopened.publish_pending()
        assert reopened.mirror is not None and reopened.mirror.cursor() == 4
    keys = published(events)
    assert sorted(set(keys)) == ["d-1", "d-2", "d-3", "d-4"]  # nothing lost
    if after:  # published, then died: published again, with the same idempotency keys
        assert len(keys) > 4
    else:
        assert keys == ["d-1", "d-2", "d-3", "d-4"]
    assert keys[-4:] == ["d-1", "d-2", "d-3", "d-4"]


class AppendingMeanwhile:
    """An event log during whose produce calls one more decision is logged, as appends go on
    under load while the mirror publishes (at most ``limit`` of them)."""

    def __init__(self, inner: EventLog, log: DecisionLog, limit: int) -> None:
        self.inner = inner
        self.url = inner.url
        self.log = log
        self.limit = limit
        self.calls = 0

    def produce(self, events: Sequence[Event]) -> list[Event]:
        self.calls += 1
        if self.calls <= self.limit:
            self.log.append(decision(1000 + self.calls))
        return self.inner.produce(events)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_pass_stops_at_its_first_short_page(store: SqlMetadataStore) -> None:
    """A full page means more may wait: read on. A short one means caught up with the log as it
    was read: what is committed meanwhile goes with the next pass (under steady appends a pass
    that read on until a page came back empty would publish one tiny page after another, each a
    read, a produce and a cursor commit, and never end)."""
    events = memory_event_log()
    with DecisionLog(store) as log:
        for i in range(1, 8):
            log.append(decision(i))
        meanwhile = AppendingMeanwhile(events, log, limit=100)
        mirror = Mirror(store, meanwhile, page=3)  # type: ignore[arg-type]
        # pages [1 2 3] [4 5 6] [7 1001 1002] [1003]: each produce logged one more meanwhile
        assert mirror.publish_pending() == 10
        assert meanwhile.calls == 4
        assert published(events) == [f"d-{i}" for i in [1, 2, 3, 4, 5, 6, 7, 1001, 1002, 1003]]
        assert mirror.publish_pending() == 1  # d-1004, logged during the last produce
        meanwhile.limit = 0
        assert mirror.publish_pending() == 1  # d-1005
        assert mirror.publish_pending() == 0


def test_a_mirror_only_process_publishes_each_poll_as_it_comes(store: SqlMetadataStore) -> None:
    """How ``serve``'s supervisor mirrors: a thread polling with a short rest between passes,
    nobody waking it; records appended between polls reach the event log, each once."""
    events = memory_event_log()
    with DecisionLog(store) as log:  # appends without mirroring, like a serve worker
        mirror = Mirror(store, events)
        mirror.start(interval_s=0.01, rest_s=0.0)
        try:
            for i in range(1, 4):
                log.append(decision(i))
                deadline = time.monotonic() + 30
                while len(published(events)) < i and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert published(events) == [f"d-{n}" for n in range(1, i + 1)]
        finally:
            mirror.stop()
    assert mirror.cursor() == 3


def nice_of(thread: threading.Thread) -> int:
    """A thread's nice value, from /proc (Linux)."""
    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_the_mirror_runs_at_a_lower_priority_than_requests(store: SqlMetadataStore) -> None:
    mirror = Mirror(store, memory_event_log())
    mirror.start(interval_s=0.01, rest_s=0.0)
    try:
        thread = mirror._thread
        assert thread is not None and thread.native_id is not None
        deadline = time.monotonic() + 30
        while nice_of(thread) == os.nice(0) and time.monotonic() < deadline:
            time.sleep(0.01)  # the thread lowers its own priority as it starts
        assert nice_of(thread) == min(19, os.nice(0) + writer.BACKGROUND_NICE)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.nice(0)
    finally:
        mirror.stop()


# ---- both logs in SQLite files: SQLite copies the pages itself, off Python's GIL


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = open_metadata_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    assert isinstance(opened, SqlMetadataStore)
    yield opened
    opened.close()


def stored_events(events: SqliteEventLog) -> list[tuple[object, ...]]:
    with sqlite3.connect(events.path) as conn:
        return conn.execute(
            'SELECT topic, partition, "offset", id, key, event_time_us, size, headers, payload '
            'FROM events ORDER BY topic, "offset"'
        ).fetchall()


def as_python_publishes(store: SqlMetadataStore) -> list[tuple[object, ...]]:
    """The events table rows that producing ``to_event`` of every logged record makes."""
    with store.driver_read() as tx:
        rows = [Row.from_values(v) for v in tx.all(_PAGE, (0, 10_000))]
    offsets: dict[str, int] = {}
    made = []
    for row in rows:
        event = to_event(row)
        headers, payload = encode(event)
        offset = offsets[event.topic] = offsets.get(event.topic, -1) + 1
        assert event.key is not None and event.event_time is not None
        size = len(payload) + len(headers) + len(event.key)
        made.append((event.topic, 0, offset, event.id, event.key, micros(event.event_time), size,
                     headers, payload))  # fmt: skip
    return sorted(made, key=lambda r: (str(r[0]), int(str(r[2]))))


def log_some(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:  # appends without mirroring
        for i in range(1, 8):
            log.append(decision(i, review_required=i == 2, at=T0 + timedelta(microseconds=7 * i)))
        # escapes in ids and keys, text beyond ASCII, a time before 1970
        before_1970 = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
        log.append(decision(8, id='d-"8\\é/😀', at=before_1970))
        log.attach_outcome(Outcome("d-1", 0, id="o-1"))
        log.review("d-2", reviewer="ann", action="accept", reason_code="ok")


@pytest.fixture
def events(sqlite_store: SqlMetadataStore, tmp_path: Path) -> Iterator[SqliteEventLog]:
    """The embedded event log in a file of its own, and some records logged in ``sqlite_store``."""
    log_some(sqlite_store)
    opened = SqliteEventLog(tmp_path / "events.db")
    yield opened
    opened.close()


def test_sqlite_copies_the_events_python_would_publish_byte_for_byte(
    sqlite_store: SqlMetadataStore, events: SqliteEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def through_python(batch: Sequence[Event]) -> list[Event]:
        raise AssertionError("published through Python, not copied by SQLite")

    monkeypatch.setattr(events, "produce", through_python)
    mirror = Mirror(sqlite_store, events, page=3)  # four pages: the last one short
    assert mirror.publish_pending() == 10
    assert stored_events(events) == as_python_publishes(sqlite_store)
    assert mirror.cursor() == 10 and mirror.publish_pending() == 0


def test_a_topic_of_several_partitions_goes_through_python(
    sqlite_store: SqlMetadataStore, events: SqliteEventLog, caplog: pytest.LogCaptureFixture
) -> None:
    events.create_topic("decisions", partitions=2)  # keys must be hashed: Python's job
    with caplog.at_level(logging.INFO, logger="mainspring.audit"):
        assert Mirror(sqlite_store, events, page=4).publish_pending() == 10
    assert "'decisions' has 2 partitions" in caplog.text
    ids = sorted(str(r[3]) for r in stored_events(events))
    assert ids == sorted(str(r[3]) for r in as_python_publishes(sqlite_store))
    assert len(set(ids)) == 10


def test_a_crash_before_the_cursor_moves_copies_the_page_again(
    sqlite_store: SqlMetadataStore, events: SqliteEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = Mirror(sqlite_store, events, page=100)

    def dies(old: int, new: int) -> None:
        raise StorageError("the process died before moving the cursor")

    monkeypatch.setattr(mirror, "_move", dies)
    with pytest.raises(StorageError):
        mirror.publish_pending()
    monkeypatch.undo()
    assert mirror.cursor() == 0 and mirror.publish_pending() == 10  # at least once, never lost
    copies = [str(r[3]) for r in stored_events(events)]
    assert len(copies) == 20 and len(set(copies)) == 10  # consumers drop repeats by id


@pytest.mark.skipif(os.name == "nt", reason="no flock on Windows: hot writers poll")
def test_the_cursor_moves_in_its_turn_behind_the_logs_commits(
    sqlite_store: SqlMetadataStore, events: SqliteEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror moves its cursor as a hot writer: it holds the turn at the write lock while
    it does, and a move that comes while the decision log commits waits for its turn in the
    kernel and goes next, without sleeping between tries."""
    naps = recorded_naps(monkeypatch)
    mirror = Mirror(sqlite_store, events, page=100)
    turn_taken: list[bool] = []

    def traced(statement: str) -> None:
        if statement.startswith("UPDATE decision_outbox"):
            turn_taken.append(not turn_is_free(sqlite_store))

    mirror._connection().connection.dbapi_connection.set_trace_callback(traced)
    inside, order = threading.Event(), []

    def commit_slowly() -> None:
        with sqlite_store.hot_writer() as conn, sqlite_store.driver_write(conn, "t"):
            inside.set()
            time.sleep(0.1)
            order.append("log")

    writer_thread = threading.Thread(target=commit_slowly)
    writer_thread.start()
    inside.wait()
    assert mirror.publish_pending() == 10
    order.append("cursor")
    writer_thread.join()
    assert order == ["log", "cursor"] and naps == []
    assert turn_taken == [True] and mirror.cursor() == 10


@given(st.text(max_size=40))
def test_sqlite_quotes_strings_as_orjson_does(text: str) -> None:
    with sqlite3.connect(":memory:") as conn:
        (quoted,) = conn.execute("SELECT json_quote(?)", (text,)).fetchone()
    assert quoted == orjson.dumps(text).decode()


@given(st.datetimes(timezones=st.just(UTC)))
def test_sqlite_reads_the_event_time_from_at_as_python_does(when: datetime) -> None:
    with sqlite3.connect(":memory:") as conn:
        at = stamp(when)
        (us,) = conn.execute(f"SELECT {EVENT_TIME_US} FROM (SELECT ? AS at)", (at,)).fetchone()
    assert us == micros(datetime.fromisoformat(at))


def test_one_sqlite_file_for_both_logs_publishes_through_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'all.db'}")
    assert isinstance(store, SqlMetadataStore)
    log_some(store)
    events = SqliteEventLog(tmp_path / "all.db")  # its tables beside the decision log's

    def attached_to_itself(*args: object) -> tuple[int, int | None]:
        raise AssertionError("the file would be attached to itself: it waits for its own lock")

    monkeypatch.setattr(events, "append_selected", attached_to_itself)
    assert Mirror(store, events).publish_pending() == 10
    assert stored_events(events) == as_python_publishes(store)
    events.close()
    store.close()
