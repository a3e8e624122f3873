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

    def close(self) -> None:
        with self._lock:
            self._conn.close()
