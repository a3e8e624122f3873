"""One suite over every model flavor: each case trains a tiny real model and checks that the
flavor saves, recognises, validates and reloads it, predicting what the live model predicts."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from mainspring.errors import InvalidInputError, SignatureError
from mainspring.records import FeatureSpec, Signature
from mainspring.registry.flavors import (
    FLAVORS,
    Flavor,
    LoadedModel,
    Prepared,
    flavor_for_file,
    flavor_for_object,
    get_flavor,
)

pd = pytest.importorskip("pandas")

NAMES = ["age", "income", "debt", "tenure"]
RNG = np.random.RandomState(7)
X = RNG.normal(size=(200, 4))
Y2 = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] + RNG.normal(scale=0.5, size=200) > 0).astype(int)
Y3 = np.digitize(X[:, 0] + X[:, 3], [-0.7, 0.7])
YR = 2.0 * X[:, 0] - X[:, 1] + 0.1 * RNG.normal(size=200)
FRAME = pd.DataFrame(X, columns=NAMES)


@dataclass
class Case:
    """A trained model and how the flavor should see it."""

    flavor: str
    filename: str
    #: the live model (None for pickles, which are registered as files)
    model: object | None
    #: what the live model predicts for X
    expected: np.ndarray
    named: bool
    n_outputs: int = 1
    rtol: float = 1e-6
    data: bytes | None = None
    trusted: bool = False
    #: the caller's signature, for models that do not reveal theirs
    signature: Signature | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def lightgbm_booster() -> Case:
    lgb = pytest.importorskip("lightgbm")
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(FRAME, Y2), num_boost_round=10)
    return Case("lightgbm", "model.txt", booster, booster.predict(X), named=True)


def lightgbm_classifier() -> Case:
    lgb = pytest.importorskip("lightgbm")
    clf = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, verbose=-1).fit(X, Y3)
    return Case("lightgbm", "model.txt", clf, clf.predict_proba(X), named=False, n_outputs=3)


def xgboost_booster() -> Case:
    xgb = pytest.importorskip("xgboost")
    params = {"objective": "binary:logistic", "max_depth": 3}
    booster = xgb.train(params, xgb.DMatrix(FRAME, Y2), num_boost_round=10)
    expected = booster.predict(xgb.DMatrix(FRAME))
    return Case("xgboost", "model.ubj", booster, expected, named=True)


def xgboost_classifier() -> Case:
    xgb = pytest.importorskip("xgboost")
    clf = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, Y3)
    return Case("xgboost", "model.ubj", clf, clf.predict_proba(X), named=False, n_outputs=3)


def sklearn_logistic() -> Case:
    linear_model = pytest.importorskip("sklearn.linear_model")
    clf = linear_model.LogisticRegression().fit(X, Y2)
    return Case("sklearn", "model.skops", clf, clf.predict_proba(X)[:, 1], named=False)


def sklearn_pipeline() -> Case:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(FRAME, Y3)
    return Case("sklearn", "model.skops", pipe, pipe.predict_proba(FRAME), named=True, n_outputs=3)


def sklearn_regressor() -> Case:
    tree = pytest.importorskip("sklearn.tree")
    reg = tree.DecisionTreeRegressor(max_depth=4, random_state=0).fit(FRAME, YR)
    return Case("sklearn", "model.skops", reg, reg.predict(FRAME), named=True)


def onnx_classifier() -> Case:
    skl2onnx = pytest.importorskip("skl2onnx")
    pytest.importorskip("onnxruntime")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    x32 = X.astype(np.float32)
    clf = LogisticRegression().fit(x32, Y2)
    proto = skl2onnx.convert_sklearn(
        clf,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(clf): {"zipmap": False}},
    )
    expected = clf.predict_proba(x32)[:, 1]
    return Case("onnx", "model.onnx", proto, expected, named=False, rtol=1e-5)


def onnx_named_inputs() -> Case:
    """A hand-built graph taking one [N, 1] input per feature: sigmoid(x @ w + b)."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[0.5], [-1.0], [0.25], [2.0]], dtype=np.float32)
    bias = np.array([0.1], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Concat", NAMES, ["x"], axis=1),
            helper.make_node("MatMul", ["x", "w"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["score"]),
        ],
        "named",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in NAMES],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    x32 = X.astype(np.float32)
    expected = 1.0 / (1.0 + np.exp(-(x32 @ weights + bias).reshape(-1)))
    return Case("onnx", "model.onnx", proto, expected, named=True, rtol=1e-5)


def pickled_classifier() -> Case:
    linear_model = pytest.importorskip("sklearn.linear_model")
    clf = linear_model.LogisticRegression().fit(FRAME, Y2)
    signature = Signature(tuple(FeatureSpec(n, "float64") for n in NAMES))
    return Case(
        "pickle",
        "model.pkl",
        None,
        clf.predict_proba(FRAME)[:, 1],
        named=False,
        data=pickle.dumps(clf, protocol=5),
        trusted=True,
        signature=signature,
    )


BUILDERS: list[Callable[[], Case]] = [
    lightgbm_booster,
    lightgbm_classifier,
    xgboost_booster,
    xgboost_classifier,
    sklearn_logistic,
    sklearn_pipeline,
    sklearn_regressor,
    onnx_classifier,
    onnx_named_inputs,
    pickled_classifier,
]


@dataclass
class Built:
    case: Case
    flavor: Flavor
    prepared: Prepared
    loaded: LoadedModel


@pytest.fixture(scope="module", params=BUILDERS, ids=[b.__name__ for b in BUILDERS])
def built(request: pytest.FixtureRequest) -> Built:
    case: Case = request.param()
    flavor = get_flavor(case.flavor)
    if case.model is not None:
        prepared = flavor.prepare(case.model)
    else:
        assert case.data is not None
        prepared = flavor.prepare_file(case.data, case.filename)
    signature = case.signature or prepared.signature
    loaded = flavor.load(prepared.data, signature, trusted=case.trusted)
    return Built(case, flavor, prepared, loaded)


def test_round_trip_predicts_like_the_live_model(built: Built) -> None:
    predicted = built.loaded.predict(X)
    assert predicted.dtype == np.float64
    assert predicted.shape == built.case.expected.shape
    np.testing.assert_allclose(predicted, built.case.expected, rtol=built.case.rtol, atol=1e-7)


def test_prepared_facts(built: Built) -> None:
    prepared, case = built.prepared, built.case
    assert prepared.named is case.named
    if case.signature is None:  # the model reveals its signature
        assert prepared.n_features == 4
        expected_names = NAMES if case.named else [f"f{i}" for i in range(4)]
        assert list(prepared.signature.input_names) == expected_names
        assert len(prepared.signature.outputs) == case.n_outputs
    else:
        assert prepared.n_features == 0
        assert prepared.signature.inputs == ()


def test_prepare_file_agrees_with_prepare(built: Built) -> None:
    from_file = built.flavor.prepare_file(built.prepared.data, built.case.filename)
    assert from_file.data == built.prepared.data
    assert from_file.n_features == built.prepared.n_features
    assert from_file.signature == built.prepared.signature
    assert from_file.named == built.prepared.named
    assert dict(from_file.params) == dict(built.prepared.params)
    assert dict(from_file.library_versions) == dict(built.prepared.library_versions)


def test_the_file_is_recognised_by_its_flavor_only(built: Built) -> None:
    data, filename = built.prepared.data, built.case.filename
    assert flavor_for_file(data, filename) is built.flavor
    claimed = [f.name for f in FLAVORS if f is not built.flavor and f.sniff(data, filename)]
    assert claimed == []


def test_live_model_is_accepted_by_its_flavor(built: Built) -> None:
    if built.case.model is None:  # pickles are registered as files, never made from objects
        assert not built.flavor.accepts(built.loaded.native)
        return
    assert flavor_for_object(built.case.model) is built.flavor


def test_truncated_file_is_invalid_input(built: Built) -> None:
    data = built.prepared.data
    with pytest.raises(InvalidInputError) as caught:
        built.flavor.prepare_file(data[: len(data) // 2], built.case.filename)
    assert caught.value.field == "file"
    assert built.case.filename in str(caught.value)


def test_library_versions(built: Built) -> None:
    versions = built.flavor.library_versions()
    assert versions and "numpy" in versions
    assert all(isinstance(v, str) and v for v in versions.values())


def test_predict_by_frame_columns_matches_predict_by_array(built: Built) -> None:
    names = list(built.loaded.signature.input_names)
    frame = pd.DataFrame(X, columns=names)[names[::-1]]
    frame["unused"] = 1.0
    np.testing.assert_array_equal(built.loaded.predict(frame), built.loaded.predict(X))


def test_missing_column_names_the_feature(built: Built) -> None:
    names = list(built.loaded.signature.input_names)
    frame = pd.DataFrame(X, columns=names).drop(columns=[names[2]])
    with pytest.raises(SignatureError, match=names[2]):
        built.loaded.predict(frame)


def test_signature_of_the_wrong_width_is_refused(built: Built) -> None:
    narrow = Signature(built.loaded.signature.inputs[:3])
    with pytest.raises(SignatureError):
        built.flavor.load(built.prepared.data, narrow, trusted=built.case.trusted)


def test_single_row_predicts_one_value(built: Built) -> None:
    one = built.loaded.predict(X[0])
    expected = built.case.expected[:1]
    np.testing.assert_allclose(one, expected, rtol=built.case.rtol, atol=1e-7)


def test_one_row_at_a_time_predicts_what_the_batch_predicts(built: Built) -> None:
    # single rows may take a faster path (LightGBM's single-row C API), and decisions of tree
    # models replay bit for bit; linear algebra (scikit-learn, ONNX) may round differently by
    # batch size (ONNX in float32), so those are held to the tolerance of their case
    batch = built.loaded.predict(X[:40])
    exact = built.case.flavor in {"lightgbm", "xgboost"}
    for i in range(40):
        one = built.loaded.predict(X[i : i + 1])
        if exact:
            np.testing.assert_array_equal(one, batch[i : i + 1])
        else:
            np.testing.assert_allclose(one, batch[i : i + 1], rtol=built.case.rtol, atol=1e-7)
