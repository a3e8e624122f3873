"""Explanations: exact TreeSHAP for boosted trees, SHAP's agnostic explainers, reason codes.

``explainer_for(native, feature_names)`` picks the explainer for a model object: the compiled
exact TreeSHAP for LightGBM and XGBoost boosters (or their scikit-learn wrappers), else SHAP's
model-agnostic explainers when given a ``predict`` function and a ``background`` sample. Every
explainer answers per row in raw-score space, and ``values.sum() + expected_value`` is the model's
raw output. :class:`ReasonCodes` turns attributions into reasons a person can read;
:func:`global_importance` summarises a model version.

Nothing here imports numba or SHAP until an explainer is built (``pip install
'mainspring[explain]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.explain.agnostic import AgnosticExplainer, Predict
from mainspring.explain.base import Explainer, Matrix
from mainspring.explain.importance import global_importance
from mainspring.explain.reasons import ReasonCodes, ReasonText
from mainspring.explain.treeshap import TreeExplainer

__all__ = [
    "AgnosticExplainer",
    "Explainer",
    "ReasonCodes",
    "ReasonText",
    "TreeExplainer",
    "explainer_for",
    "global_importance",
]


def explainer_for(
    native: Any,
    feature_names: Sequence[str],
    *,
    predict: Predict | None = None,
    background: Matrix | None = None,
    class_index: int | None = None,
) -> Explainer:
    """The explainer for ``native``, a model library's own object.

    LightGBM (``Booster``, or an ``LGBMModel`` by its ``booster_``) and XGBoost (``Booster``, or an
    ``XGBModel`` by ``get_booster()``) get exact TreeSHAP on their raw score; ``class_index``
    picks one class of a multi-class model. Anything else (scikit-learn, ONNX...) needs
    ``predict`` (rows in ``feature_names`` order to one score each) and ``background`` (a sample
    of such rows) for :class:`AgnosticExplainer`.
    """
    library = _library(native)
    if library == "lightgbm":
        return TreeExplainer.from_lightgbm(native, feature_names, class_index=class_index)
    if library == "xgboost":
        return TreeExplainer.from_xgboost(native, feature_names, class_index=class_index)
    if predict is None or background is None:
        raise InvalidInputError(
            f"no tree explainer reads a {type(native).__name__}: pass predict= (rows to one "
            "score each) and background= (a sample of rows) for the model-agnostic explainer",
            field="predict" if predict is None else "background",
        )
    return AgnosticExplainer(predict, background, feature_names)


def _library(native: Any) -> str | None:
    for cls in type(native).__mro__:
        module = cls.__module__
        if module.startswith("lightgbm.") and cls.__name__ in ("Booster", "LGBMModel"):
            return "lightgbm"
        if module.startswith("xgboost.") and cls.__name__ in ("Booster", "XGBModel"):
            return "xgboost"
    return None
