"""The embedded backends on SQLite in WAL mode: metadata and the online feature store.

Writers take SQLite's database lock at ``BEGIN IMMEDIATE``, so read-then-write transactions are
serialised across threads and processes; readers never block in WAL mode.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import StaticPool

from mainspring.errors import StorageError
from mainspring.storage.base import OnlineHit, OnlineRow
from mainspring.storage.sql import SQLITE_MEMORY_URLS, SqlMetadataStore

BUSY_TIMEOUT_S = 60.0


def _wal(cur: sqlite3.Cursor) -> None:
    """Switch to WAL mode. Another process opening the same new database at that moment can make
    the switch fail at once with "database is locked" (SQLite does not wait in its busy handler
    for it), so it is retried until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _no_lock(conn: Connection, name: str) -> None:
    """BEGIN IMMEDIATE already holds the database write lock."""


def open_sqlite(url: str, *, migrate: bool = True) -> SqlMetadataStore:
    """Open (creating if needed) the SQLite database named by a ``sqlite:///path`` URL.

    ``sqlite://`` (no path) is an in-memory database, the metadata store's in-memory twin.
    """
    memory = url in SQLITE_MEMORY_URLS
    if memory:
        engine = create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            f"sqlite:///{path}",
            connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, record: Any) -> None:
        # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred and late)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            _wal(cur)
            cur.execute("PRAGMA synchronous=FULL")  # acknowledged means durable
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("mainspring_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return SqlMetadataStore(url, engine, lock=_no_lock, serialize=memory, migrate=migrate)


_ONLINE_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_rows (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    ts INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID
"""

_ONLINE_GET = "SELECT ts, payload FROM online_rows WHERE namespace = ? AND key = ?"

_ONLINE_UPSERT = (
    "INSERT INTO online_rows (namespace, key, ts, payload) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (namespace, key) DO UPDATE SET ts = excluded.ts, payload = excluded.payload "
    "WHERE excluded.ts >= online_rows.ts"
)


#: Bound parameters per statement (SQLite allows 32766); bigger reads take more statements.
MAX_PARAMS = 30_000


def _statements(groups: dict[str, list[str]]) -> list[list[tuple[str, list[str]]]]:
    """Split (namespace → keys) into statements of at most ``MAX_PARAMS`` parameters."""
    out: list[list[tuple[str, list[str]]]] = [[]]
    size = 0
    for ns, members in groups.items():
        for start in range(0, len(members), MAX_PARAMS - 1):
            chunk = members[start : start + MAX_PARAMS - 1]
            if size + len(chunk) + 1 > MAX_PARAMS:
                out.append([])
                size = 0
            out[-1].append((ns, chunk))
            size += len(chunk) + 1
    return out


class SqliteOnlineStore:
    """An :class:`~mainspring.storage.base.OnlineStore` in one SQLite table (WAL mode).

    Uses the standard library's ``sqlite3`` directly (one connection per thread) to keep the
    per-read cost close to a bare ``SELECT``. A read is one statement whatever the number of keys
    and namespaces.

    >>> store = SqliteOnlineStore("sqlite://")
    >>> store.write("view", [("42", 2, b"new"), ("42", 1, b"older")])
    2
    >>> store.read([("view", "42"), ("view", "7")])
    [(2, b'new'), None]
    """

    def __init__(self, url: str) -> None:
        self.url = url
        memory = url in SQLITE_MEMORY_URLS
        if memory:
            # one private in-memory database on one connection, used under a lock
            self._target = "file::memory:"
        else:
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._target = f"file:{path}"
        self._memory = memory
        self._local = threading.local()
        self._sql: dict[tuple[int, ...], str] = {}
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._keeper = self._connect()  # keeps an in-memory database alive; creates the table
        self._keeper.execute(_ONLINE_SCHEMA)
        self._guard: AbstractContextManager[Any] = (
            threading.RLock() if memory else contextlib.nullcontext()
        )

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._target,
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            if not self._memory:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # a cache rebuilt from the offline data
        except sqlite3.Error as exc:
            raise StorageError(f"online store {self.url} cannot be opened: {exc}") from exc
        with self._opened_lock:
            self._opened.append(conn)
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._memory:
            return self._keeper
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _select(self, shape: tuple[int, ...]) -> str:
        sql = self._sql.get(shape)
        if sql is None:
            if len(self._sql) > 256:  # many shapes of request: keep the cache bounded
                self._sql.clear()
            parts = [
                "SELECT namespace, key, ts, payload FROM online_rows WHERE namespace = ? AND key "  # noqa: S608 (quoted identifiers, no user values)
                + ("= ?" if n == 1 else f"IN ({', '.join('?' * n)})")
                for n in shape
            ]
            sql = self._sql[shape] = " UNION ALL ".join(parts)
        return sql

    def write(self, namespace: str, rows: Sequence[OnlineRow]) -> int:
        params = [(namespace, str(k), int(ts), bytes(p)) for k, ts, p in rows]
        try:
            with self._guard:
                conn = self._conn
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_ONLINE_UPSERT, params)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"online store {self.url} refused a write: {exc}") from exc
        return len(params)

    def read(self, keys: Sequence[tuple[str, str]]) -> list[OnlineHit]:
        if not keys:
            return []
        if len(keys) == 1:  # the commonest read: one entity of one view
            try:
                with self._guard:
                    row = self._conn.execute(_ONLINE_GET, keys[0]).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"online store {self.url} failed a read: {exc}") from exc
            return [(row[0], row[1]) if row is not None else None]
        groups: dict[str, list[str]] = {}
        for ns, key in keys:
            groups.setdefault(ns, []).append(key)
        fetched: list[tuple[str, str, int, bytes]] = []
        try:
            with self._guard:
                for statement in _statements(groups):
                    sql = self._select(tuple(len(m) for _, m in statement))
                    params: list[str] = []
                    for ns, members in statement:
                        params.append(ns)
                        params.extend(members)
                    fetched += self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"online store {self.url} failed a read: {exc}") from exc
        found = {(ns, key): (ts, payload) for ns, key, ts, payload in fetched}
        return [found.get(k) for k in keys]

    def count(self, namespace: str) -> int:
        with self._guard:
            row = self._conn.execute(
                "SELECT count(*) FROM online_rows WHERE namespace = ?", (namespace,)
            ).fetchone()
        return int(row[0])

    def drop(self, namespace: str) -> None:
        with self._guard:
            self._conn.execute("DELETE FROM online_rows WHERE namespace = ?", (namespace,))

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
