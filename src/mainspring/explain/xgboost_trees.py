"""XGBoost boosters read into a :class:`~mainspring.explain.forest.Forest`.

The structure comes from the JSON model (``Booster.save_raw("json")``): ``split_indices``,
``split_conditions`` (``x < condition`` goes left; at a leaf it holds the leaf value),
``default_left`` (where NaN goes), and ``sum_hessian`` as the cover, as SHAP uses it. XGBoost
compares in single precision, so the explainer rounds inputs to float32 first. The raw score
(``output_margin=True``) is the sum of the trees plus ``base_score`` taken to margin space by the
objective's link (logit for logistic objectives, log for Poisson, Gamma and Tweedie). Trees past a
remembered ``best_iteration`` are left out, as the registry's XGBoost flavor predicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mainspring.errors import InvalidInputError
from mainspring.explain.forest import LT, MISSING_NAN, Forest, TreeBuilder, build_forest

_LOGIT = frozenset({"binary:logistic", "binary:logitraw", "reg:logistic"})
_LOG = frozenset({"count:poisson", "reg:gamma", "reg:tweedie"})
_IDENTITY_PREFIXES = ("reg:squared", "reg:absolute", "reg:pseudohuber", "reg:quantile", "multi:")
_IDENTITY = frozenset({"binary:hinge", "reg:linear"})


def model_names(booster: Any) -> tuple[str, ...] | None:
    """The booster's feature names, or None when it was trained on a bare array."""
    names = booster.feature_names
    return tuple(str(n) for n in names) if names else None


def read_xgboost(
    booster: Any, columns: list[int], *, class_index: int | None
) -> tuple[Forest, float]:
    """The forest of one output of ``booster`` and its base offset in margin space."""
    model = json.loads(bytes(booster.save_raw("json")))["learner"]
    params = model["learner_model_param"]
    objective = str(model["objective"]["name"])
    gbm = model["gradient_booster"]
    if gbm["name"] != "gbtree":
        raise InvalidInputError(
            f"the XGBoost booster is {gbm['name']!r}; TreeSHAP explains 'gbtree' boosters: pass "
            "predict= and background= for the model-agnostic explainer",
            field="model",
        )
    n_outputs = max(int(params.get("num_class", "0") or 0), int(params.get("num_target", "1") or 1))
    if n_outputs > 1 and class_index is None:
        raise InvalidInputError(
            f"the XGBoost model has {n_outputs} outputs: pass class_index (0 to "
            f"{n_outputs - 1}) to explain one of them",
            field="class_index",
        )
    index = class_index or 0
    if not 0 <= index < n_outputs:
        raise InvalidInputError(
            f"class_index {class_index} is out of range: the model has {n_outputs} output(s)",
            field="class_index",
        )
    trees_json = gbm["model"]["trees"]
    tree_info = gbm["model"].get("tree_info") or [0] * len(trees_json)
    best = booster.attributes().get("best_iteration")
    n_trees = len(trees_json)
    if best is not None and best.isdigit():
        parallel = int(gbm["model"].get("gbtree_model_param", {}).get("num_parallel_tree", 1))
        n_trees = min(n_trees, (int(best) + 1) * n_outputs * max(1, parallel))
    trees = [
        _tree(trees_json[i], columns)
        for i in range(n_trees)
        if int(tree_info[i]) == index or n_outputs == 1
    ]
    return build_forest(trees, len(columns)), _base_margin(params, objective, index)


def _base_margin(params: Mapping[str, Any], objective: str, index: int) -> float:
    raw = str(params.get("base_score", "0.5")).strip().strip("[]")
    scores = [float(s) for s in raw.split(",") if s.strip()] or [0.5]
    score = scores[index] if len(scores) > index else scores[0]
    if objective in _LOGIT:
        return -math.log(1.0 / score - 1.0)
    if objective in _LOG:
        return math.log(score)
    if objective in _IDENTITY or objective.startswith(_IDENTITY_PREFIXES):
        return score
    raise InvalidInputError(
        f"the XGBoost objective {objective!r} has no known margin for its base_score; pass "
        "predict= and background= for the model-agnostic explainer",
        field="model",
    )


def _tree(tree: Mapping[str, Any], columns: list[int]) -> TreeBuilder:
    size = int(tree["tree_param"].get("size_leaf_vector", "1") or 1)
    if size > 1:
        raise InvalidInputError(
            "the XGBoost model has multi-output trees (multi_strategy='multi_output_tree'); "
            "TreeSHAP explains one output per tree",
            field="model",
        )
    if any(int(t) != 0 for t in tree.get("split_type", [])):
        raise InvalidInputError(
            "the XGBoost model has categorical splits (enable_categorical=True), which the tree "
            "explainer does not read: pass predict= and background= for the model-agnostic "
            "explainer",
            field="model",
        )
    out = TreeBuilder()
    lefts, rights = tree["left_children"], tree["right_children"]
    # JSON holds XGBoost's float32 numbers in their shortest form: round them back to float32
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32).astype(np.float64)
    covers = np.asarray(tree["sum_hessian"], dtype=np.float32).astype(np.float64)
    for node in range(len(lefts)):
        leaf = int(lefts[node]) < 0
        out.add(
            left=int(lefts[node]),
            right=int(rights[node]),
            feature=-1 if leaf else columns[int(tree["split_indices"][node])],
            threshold=float(conditions[node]),
            kind=LT,
            default_left=bool(int(tree["default_left"][node])),
            missing=MISSING_NAN,
            value=float(conditions[node]) if leaf else 0.0,
            cover=float(covers[node]),
        )
    return out
