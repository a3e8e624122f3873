"""A :class:`~mainspring.explain.forest.Forest` regrouped for the compiled kernel.

The kernel (:mod:`mainspring.explain._kernel`) holds everything it computes per node at ``Q``
Gauss-Legendre points, so ``Q`` sets its inner loop. Each tree needs ``q`` points (half the most
distinct features on one of its paths, rounded up), and any ``Q >= q`` is just as exact, so the
trees are put in groups of ``Q`` = 4, 8, 16... (the smallest that suffices) and the kernel is
compiled once per group size: with ``Q`` known at compile time, its loops over the points unroll
into a few vector instructions (``Q`` = 4 and 8 fill one or two 256-bit registers).

In a group, the inner nodes and the leaves of every tree are in two separate tables, so that the
kernel runs over each without a branch on the node kind. Indices are local to the tree: inner
nodes in pre-order (the root is 0), so a node's parent and the previous edge on its feature come
before it. A table row holds a node's integers (``int32``) or its floats, side by side, so one
node is one or two cache lines. Per inner node and point there is one more number,
``1 / g1(t_k)`` with ``g1(t) = z (1 - t) + t`` (``z`` the node's zero fraction): every division
the algorithm needs is by ``g1`` of a node or of the previous edge on the same feature, so the
kernel multiplies by these and never divides. Each tree has one more row of ones after its inner
nodes, the "previous edge" of the edges that have none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mainspring.explain.forest import CAT, MISSING_NAN, MISSING_ZERO, Forest, gauss_tables

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]

#: columns of ``Layout.inner_ints``
PARENT, PREVIOUS, IS_LEFT, EDGE_FEATURE, SLOT, FEATURE, RULE, CAT_START, CAT_END = range(9)
#: widths of the tables' rows
INNER_INTS, INNER_FLOATS, LEAF_INTS, LEAF_FLOATS = 9, 4, 5, 4
#: columns of ``Layout.inner_floats``: the zero fraction, the cover ratio of the edge into the
#: node, 1 if the zero fraction is not 0 (else 0), the split threshold
ZERO, RATIO, NONZERO, THRESHOLD = range(4)
#: columns of ``Layout.leaf_ints`` are PARENT, PREVIOUS, IS_LEFT, EDGE_FEATURE; of
#: ``Layout.leaf_floats`` ZERO, RATIO, NONZERO and then the leaf value
VALUE = 3
#: bits of the RULE column: where a value goes at this split
DEFAULT_LEFT = 1  # the side of missing values (and of zeros, with ZERO_MISSING)
ZERO_MISSING = 2  # |x| <= 1e-35 takes the default side (LightGBM's missing_type Zero)
NAN_LEFT = 4  # NaN goes left
CATEGORICAL = 8  # left if the integer part of x is in categories[CAT_START:CAT_END]

#: columns of ``Layout.trees``: where tree ``t``'s rows start in the inner and leaf tables and in
#: ``reciprocals``, its number of points ``Q`` and where they start in the point tables
INNER_START, LEAF_START, RECIPROCAL_START, POINTS, POINTS_START = range(5)
LANES = 4  # points are handled four at a time (one 256-bit vector): Q is a multiple of 4


@dataclass(frozen=True)
class Layout:
    """Every tree with a split, as the kernel reads it (see the module docstring)."""

    #: one row per tree (columns INNER_START...), and one more with the ends of the last tree
    trees: Ints
    inner_ints: Int32s
    inner_floats: Floats
    #: ``1 / g1(t_k)`` per inner node and point: tree ``t``'s inner node ``a`` at
    #: ``trees[t, RECIPROCAL_START] + a * Q``, then ``Q`` ones (the slot of "no previous edge")
    reciprocals: Floats
    leaf_ints: Int32s
    leaf_floats: Floats
    #: the Gauss-Legendre rules of 4, 8, 16... points on [0, 1], one after another: the rule of
    #: ``Q`` points starts at ``Q - 4``; nodes ``t_k``, ``1 - t_k``, ``1 / (1 - t_k)``, weights
    points: Floats
    complements: Floats
    inverses: Floats
    weights: Floats
    #: the most inner nodes of a tree, the most nodes, and the most points
    max_inner: int
    max_nodes: int
    max_points: int

    @property
    def n_trees(self) -> int:
        return len(self.trees) - 1


def lay_out(forest: Forest) -> Layout:
    """The trees of ``forest`` with at least one split, laid out for the kernel."""
    sizes = []
    for t in range(forest.n_trees):
        size = LANES
        while size < forest.tree_points[t]:
            size *= 2
        sizes.append(size)
    max_points = max(sizes, default=LANES)
    nodes, weights = gauss_tables(max_points)
    rules = [size for size in (LANES << i for i in range(64)) if size <= max_points]
    points = np.concatenate([nodes[q, :q] for q in rules])
    trees: list[list[int]] = []
    inner_ints: list[Int32s] = [np.zeros((0, 9), dtype=np.int32)]
    inner_floats: list[Floats] = [np.zeros((0, 4))]
    reciprocals: list[Floats] = []
    leaf_ints: list[Int32s] = [np.zeros((0, 5), dtype=np.int32)]
    leaf_floats: list[Floats] = [np.zeros((0, 4))]
    n_inner_total = n_leaf_total = n_reciprocals = max_inner = 0
    for t in range(forest.n_trees):
        s, e = int(forest.tree_start[t]), int(forest.tree_start[t + 1])
        if e - s == 1:
            continue  # a single leaf: all of it is in the expected value
        size = sizes[t]
        tk = nodes[size, :size]
        leaf = forest.is_leaf[s:e].astype(bool)
        inner = np.flatnonzero(~leaf)
        n_inner = len(inner)
        # local pre-order index -> index among the inner nodes; "no previous edge" -> n_inner
        renumber = np.full(e - s, -1, dtype=np.int64)
        renumber[inner] = np.arange(n_inner)
        previous = forest.previous[s:e]
        has_previous = previous < e - s
        previous_inner = np.full(e - s, n_inner, dtype=np.int64)
        previous_inner[has_previous] = renumber[previous[has_previous]]
        parent = renumber[forest.parent[s:e]]
        zero = forest.zero[s:e]
        # where an edge adds its S for the previous edge on its feature: a slot of its own if none
        slot = np.where(has_previous, previous_inner, n_inner + 1 + np.arange(e - s))
        edge = np.column_stack(
            [parent, previous_inner, forest.is_left[s:e], forest.edge_feature[s:e], slot]
        )
        floats = np.column_stack([zero, forest.ratio[s:e], (zero != 0.0).astype(np.float64)])

        missing = forest.missing[s:e]
        default_left = forest.default_left[s:e]
        threshold = forest.threshold[s:e]
        takes_default = (missing == MISSING_ZERO) | (missing == MISSING_NAN)
        nan_left = np.where(takes_default, default_left, (threshold >= 0.0).astype(np.int64))
        rule = (
            default_left * DEFAULT_LEFT
            + (missing == MISSING_ZERO) * ZERO_MISSING
            + nan_left * NAN_LEFT
            + (forest.kind[s:e] == CAT) * CATEGORICAL
        )
        split = np.column_stack(
            [forest.feature[s:e], rule, forest.cat_start[s:e], forest.cat_end[s:e]]
        )
        trees.append([n_inner_total, n_leaf_total, n_reciprocals, size, size - LANES])
        inner_ints.append(np.hstack([edge, split])[inner].astype(np.int32))
        inner_floats.append(np.column_stack([floats, threshold])[inner])
        leaf_ints.append(edge[leaf].astype(np.int32))
        leaf_floats.append(np.column_stack([floats, forest.value[s:e]])[leaf])
        g1 = zero[inner, None] * (1.0 - tk) + tk
        reciprocals.append(np.vstack([1.0 / g1, np.ones((1, size))]).reshape(-1))
        n_inner_total += n_inner
        n_leaf_total += int(leaf.sum())
        n_reciprocals += (n_inner + 1) * size
        max_inner = max(max_inner, n_inner)
    trees.append([n_inner_total, n_leaf_total, n_reciprocals, 0, 0])
    return Layout(
        trees=np.asarray(trees, dtype=np.int64),
        inner_ints=np.ascontiguousarray(np.vstack(inner_ints).reshape(-1)),
        inner_floats=np.ascontiguousarray(np.vstack(inner_floats).reshape(-1)),
        reciprocals=np.concatenate([np.zeros(0), *reciprocals]),
        leaf_ints=np.ascontiguousarray(np.vstack(leaf_ints).reshape(-1)),
        leaf_floats=np.ascontiguousarray(np.vstack(leaf_floats).reshape(-1)),
        points=points,
        complements=(1.0 - points),
        inverses=(1.0 / (1.0 - points)),
        weights=np.concatenate([weights[q, :q] for q in rules]),
        max_inner=max_inner,
        max_nodes=forest.max_nodes,
        max_points=max_points,
    )
