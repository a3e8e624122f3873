"""``mainspring models importance`` and ``models register --data``; the warning of ``deployments
set`` for an arm whose decisions would go unexplained."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import skops.io
from click.testing import CliRunner, Result
from sklearn.linear_model import LogisticRegression

from mainspring.cli.main import cli

FEATURES = ["income", "age", "debt_ratio"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("importance")
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    y = (x["debt_ratio"] - 0.3 * x["income"] > 0).astype(int)
    booster = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(x, y)
    booster.booster_.save_model(str(folder / "model.txt"))
    skops.io.dump(LogisticRegression().fit(x, y), folder / "model.skops")
    x.to_csv(folder / "sample.csv", index=False)
    x.to_parquet(folder / "sample.parquet")
    (folder / "policy.yaml").write_text("thresholds: [{below: 0.5, decision: approve}, "
                                        "{decision: decline}]\n")  # fmt: skip
    return {p.name: p for p in folder.iterdir()}


def run(project: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(
        cli, ["-C", str(project), "--as", "alice", *args], catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result


def test_register_with_data_and_show(tmp_path: Path, files: dict[str, Path]) -> None:
    out = run(
        tmp_path, "models", "register", "credit", str(files["model.txt"]),
        "--data", str(files["sample.csv"]),
    ).output  # fmt: skip
    assert "registered credit/1 (lightgbm" in out
    shown = " ".join(run(tmp_path, "models", "show", "credit/1").output.split())  # unwrapped
    assert "debt_ratio" in shown and "(mean |SHAP|, treeshap, 300 rows)" in shown
    assert "100 rows, sha256:" in shown
    table = run(tmp_path, "models", "importance", "credit/1").output
    assert table.index("debt_ratio") < table.index("age")
    assert "treeshap over 300 rows" in table
    body = json.loads(run(tmp_path, "--json", "models", "show", "credit/1").output)
    assert body["importance"]["features"][0]["name"] == "debt_ratio"
    assert body["importance"]["background"]["rows"] == 100


def test_importance_later_and_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    run(tmp_path, "models", "register", "credit", str(files["model.skops"]))
    missing = run(tmp_path, "models", "importance", "credit/1").output
    assert "has no stored importance" in missing
    assert (
        "models importance credit/1 --data FILE" in run(tmp_path, "models", "show", "credit").output
    )
    body = json.loads(
        run(
            tmp_path, "--json", "models", "importance", "credit/1",
            "--data", str(files["sample.parquet"]), "--rows", "20",
        ).output
    )  # fmt: skip
    assert (body["method"], body["rows"]) == ("exact", 20)
    assert {f["name"] for f in body["features"]} == set(FEATURES)
    history = run(tmp_path, "models", "history", "credit").output
    assert "importance.set" in history
    bad = tmp_path / "bad.csv"
    bad.write_text("income,age\n1,2\n")
    err = run(tmp_path, "models", "importance", "credit/1", "--data", str(bad), code=2).output
    assert err.startswith("error:") and "debt_ratio" in err


def test_deployments_set_warns_about_unexplained_arms(
    tmp_path: Path, files: dict[str, Path]
) -> None:
    run(tmp_path, "models", "register", "credit", str(files["model.skops"]))
    args = ["deployments", "set", "credit-decisions", "--arm", "main=credit/1",
            "--policy", str(files["policy.yaml"])]  # fmt: skip
    out = run(tmp_path, *args).output
    assert "warning: arm main (credit/1, sklearn) has no background sample" in out
    run(tmp_path, "models", "importance", "credit/1", "--data", str(files["sample.csv"]),
        "--rows", "10")  # fmt: skip
    assert "warning" not in run(tmp_path, *args).output


def test_importance_of_a_multiclass_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    names = ["income", "age", "debt_ratio", "tenure"]
    x = pd.DataFrame(rng.normal(size=(400, 4)), columns=names)
    y = np.digitize(x["tenure"] - x["age"], [-0.6, 0.6])  # three classes from two features
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=5, verbose=-1).fit(x, y)
    model.booster_.save_model(str(tmp_path / "species.txt"))
    x.to_csv(tmp_path / "sample.csv", index=False)
    project = tmp_path / "project"
    run(project, "models", "register", "species", str(tmp_path / "species.txt"))
    body = json.loads(
        run(
            project, "--json", "models", "importance", "species/1",
            "--data", str(tmp_path / "sample.csv"),
        ).output
    )  # fmt: skip
    assert (body["method"], body["rows"]) == ("treeshap", 400)
    assert [f["name"] for f in body["features"]][:2] in (["tenure", "age"], ["age", "tenure"])
    table = run(project, "models", "importance", "species/1").output
    assert max(table.index("tenure"), table.index("age")) < table.index("income")
    assert "treeshap over 400 rows" in table
    out = run(
        project, "models", "register", "species", str(tmp_path / "species.txt"),
        "--data", str(tmp_path / "sample.csv"),
    ).output  # fmt: skip
    assert "registered species/2 (lightgbm" in out
