"""Exact TreeSHAP: attributions add up to the libraries' raw scores and equal SHAP's values.

Reference values come from ``shap.TreeExplainer`` and LightGBM's ``pred_contrib`` (path-dependent
TreeSHAP in double precision), checked at 1e-6 absolute. XGBoost computes its margin in single
precision and shap returns XGBoost's values as float32, so XGBoost checks allow float32's relative
rounding on top (``rtol=1e-6``; the margin sum ``atol=1e-5``).
"""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.explain import TreeExplainer, explainer_for

TOL = 1e-6


def shap_reference(model: Any, X: np.ndarray) -> tuple[np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's own deprecation chatter
        import shap

        explainer = shap.TreeExplainer(model)
        values = np.asarray(explainer.shap_values(X))
    return values, float(np.ravel(explainer.expected_value)[0])


def data(seed: int, n: int = 400, f: int = 6, nan: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    y = (X[:, 0] + X[:, 1] * X[:, 2] - 0.5 * X[:, 3] + rng.normal(scale=0.5, size=n) > 0).astype(
        float
    )
    X[rng.random(size=X.shape) < nan] = np.nan
    return X, y


def lgb_train(X: np.ndarray, y: np.ndarray, **params: Any) -> lgb.Booster:
    base = {"objective": "binary", "num_leaves": 15, "verbose": -1, "min_data_in_leaf": 5}
    rounds = params.pop("rounds", 30)
    dataset = params.pop("dataset", {})
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **dataset), rounds)


def check_lightgbm(booster: lgb.Booster, X: np.ndarray, **kwargs: Any) -> TreeExplainer:
    explainer = TreeExplainer.from_lightgbm(booster, **kwargs)
    values = explainer.shap_values(X)
    raw = booster.predict(X, raw_score=True)
    if raw.ndim == 2:
        raw = raw[:, kwargs["class_index"]]
    np.testing.assert_allclose(values.sum(axis=1) + explainer.expected_value, raw, rtol=0, atol=TOL)
    contrib = booster.predict(X, pred_contrib=True)
    f = X.shape[1]
    if "class_index" in kwargs:
        contrib = contrib[
            :, kwargs["class_index"] * (f + 1) : (kwargs["class_index"] + 1) * (f + 1)
        ]
    np.testing.assert_allclose(values, contrib[:, :f], rtol=0, atol=TOL)
    np.testing.assert_allclose(explainer.expected_value, contrib[0, f], rtol=0, atol=TOL)
    return explainer


def test_lightgbm_binary_with_nan_matches_shap_and_raw_score() -> None:
    X, y = data(0)
    booster = lgb_train(X, y)
    explainer = check_lightgbm(booster, X)
    values, expected = shap_reference(booster, X)
    np.testing.assert_allclose(explainer.shap_values(X), values, rtol=0, atol=TOL)
    assert explainer.expected_value == pytest.approx(expected, abs=TOL)
    for row in X[:20]:
        np.testing.assert_allclose(
            explainer.explain_row(row), explainer.shap_values(row[None])[0], rtol=0, atol=1e-12
        )


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "regression"},
        {"zero_as_missing": True},  # missing_type Zero
        {"use_missing": False},  # missing_type None: NaN is read as 0
        {"objective": "regression", "boosting": "rf", "bagging_freq": 1, "bagging_fraction": 0.7},
        {"boosting": "dart", "rounds": 15},
        {"max_depth": 3, "num_leaves": 8, "rounds": 60},
    ],
    ids=["regression", "zero-as-missing", "no-missing", "random-forest", "dart", "shallow"],
)
def test_lightgbm_variants(params: dict[str, Any]) -> None:
    X, y = data(1)
    X[::7, 2] = 0.0  # exact zeros for zero_as_missing
    if params.get("objective") == "regression":
        y = y + X[:, 0].clip(-1, 1)
        y = np.nan_to_num(y)
    check_lightgbm(lgb_train(X, y, **params), X)


def test_lightgbm_categorical_splits() -> None:
    rng = np.random.default_rng(2)
    n = 600
    X = np.column_stack([rng.integers(0, 12, n), rng.normal(size=n), rng.integers(0, 5, n)])
    y = (np.isin(X[:, 0], [1, 3, 7, 8]) ^ (X[:, 1] > 0.3)).astype(float)
    X = X.astype(float)
    booster = lgb_train(
        X, y, dataset={"categorical_feature": [0, 2]}, cat_smooth=1, min_data_per_group=5
    )
    assert '"decision_type": "=="' in str(booster.dump_model()).replace("'", '"')
    # unseen categories, negatives (-0.5 truncates to category 0), NaN
    X_test = X[:200].copy()
    X_test[:10, 0] = 40
    X_test[10:20, 0] = -3
    X_test[20:30, 0] = -0.5
    X_test[30:40, 0] = np.nan
    X_test[40:45, 2] = np.nan
    check_lightgbm(booster, X_test)


def test_lightgbm_multiclass_needs_a_class_and_explains_each() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 7},
        lgb.Dataset(X, y),
        10,
    )
    with pytest.raises(InvalidInputError) as info:
        TreeExplainer.from_lightgbm(booster)
    assert info.value.field == "class_index"
    for k in range(3):
        check_lightgbm(booster, X[:50], class_index=k)
    with pytest.raises(InvalidInputError):
        TreeExplainer.from_lightgbm(booster, class_index=3)


def test_sklearn_wrappers_and_named_features_in_another_order() -> None:
    pd = pytest.importorskip("pandas")
    X, y = data(4, f=4)
    names = ["income", "age", "debt_ratio", "tenure"]
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(
        pd.DataFrame(X, columns=names), y
    )
    same = explainer_for(model, names)
    assert same.feature_names == tuple(names)
    shuffled = ["tenure", "debt_ratio", "income", "age"]
    other = explainer_for(model, shuffled)
    order = [names.index(n) for n in shuffled]
    np.testing.assert_allclose(
        other.shap_values(X[:, order]), same.shap_values(X)[:, order], rtol=0, atol=1e-12
    )
    with pytest.raises(InvalidInputError) as info:
        explainer_for(model, ["a", "b", "c", "d"])
    assert info.value.field == "feature_names"
    with pytest.raises(InvalidInputError):
        explainer_for(model, names[:3])


def xgb_train(X: np.ndarray, y: np.ndarray, rounds: int = 30, **params: Any) -> xgb.Booster:
    base = {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3}
    return xgb.train({**base, **params}, xgb.DMatrix(X, y), rounds)


def check_xgboost(booster: xgb.Booster, X: np.ndarray, class_index: int | None = None) -> None:
    explainer = TreeExplainer.from_xgboost(booster, class_index=class_index)
    values = explainer.shap_values(X)
    margin = booster.predict(xgb.DMatrix(X), output_margin=True).astype(np.float64)
    if margin.ndim == 2:
        margin = margin[:, class_index]
    # XGBoost adds its trees in float32
    np.testing.assert_allclose(
        values.sum(axis=1) + explainer.expected_value, margin, rtol=1e-6, atol=1e-5
    )
    reference, _ = shap_reference(booster, X)
    if reference.ndim == 3:
        reference = reference[:, :, class_index]
    # shap returns XGBoost's values in float32: 1e-6 absolute plus float32's relative rounding
    np.testing.assert_allclose(values, reference, rtol=1e-6, atol=TOL)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"objective": "reg:squarederror"},
        {"objective": "count:poisson"},
        {"max_depth": 8, "min_child_weight": 0.1},
        {"subsample": 0.8, "colsample_bynode": 0.7, "base_score": 0.3},
    ],
    ids=["binary", "regression", "poisson", "deep", "sampled"],
)
def test_xgboost(params: dict[str, Any]) -> None:
    X, y = data(5)
    if params.get("objective") == "count:poisson":
        y = y * 3 + 1
    check_xgboost(xgb_train(X, y, **params), X)


def test_xgboost_multiclass_and_sklearn_wrapper() -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + X[:, 1], [-0.5, 0.5])
    booster = xgb_train(X, y, 10, objective="multi:softprob", num_class=3)
    with pytest.raises(InvalidInputError) as info:
        TreeExplainer.from_xgboost(booster)
    assert info.value.field == "class_index"
    for k in range(3):
        check_xgboost(booster, X[:50], class_index=k)
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3).fit(X, (y > 0).astype(int))
    explainer = explainer_for(model, ["a", "b", "c", "d"])
    margin = model.get_booster().predict(xgb.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(
        explainer.shap_values(X).sum(axis=1) + explainer.expected_value, margin, atol=1e-5
    )


def test_bad_input_is_refused_with_the_field() -> None:
    X, y = data(7, f=4)
    X = X[:, :3]
    explainer = TreeExplainer.from_lightgbm(lgb_train(X, y, rounds=3))
    with pytest.raises(InvalidInputError) as info:
        explainer.explain_row(np.zeros(4))
    assert info.value.field == "x"
    with pytest.raises(InvalidInputError) as info:
        explainer.shap_values(np.zeros((2, 2)))
    assert info.value.field == "X"
    assert explainer.shap_values(np.zeros((0, 3))).shape == (0, 3)


@st.composite
def small_problem(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(20, 120))
    f = draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    # few distinct values make ties with thresholds likely
    X = (
        rng.integers(-3, 4, size=(n, f)).astype(float)
        if draw(st.booleans())
        else rng.normal(size=(n, f))
    )
    X[rng.random(size=X.shape) < draw(st.sampled_from([0.0, 0.1, 0.4]))] = np.nan
    y = rng.normal(size=n) + np.nan_to_num(X[:, 0])
    params = {
        "rounds": draw(st.integers(1, 8)),
        "leaves": draw(st.integers(2, 12)),
        "classify": draw(st.booleans()),
    }
    return X, y, params


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem())
def test_hypothesis_lightgbm(problem: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> None:
    X, y, p = problem
    target = (y > np.median(y)).astype(float) if p["classify"] else y
    booster = lgb.train(
        {
            "objective": "binary" if p["classify"] else "regression",
            "num_leaves": p["leaves"],
            "min_data_in_leaf": 2,
            "min_data_in_bin": 1,
            "verbose": -1,
        },
        lgb.Dataset(X, target),
        p["rounds"],
    )
    check_lightgbm(booster, X)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem())
def test_hypothesis_xgboost(problem: tuple[np.ndarray, np.ndarray, dict[str, Any]]) -> None:
    X, y, p = problem
    target = (y > np.median(y)).astype(float) if p["classify"] else y
    booster = xgb_train(
        X,
        target,
        p["rounds"],
        objective="binary:logistic" if p["classify"] else "reg:squarederror",
        max_depth=max(1, p["leaves"] // 2),
        min_child_weight=0,
    )
    check_xgboost(booster, X)


def test_models_without_constant_trees_are_refused_with_a_way_out() -> None:
    X, y = data(8, f=4, nan=0.0)
    linear = lgb_train(X, y, linear_tree=True, rounds=3)
    with pytest.raises(InvalidInputError, match="predict= and background="):
        TreeExplainer.from_lightgbm(linear)
    gblinear = xgb.train({"booster": "gblinear", "objective": "binary:logistic"}, xgb.DMatrix(X, y))
    with pytest.raises(InvalidInputError, match="gbtree"):
        TreeExplainer.from_xgboost(gblinear)


def test_tables_take_the_narrowest_integers_that_hold_them() -> None:
    from mainspring.explain.layout import _narrowest

    X, y = data(12, n=3000, f=6)
    small = TreeExplainer.from_lightgbm(lgb_train(X, y, rounds=5))
    assert small.layout.inner_ints.dtype == small.layout.leaf_ints.dtype == np.int8
    big = check_lightgbm(lgb_train(X, y, num_leaves=300, min_data_in_leaf=2, rounds=3), X[:300])
    assert big.layout.inner_ints.dtype == big.layout.leaf_ints.dtype == np.int16
    assert [_narrowest(n) for n in (0, 127, 128, 32767, 32768)] == [
        np.int8, np.int8, np.int16, np.int16, np.int32
    ]  # fmt: skip
