"""XGBoost models: ``xgboost.Booster`` and the scikit-learn API (``XGBClassifier``,
``XGBRegressor``...).

The artifact is XGBoost's own UBJSON model (``Booster.save_raw("ubj")``); files in XGBoost's JSON
model format are accepted too (both hold a top-level ``learner`` object; the legacy binary format
is not). Predictions come from ``Booster.inplace_predict`` on the float matrix, with no DMatrix:
``binary:logistic`` gives the probability of class 1, ``multi:softprob`` one column per class,
other objectives their values. When the booster remembers a ``best_iteration`` (early stopping),
only the trees up to it predict, as the scikit-learn API does.

Feature names come from the booster (``named=True``) or are ``f0``... when it was trained on a bare
array.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.records import Signature
from mainspring.registry.flavors import _library as lib
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared

_PROBABILISTIC = frozenset({"binary:logistic", "multi:softprob"})
_LIVE_TYPES = frozenset({"Booster", "XGBModel"})


class XGBoostModel(LoadedModel):
    """An XGBoost booster ready to predict."""

    def __init__(
        self,
        signature: Signature,
        booster: Any,
        order: list[int] | None,
        iteration_range: tuple[int, int],
    ) -> None:
        super().__init__("xgboost", signature, booster)
        self._order = order
        self._iteration_range = iteration_range

    def _predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self._order is not None:
            matrix = matrix[:, self._order]
        scores = self.native.inplace_predict(
            matrix, iteration_range=self._iteration_range, validate_features=False
        )
        return np.asarray(scores, dtype=np.float64)


class XGBoostFlavor(Flavor):
    """XGBoost boosters in their native UBJSON (or JSON) format."""

    name: ClassVar[str] = "xgboost"
    extra: ClassVar[str] = "xgboost"

    def available(self) -> bool:
        return lib.installed("xgboost")

    def accepts(self, obj: object) -> bool:
        return any(
            cls.__module__.startswith("xgboost.") and cls.__name__ in _LIVE_TYPES
            for cls in type(obj).__mro__
        )

    def sniff(self, data: bytes, filename: str) -> bool:
        head = data[:256].lstrip()
        return head.startswith(b"{") and b"learner" in head

    def prepare(self, obj: object) -> Prepared:
        xgb = self._xgboost()
        booster: Any = obj
        if not isinstance(obj, xgb.Booster):
            try:
                booster = booster.get_booster()
            except Exception as exc:  # NotFittedError
                raise InvalidInputError(
                    f"the {type(obj).__name__} is not fitted: call fit() before registering it",
                    field="model",
                ) from exc
        return self._inspect(bytes(booster.save_raw("ubj")), "the serialised model")

    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        return self._inspect(data, lib.file_label(filename))

    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        booster = self._parse(data, "the stored artifact")
        names, named = _feature_names(booster)
        order = lib.column_order(signature, names, named=named, flavor=self.name)
        best = booster.attributes().get("best_iteration")
        iteration_range = (0, int(best) + 1) if best is not None and best.isdigit() else (0, 0)
        return XGBoostModel(signature, booster, order, iteration_range)

    def library_versions(self) -> dict[str, str]:
        return lib.versions("xgboost", "numpy")

    def _xgboost(self) -> Any:
        return lib.require("xgboost", package="xgboost", extra=self.extra, purpose="XGBoost models")

    def _parse(self, data: bytes, where: str) -> Any:
        xgb = self._xgboost()
        if not self.sniff(data, where):
            raise lib.bad_file(
                where, "it is not an XGBoost UBJSON or JSON model (no 'learner' object)"
            )
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data))
        except Exception as exc:  # XGBoostError, with a native stack trace after the first line
            raise lib.bad_file(where, lib.first_line(exc)) from exc
        return booster

    def _inspect(self, data: bytes, where: str) -> Prepared:
        booster = self._parse(data, where)
        names, named = _feature_names(booster)
        learner = json.loads(booster.save_config())["learner"]
        objective = str(learner["objective"]["name"])
        n_classes = int(learner["learner_model_param"].get("num_class", "0") or 0)
        n_targets = int(learner["learner_model_param"].get("num_target", "1") or 1)
        probabilities = objective in _PROBABILISTIC
        n_outputs = n_classes if objective == "multi:softprob" else n_targets
        return Prepared(
            data=data,
            n_features=len(names),
            signature=lib.make_signature(
                names, lib.output_specs(n_outputs, probabilities=probabilities)
            ),
            library_versions=self.library_versions(),
            params=_params(learner),
            named=named,
        )


def _feature_names(booster: Any) -> tuple[tuple[str, ...], bool]:
    names = booster.feature_names
    if names:
        return tuple(str(n) for n in names), True
    return lib.generic_names(int(booster.num_features())), False


def _params(learner: dict[str, Any]) -> dict[str, Any]:
    """The training parameters recorded in the booster's configuration."""
    params: dict[str, Any] = {
        "booster": learner["gradient_booster"].get("name"),
        "objective": learner["objective"].get("name"),
    }
    for section in (learner["gradient_booster"], learner["objective"]):
        for key, values in section.items():
            if key.endswith("_param") and isinstance(values, dict):
                params.update({k: _number(v) for k, v in values.items()})
    return lib.json_safe(params)


def _number(value: Any) -> Any:
    """XGBoost's configuration holds numbers as strings: ``"0.300000012"`` -> ``0.300000012``."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return number if np.isfinite(number) else value
