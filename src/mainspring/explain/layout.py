"""A :class:`~mainspring.explain.forest.Forest` laid out for the compiled kernel.

What the kernel (:mod:`mainspring.explain._kernel`) reads per row, and why it is shaped so:

- **Inner nodes and leaves in separate tables**, every tree's one after the other, so that the
  kernel's loops run over one kind each without a branch on the kind. Indices in a row are local
  to the tree: inner nodes in pre-order (the root is 0), so parents and previous edges come first.
- **One flat row per node** (``inner_ints``: 9 integers; ``inner_floats``: 4 ``float64``;
  ``leaf_ints``: 5; ``leaf_floats``: 4): what the kernel needs about a node is one or two cache
  lines, read in order. Split rules are folded into a bit set (``RULE``), so the common split is
  decided without branches. The integers are of the narrowest type that holds them (``int8``
  for the issue's model, whose trees have 31 leaves).
- **Per inner node, ``1 / g1(t_k)`` at its tree's Gauss points** (``g1(t) = z (1 - t) + t``, ``z``
  the node's zero fraction), instead of five precomputed factor vectors per node: every division
  the algorithm makes is by ``g1`` of an edge, and every other factor is a product of ``z``, the
  cover ratio and the points, cheaper to recompute than to read. A tree's rows end with a row of
  ones, the "previous edge" of the edges without one. For the issue's model (LightGBM, 200 trees
  of 31 leaves) the tables are 0.76 MB (1.0 MB with 32-bit integers), against about 3 MB per row
  read before.
- **Points in fours.** A tree whose paths have at most ``d`` distinct features needs
  ``q = ceil(d / 2)`` Gauss-Legendre points; any more are just as exact. The kernel computes four
  points at a time (one 256-bit vector), so each tree gets the smallest of ``Q`` = 4, 8, 16...
  that is at least ``q``; the issue's model has 99 trees of 4 points and 101 of 8.
- **A slot of its own for each edge without a previous edge on its feature** (``SLOT``): the
  kernel adds an edge's sum to its previous edge's; edges without one used to add it to one
  shared spare slot, a chain of dependent additions through memory across the whole tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.explain.forest import CAT, MISSING_NAN, MISSING_ZERO, Forest, gauss_tables

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
#: the integer tables: ``int8``, ``int16`` or ``int32``, the narrowest that holds their values
SmallInts = npt.NDArray[np.signedinteger[Any]]

#: columns of ``Layout.inner_ints`` (the first five also of ``leaf_ints``): the parent, the
#: previous edge on the same feature (the tree's row of ones if none), 1 for a left child, the
#: feature of the edge into the node, where the node adds its sum for the previous edge; then
#: the node's split: feature, rule bits, its categories in ``Forest.categories``
PARENT, PREVIOUS, IS_LEFT, EDGE_FEATURE, SLOT, FEATURE, RULE, CAT_START, CAT_END = range(9)
#: columns of ``Layout.inner_floats`` (the first three also of ``leaf_floats``): the zero
#: fraction, the cover ratio of the edge into the node, 1 if the zero fraction is not 0, and the
#: split threshold (for a leaf, its value)
ZERO, RATIO, NONZERO, THRESHOLD = range(4)
VALUE = 3
#: widths of the tables' rows
INNER_INTS, INNER_FLOATS, LEAF_INTS, LEAF_FLOATS = 9, 4, 5, 4
#: bits of the RULE column: where a value goes at this split
DEFAULT_LEFT = 1  # the side of missing values (and of zeros, with ZERO_MISSING)
ZERO_MISSING = 2  # |x| <= 1e-35 (as a float) takes the default side (LightGBM's missing_type Zero)
NAN_LEFT = 4  # NaN goes left
CATEGORICAL = 8  # left if the integer part of x is in categories[CAT_START:CAT_END]

#: LightGBM's kZeroThreshold, declared ``1e-35f``: the float nearest 1e-35, as a double. LightGBM
#: reads a value at most this far from 0 as 0 (it drops it from the row before predicting) and,
#: with missing_type Zero, as missing.
LIGHTGBM_ZERO = 1.0000000180025095e-35

#: columns of ``Layout.trees``: where tree ``t``'s rows start in the inner and leaf tables and in
#: ``reciprocals``, its number of points ``Q`` and where they start in the point tables
INNER_START, LEAF_START, RECIPROCAL_START, POINTS, POINTS_START = range(5)
LANES = 4  # points are handled four at a time (one 256-bit vector): Q is a multiple of 4


@dataclass(frozen=True)
class Layout:
    """Every tree with a split, as the kernel reads it (see the module docstring)."""

    #: one row per tree (columns INNER_START...), and one more with the ends of the last tree
    trees: Ints
    #: the node tables, flat: inner node ``n``'s integers at ``n * INNER_INTS`` and so on
    inner_ints: SmallInts
    inner_floats: Floats
    #: ``1 / g1(t_k)`` per inner node and point: tree ``t``'s inner node ``a`` at
    #: ``trees[t, RECIPROCAL_START] + a * Q``, then ``Q`` ones
    reciprocals: Floats
    leaf_ints: SmallInts
    leaf_floats: Floats
    #: the Gauss-Legendre rules of 4, 8, 16... points on [0, 1], one after another: the rule of
    #: ``Q`` points starts at ``Q - 4``; nodes ``t_k``, ``1 - t_k``, ``1 / (1 - t_k)``, weights
    points: Floats
    complements: Floats
    inverses: Floats
    weights: Floats
    #: the most inner nodes of a tree, the most nodes of a tree (as in ``Forest``), the most points
    max_inner: int
    max_nodes: int
    max_points: int

    @property
    def n_trees(self) -> int:
        return len(self.trees) - 1


def lay_out(forest: Forest) -> Layout:
    """The trees of ``forest`` with at least one split, laid out for the kernel."""
    sizes = []
    for needed in forest.tree_points:
        size = LANES
        while size < needed:
            size *= 2
        sizes.append(size)
    max_points = max(sizes, default=LANES)
    nodes, weights = gauss_tables(max_points)
    rules = [size for size in (LANES << i for i in range(64)) if size <= max_points]
    trees: list[list[int]] = []
    tables: list[tuple[SmallInts, Floats, Floats, SmallInts, Floats]] = []
    n_inner = n_leaves = n_reciprocals = max_inner = 0
    for t in range(forest.n_trees):
        if forest.tree_start[t + 1] - forest.tree_start[t] == 1:
            continue  # a single leaf: all of it is in the expected value
        size = sizes[t]
        trees.append([n_inner, n_leaves, n_reciprocals, size, size - LANES])
        tree = _tree_tables(forest, t, nodes[size, :size])
        tables.append(tree)
        inner = len(tree[0]) // INNER_INTS
        n_inner += inner
        n_leaves += len(tree[3]) // LEAF_INTS
        n_reciprocals += len(tree[2])
        max_inner = max(max_inner, inner)
    trees.append([n_inner, n_leaves, n_reciprocals, 0, 0])
    points = np.concatenate([nodes[q, :q] for q in rules])

    def joined(i: int, dtype: type) -> npt.NDArray[Any]:
        return np.concatenate([np.zeros(0, dtype=dtype), *(tree[i] for tree in tables)])

    inner_ints, leaf_ints = joined(0, np.int32), joined(3, np.int32)
    narrow = _narrowest(max(inner_ints.max(initial=0), leaf_ints.max(initial=0)))
    return Layout(
        trees=np.asarray(trees, dtype=np.int64),
        inner_ints=inner_ints.astype(narrow),
        inner_floats=joined(1, np.float64),
        reciprocals=joined(2, np.float64),
        leaf_ints=leaf_ints.astype(narrow),
        leaf_floats=joined(4, np.float64),
        points=points,
        complements=1.0 - points,
        inverses=1.0 / (1.0 - points),
        weights=np.concatenate([weights[q, :q] for q in rules]),
        max_inner=max_inner,
        max_nodes=forest.max_nodes,
        max_points=max_points,
    )


def _narrowest(largest: int) -> type:
    """The narrowest signed integer type that holds 0 to ``largest`` (the tables hold no
    negative numbers): the kernel is compiled for each, and reads a quarter of the bytes when the
    trees are small enough for ``int8`` (the issue's model: 340 KB of integers become 85 KB)."""
    for dtype in (np.int8, np.int16):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.int32


def _tree_tables(
    forest: Forest, t: int, points: Floats
) -> tuple[SmallInts, Floats, Floats, SmallInts, Floats]:
    """Tree ``t``'s rows of the inner tables, of ``reciprocals`` and of the leaf tables."""
    s, e = int(forest.tree_start[t]), int(forest.tree_start[t + 1])
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
    slot = np.where(has_previous, previous_inner, n_inner + 1 + np.arange(e - s))
    zero = forest.zero[s:e]
    edge = np.column_stack(
        [
            renumber[forest.parent[s:e]],
            previous_inner,
            forest.is_left[s:e],
            forest.edge_feature[s:e],
            slot,
        ]
    )
    floats = np.column_stack([zero, forest.ratio[s:e], (zero != 0.0).astype(np.float64)])

    missing = forest.missing[s:e]
    default_left = forest.default_left[s:e]
    threshold = forest.threshold[s:e]
    # NaN takes the default side, but with missing_type None it is read as 0
    takes_default = (missing == MISSING_ZERO) | (missing == MISSING_NAN)
    nan_left = np.where(takes_default, default_left, (threshold >= 0.0).astype(np.int64))
    rule = (
        default_left * DEFAULT_LEFT
        + (missing == MISSING_ZERO) * ZERO_MISSING
        + nan_left * NAN_LEFT
        + (forest.kind[s:e] == CAT) * CATEGORICAL
    )
    split = np.column_stack([forest.feature[s:e], rule, forest.cat_start[s:e], forest.cat_end[s:e]])
    g1 = zero[inner, None] * (1.0 - points) + points
    return (
        np.hstack([edge, split])[inner].astype(np.int32).reshape(-1),
        np.column_stack([floats, threshold])[inner].reshape(-1),
        np.vstack([1.0 / g1, np.ones((1, len(points)))]).reshape(-1),
        edge[leaf].astype(np.int32).reshape(-1),
        np.column_stack([floats, forest.value[s:e]])[leaf].reshape(-1),
    )
