"""The storage interfaces. Each concern has one small Protocol and one module per backend.

- :class:`BlobStore` holds immutable artifacts by key: ``memory.MemoryBlobStore``,
  ``blobs.FsspecBlobStore`` (local directory, S3).
- :class:`MetadataStore` holds the relational metadata (registry, tokens, hash-chained logs):
  ``sql.SqlMetadataStore`` on SQLite (``sqlite.py``) or PostgreSQL (``postgres.py``); its in-memory
  twin is ``memory.memory_metadata()``, an in-memory SQLite database.
- :class:`OnlineStore` holds the latest feature row per view and entity key for serving:
  ``online.SqliteOnlineStore`` (embedded default), ``redis.RedisOnlineStore`` and the in-memory
  twin ``memory.MemoryOnlineStore``.

Backends are chosen by URI through :func:`mainspring.storage.open_blob_store`,
:func:`mainspring.storage.open_metadata_store` and :func:`mainspring.storage.open_online_store`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

from mainspring.errors import InvalidInputError


def check_key(key: str) -> str:
    """Validate a blob key: a ``/``-separated relative path without empty, ``.`` or ``..`` parts.

    >>> check_key("models/credit/1/model.txt")
    'models/credit/1/model.txt'
    >>> check_key("../etc/passwd")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mainspring.errors.InvalidInputError: blob key '../etc/passwd' must be a relative path ...
    """
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise InvalidInputError(
            f"blob key {key!r} must be a relative path without empty, '.' or '..' parts",
            field="key",
        )
    return key


@runtime_checkable
class BlobStore(Protocol):
    """Immutable bytes by key. Keys are ``/``-separated relative paths."""

    url: str

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically: readers see all of it or nothing."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; raises ``NotFoundError`` when absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds data."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with ``prefix``, in sorted order."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """A relational store with migrations applied and serialised write transactions."""

    url: str
    dialect: str

    def read(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction for reading."""
        ...

    def write(self) -> AbstractContextManager[Connection]:
        """A transaction that holds the store's write lock until it commits or rolls back.

        Writers are serialised across threads and processes, so read-then-write logic inside
        (allocating the next version number, appending to a hash chain) is race-free.
        """
        ...

    def close(self) -> None:
        """Release connections."""


#: One online row as stored: (entity key, event time in microseconds since the epoch, payload).
OnlineRow = tuple[str, int, bytes]
#: What a read finds for one (namespace, key): (event time in microseconds, payload), or ``None``.
OnlineHit = tuple[int, bytes] | None


@runtime_checkable
class OnlineStore(Protocol):
    """The latest row per (namespace, entity key), for low-latency serving.

    A namespace is one feature view's schema (the feature store names it). Payloads are opaque
    bytes. A write keeps, per key, the row with the newest event time (a late, older row never
    replaces a newer one); rows with equal event times replace each other.
    """

    url: str

    def write(self, namespace: str, rows: Sequence[OnlineRow]) -> int:
        """Store a batch atomically (all rows or none); returns how many rows were offered."""
        ...

    def read(self, keys: Sequence[tuple[str, str]]) -> list[OnlineHit]:
        """The stored row of each ``(namespace, key)``, in order, in one round trip."""
        ...

    def count(self, namespace: str) -> int:
        """How many keys ``namespace`` holds."""
        ...

    def drop(self, namespace: str) -> None:
        """Remove every row of ``namespace``."""

    def close(self) -> None:
        """Release connections."""
