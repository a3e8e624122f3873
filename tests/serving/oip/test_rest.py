"""The OIP REST adapter in-process: every endpoint, the binary extension, and 4xx for bad input."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.serving.oip.rest import create_app

FEATURES = ["income", "age", "debt_ratio"]
ROWS = [[0.5, -1.0, 0.2], [-1.5, 0.3, 1.1]]


def body(rows: list[list[float]] = ROWS, **extra: object) -> dict:
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [len(rows)], "data": [r[i] for r in rows]}
        for i, n in enumerate(FEATURES)
    ]
    return {"inputs": inputs, **extra}


@pytest.fixture
def client(plane: DataPlane) -> Iterator[TestClient]:
    with TestClient(create_app(plane, max_body_bytes=4096)) as client:
        yield client


def error(response: object, status: int, *needles: str) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    message = response.json()["error"]  # type: ignore[attr-defined]
    assert set(response.json()) == {"error"}  # type: ignore[attr-defined]
    for needle in needles:
        assert needle in message, message
    return str(message)


def test_health_and_server_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    meta = client.get("/v2").json()
    assert meta["name"] == "mainspring"
    assert {"binary_tensor_data", "model_repository"} <= set(meta["extensions"])


def test_not_ready_until_started(registry: Registry) -> None:
    with TestClient(create_app(DataPlane(registry), start=False)) as client:
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/v2/health/live").status_code == 200


def test_model_metadata_and_ready(client: TestClient) -> None:
    meta = client.get("/v2/models/credit").json()
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "lightgbm"
    assert meta["inputs"][0] == {"name": "income", "datatype": "FP64", "shape": [-1]}
    assert client.get("/v2/models/credit/versions/2").json()["parameters"]["version"] == "2"
    assert (
        client.get("/v2/models/credit/versions/challenger").json()["parameters"]["version"] == "2"
    )
    assert client.get("/v2/models/credit%40challenger").json()["parameters"]["version"] == "2"
    assert client.get("/v2/models/credit/ready").json() == {"name": "credit", "ready": True}
    assert client.get("/v2/models/credit/versions/1/ready").status_code == 200


def test_infer_echoes_id_and_parameters(client: TestClient, registry: Registry) -> None:
    response = client.post("/v2/models/credit/infer", json=body(id="abc", parameters={"k": "v"}))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "abc" and answer["model_name"] == "credit"
    assert answer["model_version"] == "1" and answer["parameters"] == {"arm": "default"}
    (out,) = answer["outputs"]
    assert out["name"] == "probability" and out["datatype"] == "FP64" and out["shape"] == [2]
    np.testing.assert_allclose(out["data"], registry.load("credit/1").predict(np.array(ROWS)))


def test_infer_by_version_alias_and_matrix(client: TestClient) -> None:
    matrix = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": ROWS}]}
    for path, version in [
        ("/v2/models/credit/versions/2/infer", "2"),
        ("/v2/models/credit/versions/champion/infer", "1"),
        ("/v2/models/credit@challenger/infer", "2"),
    ]:
        response = client.post(path, json=matrix)
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == version


def test_binary_tensor_data_in_and_out(client: TestClient) -> None:
    columns = np.array(ROWS).T
    head = {
        "inputs": [
            {"name": n, "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}}
            for n in FEATURES
        ],
        "outputs": [{"name": "probability", "parameters": {"binary_data": True}}],
    }
    header = orjson.dumps(head)
    payload = header + b"".join(c.astype("<f4").tobytes() for c in columns)
    response = client.post(
        "/v2/models/credit/infer",
        content=payload,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    answer = orjson.loads(response.content[:length])
    (out,) = answer["outputs"]
    assert out["parameters"] == {"binary_data_size": 16} and "data" not in out
    values = np.frombuffer(response.content[length:], dtype="<f8")
    json_answer = client.post("/v2/models/credit/infer", json=body()).json()
    np.testing.assert_allclose(values, json_answer["outputs"][0]["data"], rtol=1e-5)


def test_bytes_tensor_in_binary_form_is_decoded_then_refused_by_a_numeric_model(
    client: TestClient,
) -> None:
    raw = struct.pack("<I", 2) + b"ab"
    head = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1, 1],
                     "parameters": {"binary_data_size": len(raw)}}]}
    )  # fmt: skip
    response = client.post(
        "/v2/models/credit/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    error(response, 400, "'x'", "shape [1, 1]")


def test_nan_through_binary_data_where_forbidden(client: TestClient) -> None:
    head = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3],
                     "parameters": {"binary_data_size": 24}}]}
    )  # fmt: skip
    raw = np.array([np.inf, 0.0, 1.0], dtype="<f8").tobytes()
    response = client.post(
        "/v2/models/credit/infer",
        content=head + raw,
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    error(response, 400, "'income' holds inf in row 0", "NaN (missing) but not infinity")


@pytest.mark.parametrize(
    ("path", "payload", "headers", "status", "needles"),
    [
        ("/v2/models/nope/infer", body(), {}, 404, ["model 'nope' does not exist"]),
        ("/v2/models/credit/versions/9/infer", body(), {}, 404, ["credit/9", "served versions"]),
        ("/v2/models/credit/infer", b"{not json", {}, 400, ["not valid JSON"]),
        ("/v2/models/credit/infer", b"[1, 2]", {}, 400, ["JSON object"]),
        ("/v2/models/credit/infer", b"{}", {}, 400, ["'inputs'"]),
        ("/v2/models/credit/infer", orjson.dumps(body()), {"Content-Type": "text/plain"}, 415,
         ["content type 'text/plain'"]),
        ("/v2/models/credit/infer", b"x" * 5000, {}, 413, ["over the limit of 4096 bytes"]),
        ("/v2/models/credit/infer",
         {"inputs": [{"name": "income", "datatype": "FP64", "shape": [3], "data": [1, 2]}]},
         {}, 400, ["'income'", "shape [3]", "holds 2 elements"]),
        ("/v2/models/credit/infer",
         {"inputs": [{"name": "income", "datatype": "FP64", "shape": [1], "data": [1]}]},
         {}, 400, ["'age', 'debt_ratio' missing"]),
        ("/v2/models/credit/infer",
         {"inputs": [{"name": "income", "datatype": "FP8", "shape": [1], "data": [1]}]},
         {}, 400, ["'income' has datatype 'FP8'"]),
        ("/v2/models/credit/infer", b'{"inputs": [{"name": "x", "datatype": "FP64", '
         b'"shape": [1, 3], "data": [1e999, 0, 0]}]}', {}, 400, ["is infinity"]),
        ("/v2/models/credit/infer", body(outputs=[{"name": "score"}]), {}, 400,
         ["output 'score' is not an output"]),
        ("/v2/models/credit/infer", orjson.dumps(body()),
         {"Inference-Header-Content-Length": "nan"}, 400, ["not a number"]),
        ("/v2/models/credit/infer", orjson.dumps(body()),
         {"Inference-Header-Content-Length": "99999"}, 400, ["Inference-Header-Content-Length"]),
    ],
)  # fmt: skip
def test_bad_requests_are_4xx_naming_the_problem(
    client: TestClient, path: str, payload: object, headers: dict, status: int, needles: list
) -> None:
    if isinstance(payload, dict):
        response = client.post(path, json=payload, headers=headers)
    else:
        response = client.post(path, content=payload, headers=headers)  # type: ignore[arg-type]
    error(response, status, *needles)


def test_oversized_body_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    error(client.post("/v2/models/credit/infer", content=chunks()), 413, "over the limit")


def test_repository_extension(client: TestClient) -> None:
    index = client.post("/v2/repository/index").json()
    assert [(e["name"], e["version"], e["state"]) for e in index] == [
        ("credit", "1", "READY"),
        ("credit", "2", "READY"),
    ]
    assert client.post("/v2/repository/models/credit/unload").status_code == 200
    error(client.post("/v2/models/credit/infer", json=body()), 404, "unloaded")
    assert client.post("/v2/repository/models/credit/load").status_code == 200
    assert client.post("/v2/models/credit/infer", json=body()).status_code == 200
    error(client.post("/v2/repository/models/nope/load"), 404, "'nope'")
    error(client.post("/v2/repository/models/nope/unload"), 404, "'nope'")


def test_metrics_endpoint(client: TestClient) -> None:
    client.post("/v2/models/credit/infer", json=body())
    text = client.get("/metrics").text
    assert (
        'mainspring_inference_requests_total{arm="default",model="credit",protocol="rest"' in text
    )


tensors = st.fixed_dictionaries(
    {
        "name": st.sampled_from([*FEATURES, "x", ""]),
        "datatype": st.sampled_from(
            ["FP64", "FP32", "INT64", "BOOL", "BYTES", "UINT8", "FP16", "?"]
        ),
        "shape": st.lists(st.integers(-1, 4), max_size=3),
        "data": st.recursive(
            st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.integers(),
                st.booleans(),
                st.text(max_size=2),
                st.none(),
            ),
            lambda inner: st.lists(inner, max_size=4),
            max_leaves=12,
        ),
    }
)


requests = st.fixed_dictionaries(
    {"inputs": st.lists(tensors, max_size=4)},
    optional={
        "outputs": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["probability", "x"])}), max_size=2
        ),
        "id": st.one_of(st.text(max_size=3), st.integers()),
        "parameters": st.one_of(st.dictionaries(st.text(max_size=2), st.integers()), st.integers()),
    },
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(requests, st.binary(max_size=64).map(lambda b: {"raw": b})))
def test_fuzzed_requests_never_get_a_5xx(client: TestClient, payload: dict) -> None:
    if "raw" in payload:
        response = client.post("/v2/models/credit/infer", content=payload["raw"])
    else:
        response = client.post("/v2/models/credit/infer", json=payload)
    assert response.status_code in (200, 400, 404, 413, 415), response.text
    if response.status_code != 200:
        assert "error" in response.json()
