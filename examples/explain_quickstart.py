"""Explain a registered LightGBM credit model: exact attributions, reason codes, global importance.

The decision service does this once per decision: it loads the champion, builds its explainer
once, and for every request turns the row's attributions into the top reasons.

Run: python examples/explain_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

import mainspring as ms
from mainspring.explain import global_importance

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
    version = project.registry.register("credit", model, actor="alice")
    loaded = project.registry.load(version.ref)

    # once per model version: build (and compile) the explainer, store global importance
    explainer = ms.explainer_for(loaded.model.native, loaded.signature.input_names)
    importance = global_importance(explainer, x.to_numpy()[:500])
    print("global importance (mean |SHAP|):", {k: round(v, 3) for k, v in importance.items()})

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
