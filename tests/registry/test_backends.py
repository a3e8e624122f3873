"""The registry end to end on the scale-out backends: PostgreSQL metadata and S3 artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from mainspring.config import load_settings
from mainspring.errors import IntegrityError
from mainspring.project import Project


def test_registry_on_postgres_and_s3(fresh_postgres_url: str, s3_url: Any, tmp_path: Path) -> None:
    options = s3_url.storage_options
    settings = load_settings(
        tmp_path,
        environ={
            "MAINSPRING_METADATA": fresh_postgres_url,
            "MAINSPRING_ARTIFACTS": s3_url.url,
            "MAINSPRING_S3__ENDPOINT_URL": options["endpoint_url"],
            "MAINSPRING_S3__ACCESS_KEY_ID": options["key"],
            "MAINSPRING_S3__SECRET_ACCESS_KEY": options["secret"],
            "MAINSPRING_S3__REGION": "us-east-1",
        },
    )
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    model = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1)
    model.fit(x, (x["a"] > 0).astype(int))
    with Project.open(tmp_path, settings=settings) as project:
        assert project.metadata.dialect == "postgresql"
        registry = project.registry
        v = registry.register("credit", model, actor="alice", metrics={"auc": 0.7})
        registry.request_approval("credit", v.version, actor="alice")
        registry.approve("credit", v.version, actor="bob", reason="ok")
        registry.set_alias("credit", "champion", v.version, actor="alice")
        loaded = registry.load("credit@champion")
        np.testing.assert_allclose(loaded.predict(x), model.predict_proba(x)[:, 1])
        keys = list(project.blobs.list("sha256/"))
        assert keys == [f"sha256/{v.digest[:2]}/{v.digest}"]
        assert registry.verify().ok and len(registry.history("credit")) == 4
        project.blobs.put(keys[0], b"tampered")
        with pytest.raises(IntegrityError):
            registry.load("credit/1")
