"""An idempotent sink: effects and the record of processed events commit in one transaction.

Delivery is at-least-once, so a sink may see an event again after a crash or a rebalance. A
:class:`SqliteSink` records each event's idempotency key in the same SQLite transaction as its
effect; an event whose key is already there has no effect, so each event takes effect once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from mainspring.errors import StorageError
from mainspring.records import Event

BUSY_TIMEOUT_S = 60.0

#: Applies one event's effect inside the sink's transaction.
Effect = Callable[[sqlite3.Connection, Event], None]
#: Applies the effect of a batch of fresh events inside the sink's transaction.
BatchEffect = Callable[[sqlite3.Connection, list[Event]], None]
#: What a sink dedupes on (default: the event's idempotency key).
KeyOf = Callable[[Event], str]
#: Keys per ``IN (...)`` lookup (below SQLite's limit on bound parameters).
_CHUNK = 900


def _idempotency_key(event: Event) -> str:
    return event.idempotency_key


class SqliteSink:
    """A SQLite database (WAL, ``synchronous=FULL``) that applies events exactly once.

    >>> sink = SqliteSink(":memory:")
    >>> _ = sink.execute("CREATE TABLE seen (id TEXT)")
    >>> effect = lambda conn, e: conn.execute("INSERT INTO seen VALUES (?)", (e.id,))
    >>> e = Event("t", {}, partition=0, offset=0)
    >>> sink.apply([e, e], effect), sink.apply([e], effect)
    (1, 0)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS mainspring_processed ("
                "idempotency_key TEXT PRIMARY KEY, topic TEXT NOT NULL, "
                'partition INTEGER, "offset" INTEGER) WITHOUT ROWID'
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the sink {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run one statement outside the event path (create tables, read results)."""
        with self._lock:
            try:
                return self._conn.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"sink {self.path}: {exc}") from exc

    def apply(self, events: Sequence[Event], effect: Effect) -> int:
        """Apply ``effect`` to each event not applied before, all in one transaction; returns how
        many took effect. On any error nothing of the batch takes effect."""
        applied = 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for event in events:
                        fresh = self._conn.execute(
                            "INSERT OR IGNORE INTO mainspring_processed VALUES (?, ?, ?, ?)",
                            (event.idempotency_key, event.topic, event.partition, event.offset),
                        ).rowcount
                        if fresh:
                            effect(self._conn, event)
                            applied += 1
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"sink {self.path} refused a batch: {exc}") from exc
        return applied

    def apply_batch(
        self, events: Sequence[Event], effect: BatchEffect, *, key: KeyOf = _idempotency_key
    ) -> int:
        """Apply ``effect`` once to all the events of the batch not applied before (duplicates
        within the batch count once: the first wins), in one transaction with the record of
        their keys; returns how many were fresh. The per-event work is two set-based statements,
        so a batch costs about as much as its rows. On any error nothing of the batch takes
        effect.

        >>> sink = SqliteSink(":memory:")
        >>> seen = []
        >>> effect = lambda conn, fresh: seen.extend(e.payload["n"] for e in fresh)
        >>> a, b = Event("t", {"n": 1}, partition=0, offset=0), Event("t", {"n": 2})
        >>> sink.apply_batch([a, a], effect), sink.apply_batch([a, b], effect), seen
        (1, 1, [1, 2])
        """
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(key(event), event)
        keys = list(unique)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    known: set[str] = set()
                    for i in range(0, len(keys), _CHUNK):
                        chunk = keys[i : i + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        known.update(
                            row[0]
                            for row in self._conn.execute(
                                "SELECT idempotency_key FROM mainspring_processed "  # noqa: S608 - placeholders only
                                f"WHERE idempotency_key IN ({marks})",
                                chunk,
                            )
                        )
                    fresh = [e for k, e in unique.items() if k not in known]
                    self._conn.executemany(
                        "INSERT INTO mainspring_processed VALUES (?, ?, ?, ?)",
                        [
                            (k, e.topic, e.partition, e.offset)
                            for k, e in unique.items()
                            if k not in known
                        ],
                    )
                    if fresh:
                        effect(self._conn, fresh)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"sink {self.path} refused a batch: {exc}") from exc
        return len(fresh)

    def count(self) -> int:
        """How many events (idempotency keys) took effect."""
        return int(str(self.execute("SELECT count(*) FROM mainspring_processed")[0][0]))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
