"""The scale-out metadata backend: PostgreSQL through psycopg 3.

Writers take a transaction-scoped advisory lock named after the write's purpose, so read-then-write
transactions are serialised across processes and hosts.
"""

from __future__ import annotations

import hashlib
import importlib.util

from sqlalchemy import Connection, create_engine, text

from mainspring.errors import MissingDependencyError
from mainspring.storage.sql import SqlMetadataStore


def _advisory_lock(conn: Connection, name: str) -> None:
    key = int.from_bytes(
        hashlib.sha256(f"mainspring:{name}".encode()).digest()[:8], "big", signed=True
    )
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def open_postgres(url: str, *, migrate: bool = True) -> SqlMetadataStore:
    """Open the PostgreSQL database named by a ``postgresql://user:pw@host:port/db`` URL."""
    if importlib.util.find_spec("psycopg") is None:
        raise MissingDependencyError(
            "psycopg", extra="postgres", purpose="PostgreSQL metadata stores"
        )
    scheme, rest = url.split("://", 1)
    engine = create_engine(f"postgresql+psycopg://{rest}", pool_pre_ping=True)
    del scheme
    return SqlMetadataStore(url, engine, lock=_advisory_lock, migrate=migrate)
