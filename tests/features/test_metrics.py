"""Feature store metrics: read latency, rows written and freshness per view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry

from mainspring.features import Entity, FeatureStore, FeatureView, Field, FileSource
from mainspring.features.metrics import FeatureMetrics
from mainspring.storage.memory import MemoryOnlineStore, memory_metadata

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_metrics_per_view(tmp_path: Path) -> None:
    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [T0, T0], "income": [1.0, 2.0]}
    ).to_parquet(tmp_path / "p.parquet")
    registry = CollectorRegistry()
    store = FeatureStore(
        memory_metadata(),
        MemoryOnlineStore(),
        base_dir=tmp_path,
        metrics=FeatureMetrics(registry),
    )
    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView("profile", customer, [Field("income")], FileSource("p.parquet"))
    store.apply([customer, view], actor="ann")
    store.materialize(end=T0 + timedelta(hours=1))
    store.write_online("profile", [{"customer_id": 3, "event_timestamp": T0, "income": 3.0}])
    store.get_online_features(["profile"], [{"customer_id": 1}])
    store.get_online_features(["profile"], [{"customer_id": 2}, {"customer_id": 3}])

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("mainspring_feature_online_read_seconds_count", view="profile") == 2
    assert (
        value("mainspring_feature_online_rows_written_total", view="profile", path="materialize")
        == 2
    )
    assert value("mainspring_feature_online_rows_written_total", view="profile", path="stream") == 1
    assert value("mainspring_feature_view_online_rows", view="profile") == 2
    until = value("mainspring_feature_view_materialized_until_seconds", view="profile")
    assert until == (T0 + timedelta(hours=1)).timestamp()


def test_the_default_metrics_are_shared() -> None:
    assert FeatureMetrics.default() is FeatureMetrics.default()
