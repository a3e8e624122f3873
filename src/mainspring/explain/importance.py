"""Global feature importance: the mean absolute SHAP value of each feature over a sample.

Stored with a model version, it says which features the model leans on overall, in the same units
as the per-decision attributions (raw-score space).
"""

from __future__ import annotations

import numpy as np

from mainspring.errors import InvalidInputError
from mainspring.explain.base import Explainer, Matrix


def global_importance(explainer: Explainer, X: Matrix) -> dict[str, float]:
    """Mean ``|SHAP value|`` per feature over the rows of ``X``, largest first.

    Ties keep the model's feature order.
    """
    values = explainer.shap_values(X)
    if len(values) == 0:
        raise InvalidInputError("global importance needs at least one row", field="X")
    means = np.abs(values).mean(axis=0)
    order = np.argsort(-means, kind="stable")
    return {explainer.feature_names[i]: float(means[i]) for i in order}
