"""The demo's streaming step: updates become online features, the champion scores requests
asynchronously, and outcomes are joined to the scores they answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mainspring.demo.data import FEATURES, credit_data
from mainspring.demo.streaming import APPLICANTS, run
from mainspring.project import Project

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")


def test_streaming_demo(tmp_path: Path) -> None:
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
        result = run(project)
        assert result.updates == result.applied == 2 * APPLICANTS
        assert [e.payload["request_id"] for e in result.predictions] == [
            "req-14",
            "req-15",
            "req-3",
            "req-92",
        ]
        # each score is the champion's on the applicant's latest streamed update
        updates, _ = credit_data(2 * APPLICANTS, seed=21)
        champion = registry.load("credit-risk@champion")
        for event in result.predictions:
            applicant = int(event.key or "")
            latest = updates[APPLICANTS + applicant : APPLICANTS + applicant + 1]
            want = np.asarray(champion.predict(latest)).reshape(-1)[-1]
            assert list(event.payload["outputs"].values())[-1] == pytest.approx(want)
        assert sorted(e.payload["id"] for e in result.labelled) == sorted(
            e.payload["request_id"] for e in result.predictions
        )
