"""``SqlMetadataStore``: metadata on SQLAlchemy 2, with Alembic migrations applied on open.

The dialect modules (``sqlite.py``, ``postgres.py``) build the engine and know how to take the
write lock; this module holds what the dialects share.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from mainspring.errors import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")

#: Takes the write lock inside an open transaction (a no-op where BEGIN already took it).
LockFn = Callable[[Connection, str], None]


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration that runs this package's migrations on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration's revision id."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


class DriverTx:
    """Statements in a transaction of :meth:`SqlMetadataStore.driver_write`.

    SQL is written with ``?`` placeholders and translated once per statement for drivers that
    use ``%s`` (psycopg); rows come back as tuples in the order of the selected columns.
    """

    def __init__(
        self,
        cursor: Any,
        placeholder: str,
        integrity_error: type[Exception] = Exception,
        *,
        sqlite: bool = False,
    ) -> None:
        self._cursor = cursor
        self._placeholder = placeholder
        #: the driver's exception for a broken constraint (a key already there)
        self.integrity_error = integrity_error
        self._sqlite = sqlite

    def data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version``: a number that changes when another connection
        commits to the database (never for this connection's own commits); None on other
        databases."""
        if not self._sqlite:
            return None
        self._cursor.execute("PRAGMA data_version")
        return int(self._cursor.fetchone()[0])

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else _translated(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._sql(sql), params)

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def first(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cursor.execute(self._sql(sql), params)
        row: tuple[Any, ...] | None = self._cursor.fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())


#: the URLs of an in-memory SQLite database
SQLITE_MEMORY_URLS = frozenset({"sqlite://", "sqlite:///:memory:"})

#: how long a writer waits for SQLite's write lock before giving up (as the engine's timeout)
LOCK_WAIT_S = 60.0


class WriteLockBusy(StorageError):
    """SQLite's write lock stayed taken for longer than the writer would wait (nothing was
    written)."""


def _begin_immediate(raw: Any, turn: WriterTurn | None, wait_s: float) -> bool:
    """``BEGIN IMMEDIATE``; returns whether the writer's ``turn`` is held (until COMMIT).

    With a :class:`WriterTurn` the writer first waits for its turn, which other hot writers hold
    only while they commit, then takes SQLite's lock at once. If a writer that takes no turn holds
    SQLite's lock, the turn is let go (so the other hot writers are not held up behind it) and
    the lock is waited for in steps of 0.1 to 2 ms, up to ``wait_s`` (:class:`WriteLockBusy`).

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... up to 100 ms between tries, so
    a writer that finds the lock taken for a millisecond (another process's commit) can sleep
    for tens of milliseconds after it is free. The connections of
    :meth:`SqlMetadataStore.hot_writer` have that handler off, so a busy database answers at
    once and the wait is this function's.
    """
    if turn is not None:
        turn.acquire()
        try:
            raw.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            turn.release()
            if not _busy(exc):
                raise
        except BaseException:
            turn.release()
            raise
    deadline = time.monotonic() + wait_s
    wait = 0.0001
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
            return False
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            if time.monotonic() > deadline:
                raise WriteLockBusy(f"the database is locked: {exc}") from None
        time.sleep(wait)
        wait = min(wait * 2, 0.002)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class WriterTurn:
    """The turn of one hot writer at a SQLite file's write lock, waited for in the kernel.

    SQLite's lock cannot be waited on: a writer that finds it taken can only try again later
    (:func:`_begin_immediate` polls in steps of 0.1 to 2 ms). Hot writers therefore first take
    an exclusive ``flock`` on ``<file>-writers``: the kernel queues them and wakes the next one
    the moment the holder lets go, so two serve workers appending decisions hand the lock to
    each other without sleeping (benchmarks/RESULTS.md, session 7). A writer that does not take
    the turn (a migration, a registry write) still holds SQLite's lock alone; hot writers then
    poll for it as before. Where ``flock`` is missing (Windows) or refused, there is no turn.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        weakref.finalize(self, os.close, fd)  # with the turn (and so with its connection)

    @classmethod
    def open(cls, database: str) -> WriterTurn | None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return None
        try:
            fd = os.open(f"{database}-writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:  # a filesystem without flock says so here, not in a commit
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            pass
        except OSError:
            os.close(fd)
            return None
        return cls(fd)

    def acquire(self) -> None:
        import fcntl

        fcntl.flock(self._fd, fcntl.LOCK_EX)  # lets go of the GIL while it waits

    def release(self) -> None:
        import fcntl

        fcntl.flock(self._fd, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=256)
def _translated(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` list of ``n`` values.

    >>> placeholders(3)
    '?, ?, ?'
    """
    return ", ".join("?" * n)


class SqlMetadataStore:
    """A :class:`~mainspring.storage.base.MetadataStore` over an SQLAlchemy engine."""

    def __init__(
        self,
        url: str,
        engine: Engine,
        *,
        lock: LockFn,
        serialize: bool = False,
        migrate: bool = True,
    ) -> None:
        self.url = url
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = lock
        # in-memory SQLite shares one connection between threads: serialise every use of it
        self._mutex: threading.RLock | None = threading.RLock() if serialize else None
        #: the writer turn of each connection of :meth:`hot_writer`, gone with the connection
        self._turns: weakref.WeakKeyDictionary[Connection, WriterTurn] = weakref.WeakKeyDictionary()
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"SqlMetadataStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _guard(self) -> Iterator[None]:
        if self._mutex is None:
            yield
            return
        with self._mutex:
            yield

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._guard(), self._errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, lock: str = "main") -> Iterator[Connection]:
        with self._guard(), self._errors(), self.engine.connect() as raw:
            conn = raw.execution_options(mainspring_write=True)
            with conn.begin():
                self._lock(conn, lock)
                yield conn

    @contextmanager
    def write_on(self, conn: Connection, lock: str = "main") -> Iterator[Connection]:
        """Like :meth:`write`, on a connection the caller keeps: a dedicated writer's own, with
        its own settings such as SQLite's ``synchronous`` (``conn`` from ``engine.connect()``)."""
        with self._guard(), self._errors():
            conn = conn.execution_options(mainspring_write=True)
            with conn.begin():
                self._lock(conn, lock)
                yield conn

    @contextmanager
    def driver_read(self) -> Iterator[DriverTx]:
        """A read transaction run through the database driver (rows as tuples), for hot reads
        of many rows: SQLAlchemy's result processing costs more per row than SQLite's read."""
        with self.read() as conn:
            raw: Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            try:
                yield DriverTx(cursor, "?" if self.dialect == "sqlite" else "%s")
            finally:
                cursor.close()

    @property
    def wal_file(self) -> bool:
        """Whether this is a SQLite database in a file (in WAL mode), not in memory."""
        return self.dialect == "sqlite" and self.url not in SQLITE_MEMORY_URLS

    def hot_writer(self) -> Connection:
        """A connection of its own for :meth:`driver_write` (the caller closes it).

        On a SQLite file its busy handler is off (:meth:`driver_write` waits for the write lock in
        short steps itself) and its commits never checkpoint the write-ahead log: a checkpoint
        copies up to a thousand pages into the database file inside whichever COMMIT crossed the
        threshold, milliseconds for one request. The writer calls :meth:`checkpoint` off its
        commit path instead. Other connections keep SQLite's automatic checkpoints, so the log
        stays bounded even if nobody calls it. Its transactions wait for their
        :class:`WriterTurn` first.
        """
        conn = self.engine.connect()
        if self.wal_file:
            raw: Any = conn.connection.dbapi_connection
            try:
                raw.execute("PRAGMA busy_timeout=0")
                raw.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error as exc:
                conn.close()
                raise StorageError(f"metadata store {self.url} failed: {exc}") from exc
            turn = WriterTurn.open(self.url.removeprefix("sqlite:///"))
            if turn is not None:
                self._turns[conn] = turn
        return conn

    def checkpoint(self) -> None:
        """Copy what the SQLite write-ahead log holds into the database file, waiting for no
        reader or writer (``PASSIVE``: what a reader still needs stays for the next time).
        Nothing to do on other databases."""
        if not self.wal_file:
            return
        with self._errors(), self.engine.connect() as conn:
            raw: Any = conn.connection.dbapi_connection
            try:
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"metadata store {self.url} failed: {exc}") from exc

    @contextmanager
    def driver_write(
        self, conn: Connection, lock: str = "main", *, wait_s: float | None = None
    ) -> Iterator[DriverTx]:
        """A write transaction on ``conn`` run through the database driver, for hot paths.

        Building and compiling an SQLAlchemy statement costs more than SQLite takes to run it, so a
        writer that commits once per request (the decision log) talks to the driver directly:
        statements are written once with ``?`` placeholders (:class:`DriverTx`). SQLite opens the
        transaction with ``BEGIN IMMEDIATE`` on ``conn``'s own ``sqlite3`` connection (best one
        from :meth:`hot_writer`, whose turn it waits for first); other dialects keep
        :meth:`write_on`'s transaction and lock. ``wait_s``: how long to wait for SQLite's lock
        while a writer outside the turns holds it (default :data:`LOCK_WAIT_S`), then
        :class:`WriteLockBusy`.
        """
        if self.dialect != "sqlite":
            with self.write_on(conn, lock) as tx:
                raw: Any = tx.connection.dbapi_connection
                cursor = raw.cursor()
                try:
                    dbapi = self.engine.dialect.dbapi
                    assert dbapi is not None  # a connected engine has its driver
                    yield DriverTx(cursor, "%s", dbapi.IntegrityError)
                finally:
                    cursor.close()
            return
        with self._guard():
            raw = conn.connection.dbapi_connection
            try:
                turn = self._turns.get(conn)
                held = _begin_immediate(raw, turn, LOCK_WAIT_S if wait_s is None else wait_s)
                try:
                    yield DriverTx(raw.cursor(), "?", sqlite3.IntegrityError, sqlite=True)
                    raw.execute("COMMIT")
                except BaseException:
                    if raw.in_transaction:  # SQLite rolls back by itself on some errors
                        raw.execute("ROLLBACK")
                    raise
                finally:
                    if held:
                        assert turn is not None
                        turn.release()
            except WriteLockBusy as exc:
                raise WriteLockBusy(f"metadata store {self.url} failed: {exc}") from None
            except sqlite3.OperationalError as exc:
                raise StorageError(f"metadata store {self.url} failed: {exc}") from exc

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (idempotent, safe from many processes)."""
        with self.write("migrations") as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            if current != head_revision():
                command.upgrade(alembic_config(conn), "head")

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self.read() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StorageError(
                f"metadata store {self.engine.url.render_as_string(hide_password=True)} "
                f"failed: {exc.orig}"
            ) from exc
        except SQLAlchemyError as exc:
            if type(exc).__name__ == "IntegrityError":
                raise
            raise StorageError(f"metadata store failed: {exc}") from exc
