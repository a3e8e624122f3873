"""Decision records: their dict form, which is what the decision log stores and hashes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.records import Decision, FeatureValue
from mainspring.records.decisions import feature_value

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]


@given(
    st.lists(
        st.tuples(st.sampled_from([None, 0, 1, 2, 3]), st.sampled_from(range(len(ZONES)))),
        max_size=8,
    )
)
@settings(max_examples=100, deadline=None)
def test_features_are_written_as_each_feature_writes_itself(
    picks: list[tuple[int | None, int]],
) -> None:
    """Shared as-of objects are written once; equal instants in other zones keep their zone."""
    shared = [T0 + timedelta(seconds=s) for s in range(3)]
    features = tuple(
        FeatureValue(
            f"f{i}",
            float(i),
            None if at is None else shared[at] if at < 3 else shared[0].astimezone(ZONES[zone]),
            "view",
        )
        for i, (at, zone) in enumerate(picks)
    )
    d = Decision(id="d", deployment="x", at=T0, decision="ok", policy="p", features=features)
    assert d.to_dict()["features"] == [f.to_dict() for f in features]
    assert Decision.from_dict(d.to_dict()) == d


def test_the_quick_feature_value_is_the_same_frozen_value() -> None:
    quick, usual = feature_value("income", 1.5, T0, "profile"), FeatureValue("income", 1.5, T0, "v")
    usual = dataclasses.replace(usual, view="profile")
    assert quick == usual and hash(quick) == hash(usual) and repr(quick) == repr(usual)
    assert type(quick) is FeatureValue and quick.to_dict() == usual.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.value = 2.0  # type: ignore[misc]
