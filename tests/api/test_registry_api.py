"""The control-plane REST API over the registry: flows, auth and problem details."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.api.app import create_app
from mainspring.project import Project


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=["income", "age", "debt_ratio"])
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1)
    model.fit(x, (x["income"] > 0).astype(int))
    return model.booster_.model_to_string().encode()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with Project.open(tmp_path) as project:
        yield project


@pytest.fixture
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client


def register(client: TestClient, model_file: bytes, user: str = "alice", **form: str) -> dict:
    response = client.post(
        "/v1/models/credit/versions",
        files={"file": ("m.txt", model_file)},
        data=form,
        headers={"X-Mainspring-User": user},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: object, status: int, *needles: str) -> dict:
    r = response  # httpx.Response
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = dict(r.json())  # type: ignore[attr-defined]
    assert body["status"] == status and body["type"].startswith("urn:mainspring:problem:")
    for needle in needles:
        assert needle in body["detail"], body
    return body


def test_full_flow(client: TestClient, model_file: bytes) -> None:
    v = register(client, model_file, metrics='{"auc": 0.8}', tags='{"team": "risk"}')
    assert v["version"] == 1 and v["metrics"] == {"auc": 0.8} and v["flavor"] == "lightgbm"
    bob = {"X-Mainspring-User": "bob"}
    assert (
        client.post(
            "/v1/models/credit/versions/1/approval-request",
            json={},
            headers={"X-Mainspring-User": "alice"},
        ).status_code
        == 200
    )
    assert_problem(
        client.post(
            "/v1/models/credit/versions/1/approve",
            json={"reason": "ok"},
            headers={"X-Mainspring-User": "alice"},
        ),
        403,
        "four eyes",
    )
    assert (
        client.post(
            "/v1/models/credit/versions/1/approve", json={"reason": "ok"}, headers=bob
        ).json()["approval"]
        == "approved"
    )
    r = client.put("/v1/models/credit/aliases/champion", json={"version": 1}, headers=bob)
    assert r.status_code == 200 and r.json()["aliases"] == ["champion"]
    assert client.get("/v1/models/credit/aliases/champion").json()["version"] == 1
    assert [m["name"] for m in client.get("/v1/models").json()] == ["credit"]
    history = client.get("/v1/models/credit/history").json()
    assert [e["action"] for e in history] == [
        "register",
        "approval.request",
        "approval.approve",
        "alias.set",
    ]
    assert client.get("/v1/registry/verify").json()["ok"] is True


def test_openapi_is_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/models/{name}/versions" in paths and "/v1/tokens" in paths


def test_errors_are_problem_details(client: TestClient, model_file: bytes) -> None:
    assert_problem(client.get("/v1/models/nope/versions"), 404, "model 'nope'")
    register(client, model_file)
    assert_problem(client.get("/v1/models/credit/aliases/gold"), 404, "credit@gold")
    assert_problem(client.get("/v1/models/credit/versions/abc"), 422, "version")
    assert_problem(
        client.put("/v1/models/credit/aliases/champion", json={"version": 1}), 409, "not approved"
    )
    body = assert_problem(
        client.put(
            "/v1/models/credit/aliases/champion",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        422,
        "JSON",
    )
    assert body["field"] == "body"
    body = assert_problem(
        client.put("/v1/models/credit/aliases/x", json={"version": "two"}), 422, "version"
    )
    assert body["field"] == "version"
    assert_problem(
        client.put("/v1/models/credit/aliases/x", json={"version": 1, "extra": 1}), 422, "extra"
    )
    assert_problem(
        client.post("/v1/models/credit/versions", files={"file": ("m.bin", b"garbage bytes")}),
        422,
        "m.bin",
    )
    assert_problem(
        client.post(
            "/v1/models/credit/versions",
            files={"file": ("m.txt", model_file)},
            data={"signature": "{oops"},
        ),
        422,
        "signature",
    )
    assert_problem(
        client.post(
            "/v1/models/credit/versions",
            files={"file": ("m.txt", model_file)},
            data={"metrics": '{"auc": "high"}'},
        ),
        422,
        "metrics.auc",
    )
    assert_problem(client.post("/v1/models/credit/versions"), 422, "file")
    assert_problem(
        client.post("/v1/models/credit/aliases/champion/rollback", json={}), 422, "reason"
    )
    # nothing above changed the registry
    assert len(client.get("/v1/models/credit/versions").json()) == 1
    assert len(client.get("/v1/registry/history").json()) == 1


def test_oversized_body_is_refused(project: Project) -> None:
    app = create_app(project)
    with TestClient(app) as client:
        too_big = b"x" * (project.settings.api.max_upload_mb * 1024 * 1024 + 1)
        assert_problem(
            client.post("/v1/models/credit/versions", files={"file": ("m", too_big)}),
            413,
            "over the limit",
        )


def test_tokens_turn_auth_on(client: TestClient, project: Project, model_file: bytes) -> None:
    # before any token exists, auth is off
    assert client.get("/v1/whoami").json()["name"] == "anonymous"
    admin = client.post("/v1/tokens", json={"name": "root", "roles": ["admin"]}).json()["token"]
    tokens = {}
    for name, role in [("alice", "operator"), ("bob", "approver"), ("vera", "viewer")]:
        r = client.post(
            "/v1/tokens",
            json={"name": name, "roles": [role]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 201
        tokens[name] = {"Authorization": f"Bearer {r.json()['token']}"}
    assert_problem(client.get("/v1/models"), 401, "token")
    assert_problem(
        client.get("/v1/models", headers={"Authorization": "Bearer nope"}), 401, "not valid"
    )
    # a claimed name no longer counts once auth is on
    assert_problem(client.get("/v1/models", headers={"X-Mainspring-User": "bob"}), 401)
    assert client.get("/v1/models", headers=tokens["vera"]).status_code == 200
    assert_problem(
        client.post(
            "/v1/models/credit/versions",
            files={"file": ("m.txt", model_file)},
            headers=tokens["vera"],
        ),
        403,
        "operator",
    )
    r = client.post(
        "/v1/models/credit/versions", files={"file": ("m.txt", model_file)}, headers=tokens["alice"]
    )
    assert r.status_code == 201 and r.json()["registered_by"] == "alice"
    client.post("/v1/models/credit/versions/1/approval-request", json={}, headers=tokens["alice"])
    assert_problem(
        client.post(
            "/v1/models/credit/versions/1/approve", json={"reason": "ok"}, headers=tokens["alice"]
        ),
        403,
        "approver",
    )
    r = client.post(
        "/v1/models/credit/versions/1/approve", json={"reason": "ok"}, headers=tokens["bob"]
    )
    assert r.status_code == 200
    assert_problem(
        client.post("/v1/tokens", json={"name": "x", "roles": ["admin"]}, headers=tokens["bob"]),
        403,
        "admin",
    )
    assert_problem(
        client.post(
            "/v1/tokens",
            json={"name": "x", "roles": ["wizard"]},
            headers={"Authorization": f"Bearer {admin}"},
        ),
        422,
        "roles",
    )
    client.delete("/v1/tokens/vera", headers={"Authorization": f"Bearer {admin}"})
    assert_problem(client.get("/v1/models", headers=tokens["vera"]), 401, "revoked")
    actions = [e.action for e in project.tokens.log.entries()]
    assert actions == ["token.create"] * 4 + ["token.revoke"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values,
    path=st.sampled_from(
        [
            "/v1/models/credit/aliases/champion",
            "/v1/models/credit/versions/1/approve",
            "/v1/models/credit/aliases/champion/rollback",
            "/v1/tokens",
        ]
    ),
)
def test_any_json_body_gets_a_4xx_not_a_5xx(client: TestClient, body: object, path: str) -> None:
    method = client.put if path.endswith("champion") else client.post
    response = method(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500 or response.status_code in {200, 201}, response.text
