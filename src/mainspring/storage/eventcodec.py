"""How the embedded and the Redis Streams event logs store an event: event times as microseconds
since the epoch, headers and payload as compact JSON (refused before anything is written when a
payload is not JSON), and a keyed event's partition.

>>> from datetime import UTC, datetime
>>> from_micros(micros(datetime(2026, 1, 1, tzinfo=UTC)))
datetime.datetime(2026, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
>>> encode(Event("orders", {"n": 1}, headers={"trace": "t1"}))
('{"trace":"t1"}', '{"n":1}')
"""

from __future__ import annotations

import functools
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from mainspring.errors import InvalidInputError
from mainspring.records import Event, check_name
from mainspring.storage.base import partition_for

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(when: datetime) -> int:
    """``when`` as whole microseconds since the epoch (``when`` must be timezone-aware)."""
    if when.tzinfo is None:
        raise InvalidInputError("times must be timezone-aware (UTC)", field="when")
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The UTC time ``us`` microseconds after the epoch."""
    return _EPOCH + timedelta(microseconds=us)


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


#: A run of digits that may be an integer beyond 64 bits (orjson would read it as a float).
_LONG_NUMBER = re.compile(r"\d{19}")


def loads(text: str) -> Any:
    """Parse stored JSON with orjson (several times faster on the read path); text with very
    long numbers goes to the standard library, which keeps big integers exact.

    >>> loads('{"n": 1, "big": 123456789012345678901234}')
    {'n': 1, 'big': 123456789012345678901234}
    """
    if _LONG_NUMBER.search(text):
        return json.loads(text)
    return orjson.loads(text)


#: Built once: ``json.dumps`` with options builds a new encoder on every call.
_strict = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
#: orjson hands datetimes and dataclasses to ``default`` (none here: a TypeError) instead of
#: encoding them, as the standard library does not encode them either
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in ``value`` (orjson would write them as null)."""
    if isinstance(value, float):
        return value - value == 0.0  # False for NaN and the infinities
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def dumps(value: Any) -> str:
    """``value`` as compact JSON, refusing what the standard library refuses (NaN, infinity,
    objects that are not JSON) with ``ValueError`` or ``TypeError``.

    orjson encodes about ten times faster; where it would differ (integers beyond 64 bits,
    non-string keys, which the standard library turns into strings) the standard library
    encodes. A NaN is looked for only when orjson wrote a ``null``, where it would have put one.

    >>> dumps({"a": [1, 2.5, None], "é": True})
    '{"a":[1,2.5,null],"é":true}'
    >>> dumps({"n": float("nan")})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: Out of range float values are not JSON compliant...
    """
    try:
        text = orjson.dumps(value, option=_OPTIONS)
    except TypeError:  # big integers, non-string keys: the standard library's way (or error)
        return _strict(value)
    if b"null" in text and not _finite(value):
        return _strict(value)  # raises ValueError, naming the value
    return text.decode()


#: A keyed event's partition; keys repeat (customers, cards), murmur2 in Python does not need to.
keyed_partition = functools.lru_cache(maxsize=1 << 16)(partition_for)


def payload_json(event: Event) -> str:
    """An event's payload as compact JSON, or an error naming the field ``payload``."""
    try:
        return dumps(event.payload)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"event payload is not JSON ({exc}); send numbers, strings, lists and maps",
            field="payload",
        ) from None


def encode(event: Event) -> tuple[str, str]:
    """An event's ``(headers, payload)`` as compact JSON; its topic name is checked too."""
    check_name(event.topic, field="topic")
    payload = payload_json(event)
    return (dumps(dict(event.headers)) if event.headers else "{}"), payload
