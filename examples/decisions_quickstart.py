"""Decisions you can trust: a deciding deployment over online features and a LightGBM model, a
decision with its reasons, the same decision replayed bit for bit, a reviewer's override, and the
hash chain verified.

Run: python examples/decisions_quickstart.py [PROJECT_DIR]
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
from mainspring.records import ReviewAction
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.serving.replay import Replayer
from mainspring.serving.request import DecisionRequest

#: What tests/test_examples.py expects in the output.
EXPECT = "replayed: identical, bit for bit"

FEATURES = ["income", "debt_ratio", "late_payments"]
NOW = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = {
    "thresholds": [{"below": 0.3, "decision": "approve"}, {"decision": "decline"}],
    "review": {"low": 0.25, "high": 0.4},
    "explain": {
        "top_k": 2,
        "toward": "up",
        "codes": {
            "debt_ratio": {"up": {"code": "D01", "text": "Debt is high relative to income"}},
            "late_payments": {"up": {"code": "L01", "text": "Recent late payments"}},
            "income": {"up": {"code": "I01", "text": "Income is low"}},
        },
    },
}


def main(directory: Path) -> None:
    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {"income": rng.lognormal(10.5, 0.5, 2000), "debt_ratio": rng.beta(2, 5, 2000),
         "late_payments": rng.poisson(0.5, 2000).astype(float)}
    )  # fmt: skip
    risk = 2.5 * x["debt_ratio"] + 0.8 * x["late_payments"] - 0.5 * (np.log(x["income"]) - 10.5)
    y = (risk + rng.normal(scale=0.5, size=2000) > 1.2).astype(int)
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=15, verbose=-1).fit(x, y)

    customers = x.iloc[:100].copy()
    customers.insert(0, "customer_id", np.arange(100, dtype=np.int64))
    customers.insert(1, "event_timestamp", pd.Timestamp(NOW - timedelta(days=1)))
    customers.to_parquet(directory / "customers.parquet")

    with ms.Project.open(directory) as project:
        customer = ms.Entity("customer", {"customer_id": "int64"})
        fields = [ms.Field(f) for f in FEATURES]
        source = ms.FileSource("customers.parquet")
        profile = ms.FeatureView("profile", customer, fields, source, ttl=timedelta(days=30))
        project.features.apply([customer, profile, ms.FeatureService("credit", [profile])],
                               actor="alice")  # fmt: skip
        project.features.materialize(end=NOW)

        registry = project.registry
        registry.register("credit", model, actor="alice")
        registry.request_approval("credit", 1, actor="alice")
        registry.approve("credit", 1, actor="bob", reason="validated")  # four eyes
        registry.set_alias("credit", "champion", 1, actor="alice")

        deployments = DeploymentStore(project.metadata)
        deployments.put(
            Deployment("credit-decisions", (Arm("main", "credit", "champion"),),
                       features="credit", policy=Policy.from_dict(POLICY)),
            actor="alice",
        )  # fmt: skip
        plane = DataPlane(registry, deployments=deployments)
        plane.start()
        service = DecisionService(plane, project.decisions, project.features)
        made = [service.decide("credit-decisions", DecisionRequest({"customer_id": i}))
                for i in range(20)]  # fmt: skip
        plane.close()

        first = made[0]
        print(f"decision {first.id}: {first.decision} (score {first.score:.3f}, model "
              f"{first.model}/{first.version})")  # fmt: skip
        for reason in first.reasons:
            print(f"  {reason.code} {reason.text}: {reason.feature} = {reason.value:.3g}")

        again = Replayer(registry, deployments).replay(project.decisions.get(first.id).decision)
        print("replayed:", "identical, bit for bit" if again.same else "DIFFERENT")

        flagged = next((d for d in made if d.review_required), first)
        project.decisions.review(
            flagged.id, reviewer="carol", action=ReviewAction.OVERRIDE,
            decision="approve" if flagged.decision == "decline" else "decline",
            reason_code="DOC", comment="documents checked",
        )  # fmt: skip
        print(f"review: {flagged.decision} overridden to {project.decisions.final(flagged.id)}")
        print(f"verify: {project.decisions.verify()}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
