"""The compiled kernel's pieces: its vector type, its layout of the trees, and its edge cases.

Exactness on real models is tested in test_treeshap.py; here are the parts that test cannot see:
the four-lane arithmetic against numpy, trees deep enough to need 16 Gauss points, models whose
trees are all single leaves, and rows explained bit for bit the same alone or in any batch.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numba
import numpy as np
import pytest

from mainspring.explain import TreeExplainer
from mainspring.explain._vectors import get, load4, splat, store4
from mainspring.explain.layout import LANES, POINTS, lay_out


@numba.njit
def _lanes(a: Any, b: Any, out: Any, x: float, i: int) -> None:
    u = load4(a, i)
    v = load4(b, i)
    store4(out, 0, u + v)
    store4(out, 4, u - v)
    store4(out, 8, u * v)
    store4(out, 12, x * u + v * 2 - splat(get(a, i)))


def test_four_lanes_round_as_numpy_does() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=9), rng.normal(size=9)
    out = np.zeros(16)
    _lanes(a, b, out, 0.3, 5)
    u, v = a[5:9], b[5:9]
    expected = np.concatenate([u + v, u - v, u * v, 0.3 * u + v * 2.0 - a[5]])
    assert out.tobytes() == expected.tobytes()  # the same IEEE operations, bit for bit


def test_only_float64_arrays_give_lanes() -> None:
    @numba.njit
    def wrong(a: Any) -> Any:
        return load4(a, 0)

    with pytest.raises(numba.TypingError, match="float64"):
        wrong(np.zeros(4, dtype=np.int64))


def _deep_model() -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(1200, 30))
    # each feature matters only while all the ones before it are above -1: long paths
    y = np.cumprod(X > -1.0, axis=1).sum(axis=1) + 0.1 * rng.normal(size=len(X))
    params = {
        "objective": "regression",
        "num_leaves": 120,
        "min_data_in_leaf": 1,
        "min_data_in_bin": 1,
        "learning_rate": 0.5,
        "verbose": -1,
    }
    return lgb.train(params, lgb.Dataset(X, y), 2), X[:100]


def test_trees_that_need_more_than_eight_points() -> None:
    booster, X = _deep_model()
    explainer = TreeExplainer.from_lightgbm(booster)
    layout = lay_out(explainer.forest)
    assert explainer.forest.tree_points.max() > 8
    assert layout.max_points >= 16
    # each tree gets the smallest of 4, 8, 16... points that is enough
    needed = explainer.forest.tree_points
    for given, q in zip(layout.trees[:-1, POINTS], needed, strict=True):
        assert given >= q and given % LANES == 0 and (given == LANES or given // 2 < q)
    values = explainer.shap_values(X)
    contrib = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(values, contrib[:, :-1], rtol=0, atol=1e-6)
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(values.sum(axis=1) + explainer.expected_value, raw, atol=1e-9)


def test_a_model_of_single_leaves_attributes_nothing() -> None:
    X = np.random.default_rng(2).normal(size=(50, 3))
    booster = lgb.train(
        {"objective": "regression", "verbose": -1}, lgb.Dataset(X, np.full(50, 2.5)), 3
    )
    explainer = TreeExplainer.from_lightgbm(booster)
    assert lay_out(explainer.forest).n_trees == 0
    assert not explainer.shap_values(X).any()
    assert explainer.expected_value == pytest.approx(booster.predict(X[:1])[0])


def test_a_row_gets_the_same_bits_alone_and_in_any_batch() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5))
    X[rng.random(size=X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=300) > 0).astype(float)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1}, lgb.Dataset(X, y), 20
    )
    explainer = TreeExplainer.from_lightgbm(booster)
    batch = explainer.shap_values(X)
    reversed_batch = explainer.shap_values(X[::-1])[::-1]
    for i in range(0, 300, 7):
        alone = explainer.explain_row(X[i])
        assert alone.tobytes() == batch[i].tobytes() == reversed_batch[i].tobytes()
