"""``/v1/deployments``: create, read, change weights at run time, delete; problem details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mainspring.api.app import create_app
from mainspring.project import Project

USER = {"X-Mainspring-User": "alice"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(100, 2)), columns=["a", "b"])
    model = lgb.LGBMClassifier(n_estimators=2, num_leaves=4, verbose=-1).fit(x, x["a"] > 0)
    with Project.open(tmp_path) as project:
        project.registry.register("credit", model, actor="alice")
        project.registry.register("credit", model, actor="alice")
        project.registry.set_alias("credit", "challenger", 2, actor="alice")
        with TestClient(create_app(project), raise_server_exceptions=False) as client:
            yield client


ARMS = [
    {"name": "main", "model": "credit", "version": "1"},
    {"name": "next", "model": "credit", "version": "challenger", "role": "canary", "weight": 5},
]


def test_deployment_lifecycle(client: TestClient) -> None:
    response = client.put(
        "/v1/deployments/credit-api", json={"arms": ARMS, "reason": "go"}, headers=USER
    )
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == 1 and response.json()["updated_by"] == "alice"
    response = client.patch(
        "/v1/deployments/credit-api/weights",
        json={"weights": {"next": 50}, "reason": "looks good"},
        headers=USER,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["revision"] == 2 and body["arms"][1]["weight"] == 50
    assert [d["name"] for d in client.get("/v1/deployments").json()] == ["credit-api"]
    assert client.get("/v1/deployments/credit-api").json()["revision"] == 2
    project: Project = client.app.state.project  # type: ignore[attr-defined]
    actions = [e.action for e in project.registry.history()]
    assert actions[-2:] == ["deployment.set", "deployment.weights"]
    assert client.delete("/v1/deployments/credit-api", headers=USER).status_code == 204
    assert client.get("/v1/deployments/credit-api").status_code == 404


@pytest.mark.parametrize(
    ("arms", "status", "needle"),
    [
        ([{**ARMS[0], "version": "9"}], 404, "credit/9"),
        ([{**ARMS[0], "model": "nope"}], 404, "nope"),
        ([ARMS[1]], 422, "exactly one champion"),
        ([ARMS[0], {**ARMS[1], "role": "boss"}], 422, "role 'boss'"),
    ],
)
def test_bad_deployments_are_problems(
    client: TestClient, arms: list, status: int, needle: str
) -> None:
    response = client.put("/v1/deployments/d", json={"arms": arms}, headers=USER)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]


def test_unknown_arm_weight(client: TestClient) -> None:
    client.put("/v1/deployments/d", json={"arms": ARMS}, headers=USER)
    response = client.patch("/v1/deployments/d/weights", json={"weights": {"x": 1}}, headers=USER)
    assert response.status_code == 422 and "unknown arm 'x'" in response.json()["detail"]


def test_a_policy_output_the_model_lacks_is_a_problem(client: TestClient) -> None:
    policy = {"thresholds": [{"decision": "approve"}], "output": "probability_1"}
    response = client.put("/v1/deployments/d", json={"arms": ARMS, "policy": policy}, headers=USER)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "policy.output"
    assert "'probability_1'" in body["detail"] and "its outputs are probability" in body["detail"]
    assert client.get("/v1/deployments/d").status_code == 404  # nothing stored
    fine = {**policy, "output": "probability"}
    response = client.put("/v1/deployments/d", json={"arms": ARMS, "policy": fine}, headers=USER)
    assert response.status_code == 200, response.text
