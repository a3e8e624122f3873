"""Tensors of the Open Inference Protocol: datatypes, shapes and their numpy form.

A :class:`Tensor` is protocol-neutral: the REST and gRPC adapters decode their wire form into it
(JSON lists, binary data, typed protobuf contents) and encode it back. Every OIP datatype is
supported; ``BYTES`` tensors hold ``bytes`` objects in an object array.

>>> t = tensor("x", "FP32", [2, 2], [1, 2, 3, 4])
>>> t.data.dtype, t.data.shape
(dtype('float32'), (2, 2))
>>> to_raw(tensor("s", "BYTES", [2], ["ab", "c"]))
b'\\x02\\x00\\x00\\x00ab\\x01\\x00\\x00\\x00c'
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError

#: OIP datatype -> numpy dtype (``BYTES`` is an object array of ``bytes``).
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

#: Signature dtype -> OIP datatype.
SIGNATURE_DATATYPES: Mapping[str, str] = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "bool": "BOOL",
    "string": "BYTES",
}

#: numpy kinds a JSON list may decode to, by kind of datatype (ints fit floats, not back;
#: integer ranges are checked separately)
_ACCEPTED_KINDS = {"b": "b", "u": "biu", "i": "biu", "f": "biuf"}

Parameters = dict[str, Any]


@dataclass(slots=True)
class Tensor:
    """A named, typed tensor: ``data`` is a numpy array of ``shape`` in the datatype's dtype."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: npt.NDArray[Any]
    parameters: Parameters = field(default_factory=dict)


def check_datatype(name: str, datatype: object) -> str:
    """``datatype`` if it is an OIP datatype, else an error naming the tensor."""
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise InvalidInputError(
            f"tensor {name!r} has datatype {datatype!r}; use one of {', '.join(DATATYPES)}",
            field=f"{name}.datatype",
        )
    return datatype


def check_shape(name: str, shape: object) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints, else an error naming the tensor."""
    if not isinstance(shape, Sequence) or isinstance(shape, str | bytes):
        raise InvalidInputError(
            f"tensor {name!r} has shape {shape!r}; a shape is a list of non-negative integers",
            field=f"{name}.shape",
        )
    dims = tuple(shape)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise InvalidInputError(
            f"tensor {name!r} has shape {list(dims)}; a shape is a list of non-negative integers",
            field=f"{name}.shape",
        )
    return dims


def element_count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _bytes_element(name: str, value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise InvalidInputError(
        f"tensor {name!r} is BYTES but holds {type(value).__name__} {value!r}; send strings",
        field=f"{name}.data",
    )


def _length_mismatch(name: str, shape: tuple[int, ...], found: int) -> InvalidInputError:
    return InvalidInputError(
        f"tensor {name!r} has shape {list(shape)} ({element_count(shape)} elements) but its data "
        f"holds {found} elements",
        field=f"{name}.data",
    )


def tensor(
    name: str,
    datatype: object,
    shape: object,
    data: object,
    parameters: Parameters | None = None,
) -> Tensor:
    """A tensor from decoded JSON-like values (a flat or nested row-major list)."""
    kind = check_datatype(name, datatype)
    dims = check_shape(name, shape)
    dtype = DATATYPES[kind]
    if kind == "BYTES":
        flat = _flatten(name, data)
        if len(flat) != element_count(dims):
            raise _length_mismatch(name, dims, len(flat))
        array = np.empty(len(flat), dtype=object)
        array[:] = [_bytes_element(name, v) for v in flat]
        return Tensor(name, kind, dims, array.reshape(dims), parameters or {})
    try:
        raw = np.asarray(data)
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"tensor {name!r}: data is not a rectangular list of numbers", field=f"{name}.data"
        ) from None
    if raw.dtype.kind not in _ACCEPTED_KINDS[dtype.kind] and raw.size:
        raise InvalidInputError(
            f"tensor {name!r} is {kind} but its data holds "
            f"{_describe_kind(raw.dtype.kind)}; send {_describe_kind(dtype.kind)}",
            field=f"{name}.data",
        )
    if raw.size != element_count(dims):
        raise _length_mismatch(name, dims, raw.size)
    if dtype.kind in "iu" and raw.size:
        info = np.iinfo(dtype)
        low, high = int(raw.min()), int(raw.max())  # Python ints: UINT64 bounds overflow C longs
        if low < info.min or high > info.max:
            raise InvalidInputError(
                f"tensor {name!r} is {kind} but holds {low if low < info.min else high}, out of "
                f"range [{info.min}, {info.max}]",
                field=f"{name}.data",
            )
    if dtype.kind == "f" and raw.size and raw.dtype != dtype:
        return Tensor(name, kind, dims, _narrowed(name, kind, raw, dtype).reshape(dims),
                      parameters or {})  # fmt: skip
    return Tensor(name, kind, dims, raw.astype(dtype, copy=False).reshape(dims), parameters or {})


def _narrowed(
    name: str, kind: str, raw: npt.NDArray[Any], dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    """``raw`` as the float ``dtype``; a finite value too large for it is an error, not inf.

    >>> _narrowed("x", "FP16", np.asarray([1.5, 7e4]), np.dtype(np.float16))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mainspring.errors.InvalidInputError: tensor 'x' is FP16 but holds 70000.0, out of its ...
    """
    with np.errstate(over="ignore"):
        cast = raw.astype(dtype)
    overflow = np.isinf(cast)
    if overflow.any():
        overflow &= np.isfinite(raw) if raw.dtype.kind == "f" else True
        if overflow.any():
            top = np.finfo(dtype).max
            raise InvalidInputError(
                f"tensor {name!r} is {kind} but holds {raw[overflow].flat[0]}, out of its range "
                f"[{-top:g}, {top:g}]",
                field=f"{name}.data",
            )
    return cast


def _describe_kind(kind: str) -> str:
    return {
        "b": "booleans",
        "u": "unsigned integers",
        "i": "integers",
        "f": "numbers",
        "U": "strings",
        "S": "strings",
        "O": "mixed values",
    }.get(kind, "values")


def _flatten(name: str, data: object) -> list[object]:
    if not isinstance(data, list | tuple):
        raise InvalidInputError(f"tensor {name!r}: data must be a list", field=f"{name}.data")
    out: list[object] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list | tuple):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def from_raw(
    name: str,
    datatype: object,
    shape: object,
    raw: bytes | memoryview,
    parameters: Parameters | None = None,
) -> Tensor:
    """A tensor from its binary form (little-endian, row-major; BYTES as length-prefixed items)."""
    kind = check_datatype(name, datatype)
    dims = check_shape(name, shape)
    count = element_count(dims)
    if kind == "BYTES":
        items: list[bytes] = []
        view, offset = memoryview(raw), 0
        while offset < len(view):
            if offset + 4 > len(view):
                raise InvalidInputError(
                    f"tensor {name!r}: truncated BYTES element length at byte {offset}",
                    field=f"{name}.data",
                )
            (length,) = struct.unpack_from("<I", view, offset)
            offset += 4
            if offset + length > len(view):
                raise InvalidInputError(
                    f"tensor {name!r}: BYTES element of {length} bytes runs past the data",
                    field=f"{name}.data",
                )
            items.append(bytes(view[offset : offset + length]))
            offset += length
        if len(items) != count:
            raise _length_mismatch(name, dims, len(items))
        array = np.empty(count, dtype=object)
        array[:] = items
        return Tensor(name, kind, dims, array.reshape(dims), parameters or {})
    dtype = DATATYPES[kind].newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise InvalidInputError(
            f"tensor {name!r} has shape {list(dims)} ({count} {kind} elements, "
            f"{count * dtype.itemsize} bytes) but {len(raw)} bytes of data",
            field=f"{name}.data",
        )
    array = np.frombuffer(raw, dtype=dtype).astype(DATATYPES[kind], copy=False).reshape(dims)
    return Tensor(name, kind, dims, array, parameters or {})


def to_raw(t: Tensor) -> bytes:
    """The binary form of ``t`` (see :func:`from_raw`)."""
    if t.datatype == "BYTES":
        parts = []
        for item in t.data.reshape(-1):
            value = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(value)))
            parts.append(value)
        return b"".join(parts)
    dtype = DATATYPES[t.datatype].newbyteorder("<")
    return np.ascontiguousarray(t.data, dtype=dtype).tobytes()


def to_list(t: Tensor) -> list[Any]:
    """The flat JSON form of ``t``'s data (BYTES as UTF-8 strings where they decode)."""
    flat = t.data.reshape(-1)
    if t.datatype == "BYTES":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    return list(flat.tolist())
