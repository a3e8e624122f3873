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

``sqlite:///path/events.db?session_timeout_s=10`` opens one; ``sqlite://`` is in memory. The
file's tables, transactions and retention are in :mod:`~mainspring.storage.eventfile`, how an event
is encoded in :mod:`~mainspring.storage.eventcodec`, a group member in
:mod:`~mainspring.storage.eventgroup`.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from mainspring.errors import (
    ConfigError,
    InvalidInputError,
    MainspringError,
    NotFoundError,
    StorageError,
)
from mainspring.records import Event, check_name
from mainspring.storage import eventfile
from mainspring.storage.eventcodec import (
    encode,
    from_micros,
    keyed_partition,
    loads,
    micros,
    now_ms,
)

if TYPE_CHECKING:
    from mainspring.storage.eventgroup import SqliteConsumer

logger = logging.getLogger("mainspring.events")

#: How often retention runs at most, from ``produce``.
RETENTION_EVERY_S = 5.0


class _Batch:
    """One produce() call waiting for a shared transaction."""

    __slots__ = ("done", "encoded", "error", "events", "result")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        # (headers, payload) as JSON, made before the shared transaction: one producer's bad
        # payload must not fail the others' batches
        self.encoded = [encode(e) for e in events]
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
            self._conn = eventfile.connect(self.path)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the event log {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._attached: str | None = None  # the file append_selected reads, attached
        self._spread = itertools.count()
        self._last_retention = 0.0
        # group commit: produce() calls from several threads share one transaction
        self._pending: list[_Batch] = []
        self._flushing = False
        self._flushed = threading.Condition(threading.Lock())

    # -- transactions ------------------------------------------------------------------------

    def _write(self) -> eventfile.Transaction:
        return eventfile.Transaction(self._conn, "BEGIN IMMEDIATE")

    def _read(self) -> eventfile.Transaction:
        return eventfile.Transaction(self._conn, "BEGIN")

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
        now = now_ms()
        for event, (headers, payload) in zip(batch.events, batch.encoded, strict=True):
            if event.topic not in counts:
                counts[event.topic] = self._create(conn, event.topic, 1)
            n = counts[event.topic]
            if n == 1:  # one partition: no key to hash (keys such as decision ids never repeat)
                partition = 0
            elif event.key is not None:
                partition = keyed_partition(event.key, n)
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
                    micros(event.event_time),
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
                payload=loads(payload),
                key=key,
                event_time=from_micros(us),
                headers={} if headers == "{}" else loads(headers),
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
                (topic, partition, micros(when)),
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

    def append_selected(
        self, database: str, select: str, params: Sequence[object]
    ) -> tuple[int, int | None]:
        """Append the events a SELECT over the SQLite file ``database`` (attached as schema
        ``source``) yields, in one transaction; ``eventfile.append_selected`` says what the
        SELECT gives. Returns how many and the last ``ord``; raises ``eventfile.CannotAppend``
        (nothing written) when the rows cannot be appended so."""
        if self.memory:
            raise InvalidInputError("an in-memory event log attaches no file", field="database")
        with self._lock, self._guard("append events"):
            if self._attached != database:
                if self._attached is not None:
                    self._conn.execute("DETACH DATABASE source")
                    self._attached = None
                self._conn.execute("ATTACH DATABASE ? AS source", (database,))
                self._attached = database
            with self._read() as conn:  # BEGIN: append_selected locks this file only
                result = eventfile.append_selected(conn, select, params, now_ms())
        try:
            self._maybe_retain()
        except StorageError as exc:  # the events are written: report, do not fail them
            logger.warning("retention of %s failed: %s", self.path, exc)
        return result

    # -- retention ---------------------------------------------------------------------------

    def _maybe_retain(self) -> None:
        if time.monotonic() - self._last_retention >= RETENTION_EVERY_S:
            self._last_retention = time.monotonic()
            self.enforce_retention()

    def enforce_retention(self, now: datetime | None = None) -> int:
        """Drop events past their topic's retention (age, then size per partition); returns how
        many. Runs by itself from :meth:`produce` every few seconds."""
        at_ms = micros(now) // 1000 if now is not None else now_ms()
        with self._lock, self._guard("enforce retention"), self._write() as conn:
            return eventfile.enforce_retention(conn, at_ms)

    # -- plumbing ----------------------------------------------------------------------------

    def _guard(self, what: str) -> eventfile.Guard:
        return eventfile.Guard(what, self.path)

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
