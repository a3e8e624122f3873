"""In-memory twins of the storage backends, for tests and notebooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from mainspring.errors import NotFoundError
from mainspring.storage.base import check_key
from mainspring.storage.sql import SqlMetadataStore

if TYPE_CHECKING:
    from mainspring.storage.eventlog import SqliteEventLog


class MemoryBlobStore:
    """A :class:`~mainspring.storage.base.BlobStore` in a dict.

    >>> store = MemoryBlobStore()
    >>> store.put("a/b", b"x"); store.get("a/b"), list(store.list("a/"))
    (b'x', ['a/b'])
    """

    def __init__(self) -> None:
        self.url = "memory://"
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        check_key(key)
        with self._lock:
            self._blobs[key] = bytes(data)

    def get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise NotFoundError("blob", key) from None

    def exists(self, key: str) -> bool:
        check_key(key)
        with self._lock:
            return key in self._blobs

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    def list(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            keys = sorted(k for k in self._blobs if k.startswith(prefix))
        return iter(keys)


def memory_metadata() -> SqlMetadataStore:
    """A fresh in-memory metadata store (in-memory SQLite with the full schema)."""
    from mainspring.storage.sqlite import open_sqlite

    return open_sqlite("sqlite://")


def memory_event_log() -> SqliteEventLog:
    """A fresh in-memory event log: the embedded log on an in-memory SQLite database, so it
    behaves exactly like the durable one (without the durability)."""
    from mainspring.storage.eventlog import SqliteEventLog

    return SqliteEventLog(":memory:")
