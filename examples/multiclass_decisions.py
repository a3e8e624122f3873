"""Decisions over a multi-class model: a LightGBM model that sorts accounts into current (0),
late (1) and default (2), a policy that decides on the probability of default, and decisions
explained for that class.

Registering with a sample of the training data stores the version's global importance (mean
|SHAP| summed over the three classes). The policy names the output it scores
(``output: probability_2``); each decision's attributions explain that class, and with the base
value they add up to its raw margin (LightGBM's ``predict(raw_score=True)[:, 2]``).

Run: python examples/multiclass_decisions.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

import mainspring as ms
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.serving.request import DecisionRequest

#: What tests/test_examples.py expects in the output.
EXPECT = "attributions add up to class 2's raw margin"

FEATURES = ["balance", "missed_payments", "tenure", "age"]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = {
    "output": "probability_2",  # the class the thresholds compare: default
    "thresholds": [{"below": 0.2, "decision": "no-action"}, {"decision": "call-customer"}],
    "explain": {
        "top_k": 2,
        "codes": {
            "missed_payments": {"up": {"code": "M01", "text": "Payments were missed"}},
            "balance": {"up": {"code": "B01", "text": "The balance is high"}},
        },
    },
}


def main(directory: Path) -> None:
    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {"balance": rng.lognormal(8, 1, 3000), "missed_payments": rng.poisson(0.7, 3000) * 1.0,
         "tenure": rng.uniform(0, 20, 3000), "age": rng.uniform(18, 80, 3000)}
    )  # fmt: skip
    risk = 1.2 * x["missed_payments"] + 0.6 * (np.log(x["balance"]) - 8)
    y = np.digitize(risk + rng.normal(scale=0.4, size=3000), [0.8, 2.0])  # 0, 1 or 2
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1).fit(x, y)

    accounts = x.iloc[:50].copy()
    accounts.insert(0, "account_id", np.arange(50, dtype=np.int64))
    accounts.insert(1, "event_timestamp", pd.Timestamp(NOW - timedelta(days=1)))
    accounts.to_parquet(directory / "accounts.parquet")

    with ms.Project.open(directory) as project:
        account = ms.Entity("account", {"account_id": "int64"})
        fields = [ms.Field(f) for f in FEATURES]
        source = ms.FileSource("accounts.parquet")
        view = ms.FeatureView("account_profile", account, fields, source, ttl=timedelta(days=30))
        project.features.apply([account, view, ms.FeatureService("collections", [view])],
                               actor="alice")  # fmt: skip
        project.features.materialize(end=NOW)

        registry = project.registry
        version = ms.register_with_importance(
            registry, "collections", model, data=x.head(1000), actor="alice"
        )
        assert version.importance is not None
        outputs = [spec.name for spec in version.signature.outputs or ()]
        print(f"{version.ref} outputs: {', '.join(outputs)}")
        print(
            "global importance (mean |SHAP| summed over the classes):",
            {k: round(v, 3) for k, v in version.importance.values.items()},
        )
        registry.request_approval("collections", 1, actor="alice")
        registry.approve("collections", 1, actor="bob", reason="validated")
        registry.set_alias("collections", "champion", 1, actor="alice")

        deployments = DeploymentStore(project.metadata)
        deployments.put(
            Deployment("collections-decisions", (Arm("main", "collections", "champion"),),
                       features="collections", policy=Policy.from_dict(POLICY)),
            actor="alice",
        )  # fmt: skip
        plane = DataPlane(registry, deployments=deployments)
        plane.start()
        service = DecisionService(plane, project.decisions, project.features)
        made = [service.decide("collections-decisions", DecisionRequest({"account_id": i}))
                for i in range(10)]  # fmt: skip
        plane.close()

        worst = max(made, key=lambda d: d.score or 0.0)
        assert worst.score is not None and worst.base_value is not None
        print(f"decision {worst.id}: {worst.decision} (probability of default {worst.score:.3f})")
        for reason in worst.reasons:
            print(f"  {reason.code} {reason.text}: {reason.feature} = {reason.value:.3g}")
        for d in made:
            assert d.base_value is not None
            row = np.array([[f.value for f in d.features]], dtype=np.float64)
            margins = np.asarray(model.booster_.predict(row, raw_score=True), dtype=np.float64)
            margin = float(margins[0, 2])
            assert abs(d.base_value + sum(d.attributions.values()) - margin) < 1e-9
        print("attributions add up to class 2's raw margin for all", len(made), "decisions")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
