"""Storage backends, chosen by URI. See :mod:`mainspring.storage.base` for the interfaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mainspring.errors import ConfigError
from mainspring.storage.base import BlobStore, EventLog, MetadataStore, OnlineStore

__all__ = [
    "BlobStore",
    "EventLog",
    "MetadataStore",
    "OnlineStore",
    "open_blob_store",
    "open_event_log",
    "open_metadata_store",
    "open_online_store",
]


def open_metadata_store(url: str, *, migrate: bool = True) -> MetadataStore:
    """Open the metadata store a URI names: ``sqlite:///path``, ``sqlite://`` (in memory),
    ``postgresql://user:password@host:port/database``."""
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from mainspring.storage.sqlite import open_sqlite

        return open_sqlite(url, migrate=migrate)
    if scheme in {"postgresql", "postgres", "postgresql+psycopg"}:
        from mainspring.storage.postgres import open_postgres

        return open_postgres(url, migrate=migrate)
    raise ConfigError(
        f"metadata URI {url!r} has an unknown scheme {scheme!r}; use sqlite:/// or postgresql://",
        key="metadata",
    )


def open_blob_store(url: str, storage_options: Mapping[str, Any] | None = None) -> BlobStore:
    """Open the blob store a URI names: ``memory://``, ``file:///path``, ``s3://bucket/prefix``."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from mainspring.storage.memory import MemoryBlobStore

        return MemoryBlobStore()
    if scheme in {"file", "s3", "s3a"}:
        from mainspring.storage.blobs import FsspecBlobStore

        return FsspecBlobStore(url, storage_options)
    raise ConfigError(
        f"artifact URI {url!r} has an unknown scheme {scheme!r}; use file:// or s3://",
        key="artifacts",
    )


def open_online_store(url: str) -> OnlineStore:
    """Open the online feature store a URI names: ``sqlite:///path``, ``sqlite://`` (in
    memory), ``memory://``, ``redis://host:port/db``, ``redis+unix:///path/redis.sock?db=0`` (a
    Redis server's unix-domain socket; redis-py's ``unix://`` form works too)."""
    scheme = url.split("://", 1)[0]
    if scheme == "sqlite":
        from mainspring.storage.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(url)
    if scheme == "memory":
        from mainspring.storage.memory import MemoryOnlineStore

        return MemoryOnlineStore()
    if scheme in {"redis", "rediss", "unix", "redis+unix"}:
        from mainspring.storage.redis import RedisOnlineStore

        return RedisOnlineStore(url)
    raise ConfigError(
        f"online store URI {url!r} has an unknown scheme {scheme!r}; use sqlite:///, redis://, "
        "redis+unix:/// or memory://",
        key="online",
    )


def open_event_log(url: str) -> EventLog:
    """Open the event log a URI names: ``sqlite:///path`` (embedded), ``memory://``,
    ``kafka://host:port[,host:port]``, ``redis+streams://host:port/db``."""
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from mainspring.storage.memory import memory_event_log

        return memory_event_log()
    if scheme == "sqlite":
        from mainspring.storage.eventlog import open_sqlite_event_log

        return open_sqlite_event_log(url)
    if scheme == "kafka":
        from mainspring.storage.kafka import open_kafka_event_log

        return open_kafka_event_log(url)
    if scheme in {"redis+streams", "rediss+streams"}:
        from mainspring.storage.redisstreams import open_redis_streams_event_log

        return open_redis_streams_event_log(url)
    raise ConfigError(
        f"event log URI {url!r} has an unknown scheme {scheme!r}; use sqlite:///, kafka://, "
        "redis+streams:// or memory://",
        key="events",
    )
