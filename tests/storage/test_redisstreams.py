"""What only the Redis Streams event log does: the offset-to-entry-id mapping, idempotent
produce, retention by age and size, replay by time over out-of-order event times, URI options."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.errors import ConfigError, InvalidInputError
from mainspring.records import Event, utcnow
from mainspring.storage import open_event_log
from mainspring.storage.base import partition_for
from mainspring.storage.memory import memory_event_log
from mainspring.storage.redisstreams import RedisStreamsEventLog

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def log(redis_url: str) -> Iterator[RedisStreamsEventLog]:
    event_log = RedisStreamsEventLog(redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    yield event_log
    event_log.close()


def test_offset_n_is_the_stream_entry_n_1(log: RedisStreamsEventLog) -> None:
    log.create_topic("t", partitions=1)
    log.produce([Event("t", {"n": n}, key="k") for n in range(3)])
    entries = log.client.xrange(f"{log.prefix}p:t:0")
    assert [entry_id for entry_id, _ in entries] == [b"0-1", b"1-1", b"2-1"]
    assert entries[1][1][b"p"] == b'{"n":1}' and entries[1][1][b"k"] == b"k"


def test_the_same_batch_is_appended_once(log: RedisStreamsEventLog) -> None:
    batch = [Event("t", {"n": n}, key=f"k{n}") for n in range(5)]
    first = log.produce(batch)
    again = log.produce(batch)  # a retry after a lost answer, say
    assert again == first
    assert log.watermarks("t") == {0: (0, 5)}
    other = log.produce(batch[:2])  # a different batch is a different produce
    assert [e.offset for e in other] == [5, 6]


def test_a_batch_is_all_or_nothing_when_a_payload_is_bad(log: RedisStreamsEventLog) -> None:
    with pytest.raises(InvalidInputError, match="not JSON"):
        log.produce([Event("t", {"ok": 1}), Event("t", {"bad": float("nan")})])
    log.produce([Event("t", {"ok": 2})])
    assert [e.payload for e in log.read("t", 0, 0)] == [{"ok": 2}]


def test_long_batches_are_split_into_scripts_and_keep_their_order(
    log: RedisStreamsEventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mainspring.storage.redisstreams.SCRIPT_EVENTS", 7)
    log.create_topic("t", partitions=2)
    sent = log.produce([Event("t", {"n": n}, key=f"k{n % 3}") for n in range(30)])
    stored = [e for p in range(2) for e in log.read("t", p, 0, limit=100)]
    assert sorted((e.partition, e.offset, e.id) for e in sent) == [
        (e.partition, e.offset, e.id) for e in stored
    ]
    for p in range(2):
        assert [e.offset for e in stored if e.partition == p] == list(
            range(len([e for e in sent if e.partition == p]))
        )


def test_retention_by_size_keeps_the_newest_as_the_embedded_log_does(
    log: RedisStreamsEventLog,
) -> None:
    twin = memory_event_log()
    events = [Event("t", {"n": n, "pad": "x" * (n % 13)}, key=f"k-{n}") for n in range(40)]
    for each in (log, twin):
        each.create_topic("t", retention_bytes=300)
        each.produce(events)
    log.enforce_retention()  # produce runs it too, every few seconds
    twin.enforce_retention()
    assert log.watermarks("t") == twin.watermarks("t")
    low, high = log.watermarks("t")[0]
    assert high == 40 and 0 < low < 40
    assert [e.offset for e in log.read("t", 0, 0, limit=100)] == list(range(low, high))
    assert log.enforce_retention() == 0
    twin.close()


def test_retention_by_age(log: RedisStreamsEventLog) -> None:
    log.create_topic("t", retention_ms=60_000)
    log.create_topic("forever")
    log.produce([Event("t", {}), Event("forever", {})])
    assert log.enforce_retention(utcnow() + timedelta(seconds=30)) == 0
    assert log.enforce_retention(utcnow() + timedelta(minutes=2)) == 1
    assert log.watermarks("t") == {0: (1, 1)}
    assert log.watermarks("forever") == {0: (0, 1)}
    [after] = log.produce([Event("t", {"n": 1})])  # offsets go on after an emptied partition
    assert after.offset == 1


def test_replay_by_time_when_an_earlier_event_was_later_and_is_trimmed(
    log: RedisStreamsEventLog,
) -> None:
    minutes = [9, 1, 2, 3]
    log.create_topic("t", retention_bytes=3 * len('{"m":1}{}'))  # payload and headers
    log.produce([Event("t", {"m": m}, event_time=START + timedelta(minutes=m)) for m in minutes])
    log.enforce_retention()
    assert log.watermarks("t") == {0: (1, 4)}
    assert log.offset_at("t", 0, START + timedelta(minutes=2)) == 2
    assert log.offset_at("t", 0, START) == 1
    assert log.offset_at("t", 0, START + timedelta(minutes=10)) == 4


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    minutes=st.lists(st.integers(0, 20), min_size=1, max_size=25),
    trimmed=st.integers(0, 25),
    at=st.integers(-1, 22),
)
def test_offset_at_is_the_first_retained_event_at_or_after_the_time(
    log: RedisStreamsEventLog, minutes: list[int], trimmed: int, at: int
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    log.produce([Event(topic, {}, event_time=START + timedelta(minutes=m)) for m in minutes])
    trimmed = min(trimmed, len(minutes))
    log.client.xtrim(log.stream_key(topic, 0), minid=f"{trimmed}-1", approximate=False)
    expected = next((o for o in range(trimmed, len(minutes)) if minutes[o] >= at), len(minutes))
    assert log.offset_at(topic, 0, START + timedelta(minutes=at)) == expected


def test_uri_options() -> None:
    log = open_event_log(
        "redis+streams://127.0.0.1:1/3?prefix=app:&session_timeout_s=4&delivery_timeout_s=2"
    )
    assert isinstance(log, RedisStreamsEventLog)
    assert (log.redis_url, log.prefix, log.session_timeout_s, log.delivery_timeout_s) == (
        "redis://127.0.0.1:1/3",
        "app:",
        4.0,
        2.0,
    )
    assert log.url == "redis+streams://127.0.0.1:1/3?prefix=app:"
    log.close()
    with pytest.raises(ConfigError, match="unknown options"):
        open_event_log("redis+streams://127.0.0.1:1/0?maxlen=5")
    with pytest.raises(ConfigError, match="number of seconds"):
        open_event_log("redis+streams://127.0.0.1:1/0?session_timeout_s=soon")
    with pytest.raises(ConfigError, match="names no Redis server"):
        open_event_log("redis+streams://")


def test_a_poll_takes_an_equal_share_of_every_partition_with_a_backlog(
    log: RedisStreamsEventLog,
) -> None:
    log.create_topic("t", partitions=4)
    keys = {partition_for(f"k{n}", 4): f"k{n}" for n in range(100)}  # one key per partition
    log.produce([Event("t", {}, key=keys[p]) for p in range(4) for _ in range(10)])
    consumer = log.consumer("g", ["t"])
    batch = consumer.poll(8, 1.0)
    assert [sum(e.partition == p for e in batch) for p in range(4)] == [2, 2, 2, 2]
    # a partition with more than its share fills what the others could not
    consumer.seek("t", 0, 0)
    for p in (1, 2, 3):
        consumer.seek("t", p, 10)
    assert [e.offset for e in consumer.poll(8, 1.0)] == list(range(8))
    consumer.close()
