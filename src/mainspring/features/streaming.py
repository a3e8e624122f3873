"""Stream ingestion: events of a view's topic → its transformation → the online store (and the
offline Parquet files), each event once.

A :class:`StreamIngest` is a :class:`~mainspring.events.Processor` for feature views whose source
is a :class:`~mainspring.features.definitions.StreamSource`. Per batch, in one transaction of its
ledger (a :class:`~mainspring.events.SqliteSink`):

1. events whose idempotency key the ledger holds already are dropped (a replay applies nothing
   twice);
2. the payloads of the rest become source rows (the event time is the row's time) and go
   through :func:`~mainspring.features.frames.feature_table`, the code that builds training sets
   and materializes, so streamed values equal offline ones;
3. the latest row per entity is written to the online store as one atomic batch; the store keeps
   the row with the newest event time, so a late or replayed event never moves a value back;
4. with an ``offline_path``, the batch's source rows are put in the ledger's outbox as a Parquet
   file, in the same transaction as the keys.

After the commit the batch's files are written out (atomically: a temporary file, fsync'd, renamed);
their outbox rows go with the next batch's commit. An outbox row left by a crash is written out
(again, harmlessly) by whoever runs next. A crash before the commit means
the batch comes again: its online write repeats the same values, its offline rows were never
written.
"""

from __future__ import annotations

import io
import os
import sqlite3
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.events.sink import SqliteSink
from mainspring.features.datasources import StreamSource
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import arrow, feature_table
from mainspring.features.online import EPOCH, encode_rows
from mainspring.features.store import FeatureStore
from mainspring.records import Event, new_id

_MICROSECOND = timedelta(microseconds=1)


def source_rows(view: FeatureView, events: Sequence[Event]) -> Any:
    """The events' payloads as an Arrow table of source rows, with their event times in the
    source's timestamp column (a payload's own value for that column is replaced)."""
    pa = arrow()
    assert isinstance(view.source, StreamSource)
    column = view.source.timestamp_column
    payloads = [e.payload for e in events]
    if not all(type(p) is dict for p in payloads):
        raise InvalidInputError(
            f"feature view {view.name!r}: an event of topic {view.source.topic!r} has a payload "
            "that is not an object of columns",
            field=view.name,
        )
    first = payloads[0].keys()
    names: dict[str, None] = dict.fromkeys(first)
    if not all(p.keys() == first for p in payloads):  # rows with different fields: take all
        for p in payloads:
            names.update(dict.fromkeys(p))
    try:  # column by column: several times faster than Table.from_pylist
        table = pa.table({name: pa.array([p.get(name) for p in payloads]) for name in names})
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"feature view {view.name!r}: events of topic {view.source.topic!r} do not form "
            f"rows: {exc}",
            field=view.name,
        ) from None
    micros = [(e.event_time - EPOCH) // _MICROSECOND for e in events]
    times = pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    if column in table.column_names:
        return table.set_column(table.column_names.index(column), column, times)
    return table.append_column(column, times)


class StreamIngest:
    """Keeps the online (and offline) rows of stream-sourced feature views up to date.

    ``ledger`` is the SQLite file recording applied events (default: ``.mainspring/streams.db``
    of the project when run by ``mainspring worker features``). ``offline=False`` skips the
    Parquet appends even where views have an ``offline_path``.
    """

    def __init__(
        self,
        store: FeatureStore,
        views: Sequence[str],
        *,
        ledger: str | Path,
        offline: bool = True,
        name: str | None = None,
    ) -> None:
        if not views:
            raise InvalidInputError("name at least one feature view to stream", field="views")
        self.store = store
        self.targets: list[tuple[FeatureView, str]] = []
        for view_name in views:
            view, namespace = store.runnable(view_name)
            if not isinstance(view.source, StreamSource):
                raise InvalidInputError(
                    f"feature view {view_name!r} has a {view.source.to_dict()['kind']} source, "
                    "not a stream; give it a StreamSource(topic) to ingest events",
                    field=f"{view_name}.source",
                )
            self.targets.append((view, namespace))
        self.topics = sorted({v.source.topic for v, _ in self.targets})  # type: ignore[union-attr]
        self.name = name or "features-" + "-".join(sorted(views))
        self.offline = offline
        self.sink = SqliteSink(ledger)
        self.sink.execute(
            "CREATE TABLE IF NOT EXISTS mainspring_outbox (id TEXT PRIMARY KEY, "
            "path TEXT NOT NULL, data BLOB NOT NULL)"
        )
        #: Files of the batch in hand (id, path, Parquet), written out after its commit.
        self._staged: list[tuple[str, str, bytes]] = []
        #: Outbox rows whose files are written; deleted with the next batch's commit.
        self._written: list[str] = []
        self._done: list[str] = []
        self.flush()

    def process(self, events: Sequence[Event]) -> None:
        self._staged = []
        done = list(self._written)
        self._done = done
        if self.sink.apply_batch(events, self._effect):
            del self._written[: len(done)]  # their outbox rows went with this batch's commit
        for batch, path, data in self._staged:
            write_out(Path(path), data)
            self._written.append(batch)
        self._staged = []

    def _effect(self, conn: sqlite3.Connection, fresh: list[Event]) -> None:
        # files written out after the previous commit are durable: their rows can go (in this
        # transaction, which saves a commit per batch; should it fail they are written again)
        conn.executemany("DELETE FROM mainspring_outbox WHERE id = ?", [(b,) for b in self._done])
        by_topic: dict[str, list[Event]] = {}
        for event in fresh:
            by_topic.setdefault(event.topic, []).append(event)
        for view, namespace in self.targets:
            source = view.source
            assert isinstance(source, StreamSource)
            events = by_topic.get(source.topic)
            if not events:
                continue
            rows = source_rows(view, events)
            table = feature_table(view, rows, f"feature view {view.name!r}: events")
            latest: dict[str, tuple[str, int, bytes]] = {}
            for row in encode_rows(view, table):
                held = latest.get(row[0])
                if held is None or row[1] >= held[1]:
                    latest[row[0]] = row
            written = self.store.online.write(namespace, list(latest.values()))
            if self.store.metrics is not None:
                self.store.metrics.written(view.name, written, "stream")
            if self.offline and source.offline_path is not None:
                directory = Path(source.offline_path)
                if not directory.is_absolute():
                    directory = self.store.base_dir / directory
                batch, data = new_id(), _parquet(rows)
                path = str(directory / f"{batch}.parquet")
                conn.execute("INSERT INTO mainspring_outbox VALUES (?, ?, ?)", (batch, path, data))
                self._staged.append((batch, path, data))

    def flush(self) -> int:
        """Write out every Parquet file the outbox holds (a crash may have left some; writing
        one again is harmless) and empty it; returns how many."""
        pending = self.sink.execute("SELECT id, path, data FROM mainspring_outbox ORDER BY id")
        for batch, path, data in pending:
            assert isinstance(data, bytes)
            write_out(Path(str(path)), data)
            self.sink.execute("DELETE FROM mainspring_outbox WHERE id = ?", (batch,))
        self._written.clear()
        return len(pending)

    def applied(self) -> int:
        """How many events took effect (each counted once)."""
        return self.sink.count()

    def close(self) -> None:
        for batch in self._written:
            self.sink.execute("DELETE FROM mainspring_outbox WHERE id = ?", (batch,))
        self.sink.close()


def write_out(target: Path, data: bytes) -> None:
    """Write a file atomically and durably: a temporary file, fsync'd, renamed over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{time.monotonic_ns()}")
    temporary.write_bytes(data)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(target)


def _parquet(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()
