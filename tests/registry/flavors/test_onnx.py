"""ONNX input layouts the conformance suite does not cover: dynamic width, ZipMap outputs."""

from __future__ import annotations

import numpy as np
import pytest

from mainspring.errors import SignatureError, UnsupportedFormatError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry.flavors import get_flavor

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

from onnx import TensorProto, helper  # noqa: E402
from skl2onnx.common.data_types import FloatTensorType  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402

FLAVOR = get_flavor("onnx")
RNG = np.random.RandomState(9)
X = RNG.normal(size=(200, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(int)


def row_sum_model() -> bytes:
    """A graph whose input width is dynamic: ReduceSum over the feature axis."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=1)],
        "sum",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, None])],
        [helper.make_tensor_value_info("total", TensorProto.DOUBLE, [None, 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_dynamic_width_needs_the_callers_signature() -> None:
    prepared = FLAVOR.prepare_file(row_sum_model(), "sum.onnx")
    assert prepared.n_features == 0 and prepared.signature.inputs == ()
    with pytest.raises(SignatureError, match="signature"):
        FLAVOR.load(prepared.data, prepared.signature)
    signature = Signature(tuple(FeatureSpec(n, "float64") for n in ("a", "b", "c")))
    loaded = FLAVOR.load(prepared.data, signature)
    np.testing.assert_allclose(loaded.predict(X), X.astype(np.float64).sum(axis=1), rtol=1e-12)


def test_regressor_output_is_flattened() -> None:
    reg = LinearRegression().fit(X, X @ np.array([1.0, -1.0, 0.5], dtype=np.float32))
    proto = skl2onnx.convert_sklearn(reg, initial_types=[("input", FloatTensorType([None, 3]))])
    prepared = FLAVOR.prepare(proto)
    assert [s.name for s in prepared.signature.outputs] == ["prediction"]
    assert prepared.signature.inputs[0].dtype == "float32"
    loaded = FLAVOR.load(prepared.data, prepared.signature)
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X), rtol=1e-5, atol=1e-6)


def test_zipmap_outputs_are_refused_with_advice() -> None:
    clf = LogisticRegression().fit(X, Y)
    proto = skl2onnx.convert_sklearn(clf, initial_types=[("input", FloatTensorType([None, 3]))])
    with pytest.raises(UnsupportedFormatError, match="zipmap"):
        FLAVOR.prepare(proto)


def test_sniff_without_the_extension_parses() -> None:
    data = row_sum_model()
    assert FLAVOR.sniff(data, "model.bin")
    assert not FLAVOR.sniff(b"\x08\x01garbage", "model.bin")
    assert not FLAVOR.sniff(b"PK\x03\x04", "model.onnx")
