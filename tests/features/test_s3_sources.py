"""Feature sources on S3 (moto server), read by DuckDB through s3fs with the project's options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import s3fs

from mainspring.features import Entity, FeatureStore, FeatureView, Field, FileSource
from mainspring.storage.memory import MemoryOnlineStore, memory_metadata

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_training_sets_and_materialization_from_s3(s3_url: Any, tmp_path: Path) -> None:
    fs = s3fs.S3FileSystem(**s3_url.storage_options)
    with fs.open(f"{s3_url.url}/profile.parquet", "wb") as out:
        pd.DataFrame(
            {"customer_id": [1, 2], "event_timestamp": [T0, T0], "income": [10.0, 20.0]}
        ).to_parquet(out)
    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView(
        "profile", customer, [Field("income")], FileSource(f"{s3_url.url}/profile.parquet")
    )
    store = FeatureStore(
        memory_metadata(),
        MemoryOnlineStore(),
        base_dir=tmp_path,
        storage_options=s3_url.storage_options,
    )
    store.apply([customer, view], actor="ann")
    entities = pd.DataFrame({"customer_id": [2, 1], "event_timestamp": [T0, T0]})
    assert list(store.get_historical_features(entities, ["profile"]).data["income"]) == [20.0, 10.0]
    assert store.materialize(end=T0 + timedelta(days=1))[0].rows == 2
    online = store.get_online_features(["profile"], [{"customer_id": 1}], now=T0)
    assert online.values == {"income": [10.0]}


def test_other_remote_schemes_are_refused(tmp_path: Path) -> None:
    import pytest

    from mainspring.errors import InvalidInputError

    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView("gcs", customer, [Field("x")], FileSource("gs://bucket/x.parquet"))
    store = FeatureStore(memory_metadata(), MemoryOnlineStore(), base_dir=tmp_path)
    with pytest.raises(InvalidInputError, match=r"sources under gs:// are not supported"):
        store.apply([customer, view], actor="ann")
    store.apply([customer, view], actor="ann", check_sources=False)
    with pytest.raises(InvalidInputError, match=r"sources under gs:// are not supported"):
        store.materialize(["gcs"])
