"""What the decision log refuses to store: NaN or infinity anywhere among a decision's numbers."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mainspring.audit.checks import _all_finite, _finite_numbers
from mainspring.records import Decision, FeatureValue, Reason

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e308, max_value=1e308),  # sums that overflow
    st.integers(-(2**40), 2**40),
    st.integers(2**1030, 2**1040),  # past float range
    st.booleans(),
)
values = st.one_of(numbers, st.none(), st.text(max_size=3))


@given(
    features=st.lists(values, max_size=6),
    attributions=st.lists(numbers.filter(lambda v: not isinstance(v, bool)), max_size=6),
    reasons=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
    scores=st.tuples(*(st.one_of(st.none(), st.floats()) for _ in range(4))),
    latency=st.floats(),
    entity=st.dictionaries(st.text(max_size=2), values, max_size=2),
    context=st.dictionaries(st.text(max_size=2), values, max_size=2),
)
def test_every_number_is_looked_at(
    features: list[Any],
    attributions: list[Any],
    reasons: list[float],
    scores: tuple[float | None, ...],
    latency: float,
    entity: dict[str, Any],
    context: dict[str, Any],
) -> None:
    raw, score, confidence, base_value = scores
    d = Decision(
        id="d", deployment="x", at=datetime(2026, 1, 1, tzinfo=UTC), decision="ok", policy="p",
        entity=entity, context=context,
        features=tuple(FeatureValue(f"f{i}", v) for i, v in enumerate(features)),
        attributions={f"f{i}": v for i, v in enumerate(attributions)},
        reasons=tuple(Reason("f", "c", "t", c) for c in reasons),
        raw=raw, score=score, confidence=confidence, base_value=base_value, latency_ms=latency,
    )  # fmt: skip
    everything = itertools.chain(
        scores, [latency], attributions, features, reasons, entity.values(), context.values()
    )
    expected = all(math.isfinite(v) for v in everything if isinstance(v, float))
    assert _finite_numbers(d) == expected
    assert _all_finite(v for v in (raw, score, latency) if v is not None) == all(
        math.isfinite(v) for v in (raw, score, latency) if v is not None
    )
