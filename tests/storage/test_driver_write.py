"""Writes through the driver on SQLite: the write lock is waited for in short steps, and the
write-ahead log is checkpointed off the commit path."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from tests.storage.turns import recorded_naps, turn_is_free

from mainspring.errors import StorageError
from mainspring.storage import open_metadata_store, sql
from mainspring.storage.sql import SqlMetadataStore


@pytest.fixture
def store(tmp_path: Path) -> SqlMetadataStore:
    opened = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(opened, SqlMetadataStore)
    return opened


def holder(store: SqlMetadataStore) -> sqlite3.Connection:
    """Another connection (as another process would be) holding the write lock."""
    path = store.url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def test_a_writer_takes_the_lock_soon_after_another_lets_it_go(store: SqlMetadataStore) -> None:
    other = holder(store)
    threading.Timer(0.05, lambda: other.execute("ROLLBACK")).start()
    with store.hot_writer() as conn:
        started = time.monotonic()
        with store.driver_write(conn, "t") as tx:
            waited = time.monotonic() - started
            assert tx.first("SELECT 1") == (1,)
    assert waited >= 0.04  # it did wait for the other writer
    other.close()
    store.close()


def test_a_lock_held_past_the_wait_is_a_storage_error(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "LOCK_WAIT_S", 0.1)
    other = holder(store)
    with store.hot_writer() as conn:
        started = time.monotonic()
        with pytest.raises(StorageError, match="locked"), store.driver_write(conn, "t"):
            pass
        assert time.monotonic() - started < 30  # its own wait, not SQLite's 60 s busy handler
        assert not conn.connection.dbapi_connection.in_transaction
    other.execute("ROLLBACK")
    other.close()
    store.close()


def pragma(conn: object, name: str) -> int:
    raw = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    return int(raw.execute(f"PRAGMA {name}").fetchone()[0])


def test_a_hot_writer_leaves_the_waiting_and_the_checkpoints_to_mainspring(
    store: SqlMetadataStore,
) -> None:
    with store.hot_writer() as hot, store.engine.connect() as pooled:
        assert (pragma(hot, "busy_timeout"), pragma(hot, "wal_autocheckpoint")) == (0, 0)
        assert (pragma(pooled, "busy_timeout"), pragma(pooled, "wal_autocheckpoint")) == (
            60_000,
            1000,
        )
    store.close()


def test_commits_of_a_hot_writer_stay_in_the_wal_until_a_checkpoint(
    store: SqlMetadataStore,
) -> None:
    path = store.url.removeprefix("sqlite:///")
    with store.hot_writer() as conn:
        with store.driver_write(conn, "t") as tx:
            tx.execute("CREATE TABLE scratch (blob BLOB)")
        store.checkpoint()
        before = os.path.getsize(path)
        for _ in range(300):  # 1,200 pages: past SQLite's own threshold of 1,000
            with store.driver_write(conn, "t") as tx:
                tx.execute("INSERT INTO scratch VALUES (?)", (os.urandom(16_000),))
        assert os.path.getsize(path) == before  # no commit copied the log into the database
        store.checkpoint()
        assert os.path.getsize(path) > before + 4_000_000
        with store.driver_write(conn, "t") as tx:
            assert tx.first("SELECT COUNT(*) FROM scratch") == (300,)
    store.close()


@pytest.mark.skipif(os.name == "nt", reason="no flock on Windows: hot writers poll")
def test_a_hot_writer_holds_its_turn_for_its_transaction(store: SqlMetadataStore) -> None:
    with store.hot_writer() as conn:
        assert turn_is_free(store)
        with store.driver_write(conn, "t") as tx:
            assert not turn_is_free(store)
            tx.execute("CREATE TABLE scratch (n INTEGER)")
        assert turn_is_free(store)
        with pytest.raises(RuntimeError), store.driver_write(conn, "t") as tx:
            tx.execute("INSERT INTO scratch VALUES (1)")
            raise RuntimeError("rolled back")
        assert turn_is_free(store)  # let go on the way out of a failed transaction too
        with store.driver_write(conn, "t") as tx:
            assert tx.first("SELECT COUNT(*) FROM scratch") == (0,)
    store.close()


@pytest.mark.skipif(os.name == "nt", reason="no flock on Windows: hot writers poll")
def test_hot_writers_wait_for_each_other_in_the_kernel_not_by_polling(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot writer that comes while another is committing is woken when that one is done: it
    never finds SQLite's lock taken, so it never sleeps between tries."""
    naps = recorded_naps(monkeypatch)
    with store.hot_writer() as first, store.hot_writer() as second:
        with store.driver_write(first, "t") as tx:
            tx.execute("CREATE TABLE scratch (who TEXT)")
        inside, order = threading.Event(), []

        def hold() -> None:
            with store.driver_write(first, "t") as tx:
                inside.set()
                time.sleep(0.1)
                tx.execute("INSERT INTO scratch VALUES ('first')")
                order.append("first")

        holder_thread = threading.Thread(target=hold)
        holder_thread.start()
        inside.wait()
        with store.driver_write(second, "t") as tx:
            order.append("second")
            tx.execute("INSERT INTO scratch VALUES ('second')")
        holder_thread.join()
        assert order == ["first", "second"]
        assert naps == []
        with store.driver_write(second, "t") as tx:
            assert tx.all("SELECT who FROM scratch ORDER BY rowid") == [("first",), ("second",)]
    store.close()


@pytest.mark.skipif(os.name == "nt", reason="no flock on Windows: hot writers poll")
def test_a_writer_outside_the_turns_is_waited_for_without_holding_the_turn(
    store: SqlMetadataStore,
) -> None:
    """While a hot writer polls for a lock that a writer taking no turn holds, its turn is free
    for the others; past ``wait_s`` it gives up with nothing written."""
    other = holder(store)
    seen: list[bool] = []
    threading.Timer(0.1, lambda: seen.append(turn_is_free(store))).start()
    with store.hot_writer() as conn:
        with (
            pytest.raises(sql.WriteLockBusy, match="locked"),
            store.driver_write(conn, "t", wait_s=0.3),
        ):
            pass
        assert seen == [True]
        assert not conn.connection.dbapi_connection.in_transaction
        other.execute("ROLLBACK")
        with store.driver_write(conn, "t", wait_s=0.3) as tx:
            assert tx.first("SELECT 1") == (1,)
    other.close()
    store.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc (Linux)")
def test_a_hot_writers_turn_is_closed_with_its_connection(store: SqlMetadataStore) -> None:
    import gc

    def turns_open() -> int:
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # the listing's own descriptor, closed by now
                continue
        return sum(target.endswith("-writers") for target in targets)

    before = turns_open()
    conn = store.hot_writer()
    assert turns_open() == before + 1
    conn.invalidate()
    conn.close()
    del conn
    gc.collect()
    assert turns_open() == before
    store.close()
