"""Point-in-time correctness of training sets, checked against pandas ``merge_asof``."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.features import Entity, FeatureView, Field, FileSource, QuerySource
from mainspring.features.plans import Selection, select
from mainspring.features.training import build_training_set

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", {"customer_id": "int64"})


def minutes(values: list[int]) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in values]


def selection_of(*views: FeatureView) -> Selection:
    registered = {v.name: (v, 1, f"{v.name}:x") for v in views}
    return select(tuple(v.name for v in views), registered)


def expected_asof(
    entities: pd.DataFrame, features: pd.DataFrame, ttl: timedelta | None
) -> pd.DataFrame:
    """The reference: pandas merge_asof (backward, exact matches allowed), then the TTL."""
    left = entities.reset_index().sort_values("event_timestamp", kind="stable")
    right = features.rename(columns={"event_timestamp": "feature_ts"}).sort_values("feature_ts")
    merged = pd.merge_asof(
        left,
        right,
        left_on="event_timestamp",
        right_on="feature_ts",
        by="customer_id",
        direction="backward",
        allow_exact_matches=True,
    )
    if ttl is not None:
        stale = merged["event_timestamp"] - merged["feature_ts"] > ttl
        merged.loc[stale, ["income", "feature_ts"]] = np.nan, pd.NaT
    return merged.sort_values("index").set_index("index")


@settings(max_examples=40, deadline=None)
@given(
    feature_rows=st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 60), st.floats(-1e6, 1e6)),
        max_size=40,
        unique_by=lambda r: (r[0], r[1]),
    ),
    entity_rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 70)), min_size=1, max_size=30),
    ttl_minutes=st.none() | st.integers(1, 30),
)
def test_matches_merge_asof(
    feature_rows: list[tuple[int, int, float]],
    entity_rows: list[tuple[int, int]],
    ttl_minutes: int | None,
) -> None:
    ttl = timedelta(minutes=ttl_minutes) if ttl_minutes is not None else None
    features = pd.DataFrame(
        {
            "customer_id": pd.Series([r[0] for r in feature_rows], dtype="int64"),
            "event_timestamp": pd.Series(
                minutes([r[1] for r in feature_rows]), dtype="datetime64[us, UTC]"
            ),
            "income": pd.Series([r[2] for r in feature_rows], dtype="float64"),
        }
    )
    entities = pd.DataFrame(
        {
            "customer_id": pd.Series([r[0] for r in entity_rows], dtype="int64"),
            "event_timestamp": pd.Series(
                minutes([r[1] for r in entity_rows]), dtype="datetime64[us, UTC]"
            ),
        }
    )
    with tempfile.TemporaryDirectory() as d:
        features.to_parquet(Path(d) / "f.parquet")
        view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"), ttl=ttl)
        result = build_training_set(entities, selection_of(view), Path(d)).data
    expected = expected_asof(entities, features, ttl)
    assert list(result["customer_id"]) == list(entities["customer_id"])
    assert list(result["event_timestamp"]) == list(entities["event_timestamp"])
    np.testing.assert_array_equal(result["income"].to_numpy(), expected["income"].to_numpy())
    found = expected["feature_ts"].notna().to_numpy()
    np.testing.assert_array_equal(result["f__found"].to_numpy(), found)
    # never a value from the future of the row
    stamps = result["f__event_timestamp"]
    assert ((stamps <= result["event_timestamp"]) | stamps.isna()).all()


def test_ties_take_the_row_at_the_same_time_and_never_later(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "event_timestamp": minutes([0, 10, 11]),
            "income": [1.0, 2.0, 3.0],
        }
    ).to_parquet(tmp_path / "f.parquet")
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1, 1, 1], "event_timestamp": minutes([10, 9, 10])})
    out = build_training_set(entities, selection_of(view), tmp_path).data
    assert list(out["income"]) == [2.0, 1.0, 2.0]


def test_rows_without_a_match_are_kept_flagged_and_counted(tmp_path: Path) -> None:
    pd.DataFrame({"customer_id": [1], "event_timestamp": minutes([5]), "income": [1.0]}).to_parquet(
        tmp_path / "f.parquet"
    )
    view = FeatureView(
        "f", customer, [Field("income")], FileSource("f.parquet"), ttl=timedelta(minutes=10)
    )
    entities = pd.DataFrame(
        {"customer_id": [1, 1, 2, 1], "event_timestamp": minutes([0, 15, 15, 16])}
    )
    ts = build_training_set(entities, selection_of(view), tmp_path, output="arrow")
    table = ts.data
    assert isinstance(table, pa.Table)
    # before the first row, within TTL, unknown entity, just past the TTL
    assert table.column("income").to_pylist() == [None, 1.0, None, None]
    assert table.column("f__found").to_pylist() == [False, True, False, False]
    assert ts.missing == {"f": 3}
    assert ts.training_data.rows == 4
    assert ts.training_data.start == T0 and ts.training_data.end == T0 + timedelta(minutes=16)
    assert ts.training_data.source == "features:f@v1"
    saved = pd.read_parquet(ts.save(tmp_path / "training.parquet"))
    assert list(saved.columns) == table.column_names and len(saved) == 4


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": minutes([0, 0]), "income": [1.0, 2.0]}
    ).to_parquet(tmp_path / "f.parquet")
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1, 2], "event_timestamp": minutes([1, 1])})
    a = build_training_set(entities, selection_of(view), tmp_path).training_data
    b = build_training_set(entities, selection_of(view), tmp_path).training_data
    c = build_training_set(entities.iloc[::-1], selection_of(view), tmp_path).training_data
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_outputs_and_sources(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": minutes([0, 0]), "income": [1, 2]}
    ).to_csv(tmp_path / "f.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
    csv = FeatureView("csv", customer, [Field("income")], FileSource("f.csv"))
    query = FeatureView(
        "query",
        customer,
        [Field("doubled")],
        QuerySource("SELECT customer_id, event_timestamp, income * 2 AS doubled FROM 'f.csv'"),
    )
    entities = pl.DataFrame(
        {"customer_id": [2, 1], "event_timestamp": minutes([1, 1])},
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )
    out = build_training_set(entities, selection_of(csv, query), tmp_path, output="polars").data
    assert isinstance(out, pl.DataFrame)
    assert out["income"].to_list() == [2.0, 1.0]
    assert out["doubled"].to_list() == [4.0, 2.0]


def test_naive_entity_timestamps_are_refused_naming_the_column(tmp_path: Path) -> None:
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": [datetime(2026, 1, 1)]})
    with pytest.raises(InvalidInputError, match="'event_timestamp' holds naive timestamps") as err:
        build_training_set(entities, selection_of(view), tmp_path)
    assert err.value.field == "event_timestamp"


def test_naive_source_timestamps_are_refused_naming_view_and_column(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1], "event_timestamp": [datetime(2026, 1, 1)], "income": [1.0]}
    ).to_parquet(tmp_path / "f.parquet")
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": minutes([1])})
    with pytest.raises(InvalidInputError, match=r"feature view 'f'.*'event_timestamp'") as err:
        build_training_set(entities, selection_of(view), tmp_path)
    assert err.value.field == "f:event_timestamp"


def test_a_source_column_of_another_type_is_refused(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1], "event_timestamp": minutes([0]), "income": ["high"]}
    ).to_parquet(tmp_path / "f.parquet")
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": minutes([1])})
    with pytest.raises(InvalidInputError, match="field 'income' is declared float64") as err:
        build_training_set(entities, selection_of(view), tmp_path)
    assert err.value.field == "f:income"


def test_duplicate_source_rows_are_refused(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1, 1], "event_timestamp": minutes([0, 0]), "income": [1.0, 2.0]}
    ).to_parquet(tmp_path / "f.parquet")
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    entities = pd.DataFrame({"customer_id": [1], "event_timestamp": minutes([1])})
    with pytest.raises(
        InvalidInputError, match="feature view 'f': the source has 2 rows for customer_id=1"
    ):
        build_training_set(entities, selection_of(view), tmp_path)


def test_wrong_key_type_and_missing_key(tmp_path: Path) -> None:
    view = FeatureView("f", customer, [Field("income")], FileSource("f.parquet"))
    wrong = pd.DataFrame({"customer_id": ["1"], "event_timestamp": minutes([1])})
    with pytest.raises(InvalidInputError, match="join key 'customer_id' must be int64"):
        build_training_set(wrong, selection_of(view), tmp_path)
    missing = pd.DataFrame({"id": [1], "event_timestamp": minutes([1])})
    with pytest.raises(InvalidInputError, match="no join key column 'customer_id'"):
        build_training_set(missing, selection_of(view), tmp_path)
