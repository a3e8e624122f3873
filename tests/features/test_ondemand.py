"""On-demand feature views: definition, apply, the same values offline and online, bad context."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import GovernanceError, InvalidInputError
from mainspring.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
)
from mainspring.features.computed import context_columns
from mainspring.features.ondemand import compute, input_array
from mainspring.features.plans import OnDemandPart, Plan, Selection
from mainspring.project import Project
from mainspring.records import Lineage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", {"customer_id": "int64"})
profile = FeatureView(
    "profile",
    customer,
    [Field("income"), Field("debt"), Field("segment", "string")],
    FileSource("profile.parquet"),
    ttl=timedelta(days=2),
)


def affordability(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    income, amount = columns["income"], columns["amount"]
    return {
        "amount_to_income": amount / np.maximum(income, 1.0),
        "large": amount > 1000.0,
        "instalments": np.ceil(amount / 100.0).astype("int64"),
        "channel_segment": np.array(
            [f"{c}/{s}" for c, s in zip(columns["channel"], columns["segment"], strict=True)],
            dtype=object,
        ),
    }


pricing = OnDemandFeatureView(
    "pricing",
    context=[Field("amount"), Field("channel", "string")],
    fields=[
        Field("amount_to_income"),
        Field("large", "bool"),
        Field("instalments", "int64"),
        Field("channel_segment", "string"),
    ],
    function=affordability,
    inputs=["profile:income", "profile:segment"],
)
credit = FeatureService("credit", [profile, pricing])


def fee(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"fee": columns["amount"] * 0.02}


fees = OnDemandFeatureView("fees", context=[Field("amount")], fields=[Field("fee")], function=fee)


def write_profile(directory: Path, rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 25, rows),
            "event_timestamp": [
                T0 + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 10, rows)
            ],
            "income": rng.uniform(0, 5000, rows),
            "debt": rng.uniform(0, 50, rows),
            "segment": rng.choice(["a", "b", "c"], rows),
        }
    ).drop_duplicates(["customer_id", "event_timestamp"])
    frame.to_parquet(directory / "profile.parquet")
    return frame


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    write_profile(tmp_path)
    with Project.open(tmp_path) as opened:
        opened.features.apply([customer, profile, pricing, fees, credit], actor="ann")
        yield opened


# ----------------------------------------------------------------------------- definitions


def test_definition_validation() -> None:
    with pytest.raises(InvalidInputError, match="top-level 'def'") as lam:
        OnDemandFeatureView("x", [Field("a")], [Field("b")], function=lambda c: c)
    assert lam.value.field == "function"

    def nested(columns: dict[str, Any]) -> dict[str, Any]:
        return columns

    with pytest.raises(InvalidInputError, match="nested function"):
        OnDemandFeatureView("x", [Field("a")], [Field("b")], function=nested)
    with pytest.raises(InvalidInputError, match="appears twice"):
        OnDemandFeatureView("x", [Field("a")], [Field("a")], function=fee)
    with pytest.raises(InvalidInputError, match="needs context fields or inputs"):
        OnDemandFeatureView("x", [], [Field("b")], function=fee)
    with pytest.raises(InvalidInputError, match="non-empty list of Field"):
        OnDemandFeatureView("x", [Field("a")], [], function=fee)
    with pytest.raises(InvalidInputError, match="not a feature view"):
        OnDemandFeatureView("x", [Field("a")], [Field("b")], function=fee, inputs=[3])  # type: ignore[list-item]
    assert pricing.input_refs == ("profile:income", "profile:segment")
    assert pricing.to_dict()["function"]["name"] == "affordability"


def test_apply_validates_inputs_and_outputs(project: Project) -> None:
    store = project.features
    unknown = OnDemandFeatureView(
        "u", [Field("a")], [Field("fee")], function=fee, inputs=["nope:x"]
    )
    with pytest.raises(InvalidInputError, match="reads feature view 'nope'"):
        store.apply([unknown], actor="ann")
    missing = OnDemandFeatureView(
        "m", [Field("a")], [Field("fee")], function=fee, inputs=["profile:age"]
    )
    with pytest.raises(InvalidInputError, match="has no feature 'age'"):
        store.apply([missing], actor="ann")
    # the function is tried on sample rows: 'fee' needs 'amount', which is not in the context
    broken = OnDemandFeatureView("b", [Field("a")], [Field("fee")], function=fee)
    with pytest.raises(InvalidInputError, match="the function failed: KeyError") as failed:
        store.apply([broken], actor="ann")
    assert failed.value.field == "function"
    wrong_type = OnDemandFeatureView("w", [Field("amount")], [Field("fee", "string")], function=fee)
    with pytest.raises(InvalidInputError, match="declared string") as typed:
        store.apply([wrong_type], actor="ann")
    assert typed.value.field == "w:fee"
    clash = OnDemandFeatureView("profile", [Field("amount")], [Field("fee")], function=fee)
    with pytest.raises(InvalidInputError, match="name of a feature view"):
        store.apply([clash], actor="ann")
    with pytest.raises(InvalidInputError, match="no feature 'nope'"):
        store.apply([FeatureService("s", ["fees:nope"])], actor="ann")
    assert [r.name for r in store.definitions("ondemand")] == ["fees", "pricing"]
    assert store.apply([pricing, fees], actor="ann") == []  # unchanged


# ----------------------------------------------------------------------------- the same values


def test_offline_and_online_values_are_identical(project: Project) -> None:
    store = project.features
    end = T0 + timedelta(days=10)
    store.materialize(end=end)
    ids = list(range(27))  # 25 and 26 are unknown: inputs are missing
    rng = np.random.default_rng(1)
    amounts = [float(a) for a in rng.uniform(0, 3000, len(ids))]
    channels = [str(c) for c in rng.choice(["web", "shop"], len(ids))]
    entities = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": [end] * len(ids),
            "amount": amounts,
            "channel": channels,
        }
    )
    offline = store.get_historical_features(entities, "credit").data
    online = store.get_online_features(
        "credit",
        [{"customer_id": i} for i in ids],
        context=[{"amount": a, "channel": c} for a, c in zip(amounts, channels, strict=True)],
        now=end,
    )
    names = [
        "income",
        "debt",
        "segment",
        "amount_to_income",
        "large",
        "instalments",
        "channel_segment",
    ]
    assert list(online.values) == names
    compared = 0
    for name in names:
        for i, value in enumerate(online.values[name]):
            expected = offline[name][i]
            if value is None:
                assert pd.isna(expected), (name, i)
            else:
                assert pd.notna(expected) and value == expected, (name, i, value, expected)
                compared += 1
    assert compared > 100
    assert online.found["profile"][-1] is False and online.values["amount_to_income"][-1] is None
    # the same through one context for every entity, one row or many
    one = store.get_online_features(
        "credit",
        [{"customer_id": 3}],
        context={"amount": amounts[3], "channel": channels[3]},
        now=end,
    )
    assert one.rows()[0] == online.rows()[3]
    columns = store.get_online_features(
        "credit", {"customer_id": ids}, context={"amount": amounts, "channel": channels}, now=end
    )
    assert columns.values == online.values


def test_inputs_read_only_for_the_function_are_not_returned(project: Project) -> None:
    store = project.features
    end = T0 + timedelta(days=10)
    store.materialize(end=end)
    every = store.get_online_features(
        ["pricing:amount_to_income"],
        {"customer_id": list(range(25))},
        {"amount": 50.0, "channel": "web"},
        now=end,
    )
    assert list(every.values) == ["amount_to_income"] and list(every.found) == ["pricing"]
    assert every.found["pricing"] == [v is not None for v in every.values["amount_to_income"]]
    known = next(i for i, v in enumerate(every.values["amount_to_income"]) if v is not None)
    training = store.get_historical_features(
        pd.DataFrame(
            {"customer_id": [known], "event_timestamp": [end], "amount": [50.0], "channel": ["web"]}
        ),
        ["pricing:amount_to_income", "fees"],
    )
    assert list(training.data.columns) == [
        "customer_id",
        "event_timestamp",
        "amount",
        "channel",
        "amount_to_income",
        "pricing__found",
        "fee",
        "fees__found",
    ]
    assert training.data["amount_to_income"][0] == every.values["amount_to_income"][known]
    assert training.feature_views == ("profile@v1", "pricing@v1", "fees@v1")
    assert training.missing == {"pricing": 0, "fees": 0}


def test_context_only_view(project: Project) -> None:
    got = project.features.get_online_features(
        ["fees"], [{"customer_id": 1}, {"customer_id": 2}], context={"amount": [100, 250.0]}
    )
    assert got.values == {"fee": [2.0, 5.0]}
    assert got.entities == [{"customer_id": 1}, {"customer_id": 2}]


def test_context_a_request_does_not_need_is_ignored(project: Project) -> None:
    store = project.features
    end = T0 + timedelta(days=10)
    store.materialize(end=end)
    plain = store.get_online_features(["profile"], [{"customer_id": 1}], now=end)
    extra = {"amount": 1.0, "channel": "web", "unused": object()}
    assert store.get_online_features(["profile"], [{"customer_id": 1}], extra, now=end) == plain
    fees_only = store.get_online_features(["fees"], [{"customer_id": 1}], context=extra)
    assert fees_only.values == {"fee": [0.02]}


# ----------------------------------------------------------------------------- bad input


def test_missing_or_wrong_context_names_the_view_and_field(project: Project) -> None:
    store = project.features
    one = [{"customer_id": 1}]
    with pytest.raises(InvalidInputError, match="'pricing' needs context field 'amount'") as none:
        store.get_online_features("credit", one)
    assert none.value.field == "context.amount"
    with pytest.raises(InvalidInputError, match="'pricing' needs context field 'channel'") as gap:
        store.get_online_features("credit", one, context={"amount": 1.0})
    assert gap.value.field == "context.channel"
    with pytest.raises(InvalidInputError, match="'amount' must be float64, not str '12'") as bad:
        store.get_online_features("credit", one, context={"amount": "12", "channel": "web"})
    assert bad.value.field == "context.amount"
    with pytest.raises(InvalidInputError, match="must be float64, not bool"):
        store.get_online_features("credit", one, context={"amount": True, "channel": "web"})
    with pytest.raises(InvalidInputError, match="2 values for 1 entities"):
        store.get_online_features("credit", one, context={"amount": [1.0, 2.0], "channel": "w"})
    with pytest.raises(InvalidInputError, match="context row 0 lacks it") as row:
        store.get_online_features("credit", one, context=[{"amount": 1.0}])
    assert row.value.field == "context[0].channel"

    end = T0 + timedelta(days=10)
    frame = pd.DataFrame({"customer_id": [1], "event_timestamp": [end], "amount": [1.0]})
    with pytest.raises(InvalidInputError, match="'pricing' needs context field 'channel'") as off:
        store.get_historical_features(frame, "credit")
    assert off.value.field == "channel"
    frame["channel"] = [7]
    with pytest.raises(InvalidInputError, match="'channel' must be string") as typed:
        store.get_historical_features(frame, "credit")
    assert typed.value.field == "channel"
    frame["channel"] = ["web"]
    frame["fee"] = [1.0]
    with pytest.raises(InvalidInputError, match="already has a column 'fee'"):
        store.get_historical_features(frame, ["fees"])


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.text(max_size=3),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.lists(st.floats(allow_nan=False), max_size=3),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
)
def test_context_parsing_accepts_numbers_or_says_why(value: Any) -> None:
    plan = Plan(Selection(()), ())
    part_plan = Plan(Selection(()), (_part(fees),))
    assert context_columns(plan, {"amount": value}, 2) == {}
    try:
        columns = context_columns(part_plan, {"amount": value}, 2)
    except InvalidInputError as exc:
        assert exc.field is not None and exc.field.startswith("context")
        return
    assert len(columns["amount"]) == 2
    assert compute(fees, columns, 2)["fee"] == [v * 0.02 for v in columns["amount"]]


def ints(columns: dict[str, Any]) -> dict[str, Any]:
    return {"n": columns["amount"]}


def _part(view: OnDemandFeatureView) -> OnDemandPart:
    return OnDemandPart(view, 1, view.feature_names, ())


def test_input_arrays_and_output_types() -> None:
    assert input_array([1.0, None], "float64").tolist()[0] == 1.0
    assert math.isnan(input_array([1.0, None], "float64")[1])
    assert input_array([1, 2], "int64").dtype == np.int64
    assert input_array([1, None], "int64").dtype == np.float64
    assert input_array(["a", None], "string").dtype == object
    assert input_array([True, False], "bool").dtype == np.bool_
    view = OnDemandFeatureView("v", [Field("amount")], [Field("n", "int64")], function=ints)
    with pytest.raises(InvalidInputError, match="declared int64 but the function returned float"):
        compute(view, {"amount": [1.5]}, 1)


# ----------------------------------------------------------------------------- other processes


DEFINITIONS = """
from datetime import timedelta
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource
from mainspring.features import OnDemandFeatureView

customer = Entity("customer", {"customer_id": "int64"})
profile = FeatureView("profile", customer, [Field("income")], FileSource("profile.parquet"),
                      ttl=timedelta(days=3650))

def share(columns):
    return {"share": columns["amount"] / columns["income"]}

shares = OnDemandFeatureView("shares", context=[Field("amount")], fields=[Field("share")],
                             function=share, inputs=[profile])
credit = FeatureService("credit", [profile, shares])
"""


def test_a_server_loads_the_function_from_the_definitions_file(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from mainspring.api.app import create_app
    from mainspring.features.definition_file import load_definitions

    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [T0, T0], "income": [10.0, 20.0]}
    ).to_parquet(tmp_path / "profile.parquet")
    (tmp_path / "features.py").write_text(DEFINITIONS, encoding="utf-8")
    with Project.open(tmp_path) as first:
        first.features.apply(load_definitions(tmp_path / "features.py"), actor="ann")
        first.features.materialize(end=T0 + timedelta(days=1))
    with Project.open(tmp_path) as server, TestClient(create_app(server)) as client:
        response = client.post(
            "/v1/features/online",
            json={
                "features": "credit",
                "entities": [{"customer_id": 2}, {"customer_id": 3}],
                "context": {"amount": 5},
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["features"] == {"income": [20.0, None], "share": [0.25, None]}
        wrong = client.post(
            "/v1/features/online",
            json={
                "features": "credit",
                "entities": [{"customer_id": 2}],
                "context": {"amount": "x"},
            },
        )
        assert wrong.status_code == 422 and wrong.json()["field"] == "context.amount"
    # a changed definitions file no longer matches the applied function: said, not guessed
    (tmp_path / "features.py").write_text(
        DEFINITIONS.replace("/ columns", "* 2 / columns"), encoding="utf-8"
    )
    with (
        Project.open(tmp_path) as stale,
        pytest.raises(InvalidInputError, match="whose code is not loaded"),
    ):
        stale.features.get_online_features("credit", [{"customer_id": 2}], {"amount": 1})


def test_governance_refuses_a_breaking_change(project: Project, tmp_path: Path) -> None:
    store = project.features
    training = store.get_historical_features(
        pd.DataFrame(
            {"customer_id": [1], "event_timestamp": [T0 + timedelta(days=3)], "amount": [5.0]}
        ),
        ["fees"],
    )
    project.registry.register(
        "m",
        _model(),
        actor="ann",
        training_data=training.training_data,
        lineage=Lineage(feature_views=training.feature_views),
    )
    changed = OnDemandFeatureView(
        "fees", [Field("amount")], [Field("fee", "float32")], function=fee
    )
    with pytest.raises(GovernanceError, match="used by model versions m/1"):
        store.apply([changed], actor="ann")


def _model() -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
