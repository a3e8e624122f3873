"""How a feature row is stored online: packed doubles when it can be, JSON otherwise.

A payload starts with one tag byte. ``d``: the row's values as little-endian float64, for views
whose fields are all floats and a row without nulls (decoding a batch of them is one NumPy call).
``j``: a JSON list of the values in field order (any type, nulls). Decoding takes a whole batch,
so the per-entity cost is a slice, not a parse.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mainspring.errors import StorageError
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import arrow

if TYPE_CHECKING:
    import pyarrow as pa

PACKED = ord("d")
JSON_ROW = ord("j")
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=True).encode


def packable(view: FeatureView) -> bool:
    """Whether rows of ``view`` may be stored as packed doubles (all fields are floats)."""
    return all(f.dtype in ("float64", "float32") for f in view.fields)


def encode(view: FeatureView, table: pa.Table) -> list[bytes]:
    """The payload of each row of a feature table (feature columns in field order)."""
    names = view.feature_names
    if not table.num_rows:
        return []
    columns = [table.column(n) for n in names]
    if packable(view):
        pa = arrow()
        nulls = np.zeros(table.num_rows, dtype=bool)
        for col in columns:
            if col.null_count:
                nulls |= col.is_null().to_numpy(zero_copy_only=False)
        matrix = np.column_stack(
            [c.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False) for c in columns]
        ).astype("<f8", copy=False)
        payloads = [b"d" + row.tobytes() for row in matrix]
        if nulls.any():
            for i in np.flatnonzero(nulls).tolist():
                payloads[i] = b"j" + _dumps([c[i].as_py() for c in columns]).encode()
        return payloads
    lists = [c.to_pylist() for c in columns]
    return [b"j" + _dumps(list(values)).encode() for values in zip(*lists, strict=True)]


_STRUCTS: dict[int, struct.Struct] = {}


def decode(payloads: Sequence[bytes | None], width: int) -> list[Sequence[Any]]:
    """Decode a batch of payloads into rows of ``width`` values (``None`` → a row of nulls)."""
    blank = (None,) * width
    if len(payloads) == 1:  # the single-entity read: no NumPy round trip
        one = payloads[0]
        if one is None:
            return [blank]
        if one[0] == PACKED:
            unpack = _STRUCTS.get(width)
            if unpack is None:
                unpack = _STRUCTS[width] = struct.Struct(f"<{width}d")
            try:
                return [unpack.unpack_from(one, 1)] if len(one) == 1 + 8 * width else _bad(width)
            except struct.error as exc:
                raise _mismatch(width, exc) from exc
    out: list[Sequence[Any]] = [blank] * len(payloads)
    packed: list[int] = []
    texts: list[int] = []
    for i, p in enumerate(payloads):
        if p is not None:
            (packed if p[0] == PACKED else texts).append(i)
    try:
        if packed:
            buffer = b"".join([payloads[i][1:] for i in packed])  # type: ignore[index]
            rows = np.frombuffer(buffer, dtype="<f8").reshape(len(packed), width).tolist()
            for i, row in zip(packed, rows, strict=True):
                out[i] = row
        if texts:
            docs = json.loads(b"[" + b",".join([payloads[i][1:] for i in texts]) + b"]")  # type: ignore[index]
            for i, row in zip(texts, docs, strict=True):
                if not isinstance(row, list) or len(row) != width:
                    raise ValueError(f"a stored row has {row!r}, not {width} values")
                out[i] = row
    except ValueError as exc:
        raise _mismatch(width, exc) from exc
    return out


def _bad(width: int) -> list[Sequence[Any]]:
    raise _mismatch(width, ValueError("a packed row of another length"))


def _mismatch(width: int, exc: Exception) -> StorageError:
    return StorageError(
        f"the online store holds rows that do not fit the view's {width} fields ({exc}); "
        "materialize the view again with --full"
    )
