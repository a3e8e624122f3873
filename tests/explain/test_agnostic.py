"""The model-agnostic explainer: additive on any predict function, and how explainer_for picks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from mainspring.errors import InvalidInputError
from mainspring.explain import AgnosticExplainer, explainer_for, global_importance


def test_exact_is_additive_on_a_classifier_margin() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    names = ["a", "b", "c", "d"]
    explainer = explainer_for(model, names, predict=model.decision_function, background=X[:40])
    assert isinstance(explainer, AgnosticExplainer) and explainer.method == "exact"
    values = explainer.shap_values(X[:25])
    np.testing.assert_allclose(
        values.sum(axis=1) + explainer.expected_value,
        model.decision_function(X[:25]),
        atol=1e-9,
    )
    # a linear model's SHAP values under independent masking: coef * (x - mean(background))
    expected = model.coef_[0] * (X[:25] - X[:40].mean(axis=0))
    np.testing.assert_allclose(values, expected, atol=1e-9)
    np.testing.assert_allclose(explainer.explain_row(X[3]), values[3], atol=1e-12)
    importance = global_importance(explainer, X[:25])
    assert list(importance)[:2] == ["a", "c"] or list(importance)[:2] == ["c", "a"]


def test_permutation_beyond_exact_is_additive() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 12))
    y = X[:, 0] * X[:, 1] + X[:, 5]
    model = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    explainer = AgnosticExplainer(model.predict, X[:20], [f"x{i}" for i in range(12)])
    assert explainer.method == "permutation"
    values = explainer.shap_values(X[:5])
    np.testing.assert_allclose(
        values.sum(axis=1) + explainer.expected_value, model.predict(X[:5]), atol=1e-9
    )


def test_refusals_name_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        explainer_for(object(), ["a"])
    assert info.value.field == "predict"
    with pytest.raises(InvalidInputError) as info:
        explainer_for(object(), ["a"], predict=lambda X: X[:, 0])
    assert info.value.field == "background"
    with pytest.raises(InvalidInputError) as info:
        AgnosticExplainer(lambda X: X, np.zeros((3, 2)), ["a", "b"])
    assert info.value.field == "predict"
    with pytest.raises(InvalidInputError) as info:
        AgnosticExplainer(lambda X: X[:, 0], np.zeros((0, 2)), ["a", "b"])
    assert info.value.field == "background"
    with pytest.raises(InvalidInputError) as info:
        AgnosticExplainer(lambda X: X[:, 0], np.zeros((3, 2)), ["a", "a"])
    assert info.value.field == "feature_names"


def test_threads_share_one_explainer_safely() -> None:
    """Threads explaining at once (as the decision service does) get the values of one at a time.

    SHAP's tabular masker reuses one buffer across calls, which the explainer's lock guards; this
    run did not fail without the lock either, so it checks the behaviour, not the race."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 5))
    weights = rng.normal(size=5)

    def predict(rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.tanh(rows @ weights)
        return out

    explainer = AgnosticExplainer(predict, X[:100], list("abcde"))
    rows = X[100:160]
    alone = [explainer.explain_row(row) for row in rows]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(explainer.explain_row, rows))
    for expected, got in zip(alone, together, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-12)
