"""The explainer interface: per-row feature attributions that add up to the model's raw score.

An :class:`Explainer` answers "how much did each feature move this score away from the average?".
For every row ``x``, ``explain_row(x).sum() + expected_value`` equals the model's output in the
space it explains (the raw margin of a boosted-tree classifier, before the sigmoid), so the
attributions can be logged with a decision and checked later.

Implementations: :class:`~mainspring.explain.treeshap.TreeExplainer` (exact TreeSHAP for LightGBM
and XGBoost, compiled) and :class:`~mainspring.explain.agnostic.AgnosticExplainer` (SHAP's
model-agnostic explainers over a ``predict`` function and a background sample).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError

Matrix = npt.NDArray[np.float64]


class Explainer(abc.ABC):
    """Feature attributions for one model output.

    ``feature_names`` is the column order of every input; ``expected_value`` the base value the
    attributions start from (in raw-score space). ``shap_values`` explains a batch, ``explain_row``
    one row (the decision service's path, called once per decision) and ``warm`` does any
    compilation or first-call work up front so the first decision does not pay for it.
    """

    feature_names: tuple[str, ...]
    expected_value: float

    @abc.abstractmethod
    def shap_values(self, X: Matrix) -> Matrix:
        """Attributions for the rows of ``X`` (shape ``(n, f)``), shape ``(n, f)``."""

    @abc.abstractmethod
    def explain_row(self, x: Matrix) -> Matrix:
        """Attributions for one row ``x`` (shape ``(f,)``), shape ``(f,)``."""

    def warm(self) -> None:  # noqa: B027 - optional hook, a no-op unless there is work to do
        """Do one-off work (compilation, a first call) now rather than on the first request."""

    def _matrix(self, X: Any) -> Matrix:
        """``X`` as a C-contiguous float64 matrix with one column per feature, or a clear error."""
        array = np.ascontiguousarray(X, dtype=np.float64)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(self.feature_names):
            raise InvalidInputError(
                f"input has shape {np.shape(X)}; the explainer needs rows of "
                f"{len(self.feature_names)} features ({', '.join(self.feature_names)})",
                field="X",
            )
        return array

    def _row(self, x: Any) -> Matrix:
        """``x`` as a single row of shape ``(1, f)``, or a clear error."""
        array = np.ascontiguousarray(x, dtype=np.float64)
        if array.shape != (len(self.feature_names),):
            raise InvalidInputError(
                f"row has shape {np.shape(x)}; the explainer needs {len(self.feature_names)} "
                f"values ({', '.join(self.feature_names)})",
                field="x",
            )
        return array.reshape(1, -1)
