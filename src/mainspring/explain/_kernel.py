"""The compiled TreeSHAP kernel (numba). Imported only when a tree explainer is built.

The algorithm is exact TreeSHAP in linear time per tree, in the spirit of Linear TreeSHAP
(Yu et al., 2022). For a leaf ``l`` whose path has distinct features ``j`` with zero fraction
``z_j`` (the cover shares of the path's edges on ``j``, multiplied) and one fraction ``o_j`` (1 if
``x`` follows every edge on ``j``, else 0), the Shapley value of feature ``i`` is

    v_l * (o_i - z_i) * integral_0^1 prod_{j != i} (z_j (1 - t) + o_j t) dt

because the Shapley weight ``|S|! (d - |S| - 1)! / d!`` is the Beta integral of
``t^|S| (1 - t)^(d - |S| - 1)``. The integrand is a polynomial of degree below ``d``, so an
``n``-point Gauss-Legendre rule with ``2n >= d`` integrates it exactly. With every quantity held
at the ``Q`` points of its tree, and ``g_j(t) = z_j (1 - t) + o_j t``, each tree takes three
loops over the tables of :mod:`mainspring.explain.layout`:

- down the inner nodes (pre-order): which way ``x`` goes, ``one`` (``x`` followed this edge and
  every edge above on its feature) and ``F(node) = prod_j g_j(t)`` over the path's distinct
  features, from the parent's: times ``g(o) / g1(previous edge)`` (times the cover ratio if an
  earlier edge on the feature was not followed: ``o`` is 0 from there on);
- over the leaves: ``S = v F`` added to the parent's ``C`` (sum over children) and to the
  previous edge's ``sub`` (sum over the next edges on the feature), and the leaf's share of its
  edge's feature, ``v F(parent) (o - z) / g1(previous)`` (``-v F(parent) ratio / (1 - t)`` if
  an earlier edge on the feature was not followed);
- up the inner nodes (reverse pre-order): ``S = C``, added on up likewise, and the edge's share,
  ``(o - z) / g(o)`` times ``S - sub`` (the leaves below whose path does not split on the
  feature again).

Shares are added per feature and point, and weighted by the Gauss weights once per row. That is
O(nodes * Q) per tree and row with no allocation, against O(leaves * depth^2) for the classic
algorithm.

How it is made fast (about 3x less CPU per row than the previous version of this kernel, which
streamed five precomputed factor vectors per node; see benchmarks/RESULTS.md):

- the tables (layout module) are 0.76 MB for the issue's model instead of about 3 MB, read in
  order, with ``1 / g1`` the only per-point number stored: the other factors are recomputed from
  a node's zero fraction and cover ratio, which costs less than reading them;
- four points at a time as one ``<4 x double>`` (:mod:`mainspring.explain._vectors`): numba does
  not vectorize this loop by itself (its SLP vectorizer is off, and it cannot rule out that two
  arrays overlap); the lanes round exactly as scalar code, so results are bit for bit the same on
  every machine, with or without AVX or FMA;
- table reads without numba's negative-index checks (``get``), which were about a third of the
  instructions per node;
- no data-dependent branches per node: 0/1 arithmetic picks the factors, and a split's rule for
  missing values is three bits; only categorical splits take a branch.

The kernel holds the GIL and is deterministic: the same row gives the same values, bit for bit,
whatever else is in the batch.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from mainspring.explain._vectors import get, load4, splat, store4
from mainspring.explain.layout import (
    CAT_END,
    CAT_START,
    CATEGORICAL,
    DEFAULT_LEFT,
    EDGE_FEATURE,
    FEATURE,
    INNER_FLOATS,
    INNER_INTS,
    INNER_START,
    IS_LEFT,
    LEAF_FLOATS,
    LEAF_INTS,
    LEAF_START,
    LIGHTGBM_ZERO,
    NAN_LEFT,
    NONZERO,
    PARENT,
    POINTS,
    POINTS_START,
    PREVIOUS,
    RATIO,
    RECIPROCAL_START,
    RULE,
    SLOT,
    THRESHOLD,
    VALUE,
    ZERO,
    ZERO_MISSING,
    SmallInts,
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Int32s = npt.NDArray[np.int32]


@numba.njit(cache=True)
def _in_categories(x: float, start: int, end: int, categories: Ints) -> int:
    """LightGBM's categorical split: left if the integer part of ``x`` is in the set."""
    if math.isnan(x):
        return 0
    value = int(x)
    if value < 0:
        return 0
    for i in range(start, end):
        if categories[i] == value:
            return 1
    return 0


@numba.njit(cache=True)
def _goes_left(
    x: float,
    node: int,
    inner_ints: SmallInts,
    inner_floats: Floats,
    categories: Ints,
    zero_below: float,
) -> int:
    """1 if ``x`` goes left at inner node ``node`` (a row of the inner tables), else 0. A value
    whose magnitude is at most ``zero_below`` is read as 0 (LightGBM drops such values from a
    row before it predicts; 0.0 for XGBoost); NaN stays NaN."""
    x = x * float(int(abs(x) > zero_below))
    rule = get(inner_ints, node * INNER_INTS + RULE)
    if rule & CATEGORICAL:
        start = get(inner_ints, node * INNER_INTS + CAT_START)
        end = get(inner_ints, node * INNER_INTS + CAT_END)
        return _in_categories(x, start, end, categories)
    left = int(x <= get(inner_floats, node * INNER_FLOATS + THRESHOLD))  # 0 for NaN
    nan = int(x != x)
    left += nan * (((rule & NAN_LEFT) >> 2) - left)
    default = ((rule & ZERO_MISSING) >> 1) & int(abs(x) <= LIGHTGBM_ZERO)
    left += default * ((rule & DEFAULT_LEFT) - left)
    return int(left)


# holds the GIL (no nogil): a 0.3 ms call that let go of it would wait to get it back for as
# long as another thread runs Python (up to the 5 ms switch interval)
@numba.njit(cache=True)
def shap_rows(
    X: Floats,
    out: Floats,
    trees: Ints,
    inner_ints: SmallInts,
    inner_floats: Floats,
    reciprocals: Floats,
    leaf_ints: SmallInts,
    leaf_floats: Floats,
    categories: Ints,
    points: Floats,
    complements: Floats,
    inverses: Floats,
    weights: Floats,
    max_inner: int,
    max_nodes: int,
    max_points: int,
    zero_below: float,
    raw: Floats,
) -> None:
    """Add the SHAP values of every row of ``X`` to ``out`` (same shape); set ``raw[r]`` to the
    sum of the leaves row ``r`` reaches, added in tree order from 0.0 (the raw score, when every
    tree of the model has a split: the layout leaves single leaves out)."""
    F = np.empty((max_inner + 1) * max_points)
    C = np.empty((max_inner + 1) * max_points)  # sums of S over a node's children
    # sums of S over the next edges on the feature, then one slot per node without a previous edge
    sub = np.empty((max_inner + 1 + max_nodes) * max_points)
    one = np.empty(max_inner + 1, dtype=np.int64)
    go = np.empty(max_inner + 1, dtype=np.int64)
    reach = np.empty(max_inner + 1, dtype=np.int64)  # 1 if x reaches the inner node
    n_features = X.shape[1]
    E = points.shape[0]
    acc = np.zeros(n_features * E)  # per feature and point, the shares before the weights
    zero = splat(0.0)
    n_trees = trees.shape[0] - 1
    for r in range(X.shape[0]):
        x0 = r * n_features
        total = 0.0
        for t in range(n_trees):
            i0 = trees[t, INNER_START]
            n_inner = trees[t + 1, INNER_START] - i0
            u0 = trees[t, RECIPROCAL_START]
            Q = trees[t, POINTS]
            p0 = trees[t, POINTS_START]
            one[n_inner] = 1
            reach[0] = 1
            x = get(X, x0 + get(inner_ints, i0 * INNER_INTS + FEATURE))
            go[0] = _goes_left(x, i0, inner_ints, inner_floats, categories, zero_below)
            for j in range(0, Q, 4):
                store4(F, j, splat(1.0))
                store4(C, j, zero)
            # down: F at every inner node
            for a in range(1, n_inner):
                n = i0 + a
                ni = n * INNER_INTS
                nf = n * INNER_FLOATS
                pa = get(inner_ints, ni + PARENT)
                pl = get(inner_ints, ni + PREVIOUS)
                before = get(one, pl)
                follows = 1 - (get(go, pa) ^ get(inner_ints, ni + IS_LEFT))
                o = follows & before
                one[a] = o
                reach[a] = get(reach, pa) & follows
                b = float(before)
                alpha = b * get(inner_floats, nf + ZERO)
                beta = float(o)
                gamma = (1.0 - b) * get(inner_floats, nf + RATIO)
                for j in range(0, Q, 4):
                    factor = (
                        alpha * load4(complements, p0 + j) + beta * load4(points, p0 + j)
                    ) * load4(reciprocals, u0 + pl * Q + j) + gamma
                    store4(F, a * Q + j, load4(F, pa * Q + j) * factor)
                    store4(C, a * Q + j, zero)
                    store4(sub, a * Q + j, zero)
                x = get(X, x0 + get(inner_ints, ni + FEATURE))
                go[a] = _goes_left(x, n, inner_ints, inner_floats, categories, zero_below)
            # leaves: S = v F, and each leaf's share for the feature of its edge
            for leaf in range(trees[t, LEAF_START], trees[t + 1, LEAF_START]):
                li = leaf * LEAF_INTS
                lf = leaf * LEAF_FLOATS
                pa = get(leaf_ints, li + PARENT)
                pl = get(leaf_ints, li + PREVIOUS)
                slot = get(leaf_ints, li + SLOT)
                before = get(one, pl)
                follows = 1 - (get(go, pa) ^ get(leaf_ints, li + IS_LEFT))
                o = follows & before
                b = float(before)
                z = get(leaf_floats, lf + ZERO)
                alpha = b * z
                beta = float(o)
                gamma = (1.0 - b) * get(leaf_floats, lf + RATIO)
                delta = b * (beta - z)
                epsilon = -gamma * get(leaf_floats, lf + NONZERO)
                v = get(leaf_floats, lf + VALUE)
                if get(reach, pa) & follows:  # the one leaf x reaches
                    total += v
                e = get(leaf_ints, li + EDGE_FEATURE) * E + p0
                for j in range(0, Q, 4):
                    u = load4(reciprocals, u0 + pl * Q + j)
                    p = v * load4(F, pa * Q + j)
                    x = p * (
                        (alpha * load4(complements, p0 + j) + beta * load4(points, p0 + j)) * u
                        + gamma
                    )
                    store4(C, pa * Q + j, load4(C, pa * Q + j) + x)
                    store4(sub, slot * Q + j, load4(sub, slot * Q + j) + x)
                    share = p * (delta * u + epsilon * load4(inverses, p0 + j))
                    store4(acc, e + j, load4(acc, e + j) + share)
            # up: S of each inner node, its share for the feature of its edge
            for a in range(n_inner - 1, 0, -1):
                n = i0 + a
                ni = n * INNER_INTS
                nf = n * INNER_FLOATS
                pa = get(inner_ints, ni + PARENT)
                slot = get(inner_ints, ni + SLOT)
                o = get(one, a)
                delta = o * (1.0 - get(inner_floats, nf + ZERO))
                epsilon = -(1 - o) * get(inner_floats, nf + NONZERO)
                e = get(inner_ints, ni + EDGE_FEATURE) * E + p0
                for j in range(0, Q, 4):
                    x = load4(C, a * Q + j)
                    store4(C, pa * Q + j, load4(C, pa * Q + j) + x)
                    store4(sub, slot * Q + j, load4(sub, slot * Q + j) + x)
                    weight = delta * load4(reciprocals, u0 + a * Q + j) + epsilon * load4(
                        inverses, p0 + j
                    )
                    share = weight * (x - load4(sub, a * Q + j))
                    store4(acc, e + j, load4(acc, e + j) + share)
        raw[r] = total
        for f in range(n_features):
            weighted = 0.0
            for k in range(E):
                weighted += weights[k] * acc[f * E + k]
                acc[f * E + k] = 0.0
            out[r, f] += weighted


@numba.njit(cache=True)
def tree_sum(
    x: Floats,
    roots: Ints,
    constants: Floats,
    children: Int32s,
    inner_ints: SmallInts,
    inner_floats: Floats,
    leaf_floats: Floats,
    categories: Ints,
    zero_below: float,
) -> float:
    """The sum of the leaves ``x`` reaches, one per tree, added in tree order from 0.0: tree
    ``t`` is the inner node ``roots[t]`` of the layout's tables, or the single leaf
    ``constants[t]`` when ``roots[t]`` is -1 (such trees have no rows there). An inner node ``n``'s
    children are ``children[2n]`` (left) and ``children[2n + 1]``: an inner node, or leaf ``l``
    encoded as ``-l - 1``. Splits are decided by :func:`_goes_left`, as in :func:`shap_rows`."""
    total = 0.0
    for t in range(roots.shape[0]):
        n = get(roots, t)
        if n < 0:
            total += get(constants, t)
            continue
        while True:
            value = get(x, get(inner_ints, n * INNER_INTS + FEATURE))
            left = _goes_left(value, n, inner_ints, inner_floats, categories, zero_below)
            child = get(children, 2 * n + 1 - left)
            if child < 0:
                total += get(leaf_floats, (-child - 1) * LEAF_FLOATS + VALUE)
                break
            n = child
    return total
