"""The embedded metadata backend: SQLite in WAL mode.

Writers take SQLite's database lock at ``BEGIN IMMEDIATE``, so read-then-write transactions are
serialised across threads and processes; readers never block in WAL mode.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.pool import StaticPool

from mainspring.storage.sql import SqlMetadataStore

BUSY_TIMEOUT_S = 60.0


def _no_lock(conn: Connection, name: str) -> None:
    """BEGIN IMMEDIATE already holds the database write lock."""


def open_sqlite(url: str, *, migrate: bool = True) -> SqlMetadataStore:
    """Open (creating if needed) the SQLite database named by a ``sqlite:///path`` URL.

    ``sqlite://`` (no path) is an in-memory database, the metadata store's in-memory twin.
    """
    memory = url in {"sqlite://", "sqlite:///:memory:"}
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
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # acknowledged means durable
        cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("mainspring_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return SqlMetadataStore(url, engine, lock=_no_lock, serialize=memory, migrate=migrate)
