"""The protocol-neutral data plane: addressing, metadata, inference, repository, hot swap."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.registry import Registry
from mainspring.serving import DataPlane, InferenceRequest, RequestedOutput, tensor

FEATURES = ["income", "age", "debt_ratio"]
ROWS = np.array([[0.5, -1.0, 0.2], [-1.5, 0.3, 1.1]])


def columns(rows: np.ndarray = ROWS, datatype: str = "FP64") -> list:
    return [
        tensor(name, datatype, [len(rows)], rows[:, i].tolist()) for i, name in enumerate(FEATURES)
    ]


def matrix(rows: np.ndarray = ROWS) -> list:
    return [tensor("input", "FP64", list(rows.shape), rows.tolist())]


def expected(registry: Registry, ref: str) -> np.ndarray:
    return registry.load(ref).predict(ROWS)


def test_server_health_and_metadata(plane: DataPlane) -> None:
    assert plane.live() and plane.ready()
    meta = plane.metadata()
    assert meta.name == "mainspring" and "model_repository" in meta.extensions


def test_not_ready_before_start(registry: Registry) -> None:
    plane = DataPlane(registry)
    assert plane.live() and not plane.ready()


def test_model_metadata_follows_the_signature(plane: DataPlane) -> None:
    meta = plane.model_metadata("credit")
    assert meta.name == "credit" and meta.versions == ("1", "2")
    assert [t.name for t in meta.inputs] == FEATURES
    assert {t.datatype for t in meta.inputs} == {"FP64"}
    assert meta.inputs[0].shape == (-1,)
    assert [t.name for t in meta.outputs] == ["probability"]
    assert meta.parameters["version"] == "1"  # the champion answers by default
    assert plane.model_metadata("credit", "2").parameters["version"] == "2"


@pytest.mark.parametrize(
    ("name", "version", "answering", "arm"),
    [
        ("credit", None, "1", "default"),
        ("credit", "2", "2", "version"),
        ("credit", "champion", "1", "champion"),
        ("credit", "challenger", "2", "challenger"),
        ("credit@challenger", None, "2", "challenger"),
        ("credit@champion", "champion", "1", "champion"),
    ],
)
def test_addressing(
    plane: DataPlane, registry: Registry, name: str, version: str | None, answering: str, arm: str
) -> None:
    answer = plane.infer(name, version, InferenceRequest(columns(), id="req-1"))
    assert answer.model_name == "credit" and answer.model_version == answering
    assert answer.id == "req-1" and answer.parameters["arm"] == arm
    (out,) = answer.outputs
    assert out.name == "probability" and out.shape == (2,)
    np.testing.assert_allclose(out.data, expected(registry, f"credit/{answering}"))
    assert plane.model_ready(name, version)


def test_matrix_and_column_forms_agree(plane: DataPlane) -> None:
    a = plane.infer("credit", None, InferenceRequest(columns()))
    b = plane.infer("credit", None, InferenceRequest(matrix()))
    c = plane.infer("credit", None, InferenceRequest(columns(datatype="FP32")))
    np.testing.assert_allclose(a.outputs[0].data, b.outputs[0].data)
    np.testing.assert_allclose(a.outputs[0].data, c.outputs[0].data, rtol=1e-5)


@pytest.mark.parametrize("datatype", ["INT8", "INT32", "INT64", "UINT8", "UINT64", "BOOL", "FP16"])
def test_every_numeric_datatype_is_accepted(plane: DataPlane, datatype: str) -> None:
    rows = np.array([[1, 0, 1]], dtype=bool if datatype == "BOOL" else np.int64)
    answer = plane.infer("credit", None, InferenceRequest(columns(rows, datatype)))
    assert answer.outputs[0].shape == (1,)


def test_requested_outputs_and_parameters(plane: DataPlane) -> None:
    request = InferenceRequest(
        columns(), [RequestedOutput("probability", {"binary_data": True})], parameters={"x": 1}
    )
    (out,) = plane.infer("credit", None, request).outputs
    assert out.parameters == {"binary_data": True}
    with pytest.raises(InvalidInputError, match="output 'nope' is not an output of model credit"):
        plane.infer("credit", None, InferenceRequest(columns(), [RequestedOutput("nope")]))


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (lambda: columns()[:2], "input 'debt_ratio' missing from the request"),
        (lambda: [*columns(), tensor("zip", "FP64", [2], [1, 2])], "input 'zip' is not an input"),
        (lambda: [tensor("x", "FP64", [2, 4], [0] * 8)], r"has shape \[2, 4\]"),
        (lambda: [tensor("x", "BYTES", [1, 3], ["a", "b", "c"])], "datatype BYTES"),
        (
            lambda: [*columns()[:2], tensor("debt_ratio", "FP64", [3], [1, 2, 3])],
            "'debt_ratio' has 3 rows but the other inputs have 2",
        ),
        (
            lambda: [*columns()[:2], tensor("debt_ratio", "FP64", [2], [1, float("inf")])],
            "'debt_ratio' holds inf in row 1",
        ),
    ],
)
def test_bad_inputs_name_the_tensor(plane: DataPlane, inputs: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        plane.infer("credit", None, InferenceRequest(inputs()))  # type: ignore[operator]


def test_nan_is_a_missing_value_for_lightgbm(plane: DataPlane) -> None:
    rows = np.array([[np.nan, 0.0, 1.0]])
    answer = plane.infer("credit", None, InferenceRequest(columns(rows)))
    assert np.isfinite(answer.outputs[0].data).all()


def test_unknown_model_or_version(plane: DataPlane) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' does not exist; served models: credit"):
        plane.infer("nope", None, InferenceRequest(columns()))
    with pytest.raises(NotFoundError, match=r"credit/7.*served versions: 1, 2; aliases: ch"):
        plane.model_metadata("credit", "7")
    with pytest.raises(InvalidInputError, match="give one of them"):
        plane.model_metadata("credit@champion", "2")


def test_repository_index_load_unload(plane: DataPlane) -> None:
    index = [(e.name, e.version, e.state) for e in plane.repository_index()]
    assert index == [("credit", "1", "READY"), ("credit", "2", "READY")]
    plane.unload("credit")
    assert [(e.name, e.state) for e in plane.repository_index()] == [("credit", "UNAVAILABLE")]
    with pytest.raises(NotFoundError, match="it is unloaded"):
        plane.infer("credit", None, InferenceRequest(columns()))
    plane.load("credit")
    assert plane.infer("credit", None, InferenceRequest(columns())).model_version == "1"
    with pytest.raises(NotFoundError):
        plane.load("nope")


def test_metrics_count_requests_and_errors(plane: DataPlane) -> None:
    plane.infer("credit", "champion", InferenceRequest(columns()), protocol="rest")
    with pytest.raises(NotFoundError):
        plane.infer("nope", None, InferenceRequest(columns()), protocol="rest")
    text = plane.metrics.exposition().decode()
    assert (
        'mainspring_inference_requests_total{arm="champion",model="credit",protocol="rest",'
        'version="1"} 1.0' in text
    )
    assert (
        'mainspring_inference_errors_total{kind="not-found",model="nope",protocol="rest"}' in text
    )
    assert "mainspring_inference_batch_rows_bucket" in text


def test_hot_swap_under_load_fails_no_request(plane: DataPlane, registry: Registry) -> None:
    """Promotion and rollback while requests run: every request answers, from v1 or v2."""
    approve(registry, "credit", 2)
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                seen.add(plane.infer("credit", None, InferenceRequest(columns())).model_version)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(10):
            registry.set_alias("credit", "champion", 2 if i % 2 == 0 else 1, actor="alice")
            plane.load("credit")
            assert plane.infer("credit", None, InferenceRequest(columns())).model_version == (
                "2" if i % 2 == 0 else "1"
            )
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert seen <= {"1", "2"}


def approve(registry: Registry, name: str, version: int) -> None:
    registry.request_approval(name, version, actor="alice")
    registry.approve(name, version, actor="bob", reason="reviewed")
