"""The event logs' JSON encoder: orjson's speed, the standard library's strictness."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mainspring.storage.eventcodec import dumps

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@given(documents)
def test_encodes_what_the_standard_library_encodes(value: Any) -> None:
    # integers beyond 64 bits included: orjson refuses them and the standard library encodes
    assert json.loads(dumps(value)) == json.loads(json.dumps(value))


@given(documents, st.sampled_from([math.nan, math.inf, -math.inf]), st.randoms())
def test_nan_or_infinity_anywhere_is_refused(value: Any, bad: float, rnd: Any) -> None:
    document = {"ok": value, "deep": [{"x": [1, bad]}] if rnd.random() < 0.5 else bad}
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps(document)


@pytest.mark.parametrize(
    "value", [datetime(2026, 1, 1, tzinfo=UTC), {1, 2}, object(), b"bytes"], ids=repr
)
def test_what_is_not_json_is_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        dumps({"v": value})


def test_non_string_keys_become_strings_as_the_standard_library_does() -> None:
    assert json.loads(dumps({1: "a", None: "b"})) == {"1": "a", "null": "b"}


def test_a_uuid_is_encoded_as_its_text() -> None:
    # the one lenience orjson adds over the standard library (which refuses UUIDs)
    u = uuid.uuid4()
    assert json.loads(dumps({"id": u})) == {"id": str(u)}
