"""One conformance suite over every flavor's models served through the data plane.

Each case trains a tiny real model, registers it, serves it, and checks that the signature drives
the metadata, that both input forms predict what the registry's loaded model predicts, and that
bad tensors are refused with an error naming them.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from mainspring.errors import InvalidInputError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry import Registry
from mainspring.serving import DataPlane, InferenceRequest, tensor
from mainspring.storage.memory import MemoryBlobStore, memory_metadata

pd = pytest.importorskip("pandas")

NAMES = ["age", "income", "debt", "tenure"]
RNG = np.random.RandomState(7)
X = RNG.normal(size=(120, 4))
Y2 = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(int)
Y3 = np.digitize(X[:, 0] + X[:, 3], [-0.7, 0.7])
FRAME = pd.DataFrame(X, columns=NAMES)
BATCH = X[:5]


@dataclass
class Case:
    flavor: str
    model: object
    n_outputs: int = 1
    allows_nan: bool = False
    trusted: bool = False
    signature: Signature | None = None


def lightgbm_binary() -> Case:
    lgb = pytest.importorskip("lightgbm")
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 1}
    return Case("lightgbm", lgb.train(params, lgb.Dataset(FRAME, Y2), 10), allows_nan=True)


def lightgbm_multiclass() -> Case:
    lgb = pytest.importorskip("lightgbm")
    clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=7, verbose=-1).fit(FRAME, Y3)
    return Case("lightgbm", clf, n_outputs=3, allows_nan=True)


def xgboost_binary() -> Case:
    xgb = pytest.importorskip("xgboost")
    params = {"objective": "binary:logistic", "max_depth": 3}
    return Case("xgboost", xgb.train(params, xgb.DMatrix(FRAME, Y2), 5), allows_nan=True)


def sklearn_pipeline() -> Case:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(FRAME, Y3)
    return Case("sklearn", pipe, n_outputs=3)


def sklearn_regressor() -> Case:
    tree = pytest.importorskip("sklearn.tree")
    return Case("sklearn", tree.DecisionTreeRegressor(max_depth=3).fit(FRAME, X[:, 0]))


def onnx_classifier() -> Case:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X.astype(np.float32), Y2)
    proto = skl2onnx.convert_sklearn(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
    )
    signature = Signature(tuple(FeatureSpec(n, "float32") for n in NAMES))
    return Case("onnx", proto, signature=signature)


def pickled_classifier() -> Case:
    linear_model = pytest.importorskip("sklearn.linear_model")
    clf = linear_model.LogisticRegression().fit(FRAME, Y2)
    signature = Signature(tuple(FeatureSpec(n, "float64") for n in NAMES))
    return Case("pickle", pickle.dumps(clf, protocol=5), trusted=True, signature=signature)


BUILDERS: list[Callable[[], Case]] = [
    lightgbm_binary,
    lightgbm_multiclass,
    xgboost_binary,
    sklearn_pipeline,
    sklearn_regressor,
    onnx_classifier,
    pickled_classifier,
]


@dataclass
class Served:
    case: Case
    plane: DataPlane
    registry: Registry
    names: list[str]


@pytest.fixture(scope="module", params=BUILDERS, ids=[b.__name__ for b in BUILDERS])
def served(request: pytest.FixtureRequest) -> Served:
    case: Case = request.param()
    registry = Registry(memory_metadata(), MemoryBlobStore())
    version = registry.register(
        "m",
        case.model,
        actor="alice",
        signature=case.signature,
        trusted=case.trusted,
        filename="model.pkl" if case.flavor == "pickle" else None,
    )
    assert version.flavor == case.flavor
    plane = DataPlane(registry, trusted=case.trusted)
    plane.start()
    return Served(case, plane, registry, list(version.signature.input_names))


def columns(names: list[str], rows: np.ndarray) -> list:
    return [tensor(n, "FP64", [len(rows)], rows[:, i].tolist()) for i, n in enumerate(names)]


def test_metadata_follows_the_signature(served: Served) -> None:
    meta = served.plane.model_metadata("m")
    signature = served.registry.get("m").signature
    assert [t.name for t in meta.inputs] == list(signature.input_names)
    assert len(meta.outputs) == served.case.n_outputs
    assert all(t.datatype == "FP64" and t.shape == (-1,) for t in meta.outputs)


def test_both_input_forms_predict_like_the_registry(served: Served) -> None:
    expected = served.registry.load("m", trusted=served.case.trusted).predict(BATCH)
    expected = np.asarray(expected).reshape(len(BATCH), -1)
    for inputs in (
        columns(served.names, BATCH),
        [tensor("matrix", "FP64", list(BATCH.shape), BATCH.tolist())],
    ):
        answer = served.plane.infer("m", None, InferenceRequest(inputs))
        assert len(answer.outputs) == served.case.n_outputs
        got = np.column_stack([o.data for o in answer.outputs])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_nan_policy(served: Served) -> None:
    rows = BATCH[:1].copy()
    rows[0, 1] = np.nan
    request = InferenceRequest(columns(served.names, rows))
    if served.case.allows_nan:
        assert served.plane.infer("m", None, request).outputs[0].shape == (1,)
    else:
        with pytest.raises(InvalidInputError, match=f"'{served.names[1]}' holds nan"):
            served.plane.infer("m", None, request)


def test_bad_tensors_are_refused(served: Served) -> None:
    with pytest.raises(InvalidInputError, match="missing from the request"):
        served.plane.infer("m", None, InferenceRequest(columns(served.names, BATCH)[1:]))
    with pytest.raises(InvalidInputError, match=r"shape \[5, 3\]"):
        matrix = tensor("matrix", "FP64", [5, 3], BATCH[:, :3].tolist())
        served.plane.infer("m", None, InferenceRequest([matrix]))
