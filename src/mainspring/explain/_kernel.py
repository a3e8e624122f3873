"""The compiled TreeSHAP kernel (numba). Imported only when a tree explainer is built.

The algorithm is exact TreeSHAP in linear time per tree, in the spirit of Linear TreeSHAP
(Yu et al., 2022). For a leaf ``l`` whose path has distinct features ``j`` with zero fraction
``z_j`` (the cover shares of the path's edges on ``j``, multiplied) and one fraction ``o_j`` (1 if
``x`` follows every edge on ``j``, else 0), the Shapley value of feature ``i`` is

    v_l * (o_i - z_i) * integral_0^1 prod_{j != i} (z_j (1 - t) + o_j t) dt

because the Shapley weight ``|S|! (d - |S| - 1)! / d!`` is the Beta integral of
``t^|S| (1 - t)^(d - |S| - 1)``. The integrand is a polynomial of degree below ``d``, so an
``n``-point Gauss-Legendre rule with ``2n >= d`` integrates it exactly. Each tree is then done in
two passes over its nodes, with every quantity held at the ``n`` points:

- down: ``F(node) = prod_j g_j(t)`` over the path's distinct features, where
  ``g_j(t) = z_j (1 - t) + o_j t`` (a repeated feature replaces its earlier factor);
- up: ``S(node) = sum over leaves below of v_l F(l)``; at each edge ``e`` on feature ``i``, the
  leaves below ``e`` whose path does not split on ``i`` again are ``S(e)`` minus ``S`` of the
  next edges on ``i`` below, and they contribute ``(o_i - z_i) * sum_k w_k (that)(t_k) / g_i(t_k)``
  to feature ``i``.

That is O(nodes * n) per tree and row with no allocation, against O(leaves * depth^2) for the
classic algorithm. The passes are written without data-dependent branches (0/1 arithmetic picks
the factors), because a mispredicted branch per node would cost more than the arithmetic.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from mainspring.explain.forest import CAT, LE, MISSING_NAN, MISSING_ZERO

_ZERO = 1e-35  # LightGBM's kZeroThreshold

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@numba.njit(cache=True, nogil=True)
def _goes_left_slow(
    x: float,
    node: int,
    threshold: Floats,
    kind: Ints,
    default_left: Ints,
    missing: Ints,
    cat_start: Ints,
    cat_end: Ints,
    categories: Ints,
) -> int:
    """The full split rule: missing values, LightGBM's zero-as-missing, categorical sets."""
    if kind[node] == CAT:
        if math.isnan(x):
            return 0
        value = int(x)
        if value < 0:
            return 0
        for i in range(cat_start[node], cat_end[node]):
            if categories[i] == value:
                return 1
        return 0
    m = missing[node]
    if math.isnan(x) and m != MISSING_NAN:
        x = 0.0
    if (m == MISSING_ZERO and -_ZERO <= x <= _ZERO) or (m == MISSING_NAN and math.isnan(x)):
        return 1 if default_left[node] == 1 else 0
    return 1 if x <= threshold[node] else 0


# holds the GIL (no nogil): a 0.3 ms call that let go of it would wait to get it back for as
# long as another thread runs Python (up to the 5 ms switch interval)
@numba.njit(cache=True)
def shap_rows(
    X: Floats,
    out: Floats,
    tree_start: Ints,
    tree_points: Ints,
    factor_start: Ints,
    feature: Ints,
    threshold: Floats,
    kind: Ints,
    default_left: Ints,
    missing: Ints,
    cat_start: Ints,
    cat_end: Ints,
    categories: Ints,
    value: Floats,
    parent: Ints,
    is_left: Ints,
    edge_feature: Ints,
    ratio: Floats,
    previous: Ints,
    factors: Floats,
    max_nodes: int,
    max_points: int,
) -> None:
    """Add the SHAP values of every row of ``X`` to ``out`` (same shape)."""
    spare = max_nodes  # the slot of "no previous edge on this feature"
    F = np.empty((max_nodes + 1, max_points))
    C = np.empty((max_nodes + 1, max_points))  # sums of S over a node's children
    sub = np.empty((max_nodes + 1, max_points))  # sums of S over the next edges on the feature
    one = np.empty(max_nodes + 1, dtype=np.int64)
    go = np.empty(max_nodes + 1, dtype=np.int64)
    one[spare] = 1
    n_trees = tree_start.shape[0] - 1
    for r in range(X.shape[0]):
        for t in range(n_trees):
            s = tree_start[t]
            e = tree_start[t + 1]
            if e - s == 1:
                continue  # a single leaf: all of it is in the expected value
            q = tree_points[t]
            fb = factor_start[t]
            x = X[r, feature[s]]
            if kind[s] == LE and x == x and (missing[s] != MISSING_ZERO or abs(x) > _ZERO):
                go[0] = 1 if x <= threshold[s] else 0
            else:
                go[0] = _goes_left_slow(
                    x, s, threshold, kind, default_left, missing, cat_start, cat_end, categories
                )
            for k in range(q):
                F[0, k] = 1.0
                C[0, k] = 0.0
                sub[spare, k] = 0.0
            # down: one fractions and F at every node
            for n in range(s + 1, e):
                a = n - s
                pa = parent[n]
                taken = 1 - (go[pa] ^ is_left[n])
                before = one[previous[n]]
                one[a] = taken & before
                # factor vector: 0 taken, 1 not taken, 2 previous edge on the feature not taken
                f0 = fb + 5 * q * a + (2 - 2 * before + before * (1 - taken)) * q
                for k in range(q):
                    F[a, k] = F[pa, k] * factors[f0 + k]
                    C[a, k] = 0.0
                    sub[a, k] = 0.0
                x = X[r, feature[n]]
                if kind[n] == LE and x == x and (missing[n] != MISSING_ZERO or abs(x) > _ZERO):
                    go[a] = 1 if x <= threshold[n] else 0
                else:
                    go[a] = _goes_left_slow(
                        x, n, threshold, kind, default_left, missing, cat_start, cat_end, categories
                    )
            # up: S = sum of v_l F_l below, each edge's share for its feature
            for n in range(e - 1, s, -1):
                a = n - s
                pa = parent[n]
                pl = previous[n]
                v = value[n]
                w0 = fb + 5 * q * a + (4 - one[a]) * q
                total = 0.0
                for k in range(q):
                    sa = v * F[a, k] + C[a, k]
                    C[pa, k] += sa
                    sub[pl, k] += sa
                    total += factors[w0 + k] * (sa - sub[a, k])
                out[r, edge_feature[n]] += total
