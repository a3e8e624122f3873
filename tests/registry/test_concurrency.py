"""Two processes registering 50 versions each end with 100 distinct versions, on every backend."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from mainspring.registry import Registry
from mainspring.storage import open_blob_store, open_metadata_store

SCRIPT = textwrap.dedent("""
    import sys
    from mainspring.registry import Registry
    from mainspring.storage import open_blob_store, open_metadata_store
    metadata, artifacts, model, who = sys.argv[1:5]
    registry = Registry(open_metadata_store(metadata), open_blob_store(artifacts))
    for i in range(50):
        registry.register("shared", model, actor=who, tags={"i": i})
""")


def race(metadata_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 4},
        lgb.Dataset(rng.normal(size=(100, 3)), rng.integers(0, 2, 100)),
        num_boost_round=3,
    )
    model = tmp_path / "model.txt"
    booster.save_model(str(model))
    artifacts = f"file://{tmp_path / 'artifacts'}"
    open_metadata_store(metadata_url).close()  # migrate once so the race is about versions
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, metadata_url, artifacts, str(model), who],
            stderr=subprocess.PIPE,
        )
        for who in ("p1", "p2")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
    store = open_metadata_store(metadata_url)
    try:
        registry = Registry(store, open_blob_store(artifacts))
        versions = registry.list_versions("shared")
        assert [v.version for v in versions] == list(range(1, 101))
        assert sorted((v.registered_by, v.tags["i"]) for v in versions) == sorted(
            (who, str(i)) for who in ("p1", "p2") for i in range(50)
        )
        assert len(registry.history("shared")) == 100 and registry.verify().ok
    finally:
        store.close()


def test_concurrent_registration_sqlite(tmp_path: Path) -> None:
    race(f"sqlite:///{tmp_path / 'meta.db'}", tmp_path)


@pytest.mark.service
def test_concurrent_registration_postgres(fresh_postgres_url: str, tmp_path: Path) -> None:
    race(fresh_postgres_url, tmp_path)
