"""A stream entry of the Redis Streams event log (see :mod:`mainspring.storage.redisstreams`).

**Offset N is the entry with id ``N-1``**: the millisecond part of the id is the offset, the
sequence part is always 1 (Redis refuses ``0-0``). An entry's fields: ``i`` event id, ``k`` key
(absent when none), ``t`` event time (µs since the epoch), ``h`` headers and ``p`` payload (JSON),
and for the log's own bookkeeping ``m`` the largest event time in the partition so far, ``c`` the
bytes appended before this entry and ``a`` the append time (server clock, ms, never decreasing
within a partition).

>>> event_of("orders", 0, b"7-1", {b"i": b"e1", b"t": b"0", b"h": b"{}", b"p": b'{"n": 1}'})
... # doctest: +ELLIPSIS
Event(topic='orders', payload={'n': 1}, key=None, ..., partition=0, offset=7)
"""

from __future__ import annotations

import json

from mainspring.records import Event
from mainspring.storage.eventcodec import from_micros


def entry_offset(entry_id: bytes | str) -> int:
    """The offset of a stream entry id (``N-1`` is offset N).

    >>> entry_offset(b"42-1")
    42
    """
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.partition("-")[0])


def event_of(topic: str, partition: int, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
    """The event a stream entry holds."""
    key = fields.get(b"k")
    return Event(
        topic=topic,
        payload=json.loads(fields[b"p"]),
        key=key.decode("utf-8") if key is not None else None,
        event_time=from_micros(int(fields[b"t"])),
        headers=json.loads(fields[b"h"]),
        id=fields[b"i"].decode(),
        partition=partition,
        offset=entry_offset(entry_id),
    )
