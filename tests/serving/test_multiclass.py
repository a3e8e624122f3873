"""Decisions over multi-class models: the class the policy scores is the class explained."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from tests.serving.conftest import FEATURES, Collected, approve

from mainspring.errors import InvalidInputError
from mainspring.features import FeatureStore
from mainspring.pipelines.importance import store_importance
from mainspring.records import Decision
from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore, check_policy_output
from mainspring.serving.explaining import version_explainer
from mainspring.serving.inference import InferenceRequest
from mainspring.serving.policy import Policy
from mainspring.serving.request import DecisionRequest
from mainspring.serving.tensors import Tensor
from mainspring.storage.memory import MemoryBlobStore, memory_metadata

lgb = pytest.importorskip("lightgbm")
xgb = pytest.importorskip("xgboost")

Margin = Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]
OUTPUTS = ["probability_0", "probability_1", "probability_2"]


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=FEATURES)
    y = np.digitize(x["income"] - x["debt_ratio"], [-0.6, 0.6])  # three classes
    return x, y


def lightgbm_model(x: pd.DataFrame, y: npt.NDArray[np.int64]) -> tuple[object, Margin]:
    model = lgb.LGBMClassifier(n_estimators=12, num_leaves=6, verbose=-1).fit(x, y)

    def margin(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(model.booster_.predict(rows, raw_score=True), dtype=np.float64)

    return model, margin


def xgboost_model(x: pd.DataFrame, y: npt.NDArray[np.int64]) -> tuple[object, Margin]:
    model = xgb.XGBClassifier(n_estimators=12, max_depth=3).fit(x, y)

    def margin(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        matrix = xgb.DMatrix(pd.DataFrame(rows, columns=FEATURES))
        return np.asarray(model.get_booster().predict(matrix, output_margin=True), np.float64)

    return model, margin


def deciding(name: str, model: str, output: str | None, **policy: Any) -> Deployment:
    body: dict[str, Any] = {
        "thresholds": [{"below": 0.5, "decision": "approve"}, {"decision": "decline"}],
        "explain": {"top_k": 2},
        **policy,
    }
    if output is not None:
        body["output"] = output
    return Deployment(
        name, (Arm("main", model, "champion"),), features="scoring",
        policy=Policy.from_dict(body),
    )  # fmt: skip


def plane_for(registry: Registry, features: FeatureStore, *deployments: Deployment) -> DataPlane:
    store = DeploymentStore(registry.store)
    for deployment in deployments:
        store.put(deployment, actor="alice")
    plane = DataPlane(registry, deployments=store)
    plane.start()
    plane.decisions = DecisionService(plane, Collected(), features)
    return plane


def registered(model: object, name: str = "species") -> Registry:
    registry = Registry(memory_metadata(), MemoryBlobStore())
    registry.register(name, model, actor="alice")
    approve(registry, name, 1)
    registry.set_alias(name, "champion", 1, actor="alice")
    return registry


def logged(service: DecisionService) -> list[Decision]:
    assert isinstance(service.log, Collected)
    return service.log.decisions


def decide(service: DecisionService, deployment: str, customer: int) -> Decision:
    request = DecisionRequest.from_dict({"entity": {"customer_id": customer}})
    return service.decide(deployment, request)


@pytest.mark.parametrize("build", [lightgbm_model, xgboost_model], ids=["lightgbm", "xgboost"])
def test_tree_decisions_explain_the_class_the_policy_scores(
    build: Callable[..., tuple[object, Margin]],
    sample: tuple[pd.DataFrame, npt.NDArray[np.int64]],
    features: FeatureStore,
) -> None:
    model, margin = build(*sample)
    registry = registered(model)
    assert [f.name for f in registry.get("species/1").signature.outputs or ()] == OUTPUTS
    # two policies over the same version, scoring different classes, in one decision service
    plane = plane_for(
        registry, features,
        deciding("third", "species", "probability_2"),
        deciding("second", "species", "probability_1"),
        deciding("first", "species", None),
    )  # fmt: skip
    service = plane.decisions
    assert service is not None
    # XGBoost computes its margin in float32; the explainer adds up in float64
    tolerance = 1e-9 if build is lightgbm_model else 1e-5
    try:
        for customer in (2, 9, 17, 30):
            for deployment, k in (("third", 2), ("second", 1), ("first", 0)):
                d = decide(service, deployment, customer)
                row = np.array([[f.value for f in d.features]], dtype=np.float64)
                probabilities = np.asarray(registry.load("species/1").predict(row))[0]
                assert d.score == float(probabilities[k])  # the policy's column, bit for bit
                assert d.raw == float(probabilities[0])  # raw stays the first output column
                assert d.confidence is None  # a class probability, not a binary classifier's
                assert d.base_value is not None and set(d.attributions) == set(FEATURES)
                explained = d.base_value + sum(d.attributions.values())
                assert explained == pytest.approx(float(margin(row)[0, k]), abs=tolerance)
                ups = sorted((v, f) for f, v in d.attributions.items() if v > 0)[::-1][:2]
                assert [r.feature for r in d.reasons] == [f for _, f in ups]
        # each class's attributions differ: a shared explainer would have given the same ones
        seen = {tuple(d.attributions.values()) for d in logged(service)[:3]}
        assert len(seen) == 3
    finally:
        plane.close()


def test_inference_protocol_decisions_explain_the_scored_class(
    sample: tuple[pd.DataFrame, npt.NDArray[np.int64]], features: FeatureStore
) -> None:
    model, margin = lightgbm_model(*sample)
    registry = registered(model)
    plane = plane_for(registry, features, deciding("third", "species", "probability_2"))
    service = plane.decisions
    assert service is not None
    try:
        rows = sample[0].to_numpy()[:4]
        plane.infer("third", None, InferenceRequest([Tensor("x", "FP64", (4, 3), rows)]))
        made = logged(service)
        assert len(made) == 4
        for d, row, raw in zip(made, rows, margin(rows), strict=True):
            probability = model.booster_.predict(row[None])[0, 2]  # type: ignore[attr-defined]
            assert d.score == float(probability)
            assert d.base_value is not None
            total = d.base_value + sum(d.attributions.values())
            assert total == pytest.approx(float(raw[2]), abs=1e-9)
    finally:
        plane.close()


def test_sklearn_multiclass_decisions_explain_the_scored_column(
    sample: tuple[pd.DataFrame, npt.NDArray[np.int64]], features: FeatureStore
) -> None:
    x, y = sample
    logistic = LogisticRegression().fit(x, y)
    registry = registered(logistic)
    assert [f.name for f in registry.get("species/1").signature.outputs or ()] == OUTPUTS
    store_importance(registry, "species/1", x, actor="carol", rows=5)
    plane = plane_for(
        registry, features,
        deciding("third", "species", "probability_2"), deciding("first", "species", None),
    )  # fmt: skip
    service = plane.decisions
    assert service is not None
    try:
        for customer in (4, 12):
            for deployment, k in (("third", 2), ("first", 0)):
                d = decide(service, deployment, customer)
                row = pd.DataFrame([[f.value for f in d.features]], columns=FEATURES)
                probability = float(logistic.predict_proba(row)[0, k])
                assert d.score == pytest.approx(probability, abs=1e-12)
                assert d.base_value is not None
                # the agnostic explainer explains the probability the policy scores
                total = d.base_value + sum(d.attributions.values())
                assert total == pytest.approx(probability, abs=1e-9)
    finally:
        plane.close()


@pytest.fixture
def three_classes(sample: tuple[pd.DataFrame, npt.NDArray[np.int64]]) -> Iterator[Registry]:
    registry = registered(lightgbm_model(*sample)[0])
    yield registry
    registry.store.close()


def test_a_policy_output_the_model_lacks_is_refused_with_the_field(
    three_classes: Registry, features: FeatureStore
) -> None:
    wrong = deciding("typo", "species", "probability_3")
    with pytest.raises(InvalidInputError) as caught:
        check_policy_output(three_classes, wrong)  # when the deployment is set
    assert caught.value.field == "policy.output"
    assert "'probability_3'" in caught.value.message
    assert "probability_0, probability_1, probability_2" in caught.value.message
    assert "species/1 (arm main)" in caught.value.message
    check_policy_output(three_classes, deciding("fine", "species", "probability_1"))
    # stored anyway (an alias may also move to a version without it): deciding refuses it
    plane = plane_for(three_classes, features, wrong)
    service = plane.decisions
    assert service is not None
    try:
        with pytest.raises(InvalidInputError) as caught:
            decide(service, "typo", 3)
        assert caught.value.field == "policy.output"
        assert logged(service) == []
        with pytest.raises(InvalidInputError) as caught:
            rows = np.zeros((1, 3))
            plane.infer("typo", None, InferenceRequest([Tensor("x", "FP64", (1, 3), rows)]))
        assert caught.value.field == "policy.output"
    finally:
        plane.close()


def test_a_shadow_arm_without_the_output_does_not_block_decisions(
    sample: tuple[pd.DataFrame, npt.NDArray[np.int64]], features: FeatureStore
) -> None:
    x, y = sample
    registry = registered(lightgbm_model(x, y)[0])
    binary = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(x, (y == 2).astype(int))
    registry.register("binary", binary, actor="alice")
    arms = (Arm("main", "species", "champion"), Arm("next", "binary", "1", "shadow", 100.0))
    policy = Policy.from_dict({"thresholds": [{"decision": "approve"}], "output": "probability_2"})
    deployment = Deployment("third", arms, features="scoring", policy=policy)
    check_policy_output(registry, deployment)
    plane = plane_for(registry, features, deployment)
    assert plane.decisions is not None
    try:
        d = decide(plane.decisions, "third", 5)
        assert d.arm == "main" and d.attributions and set(d.shadows) == {"next"}
    finally:
        plane.close()


def test_an_output_index_out_of_range_is_refused_with_the_field(three_classes: Registry) -> None:
    loaded = three_classes.load("species/1")
    for output in (3, -1):
        with pytest.raises(InvalidInputError) as caught:
            version_explainer(loaded, None, output=output)
        assert caught.value.field == "output"
        assert "predicts 3 column(s) per row (probability_0" in caught.value.message


def test_models_predicting_class_labels_are_not_explained(
    sample: tuple[pd.DataFrame, npt.NDArray[np.int64]],
    features: FeatureStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    x, y = sample
    booster = xgb.train(
        {"objective": "multi:softmax", "num_class": 3, "max_depth": 2},
        xgb.DMatrix(x, label=y), num_boost_round=3,
    )  # fmt: skip
    registry = registered(booster)
    with pytest.raises(InvalidInputError, match="multi:softprob") as caught:
        version_explainer(registry.load("species/1"), None)
    assert caught.value.field == "model"
    plane = plane_for(registry, features, deciding("labels", "species", None))
    assert plane.decisions is not None
    try:  # the label decides; no explanation is made up for it
        d = decide(plane.decisions, "labels", 5)
        assert d.score in (0.0, 1.0, 2.0) and d.attributions == {} and d.base_value is None
        assert "multi:softprob" in caplog.text
    finally:
        plane.close()
