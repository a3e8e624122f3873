"""The shared vocabulary: plain records that every layer speaks.

Records are frozen dataclasses with ``to_dict``/``from_dict`` for JSON. Time is always UTC and
timezone-aware; ids are time-ordered UUIDv7 strings.
"""

from __future__ import annotations

import enum
import os
import re
import time
import uuid
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


def new_id() -> str:
    """A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.

    >>> a, b = new_id(), new_id()
    >>> uuid.UUID(a).version
    7
    >>> a[:8] <= b[:8]
    True
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


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
class ModelRef:
    """A reference to a model version: ``name``, ``name/VERSION`` or ``name@ALIAS``.

    >>> ModelRef.parse("credit@champion")
    ModelRef(name='credit', version=None, alias='champion')
    >>> str(ModelRef.parse("credit/3"))
    'credit/3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, *, field: str = "model") -> ModelRef:
        """Parse ``name``, ``name/VERSION``, ``name/versions/VERSION`` or ``name@ALIAS``."""
        if not isinstance(text, str) or not text:
            raise InvalidInputError(f"{field} must be a non-empty string", field=field)
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(
                check_name(name, field=field), alias=check_name(alias, field=f"{field}.alias")
            )
        parts = text.split("/")
        if len(parts) == 1:
            return cls(check_name(text, field=field))
        if len(parts) == 3 and parts[1] == "versions":
            parts = [parts[0], parts[2]]
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) > 0:
            return cls(check_name(parts[0], field=field), version=int(parts[1]))
        raise InvalidInputError(
            f"{field} {text!r} is not a model reference: use NAME, NAME/VERSION or NAME@ALIAS",
            field=field,
        )

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One named, typed column of a model's input or output."""

    name: str
    dtype: str

    def to_dict(self) -> JSON:
        return {"name": self.name, "dtype": self.dtype}


#: The dtypes a signature may use (numpy names, plus ``string`` and ``bool``).
DTYPES = frozenset(
    {"float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool", "string"}
)


@dataclass(frozen=True, slots=True)
class Signature:
    """The input and output columns of a model, in order.

    >>> sig = Signature.from_dict({"inputs": [{"name": "age", "dtype": "float64"}],
    ...                            "outputs": [{"name": "score", "dtype": "float64"}]})
    >>> sig.input_names
    ('age',)
    """

    inputs: tuple[FeatureSpec, ...]
    outputs: tuple[FeatureSpec, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    def to_dict(self) -> JSON:
        return {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, field: str = "signature") -> Signature:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{field} must be an object with 'inputs'", field=field)

        def specs(key: str, required: bool) -> tuple[FeatureSpec, ...]:
            items = data.get(key, [] if not required else None)
            if not isinstance(items, list) or (required and not items):
                raise InvalidInputError(
                    f"{field}.{key} must be a non-empty list of {{name, dtype}}",
                    field=f"{field}.{key}",
                )
            out: list[FeatureSpec] = []
            seen: set[str] = set()
            for i, item in enumerate(items):
                where = f"{field}.{key}[{i}]"
                if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                    raise InvalidInputError(f"{where} must have a string 'name'", field=where)
                dtype = item.get("dtype", "float64")
                if dtype not in DTYPES:
                    raise InvalidInputError(
                        f"{where}.dtype {dtype!r} is not one of {', '.join(sorted(DTYPES))}",
                        field=f"{where}.dtype",
                    )
                if item["name"] in seen:
                    raise InvalidInputError(
                        f"{where}.name {item['name']!r} appears twice", field=f"{where}.name"
                    )
                seen.add(item["name"])
                out.append(FeatureSpec(item["name"], dtype))
            return tuple(out)

        return cls(specs("inputs", True), specs("outputs", False))


@dataclass(frozen=True, slots=True)
class TrainingData:
    """A fingerprint of the data a model was trained on."""

    fingerprint: str
    rows: int
    start: datetime | None = None
    end: datetime | None = None
    source: str | None = None

    def to_dict(self) -> JSON:
        return {
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingData:
        def ts(key: str) -> datetime | None:
            v = data.get(key)
            return datetime.fromisoformat(v) if v else None

        return cls(
            data["fingerprint"], int(data["rows"]), ts("start"), ts("end"), data.get("source")
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a model version came from."""

    run_id: str | None = None
    feature_views: tuple[str, ...] = ()
    parent_version: int | None = None

    def to_dict(self) -> JSON:
        return {
            "run_id": self.run_id,
            "feature_views": list(self.feature_views),
            "parent_version": self.parent_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        return cls(
            data.get("run_id"), tuple(data.get("feature_views") or ()), data.get("parent_version")
        )


class ApprovalState(enum.StrEnum):
    """Where a model version stands in the promotion process."""

    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """An immutable registered model artifact and everything known about it."""

    id: str
    name: str
    version: int
    flavor: str
    digest: str
    size: int
    library_versions: Mapping[str, str]
    signature: Signature
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    training_data: TrainingData | None = None
    lineage: Lineage = Lineage()
    code_version: str | None = None
    description: str = ""
    registered_by: str = ""
    registered_at: datetime = field(default_factory=utcnow)
    approval: ApprovalState = ApprovalState.NONE
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    def to_dict(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "digest": self.digest,
            "size": self.size,
            "library_versions": dict(self.library_versions),
            "signature": self.signature.to_dict(),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "training_data": self.training_data.to_dict() if self.training_data else None,
            "lineage": self.lineage.to_dict(),
            "code_version": self.code_version,
            "description": self.description,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at.isoformat(),
            "approval": self.approval.value,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model name in the registry with a summary of its versions and aliases."""

    name: str
    description: str
    created_at: datetime
    created_by: str
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
        }


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
