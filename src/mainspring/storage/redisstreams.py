"""The Redis Streams event log (redis-py, extra ``redis``).

``redis+streams://host:port/db?prefix=mainspring:events:`` opens one (``rediss+streams://`` for
TLS; a password goes in the URI as ``redis+streams://:password@host:port/db``). Every key the log
uses starts with ``prefix``, so several logs can share one Redis database.

Layout, for topic ``T`` and partition ``P`` (names cannot contain ``:``, so keys are unambiguous):

- ``<prefix>p:T:P`` is the partition: one stream. **Offset N is the entry with id ``N-1``**
  (:mod:`~mainspring.storage.redisentries` describes an entry's fields). Reading from offset N is
  ``XRANGE <key> N +``; retention is ``XTRIM <key> MINID N``. Offsets are consecutive within a
  partition; trimming only ever removes a prefix.
- ``<prefix>s:T:P`` holds the partition's state (next offset, running maximum event time,
  bytes appended, last append time), ``<prefix>topics`` the partition count of every topic and
  ``<prefix>retention`` their retention settings.

A produce is one Lua script per batch (up to :data:`SCRIPT_EVENTS` events), so each batch is
appended atomically, and it is **idempotent**: the script first looks up a token that is a digest
of the batch (topics, ids, keys, times, headers, payloads) and, when the same batch was appended
within ``dedupe_window_s``, returns the offsets it got then instead of appending it again. A
connection lost after Redis ran the script but before the answer came is retried with the same
token, for up to ``delivery_timeout_s``; then :meth:`RedisStreamsEventLog.produce` raises
:class:`~mainspring.errors.StorageError` naming how many events were not acknowledged.

:meth:`~RedisStreamsEventLog.offset_at` is a binary search on ``m`` (Kafka's time index idea:
the first offset whose event time is at or after T is the first whose running maximum is), run
inside Redis. Retention by age searches ``a`` and by size ``c`` the same way, then trims the
prefix with ``XTRIM MINID``; it runs from ``produce`` every few seconds and on demand
(:meth:`~RedisStreamsEventLog.enforce_retention`).

Consumer groups (``redisgroup.py``) keep committed offsets in ``<prefix>g:<group>:o:T`` and the
members in ``<prefix>g:<group>:members`` (a sorted set of session expiry times). They do not use
Redis's own consumer groups (XREADGROUP), which hand out single entries rather than partitions
and cannot rewind one member to an offset.

Durability is Redis's: an acknowledged produce is in the server's memory and, with
``appendonly yes`` and ``appendfsync always``, on its disk. One Redis server (or a primary with
replicas) holds the whole log; Redis Cluster is not supported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mainspring.errors import ConfigError, InvalidInputError, NotFoundError, StorageError
from mainspring.records import Event, check_name
from mainspring.storage.base import partition_for
from mainspring.storage.eventcodec import encode, micros
from mainspring.storage.redisclient import RedisGuard, redis_module, streams_url_options
from mainspring.storage.redisentries import entry_offset, event_of
from mainspring.storage.redisscripts import OFFSET_AT, PRODUCE, RETAIN

if TYPE_CHECKING:
    from mainspring.storage.redisgroup import RedisStreamsConsumer

logger = logging.getLogger("mainspring.events")

#: Events per produce script: a script blocks Redis while it runs, so long batches are split.
SCRIPT_EVENTS = 2000
#: How often retention runs at most, from ``produce``.
RETENTION_EVERY_S = 5.0
DEFAULT_PREFIX = "mainspring:events:"


class RedisStreamsEventLog:
    """An :class:`~mainspring.storage.base.EventLog` on Redis Streams: one stream per partition."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        session_timeout_s: float = 10.0,
        delivery_timeout_s: float = 10.0,
        dedupe_window_s: float = 300.0,
        socket_timeout_s: float = 30.0,
    ) -> None:
        redis = redis_module()
        if session_timeout_s <= 0 or dedupe_window_s <= 0 or delivery_timeout_s < 0:
            raise ConfigError(
                "session_timeout_s and dedupe_window_s must be positive, delivery_timeout_s "
                "not negative",
                key="events",
            )
        self.redis_url = url
        self.prefix = prefix
        scheme, _, rest = url.partition("://")
        self.where = rest.split("@")[-1]  # host:port/db, for messages: no password
        self.url = f"{scheme}+streams://{self.where}" + (
            "" if prefix == DEFAULT_PREFIX else f"?prefix={prefix}"
        )
        self.session_timeout_s = session_timeout_s
        self.delivery_timeout_s = delivery_timeout_s
        self.dedupe_window_s = dedupe_window_s
        self.errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.lost: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
        try:
            # no retries inside redis-py: produce retries itself (idempotently), everything else
            # raises StorageError at once so a worker backs off
            self.client: Any = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=min(5.0, socket_timeout_s),
                retry=redis.retry.Retry(redis.backoff.NoBackoff(), 0),
                health_check_interval=30,
            )
        except (ValueError, *self.errors) as exc:
            raise StorageError(f"event log {self.url} cannot be opened: {exc}") from exc
        self._produce = self.client.register_script(PRODUCE)
        self._offset_at = self.client.register_script(OFFSET_AT)
        self._retain = self.client.register_script(RETAIN)
        self._known: dict[str, int] = {}
        self._spread = itertools.count()
        self._last_retention = 0.0
        self._lock = threading.Lock()

    # -- keys --------------------------------------------------------------------------------

    def stream_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}p:{topic}:{partition}"

    def state_key(self, topic: str, partition: int) -> str:
        return f"{self.prefix}s:{topic}:{partition}"

    def offsets_key(self, group: str, topic: str) -> str:
        return f"{self.prefix}g:{group}:o:{topic}"

    def members_key(self, group: str) -> str:
        return f"{self.prefix}g:{group}:members"

    def guard(self, what: str) -> RedisGuard:
        return RedisGuard(what, self.where, self.lost, self.errors)

    # -- topics ------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        check_name(name, field="topic")
        if partitions < 1:
            raise InvalidInputError("a topic needs at least one partition", field="partitions")
        self._create(name, partitions, retention_ms, retention_bytes)

    def _create(
        self,
        name: str,
        partitions: int,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> int:
        with self.guard("create a topic"):
            created = self.client.hsetnx(f"{self.prefix}topics", name, partitions)
            if created and (retention_ms is not None or retention_bytes is not None):
                setting = json.dumps({"ms": retention_ms, "bytes": retention_bytes})
                self.client.hset(f"{self.prefix}retention", name, setting)
            n = int(self.client.hget(f"{self.prefix}topics", name))
        self._known[name] = n
        return n

    def partitions(self, topic: str) -> int:
        if topic in self._known:  # a topic's partition count never changes
            return self._known[topic]
        with self.guard("read a topic"):
            found = self.client.hget(f"{self.prefix}topics", topic)
        if found is None:
            raise NotFoundError("topic", topic, "produce to it or create it with create_topic")
        self._known[topic] = int(found)
        return self._known[topic]

    def topics(self) -> list[str]:
        """Every topic, sorted."""
        with self.guard("list topics"):
            return sorted(t.decode() for t in self.client.hkeys(f"{self.prefix}topics"))

    # -- producing ---------------------------------------------------------------------------

    def produce(self, events: Sequence[Event]) -> list[Event]:
        batch = list(events)
        encoded = [encode(e) for e in batch]  # refuses bad payloads before anything is written
        counts: dict[str, int] = {}
        for event in batch:
            if event.topic not in counts:
                try:
                    counts[event.topic] = self.partitions(event.topic)
                except NotFoundError:
                    counts[event.topic] = self._create(event.topic, 1)
        out: list[Event] = []
        for start in range(0, len(batch), SCRIPT_EVENTS):
            chunk = slice(start, start + SCRIPT_EVENTS)
            try:
                out += self._produce_chunk(batch[chunk], encoded[chunk], counts)
            except StorageError as exc:
                raise StorageError(
                    f"Redis at {self.where} did not acknowledge {len(batch) - len(out)} of "
                    f"{len(batch)} events ({exc}); they may or may not be in the log: produce "
                    "them again (the same batch within the dedupe window is not appended twice; "
                    "consumers dedupe by idempotency key)"
                ) from exc
        if out:
            self._maybe_retain()
        return out

    def _produce_chunk(
        self, batch: list[Event], encoded: list[tuple[str, str]], counts: dict[str, int]
    ) -> list[Event]:
        places: dict[tuple[str, int], int] = {}  # (topic, partition) -> its index in the script
        keys = [""]
        args: list[str | int] = [int(self.dedupe_window_s * 1000)]
        digest = hashlib.blake2b(digest_size=16)
        where: list[tuple[int, int]] = []
        for event, (headers, payload) in zip(batch, encoded, strict=True):
            n = counts[event.topic]
            partition = (
                partition_for(event.key, n) if event.key is not None else next(self._spread) % n
            )
            place = places.get((event.topic, partition))
            if place is None:
                place = places[(event.topic, partition)] = len(places) + 1
                keys += [self.stream_key(event.topic, partition)]
                keys += [self.state_key(event.topic, partition)]
            key = "" if event.key is None else "=" + event.key
            event_us = micros(event.event_time)
            # as the embedded log counts (its JSON is ASCII): retention_bytes means the same
            size = len(payload) + len(headers) + len((event.key or "").encode())
            args += [place, event.id, key, event_us, size, headers, payload]
            for part in (event.topic, event.id, key, str(event_us), headers, payload):
                digest.update(part.encode())
                digest.update(b"\x1f")
            where.append((partition, place))
        keys[0] = f"{self.prefix}b:{digest.hexdigest()}"
        firsts = self._run_produce(keys, args)
        nexts = {place: int(first) for place, first in enumerate(firsts, start=1)}
        out = []
        for event, (partition, place) in zip(batch, where, strict=True):
            out.append(replace(event, partition=partition, offset=nexts[place]))
            nexts[place] += 1
        return out

    def _run_produce(self, keys: list[str], args: list[str | int]) -> list[int]:
        deadline = time.monotonic() + self.delivery_timeout_s
        attempt = 0
        while True:
            try:
                return [int(first) for first in self._produce(keys=keys, args=args)]
            except self.lost as exc:
                # the script may have run: the same token makes the retry return its offsets
                if time.monotonic() >= deadline:
                    raise StorageError(f"the connection failed: {exc}") from exc
                time.sleep(min(0.05 * 2**attempt, 1.0, max(0.0, deadline - time.monotonic())))
                attempt += 1
            except self.errors as exc:
                raise StorageError(f"Redis refused the batch: {exc}") from exc

    # -- reading -----------------------------------------------------------------------------

    def read(self, topic: str, partition: int, offset: int, limit: int = 500) -> list[Event]:
        if limit <= 0:
            return []
        with self.guard("read events"):
            entries = self.client.xrange(
                self.stream_key(topic, partition), f"{max(offset, 0)}-0", "+", count=limit
            )
        return [event_of(topic, partition, i, fields) for i, fields in entries]

    def offset_at(self, topic: str, partition: int, when: datetime) -> int:
        when_us = micros(when)
        keys = [self.stream_key(topic, partition), self.state_key(topic, partition)]
        with self.guard("find an offset"):
            found = int(self._offset_at(keys=keys, args=[when_us]))
        if found >= 0:
            return found
        # an event before the retained ones had a later time than the first retained one: the
        # running maximum cannot answer, so look at the retained events themselves
        low, high = self.watermarks(topic)[partition]
        position = low
        while position < high:
            events = self.read(topic, partition, position, 1000)
            if not events:
                break
            for event in events:
                if micros(event.event_time) >= when_us:
                    return event.offset or 0
            position = (events[-1].offset or 0) + 1
        return high

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        n = self.partitions(topic)
        with self.guard("read offsets"):
            pipe = self.client.pipeline(transaction=True)
            for p in range(n):
                pipe.xrange(self.stream_key(topic, p), "-", "+", count=1)
                pipe.hget(self.state_key(topic, p), "next")
            replies = pipe.execute()
        marks = {}
        for p in range(n):
            first, high = replies[2 * p], int(replies[2 * p + 1] or 0)
            marks[p] = (entry_offset(first[0][0]) if first else high, high)
        return marks

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self.guard("read committed offsets"):
            found = self.client.hgetall(self.offsets_key(group, topic))
        return dict(sorted((int(p), int(o)) for p, o in found.items()))

    def consumer(self, group: str, topics: Sequence[str]) -> RedisStreamsConsumer:
        from mainspring.storage.redisgroup import RedisStreamsConsumer

        check_name(group, field="group")
        for topic in topics:
            check_name(topic, field="topic")
        return RedisStreamsConsumer(self, group, list(topics))

    # -- retention ---------------------------------------------------------------------------

    def _maybe_retain(self) -> None:
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = time.monotonic()
            try:
                self.enforce_retention()
            except StorageError as exc:  # the events are written: report, do not fail them
                logger.warning("retention of %s failed: %s", self.url, exc)

    def enforce_retention(self, now: datetime | None = None) -> int:
        """Drop events past their topic's retention (age, then size per partition); returns how
        many. Runs by itself from :meth:`produce` every few seconds. Age is measured from the
        append time on the Redis server's clock, to ``now`` (default: the server's clock)."""
        now_arg = str(micros(now) // 1000) if now is not None else ""
        removed = 0
        with self.guard("enforce retention"):
            settings = self.client.hgetall(f"{self.prefix}retention")
            for raw_topic, raw in sorted(settings.items()):
                topic, setting = raw_topic.decode(), json.loads(raw)
                age = "" if setting["ms"] is None else str(setting["ms"])
                size = "" if setting["bytes"] is None else str(setting["bytes"])
                for p in range(self.partitions(topic)):
                    keys = [self.stream_key(topic, p), self.state_key(topic, p)]
                    removed += int(self._retain(keys=keys, args=[now_arg, age, size]))
        return removed

    def close(self) -> None:
        self.client.close()


def open_redis_streams_event_log(url: str) -> RedisStreamsEventLog:
    """Open ``redis+streams://host:port/db`` (``rediss+streams://`` for TLS) with the options
    ``prefix``, ``session_timeout_s``, ``delivery_timeout_s``, ``dedupe_window_s`` and
    ``socket_timeout_s`` in the query string."""
    redis_url, options = streams_url_options(url)
    return RedisStreamsEventLog(redis_url, **options)
