"""The decision log over REST: reads, reviews, outcomes, roles, bad input (problem details)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.api.app import create_app
from mainspring.project import Project
from mainspring.records import Decision

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def decision(i: int, **changes: Any) -> Decision:
    fields: dict[str, Any] = {
        "id": f"d-{i}",
        "deployment": "credit",
        "at": T0 + timedelta(minutes=i),
        "decision": "refer",
        "policy": "credit@1",
        "entity": {"customer": f"c-{i}"},
        "model": "credit-risk",
        "version": 2,
        "score": 0.5,
        "review_required": True,
    }
    fields.update(changes)
    return Decision(**fields)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    with Project.open(tmp_path_factory.mktemp("p")) as project:
        for i in range(1, 6):
            project.decisions.append(decision(i, deployment="credit" if i < 5 else "fraud"))
        yield project


@pytest.fixture(scope="module")
def client(project: Project) -> Iterator[TestClient]:
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if field is not None:
        assert body["field"] == field, body
    return body


def test_read_decisions(client: TestClient) -> None:
    listed = client.get("/v1/decisions", params={"deployment": "credit", "limit": 2}).json()
    assert [d["id"] for d in listed] == ["d-4", "d-3"]
    since = (T0 + timedelta(minutes=4)).isoformat()
    assert [d["id"] for d in client.get("/v1/decisions", params={"since": since}).json()] == [
        "d-5",
        "d-4",
    ]
    one = client.get("/v1/decisions/d-1").json()
    assert (one["id"], one["seq"], one["final"], one["reviews"]) == ("d-1", 1, "refer", [])
    verified = client.get("/v1/decisions/verify").json()
    assert verified["ok"] is True and verified["checked"] >= 5
    problem(client.get("/v1/decisions/nope"), 404)
    problem(client.get("/v1/decisions", params={"limit": 0}), 422, "limit")
    problem(client.get("/v1/decisions", params={"since": "yesterday"}), 422, "since")
    naive = problem(client.get("/v1/decisions", params={"since": "2026-01-01T00:00:00"}), 422)
    assert naive["field"] == "since"


def test_review_queue_accept_and_override(client: TestClient) -> None:
    queue = client.get("/v1/reviews", params={"deployment": "credit"}).json()
    assert [d["id"] for d in queue][:2] == ["d-1", "d-2"]
    r = client.post(
        "/v1/reviews/d-1",
        json={"action": "override", "decision": "approve", "reason_code": "income-verified"},
        headers={"X-Mainspring-User": "carol"},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["reviewer"], r.json()["decision"]) == ("carol", "approve")
    accepted = client.post("/v1/reviews/d-2", json={"action": "accept", "reason_code": "ok"})
    assert accepted.status_code == 201 and accepted.json()["decision"] == "refer"
    shown = client.get("/v1/decisions/d-1").json()
    assert shown["final"] == "approve" and shown["decision"] == "refer"
    assert [d["id"] for d in client.get("/v1/reviews").json()] == ["d-3", "d-4", "d-5"]

    problem(client.post("/v1/reviews/d-1", json={"action": "accept", "reason_code": "x"}), 409)
    problem(client.post("/v1/reviews/d-9", json={"action": "accept", "reason_code": "x"}), 404)
    problem(
        client.post("/v1/reviews/d-3", json={"action": "maybe", "reason_code": "x"}), 422, "action"
    )
    problem(
        client.post("/v1/reviews/d-3", json={"action": "accept", "reason_code": ""}),
        422,
        "reason_code",
    )
    problem(
        client.post("/v1/reviews/d-3", json={"action": "override", "reason_code": "x"}),
        422,
        "decision",
    )
    problem(client.post("/v1/reviews/d-3", json={"action": "accept"}), 422, "reason_code")
    problem(
        client.post("/v1/reviews/d-3", content=b"{", headers={"content-type": "application/json"}),
        422,
        "body",
    )


def test_outcomes(client: TestClient) -> None:
    body = {"decision_id": "d-3", "value": {"defaulted": True}, "id": "o-3"}
    first = client.post("/v1/outcomes", json=body)
    assert first.status_code == 201, first.text
    again = client.post("/v1/outcomes", json=body)  # idempotent by id
    assert again.json() == first.json()
    assert client.get("/v1/decisions/d-3").json()["outcomes"] == [first.json()]
    problem(client.post("/v1/outcomes", json={"decision_id": "d-9", "value": 1}), 404)
    problem(client.post("/v1/outcomes", json={"decision_id": "d-3"}), 422, "value")
    naive = {"decision_id": "d-3", "value": 1, "at": "2026-01-01T00:00:00"}
    problem(client.post("/v1/outcomes", json=naive), 422, "at")


def test_roles(tmp_path: Path) -> None:
    with Project.open(tmp_path) as project:
        project.decisions.append(decision(1))
        viewer = project.tokens.create("vic", ["viewer"], actor="admin")
        approver = project.tokens.create("ann", ["approver"], actor="admin")
        with TestClient(create_app(project), raise_server_exceptions=False) as client:
            as_viewer = {"Authorization": f"Bearer {viewer}"}
            assert client.get("/v1/reviews", headers=as_viewer).status_code == 200
            review = {"action": "accept", "reason_code": "ok"}
            problem(client.post("/v1/reviews/d-1", json=review, headers=as_viewer), 403)
            outcome = {"decision_id": "d-1", "value": 1}
            problem(client.post("/v1/outcomes", json=outcome, headers=as_viewer), 403)
            problem(client.post("/v1/reviews/d-1", json=review), 401)
            done = client.post(
                "/v1/reviews/d-1", json=review, headers={"Authorization": f"Bearer {approver}"}
            )
            assert done.status_code == 201 and done.json()["reviewer"] == "ann"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
review_bodies = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["accept", "override", "", "ACCEPT"]) | json_values,
        "decision": st.text(max_size=200) | json_values,
        "reason_code": st.text(max_size=200) | json_values,
        "comment": st.text(max_size=50) | json_values,
        "extra": json_values,
    },
)
outcome_bodies = st.fixed_dictionaries(
    {},
    optional={
        "decision_id": st.sampled_from(["d-4", "d-5", "nope", ""]) | json_values,
        "value": json_values,
        "at": st.sampled_from(["2026-01-01T00:00:00+00:00", "2026-01-01", "soon"]) | json_values,
        "id": st.text(max_size=80) | json_values,
        "source": st.text(max_size=150) | json_values,
    },
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=st.sampled_from(["d-4", "d-5", "d-404", "d%2F4", "x" * 100]),
    review=review_bodies,
    outcome=outcome_bodies,
    query=st.dictionaries(
        st.sampled_from(["deployment", "since", "until", "model", "limit"]),
        st.text(max_size=30),
        max_size=3,
    ),
)
def test_bad_input_is_a_4xx_and_nothing_is_half_written(
    client: TestClient, project: Project, target: str, review: Any, outcome: Any, query: Any
) -> None:
    before = project.decisions.count()
    r = client.post(f"/v1/reviews/{target}", json=review)
    o = client.post("/v1/outcomes", json=outcome)
    q = client.get("/v1/decisions", params=query)
    assert r.status_code in {201, 404, 409, 422}, r.text
    assert o.status_code in {201, 404, 409, 422}, o.text
    assert q.status_code in {200, 422}, q.text
    written = (r.status_code == 201) + (o.status_code == 201)
    assert project.decisions.count() - before <= written
    for response in (r, o, q):
        if response.status_code >= 400:
            assert response.json()["detail"]
    assert project.decisions.verify().ok
