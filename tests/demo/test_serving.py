"""The demo's serving step answers OIP requests with the champion's scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mainspring.demo.data import FEATURES, credit_data
from mainspring.demo.serving import serve_champion
from mainspring.project import Project

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")


def test_serve_champion(tmp_path: Path) -> None:
    x, y = credit_data(500, seed=3)
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(
        pd.DataFrame(x, columns=list(FEATURES)), y
    )
    with Project.open(tmp_path) as project:
        registry = project.registry
        registry.register("credit-risk", model, actor="alice")
        registry.request_approval("credit-risk", 1, actor="alice")
        registry.approve("credit-risk", 1, actor="bob", reason="ok")
        registry.set_alias("credit-risk", "champion", 1, actor="alice")
        scores = serve_champion(project, rows=3)
        rows, _ = credit_data(3, seed=11)
        expected = registry.load("credit-risk@champion").predict(rows)
    np.testing.assert_allclose(scores, expected)
