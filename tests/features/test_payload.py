"""Online payloads round-trip every value: packed doubles, JSON rows, nulls, NaN."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import StorageError
from mainspring.features import Entity, FeatureView, Field, FileSource
from mainspring.features.payload import decode, encode

customer = Entity("customer", {"customer_id": "int64"})


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


@settings(deadline=None)
@given(
    rows=st.lists(st.tuples(st.none() | st.floats(), st.none() | st.floats(width=32)), max_size=20)
)
def test_float_views_round_trip(rows: list[tuple[float | None, float | None]]) -> None:
    view = FeatureView("v", customer, [Field("a"), Field("b", "float32")], FileSource("x.parquet"))
    table = pa.table(
        {
            "a": pa.array([r[0] for r in rows], pa.float64()),
            "b": pa.array([r[1] for r in rows], pa.float32()),
        }
    )
    payloads = encode(view, table)
    if rows and all(None not in r for r in rows):
        assert all(p[:1] == b"d" for p in payloads)
    decoded = decode([*payloads, None], 2)
    assert tuple(decoded[-1]) == (None, None)
    for row, got in zip(rows, decoded, strict=False):
        assert all(same(x, y) for x, y in zip(row, got, strict=True))
    for row, payload in zip(rows, payloads, strict=True):  # one at a time: the single-row path
        assert all(same(x, y) for x, y in zip(row, decode([payload], 2)[0], strict=True))


@settings(deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.text(),
            st.none() | st.booleans(),
        ),
        max_size=20,
    )
)
def test_mixed_views_round_trip(rows: list[tuple[int | None, str | None, bool | None]]) -> None:
    view = FeatureView(
        "v",
        customer,
        [Field("n", "int64"), Field("s", "string"), Field("b", "bool")],
        FileSource("x.parquet"),
    )
    table = pa.table(
        {
            "n": pa.array([r[0] for r in rows], pa.int64()),
            "s": pa.array([r[1] for r in rows], pa.string()),
            "b": pa.array([r[2] for r in rows], pa.bool_()),
        }
    )
    assert [list(r) for r in decode(encode(view, table), 3)] == [list(r) for r in rows]


def test_rows_that_do_not_fit_the_view_are_a_storage_error() -> None:
    with pytest.raises(StorageError, match="materialize the view again with --full"):
        decode([b"d" + b"\x00" * 8], 2)
    with pytest.raises(StorageError, match="materialize the view again with --full"):
        decode([b"d" + b"\x00" * 8, None], 2)
    with pytest.raises(StorageError, match="not 2 values"):
        decode([b"j[1.0]"], 2)
