"""Identity, time and the log's records: ids, names, principals, chain entries, events."""

from __future__ import annotations

import enum
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mainspring.errors import InvalidInputError

JSON = dict[str, Any]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


#: random bytes drawn from the OS at once, per thread, for :func:`new_id` (ten bytes an id)
_RANDOM_DRAW = 10 * 512
_random = threading.local()


def _forget_random() -> None:  # a forked child must not repeat its parent's ids
    _random.__dict__.clear()


os.register_at_fork(after_in_child=_forget_random)


def _random_bits() -> int:
    """80 random bits from the OS's generator, drawn 512 ids' worth at a time: ``os.urandom``
    lets go of the GIL for its system call, and in a serve worker the decision log's writer
    thread took it every time, holding up the event loop for 4 % of its time."""
    pool = _random.__dict__
    drawn, at = pool.get("drawn", b""), pool.get("at", 0)
    if at >= len(drawn):
        drawn = pool["drawn"] = os.urandom(_RANDOM_DRAW)
        at = 0
    pool["at"] = at + 10
    return int.from_bytes(drawn[at : at + 10], "big")


def new_id() -> str:
    """A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.

    >>> import uuid
    >>> a, b = new_id(), new_id()
    >>> str(uuid.UUID(a)) == a, uuid.UUID(a).version
    (True, 7)
    >>> a[:8] <= b[:8]
    True
    """
    millis = time.time_ns() // 1_000_000
    rand = _random_bits()
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, without its checks (hot path)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_name(value: str, *, field: str) -> str:
    """Validate a user-chosen name (model, alias, tag key...).

    >>> check_name("credit-risk_v2", field="name")
    'credit-risk_v2'
    >>> check_name("no spaces", field="name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mainspring.errors.InvalidInputError: name 'no spaces' is not valid: use 1-128 letters, ...
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInputError(
            f"{field} {value!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


class Role(enum.StrEnum):
    """What a principal may do; each role includes the ones before it except ``approver``."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone (a person or a service) acting on the system."""

    name: str
    roles: frozenset[Role] = frozenset(Role)

    def has(self, role: Role) -> bool:
        """Whether the principal holds ``role`` (admins hold every role).

        >>> Principal("ann", frozenset({Role.VIEWER})).has(Role.OPERATOR)
        False
        >>> Principal("root", frozenset({Role.ADMIN})).has(Role.APPROVER)
        True
        """
        if Role.ADMIN in self.roles or role in self.roles:
            return True
        # an operator can do what a viewer can; approvers and operators can both view
        return role is Role.VIEWER and bool(self.roles)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One entry of an append-only, hash-chained log (registry history, decision log...)."""

    stream: str
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    reason: str
    details: JSON
    prev_hash: str
    hash: str

    def to_dict(self) -> JSON:
        return {
            "stream": self.stream,
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "reason": self.reason,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


#: Well-known event headers (any other header travels unchanged).
IDEMPOTENCY_KEY = "idempotency-key"
TRACE_ID = "trace-id"
SCHEMA_VERSION = "schema-version"


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable fact on a topic. ``partition`` and ``offset`` are set once the log holds it.

    >>> e = Event("orders", {"amount": 3}, key="c-1", headers={IDEMPOTENCY_KEY: "o-17"})
    >>> e.idempotency_key, e.partition, Event.from_dict(e.to_dict()) == e
    ('o-17', None, True)
    """

    topic: str
    payload: JSON
    key: str | None = None
    event_time: datetime = field(default_factory=utcnow)
    headers: Mapping[str, str] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    partition: int | None = None
    offset: int | None = None

    def __post_init__(self) -> None:
        if self.event_time.tzinfo is None:
            raise InvalidInputError(
                "event_time must be timezone-aware; use datetime.now(UTC)", field="event_time"
            )

    @property
    def idempotency_key(self) -> str:
        """What a sink dedupes on: the ``idempotency-key`` header, else the event id."""
        return self.headers.get(IDEMPOTENCY_KEY) or self.id

    @property
    def trace_id(self) -> str | None:
        return self.headers.get(TRACE_ID)

    @property
    def schema_version(self) -> int | None:
        raw = self.headers.get(SCHEMA_VERSION)
        return int(raw) if raw is not None and raw.isdigit() else None

    def to_dict(self) -> JSON:
        return {
            "id": self.id,
            "topic": self.topic,
            "key": self.key,
            "event_time": self.event_time.isoformat(),
            "headers": dict(self.headers),
            "payload": self.payload,
            "partition": self.partition,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            topic=data["topic"],
            payload=data["payload"],
            key=data.get("key"),
            event_time=datetime.fromisoformat(data["event_time"]),
            headers=dict(data.get("headers") or {}),
            id=data["id"],
            partition=data.get("partition"),
            offset=data.get("offset"),
        )
