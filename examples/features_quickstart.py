"""Define features, build a point-in-time-correct training set, train and register a model on it,
materialize, and score an applicant with online features, two of them computed on demand from
the amount the applicant asks for (the second from the first: a chain).

Run: python examples/features_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

import mainspring as ms

#: What tests/test_examples.py expects in the output.
EXPECT = "online and offline agree"

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def debt_service(columns: dict[str, Any]) -> dict[str, Any]:
    """A transformation: plain NumPy over the source's columns, the same offline and online."""
    return {"debt_ratio": columns["debt"] / np.maximum(columns["income"], 1.0)}


def affordability(columns: dict[str, Any]) -> dict[str, Any]:
    """An on-demand function: the request's amount against the stored income."""
    return {"amount_to_income": columns["amount"] / np.maximum(columns["income"], 1.0)}


def burden_of(columns: dict[str, Any]) -> dict[str, Any]:
    """A chained on-demand function: reads another on-demand view's output and a stored one."""
    return {"burden": columns["amount_to_income"] / 12.0 + columns["debt_ratio"]}


def main(directory: str) -> None:
    root = Path(directory)
    rng = np.random.default_rng(0)
    customers, days = 300, 60
    history = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(customers), days // 10),
            "event_timestamp": np.tile(
                [T0 + timedelta(days=d) for d in range(0, days, 10)], customers
            ),
            "income": rng.lognormal(10, 0.4, customers * days // 10),
            "debt": rng.lognormal(9, 0.6, customers * days // 10),
        }
    )
    history.to_parquet(root / "history.parquet")

    customer = ms.Entity("customer", join_keys={"customer_id": "int64"})
    profile = ms.FeatureView(
        "profile",
        entity=customer,
        fields=[ms.Field("income"), ms.Field("debt")],
        source=ms.FileSource("history.parquet"),
        ttl=timedelta(days=30),
    )
    ratios = ms.FeatureView(
        "ratios",
        entity=customer,
        fields=[ms.Field("debt_ratio")],
        source=ms.FileSource("history.parquet"),
        ttl=timedelta(days=30),
        transformation=debt_service,
    )
    loan = ms.OnDemandFeatureView(
        "loan",
        context=[ms.Field("amount")],
        fields=[ms.Field("amount_to_income")],
        function=affordability,
        inputs=["profile:income"],
    )
    burden = ms.OnDemandFeatureView(
        "burden",
        context=[],
        fields=[ms.Field("burden")],
        function=burden_of,
        inputs=[loan, "ratios:debt_ratio"],
    )
    service = ms.FeatureService("credit", features=[profile, ratios, loan, burden])

    with ms.Project.open(root) as project:
        features = project.features
        for r in features.apply([customer, profile, ratios, loan, burden, service], actor="alice"):
            print(f"applied {r.kind} {r.name} v{r.version}")

        # applications at random times, with the amount asked for (the request context);
        # features as they were at those times
        events = pd.DataFrame(
            {
                "customer_id": rng.integers(0, customers, 2000),
                "event_timestamp": [
                    T0 + timedelta(days=float(d)) for d in rng.uniform(0, days + 40, 2000)
                ],
                "amount": rng.uniform(1_000, 40_000, 2000),
            }
        )
        training = features.get_historical_features(events, service, progress=True)
        frame = training.data
        print(f"training set: {len(frame)} rows, missing features: {training.missing}")
        known = frame[frame["profile__found"] & frame["ratios__found"]]
        names = ["income", "debt", "debt_ratio", "amount_to_income", "burden"]
        x = known[names]
        y = (known["debt_ratio"] + rng.normal(0, 0.2, len(known)) > 0.4).astype(int)
        model = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)
        version = project.registry.register(
            "credit",
            model,
            actor="alice",
            training_data=training.training_data,
            lineage=ms.Lineage(feature_views=training.feature_views),
        )
        print(f"registered credit/{version.version} trained on {training.feature_views}")

        end = T0 + timedelta(days=days)
        runs = features.materialize(end=end)
        print("materialized", {r.view: r.rows for r in runs})
        online = features.get_online_features(
            "credit", [{"customer_id": 7}], context={"amount": 12_000.0}, now=end
        )
        row = online.rows()[0]
        score = model.predict_proba(pd.DataFrame([row])[names])[0, 1]
        print(f"customer 7 online: {row} → P(risky) = {score:.3f}")
        unknown = features.get_online_features(
            "credit", [{"customer_id": 10_000}], context={"amount": 5_000.0}, now=end
        )
        print(f"an unknown customer: {unknown.rows()[0]}, found {unknown.found}")

        offline = features.get_historical_features(
            pd.DataFrame({"customer_id": [7], "event_timestamp": [end], "amount": [12_000.0]}),
            service,
        ).data
        same = all(offline[name][0] == row[name] for name in names)
        print("online and offline agree" if same else "online and offline DIFFER")

        try:
            features.apply(
                [ms.FeatureView("profile", customer, [ms.Field("income")], profile.source)],
                actor="bob",
            )
        except ms.GovernanceError as exc:
            print(f"refused: {exc}")
        print(features.verify())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mainspring-"))
