"""A tree ensemble as flat arrays, read from LightGBM or XGBoost.

Each tree is stored in pre-order (a node's subtree follows it, so a left child is the next node),
all trees one after another. A node carries its split (feature, threshold, kind, missing-value
rule, the categories that go left) or its leaf value; as the child end of an edge it carries what
TreeSHAP needs about that edge, all computed once per model:

- ``ratio``: the share of the parent's training cover that went down this edge;
- ``zero``: the product of ``ratio`` over every edge from the root to here that splits on the same
  feature (the "zero fraction" of that feature on this path);
- ``previous``: the nearest edge above on the same feature (local index in its tree), or
  ``max_nodes`` (a spare slot) when there is none.

:mod:`mainspring.explain.layout` rearranges this for the compiled kernel.

Split kinds follow the libraries exactly: ``LE`` is LightGBM's ``x <= threshold`` with its
``missing_type`` (``None``: NaN is read as 0; ``Zero``: 0 and NaN take the default side; ``NaN``:
NaN takes the default side); ``LT`` is XGBoost's ``x < threshold`` with NaN on the default side,
stored as ``x <= the next double below threshold``; ``CAT`` is LightGBM's categorical split (the
integer part of ``x`` in the left set; NaN and negatives go right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

LE, LT, CAT = 0, 1, 2
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass
class TreeBuilder:
    """One tree as the parsers read it: nodes in any order (root first), children by index."""

    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    default_left: list[bool] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    cover: list[float] = field(default_factory=list)
    categories: list[tuple[int, ...]] = field(default_factory=list)

    def add(
        self,
        *,
        left: int = -1,
        right: int = -1,
        feature: int = -1,
        threshold: float = 0.0,
        kind: int = LE,
        default_left: bool = False,
        missing: int = MISSING_NONE,
        value: float = 0.0,
        cover: float = 0.0,
        categories: tuple[int, ...] = (),
    ) -> int:
        """Append a node and return its index (children may be filled in later)."""
        self.left.append(left)
        self.right.append(right)
        self.feature.append(feature)
        self.threshold.append(threshold)
        self.kind.append(kind)
        self.default_left.append(default_left)
        self.missing.append(missing)
        self.value.append(value)
        self.cover.append(cover)
        self.categories.append(categories)
        return len(self.left) - 1


@dataclass(frozen=True)
class Forest:
    """Every tree of one model output, flattened (see the module docstring)."""

    n_features: int
    #: node range of tree ``t``: ``tree_start[t]:tree_start[t + 1]``
    tree_start: Ints
    #: Gauss-Legendre points tree ``t`` needs (enough to integrate its paths exactly)
    tree_points: Ints
    #: split, per node; leaves have feature 0 and an infinite threshold (never read)
    feature: Ints
    threshold: Floats
    kind: Ints
    default_left: Ints
    missing: Ints
    cat_start: Ints
    cat_end: Ints
    categories: Ints
    #: 1 for a leaf, per node; its value (0 for inner nodes)
    is_leaf: Ints
    value: Floats
    #: per node as the child end of an edge: parent (local index), 1 if it is the left child,
    #: the feature split on, the cover ratio, the zero fraction and the previous edge on the feature
    parent: Ints
    is_left: Ints
    edge_feature: Ints
    ratio: Floats
    zero: Floats
    previous: Ints
    #: the cover-weighted mean output (the sum of every tree's), without any base offset
    expected_value: float
    max_nodes: int
    max_points: int

    @property
    def n_trees(self) -> int:
        return len(self.tree_start) - 1

    @property
    def n_leaves(self) -> int:
        return int(self.is_leaf.sum())


def build_forest(trees: list[TreeBuilder], n_features: int) -> Forest:
    """Lay ``trees`` out in pre-order and precompute the per-edge TreeSHAP quantities."""
    names = [
        *("feature", "threshold", "kind", "default_left", "missing", "cat_start", "cat_end"),
        *("is_leaf", "value", "parent", "is_left", "edge_feature", "ratio", "zero", "previous"),
    ]
    cols: dict[str, list[float]] = {name: [] for name in names}
    categories: list[int] = []
    tree_start = [0]
    tree_points: list[int] = []
    expected = 0.0
    max_nodes = max((len(_preorder(tree)) for tree in trees), default=1)
    for tree in trees:
        order = _preorder(tree)
        local = {node: i for i, node in enumerate(order)}
        parent_of: dict[int, int] = {}
        for node in order:
            if tree.left[node] >= 0:
                parent_of[tree.left[node]] = node
                parent_of[tree.right[node]] = node
        last_edge: dict[int, dict[int, int]] = {}
        zero_at: dict[int, float] = {}
        path_product: dict[int, float] = {}
        deepest = 0
        for node in order:
            parent = parent_of.get(node)
            if parent is None:
                last_edge[node], path_product[node] = {}, 1.0
                ratio, zero, previous, edge_feature, is_left = 1.0, 1.0, max_nodes, 0, 0
            else:
                edge_feature = tree.feature[parent]
                parent_cover = tree.cover[parent]
                ratio = tree.cover[node] / parent_cover if parent_cover > 0 else 0.0
                above = last_edge[parent].get(edge_feature, -1)
                zero = ratio * (zero_at[above] if above >= 0 else 1.0)
                previous = local[above] if above >= 0 else max_nodes
                last_edge[node] = {**last_edge[parent], edge_feature: node}
                path_product[node] = path_product[parent] * ratio
                is_left = int(tree.left[parent] == node)
            zero_at[node] = zero
            leaf = tree.left[node] < 0
            kind, threshold, missing = tree.kind[node], tree.threshold[node], tree.missing[node]
            if leaf:
                expected += tree.value[node] * path_product[node]
                deepest = max(deepest, len(last_edge[node]))
                kind, threshold, missing = LE, math.inf, MISSING_NONE
            elif kind == LT:
                kind, threshold, missing = LE, math.nextafter(threshold, -math.inf), MISSING_NAN
            row = {
                "feature": 0 if leaf else tree.feature[node],
                "threshold": threshold,
                "kind": kind,
                "default_left": int(tree.default_left[node]),
                "missing": missing,
                "cat_start": len(categories),
                "cat_end": len(categories) + len(tree.categories[node]),
                "is_leaf": int(leaf),
                "value": tree.value[node] if leaf else 0.0,
                "parent": local[parent] if parent is not None else 0,
                "is_left": is_left,
                "edge_feature": edge_feature,
                "ratio": ratio,
                "zero": zero,
                "previous": previous,
            }
            categories.extend(sorted(tree.categories[node]))
            for name in names:
                cols[name].append(row[name])
        tree_start.append(tree_start[-1] + len(order))
        # the integrand on a path with d distinct features is a polynomial of degree < d:
        # n Gauss-Legendre points integrate degree 2n - 1 exactly
        tree_points.append(max(1, math.ceil(deepest / 2)))

    def ints(name: str) -> Ints:
        return np.asarray(cols[name], dtype=np.int64)

    def floats(name: str) -> Floats:
        return np.asarray(cols[name], dtype=np.float64)

    return Forest(
        n_features=n_features,
        tree_start=np.asarray(tree_start, dtype=np.int64),
        tree_points=np.asarray(tree_points, dtype=np.int64),
        feature=ints("feature"),
        threshold=floats("threshold"),
        kind=ints("kind"),
        default_left=ints("default_left"),
        missing=ints("missing"),
        cat_start=ints("cat_start"),
        cat_end=ints("cat_end"),
        categories=np.asarray(categories, dtype=np.int64),
        is_leaf=ints("is_leaf"),
        value=floats("value"),
        parent=ints("parent"),
        is_left=ints("is_left"),
        edge_feature=ints("edge_feature"),
        ratio=floats("ratio"),
        zero=floats("zero"),
        previous=ints("previous"),
        expected_value=expected,
        max_nodes=max_nodes,
        max_points=max(tree_points, default=1),
    )


def gauss_tables(max_points: int) -> tuple[Floats, Floats]:
    """Gauss-Legendre nodes and weights on [0, 1]: row ``n`` holds the ``n``-point rule."""
    nodes = np.zeros((max_points + 1, max_points), dtype=np.float64)
    weights = np.zeros((max_points + 1, max_points), dtype=np.float64)
    for n in range(1, max_points + 1):
        x, w = np.polynomial.legendre.leggauss(n)
        nodes[n, :n] = (x + 1.0) / 2.0
        weights[n, :n] = w / 2.0
    return nodes, weights


def _preorder(tree: TreeBuilder) -> list[int]:
    """Node indices of ``tree`` in pre-order from its root (node 0), left child first."""
    order: list[int] = []
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if tree.left[node] >= 0:
            stack.append(tree.right[node])
            stack.append(tree.left[node])
    return order
