"""Group commit: one writer thread turns the appends of many threads into few transactions.

Callers put an operation on a queue and wait on its future; the writer takes everything queued
(up to ``max_batch``), runs it in one write transaction on its own connection and resolves the
futures only after COMMIT returned, so an acknowledged record is a committed one. One fsync then
serves a whole batch: under load the cost of durability is shared, not paid per record.

A blocking caller (:meth:`GroupCommitter.run`) that finds no commit under way leads one itself,
on its own thread, taking along whatever else is queued: one decision at a time then costs no
hand-off between threads (two context switches, more than the INSERT), while concurrent callers
still share commits. Asyncio callers (:meth:`GroupCommitter.run_async`) hand over what one pass
of their event loop appended as one batch, at the pass's end. On SQLite the loop commits that
batch itself when no commit is under way (see :meth:`GroupCommitter.run_async` for why);
otherwise, and on PostgreSQL, the writer thread commits it while the loop goes on.

On SQLite the writer's connection never checkpoints the write-ahead log inside a COMMIT (SQLite
would, every thousand pages, copying them all while one request waits): a checkpoint thread does
it every :data:`CHECKPOINT_EVERY` records, without the GIL and without blocking the writer.

Durability (:class:`Durability`) is a property of the writer's connection:

- ``fsync`` (default): SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``. Every
  acknowledged record survives a power cut.
- ``process``: SQLite ``synchronous=NORMAL`` (WAL): survives the process being killed, but a power
  cut or an OS crash may lose the last acknowledged transactions. PostgreSQL
  ``synchronous_commit=off``: survives the client being killed; a crash of the database server may
  lose the last acknowledged transactions (up to three times ``wal_writer_delay``). Neither mode
  can corrupt the chain.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from mainspring.errors import InvalidInputError, MainspringError, StorageError
from mainspring.storage.sql import DriverTx, SqlMetadataStore, WriteLockBusy

log = logging.getLogger("mainspring.audit")

DEFAULT_MAX_BATCH = 512
#: how long an event loop committing its own batch waits for a SQLite lock held by a writer
#: other than the decision logs' (a migration, a registry write) before it hands the batch to
#: the writer thread: its other requests must not wait behind that writer
LOOP_LOCK_WAIT_S = 0.005
#: records committed between two checkpoints of SQLite's write-ahead log (on a thread of its own)
CHECKPOINT_EVERY = 256


#: how much lower the CPU priority of the log's background threads is (the mirror, the
#: checkpoints): added to the process's nice value
BACKGROUND_NICE = 10


def lower_priority() -> None:
    """Give the calling thread a lower CPU priority than the threads that answer requests.

    The mirror and the checkpoints have seconds to do their work, where a request has
    milliseconds: on a busy machine (two serve workers and a load generator on two cores) the
    mirror's passes took a core from the workers for several milliseconds at a time. With both
    at nice +10 the p99 over HTTP fell from 35.7 to 25.2 ms (medians of 14 interleaved bursts);
    the mirror then trails the log by up to about 0.8 s at full load instead of 0.2 s
    (benchmarks/RESULTS.md, session 7). Linux only (its nice value is per thread); elsewhere,
    and if refused, nothing changes.
    """
    if sys.platform != "linux":
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE)
    except OSError:  # pragma: no cover - a sandbox refusing setpriority
        log.debug("could not lower a background thread's priority", exc_info=True)


class Durability(enum.StrEnum):
    """When an acknowledged record is safe: see the module's docstring."""

    FSYNC = "fsync"
    PROCESS = "process"

    @classmethod
    def parse(cls, value: Durability | str) -> Durability:
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(
                f"durability {value!r} is not one of fsync, process", field="durability"
            ) from None


@dataclass(slots=True)
class Op:
    """One queued write: what to do, its argument, and the caller's future: a thread's
    ``future``, or an asyncio caller's ``waiter`` on its event ``loop``."""

    kind: str
    payload: Any
    future: Future[Any] = field(default_factory=Future)
    waiter: asyncio.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None


class RetryBatch(Exception):
    """Raised by a batch function whose guess failed (it wrote without a look it skips when it
    can): the writer rolls the transaction back and runs the batch once more, in a new one."""


#: Runs a batch inside the writer's transaction; returns, per op, a result or the
#: ``MainspringError`` that op failed with (the others still commit). Raising rolls back all;
#: raising :class:`RetryBatch` runs it once more.
BatchFn = Callable[[DriverTx, list[Op]], list[Any]]
#: Called after COMMIT with the committed ops and their results (before the futures resolve).
AfterCommit = Callable[[list[Op], list[Any]], None]

_STOP = Op("stop", None)
#: the thread future of an asyncio caller's op, and of the op of a caller committing it on its
#: own thread (who takes the result from the batch): never waited on, never resolved
_SETTLED: Future[Any] = Future()


def _settle(
    batch: list[Op], results: list[Any], here: asyncio.AbstractEventLoop | None = None
) -> None:
    """Resolve each op's future with its result (or error); asyncio callers' in one call per
    event loop, on that loop's thread (at once for ``here``, the loop this thread runs)."""
    loops: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for op, result in zip(batch, results, strict=True):
        if op.waiter is not None and op.loop is not None:
            loops.setdefault(op.loop, []).append((op.waiter, result))
        elif op.future is _SETTLED:
            continue
        elif isinstance(result, BaseException):
            op.future.set_exception(result)
        else:
            op.future.set_result(result)
    for loop, settled in loops.items():
        if loop is here:
            _resolve(settled)
            continue
        try:
            loop.call_soon_threadsafe(_resolve, settled)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            log.debug("an event loop closed before its decision-log writes were acknowledged")


def _resolve(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for waiter, result in settled:
        if waiter.done():  # the caller was cancelled; its record is committed all the same
            continue
        if isinstance(result, BaseException):
            waiter.set_exception(result)
        else:
            waiter.set_result(result)


def configure(store: SqlMetadataStore, conn: Connection, durability: Durability) -> None:
    """Give a dedicated connection the flush behaviour of ``durability`` (see the module)."""
    fsync = durability is Durability.FSYNC
    if store.dialect == "sqlite":
        if not store.wal_file:
            return  # in memory: nothing to make durable
        dbapi: Any = conn.connection.dbapi_connection  # autocommit: runs outside a transaction
        dbapi.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
    elif store.dialect == "postgresql":
        conn.exec_driver_sql(f"SET synchronous_commit TO {'on' if fsync else 'off'}")
        conn.commit()


class GroupCommitter:
    """The writer thread of one store. ``submit`` from any thread; ``close`` drains and stops."""

    def __init__(
        self,
        store: SqlMetadataStore,
        write_batch: BatchFn,
        *,
        lock: str,
        durability: Durability = Durability.FSYNC,
        max_batch: int = DEFAULT_MAX_BATCH,
        after_commit: AfterCommit | None = None,
        name: str = "mainspring-group-commit",
    ) -> None:
        if max_batch < 1:
            raise InvalidInputError("max_batch must be at least 1", field="max_batch")
        self.store = store
        #: whether an event loop commits its own batches when no commit is under way (SQLite:
        #: statements are calls into the library, not round trips to a server)
        self.commits_on_loop = store.dialect == "sqlite"
        self.durability = durability
        self.max_batch = max_batch
        self._write_batch = write_batch
        self._after_commit = after_commit
        self._lock = lock
        self._name = name
        self._queue: queue.SimpleQueue[Op] = queue.SimpleQueue()
        self._conn: Connection | None = None
        self._thread: threading.Thread | None = None
        self._state = threading.Lock()
        self._leading = threading.Lock()  # held by whichever thread is committing
        self._closed = False
        self._uncheckpointed = 0  # records committed since the last checkpoint was asked for
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        #: what each event loop submitted in its current pass, handed over at the pass's end
        self._pending: dict[asyncio.AbstractEventLoop, list[Op]] = {}

    def submit(self, kind: str, payload: Any) -> Future[Any]:
        """Queue one operation; its future resolves once the batch holding it has committed."""
        op = Op(kind, payload)
        with self._state:
            self._check_open()
            self._queue.put(op)
        return op.future

    async def run_async(self, kind: str, payload: Any) -> Any:
        """:meth:`run` for asyncio code: handed to the writer thread, awaited.

        The operations an event loop submits in one pass over its ready callbacks go to the
        writer together, at the end of that pass (``call_soon``): handed over one by one, the
        first woke the writer, which committed it alone while the loop was still deciding the
        next (1.6 records per commit under load over HTTP). The writer hands a batch's results
        to each loop in one call, too.

        On SQLite (:attr:`commits_on_loop`) the loop commits the batch itself at the end of its
        pass, unless another thread is committing. Handed to the writer thread, a batch waited
        for the GIL at each of its statements while the loop decided the next requests: a
        transaction took 0.6 ms at the median but 10-15 ms at the 99th percentile. Committed on
        the loop, the wait is the statements' own, the loop is not woken from another thread,
        and a serve worker spends less CPU per decision (benchmarks/RESULTS.md, session 7).
        """
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        op = Op(kind, payload, _SETTLED, waiter, loop)
        with self._state:
            self._check_open()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(op)
        return await waiter

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit what ``loop`` submitted since its last hand-over, or queue it for the writer
        thread (on that loop's thread)."""
        ops = self._pending.pop(loop, [])
        if self.commits_on_loop and self._leading.acquire(blocking=False):
            try:
                if not self._closed:
                    self._commit(ops, loop, LOOP_LOCK_WAIT_S)
                    return
            except WriteLockBusy:  # nothing written: the writer thread waits for the lock
                pass
            finally:
                self._leading.release()
        with self._state:
            if not self._closed:
                for op in ops:
                    self._queue.put(op)
                return
        for op in ops:  # closed in between: none of these was written
            if op.waiter is not None and not op.waiter.done():
                op.waiter.set_exception(StorageError("the decision log is closed"))

    def run(self, kind: str, payload: Any) -> Any:
        """Do one operation and return its result once committed (or raise its error).

        With no commit under way the caller commits itself, with whatever else is queued;
        otherwise the operation joins the next group commit of the writer thread.
        """
        with self._state:
            self._check_open()
            leading = self._leading.acquire(blocking=False)
            if not leading:
                op = Op(kind, payload)
                self._queue.put(op)
        if not leading:
            return op.future.result()
        try:  # its result comes straight from the batch: no future to resolve and wait on
            batch = [Op(kind, payload, _SETTLED)]
            self._take_queued(batch)
            result = self._commit(batch)[0]
        finally:
            self._leading.release()
        if isinstance(result, BaseException):
            raise result
        return result

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the decision log is closed")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Commit what is queued, then stop the writer and release its connection."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(_STOP)
        if thread is not None:
            thread.join()
        with self._leading:  # a caller still committing on its own thread finishes first
            self._drop_connection()
            checkpointer = self._checkpointer
        self._checkpoint_due.set()
        if checkpointer is not None:
            checkpointer.join()

    # --- committing ----------------------------------------------------------------------------

    def _take_queued(self, batch: list[Op]) -> None:
        """Move queued operations into ``batch`` (up to ``max_batch``). The stop marker stays
        queued for the writer thread, whichever thread saw it."""
        while len(batch) < self.max_batch:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if op is _STOP:
                self._queue.put(_STOP)
                return
            batch.append(op)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            with self._leading:
                batch = [first]
                self._take_queued(batch)
                self._commit(batch)

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.store.hot_writer()
            try:
                self._configure(conn)
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _configure(self, conn: Connection) -> None:
        configure(self.store, conn, self.durability)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                log.debug("closing the writer's connection failed", exc_info=True)

    def _commit(
        self,
        batch: list[Op],
        here: asyncio.AbstractEventLoop | None = None,
        wait_s: float | None = None,
    ) -> list[Any]:
        """Commit ``batch`` and settle its ops; returns each op's result or error, in order.
        ``here``: the event loop this thread runs, if any (its callers are resolved at once).
        ``wait_s``: how long to wait for a SQLite lock held by a writer of another kind, then
        raise :class:`WriteLockBusy` with nothing written (default: as long as the store does)."""
        try:
            results = self._transaction(batch, wait_s)
        except Exception as exc:
            if wait_s is not None and isinstance(exc, WriteLockBusy):
                raise
            self._drop_connection()
            if len(batch) > 1:  # one bad op must not fail the others: retry them one by one
                return [self._commit([op], here)[0] for op in batch]
            error = (
                exc
                if isinstance(exc, MainspringError)
                else StorageError(f"the decision log could not commit: {exc}")
            )
            _settle(batch, [error], here)
            return [error]
        self._uncheckpointed += len(batch)
        if self._uncheckpointed >= CHECKPOINT_EVERY:
            self._ask_checkpoint()
        if self._after_commit is not None:
            try:
                self._after_commit(batch, results)
            except Exception:
                log.exception("after-commit hook failed")
        _settle(batch, results, here)
        return results

    def _ask_checkpoint(self) -> None:
        """Wake the checkpoint thread (called by the committing thread, under ``_leading``)."""
        self._uncheckpointed = 0
        if self.store.dialect != "sqlite":
            return
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name=f"{self._name}-checkpoint", daemon=True
            )
            self._checkpointer.start()
        self._checkpoint_due.set()

    def _checkpoints(self) -> None:
        lower_priority()
        while True:
            self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if self._closed:
                return
            try:
                self.store.checkpoint()
            except Exception:  # the next one copies what this one did not
                log.warning("checkpointing the decision log's database failed", exc_info=True)

    def _transaction(self, batch: list[Op], wait_s: float | None = None) -> list[Any]:
        try:
            with self.store.driver_write(self._connection(), self._lock, wait_s=wait_s) as tx:
                return self._write_batch(tx, batch)
        except RetryBatch:
            with self.store.driver_write(self._connection(), self._lock, wait_s=wait_s) as tx:
                return self._write_batch(tx, batch)
