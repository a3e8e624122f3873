"""``mainspring deployments``: arms, a policy from a file, and field-level errors."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from click.testing import CliRunner

from mainspring.cli.main import cli


def run(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-C", str(project), "--as", "alice", *args])
    return result.exit_code, result.output


def test_set_list_show_with_a_policy(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    model = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, (x["a"] > 0).astype(int))
    model.booster_.save_model(str(tmp_path / "model.txt"))
    assert run(tmp_path, "models", "register", "m", str(tmp_path / "model.txt"))[0] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text("thresholds:\n  - {below: 0.5, decision: approve}\n  - {decision: decline}\n")
    code, out = run(tmp_path, "deployments", "set", "api", "--arm", "main=m/1",
                    "--arm", "shadow=m/1:shadow:50", "--policy", str(policy))  # fmt: skip
    assert code == 0, out
    assert "revision 1" in out and "decides" in out
    code, out = run(tmp_path, "--json", "deployments", "show", "api")
    shown = json.loads(out)
    assert shown["policy"]["thresholds"][1] == {"decision": "decline"}
    assert [a["role"] for a in shown["arms"]] == ["champion", "shadow"]
    code, out = run(tmp_path, "deployments", "list")
    assert out.startswith("api  r1  main:champion, shadow:shadow  decides")


def test_bad_arms_and_policies_say_what_is_wrong(tmp_path: Path) -> None:
    code, out = run(tmp_path, "deployments", "set", "api", "--arm", "main")
    assert code != 0 and "NAME=MODEL@ALIAS" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"thresholds": [{"below": "high", "decision": "x"}, {"decision": "y"}]}')
    code, out = run(tmp_path, "deployments", "set", "api", "--arm", "main=m/1", "--policy",
                    str(bad))  # fmt: skip
    assert code != 0 and "policy.thresholds[0].below" in out


def test_a_policy_output_the_model_lacks_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    y = np.digitize(x["a"], [-0.5, 0.5])  # three classes
    lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, y).booster_.save_model(
        str(tmp_path / "model.txt")
    )
    assert run(tmp_path, "models", "register", "m", str(tmp_path / "model.txt"))[0] == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text("thresholds: [{decision: approve}]\noutput: probability_3\n")
    code, out = run(tmp_path, "deployments", "set", "api", "--arm", "main=m/1",
                    "--policy", str(policy))  # fmt: skip
    assert code == 2, out
    assert "policy.output is 'probability_3'" in out and "probability_2" in out
    assert run(tmp_path, "deployments", "show", "api")[0] != 0  # nothing stored
    policy.write_text("thresholds: [{decision: approve}]\noutput: probability_2\n")
    code, out = run(tmp_path, "deployments", "set", "api", "--arm", "main=m/1",
                    "--policy", str(policy))  # fmt: skip
    assert code == 0, out
