"""``mainspring decisions decide|why|replay`` on a small project with real stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mainspring.cli.main import cli
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource
from mainspring.project import Project
from mainspring.records import Decision
from mainspring.serving.decision_requests import DecisionRequests

NAMES = ["income", "age", "debt_ratio"]
END = datetime(2026, 11, 1, tzinfo=UTC)


def run(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-C", str(project), "--as", "alice", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deciding")
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=NAMES)
    y = (x["income"] - x["debt_ratio"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    for trees, path in ((8, "m1.txt"), (30, "m2.txt")):
        model = lgb.LGBMClassifier(n_estimators=trees, num_leaves=7, verbose=-1).fit(x, y)
        model.booster_.save_model(str(root / path))
    frame = pd.DataFrame(rng.normal(size=(20, 3)), columns=NAMES)
    frame.insert(0, "customer_id", np.arange(20, dtype=np.int64))
    frame.insert(1, "event_timestamp", pd.Timestamp(END - timedelta(days=1)))
    frame.to_parquet(root / "profile.parquet")
    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView("profile", customer, [Field(n) for n in NAMES],
                       FileSource("profile.parquet"), ttl=timedelta(days=3650))  # fmt: skip
    with Project.open(root) as project:
        project.features.apply([customer, view, FeatureService("scoring", [view])], actor="a")
        project.features.materialize(end=END)
    for args in (
        ["models", "register", "credit", str(root / "m1.txt")],
        ["models", "register", "credit", str(root / "m2.txt")],
        ["models", "request-approval", "credit/1"],
    ):
        assert run(root, *args)[0] == 0
    CliRunner().invoke(cli, ["-C", str(root), "--as", "bob", "models", "approve", "credit/1",
                             "--reason", "ok"])  # fmt: skip
    assert run(root, "models", "alias", "credit@champion", "1")[0] == 0
    policy = {
        "thresholds": [{"below": 0.5, "decision": "approve"}, {"decision": "decline"}],
        "review": {"low": 0.0, "high": 1.0},
        "explain": {"top_k": 2},
    }
    (root / "policy.json").write_text(json.dumps(policy))
    code, out = run(root, "deployments", "set", "credit-api", "--arm", "main=credit@champion",
                    "--features", "scoring", "--policy", str(root / "policy.json"))  # fmt: skip
    assert code == 0, out
    return root


def test_decide_why_replay_and_review(project_dir: Path) -> None:
    code, out = run(project_dir, "--json", "decisions", "decide", "credit-api",
                    "-e", "customer_id=3", "-c", "channel=web", "--request-id", "r-1")  # fmt: skip
    assert code == 0, out
    answer = json.loads(out)
    decision_id = answer["decision_id"]
    assert answer["decision"] in ("approve", "decline") and answer["review_required"] is True
    code, out = run(project_dir, "decisions", "why", decision_id)
    assert code == 0, out
    assert f"decision {decision_id} of deployment credit-api" in out
    assert "model: credit version 1, arm main" in out and "channel=web" in out
    assert "profile" in out and "features the model saw" in out
    code, out = run(project_dir, "decisions", "replay", decision_id)
    assert code == 0 and "identical, bit for bit" in out, out
    ok = CliRunner().invoke(cli, ["-C", str(project_dir), "--as", "carol", "decisions", "review",
                                  "override", decision_id, "--decision", "refer",
                                  "--reason-code", "R9", "--comment", "docs"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    code, out = run(project_dir, "decisions", "why", decision_id)
    assert "review: override → refer by carol (R9)" in out


def test_replay_against_a_candidate(project_dir: Path) -> None:
    for i in range(10):
        assert (
            run(project_dir, "decisions", "decide", "credit-api", "-e", f"customer_id={i}")[0] == 0
        )
    code, out = run(project_dir, "--json", "decisions", "replay", "--against", "credit/2",
                    "--since", "2000-01-01")  # fmt: skip
    assert code == 0, out
    report = json.loads(out)
    assert report["candidate"] == "credit/2" and report["rescored"] == report["total"] >= 10
    assert report["changed"] == len(report["changes"])
    code, out = run(project_dir, "decisions", "replay")
    assert code != 0 and "--against" in out


def test_bad_requests_and_unknown_decisions(project_dir: Path) -> None:
    code, out = run(project_dir, "decisions", "decide", "credit-api", "-e", "customer_id=abc")
    assert code != 0 and "entity.customer_id must be an integer" in out
    code, out = run(project_dir, "decisions", "decide", "nope", "-e", "customer_id=1")
    assert code != 0 and "deployment" in out
    code, out = run(project_dir, "decisions", "why", "no-such-id")
    assert code != 0 and "no-such-id" in out


def test_requests_through_the_event_log_decide_once(project_dir: Path) -> None:
    from mainspring.cli.context import Cli
    from mainspring.cli.deciding import decision_service
    from mainspring.events import Worker
    from mainspring.records import Event

    state = Cli(project_dir, "alice", None, False)
    try:
        service = decision_service(state)
        log = state.project.events
        events = [
            Event(
                "decision-requests",
                {
                    "deployment": "credit-api",
                    "entity": {"customer_id": i},
                    "request_id": f"async-{i}",
                },
            )
            for i in range(5)
        ] + [Event("decision-requests", {"deployment": "credit-api", "entity": {"x": 1}})]
        log.produce(events)
        processor = DecisionRequests(service)
        Worker(log, processor, max_attempts=1).run(until_idle=True)
        processor.process(events[:5])  # delivered again: each still decided once
        assert processor.decided == 5 and processor.duplicates >= 5
        for event in events[:5]:
            logged = state.project.decisions.get(event.id).decision
            assert isinstance(logged, Decision) and logged.request_id == event.payload["request_id"]
        dead = log.consumer("check", ["decision-requests.dlq"]).poll(10, timeout_s=1)
        assert len(dead) == 1 and "entity.customer_id is missing" in dead[0].headers["dlq-reason"]
        service.plane.close()
    finally:
        state.close()
