"""On-demand views that read other on-demand views, and found flags of on-demand outputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from mainspring.errors import InvalidInputError
from mainspring.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
)
from mainspring.features.plans import dependency_order
from mainspring.project import Project

T0 = datetime(2026, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=10)
customer = Entity("customer", {"customer_id": "int64"})
profile = FeatureView(
    "profile",
    customer,
    [Field("income"), Field("segment", "string")],
    FileSource("profile.parquet"),
    ttl=timedelta(days=2),
)


def no_missing(columns: dict[str, npt.NDArray[Any]], name: str) -> None:
    column = columns[name]
    missing = pd.isna(column).any()
    if missing:
        raise ValueError(f"{name} has a missing value")


def ratio_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    no_missing(columns, "income")
    return {"ratio": columns["amount"] / np.maximum(columns["income"], 1.0)}


def band_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    no_missing(columns, "ratio")
    labels = [
        f"{segment}:{'high' if r > 1.0 else 'low'}"
        for segment, r in zip(columns["segment"], columns["ratio"], strict=True)
    ]
    return {"band": np.array(labels, dtype=object), "risky": columns["ratio"] > columns["limit"]}


def score_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"score": np.where(columns["risky"], 1, 0).astype("int64")}


def filled_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"filled": np.nan_to_num(columns["income"], nan=-1.0)}


ratio = OnDemandFeatureView(
    "ratio", [Field("amount")], [Field("ratio")], function=ratio_of, inputs=["profile:income"]
)
band = OnDemandFeatureView(  # reads another on-demand view, a stored view and the context
    "band",
    [Field("limit")],
    [Field("band", "string"), Field("risky", "bool")],
    function=band_of,
    inputs=[ratio, "profile:segment"],
)
score = OnDemandFeatureView(  # two on-demand views deep, no context of its own
    "score", [], [Field("score", "int64")], function=score_of, inputs=["band:risky"]
)
filled = OnDemandFeatureView(
    "filled",
    [],
    [Field("filled")],
    function=filled_of,
    inputs=["profile:income"],
    handles_missing=True,
)
# the service names the views out of dependency order; ratio is read but not returned
decide = FeatureService("decide", ["score", "profile:income", "band:band"])


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    rng = np.random.default_rng(0)
    rows = 300
    pd.DataFrame(
        {
            "customer_id": rng.integers(0, 25, rows),
            "event_timestamp": [
                T0 + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 10, rows)
            ],
            "income": rng.uniform(0, 5000, rows),
            "segment": rng.choice(["a", "b"], rows),
        }
    ).drop_duplicates(["customer_id", "event_timestamp"]).to_parquet(tmp_path / "profile.parquet")
    with Project.open(tmp_path) as opened:
        # applied in an order where band comes before the view it reads
        opened.features.apply([customer, profile, score, band, ratio, filled, decide], actor="ann")
        opened.features.materialize(end=END)
        yield opened


def test_a_chain_gives_the_same_values_offline_and_online(project: Project) -> None:
    store = project.features
    ids = list(range(28))  # 25..27 are unknown; some others are past the TTL
    rng = np.random.default_rng(1)
    amounts = [float(a) for a in rng.uniform(0, 6000, len(ids))]
    limits = [float(x) for x in rng.uniform(0.5, 2.0, len(ids))]
    entities = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": [END] * len(ids),
            "amount": amounts,
            "limit": limits,
        }
    )
    offline = store.get_historical_features(entities, "decide")
    online = store.get_online_features(
        "decide",
        {"customer_id": ids},
        context={"amount": amounts, "limit": limits},
        now=END,
    )
    assert list(online.values) == ["income", "score", "band"]
    assert list(online.found) == ["profile", "score", "band"]
    assert list(offline.data.columns) == [
        "customer_id",
        "event_timestamp",
        "amount",
        "limit",
        "income",
        "profile__event_timestamp",
        "profile__found",
        "score",
        "score__found",
        "band",
        "band__found",
    ]
    missing = [i for i, ok in enumerate(online.found["profile"]) if not ok]
    assert {25, 26, 27} <= set(missing) and len(missing) < len(ids)
    for view in ("score", "band"):
        assert online.found[view] == online.found["profile"]
        assert offline.data[f"{view}__found"].tolist() == online.found[view]
    for name in ("income", "score", "band"):
        for i, value in enumerate(online.values[name]):
            expected = offline.data[name][i]
            if i in missing:
                assert value is None and pd.isna(expected), (name, i)
            else:
                assert value == expected, (name, i, value, expected)
    # the chain was really followed: band = segment + whether ratio > 1
    i = next(i for i in range(len(ids)) if i not in missing)
    got_ratio = store.get_online_features(
        ["ratio"], [{"customer_id": i}], {"amount": amounts[i]}, now=END
    ).values["ratio"][0]
    assert online.values["band"][i].endswith("high" if got_ratio > 1.0 else "low")
    assert online.values["score"][i] == int(got_ratio > limits[i])
    assert offline.feature_views == ("profile@v1", "ratio@v1", "band@v1", "score@v1")


def test_missing_inputs_are_flagged_unless_the_view_handles_them(project: Project) -> None:
    store = project.features
    got = store.get_online_features(
        ["ratio", "filled"],
        [{"customer_id": 3}, {"customer_id": 99}],
        {"amount": 10.0},
        now=END,
    )
    # ratio_of raises on a missing income: it never saw the unknown entity
    assert got.values["ratio"][1] is None and got.found["ratio"] == [True, False]
    # filled handles missing inputs: it sees NaN and its output counts as found
    assert got.values["filled"][1] == -1.0 and got.found["filled"] == [True, True]
    assert got.values["filled"][0] == got.values["filled"][0] and got.values["filled"][0] >= 0
    offline = store.get_historical_features(
        pd.DataFrame(
            {"customer_id": [3, 99], "event_timestamp": [END, END], "amount": [10.0, 10.0]}
        ),
        ["ratio", "filled"],
    ).data
    assert offline["ratio__found"].tolist() == [True, False] and pd.isna(offline["ratio"][1])
    assert offline["filled"].tolist() == got.values["filled"]
    assert offline["filled__found"].tolist() == [True, True]
    # every row missing: the function is not called at all
    none = store.get_online_features(["ratio"], [{"customer_id": 99}], {"amount": 1.0}, now=END)
    assert none.values == {"ratio": [None]} and none.found == {"ratio": [False]}


def test_handles_missing_is_part_of_the_definition() -> None:
    assert "handles_missing" not in ratio.to_dict()  # earlier definitions keep their digests
    assert filled.to_dict()["handles_missing"] is True
    strict = OnDemandFeatureView(
        "filled", [], [Field("filled")], function=filled_of, inputs=["profile:income"]
    )
    assert strict.breaking_changes(filled.to_dict()) == [
        "rows with missing inputs are handled differently"
    ]
    with pytest.raises(InvalidInputError, match="handles_missing must be True or False"):
        OnDemandFeatureView(
            "x",
            [Field("a")],
            [Field("b")],
            function=filled_of,
            handles_missing="yes",  # type: ignore[arg-type]
        )


def loop_a(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"a": columns["b"]}


def loop_b(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"b": columns["a"]}


def test_apply_refuses_cycles_naming_the_views(project: Project) -> None:
    store = project.features
    a = OnDemandFeatureView("loop_a", [], [Field("a")], function=loop_a, inputs=["loop_b:b"])
    b = OnDemandFeatureView("loop_b", [], [Field("b")], function=loop_b, inputs=["loop_a:a"])
    with pytest.raises(InvalidInputError, match="'loop_a' -> 'loop_b' -> 'loop_a'") as cycle:
        store.apply([a, b], actor="ann")
    assert cycle.value.field == "loop_a.inputs"
    itself = OnDemandFeatureView("loop_a", [], [Field("a")], function=loop_a, inputs=["loop_a"])
    with pytest.raises(InvalidInputError, match="'loop_a' -> 'loop_a'"):
        store.apply([itself], actor="ann")
    # through a registered view: ratio -> band already; a new ratio reading band closes a loop
    closing = OnDemandFeatureView(
        "ratio", [Field("amount")], [Field("ratio")], function=ratio_of, inputs=["band:risky"]
    )
    loop = r"'(band|ratio)' -> '(band|ratio)' -> '(band|ratio)'"
    with pytest.raises(InvalidInputError, match=loop):
        store.apply([closing], actor="ann")
    assert [r.name for r in store.definitions("ondemand")] == ["band", "filled", "ratio", "score"]


def test_apply_refuses_unknown_inputs_naming_the_views(project: Project) -> None:
    store = project.features
    unknown = OnDemandFeatureView(
        "late", [], [Field("late")], function=loop_a, inputs=["nowhere:b"]
    )
    with pytest.raises(InvalidInputError, match="'late' reads feature view 'nowhere'") as err:
        store.apply([unknown], actor="ann")
    assert err.value.field == "late.inputs"
    no_field = OnDemandFeatureView(
        "late", [], [Field("late")], function=loop_a, inputs=["band:nope"]
    )
    with pytest.raises(InvalidInputError, match="on-demand feature view 'band' has no feature"):
        store.apply([no_field], actor="ann")
    # a new version of ratio without the field band reads is refused while band reads it
    renamed = OnDemandFeatureView(
        "ratio",
        [Field("amount")],
        [Field("share")],
        function=share_of,
        inputs=["profile:income"],
    )
    with pytest.raises(InvalidInputError, match="registered on-demand feature view 'band'") as c:
        store.apply([renamed], actor="ann")
    assert "whose features change (ratio float64 -> share float64)" in str(c.value)
    income_gone = FeatureView(
        "profile", customer, [Field("segment", "string")], FileSource("profile.parquet")
    )
    gone = r"view '(ratio|filled)' reads 'income' of 'profile'"
    with pytest.raises(InvalidInputError, match=gone):
        store.apply([income_gone], actor="ann")


def share_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"share": columns["amount"] / np.maximum(columns["income"], 1.0)}


def test_dependency_order() -> None:
    reads = {"d": ["c", "b"], "c": ["a"], "b": ["a", "stored"], "a": [], "e": []}
    order = dependency_order(reads)
    assert sorted(order) == sorted(reads)
    for name, used in reads.items():
        for u in used:
            if u in reads:
                assert order.index(u) < order.index(name)
    with pytest.raises(InvalidInputError, match="'b' -> 'c' -> 'b'"):
        dependency_order({"a": ["b"], "b": ["c"], "c": ["b"]})
