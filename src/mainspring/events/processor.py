"""What a worker runs: a :class:`Processor` takes batches of events from its topics.

A processor must be idempotent (each event takes effect once even when delivered twice): the
worker commits offsets only after :meth:`Processor.process` returns, so a crash in between means
the batch comes again. :class:`Materialize` is the built-in one.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from mainspring.errors import InvalidInputError
from mainspring.events.sink import SqliteSink
from mainspring.records import Event

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@runtime_checkable
class Processor(Protocol):
    """Consumes batches of events. Raise ``StorageError`` for a transient failure (the batch is
    retried with backoff) and ``InvalidInputError`` for an event that can never be processed (it
    goes to its dead-letter topic)."""

    @property
    def name(self) -> str:
        """The consumer group a worker uses unless told otherwise."""
        ...

    @property
    def topics(self) -> Sequence[str]:
        """The topics it reads."""
        ...

    def process(self, events: Sequence[Event]) -> None:
        """Apply a batch; when this returns, the batch's effects are durable."""

    def close(self) -> None:
        """Release resources."""


class Materialize:
    """Keeps the latest payload of every key of some topics in a SQLite table.

    Columns: ``key`` (the event key, or its id when keyless), ``payload`` (JSON), ``event_time``,
    ``event_id``, ``topic``, ``applied`` (how many events took effect for the key). Events that
    are older (by event time) than the row keep the row's payload but still count.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "view.db")
    >>> view = Materialize(path, "orders", ["orders"])
    >>> view.process([Event("orders", {"n": 1}, key="a", offset=0, partition=0)])
    >>> view.rows()
    [('a', {'n': 1}, 1)]
    """

    def __init__(
        self, path: str | Path, table: str, topics: Sequence[str], *, name: str | None = None
    ) -> None:
        if not _TABLE.match(table):
            raise InvalidInputError(
                f"table {table!r} is not a valid name: use letters, digits and '_'", field="table"
            )
        self.table = table
        self.topics = list(topics)
        self.name = name or f"materialize-{table}"
        self.sink = SqliteSink(path)
        self.sink.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, payload TEXT NOT NULL, "
            "event_time TEXT NOT NULL, event_id TEXT NOT NULL, topic TEXT NOT NULL, "
            "applied INTEGER NOT NULL)"
        )

    def _effect(self, conn: sqlite3.Connection, event: Event) -> None:
        payload = json.dumps(event.payload, separators=(",", ":"), sort_keys=True)
        conn.execute(
            f"INSERT INTO {self.table} VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (key) DO UPDATE SET "  # noqa: S608 - a checked name
            "payload = CASE WHEN excluded.event_time >= event_time THEN excluded.payload "
            "ELSE payload END, "
            "event_id = CASE WHEN excluded.event_time >= event_time THEN excluded.event_id "
            "ELSE event_id END, "
            "event_time = MAX(event_time, excluded.event_time), applied = applied + 1",
            (
                event.key if event.key is not None else event.id,
                payload,
                event.event_time.isoformat(timespec="microseconds"),
                event.id,
                event.topic,
            ),
        )

    def process(self, events: Sequence[Event]) -> None:
        self.sink.apply(events, self._effect)

    def rows(self) -> list[tuple[str, object, int]]:
        """``(key, payload, applied)`` of every row, by key."""
        return [
            (str(k), json.loads(str(p)), int(str(a)))
            for k, p, a in self.sink.execute(
                f"SELECT key, payload, applied FROM {self.table} ORDER BY key"  # noqa: S608
            )
        ]

    def close(self) -> None:
        self.sink.close()
