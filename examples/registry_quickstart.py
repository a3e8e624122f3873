"""Register a model, approve it with four eyes, promote it, load it back and predict.

Run: python examples/registry_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile

import lightgbm as lgb
import numpy as np
import pandas as pd

import mainspring as ms

#: What tests/test_examples.py looks for in the output.
EXPECT = "chain intact"


def main(directory: str) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["income", "age", "debt_ratio"])
    y = (x["debt_ratio"] - x["income"] + rng.normal(scale=0.3, size=1000) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=30, verbose=-1).fit(x, y)

    with ms.Project.open(directory) as project:
        registry = project.registry
        version = registry.register("credit", model, actor="alice", metrics={"auc": 0.9})
        registry.request_approval("credit", version.version, actor="alice", reason="ready")
        registry.approve("credit", version.version, actor="bob", reason="reviewed")
        registry.set_alias("credit", ms.CHAMPION, version.version, actor="alice")

        champion = registry.load("credit@champion")
        print(f"{champion.version.ref}: scores {np.round(champion.predict(x.head(3)), 3)}")
        for entry in registry.history("credit"):
            print(f"  #{entry.seq} {entry.actor:<6} {entry.action:<18} {entry.subject}")
        print(registry.verify())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mainspring-"))
