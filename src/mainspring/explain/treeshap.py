"""Exact TreeSHAP for LightGBM and XGBoost, compiled with numba.

:class:`TreeExplainer` reads a booster once into flat arrays (:mod:`mainspring.explain.forest`),
lays them out for the kernel (:mod:`mainspring.explain.layout`), compiles the kernel
(:mod:`mainspring.explain._kernel`, cached on disk by numba) and then explains
a row in a fraction of the time the libraries' own TreeSHAP takes, with the same values (path-
dependent TreeSHAP, the default of ``shap.TreeExplainer`` and of LightGBM's and XGBoost's
``pred_contrib``). Attributions are in raw-score space: for classifiers the margin before the
sigmoid or softmax, so that ``explain_row(x).sum() + expected_value`` is the raw score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.explain.base import Explainer, Matrix
from mainspring.explain.forest import Forest
from mainspring.explain.layout import LIGHTGBM_ZERO, Layout, lay_out

Reader = Callable[..., tuple[Forest, float]]


class TreeExplainer(Explainer):
    """Exact SHAP values of one output of a gradient-boosted tree model.

    Build it with :meth:`from_lightgbm` or :meth:`from_xgboost` (or
    :func:`mainspring.explain.explainer_for`). ``float32_inputs`` rounds inputs to single precision
    first, as XGBoost does before comparing them with its thresholds; a value whose magnitude is
    at most ``zero_below`` is read as 0, as LightGBM does (its ``kZeroThreshold``).
    """

    def __init__(
        self,
        forest: Forest,
        feature_names: Sequence[str],
        *,
        base_offset: float = 0.0,
        float32_inputs: bool = False,
        zero_below: float = 0.0,
        warm: bool = True,
    ) -> None:
        if forest.n_features != len(feature_names):
            raise InvalidInputError(
                f"the model has {forest.n_features} features but {len(feature_names)} names "
                "were given",
                field="feature_names",
            )
        self.feature_names = tuple(feature_names)
        self.forest = forest
        self.expected_value = float(forest.expected_value + base_offset)
        self._float32 = float32_inputs
        self.zero_below = zero_below
        self._layout = lay_out(forest)
        self._kernel: Callable[..., None] | None = None
        if warm:
            self.warm()

    @classmethod
    def from_lightgbm(
        cls,
        booster: Any,
        feature_names: Sequence[str] | None = None,
        *,
        class_index: int | None = None,
        warm: bool = True,
    ) -> TreeExplainer:
        """Explain a ``lightgbm.Booster`` (or a fitted ``LGBMModel``, by its ``booster_``)."""
        from mainspring.explain import lightgbm_trees

        booster = getattr(booster, "booster_", booster)
        names, columns = _columns(
            lightgbm_trees.model_names(booster), feature_names, int(booster.num_feature())
        )
        forest, offset = lightgbm_trees.read_lightgbm(booster, columns, class_index=class_index)
        return cls(forest, names, base_offset=offset, zero_below=LIGHTGBM_ZERO, warm=warm)

    @classmethod
    def from_xgboost(
        cls,
        booster: Any,
        feature_names: Sequence[str] | None = None,
        *,
        class_index: int | None = None,
        warm: bool = True,
    ) -> TreeExplainer:
        """Explain an ``xgboost.Booster`` (or a fitted ``XGBModel``, by ``get_booster()``)."""
        from mainspring.explain import xgboost_trees

        if hasattr(booster, "get_booster"):
            booster = booster.get_booster()
        names, columns = _columns(
            xgboost_trees.model_names(booster), feature_names, int(booster.num_features())
        )
        forest, offset = xgboost_trees.read_xgboost(booster, columns, class_index=class_index)
        return cls(forest, names, base_offset=offset, float32_inputs=True, warm=warm)

    @property
    def layout(self) -> Layout:
        """The trees as the compiled kernels read them."""
        return self._layout

    def warm(self) -> None:
        """Load (or compile, the first time on this machine) the kernel and run it once."""
        if self._kernel is None:
            try:
                from mainspring.explain._kernel import shap_rows
            except ImportError as exc:  # numba missing
                raise MissingDependencyError(
                    "numba", extra="explain", purpose="exact tree explanations"
                ) from exc
            self._kernel = shap_rows
            self._run(np.zeros((1, len(self.feature_names))))

    def shap_values(self, X: Matrix) -> Matrix:
        return self._run(self._matrix(X))[0]

    def explain_row(self, x: Matrix) -> Matrix:
        values: Matrix = self._run(self._row(x))[0][0]
        return values

    def shap_and_leaf_sums(self, X: Matrix) -> tuple[Matrix, Matrix]:
        """:meth:`shap_values`, and per row the sum of the leaves it reaches in the trees that
        have a split, added in tree order from 0.0, found on the same pass: the model's raw
        score bit for bit (as LightGBM adds it) when every tree has a split."""
        return self._run(self._matrix(X))

    def explain_row_and_leaf_sum(self, x: Matrix) -> tuple[Matrix, float]:
        """:meth:`explain_row` and the row's leaf sum (:meth:`shap_and_leaf_sums`)."""
        values, sums = self._run(self._row(x))
        return values[0], float(sums[0])

    def _run(self, X: Matrix) -> tuple[Matrix, Matrix]:
        if self._kernel is None:
            self.warm()
        assert self._kernel is not None
        if self._float32:
            X = X.astype(np.float32).astype(np.float64)
        out = np.zeros(X.shape)  # zeros_like dispatches through __array_function__: 1.2 us
        sums = np.empty(len(X))
        layout = self._layout
        self._kernel(
            X,
            out,
            layout.trees,
            layout.inner_ints,
            layout.inner_floats,
            layout.reciprocals,
            layout.leaf_ints,
            layout.leaf_floats,
            self.forest.categories,
            layout.points,
            layout.complements,
            layout.inverses,
            layout.weights,
            layout.max_inner,
            layout.max_nodes,
            layout.max_points,
            self.zero_below,
            sums,
        )
        return out, sums


def _columns(
    model: tuple[str, ...] | None, given: Sequence[str] | None, n: int
) -> tuple[tuple[str, ...], list[int]]:
    """The explainer's feature names and, per model feature, its column among them.

    Named models accept the same names in any order; models trained on bare arrays take the given
    names by position (``f0``... when none are given).
    """
    if given is None:
        names = model if model is not None else tuple(f"f{i}" for i in range(n))
        return names, list(range(n))
    names = tuple(str(g) for g in given)
    if len(names) != n:
        raise InvalidInputError(
            f"{len(names)} feature names given but the model has {n} features"
            + (f" ({', '.join(model)})" if model is not None else ""),
            field="feature_names",
        )
    if model is None or model == names:
        return names, list(range(n))
    if sorted(model) != sorted(names) or len(set(names)) != n:
        unknown = sorted(set(model) - set(names))
        raise InvalidInputError(
            f"feature names do not match the model's: the model needs {', '.join(unknown)}"
            if unknown
            else "feature names must be unique",
            field="feature_names",
        )
    where = {name: i for i, name in enumerate(names)}
    return names, [where[m] for m in model]
