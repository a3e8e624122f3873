"""Online reads and writes: entity keys in, latest feature values out, in one store round trip.

Rows are stored per (namespace, entity key) with their event time; the values are encoded by
:mod:`mainspring.features.payload`. Reading needs only the precomputed :class:`Part`s of a
selection: no definition is parsed per call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mainspring.errors import InvalidInputError
from mainspring.features import payload
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import TS, arrow
from mainspring.features.plans import Part, Selection
from mainspring.records import JSON
from mainspring.storage.base import OnlineRow, OnlineStore

if TYPE_CHECKING:
    import pyarrow as pa

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_SEPARATOR = "\x1f"


def from_micros(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


@dataclass(frozen=True, slots=True)
class OnlineFeatures:
    """Feature values per requested entity, column by column, in request order.

    ``found[view][i]`` is false when entity ``i`` has no row in ``view`` or its row is older than
    the view's TTL; its values are then ``None``.
    """

    entities: list[dict[str, Any]]
    values: dict[str, list[Any]]
    #: Event times in microseconds since the epoch (``None`` where not found), per view.
    event_micros: dict[str, list[int | None]]
    found: dict[str, list[bool]]

    @property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """The event time of each entity's row, per view (``None`` where not found)."""
        return {
            view: [from_micros(t) if t is not None else None for t in times]
            for view, times in self.event_micros.items()
        }

    def rows(self) -> list[dict[str, Any]]:
        """One dict per entity: its keys and its feature values."""
        names = list(self.values)
        columns = [self.values[n] for n in names]
        return (
            [
                {**entity, **dict(zip(names, vals, strict=True))}
                for entity, vals in zip(self.entities, zip(*columns, strict=True), strict=True)
            ]
            if columns
            else [dict(e) for e in self.entities]
        )

    def to_dict(self) -> JSON:
        return {
            "entities": self.entities,
            "features": self.values,
            "event_timestamps": {
                view: [t.isoformat() if t is not None else None for t in times]
                for view, times in self.event_timestamps.items()
            },
            "found": self.found,
        }


def _key_error(key: str, value: Any, integer: bool, index: int) -> InvalidInputError:
    want = "int64" if integer else "string"
    return InvalidInputError(
        f"entity {index}: join key {key!r} must be {want}, not {type(value).__name__} {value!r}",
        field=f"entities[{index}].{key}",
    )


def _encode(value: Any, key: str, integer: bool, index: int) -> str:
    kind = type(value)
    if integer:
        if kind is int:
            return str(value)
        if kind is not bool and hasattr(value, "__index__") and not isinstance(value, str):
            return str(int(value))
    elif kind is str:
        return value  # type: ignore[no-any-return]
    raise _key_error(key, value, integer, index)


def entity_columns(
    entities: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]], keys: tuple[str, ...]
) -> tuple[list[Any], dict[str, Sequence[Any]]]:
    """Entity keys given as rows or as columns → (rows, columns)."""
    if isinstance(entities, Mapping):
        columns: dict[str, Sequence[Any]] = {}
        for key in keys:
            if key not in entities:
                raise InvalidInputError(
                    f"the entity keys lack join key {key!r}; the features need: {', '.join(keys)}",
                    field=f"entities.{key}",
                )
            columns[key] = list(entities[key])
        if len({len(c) for c in columns.values()}) > 1:
            raise InvalidInputError(
                "the entity key columns have different lengths", field="entities"
            )
        n = len(columns[keys[0]]) if keys else 0
        return [{k: columns[k][i] for k in keys} for i in range(n)], columns
    rows = list(entities)
    try:
        return rows, {k: [row[k] for row in rows] for k in keys}
    except (KeyError, TypeError, IndexError):
        pass
    for i, row in enumerate(rows):  # say which entity is wrong
        if not isinstance(row, Mapping):
            raise InvalidInputError(
                f"entity {i} must be a mapping of join keys to values", field=f"entities[{i}]"
            ) from None
        for key in keys:
            if key not in row:
                raise InvalidInputError(
                    f"entity {i} lacks join key {key!r}; the features need: {', '.join(keys)}",
                    field=f"entities[{i}].{key}",
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _keys_of(part: Part, columns: Mapping[str, Sequence[Any]]) -> list[str]:
    if len(part.keys) == 1:
        ((key, integer),) = part.keys
        col = columns[key]
        if integer:
            out = []
            for i, v in enumerate(col):
                out.append(str(v) if type(v) is int else _encode(v, key, True, i))
            return out
        return [v if type(v) is str else _encode(v, key, False, i) for i, v in enumerate(col)]
    encoded = [
        [_encode(v, key, integer, i) for i, v in enumerate(columns[key])]
        for key, integer in part.keys
    ]
    return [KEY_SEPARATOR.join(parts) for parts in zip(*encoded, strict=True)]


def read_online(
    store: OnlineStore,
    selection: Selection,
    entities: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    *,
    now: datetime | None = None,
) -> OnlineFeatures:
    """The latest values of ``selection`` for ``entities``: one ``store.read`` call."""
    rows, columns = entity_columns(entities, selection.join_keys)
    n = len(rows)
    request: list[tuple[str, str]] = []
    for part in selection.parts:
        ns = part.namespace
        request.extend((ns, k) for k in _keys_of(part, columns))
    hits = store.read(request) if request else []
    now_us = time.time_ns() // 1000 if now is None else (now - EPOCH) // timedelta(microseconds=1)
    values: dict[str, list[Any]] = {}
    micros: dict[str, list[int | None]] = {}
    found: dict[str, list[bool]] = {}
    offset = 0
    for part in selection.parts:
        chunk = hits[offset : offset + n]
        offset += n
        if part.ttl_us is None:
            flags = [h is not None for h in chunk]
        else:
            oldest = now_us - part.ttl_us
            flags = [h is not None and h[0] >= oldest for h in chunk]
        decoded = payload.decode(
            [h[1] if ok else None for h, ok in zip(chunk, flags, strict=True)],  # type: ignore[index]
            part.width,
        )
        if not n:
            for name in part.columns:
                values[name] = []
        elif part.whole:  # every feature of the view, in order: transpose in C
            for name, column in zip(part.columns, zip(*decoded, strict=True), strict=True):
                values[name] = list(column)
        else:
            for name, pos in zip(part.columns, part.positions, strict=True):
                values[name] = [row[pos] for row in decoded]
        micros[part.view.name] = [
            h[0] if ok else None  # type: ignore[index]
            for h, ok in zip(chunk, flags, strict=True)
        ]
        found[part.view.name] = flags
    return OnlineFeatures(rows, values, micros, found)


def encode_rows(view: FeatureView, table: pa.Table) -> list[OnlineRow]:
    """A feature table (``join keys, __ts, features``) as online rows."""
    pa = arrow()
    keys = [table.column(k).to_pylist() for k in view.entity.join_keys]
    if len(keys) == 1:
        encoded = [str(k) for k in keys[0]]
    else:
        encoded = [KEY_SEPARATOR.join(map(str, parts)) for parts in zip(*keys, strict=True)]
    stamps = table.column(TS).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
    return list(zip(encoded, stamps, payload.encode(view, table), strict=True))


def check_unique(view: FeatureView, rows: Sequence[OnlineRow]) -> None:
    """Refuse two rows for the same entity and event time in one batch."""
    seen: set[tuple[str, int]] = set()
    for key, ts, _ in rows:
        if (key, ts) in seen:
            raise InvalidInputError(
                f"feature view {view.name!r}: the batch has two rows for entity "
                f"{key.replace(KEY_SEPARATOR, ', ')!r} at {from_micros(ts).isoformat()}; "
                "keep one row per entity and event time",
                field=view.name,
            )
        seen.add((key, ts))
