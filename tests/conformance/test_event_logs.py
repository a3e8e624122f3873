"""One suite over every event log backend: in memory, embedded (SQLite), Apache Kafka and Redis
Streams."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mainspring.errors import NotFoundError
from mainspring.records import IDEMPOTENCY_KEY, SCHEMA_VERSION, TRACE_ID, Event
from mainspring.storage.base import EventConsumer, EventLog, partition_for
from mainspring.storage.eventlog import SqliteEventLog
from mainspring.storage.memory import memory_event_log

#: How long a test waits for a consumer group to settle (generous: Kafka rebalances, slow CI).
SETTLE_S = 90.0


@pytest.fixture(
    params=[
        "memory",
        "embedded",
        pytest.param("kafka", marks=pytest.mark.service),
        pytest.param("redis-streams", marks=pytest.mark.service),
    ],
)
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    event_log: EventLog
    if request.param == "memory":
        event_log = memory_event_log()
    elif request.param == "embedded":
        event_log = SqliteEventLog(tmp_path / "events.db", session_timeout_s=3)
    elif request.param == "kafka":
        from mainspring.storage.kafka import KafkaEventLog

        event_log = KafkaEventLog(request.getfixturevalue("kafka_bootstrap"))
    else:
        from mainspring.storage.redisstreams import RedisStreamsEventLog

        event_log = RedisStreamsEventLog(request.getfixturevalue("redis_url"), session_timeout_s=3)
    yield event_log
    event_log.close()


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def drain(consumer: EventConsumer, count: int) -> list[Event]:
    """Poll until ``count`` events came (or the settle time is over: then the test fails)."""
    got: list[Event] = []
    deadline = time.monotonic() + SETTLE_S
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(500, 0.5)
    return got


def test_is_an_event_log(log: EventLog) -> None:
    assert isinstance(log, EventLog)


def test_offsets_are_consecutive_and_order_holds_per_partition(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=3)
    sent = log.produce([Event(topic, {"n": n}, key=f"k{n % 7}") for n in range(60)])
    assert [e.payload["n"] for e in sent] == list(range(60))
    marks = log.watermarks(topic)
    assert sorted(marks) == [0, 1, 2]
    assert sum(high - low for low, high in marks.values()) == 60
    for partition, (low, high) in marks.items():
        stored = log.read(topic, partition, low, limit=1000)
        assert [e.offset for e in stored] == list(range(low, high))
        mine = [e for e in sent if e.partition == partition]
        assert [e.id for e in stored] == [e.id for e in mine]


def test_a_key_always_goes_to_its_partition(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=4)
    sent = log.produce([Event(topic, {"n": n}, key=f"customer-{n % 9}") for n in range(45)])
    for event in sent:
        assert event.key is not None
        assert event.partition == partition_for(event.key, 4)


def test_events_round_trip_with_headers(log: EventLog, topic: str) -> None:
    when = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    event = Event(
        topic,
        {"amount": 12.5, "items": [1, "two", None], "nested": {"ok": True}},
        key="c-1",
        event_time=when,
        headers={IDEMPOTENCY_KEY: "order-17", TRACE_ID: "abc123", SCHEMA_VERSION: "2", "x": "ü"},
    )
    [sent] = log.produce([event])
    [stored] = log.read(topic, sent.partition or 0, sent.offset or 0, limit=1)
    assert stored == sent
    assert stored.event_time == when
    assert (stored.idempotency_key, stored.trace_id, stored.schema_version) == (
        "order-17",
        "abc123",
        2,
    )


def test_unknown_topic_is_not_found_until_produced_to(log: EventLog, topic: str) -> None:
    with pytest.raises(NotFoundError):
        log.partitions(topic)
    log.produce([Event(topic, {})])
    assert log.partitions(topic) == 1


def test_group_resumes_from_its_committed_offset(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=2)
    log.produce([Event(topic, {"n": n}, key=str(n)) for n in range(20)])
    first = log.consumer("g", [topic])
    got = drain(first, 20)
    assert len(got) == 20
    done = [e for e in got if e.payload["n"] < 10]
    first.commit(done)
    first.close()
    expected = {
        p: max(e.offset or 0 for e in done if e.partition == p) + 1
        for p in {e.partition or 0 for e in done}
    }
    assert log.committed("g", topic) == expected

    second = log.consumer("g", [topic])
    rest = drain(second, 20 - len(done))
    second.close()
    # everything not committed comes again (and, per partition, nothing before the commit)
    assert {e.id for e in rest} >= {e.id for e in got} - {e.id for e in done}
    for event in rest:
        assert (event.offset or 0) >= expected.get(event.partition or 0, 0)


def test_uncommitted_events_are_delivered_again(log: EventLog, topic: str) -> None:
    log.produce([Event(topic, {"n": n}) for n in range(5)])
    consumer = log.consumer("g", [topic])
    assert len(drain(consumer, 5)) == 5
    consumer.close()  # a crash before commit
    again = log.consumer("g", [topic])
    assert [e.payload["n"] for e in drain(again, 5)] == list(range(5))
    again.close()


def test_members_of_a_group_share_the_partitions(log: EventLog, topic: str) -> None:
    log.create_topic(topic, partitions=4)
    a, b = log.consumer("g", [topic]), log.consumer("g", [topic])
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        a.poll(100, 0.2)
        b.poll(100, 0.2)
        mine, theirs = set(a.assignment()), set(b.assignment())
        if mine and theirs and not mine & theirs and len(mine | theirs) == 4:
            break
    assert mine and theirs and not mine & theirs
    assert mine | theirs == {(topic, p) for p in range(4)}
    b.close()
    a.close()


def test_replay_from_an_offset(log: EventLog, topic: str) -> None:
    log.produce([Event(topic, {"n": n}) for n in range(10)])
    consumer = log.consumer("g", [topic])
    assert len(drain(consumer, 10)) == 10
    consumer.seek(topic, 0, 4)
    assert [e.payload["n"] for e in drain(consumer, 6)] == list(range(4, 10))
    consumer.close()


def test_replay_from_a_time(log: EventLog, topic: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    log.produce(
        [Event(topic, {"n": n}, event_time=start + timedelta(minutes=n)) for n in range(10)]
    )
    assert log.offset_at(topic, 0, start + timedelta(minutes=6)) == 6
    assert log.offset_at(topic, 0, start - timedelta(days=1)) == 0
    assert log.offset_at(topic, 0, start + timedelta(days=1)) == 10
    consumer = log.consumer("g", [topic])
    drain(consumer, 10)
    consumer.seek(topic, 0, log.offset_at(topic, 0, start + timedelta(minutes=7, seconds=30)))
    assert [e.payload["n"] for e in drain(consumer, 2)] == [8, 9]
    consumer.close()
