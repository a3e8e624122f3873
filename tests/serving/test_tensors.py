"""OIP tensors: every datatype from JSON values and from binary data, and the errors."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mainspring.errors import InvalidInputError
from mainspring.serving.tensors import DATATYPES, Tensor, from_raw, tensor, to_list, to_raw

NUMERIC = [d for d in DATATYPES if d != "BYTES"]


@pytest.mark.parametrize("datatype", NUMERIC)
def test_numeric_round_trip_json_and_raw(datatype: str) -> None:
    values = np.array([[0, 1, 1], [1, 0, 1]], dtype=bool if datatype == "BOOL" else int).tolist()
    t = tensor("x", datatype, [2, 3], values)
    assert t.data.dtype == DATATYPES[datatype] and t.data.shape == (2, 3)
    assert from_raw("x", datatype, [2, 3], to_raw(t)).data.tolist() == t.data.tolist()
    assert to_list(t) == t.data.reshape(-1).tolist()


def test_bytes_round_trip() -> None:
    t = tensor("s", "BYTES", [3], ["héllo", b"\x00\xff", ""])
    assert t.data.tolist() == ["héllo".encode(), b"\x00\xff", b""]
    assert from_raw("s", "BYTES", [3], to_raw(t)).data.tolist() == t.data.tolist()


def test_nested_and_flat_data_agree() -> None:
    flat = tensor("x", "FP32", [2, 2], [1, 2, 3, 4]).data
    nested = tensor("x", "FP32", [2, 2], [[1, 2], [3, 4]]).data
    assert flat.tolist() == nested.tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("FP99", [1], [1]), "datatype 'FP99'"),
        (("FP32", [-1], [1]), r"shape \[-1\]"),
        (("FP32", "2", [1]), "shape '2'"),
        (("FP32", [3], [1, 2]), r"shape \[3\] \(3 elements\) but its data holds 2"),
        (("INT8", [1], [1000]), "out of range"),
        (("INT32", [1], [1.5]), "is INT32 but its data holds numbers"),
        (("FP32", [2], ["a", "b"]), "holds strings"),
        (("FP32", [2], [[1], [2, 3]]), "not a rectangular list"),
        (("BYTES", [1], [1]), "BYTES but holds int"),
    ],
)
def test_errors_name_the_tensor(args: tuple, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        tensor("t", *args)
    assert "'t'" in str(info.value)


@pytest.mark.parametrize(
    ("datatype", "raw", "message"),
    [
        ("FP32", b"\x00" * 5, "4 bytes\\) but 5 bytes"),
        ("BYTES", b"\x05\x00\x00\x00ab", "runs past the data"),
        ("BYTES", b"\x01\x00", "truncated"),
    ],
)
def test_raw_errors(datatype: str, raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        from_raw("t", datatype, [1], raw)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(NUMERIC).flatmap(
        lambda d: st.tuples(
            st.just(d),
            hnp.arrays(DATATYPES[d], hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)),
        )
    )
)
def test_raw_round_trip_any_numeric_tensor(case: tuple[str, np.ndarray]) -> None:
    datatype, array = case
    t = Tensor("x", datatype, array.shape, array)
    back = from_raw("x", datatype, list(array.shape), to_raw(t))
    np.testing.assert_array_equal(back.data, array)


@settings(max_examples=100, deadline=None)
@given(
    datatype=st.one_of(st.sampled_from(list(DATATYPES)), st.text(max_size=5)),
    shape=st.lists(st.integers(-2, 4), max_size=3),
    data=st.recursive(
        st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.booleans(), st.none()),
        lambda inner: st.lists(inner, max_size=4),
        max_leaves=12,
    ),
)
def test_any_json_value_is_a_tensor_or_an_invalid_input(
    datatype: str, shape: list, data: object
) -> None:
    with contextlib.suppress(InvalidInputError):
        tensor("t", datatype, shape, data)
