"""Model-agnostic explanations in the decision flow, from the background stored with a version."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from tests.serving.conftest import FEATURES, POLICY, Collected, approve

from mainspring.features import FeatureStore
from mainspring.pipelines.importance import store_importance
from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.explaining import background_matrix, unexplained_arms
from mainspring.serving.policy import Policy
from mainspring.serving.request import DecisionRequest
from mainspring.storage.memory import MemoryBlobStore, memory_metadata


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)


@pytest.fixture(scope="module")
def logistic(sample: pd.DataFrame) -> LogisticRegression:
    y = (sample["debt_ratio"] - 0.5 * sample["income"] > 0).astype(int)
    return LogisticRegression().fit(sample, y)


def deciding(policy: dict[str, object] = POLICY) -> Deployment:
    return Deployment(
        "credit-decisions", (Arm("main", "credit", "champion"),), features="scoring",
        policy=Policy.from_dict(policy),
    )  # fmt: skip


def service_for(registry: Registry, features: FeatureStore) -> DecisionService:
    store = DeploymentStore(registry.store)
    store.put(deciding(), actor="alice")
    plane = DataPlane(registry, deployments=store)
    plane.start()
    plane.decisions = DecisionService(plane, Collected(), features)
    return plane.decisions


@pytest.fixture
def registry(logistic: LogisticRegression) -> Iterator[Registry]:
    registry = Registry(memory_metadata(), MemoryBlobStore())
    registry.register("credit", logistic, actor="alice")
    approve(registry, "credit", 1)
    registry.set_alias("credit", "champion", 1, actor="alice")
    yield registry
    registry.store.close()


def test_sklearn_decisions_are_explained_from_the_stored_background(
    registry: Registry, features: FeatureStore, sample: pd.DataFrame, logistic: LogisticRegression
) -> None:
    store_importance(registry, "credit/1", sample, actor="carol", rows=20)
    assert unexplained_arms(registry, deciding()) == []
    service = service_for(registry, features)
    try:
        for customer in (3, 7, 11):
            d = service.decide("credit-decisions", DecisionRequest.from_dict(
                {"entity": {"customer_id": customer}}
            ))  # fmt: skip
            assert d.raw is not None and d.base_value is not None
            assert set(d.attributions) == set(FEATURES)
            # attributions plus the base value give the raw score: the positive class's probability
            row = pd.DataFrame([[f.value for f in d.features]], columns=FEATURES)
            assert d.raw == pytest.approx(float(logistic.predict_proba(row)[0, 1]), abs=1e-12)
            assert d.base_value + sum(d.attributions.values()) == pytest.approx(d.raw, abs=1e-9)
            ups = sorted((v, k) for k, v in d.attributions.items() if v > 0)[::-1][:2]
            assert [r.feature for r in d.reasons] == [k for _, k in ups]
        # the base value is the model's mean score over the background sample
        stored = registry.background("credit/1")
        assert stored is not None
        background = pd.DataFrame(background_matrix(stored, FEATURES), columns=FEATURES)
        mean = float(logistic.predict_proba(background)[:, 1].mean())
        assert d.base_value == pytest.approx(mean, abs=1e-12)
        importance = registry.get("credit/1").importance
        assert importance is not None and importance.method == "exact"
    finally:
        service.plane.close()


def test_without_a_background_decisions_carry_no_attributions(
    registry: Registry, features: FeatureStore, caplog: pytest.LogCaptureFixture
) -> None:
    warnings = unexplained_arms(registry, deciding())
    assert len(warnings) == 1
    assert "arm main (credit/1, sklearn) has no background sample" in warnings[0]
    assert "mainspring models importance credit/1 --data FILE" in warnings[0]
    off = {**POLICY, "explain": {"enabled": False}}
    assert unexplained_arms(registry, deciding(off)) == []  # explanations off: nothing missing
    service = service_for(registry, features)
    try:
        d = service.decide("credit-decisions", DecisionRequest.from_dict(
            {"entity": {"customer_id": 3}}
        ))  # fmt: skip
        assert d.score is not None and d.decision in ("approve", "decline")
        assert (d.attributions, d.reasons, d.base_value) == ({}, (), None)
        assert "no background sample" in caplog.text
    finally:
        service.plane.close()


def test_tree_models_need_no_background(features: FeatureStore) -> None:
    from tests.serving.conftest import train

    registry = Registry(memory_metadata(), MemoryBlobStore())
    registry.register("credit", train(0, 3), actor="alice")
    approve(registry, "credit", 1)
    registry.set_alias("credit", "champion", 1, actor="alice")
    assert unexplained_arms(registry, deciding()) == []


def test_onnx_versions_are_explained_additively(sample: pd.DataFrame) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    from mainspring.serving.explaining import version_explainer

    target = sample.to_numpy() @ np.array([1.0, -2.0, 0.5])
    linear = LinearRegression().fit(sample.to_numpy(), target)
    proto = skl2onnx.convert_sklearn(linear, initial_types=[("x", FloatTensorType([None, 3]))])
    registry = Registry(memory_metadata(), MemoryBlobStore())
    version = registry.register("onnx-credit", proto, actor="alice")
    stored = store_importance(registry, version.ref, sample.to_numpy(), actor="carol", rows=10)
    assert stored.importance is not None and stored.importance.method == "exact"
    assert next(iter(stored.importance.values)) == version.signature.input_names[1]
    loaded = registry.load(version.ref)
    background = registry.background(version.ref)
    assert background is not None
    names = loaded.signature.input_names
    explainer = version_explainer(loaded, background_matrix(background, names))
    rows = sample.to_numpy()[:5]
    values = explainer.shap_values(rows)
    np.testing.assert_allclose(
        values.sum(axis=1) + explainer.expected_value, loaded.predict(rows), atol=1e-9
    )
