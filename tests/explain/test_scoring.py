"""TreeScorer: a LightGBM model's predictions from its explainer's tables, bit for bit LightGBM's.

Every check compares the bits of the doubles (``view(np.int64)``), not their values within a
tolerance: a decision's score is compared with its thresholds and replayed bit for bit.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.explain.test_treeshap import small_problem

from mainspring.explain import TreeExplainer
from mainspring.explain.layout import LIGHTGBM_ZERO
from mainspring.explain.scoring import TreeScorer, lightgbm_link, probe_rows


def bits(values: Any) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).reshape(-1).view(np.int64)


def rows(seed: int, n: int, f: int, nan: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    X[rng.random(size=X.shape) < nan] = np.nan
    return X


def train(X: np.ndarray, y: np.ndarray, rounds: int = 40, **params: Any) -> lgb.Booster:
    dataset = params.pop("dataset", {})
    base = {"num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1}
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **dataset), rounds)


def scorer_of(booster: lgb.Booster) -> TreeScorer:
    scorer = TreeScorer.for_lightgbm(TreeExplainer.from_lightgbm(booster), booster)
    assert scorer is not None
    return scorer


def assert_predicts_as_lightgbm(booster: lgb.Booster, X: np.ndarray) -> TreeScorer:
    scorer = scorer_of(booster)
    expected = booster.predict(X)
    got = [scorer.predict_row(row) for row in X]
    raw = [scorer.raw(row) for row in X]
    assert (bits(got) == bits(expected)).all()
    assert (bits(raw) == bits(booster.predict(X, raw_score=True))).all()
    # the decision's path: the score and the attributions from one pass of the kernel
    explainer = TreeExplainer.from_lightgbm(booster)
    for row, want in zip(X[:200], expected[:200], strict=False):
        score, values = scorer.predict_and_explain_row(row)
        assert bits(score) == bits(want)
        assert (bits(values) == bits(explainer.explain_row(row))).all()
    assert scorer.agrees(booster.predict)
    return scorer


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "binary"},
        {"objective": "binary", "sigmoid": 0.7},
        {"objective": "cross_entropy"},
        {"objective": "regression"},
        {"objective": "huber"},
        {"objective": "quantile", "alpha": 0.8},
        {"objective": "binary", "zero_as_missing": True},
        {"objective": "binary", "use_missing": False},
    ],
    ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()),
)
def test_predictions_are_lightgbms_bit_for_bit(params: dict[str, Any]) -> None:
    X = rows(1, 2000, 8)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) * np.nan_to_num(X[:, 2]) > 0).astype(float)
    booster = train(X, y, **params)
    assert_predicts_as_lightgbm(booster, rows(2, 3000, 8, nan=0.2))


def test_categorical_splits_and_values_lightgbm_reads_specially() -> None:
    rng = np.random.default_rng(3)
    X = rows(3, 3000, 4)
    X[:, 0] = rng.integers(0, 12, size=len(X)).astype(float)
    y = (np.isin(X[:, 0], [1, 4, 7, 9]) ^ (np.nan_to_num(X[:, 1]) > 0.3)).astype(float)
    booster = train(X, y, objective="binary", dataset={"categorical_feature": [0]})
    probe = rows(4, 2000, 4, nan=0.2)
    probe[:, 0] = rng.integers(-2, 15, size=len(probe)).astype(float)
    probe[::7, 0] = np.nan
    probe[::5, 1] = rng.choice([1e-36, -1e-36, LIGHTGBM_ZERO, -LIGHTGBM_ZERO, 0.0, 1e301], 400)
    assert_predicts_as_lightgbm(booster, probe)


def test_tiny_values_are_read_as_zero_by_both_kernels_as_by_lightgbm() -> None:
    """LightGBM drops values within 1e-35 (as a float) of 0 from a row before predicting:
    a split at -1e-35 sends -1e-35 itself right. The explanation follows the same path."""
    X = rows(5, 3000, 3, nan=0.0)
    X[::3, 0] = 0.0
    y = (X[:, 0] == 0.0).astype(float)
    booster = train(X, y, objective="binary")
    thresholds = [n["threshold"] for n in _splits(booster.dump_model()) if n["split_feature"] == 0]
    assert any(abs(t) < 1e-30 for t in thresholds), "the model should split next to zero"
    probe = rows(6, 64, 3, nan=0.0)
    probe[:, 0] = np.resize([-LIGHTGBM_ZERO, LIGHTGBM_ZERO, -1e-36, 1e-40, 0.0, -0.0, 2e-35], 64)
    assert_predicts_as_lightgbm(booster, probe)
    explainer = TreeExplainer.from_lightgbm(booster)
    contrib = booster.predict(probe, pred_contrib=True)
    np.testing.assert_allclose(explainer.shap_values(probe), contrib[:, :3], rtol=0, atol=1e-9)


def _splits(dump: dict[str, Any]) -> list[dict[str, Any]]:
    found, stack = [], [t["tree_structure"] for t in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            found.append(node)
            stack += [node["left_child"], node["right_child"]]
    return found


def test_a_model_of_one_constant_tree() -> None:
    X = rows(7, 200, 3)
    booster = train(X, np.full(len(X), 2.5), rounds=5, objective="regression")
    assert booster.num_trees() >= 1
    scorer = assert_predicts_as_lightgbm(booster, rows(8, 50, 3))
    assert not scorer.fused  # its tree is a single leaf: the kernel's pass does not see it


def test_models_whose_trees_all_split_are_scored_on_the_explainers_pass() -> None:
    X = rows(13, 500, 4)
    booster = train(X, (np.nan_to_num(X[:, 0]) > 0).astype(float), objective="binary")
    assert scorer_of(booster).fused


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "multiclass", "num_class": 3},
        {"objective": "poisson"},
        {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1},
    ],
    ids=["multiclass", "poisson", "random-forest"],
)
def test_objectives_not_covered_have_no_scorer(params: dict[str, Any]) -> None:
    X = rows(9, 600, 4, nan=0.0)
    y = np.abs(np.floor(X[:, 0] * 1.5)) % 3
    booster = train(X, y, rounds=5, **params)
    assert lightgbm_link(booster) is None
    class_index = 0 if params["objective"] == "multiclass" else None
    explainer = TreeExplainer.from_lightgbm(booster, class_index=class_index)
    assert TreeScorer.for_lightgbm(explainer, booster) is None


def test_a_scorer_does_not_agree_with_another_model() -> None:
    X = rows(10, 1000, 5)
    y = (np.nan_to_num(X[:, 0]) > 0).astype(float)
    one, other = train(X, y, objective="binary"), train(X, 1 - y, objective="binary")
    assert scorer_of(one).agrees(one.predict)
    assert not scorer_of(one).agrees(other.predict)
    assert not scorer_of(one).agrees(lambda m: np.zeros((len(m), 2)))  # two outputs


def test_probe_rows_cross_every_threshold() -> None:
    X = rows(11, 1000, 4)
    booster = train(X, (np.nan_to_num(X[:, 1]) > 0.2).astype(float), objective="binary")
    explainer = TreeExplainer.from_lightgbm(booster)
    probes = probe_rows(explainer)
    forest = explainer.forest
    inner = forest.is_leaf == 0
    for node in np.flatnonzero(inner):
        column, threshold = forest.feature[node], forest.threshold[node]
        seen = probes[:, column]
        assert (seen == threshold).any()
        assert (seen == np.nextafter(threshold, np.inf)).any()
    assert np.isnan(probes).any(axis=0).all()
    assert (bits(probe_rows(explainer)) == bits(probes)).all()  # reproducible


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem(), st.booleans())
def test_hypothesis_predictions(
    problem: tuple[np.ndarray, np.ndarray, dict[str, Any]], zero_as_missing: bool
) -> None:
    X, y, p = problem
    target = (y > np.median(y)).astype(float) if p["classify"] else y
    booster = train(
        X, target, p["rounds"], objective="binary" if p["classify"] else "regression",
        num_leaves=p["leaves"], zero_as_missing=zero_as_missing, min_data_in_leaf=2,
        min_data_in_bin=1,
    )  # fmt: skip
    probe = np.vstack([X, rows(int(abs(y[0]) * 1e6) % 1000, 50, X.shape[1], nan=0.2)])
    assert_predicts_as_lightgbm(booster, probe)
