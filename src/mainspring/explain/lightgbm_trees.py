"""LightGBM boosters read into a :class:`~mainspring.explain.forest.Forest`.

The structure comes from ``Booster.dump_model()`` (the trees of the best iteration when the booster
remembers one, as ``predict`` uses): ``split_feature``, ``threshold``, ``decision_type`` (``<=``
or categorical ``==`` with ``"a||b||c"`` going left), ``default_left``, ``missing_type``, leaf
values, and ``internal_count`` / ``leaf_count`` as the cover, as SHAP and LightGBM's own TreeSHAP
use them. The raw score is the sum of the trees, as ``predict(raw_score=True)`` and
``pred_contrib`` give it (the init score of ``boost_from_average`` is already in the first tree);
for random forests (``average_output``) that is the sum, which ``predict`` divides by the number
of trees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.explain.forest import (
    CAT,
    LE,
    MISSING_NAN,
    MISSING_NONE,
    MISSING_ZERO,
    Forest,
    TreeBuilder,
    build_forest,
)

_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


def model_names(booster: Any) -> tuple[str, ...] | None:
    """The booster's feature names, or None when they are LightGBM's generic ``Column_i``."""
    names = tuple(str(n) for n in booster.feature_name())
    return None if names == tuple(f"Column_{i}" for i in range(len(names))) else names


def read_lightgbm(
    booster: Any, columns: list[int], *, class_index: int | None
) -> tuple[Forest, float]:
    """The forest of one output of ``booster`` and its base offset (always 0 for LightGBM).

    ``columns[j]`` is the explainer's column of the model's feature ``j``.
    """
    dump: Mapping[str, Any] = booster.dump_model()
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    if per_iteration > 1 and class_index is None:
        raise InvalidInputError(
            f"the LightGBM model has {per_iteration} outputs (one per class): pass class_index "
            f"(0 to {per_iteration - 1}) to explain one of them",
            field="class_index",
        )
    index = class_index or 0
    if not 0 <= index < per_iteration:
        raise InvalidInputError(
            f"class_index {class_index} is out of range: the model has {per_iteration} output(s)",
            field="class_index",
        )
    infos = list(dump["tree_info"])
    chosen = [info for i, info in enumerate(infos) if i % per_iteration == index]
    trees = [_tree(info["tree_structure"], columns) for info in chosen]
    return build_forest(trees, len(columns)), 0.0


def _tree(root: Mapping[str, Any], columns: list[int]) -> TreeBuilder:
    tree = TreeBuilder()
    stack: list[tuple[Mapping[str, Any], int, str]] = [(root, -1, "")]
    while stack:
        node, parent, side = stack.pop()
        if "split_feature" in node:
            decision = node.get("decision_type", "<=")
            threshold = node["threshold"]
            if decision == "==":
                categories = tuple(int(c) for c in str(threshold).split("||"))
                me = tree.add(
                    feature=columns[int(node["split_feature"])],
                    kind=CAT,
                    categories=categories,
                    cover=float(node.get("internal_count", 0)),
                )
            elif decision == "<=":
                me = tree.add(
                    feature=columns[int(node["split_feature"])],
                    threshold=_threshold(float(threshold)),
                    kind=LE,
                    default_left=bool(node.get("default_left", True)),
                    missing=_MISSING.get(str(node.get("missing_type", "None")), MISSING_NONE),
                    cover=float(node.get("internal_count", 0)),
                )
            else:
                raise InvalidInputError(
                    f"the LightGBM model has a split of decision_type {decision!r}; only '<=' "
                    "and '==' (categorical) are known",
                    field="model",
                )
            stack.append((node["right_child"], me, "right"))
            stack.append((node["left_child"], me, "left"))
        else:
            if "leaf_coeff" in node:
                raise InvalidInputError(
                    "the LightGBM model has linear trees (linear_tree=true); TreeSHAP explains "
                    "constant leaves only: pass predict= and background= for the model-agnostic "
                    "explainer",
                    field="model",
                )
            me = tree.add(
                value=float(node["leaf_value"]),
                cover=float(node.get("leaf_count", 0)),
            )
        if parent >= 0:
            if side == "left":
                tree.left[parent] = me
            else:
                tree.right[parent] = me
    return tree


def _threshold(dumped: float) -> float:
    """A split threshold as LightGBM compares with it: its dump writes an infinite one (the
    last bin's bound, when a split sets only missing values apart) as +-1e300."""
    if dumped >= 1e300:
        return math.inf
    if dumped <= -1e300:
        return -math.inf
    return dumped
