"""Model-agnostic explanations for any flavor: SHAP's explainers over a ``predict`` function.

For models without a tree structure to read (scikit-learn, ONNX, ...), :class:`AgnosticExplainer`
asks SHAP to explain ``predict`` (one score per row, in the space you want explained) against a
background sample with independent masking: ``shap.explainers.Exact`` when there are at most
``exact_up_to`` features (it evaluates every coalition, ``2**f`` of them), else
``shap.explainers.Permutation`` with antithetic permutations. Both are additive:
``values.sum() + expected_value == predict(x)``. Keep the background small (SHAP's guidance: about
100 rows): every row explained costs ``len(background)`` predictions per coalition.

SHAP's maskers fill one reused buffer, so calls on one explainer are serialised by a lock: the
decision service may explain from several threads at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.explain.base import Explainer, Matrix

Predict = Callable[[Matrix], Any]


class AgnosticExplainer(Explainer):
    """SHAP values of ``predict`` against ``background`` (rows in ``feature_names`` order)."""

    def __init__(
        self,
        predict: Predict,
        background: Matrix,
        feature_names: Sequence[str],
        *,
        exact_up_to: int = 10,
        max_evals: int | None = None,
        seed: int = 0,
    ) -> None:
        self.feature_names = tuple(feature_names)
        if len(set(self.feature_names)) != len(self.feature_names):
            raise InvalidInputError("feature names must be unique", field="feature_names")
        data = self._matrix(background)
        if len(data) == 0:
            raise InvalidInputError("the background sample has no rows", field="background")
        self._predict = predict
        self.background = data
        self._lock = threading.Lock()  # the masker writes into one shared buffer per call
        try:
            import shap
        except ImportError as exc:
            raise MissingDependencyError(
                "shap", extra="explain", purpose="model-agnostic explanations"
            ) from exc
        masker = shap.maskers.Independent(data, max_samples=len(data))
        n = len(self.feature_names)
        self.method = "exact" if n <= exact_up_to else "permutation"
        self._call_kwargs: dict[str, Any] = {"silent": True}
        if self.method == "exact":
            self._shap = shap.explainers.Exact(self._score, masker)
        else:
            self._shap = shap.explainers.Permutation(self._score, masker, seed=seed)
            self._call_kwargs["max_evals"] = max_evals or max(500, 2 * n + 1)
        self.expected_value = float(np.mean(self._score(data)))

    def _score(self, X: Matrix) -> Matrix:
        scores = np.asarray(self._predict(np.asarray(X, dtype=np.float64)), dtype=np.float64)
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.shape != (len(X),):
            raise InvalidInputError(
                f"predict returned shape {scores.shape} for {len(X)} rows; it must return one "
                "score per row",
                field="predict",
            )
        return scores

    def shap_values(self, X: Matrix) -> Matrix:
        rows = self._matrix(X)
        if len(rows) == 0:
            return np.zeros_like(rows)
        with self._lock:
            explanation = self._shap(rows, **self._call_kwargs)
        return np.asarray(explanation.values, dtype=np.float64).reshape(rows.shape)

    def explain_row(self, x: Matrix) -> Matrix:
        values: Matrix = self.shap_values(self._row(x))[0]
        return values

    def warm(self) -> None:
        """Explain the first background row once (imports and first-call work)."""
        self.shap_values(self.background[:1])
