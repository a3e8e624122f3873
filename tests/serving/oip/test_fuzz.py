"""Fuzzing the OIP data plane: schemathesis over the REST routes, hypothesis over tensors.

The REST adapter has no OpenAPI document of its own (it is a Starlette app), so the document
below describes its routes after the protocol's REST specification, with the model names,
versions and input names of the test registry mixed into the generated values so that requests
reach validation and prediction, not only the 404 of an unknown model. Every answer must be a
documented status (never a 5xx) without a traceback.

The hypothesis part goes below the wire: tensors whose shape, datatype and data disagree, NaN and
infinity, ``BYTES``, binary data of the wrong length, decoded and inferred through the data
plane, which may only answer or raise the domain's input errors.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.serving import DataPlane
from mainspring.serving.oip.codec import decode_request, encode_response
from mainspring.serving.oip.rest import create_app

FEATURES = ["income", "age", "debt_ratio"]
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES"]  # fmt: skip


def _mixed(*known: str) -> dict[str, Any]:
    return {"anyOf": [{"type": "string", "enum": list(known)}, {"type": "string"}]}


def _path_params(*names: str) -> list[dict[str, Any]]:
    known = {"name": _mixed("credit", "credit@champion"), "version": _mixed("1", "2", "champion")}
    return [{"name": n, "in": "path", "required": True, "schema": known[n]} for n in names]


def _answers(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": str(c)} for c in codes}


TENSOR_DATA: dict[str, Any] = {
    "type": "array",
    "items": {"anyOf": [
        {"type": "number"}, {"type": "string"}, {"type": "boolean"},
        {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "string"}]}},
    ]},
}  # fmt: skip
REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": _mixed(*FEATURES, "input"),
                    "shape": {"type": "array", "items": {"type": "integer"}},
                    "datatype": _mixed(*DATATYPES),
                    "parameters": {"type": "object"},
                    "data": TENSOR_DATA,
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": _mixed("probability"), "parameters": {"type": "object"}},
            },
        },
    },
}


def _get(*params: str, codes: tuple[int, ...] = (200, 404)) -> dict[str, Any]:
    return {"get": {"parameters": _path_params(*params), "responses": _answers(*codes)}}


def _post(*params: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "parameters": _path_params(*params),
        "responses": _answers(200, 400, 404, 413, 415),
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True, "content": {"application/json": {"schema": body}},
        }  # fmt: skip
    return {"post": operation}


OIP_OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Mainspring OIP REST (test description)", "version": "2"},
    "paths": {
        "/v2/health/live": _get(codes=(200,)),
        "/v2/health/ready": _get(codes=(200, 503)),
        "/v2": _get(codes=(200,)),
        "/v2/models/{name}": _get("name"),
        "/v2/models/{name}/versions/{version}": _get("name", "version"),
        "/v2/models/{name}/ready": _get("name"),
        "/v2/models/{name}/versions/{version}/ready": _get("name", "version"),
        "/v2/models/{name}/infer": _post("name", body=REQUEST),
        "/v2/models/{name}/versions/{version}/infer": _post("name", "version", body=REQUEST),
        "/v2/repository/index": _post(),
        "/v2/repository/models/{name}/load": _post("name"),
        "/v2/repository/models/{name}/unload": _post("name"),
        "/metrics": _get(codes=(200,)),
    },
}


@pytest.fixture
def app(plane: DataPlane) -> Iterator[Any]:
    app = create_app(plane, max_body_bytes=16_384)
    with TestClient(app):  # runs the lifespan
        yield app


def test_oip_rest_fuzz_finds_no_5xx(app: Any) -> None:
    schema = schemathesis.openapi.from_dict(OIP_OPENAPI)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OIP_OPENAPI["paths"])
    for operation in operations:
        # the infer routes get more examples than the metadata routes
        examples = 60 if operation.path.endswith("/infer") else 10

        @settings(max_examples=examples, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(app=app)
            assert response.status_code < 500, (case.formatted_path, case.body, response.text)
            assert "Traceback" not in response.text
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, response.text

        run()


# ---------------------------------------------------------------------- tensors below the wire

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
specials = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 2.0**63, -(2.0**64)])
scalars = st.one_of(finite, specials, st.integers(-(2**70), 2**70), st.booleans(),
                    st.text(max_size=3), st.binary(max_size=3))  # fmt: skip
shapes = st.lists(st.integers(-2, 4), max_size=3)


@st.composite
def tensors(draw: st.DrawFn) -> dict[str, Any]:
    """One input tensor whose parts may or may not agree with each other."""
    shape = draw(shapes)
    count = math.prod(shape) if all(d >= 0 for d in shape) else 0
    # the length the shape asks for, give or take one
    length = max(0, draw(st.sampled_from([count, count, count + 1, max(count - 1, 0)])))
    values = draw(st.lists(st.one_of(scalars, scalars), min_size=length, max_size=length))
    return {
        "name": draw(st.sampled_from([*FEATURES, "x", "input", ""])),
        "datatype": draw(st.sampled_from([*DATATYPES, "FP8", "fp64", ""])),
        "shape": shape,
        "data": values,
    }


def _json(value: object) -> object:
    """``value`` as JSON can carry it (bytes as text, non-finite floats as strings)."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def _infer(plane: DataPlane, body: bytes, header: int | None) -> None:
    try:
        request = decode_request(body, header)
        answer = plane.infer("credit", None, request, protocol="rest")
    except (InvalidInputError, NotFoundError) as exc:
        assert exc.message  # a message that names the problem
        return
    encode_response(answer)
    assert all(np.isfinite(t.data).all() for t in answer.outputs)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(inputs=st.lists(tensors(), min_size=1, max_size=4))
def test_json_tensors_answer_or_raise_input_errors(plane: DataPlane, inputs: list[dict]) -> None:
    # the standard library's encoder: orjson cannot write integers past 64 bits
    body = json.dumps({"inputs": [{**t, "data": _json(t["data"])} for t in inputs]}).encode()
    _infer(plane, body, None)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    inputs=st.lists(
        st.tuples(st.sampled_from([*FEATURES, "x"]), st.sampled_from(DATATYPES), shapes,
                  st.binary(max_size=40), st.integers(-3, 3)),
        min_size=1, max_size=3,
    ),
)  # fmt: skip
def test_binary_tensors_answer_or_raise_input_errors(
    plane: DataPlane, inputs: list[tuple[str, str, list[int], bytes, int]]
) -> None:
    """Binary tensor data whose declared size is off by a few bytes, or right but not a whole
    number of elements, or BYTES items whose length prefixes lie."""
    head, chunks = [], []
    for name, datatype, shape, raw, skew in inputs:
        if datatype == "BYTES" and raw:
            raw = struct.pack("<I", max(0, len(raw) + skew)) + raw
        head.append({"name": name, "datatype": datatype, "shape": shape,
                     "parameters": {"binary_data_size": max(0, len(raw) + skew)}})  # fmt: skip
        chunks.append(raw)
    document = orjson.dumps({"inputs": head})
    _infer(plane, document + b"".join(chunks), len(document))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=st.lists(st.lists(st.one_of(finite, specials), min_size=3, max_size=3), min_size=1,
                     max_size=5), datatype=st.sampled_from(["FP16", "FP32", "FP64"]))  # fmt: skip
def test_non_finite_values_are_refused_or_read_as_missing(
    plane: DataPlane, rows: list[list[float]], datatype: str
) -> None:
    """LightGBM reads NaN as missing; infinity, and values that overflow the datatype, are
    refused with an error naming the tensor."""
    data = np.asarray(rows, dtype=np.float64)
    tensor = {"name": "x", "datatype": datatype, "shape": list(data.shape),
              "data": [[_json(v) for v in r] for r in rows]}  # fmt: skip
    body = orjson.dumps({"inputs": [tensor]})
    _infer(plane, body, None)


# ---------------------------------------------------------------------- what the fuzzing found


@pytest.mark.parametrize(
    ("tensor", "needle"),
    [
        # a finite value past FP16's range turned into infinity with a RuntimeWarning
        ({"name": "x", "datatype": "FP16", "shape": [1, 3], "data": [0.0, 0.0, 65520.0]},
         "out of its range"),
        # an empty batch reached LightGBM, whose answer could not be reshaped (ValueError, 500)
        ({"name": "x", "datatype": "FP64", "shape": [0, 3], "data": []}, "has no rows"),
    ],
)  # fmt: skip
def test_inputs_the_fuzzing_found_are_400(app: Any, tensor: dict, needle: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v2/models/credit/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]


def test_unsigned_64_bit_inputs_are_checked_against_their_range(app: Any) -> None:
    """Found by the fuzz test: UINT64 bounds compared with numpy scalars overflowed C longs
    (OverflowError, 500) for booleans and negative integers."""

    def uint64(data: list[object]) -> dict:
        return {"inputs": [{"name": "x", "datatype": "UINT64", "shape": [1, 3], "data": data}]}

    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.post("/v2/models/credit/infer", json=uint64([True, False, True]))
        low = client.post("/v2/models/credit/infer", json=uint64([1, 2, -3]))
    assert ok.status_code == 200, ok.text
    assert low.status_code == 400 and "out of range" in low.json()["error"], low.text
