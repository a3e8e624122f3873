"""``POST /v1/decide/{deployment}`` over the REST app, in process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mainspring.serving.decisions import DecisionService
from mainspring.serving.oip.rest import create_app

URL = "/v1/decide/credit-decisions"


@pytest.fixture
def client(service: DecisionService) -> TestClient:
    return TestClient(create_app(service.plane, start=False))


def test_a_decision_over_http(client: TestClient, service: DecisionService) -> None:
    response = client.post(URL, json={"entity": {"customer_id": 4}, "request_id": "abc"})
    assert response.status_code == 200, response.text
    body = response.json()
    logged = service.log.decisions[-1]
    assert body["decision_id"] == logged.id and body["decision"] == logged.decision
    assert body["score"] == logged.score and body["request_id"] == "abc"
    assert (body["model"], body["version"], body["arm"]) == ("credit", 1, "main")
    assert body["feature_views"] == {"profile": 1}
    assert set(body) >= {"confidence", "reasons", "review_required", "policy"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 422, "body"),
        (b'{"entity": {"customer_id": "x"}}', 422, "entity.customer_id"),
        (b'{"entity": {"customer_id": 1}, "context": {"n": {}}}', 422, "context.n"),
        (b'{"entity": {"customer_id": 123456}}', 404, None),
        (b"[1, 2]", 422, "body"),
    ],
)
def test_bad_input_is_a_problem_document_naming_the_field(
    client: TestClient, service: DecisionService, body: bytes, status: int, field: str | None
) -> None:
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["detail"]
    assert problem.get("field") == field
    assert service.log.decisions == []


def test_unknown_deployment_and_wrong_content_type(client: TestClient) -> None:
    assert client.post("/v1/decide/nope", json={"entity": {}}).status_code == 404
    wrong = client.post(URL, content=b"x", headers={"content-type": "text/plain"})
    assert wrong.status_code == 415 and wrong.json()["field"] == "content-type"


def test_decisions_are_answered_before_routing_with_the_routers_answers_elsewhere(
    client: TestClient, service: DecisionService, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.get(URL).status_code == 405  # other methods: Starlette's router
    assert client.post(URL + "/more", json={"entity": {}}).status_code == 404
    assert client.post("/v1/decide/", json={"entity": {}}).status_code == 404

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug, not the request's fault")

    service.make = broken  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="mainspring.serving"):
        response = client.post(URL, json={"entity": {"customer_id": 4}})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Internal Server Error"
    assert "Traceback" not in response.text and "a bug" not in response.text
    assert "a bug, not the request's fault" in caplog.text  # the log says why


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
BODIES = JSON | st.fixed_dictionaries(
    {"entity": st.dictionaries(st.sampled_from(["customer_id", "x"]), JSON, max_size=2)},
    optional={"context": st.dictionaries(st.text(max_size=8), JSON, max_size=3), "arm": JSON},
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(BODIES)
def test_no_body_gets_a_server_error(client: TestClient, body: Any) -> None:

    response = client.post(
        URL, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 404, 422), response.text
    if response.status_code != 200:
        assert response.json()["detail"]


def test_the_inference_protocol_on_a_deciding_deployment_carries_the_decision(
    client: TestClient, service: DecisionService
) -> None:
    body = {
        "id": "req-9",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [0.2, -1.0, 0.5]}],
        "parameters": {"segment": "retail"},
    }
    response = client.post("/v2/models/credit-decisions/infer", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    (logged,) = service.log.decisions
    assert answer["id"] == "req-9" == logged.request_id
    parameters = answer["parameters"]
    assert parameters["decision_id"] == logged.id and parameters["decision"] == logged.decision
    assert parameters["review_required"] is logged.review_required
    assert answer["outputs"][0]["data"] == [logged.score]
    assert [f.value for f in logged.features] == [0.2, -1.0, 0.5]
    assert logged.context == {"segment": "retail"} and logged.entity == {}
    plain = client.post("/v2/models/credit/infer", json=body)  # the model itself: no decision
    assert "decision_id" not in plain.json().get("parameters", {})
    assert len(service.log.decisions) == 1


def test_several_rows_make_several_logged_decisions(
    client: TestClient, service: DecisionService
) -> None:
    rows = [0.2, -1.0, 0.5, 1.5, 0.3, -0.2]
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 3], "data": rows}]}
    response = client.post("/v2/models/credit-decisions/infer", json=body)
    assert response.status_code == 200, response.text
    first, second = service.log.decisions
    parameters = response.json()["parameters"]
    assert parameters["decision_id"] == f"{first.id},{second.id}"
    assert parameters["decision"] == f"{first.decision},{second.decision}"
    assert [f.value for f in second.features] == [1.5, 0.3, -0.2]
