"""A LightGBM model's prediction of one row, computed from its explainer's tables.

In a decision the model predicts a row and TreeSHAP then explains the same row. On its own,
LightGBM predicts one row in about 5 us (its single-row C API), but it walks 200 trees whose nodes
lie across the heap: in the middle of a decision, between the feature read and the explainer
streaming its 0.76 MB of tables, the same call took 50-70 us, nearly all of it waiting for memory.
The explainer's tables already hold every split and leaf of the model, compactly: the TreeSHAP
kernel, which decides every split for the row anyway, adds up the leaves the row reaches on the
same pass (:meth:`TreeScorer.predict_and_explain_row`); the kernel's ``tree_sum`` walks the
tables alone when a model has single-leaf trees (the tables leave them out).

Bit for bit: LightGBM's raw score of a row is the sum of its trees' outputs, added in tree order
in double precision from 0.0 (the init score of ``boost_from_average`` is in the first tree); a
split compares in double precision, by the rules the TreeSHAP kernel already follows; and the
objectives covered here turn the raw score into the prediction with one double-precision
expression: ``1 / (1 + exp(-sigmoid * raw))`` for ``binary`` and ``cross_entropy`` (sigmoid 1),
the raw score itself for regression and ranking objectives. Multi-class models (softmax), the
exponential objectives (``poisson``, ``gamma``, ``tweedie``), random forests (their trees are
averaged) and anything else get no scorer and keep predicting through LightGBM. Even so, a scorer
is only used once it has agreed with the model's own predictions bit for bit on probe rows made
to land on, just below and just above every threshold of the model, and on missing values
(:meth:`TreeScorer.agrees`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.explain.forest import CAT, LE
from mainspring.explain.layout import (
    INNER_INTS,
    INNER_START,
    IS_LEFT,
    LEAF_INTS,
    LEAF_START,
    PARENT,
)
from mainspring.explain.treeshap import TreeExplainer

Matrix = npt.NDArray[np.float64]
Link = Callable[[float], float]

#: LightGBM objectives whose prediction is the raw score
_IDENTITY = frozenset(
    {"regression", "regression_l1", "huber", "fair", "quantile", "mape", "lambdarank",
     "rank_xendcg"}
)  # fmt: skip


def _identity(raw: float) -> float:
    return raw


def lightgbm_link(booster: Any) -> Link | None:
    """How ``booster`` turns its raw score into its prediction, when it is one covered here
    (see the module docstring); else None."""
    header = booster.dump_model(num_iteration=1)  # one tree: only the header is wanted
    if header.get("average_output") or int(header.get("num_tree_per_iteration", 1)) != 1:
        return None
    name, *options = str(header.get("objective", "")).split()
    if name in _IDENTITY:
        return _identity
    if name in ("binary", "cross_entropy", "xentropy"):
        sigmoid = 1.0
        for option in options:
            key, _, value = option.partition(":")
            if key == "sigmoid":
                sigmoid = float(value)
        scale = -sigmoid

        def logistic(raw: float) -> float:
            return 1.0 / (1.0 + math.exp(scale * raw))

        return logistic
    return None


class TreeScorer:
    """Predicts one row as the model whose trees ``explainer`` holds does, with ``link`` (from
    :func:`lightgbm_link`) applied to the raw score."""

    def __init__(self, explainer: TreeExplainer, link: Link) -> None:
        from mainspring.explain._kernel import tree_sum  # numba: the explain extra

        self._kernel = tree_sum
        self._explainer = explainer
        self._link = link
        forest, layout = explainer.forest, explainer.layout
        self._inner_ints = layout.inner_ints
        self._inner_floats = layout.inner_floats
        self._leaf_floats = layout.leaf_floats
        self._categories = forest.categories
        # the layout keeps the trees with a split; the single leaves keep their place here
        sizes = np.diff(forest.tree_start)
        split = sizes > 1
        #: whether the explainer's own pass gives the raw score (every tree has a split)
        self.fused = bool(split.all())
        self._roots = np.full(forest.n_trees, -1, dtype=np.int64)
        self._roots[split] = layout.trees[:-1, INNER_START]
        self._constants = np.where(split, 0.0, forest.value[forest.tree_start[:-1]])
        self._children = _children(layout.trees, layout.inner_ints, layout.leaf_ints)

    @classmethod
    def for_lightgbm(cls, explainer: TreeExplainer, booster: Any) -> TreeScorer | None:
        """The scorer of LightGBM ``booster`` (whose trees ``explainer`` was read from), or None
        when its objective is not one covered here."""
        booster = getattr(booster, "booster_", booster)
        link = lightgbm_link(booster)
        return cls(explainer, link) if link is not None else None

    def raw(self, x: Matrix) -> float:
        """The raw score of row ``x`` (columns as the explainer's)."""
        return float(
            self._kernel(
                x,
                self._roots,
                self._constants,
                self._children,
                self._inner_ints,
                self._inner_floats,
                self._leaf_floats,
                self._categories,
                self._explainer.zero_below,
            )
        )

    def predict_row(self, x: Matrix) -> float:
        """The model's prediction of row ``x``."""
        return self._link(self.raw(x))

    def predict_and_explain_row(self, x: Matrix) -> tuple[float, Matrix]:
        """The model's prediction of row ``x`` and the explainer's attributions for it, from
        one pass of the explainer's kernel when :attr:`fused` (else two)."""
        if self.fused:
            values, raw = self._explainer.explain_row_and_leaf_sum(x)
            return self._link(raw), values
        return self.predict_row(x), self._explainer.explain_row(x)

    def agrees(self, predict: Callable[[Matrix], Any]) -> bool:
        """Whether ``predict`` (the model's own, rows to one score each) gives, bit for bit, what
        :meth:`predict_row` and :meth:`predict_and_explain_row` give on the probe rows."""
        probes = probe_rows(self._explainer)
        expected = np.asarray(predict(probes), dtype=np.float64)
        if expected.size != len(probes):
            return False
        expected = expected.reshape(-1)
        got = [np.array([self.predict_row(row) for row in probes], dtype=np.float64)]
        if self.fused:
            sums = self._explainer.shap_and_leaf_sums(probes)[1]
            got.append(np.array([self._link(raw) for raw in sums.tolist()], dtype=np.float64))
        return all(np.array_equal(expected.view(np.int64), g.view(np.int64)) for g in got)


def _children(trees: Any, inner_ints: Any, leaf_ints: Any) -> npt.NDArray[np.int32]:
    """Per inner node of the layout, its left and right child: an inner node's global index, or
    leaf ``l`` as ``-l - 1``."""
    inner = inner_ints.reshape(-1, INNER_INTS)
    leaves = leaf_ints.reshape(-1, LEAF_INTS)
    starts, leaf_starts = trees[:, INNER_START], trees[:, LEAF_START]
    first_inner = np.repeat(starts[:-1], np.diff(starts))  # each inner node's tree's root
    first_of_leaf = np.repeat(starts[:-1], np.diff(leaf_starts))  # each leaf's tree's root
    children = np.full(2 * len(inner), np.iinfo(np.int32).min, dtype=np.int64)
    below_root = np.flatnonzero(np.arange(len(inner)) > first_inner)
    parents = first_inner[below_root] + inner[below_root, PARENT]
    children[2 * parents + 1 - inner[below_root, IS_LEFT]] = below_root
    parents = first_of_leaf + leaves[:, PARENT]
    children[2 * parents + 1 - leaves[:, IS_LEFT]] = -np.arange(len(leaves)) - 1
    if (children == np.iinfo(np.int32).min).any():  # every inner node has two children
        raise AssertionError("the layout has an inner node without two children")
    return children.astype(np.int32)


def probe_rows(explainer: TreeExplainer, n: int = 512, seed: int = 0) -> Matrix:
    """At least ``n`` rows in which, per column, every value that decides a split differently
    from its neighbours appears: each threshold of the column and the doubles just below and
    above it, each category of its categorical splits, NaN, 0 and +-1e-36 (LightGBM reads such
    values as 0). More rows when a column has more such values; shuffled per column, so that
    they meet in many combinations, reproducibly."""
    forest = explainer.forest
    inner = forest.is_leaf == 0
    candidates = []
    for column in range(forest.n_features):
        on = inner & (forest.feature == column)
        thresholds = forest.threshold[on & (forest.kind == LE)]
        categorical = on & (forest.kind == CAT)
        categories = [
            forest.categories[start:end]
            for start, end in zip(forest.cat_start[categorical], forest.cat_end[categorical],
                                  strict=True)
        ]  # fmt: skip
        values = np.concatenate(
            [
                thresholds,
                np.nextafter(thresholds, -np.inf),
                np.nextafter(thresholds, np.inf),
                *(c.astype(np.float64) for c in categories),
                [np.nan, 0.0, 1e-36, -1e-36],
            ]
        )
        candidates.append(np.unique(values))  # NaN once, at the end
    rng = np.random.default_rng(seed)
    size = max([n, *(len(values) for values in candidates)])
    rows = np.empty((size, forest.n_features))
    for column, values in enumerate(candidates):
        rows[:, column] = rng.permutation(np.resize(values, size))
    return rows
