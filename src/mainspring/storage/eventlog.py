"""The embedded event log: partitioned topics in their own SQLite file.

The file is in WAL mode with ``synchronous=FULL``, so an acknowledged :meth:`SqliteEventLog.produce`
is on disk. A batch is one transaction (group commit: one fsync for many events), and concurrent
producers in one process are combined into shared transactions. Writers take the database lock at
``BEGIN IMMEDIATE``; offsets are allocated inside it, so several processes may produce at once.

Consumer groups live in the same file: committed offsets, and the members of each group with a
heartbeat. Every member computes the same assignment (the group's live members in id order take
the partitions round-robin), so members in several processes share a topic's partitions without
a coordinator; a member that stops heartbeating (``kill -9``) loses its partitions after
``session_timeout_s``.

``sqlite:///path/events.db?session_timeout_s=10`` opens one; ``sqlite://`` is in memory.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from mainspring.errors import (
    ConfigError,
    InvalidInputError,
    MainspringError,
    NotFoundError,
    StorageError,
)
from mainspring.records import Event, check_name
from mainspring.storage.base import partition_for

if TYPE_CHECKING:
    from mainspring.storage.eventgroup import SqliteConsumer

logger = logging.getLogger("mainspring.events")

BUSY_TIMEOUT_S = 60.0
#: How often retention runs at most, from ``produce``.
RETENTION_EVERY_S = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    retention_ms INTEGER,
    retention_bytes INTEGER
);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    id TEXT NOT NULL,
    key TEXT,
    event_time_us INTEGER NOT NULL,
    appended_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    headers TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (topic, partition, event_time_us);
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
    grp TEXT NOT NULL,
    member TEXT NOT NULL,
    topics TEXT NOT NULL,
    heartbeat_ms INTEGER NOT NULL,
    PRIMARY KEY (grp, member)
) WITHOUT ROWID;
"""


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        raise InvalidInputError("times must be timezone-aware (UTC)", field="when")
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


#: A run of digits that may be an integer beyond 64 bits (orjson would read it as a float).
_LONG_NUMBER = re.compile(r"\d{19}")


def _loads(text: str) -> Any:
    """Parse stored JSON with orjson (several times faster on the read path); text with very
    long numbers goes to the standard library, which keeps big integers exact.

    >>> _loads('{"n": 1, "big": 123456789012345678901234}')
    {'n': 1, 'big': 123456789012345678901234}
    """
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    return orjson.loads(text)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


#: Built once: ``json.dumps`` with options builds a new encoder on every call.
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: A keyed event's partition; keys repeat (customers, cards), murmur2 in Python does not need to.
_partition_for = functools.lru_cache(maxsize=1 << 16)(partition_for)


def _encode(event: Event) -> tuple[str, str]:
    check_name(event.topic, field="topic")
    try:
        payload = _dumps(event.payload)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"event payload is not JSON ({exc}); send numbers, strings, lists and maps",
            field="payload",
        ) from None
    return (_dumps(dict(event.headers)) if event.headers else "{}"), payload


class _Batch:
    """One produce() call waiting for a shared transaction."""

    __slots__ = ("done", "encoded", "error", "events", "result")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        # (headers, payload) as JSON, made before the shared transaction: one producer's bad
        # payload must not fail the others' batches
        self.encoded = [_encode(e) for e in events]
        self.result: list[Event] = []
        self.error: MainspringError | None = None
        self.done = False


class SqliteEventLog:
    """An :class:`~mainspring.storage.base.EventLog` in a SQLite file (``path=":memory:"``: in
    memory).

    >>> log = SqliteEventLog(":memory:")
    >>> log.create_topic("orders", partitions=2)
    >>> [e.offset for e in log.produce([Event("orders", {"n": i}, key="a") for i in range(3)])]
    [0, 1, 2]
    """

    def __init__(self, path: str | Path, *, session_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        self.memory = self.path == ":memory:"
        self.url = "sqlite://" if self.memory else f"sqlite:///{self.path}"
        self.session_timeout_s = session_timeout_s
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            if not self.memory:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")  # acknowledged means durable
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            with self._write() as conn:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the event log {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._spread = itertools.count()
        self._last_retention = 0.0
        # group commit: produce() calls from several threads share one transaction
        self._pending: list[_Batch] = []
        self._flushing = False
        self._flushed = threading.Condition(threading.Lock())

    # -- transactions ------------------------------------------------------------------------

    class _Tx:
        def __init__(self, conn: sqlite3.Connection, begin: str) -> None:
            self.conn, self.begin = conn, begin

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute(self.begin)
            return self.conn

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")

    def _write(self) -> SqliteEventLog._Tx:
        return SqliteEventLog._Tx(self._conn, "BEGIN IMMEDIATE")

    def _read(self) -> SqliteEventLog._Tx:
        return SqliteEventLog._Tx(self._conn, "BEGIN")

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
        with self._lock, self._guard("create a topic"), self._write() as conn:
            self._create(conn, name, partitions, retention_ms, retention_bytes)

    def _create(
        self,
        conn: sqlite3.Connection,
        name: str,
        partitions: int,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> int:
        row = conn.execute("SELECT partitions FROM topics WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return int(row[0])
        conn.execute(
            "INSERT INTO topics VALUES (?, ?, ?, ?)",
            (name, partitions, retention_ms, retention_bytes),
        )
        conn.executemany(
            "INSERT INTO partitions VALUES (?, ?, 0)", [(name, p) for p in range(partitions)]
        )
        return partitions

    def partitions(self, topic: str) -> int:
        with self._lock, self._guard("read a topic"):
            row = self._conn.execute(
                "SELECT partitions FROM topics WHERE name = ?", (topic,)
            ).fetchone()
        if row is None:
            raise NotFoundError("topic", topic, "produce to it or create it with create_topic")
        return int(row[0])

    def topics(self) -> list[str]:
        """Every topic, sorted."""
        with self._lock, self._guard("list topics"):
            return [r[0] for r in self._conn.execute("SELECT name FROM topics ORDER BY name")]

    # -- producing ---------------------------------------------------------------------------

    def produce(self, events: Sequence[Event]) -> list[Event]:
        batch = _Batch(list(events))
        if not batch.events:
            return []
        with self._flushed:
            self._pending.append(batch)
            while self._flushing and not batch.done:
                self._flushed.wait()
            if not batch.done:  # lead: write every waiting batch in one transaction
                self._flushing = True
                work, self._pending = self._pending, []
        if not batch.done:
            try:
                self._flush(work)
            finally:
                with self._flushed:
                    for b in work:
                        b.done = True
                    self._flushing = False
                    self._flushed.notify_all()
        if batch.error is not None:
            raise batch.error
        return batch.result

    def _flush(self, work: list[_Batch]) -> None:
        """Write several producers' batches in one transaction (one fsync)."""
        try:
            with self._lock, self._guard("append events"), self._write() as conn:
                results = [self._append(conn, b) for b in work]
        except StorageError as exc:  # every waiting producer learns of it
            for b in work:
                b.error = exc
            return
        for b, result in zip(work, results, strict=True):
            b.result = result
        try:
            self._maybe_retain()
        except StorageError as exc:  # the batches are written: report, do not fail them
            logger.warning("retention of %s failed: %s", self.path, exc)

    def _append(self, conn: sqlite3.Connection, batch: _Batch) -> list[Event]:
        counts: dict[str, int] = {}
        next_offsets: dict[tuple[str, int], int] = {}
        rows = []
        out = []
        now = _now_ms()
        for event, (headers, payload) in zip(batch.events, batch.encoded, strict=True):
            if event.topic not in counts:
                counts[event.topic] = self._create(conn, event.topic, 1)
            n = counts[event.topic]
            if event.key is not None:
                partition = _partition_for(event.key, n)
            else:
                partition = next(self._spread) % n
            tp = (event.topic, partition)
            if tp not in next_offsets:
                next_offsets[tp] = conn.execute(
                    "SELECT next_offset FROM partitions WHERE topic = ? AND partition = ?", tp
                ).fetchone()[0]
            offset = next_offsets[tp]
            next_offsets[tp] = offset + 1
            size = len(payload) + len(headers) + len(event.key or "")
            rows.append(
                (
                    event.topic,
                    partition,
                    offset,
                    event.id,
                    event.key,
                    _micros(event.event_time),
                    now,
                    size,
                    headers,
                    payload,
                )
            )
            out.append(
                Event(
                    event.topic,
                    event.payload,
                    event.key,
                    event.event_time,
                    event.headers,
                    event.id,
                    partition,
                    offset,
                )
            )  # positional: several times faster than dataclasses.replace
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "UPDATE partitions SET next_offset = ? WHERE topic = ? AND partition = ?",
            [(o, t, p) for (t, p), o in next_offsets.items()],
        )
        return out

    # -- reading -----------------------------------------------------------------------------

    def read(self, topic: str, partition: int, offset: int, limit: int = 500) -> list[Event]:
        with self._lock, self._guard("read events"):
            rows = self._conn.execute(
                'SELECT "offset", id, key, event_time_us, headers, payload FROM events '
                'WHERE topic = ? AND partition = ? AND "offset" >= ? ORDER BY "offset" LIMIT ?',
                (topic, partition, offset, limit),
            ).fetchall()
        return [
            Event(
                topic=topic,
                payload=_loads(payload),
                key=key,
                event_time=_from_micros(us),
                headers={} if headers == "{}" else _loads(headers),
                id=id_,
                partition=partition,
                offset=off,
            )
            for off, id_, key, us, headers, payload in rows
        ]

    def offset_at(self, topic: str, partition: int, when: datetime) -> int:
        with self._lock, self._guard("find an offset"):
            row = self._conn.execute(
                'SELECT MIN("offset") FROM events '
                "WHERE topic = ? AND partition = ? AND event_time_us >= ?",
                (topic, partition, _micros(when)),
            ).fetchone()
        if row[0] is not None:
            return int(row[0])
        return self.watermarks(topic)[partition][1]

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        self.partitions(topic)
        with self._lock, self._guard("read offsets"), self._read() as conn:
            ends: dict[int, int] = dict(
                conn.execute(
                    "SELECT partition, next_offset FROM partitions WHERE topic = ?", (topic,)
                ).fetchall()
            )
            starts: dict[int, int] = dict(
                conn.execute(
                    'SELECT partition, MIN("offset") FROM events WHERE topic = ? '
                    "GROUP BY partition",
                    (topic,),
                ).fetchall()
            )
        return {p: (starts.get(p, end), end) for p, end in sorted(ends.items())}

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self._lock, self._guard("read committed offsets"):
            rows = self._conn.execute(
                "SELECT partition, next_offset FROM group_offsets WHERE grp = ? AND topic = ?",
                (group, topic),
            ).fetchall()
        return dict(sorted(rows))

    def consumer(self, group: str, topics: Sequence[str]) -> SqliteConsumer:
        from mainspring.storage.eventgroup import SqliteConsumer

        check_name(group, field="group")
        return SqliteConsumer(self, group, list(topics))

    # -- retention ---------------------------------------------------------------------------

    def _maybe_retain(self) -> None:
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = time.monotonic()
            self.enforce_retention()

    def enforce_retention(self, now: datetime | None = None) -> int:
        """Drop events past their topic's retention (age, then size per partition); returns how
        many. Runs by itself from :meth:`produce` every few seconds."""
        now_ms = _micros(now) // 1000 if now is not None else _now_ms()
        removed = 0
        with self._lock, self._guard("enforce retention"), self._write() as conn:
            for topic, n, max_ms, max_bytes in conn.execute(
                "SELECT name, partitions, retention_ms, retention_bytes FROM topics "
                "WHERE retention_ms IS NOT NULL OR retention_bytes IS NOT NULL"
            ).fetchall():
                for partition in range(n):
                    if max_ms is not None:
                        removed += conn.execute(
                            "DELETE FROM events WHERE topic = ? AND partition = ? "
                            "AND appended_ms < ?",
                            (topic, partition, now_ms - max_ms),
                        ).rowcount
                    if max_bytes is not None:
                        removed += self._trim(conn, topic, partition, max_bytes)
        return removed

    @staticmethod
    def _trim(conn: sqlite3.Connection, topic: str, partition: int, max_bytes: int) -> int:
        total = 0
        keep_from = None
        for offset, size in conn.execute(
            'SELECT "offset", size FROM events WHERE topic = ? AND partition = ? '
            'ORDER BY "offset" DESC',
            (topic, partition),
        ).fetchall():
            total += size
            if total > max_bytes:
                keep_from = offset + 1
                break
        if keep_from is None:
            return 0
        return conn.execute(
            'DELETE FROM events WHERE topic = ? AND partition = ? AND "offset" < ?',
            (topic, partition, keep_from),
        ).rowcount

    # -- plumbing ----------------------------------------------------------------------------

    class _Guard:
        def __init__(self, what: str, path: str) -> None:
            self.what, self.path = what, path

        def __enter__(self) -> None:
            return None

        def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
            if isinstance(exc, sqlite3.Error):
                raise StorageError(
                    f"cannot {self.what} in the event log {self.path}: {exc}; check that the "
                    "file is writable and not on a network file system"
                ) from exc

    def _guard(self, what: str) -> SqliteEventLog._Guard:
        return SqliteEventLog._Guard(what, self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_sqlite_event_log(url: str) -> SqliteEventLog:
    """Open ``sqlite:///path?session_timeout_s=N`` (``sqlite://``: in memory)."""
    base, _, query = url.partition("?")
    options = dict(parse_qsl(query))
    timeout = options.pop("session_timeout_s", "10")
    if options:
        raise ConfigError(
            f"event log URI {url!r} has unknown options {sorted(options)}; known: "
            "session_timeout_s",
            key="events",
        )
    try:
        session_timeout_s = float(timeout)
    except ValueError:
        raise ConfigError(
            f"session_timeout_s in {url!r} must be a number of seconds", key="events"
        ) from None
    path = base.removeprefix("sqlite:///") if base.startswith("sqlite:///") else ":memory:"
    return SqliteEventLog(path, session_timeout_s=session_timeout_s)
