"""The Feast side of the feature-store benchmark; runs in Feast's own virtualenv.

python feast_side.py DATA_DIR online|historical OUT.json
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

FEATURES = [f"f{i}" for i in range(10)]
TTL = timedelta(days=2)


def store(data: Path) -> tuple[FeatureStore, FeatureView, Entity]:
    repo = data / "feast_repo"
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(
        "project: bench\n"
        f"registry: {repo / 'registry.db'}\n"
        "provider: local\n"
        f"online_store:\n  type: sqlite\n  path: {repo / 'online.db'}\n"
        "offline_store:\n  type: file\n"
        "entity_key_serialization_version: 3\n",
        encoding="utf-8",
    )
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=str(data / "features.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(
        name="fv",
        entities=[customer],
        ttl=TTL,
        schema=[Field(name=f, dtype=Float64) for f in FEATURES],
        source=source,
        online=True,
    )
    fs = FeatureStore(repo_path=str(repo))
    fs.apply([customer, view])
    return fs, view, customer


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e6)
    return out


def main() -> None:
    data, mode, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    meta = json.loads((data / "meta.json").read_text())
    fs, _, _ = store(data)
    refs = [f"fv:{f}" for f in FEATURES]
    if mode == "online":
        end = datetime.fromisoformat(meta["end"])
        t = time.perf_counter()
        fs.materialize(start_date=end - timedelta(days=400), end_date=end)
        materialize_s = time.perf_counter() - t
        ids = meta["online_ids"]
        one = [{"customer_id": ids[0]}]
        hundred = [{"customer_id": i} for i in ids[:100]]
        for _ in range(20):
            fs.get_online_features(features=refs, entity_rows=one).to_dict()
        lat1 = timed(lambda: fs.get_online_features(features=refs, entity_rows=one).to_dict(), 1000)
        lat100 = timed(
            lambda: fs.get_online_features(features=refs, entity_rows=hundred).to_dict(), 200
        )
        values = fs.get_online_features(features=refs, entity_rows=hundred).to_dict()
        result = {
            "materialize_s": materialize_s,
            "online_1_ms": lat1,
            "online_100_ms": lat100,
            "values": {f: values[f] for f in FEATURES},
        }
    else:
        entities = pd.read_parquet(data / "entities.parquet")
        t = time.perf_counter()
        frame = fs.get_historical_features(entity_df=entities, features=refs).to_df()
        seconds = time.perf_counter() - t
        frame.sort_values("row_id").reset_index(drop=True)[["row_id", *FEATURES]].to_parquet(
            data / "feast_historical.parquet"
        )
        result = {
            "historical_s": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows": len(frame),
        }
    out.write_text(json.dumps(result), encoding="utf-8")
    print(f"feast {mode} done at {datetime.now(UTC):%H:%M:%S}", file=sys.stderr)


if __name__ == "__main__":
    main()
