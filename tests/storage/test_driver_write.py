"""Writes through the driver on SQLite: the write lock is waited for in short steps."""

from __future__ import annotations

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
    with store.engine.connect() as conn:
        started = time.monotonic()
        with store.driver_write(conn, "t") as tx:
            waited = time.monotonic() - started
            assert tx.first("SELECT 1") == (1,)
        # the connection's own busy timeout is back once the lock is taken
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
    assert waited >= 0.04  # it did wait for the other writer
    other.close()
    store.close()


def test_a_lock_held_past_the_wait_is_a_storage_error(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "LOCK_WAIT_S", 0.1)
    other = holder(store)
    with store.engine.connect() as conn:
        with pytest.raises(StorageError, match="locked"), store.driver_write(conn, "t"):
            pass
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
        assert not raw.in_transaction
    other.execute("ROLLBACK")
    other.close()
    store.close()
