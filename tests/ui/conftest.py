"""A real project for the UI's tests: features, a LightGBM model, a deciding deployment and
decisions made through the decision service (the same flow as ``examples/decisions_quickstart``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mainspring.api.app import create_app
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource
from mainspring.project import Project
from mainspring.records import Decision
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.serving.request import DecisionRequest

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")

NAMES = ["income", "age", "debt_ratio"]
END = datetime(2026, 11, 1, tzinfo=UTC)
DEPLOYMENT = "credit-api"
POLICY = {
    "thresholds": [{"below": 0.5, "decision": "approve"}, {"decision": "decline"}],
    "review": {"low": 0.2, "high": 0.8},
    "fallback": {"decision": "refer", "review": True},
    "explain": {"top_k": 2, "codes": {"debt_ratio": {"up": {"code": "D1", "text": "high debt"}}}},
}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def build(root: Path, decisions: int = 30) -> list[Decision]:
    """Make ``root`` a project with model ``credit`` (v1 champion), deployment ``credit-api``
    and ``decisions`` logged decisions; returns them."""
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=NAMES)
    y = (x["income"] - x["debt_ratio"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(x, y)
    frame = pd.DataFrame(rng.normal(size=(decisions, 3)), columns=NAMES)
    frame.insert(0, "customer_id", np.arange(decisions, dtype=np.int64))
    frame.insert(1, "event_timestamp", pd.Timestamp(END - timedelta(days=1)))
    frame.to_parquet(root / "profile.parquet")
    (root / "mainspring.yaml").write_text(
        "audit:\n  durability: process\n  segments: [channel]\n", encoding="utf-8"
    )
    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView("profile", customer, [Field(n) for n in NAMES],
                       FileSource("profile.parquet"), ttl=timedelta(days=3650))  # fmt: skip
    with Project.open(root) as project:
        project.features.apply([customer, view, FeatureService("scoring", [view])], actor="a")
        project.features.materialize(end=END)
        registry = project.registry
        registry.register("credit", model, actor="alice", description="<b>credit</b> risk")
        registry.request_approval("credit", 1, actor="alice")
        registry.approve("credit", 1, actor="bob", reason="validated")
        registry.set_alias("credit", "champion", 1, actor="alice")
        store = DeploymentStore(project.metadata)
        store.put(
            Deployment(DEPLOYMENT, (Arm("main", "credit", "champion"),), features="scoring",
                       policy=Policy.from_dict(POLICY)),
            actor="alice", reason="first policy",
        )  # fmt: skip
        plane = DataPlane(registry, deployments=store)
        plane.start()
        try:
            service = DecisionService(plane, project.decisions, project.features)
            channels = ("web", "branch")
            return [
                service.decide(DEPLOYMENT, DecisionRequest({"customer_id": i},
                                                           {"channel": channels[i % 2]}))
                for i in range(decisions)
            ]  # fmt: skip
        finally:
            plane.close()


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Decision]]:
    root = tmp_path_factory.mktemp("ui")
    return root, build(root)


@pytest.fixture(scope="module")
def project(made: tuple[Path, list[Decision]]) -> Iterator[Project]:
    with Project.open(made[0]) as project:
        yield project


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client
