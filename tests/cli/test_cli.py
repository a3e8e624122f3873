"""The ``mainspring`` CLI: registry commands, identities, one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from mainspring.cli.main import cli


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 2)), columns=["income", "age"])
    model = lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1)
    model.fit(x, (x["income"] > 0).astype(int))
    path = tmp_path_factory.mktemp("m") / "model.txt"
    model.booster_.save_model(str(path))
    return path


def run(
    project: Path, *args: str, user: str = "alice", env: dict | None = None, code: int = 0
) -> Result:
    result = CliRunner().invoke(
        cli,
        ["-C", str(project), "--as", user, *args] if user else ["-C", str(project), *args],
        env=env,
        catch_exceptions=False,
    )
    assert result.exit_code == code, result.output
    return result


def test_registry_workflow(tmp_path: Path, model_file: Path) -> None:
    run(tmp_path, "init", str(tmp_path), user="")
    assert (tmp_path / "mainspring.yaml").exists()
    out = run(
        tmp_path,
        "models",
        "register",
        "credit",
        str(model_file),
        "--metric",
        "auc=0.8",
        "--tag",
        "team=risk",
    ).output
    assert "registered credit/1 (lightgbm" in out
    run(tmp_path, "models", "request-approval", "credit/1", "--reason", "ready")
    err = run(tmp_path, "models", "approve", "credit/1", "--reason", "ok", code=4).output
    assert err.startswith("error: alice registered credit/1") and "four eyes" in err
    assert err.count("\n") == 1  # one line, no traceback
    run(tmp_path, "models", "approve", "credit/1", "--reason", "ok", user="bob")
    run(tmp_path, "models", "alias", "credit@champion", "1")
    shown = json.loads(run(tmp_path, "--json", "models", "show", "credit@champion").output)
    assert shown["version"] == 1 and shown["approval"] == "approved"
    assert shown["metrics"] == {"auc": 0.8} and shown["tags"] == {"team": "risk"}
    run(tmp_path, "models", "register", "credit", str(model_file))
    run(tmp_path, "models", "request-approval", "credit/2")
    run(tmp_path, "models", "approve", "credit/2", "--reason", "ok", user="bob")
    run(tmp_path, "models", "alias", "credit@champion", "2")
    out = run(tmp_path, "models", "rollback", "credit@champion", "--reason", "alerts").output
    assert "rolled back to version 1" in out
    scores = json.loads(
        run(
            tmp_path,
            "--json",
            "models",
            "predict",
            "credit@champion",
            '[{"income": 1.0, "age": 0.1}, {"income": -1.0, "age": 0}]',
        ).output
    )
    assert len(scores["scores"]) == 2 and scores["scores"][0] > scores["scores"][1]
    history = json.loads(run(tmp_path, "--json", "models", "history", "credit").output)
    assert [e["action"] for e in history][-1] == "alias.rollback"
    assert "chain intact" in run(tmp_path, "models", "verify").output
    listed = json.loads(run(tmp_path, "--json", "models", "list").output)
    assert listed[0]["aliases"] == {"champion": 1}
    assert "credit" in run(tmp_path, "models", "list").output


def test_errors_are_one_line_with_exit_codes(tmp_path: Path, model_file: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"not a model at all")
    out = run(tmp_path, "models", "register", "credit", str(bad), code=2).output
    assert out.startswith("error: ") and "model.bin" in out and out.count("\n") == 1
    assert run(tmp_path, "models", "show", "credit", code=3).output == (
        "error: model 'credit' does not exist\n"
    )
    run(tmp_path, "models", "register", "credit", str(model_file))
    assert "not approved" in run(tmp_path, "models", "alias", "credit@champion", "1", code=5).output
    assert (
        "NAME/VERSION"
        in run(tmp_path, "models", "approve", "credit", "--reason", "x", code=2).output
    )
    assert (
        "--metric"
        in run(
            tmp_path, "models", "register", "credit", str(model_file), "--metric", "auc", code=2
        ).output
    )


def test_tokens_decide_who_acts(tmp_path: Path, model_file: Path) -> None:
    admin = run(tmp_path, "tokens", "create", "root", "--role", "admin").output.strip()
    assert admin.startswith("ms_")
    assert "MAINSPRING_TOKEN" in run(tmp_path, "models", "list", user="", code=4).output
    assert "--as" in run(tmp_path, "models", "list", code=4).output
    env = {"MAINSPRING_TOKEN": admin}
    op = run(tmp_path, "tokens", "create", "olga", "--role", "operator", user="", env=env)
    olga = {"MAINSPRING_TOKEN": op.output.strip()}
    out = run(
        tmp_path, "--json", "models", "register", "credit", str(model_file), user="", env=olga
    ).output
    assert json.loads(out)["registered_by"] == "olga"
    assert (
        "approver"
        in run(
            tmp_path, "models", "approve", "credit/1", "--reason", "x", user="", env=olga, code=4
        ).output
    )
    assert "olga" in run(tmp_path, "tokens", "list", user="", env=env).output


def test_console_script_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mainspring")
    result = subprocess.run(
        [str(exe), "-C", str(tmp_path), "models", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "no models registered yet" in result.stdout
