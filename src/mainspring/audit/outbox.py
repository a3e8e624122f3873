"""The decision log mirrored to the event log, as a transactional outbox.

Records are published only after they committed (the mirror reads them back from the database),
in ``seq`` order, each with its record id as the idempotency key. A cursor in ``decision_outbox``
says how far publishing got; it moves only after the event log acknowledged a batch, so a crash in
between publishes that batch again (at-least-once; consumers drop repeats by idempotency key)
instead of losing it. Publishing runs on its own thread and connection, never on the append path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from mainspring.audit.entries import COLUMNS, Kind, Row
from mainspring.audit.writer import Durability, configure, lower_priority
from mainspring.records import IDEMPOTENCY_KEY, Event
from mainspring.storage.base import EventLog
from mainspring.storage.eventfile import CannotAppend
from mainspring.storage.sql import DriverTx, SqlMetadataStore

if TYPE_CHECKING:
    from mainspring.storage.eventlog import SqliteEventLog

log = logging.getLogger("mainspring.audit")

#: The topic each kind of record goes to.
TOPICS = {
    Kind.DECISION: "decisions",
    Kind.OUTCOME: "decision-outcomes",
    Kind.REVIEW: "decision-reviews",
}
CURSOR = "events"
PAGE = 500
RETRY_S = 1.0
#: The shortest time between two passes of the thread (bounds the cursor's commits per second).
COALESCE_S = 0.2
#: The same for a process that only mirrors (``serve``'s supervisor): shorter passes publish
#: smaller bursts beside the workers. 0.05 s against 0.2 s, two workers at concurrency 32 (six
#: A/B pairs over two sessions, benchmarks/RESULTS.md): more decisions/s in five of the six
#: pairs (2-10 %, 0.02-0.09 ms less CPU per decision in this session's three), the same p99.
#: In process, where the mirror shares the deciding threads' GIL, 0.2 s kept the p99 lower.
MIRROR_ONLY_REST_S = 0.05
# the columns are constants; the cursor and the page size are bound
_PAGE = f"SELECT {COLUMNS} FROM decision_log WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608
_TOPIC = " ".join(f"WHEN '{kind.value}' THEN '{topic}'" for kind, topic in TOPICS.items())
#: ``at`` as stamped (``entries.stamp``); any other text gives no event time, and the page goes
#: through Python instead
_STAMPED = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]." + (
    "[0-9]" * 6 + "+00:00"
)
#: The event time of a record in microseconds, from its ``at`` column
EVENT_TIME_US = (
    f"CASE WHEN at GLOB '{_STAMPED}' THEN CAST(strftime('%s', substr(at, 1, 19)) AS INTEGER) "
    "* 1000000 + CAST(substr(at, 21, 6) AS INTEGER) END"
)
#: A page as the events :func:`to_event` makes, built by SQLite (for ``append_selected``): the
#: same topic, key, id, event time, headers and payload, byte for byte (tested). json_quote
#: escapes strings exactly as orjson does. Bound: the idempotency key's name, cursor, page size.
_COPY = (
    f"SELECT seq AS ord, CASE kind {_TOPIC} END AS topic, id, decision_id AS key, "  # noqa: S608
    f"{EVENT_TIME_US} AS event_time_us, "
    "'{' || json_quote(?) || ':' || json_quote(id) || '}' AS headers, "
    """'{"kind":' || json_quote(kind) || ',"seq":' || seq || ',"hash":' || json_quote(hash) """
    """|| ',"prev_hash":' || json_quote(prev_hash) || ',"record":' || body || '}' AS payload """
    "FROM source.decision_log WHERE seq > ? ORDER BY seq LIMIT ?"
)


#: the cursor's statements (``decision_outbox``), bound: its name, its seq
_CURSOR = "SELECT seq FROM decision_outbox WHERE name = ?"
_MOVE = "UPDATE decision_outbox SET seq = ? WHERE name = ? AND seq < ?"  # never moves back
_START = "INSERT INTO decision_outbox (name, seq) VALUES (?, ?)"


def _head(tx: DriverTx) -> int:
    found = tx.first("SELECT MAX(seq) FROM decision_log")
    return int(found[0]) if found is not None and found[0] is not None else 0


def to_event(row: Row) -> Event:
    """The event a logged row becomes: its record, plus kind, seq and the chain hashes.

    The record is the row's stored JSON body as it is (an ``orjson.Fragment``, which the event
    logs' encoder writes without parsing it again): the log checked and encoded it once, when
    it was written; decoding and encoding it again for the mirror cost more than the append.
    """
    import orjson  # not at import time: `import mainspring` stays lean

    payload = {
        "kind": row.kind.value,
        "seq": row.seq,
        "hash": row.hash,
        "prev_hash": row.prev_hash,
        "record": orjson.Fragment(row.body),
    }
    return Event(
        TOPICS[row.kind],
        payload,
        key=row.decision_id,
        event_time=datetime.fromisoformat(row.at),
        headers={IDEMPOTENCY_KEY: row.id},
        id=row.id,  # the record's id: publishing a record again makes the same event
    )


class Mirror:
    """Publishes committed decision-log records to ``events``; ``publish_pending`` does one pass,
    ``start`` runs passes on a thread whenever :meth:`wake` is called (and every few seconds)."""

    def __init__(
        self,
        store: SqlMetadataStore,
        events: EventLog,
        *,
        page: int = PAGE,
        on_lag: Callable[[int], None] | None = None,
        claim: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        #: whether this process should publish now (several processes of one project, such as
        #: serve workers, elect one publisher instead of each publishing every record)
        self.claim = claim
        self.events = events
        self.page = page
        self._on_lag = on_lag
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time in this process
        self._conn: Connection | None = None
        #: when both logs are SQLite files: the event log and the database file SQLite copies
        #: pages from into it (see :meth:`_copy_page`); None: pages go through Python
        self._copy: tuple[SqliteEventLog, str] | None = None
        from mainspring.storage.eventlog import SqliteEventLog  # not at import time: lean

        if isinstance(events, SqliteEventLog) and not events.memory and store.wal_file:
            database = store.engine.url.database
            if database and Path(database).resolve() != Path(events.path).resolve():
                self._copy = (events, database)  # (one file for both: it would attach itself)

    def cursor(self) -> int:
        """The ``seq`` of the last record published (0 before the first)."""
        with self.store.driver_read() as tx:
            found = tx.first(_CURSOR, (CURSOR,))
        return int(found[0]) if found is not None else 0

    def publish_pending(self) -> int:
        """Publish the committed records past the cursor, page by page, until a page is not full;
        returns how many. Under load appends go on while it publishes: it stops at the first
        short page, so that the records committed meanwhile wait for the next pass and are
        published together, instead of one small page (a read, a produce and a cursor commit
        each) after another."""
        sent = 0
        with self._lock:
            while True:
                cursor = self.cursor()
                copied = self._copy_page(cursor)
                if copied is None:
                    count, last = self._publish_page(cursor)
                else:
                    count, last = copied
                    if self._on_lag is not None:
                        with self.store.driver_read() as tx:
                            self._on_lag(max(0, _head(tx) - cursor))
                if not count:
                    return sent
                self._advance(cursor, last)
                sent += count
                if count < self.page:  # caught up with the log as it was read
                    return sent

    def _publish_page(self, cursor: int) -> tuple[int, int]:
        """Read a page of records past ``cursor`` and produce them; (how many, last seq)."""
        with self.store.driver_read() as tx:
            rows = [Row.from_values(r) for r in tx.all(_PAGE, (cursor, self.page))]
            head = _head(tx)
        if self._on_lag is not None:
            self._on_lag(max(0, head - cursor))
        if not rows:
            return 0, cursor
        self.events.produce([to_event(r) for r in rows])
        return len(rows), rows[-1].seq

    def _copy_page(self, cursor: int) -> tuple[int, int] | None:
        """Copy a page past ``cursor`` from the log's SQLite file into the event log's, inside
        SQLite (``SqliteEventLog.append_selected``); (how many, last seq), or None when pages
        go through Python.

        In one process with the deciding threads (no ``serve``), publishing through Python held
        the GIL for about 0.03 ms a record: a pass of a few hundred records took 61-142 ms
        beside a thread deciding, and about a quarter of its decisions waited for the GIL
        (their p99 2.9-7.9 ms against 1.1-1.5 ms). SQLite lets go of the GIL for each statement.
        """
        if self._copy is None:
            return None
        events, database = self._copy
        try:
            count, last = events.append_selected(
                database, _COPY, (IDEMPOTENCY_KEY, cursor, self.page)
            )
        except CannotAppend as exc:  # nothing was written: this page goes through Python
            log.info("the decision log's mirror publishes through Python: %s", exc)
            return None
        return count, cursor if last is None else last

    def _connection(self) -> Connection:
        # the cursor commits without a flush: losing its last moves re-publishes, never loses.
        # A hot writer's connection: on SQLite it waits for its turn at the write lock in the
        # kernel (storage.sql.WriterTurn) instead of SQLite's busy handler, whose sleeps (1, 2,
        # 5, 10 ms...) behind the decision log's commits made a cursor move take 7.6-9.4 ms at
        # the median in process, against 0.9-1.2 ms now (benchmarks/RESULTS.md, session 8)
        if self._conn is None:
            conn = self.store.hot_writer()
            configure(self.store, conn, Durability.PROCESS)
            self._conn = conn
        return self._conn

    def _advance(self, old: int, new: int) -> None:
        try:
            self._move(old, new)
        except Exception:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.invalidate()
                conn.close()
            raise

    def _move(self, old: int, new: int) -> None:
        # through the driver, as the cursor's read: in process a pass shares the GIL with the
        # threads deciding, and SQLAlchemy's statements held it for longer than SQLite took
        with self.store.driver_write(self._connection(), "decision-outbox") as tx:
            tx.execute(_MOVE, (new, CURSOR, new))
            if old == 0 and tx.first(_CURSOR, (CURSOR,)) is None:
                tx.execute(_START, (CURSOR, new))

    def wake(self) -> None:
        """Ask the thread for a pass soon (after a commit)."""
        self._wake.set()

    def start(self, interval_s: float = 5.0, rest_s: float = COALESCE_S) -> None:
        """Run passes on a daemon thread: on :meth:`wake`, every ``interval_s``, after failures;
        at least ``rest_s`` apart."""
        if self._thread is not None:
            return

        def run() -> None:
            lower_priority()
            while not self._stop.is_set():
                self._wake.wait(interval_s)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    if self.claim is None or self.claim():
                        self.publish_pending()
                except Exception:
                    log.warning("publishing the decision log failed; will retry", exc_info=True)
                    self._stop.wait(RETRY_S)
                # coalesce: under load one pass (and one cursor commit) serves many group commits
                self._stop.wait(rest_s)

        self._thread = threading.Thread(target=run, name="mainspring-decision-mirror", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True) -> None:
        """Stop the thread; with ``drain``, make one last pass first (errors are logged)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if drain:
            try:
                self.publish_pending()
            except Exception:
                log.warning("publishing the decision log on close failed", exc_info=True)
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
