"""The storage interfaces. Each concern has one small Protocol and one module per backend.

- :class:`BlobStore` holds immutable artifacts by key: ``memory.MemoryBlobStore``,
  ``blobs.FsspecBlobStore`` (local directory, S3).
- :class:`MetadataStore` holds the relational metadata (registry, tokens, hash-chained logs):
  ``sql.SqlMetadataStore`` on SQLite (``sqlite.py``) or PostgreSQL (``postgres.py``); its in-memory
  twin is ``memory.memory_metadata()``, an in-memory SQLite database.
- :class:`OnlineStore` holds the latest feature row per view and entity key for serving:
  ``online.SqliteOnlineStore`` (embedded default), ``redis.RedisOnlineStore`` and the in-memory
  twin ``memory.MemoryOnlineStore``.
- :class:`EventLog` holds partitioned topics of events with consumer groups: ``eventlog.py``
  (embedded, SQLite), ``kafka.py`` (Apache Kafka), ``redisstreams.py`` (Redis Streams); see the
  class.

Backends are chosen by URI through :func:`mainspring.storage.open_blob_store`,
:func:`mainspring.storage.open_metadata_store`, :func:`mainspring.storage.open_online_store` and
:func:`mainspring.storage.open_event_log`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy import Connection

from mainspring.errors import InvalidInputError
from mainspring.records import Event


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


def partition_for(key: str, partitions: int) -> int:
    """The partition of a keyed event: Kafka's own rule (murmur2 of the UTF-8 key, made positive,
    modulo the partition count), so a key lands on the same partition on every backend.

    >>> partition_for("customer-42", 1), partition_for("customer-42", 6) in range(6)
    (0, True)
    """
    data = key.encode("utf-8")
    mask, m = 0xFFFFFFFF, 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def next_offsets(events: Sequence[Event]) -> dict[tuple[str, int], int]:
    """The offset to commit per (topic, partition) after ``events``: one past the highest read.

    >>> from mainspring.records import Event
    >>> read = [Event("t", {}, partition=0, offset=4), Event("t", {}, partition=0, offset=2)]
    >>> next_offsets(read)
    {('t', 0): 5}
    """
    upto: dict[tuple[str, int], int] = {}
    for event in events:
        if event.partition is None or event.offset is None:
            raise InvalidInputError("only events read from the log can be committed")
        where = (event.topic, event.partition)
        upto[where] = max(upto.get(where, 0), event.offset + 1)
    return upto


@runtime_checkable
class EventConsumer(Protocol):
    """A member of a consumer group reading its share of the group's partitions.

    Delivery is at-least-once: what was polled but not committed is delivered again to whoever
    holds the partition next (after a restart or a rebalance).
    """

    group: str

    def poll(self, max_events: int = 500, timeout_s: float = 1.0) -> list[Event]:
        """Up to ``max_events`` events from the assigned partitions, in offset order within each
        partition; waits up to ``timeout_s`` when none is ready (then returns ``[]``)."""
        ...

    def commit(self, events: Sequence[Event]) -> None:
        """Record ``events`` (and all before them in their partitions) as processed by the group."""

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` on (replay); the partition must be assigned."""

    def assignment(self) -> list[tuple[str, int]]:
        """The (topic, partition) pairs this member reads now (may change on rebalance)."""
        ...

    def close(self) -> None:
        """Leave the group (its partitions go to the other members)."""


@runtime_checkable
class EventLog(Protocol):
    """Partitioned, append-only topics of :class:`~mainspring.records.Event` with offsets.

    Backends: ``eventlog.SqliteEventLog`` (embedded, durable; ``memory.memory_event_log()`` is its
    in-memory twin), ``kafka.KafkaEventLog`` (Apache Kafka) and
    ``redisstreams.RedisStreamsEventLog`` (Redis Streams). Keyed events go to
    :func:`partition_for`; keyless ones are spread over the partitions.
    """

    url: str

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        """Create a topic; retention drops the oldest events past an age or a size per partition.
        Creating an existing topic is a no-op. Producing to an unknown topic creates it with one
        partition."""

    def partitions(self, topic: str) -> int:
        """The number of partitions of ``topic``; ``NotFoundError`` when it does not exist."""
        ...

    def produce(self, events: Sequence[Event]) -> list[Event]:
        """Append events (as one durable batch where the backend can); returns them with their
        partition and offset. On return the log holds them; otherwise it raises ``StorageError``."""
        ...

    def read(self, topic: str, partition: int, offset: int, limit: int = 500) -> list[Event]:
        """Events of one partition from ``offset`` on, without a consumer group."""
        ...

    def offset_at(self, topic: str, partition: int, when: datetime) -> int:
        """The first offset whose event time is at or after ``when`` (the end offset if none)."""
        ...

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        """Per partition: (first retained offset, next offset to be written)."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets (next offset to read) per partition that has one."""
        ...

    def consumer(self, group: str, topics: Sequence[str]) -> EventConsumer:
        """Join consumer group ``group`` on ``topics``; members of one group share partitions."""
        ...

    def close(self) -> None:
        """Release connections (consumers made by this log should be closed first)."""
