"""Reason codes: validated configuration, ranking toward a direction, documented defaults."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.explain import ReasonCodes
from mainspring.records import Reason

CONFIG = {
    "debt_ratio": {
        "up": {"code": "D01", "text": "Debt is high relative to income"},
        "down": {"code": "D02", "text": "Debt is low relative to income"},
    },
    "income": {"down": {"code": "I01", "text": "Income is low"}},
}
NAMES = ["income", "age", "debt_ratio", "tenure"]


def test_top_up_down_and_both() -> None:
    codes = ReasonCodes.from_mapping(CONFIG)
    phi = np.array([-0.8, 0.3, 1.1, 0.0])
    values = np.array([20_000.0, 41.0, 0.9, 3.0])
    up = codes.top(NAMES, phi, values, k=5, toward="up")
    assert up == [
        Reason("debt_ratio", "D01", "Debt is high relative to income", 1.1, 0.9),
        Reason("age", "age+", "age raised the score", 0.3, 41.0),
    ]
    assert isinstance(up[0].value, float) and not isinstance(up[0].value, np.generic)
    down = codes.top(NAMES, phi, toward="down")
    assert [(r.code, r.contribution, r.value) for r in down] == [("I01", -0.8, None)]
    both = codes.top(NAMES, phi, toward="both", k=2)
    assert [r.feature for r in both] == ["debt_ratio", "income"]
    assert codes.top(NAMES, phi, k=0) == []
    assert codes.top(NAMES, -phi, toward="up", k=1)[0].code == "income+"


def test_ties_keep_feature_order() -> None:
    codes = ReasonCodes()
    assert [r.feature for r in codes.top(["a", "b", "c"], [0.5, 0.5, 0.5], k=2)] == ["a", "b"]


def test_roundtrip_and_check_features() -> None:
    codes = ReasonCodes.from_mapping(CONFIG)
    assert ReasonCodes.from_mapping(codes.to_mapping()) == codes
    assert len(codes) == 3
    codes.check_features(NAMES)
    with pytest.raises(InvalidInputError) as info:
        codes.check_features(["age"])
    assert info.value.field == "debt_ratio"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ([], "reason_codes"),
        ({"": {"up": {"code": "a", "text": "b"}}}, "reason_codes"),
        ({"x": "D01"}, "x"),
        ({"x": {}}, "x"),
        ({"x": {"sideways": {"code": "a", "text": "b"}}}, "x.sideways"),
        ({"x": {"up": "D01"}}, "x.up"),
        ({"x": {"up": {"text": "b"}}}, "x.up.code"),
        ({"x": {"up": {"code": " ", "text": "b"}}}, "x.up.code"),
        ({"x": {"up": {"code": "a", "text": 3}}}, "x.up.text"),
        ({"x": {"up": {"code": "a", "text": "b", "colour": "red"}}}, "x.up.colour"),
    ],
)
def test_bad_configuration_names_the_field(config: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        ReasonCodes.from_mapping(config)
    assert info.value.field == field


def test_bad_calls() -> None:
    codes = ReasonCodes()
    with pytest.raises(InvalidInputError) as info:
        codes.top(["a", "b"], [1.0])
    assert info.value.field == "contributions"
    with pytest.raises(InvalidInputError) as info:
        codes.top(["a"], [1.0], toward="sideways")  # type: ignore[arg-type]
    assert info.value.field == "toward"


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["up", "down", "code", "text", "x", ""]) | st.text(max_size=3),
            inner,
            max_size=3,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_junk_is_either_read_or_refused_with_a_field(obj: Any) -> None:
    try:
        codes = ReasonCodes.from_mapping(obj)
    except InvalidInputError as exc:
        field = exc.field
        assert field
        assert field == "reason_codes" or any(
            isinstance(key, str) and (field == key or field.startswith(f"{key}.")) for key in obj
        )
    else:
        assert codes.to_mapping() == obj  # a valid configuration holds nothing else


@given(
    st.lists(st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]), min_size=1, max_size=12)
    | st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=12),
    st.integers(1, 14),
    st.sampled_from(["up", "down", "both"]),
)
@settings(max_examples=200, deadline=None)
def test_top_ranks_as_a_stable_sort_of_the_contributions(
    phis: list[float], k: int, toward: Any
) -> None:
    """The order is a stable sort (ties keep the feature order), as NumPy's stable argsort."""
    names = [f"f{i}" for i in range(len(phis))]
    phi = np.array(phis)
    key, keep = {"up": (-phi, phi > 0), "down": (phi, phi < 0),
                 "both": (-np.abs(phi), phi != 0)}[toward]  # fmt: skip
    expected = [names[i] for i in np.argsort(key, kind="stable") if keep[i]][:k]
    got = ReasonCodes.from_mapping({}).top(names, phi, k=k, toward=toward)
    assert [r.feature for r in got] == expected
    assert all(isinstance(r.contribution, float) for r in got)
