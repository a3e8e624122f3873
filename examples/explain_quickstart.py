"""Explain a registered LightGBM credit model: stored global importance, exact attributions,
reason codes.

Registering with a sample of the training data stores the version's global importance (mean
|SHAP| per feature) and a background sample with it; a scikit-learn model gets the same from the
model-agnostic explainer. The decision service then explains every decision: it loads the
champion, builds its explainer once, and for every request turns the row's attributions into the
top reasons.

Run: python examples/explain_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import mainspring as ms

#: What tests/test_examples.py expects in the output.
EXPECT = "attributions add up to the raw score"

FEATURES = ["income", "age", "debt_ratio", "late_payments"]
REASONS = {
    "debt_ratio": {
        "up": {"code": "D01", "text": "Debt is high relative to income"},
        "down": {"code": "D02", "text": "Debt is low relative to income"},
    },
    "late_payments": {"up": {"code": "L01", "text": "Recent late payments"}},
    "income": {"up": {"code": "I01", "text": "Income is low or unknown"}},
}


def main(directory: str) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(2000, 4)), columns=FEATURES)
    x.loc[rng.random(2000) < 0.05, "income"] = np.nan  # income not always known
    risk = x["debt_ratio"] - x["income"].fillna(0) + 0.8 * x["late_payments"]
    y = (risk + rng.normal(scale=0.5, size=2000) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=100, num_leaves=15, verbose=-1).fit(x, y)

    project = ms.Project.open(directory)
    # once per model version: register with a sample of the training data; the registry stores
    # the global importance and a 100-row background sample with the version
    version = ms.register_with_importance(
        project.registry, "credit", model, data=x.head(1000), actor="alice"
    )
    assert version.importance is not None
    stored = project.registry.get(version.ref).importance
    assert stored == version.importance
    print(
        f"global importance stored with {version.ref} ({stored.method}, {stored.rows} rows):",
        {k: round(v, 3) for k, v in stored.values.items()},
    )
    # any other flavor: the model-agnostic explainer, from the same kind of sample
    linear = LogisticRegression().fit(x.fillna(0), y)
    other = ms.register_with_importance(
        project.registry, "credit-linear", linear, data=x.fillna(0).head(1000), actor="alice",
        rows=50,
    )  # fmt: skip
    assert other.importance is not None
    print(
        f"global importance stored with {other.ref} ({other.importance.method}, "
        f"{other.importance.rows} rows):",
        {k: round(v, 3) for k, v in other.importance.values.items()},
    )

    loaded = project.registry.load(version.ref)
    explainer = ms.explainer_for(loaded.model.native, loaded.signature.input_names)

    # once per decision: attributions for one row, then the top reasons that raised the risk
    codes = ms.ReasonCodes.from_mapping(REASONS)
    applicant = np.array([np.nan, 0.3, 1.7, 1.2])
    start = time.perf_counter()
    phi = explainer.explain_row(applicant)
    reasons = codes.top(explainer.feature_names, phi, applicant, k=3, toward="up")
    elapsed = (time.perf_counter() - start) * 1e3
    raw = float(loaded.model.native.predict(applicant[None], raw_score=True)[0])
    for reason in reasons:
        print(f"  {reason.code:>4}  {reason.text:<35} {reason.contribution:+.3f}")
    assert abs(phi.sum() + explainer.expected_value - raw) < 1e-6
    print(
        f"attributions add up to the raw score {raw:.4f} "
        f"(base {explainer.expected_value:.4f}); explained in {elapsed:.3f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
