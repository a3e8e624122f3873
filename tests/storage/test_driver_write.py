"""Writes through the driver on SQLite: the write lock is waited for in short steps, and the
write-ahead log is checkpointed off the commit path."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

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
