"""The embedded event log's SQLite file (see :mod:`mainspring.storage.eventlog`): its tables, how
it is opened (WAL, ``synchronous=FULL``), its transactions, SQLite errors as
:class:`~mainspring.errors.StorageError`, and retention.

>>> conn = connect(":memory:")
>>> with Transaction(conn, "BEGIN IMMEDIATE") as tx:
...     _ = tx.execute("INSERT INTO topics VALUES ('orders', 1, NULL, NULL)")
>>> conn.execute("SELECT name, partitions FROM topics").fetchall()
[('orders', 1)]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from mainspring.errors import StorageError

BUSY_TIMEOUT_S = 60.0

SCHEMA = """
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


class Transaction:
    """``with Transaction(conn, "BEGIN IMMEDIATE") as conn:`` commits, or rolls back on error."""

    def __init__(self, conn: sqlite3.Connection, begin: str) -> None:
        self.conn, self.begin = conn, begin

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute(self.begin)
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


class Guard:
    """Turns a SQLite error into a :class:`StorageError` naming what failed and the file."""

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


def connect(path: str) -> sqlite3.Connection:
    """Open the log's file (``":memory:"``: in memory) and create its tables when missing.

    Autocommit mode (transactions are explicit), usable from any thread (callers serialize),
    WAL with ``synchronous=FULL`` on disk: an acknowledged write is durable.
    """
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    if path != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # acknowledged means durable
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    with Transaction(conn, "BEGIN IMMEDIATE"):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
    return conn


#: The columns a SELECT handed to :func:`append_selected` yields, in this order.
SELECTED = "ord, topic, id, key, event_time_us, headers, payload"


class CannotAppend(Exception):
    """:func:`append_selected` cannot write these rows (a topic of several partitions, or a row
    with a column missing); nothing was written, and the caller produces them itself."""


def append_selected(
    conn: sqlite3.Connection, select: str, params: Sequence[object], now_ms: int
) -> tuple[int, int | None]:
    """Append the events ``select`` yields (columns :data:`SELECTED`; ``headers`` and
    ``payload`` already JSON), in ``ord`` order, to topics of one partition, creating missing
    topics with one, inside a transaction opened on ``conn`` with a plain ``BEGIN``; returns how
    many and the last ``ord``.

    Everything runs inside SQLite, which lets go of Python's GIL for each statement: a thread
    that copies records from another SQLite file this way does not hold up the process's other
    threads (see ``audit.outbox``). Raises :class:`CannotAppend` when a topic has several
    partitions (keys must then be hashed, in Python) or a row lacks a value.
    """
    # the write lock of this file only: BEGIN IMMEDIATE would also take the lock of the file the
    # SELECT reads (every attached database's), and hold up its writers for the whole copy
    conn.execute("DELETE FROM main.events WHERE 0")
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS selected ({SELECTED})")
    conn.execute("DELETE FROM temp.selected")
    conn.execute(f"INSERT INTO temp.selected SELECT {SELECTED} FROM ({select})", params)  # noqa: S608
    count, last, incomplete = conn.execute(
        "SELECT COUNT(*), MAX(ord), 5 * COUNT(*) - COUNT(topic) - COUNT(id) "
        "- COUNT(event_time_us) - COUNT(headers) - COUNT(payload) FROM temp.selected"
    ).fetchone()
    if not count:
        return 0, None
    if incomplete:
        raise CannotAppend(f"{incomplete} missing values in the selected rows")
    for (topic,) in conn.execute("SELECT DISTINCT topic FROM temp.selected").fetchall():
        known = conn.execute("SELECT partitions FROM topics WHERE name = ?", (topic,)).fetchone()
        if known is None:
            conn.execute("INSERT INTO topics VALUES (?, 1, NULL, NULL)", (topic,))
            conn.execute("INSERT INTO partitions VALUES (?, 0, 0)", (topic,))
        elif known[0] != 1:
            raise CannotAppend(f"topic {topic!r} has {known[0]} partitions")
    written = conn.execute(
        'INSERT INTO events (topic, partition, "offset", id, key, event_time_us, appended_ms, '
        "size, headers, payload) "
        "SELECT s.topic, 0, p.next_offset - 1 + ROW_NUMBER() OVER (PARTITION BY s.topic "
        "ORDER BY s.ord), s.id, s.key, s.event_time_us, ?, LENGTH(s.payload) + "
        "LENGTH(s.headers) + COALESCE(LENGTH(s.key), 0), s.headers, s.payload "
        "FROM temp.selected s JOIN partitions p ON p.topic = s.topic AND p.partition = 0 "
        "ORDER BY s.ord",
        (now_ms,),
    ).rowcount
    if written != count:  # never expected; the caller's transaction rolls back
        raise CannotAppend(f"{written} of {count} rows were placed")
    conn.execute(
        "UPDATE partitions SET next_offset = next_offset + (SELECT COUNT(*) FROM "
        "temp.selected s WHERE s.topic = partitions.topic) "
        "WHERE partition = 0 AND topic IN (SELECT topic FROM temp.selected)"
    )
    return int(count), int(last)


def enforce_retention(conn: sqlite3.Connection, now_ms: int) -> int:
    """Drop the events past their topic's retention (age, then size per partition) inside the
    caller's write transaction; returns how many."""
    removed = 0
    for topic, n, max_ms, max_bytes in conn.execute(
        "SELECT name, partitions, retention_ms, retention_bytes FROM topics "
        "WHERE retention_ms IS NOT NULL OR retention_bytes IS NOT NULL"
    ).fetchall():
        for partition in range(n):
            if max_ms is not None:
                removed += conn.execute(
                    "DELETE FROM events WHERE topic = ? AND partition = ? AND appended_ms < ?",
                    (topic, partition, now_ms - max_ms),
                ).rowcount
            if max_bytes is not None:
                removed += _trim(conn, topic, partition, max_bytes)
    return removed


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
