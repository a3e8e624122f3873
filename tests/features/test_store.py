"""The feature store service: apply, governance, online reads, writes and materialization."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import GovernanceError, InvalidInputError, NotFoundError
from mainspring.features import (
    Entity,
    FeatureService,
    FeatureStore,
    FeatureView,
    Field,
    FileSource,
)
from mainspring.project import Project
from mainspring.records import Lineage

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", {"customer_id": "int64"})


def risk(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    income = columns["income"]
    return {"debt_ratio": columns["debt"] / np.maximum(income, 1.0), "log_income": np.log1p(income)}


profile = FeatureView(
    "profile",
    customer,
    [Field("income"), Field("debt")],
    FileSource("profile.parquet"),
    ttl=timedelta(days=2),
    owner="risk",
)
derived = FeatureView(
    "derived",
    customer,
    [Field("debt_ratio"), Field("log_income")],
    FileSource("profile.parquet"),
    transformation=risk,
)
credit = FeatureService("credit", [profile, "derived:debt_ratio"])


def write_profile(directory: Path, rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 20, rows),
            "event_timestamp": [
                T0 + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 10, rows)
            ],
            "income": rng.uniform(0, 100, rows),
            "debt": rng.uniform(0, 50, rows),
        }
    ).drop_duplicates(["customer_id", "event_timestamp"])
    frame.to_parquet(directory / "profile.parquet")
    return frame


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    write_profile(tmp_path)
    with Project.open(tmp_path) as opened:
        opened.features.apply([customer, profile, derived, credit], actor="ann")
        yield opened


def test_apply_versions_only_changes_and_records_history(project: Project) -> None:
    store = project.features
    assert [(r.kind, r.name, r.version) for r in store.definitions("view")] == [
        ("view", "derived", 1),
        ("view", "profile", 1),
    ]
    assert store.apply([customer, profile, derived, credit], actor="ann") == []
    described = FeatureView(
        "profile", customer, profile.fields, profile.source, ttl=profile.ttl, description="new"
    )
    changed = store.apply([described], actor="bob")
    assert [(r.name, r.version, r.created_by) for r in changed] == [("profile", 2, "bob")]
    assert [r.version for r in store.versions("view", "profile")] == [1, 2]
    assert store.view("profile").description == "new"
    assert [e.action for e in store.history()][-1] == "view.apply"
    assert store.verify().ok


def test_breaking_change_to_a_view_a_model_uses_is_refused_naming_it(project: Project) -> None:
    x = pd.DataFrame({"income": [1.0, 2.0, 3.0, 4.0] * 10, "debt": [0.0, 1.0, 0.0, 1.0] * 10})
    model = lgb.LGBMClassifier(n_estimators=2, min_child_samples=1, verbose=-1)
    model.fit(x, [0, 1, 0, 1] * 10)
    project.registry.register(
        "credit", model, actor="ann", lineage=Lineage(feature_views=("profile@v1",))
    )
    dropped = FeatureView("profile", customer, [Field("income")], profile.source, ttl=profile.ttl)
    with pytest.raises(
        GovernanceError, match=r"used by model versions credit/1; .*field 'debt' is removed"
    ):
        project.features.apply([dropped], actor="ann")
    retyped = FeatureView(
        "profile", customer, [Field("income", "float32"), Field("debt")], profile.source
    )
    with pytest.raises(GovernanceError, match="changes type from float64 to float32"):
        project.features.apply([retyped], actor="ann")
    # adding a field is not breaking; an unused view may change freely
    added = FeatureView(
        "profile", customer, [*profile.fields, Field("age", "int64")], profile.source
    )
    # (the source has no age column yet: skip the source check)
    assert project.features.apply([added], actor="ann", check_sources=False)[0].version == 2
    smaller = FeatureView(
        "derived", customer, [Field("debt_ratio")], derived.source, transformation=risk
    )
    assert project.features.apply([smaller], actor="ann")[0].version == 2


def test_a_service_must_name_registered_views_and_features(project: Project) -> None:
    with pytest.raises(InvalidInputError, match="names feature view 'nope'"):
        project.features.apply([FeatureService("s", ["nope"])], actor="ann")
    with pytest.raises(InvalidInputError, match="has no feature 'age'; it has: income, debt"):
        project.features.apply([FeatureService("s", ["profile:age"])], actor="ann")
    with pytest.raises(NotFoundError, match="feature service 'nope'"):
        project.features.get_online_features("nope", [{"customer_id": 1}])


def test_materialized_online_values_equal_offline_values(project: Project, tmp_path: Path) -> None:
    store = project.features
    frame = pd.read_parquet(tmp_path / "profile.parquet")
    end = T0 + timedelta(days=11)
    runs = store.materialize(end=end)
    assert {r.view: r.rows for r in runs} == {
        "derived": frame.customer_id.nunique(),
        "profile": frame.customer_id.nunique(),
    }
    ids = [*sorted(frame.customer_id.unique().tolist()), 999]
    online = store.get_online_features("credit", [{"customer_id": i} for i in ids], now=end)
    offline = store.get_historical_features(
        pd.DataFrame({"customer_id": ids, "event_timestamp": [end] * len(ids)}), "credit"
    ).data
    for name in ("income", "debt", "debt_ratio"):
        assert online.values[name] == [None if pd.isna(v) else v for v in offline[name]]
    assert online.found["profile"] == list(offline["profile__found"])
    assert online.found["derived"][-1] is False
    assert online.event_timestamps["derived"][:-1] == list(offline["derived__event_timestamp"][:-1])


def test_streaming_writes_apply_the_same_transformation(project: Project) -> None:
    store = project.features
    at = T0 + timedelta(days=30)
    rows = [
        {"customer_id": 7, "event_timestamp": at, "income": 40.0, "debt": 10.0},
        {"customer_id": 8, "event_timestamp": at, "income": 0.5, "debt": 3.0},
    ]
    assert store.write_online("derived", rows) == 2
    online = store.get_online_features(["derived"], {"customer_id": [7, 8]}, now=at)
    expected = risk({"income": np.array([40.0, 0.5]), "debt": np.array([10.0, 3.0])})
    assert online.values["debt_ratio"] == list(expected["debt_ratio"])
    assert online.values["log_income"] == list(expected["log_income"])
    assert online.event_timestamps["derived"] == [at, at]
    # an older event never replaces a newer one
    store.write_online(
        "derived", [{**rows[0], "event_timestamp": at - timedelta(days=1), "income": 1.0}]
    )
    again = store.get_online_features(["derived:log_income"], [{"customer_id": 7}], now=at)
    assert again.values == {"log_income": [expected["log_income"][0]]}


def test_ttl_is_honoured_on_read(project: Project) -> None:
    store = project.features
    at = T0 + timedelta(days=40)
    store.write_online(
        "profile", [{"customer_id": 1, "event_timestamp": at, "income": 1.0, "debt": 2.0}]
    )
    fresh = store.get_online_features(["profile"], [{"customer_id": 1}], now=at + timedelta(days=1))
    stale = store.get_online_features(["profile"], [{"customer_id": 1}], now=at + timedelta(days=3))
    assert fresh.rows() == [{"customer_id": 1, "income": 1.0, "debt": 2.0}]
    assert stale.rows() == [{"customer_id": 1, "income": None, "debt": None}]
    assert stale.found == {"profile": [False]}


def test_incremental_materialization_reads_only_new_rows(project: Project, tmp_path: Path) -> None:
    store = project.features
    first = store.materialize(["profile"], end=T0 + timedelta(days=5))[0]
    assert first.start is None
    second = store.materialize(["profile"], end=T0 + timedelta(days=11))[0]
    assert second.start == T0 + timedelta(days=5)
    frame = pd.read_parquet(tmp_path / "profile.parquet")
    newer = frame[frame.event_timestamp > T0 + timedelta(days=5)]
    assert second.rows == newer.customer_id.nunique()
    stats = store.statistics("profile")
    assert stats["online_rows"] == frame.customer_id.nunique()
    assert stats["last_materialization"]["rows"] == second.rows


def test_bad_online_input_names_the_field(project: Project) -> None:
    store = project.features
    with pytest.raises(
        InvalidInputError, match="join key 'customer_id' must be int64, not str"
    ) as err:
        store.get_online_features("credit", [{"customer_id": "1"}])
    assert err.value.field == "entities[0].customer_id"
    with pytest.raises(InvalidInputError, match="entity 0 lacks join key 'customer_id'"):
        store.get_online_features("credit", [{"id": 1}])
    with pytest.raises(InvalidInputError, match="feature view 'nope'"):
        store.get_online_features(["nope:x"], [{"customer_id": 1}])
    naive = {
        "customer_id": [1],
        "event_timestamp": [datetime(2026, 1, 1)],
        "income": [1.0],
        "debt": [1.0],
    }
    with pytest.raises(InvalidInputError, match="naive timestamps") as err:
        store.write_online("profile", naive)
    assert err.value.field == "event_timestamp"
    twice = [{"customer_id": 1, "event_timestamp": T0, "income": 1.0, "debt": 1.0}] * 2
    with pytest.raises(InvalidInputError, match="two rows for entity '1'"):
        store.write_online("profile", twice)
    wrong = [{"customer_id": 1, "event_timestamp": T0, "income": "rich", "debt": 1.0}]
    with pytest.raises(InvalidInputError, match="field 'income' is declared float64") as err:
        store.write_online("profile", wrong)
    assert err.value.field == "profile:income"
    assert project.online.count(store.selection(["profile"]).parts[0].namespace) == 0


def test_a_transformation_needs_its_code(tmp_path: Path, project: Project) -> None:
    fresh = FeatureStore(project.metadata, project.online, base_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="'derived' has a transformation \\(risk\\)"):
        fresh.materialize(["derived"])
    fresh.load([derived])
    assert fresh.materialize(["derived"], end=T0 + timedelta(days=1))[0].view == "derived"


@settings(max_examples=30, deadline=None)
@given(
    key=st.one_of(
        st.text(max_size=5), st.floats(), st.booleans(), st.none(), st.lists(st.integers())
    )
)
def test_non_integer_keys_are_refused(key: Any) -> None:
    from mainspring.features.online import read_online
    from mainspring.features.plans import select
    from mainspring.storage.memory import MemoryOnlineStore

    selection = select(("profile",), {"profile": (profile, 1, "profile:x")})
    with pytest.raises(InvalidInputError, match="join key 'customer_id' must be int64"):
        read_online(MemoryOnlineStore(), selection, [{"customer_id": key}])


def test_references_never_collide_with_service_names(project: Project) -> None:
    store = project.features
    store.write_online(
        "profile", [{"customer_id": 1, "event_timestamp": T0, "income": 1.0, "debt": 2.0}]
    )
    by_service = store.get_online_features("credit", [{"customer_id": 1}], now=T0)
    by_refs = store.get_online_features(["profile:income"], [{"customer_id": 1}], now=T0)
    assert list(by_service.values) == ["income", "debt", "debt_ratio"]
    assert list(by_refs.values) == ["income"]
    with pytest.raises(InvalidInputError, match="select at least one feature"):
        store.get_online_features([], [{"customer_id": 1}])


def test_apply_checks_each_view_against_its_source(project: Project, tmp_path: Path) -> None:
    wrong_type = FeatureView(
        "typed", customer, [Field("income", "string")], FileSource("profile.parquet")
    )
    with pytest.raises(InvalidInputError, match="field 'income' is declared string") as err:
        project.features.apply([wrong_type], actor="ann")
    assert err.value.field == "typed:income"
    missing = FeatureView("gone", customer, [Field("x")], FileSource("nowhere.parquet"))
    with pytest.raises(InvalidInputError, match="feature view 'gone': its source cannot be read"):
        project.features.apply([missing], actor="ann")

    def broken(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
        return {"x": columns["no_such_column"]}

    failing = FeatureView(
        "failing", customer, [Field("x")], FileSource("profile.parquet"), transformation=broken
    )
    with pytest.raises(InvalidInputError, match="'failing': the transformation failed: KeyError"):
        project.features.apply([failing], actor="ann")
    assert [r.name for r in project.features.definitions("view")] == ["derived", "profile"]
    assert project.features.apply([missing], actor="ann", check_sources=False)[0].name == "gone"


def test_servers_see_definitions_applied_by_another_process(project: Project) -> None:
    server = FeatureStore(project.metadata, project.online, base_dir=project.settings.project_dir)
    server.refresh_seconds = 0.0
    first = server.selection("credit").parts[0].namespace
    server.get_online_features("credit", [{"customer_id": 1}])
    retyped = FeatureView(
        "profile", customer, [Field("income", "float32"), Field("debt")], profile.source
    )
    project.features.apply([retyped], actor="bob")  # "another process": another store
    server.get_online_features("credit", [{"customer_id": 1}])
    assert server.selection("credit").parts[0].namespace != first
