"""scikit-learn estimators and pipelines, stored with skops (a zip archive holding ``schema.json``,
loaded without pickle).

Loading checks the types the file would construct (``skops.io.get_untrusted_types``): types from
scikit-learn, NumPy, SciPy, ``collections``, builtin classes and the scikit-learn APIs of LightGBM
and XGBoost (with their boosters) are trusted; anything else, such as an estimator class from the
caller's own code or a builtin function other than a few pure ones (``abs``, ``round``...;
never ``eval``, ``exec`` or ``open``), raises :class:`GovernanceError` unless the caller passes
``trusted=True``.

Classifiers predict ``predict_proba`` (the probability of ``classes_[1]`` for binary ones, one
column per class otherwise); regressors predict ``predict``. Estimators fitted on a data frame know
their feature names (``named=True``) and are given a pandas frame with those columns, as in
training; others take the bare matrix and have inputs ``f0``...
"""

from __future__ import annotations

import builtins
import io
import zipfile
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mainspring.errors import GovernanceError, InvalidInputError
from mainspring.records import Signature
from mainspring.registry.flavors import _library as lib
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared

_SAFE_PREFIXES = (
    "sklearn.",
    "numpy.",
    "scipy.",
    "builtins.",
    "collections.",
    "lightgbm.sklearn.",
    "xgboost.sklearn.",
)
#: the boosters inside LightGBM's and XGBoost's scikit-learn estimators (their state is the model)
_SAFE_TYPES = frozenset({"lightgbm.basic.Booster", "xgboost.core.Booster"})
#: builtin functions that only compute on their arguments
_PURE_BUILTINS = frozenset(
    {"abs", "all", "any", "divmod", "len", "max", "min", "pow", "round", "sum"}
)


class EstimatorModel(LoadedModel):
    """Any estimator-like object (``predict_proba`` or ``predict``) ready to predict."""

    def __init__(
        self,
        flavor: str,
        signature: Signature,
        estimator: Any,
        order: list[int] | None,
        frame_columns: tuple[str, ...] | None,
    ) -> None:
        super().__init__(flavor, signature, estimator)
        self._order = order
        self._columns = list(frame_columns) if frame_columns is not None else None
        self._frame = _pandas().DataFrame if frame_columns is not None else None
        self._probabilities = _has(estimator, "predict_proba")
        self._method = estimator.predict_proba if self._probabilities else estimator.predict

    def _predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self._order is not None:
            matrix = matrix[:, self._order]
        rows: Any = matrix
        if self._frame is not None:  # fitted on a frame: give it one, so names are checked
            rows = self._frame(matrix, columns=self._columns, copy=False)
        out = np.asarray(self._method(rows), dtype=np.float64)
        if out.ndim == 2 and out.shape[1] == 2 and self._probabilities:
            return out[:, 1]
        if out.ndim == 2 and out.shape[1] == 1:
            return out.reshape(-1)
        return out


class SklearnFlavor(Flavor):
    """scikit-learn estimators and pipelines, saved with skops."""

    name: ClassVar[str] = "sklearn"
    extra: ClassVar[str] = "sklearn"

    def available(self) -> bool:
        return lib.installed("sklearn") and lib.installed("skops")

    def accepts(self, obj: object) -> bool:
        estimator = any(
            cls.__module__ == "sklearn.base" and cls.__name__ == "BaseEstimator"
            for cls in type(obj).__mro__
        )
        return estimator and (_has(obj, "predict_proba") or _has(obj, "predict"))

    def sniff(self, data: bytes, filename: str) -> bool:
        if not data.startswith(b"PK\x03\x04"):
            return False
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                return "schema.json" in archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return False

    def prepare(self, obj: object) -> Prepared:
        sio = self._skops()
        facts = describe(obj, "the model")
        try:
            data: bytes = sio.dumps(obj)
        except Exception as exc:  # skops refuses objects it cannot represent
            raise InvalidInputError(
                f"the {type(obj).__name__} cannot be saved with skops: {lib.first_line(exc)}",
                field="model",
            ) from exc
        return Prepared(data, library_versions=self.library_versions(), **facts)

    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        label = lib.file_label(filename)
        estimator = self._read(data, label, trusted=trusted)
        return Prepared(
            data, library_versions=self.library_versions(), **describe(estimator, label)
        )

    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        estimator = self._read(data, "the stored artifact", trusted=trusted)
        return estimator_model(self.name, estimator, signature)

    def library_versions(self) -> dict[str, str]:
        return lib.versions("scikit-learn", "skops", "numpy", "scipy")

    def _skops(self) -> Any:
        lib.require(
            "sklearn", package="scikit-learn", extra=self.extra, purpose="scikit-learn models"
        )
        return lib.require(
            "skops.io", package="skops", extra=self.extra, purpose="scikit-learn models"
        )

    def _read(self, data: bytes, what: str, *, trusted: bool) -> Any:
        sio = self._skops()
        if not self.sniff(data, what):
            raise lib.bad_file(what, "it is not a skops archive (a zip file holding schema.json)")
        try:
            types = [str(t) for t in sio.get_untrusted_types(data=data)]
        except Exception as exc:
            raise lib.bad_file(what, lib.first_line(exc)) from exc
        refused = [t for t in types if not _safe(t)]
        if refused and not trusted:
            raise GovernanceError(
                f"{what} holds types outside the safe list ({', '.join(refused)}); loading it "
                "would import and run their code: pass trusted=True if the source is trusted"
            )
        try:
            return sio.loads(data, trusted=types)
        except Exception as exc:  # corrupt schema, missing module...
            raise lib.bad_file(what, lib.first_line(exc)) from exc


def describe(estimator: Any, what: str) -> dict[str, Any]:
    """``n_features``, ``signature``, ``params`` and ``named`` of a fitted estimator."""
    if not (_has(estimator, "predict_proba") or _has(estimator, "predict")):
        raise InvalidInputError(
            f"{what} holds a {type(estimator).__name__}, which has neither predict_proba nor "
            "predict",
            field="model",
        )
    names, named = feature_names(estimator)
    if names is None:
        raise InvalidInputError(
            f"the {type(estimator).__name__} in {what} is not fitted (it has no n_features_in_): "
            "call fit() before registering it",
            field="model",
        )
    if _has(estimator, "predict_proba"):
        labels = list(getattr(estimator, "classes_", []))
        outputs = lib.output_specs(max(len(labels), 2), probabilities=True, labels=labels)
    else:
        outputs = lib.output_specs(1, probabilities=False)
    get_params = getattr(estimator, "get_params", None)
    params = lib.json_safe(get_params(deep=False)) if callable(get_params) else {}
    return {
        "n_features": len(names),
        "signature": lib.make_signature(names, outputs),
        "params": params,
        "named": named,
    }


def feature_names(estimator: Any) -> tuple[tuple[str, ...] | None, bool]:
    """The estimator's feature names and whether they are real; None when it is not fitted."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return tuple(str(n) for n in names), True
    try:
        n_features = getattr(estimator, "n_features_in_", None)
    except Exception:  # some wrappers raise when their inner estimator is not fitted
        n_features = None
    if isinstance(n_features, int | np.integer):
        return lib.generic_names(int(n_features)), False
    return None, False


def estimator_model(flavor: str, estimator: Any, signature: Signature) -> EstimatorModel:
    """Wrap a loaded estimator, checking ``signature`` against the features it was fitted on."""
    names, named = feature_names(estimator)
    if names is None:  # an estimator-like object that does not say: trust the signature
        names, named = signature.input_names, False
    order = lib.column_order(signature, names, named=named, flavor=flavor)
    return EstimatorModel(flavor, signature, estimator, order, names if named else None)


def _has(obj: object, method: str) -> bool:
    """Whether ``obj`` offers ``method`` (scikit-learn hides unavailable ones from hasattr)."""
    try:
        return callable(getattr(obj, method, None))
    except Exception:
        return False


def _safe(type_name: str) -> bool:
    if type_name in _SAFE_TYPES:
        return True
    if not type_name.startswith(_SAFE_PREFIXES):
        return False
    if type_name.startswith("builtins."):  # classes and pure functions, never eval, exec, open...
        name = type_name.removeprefix("builtins.")
        return name in _PURE_BUILTINS or isinstance(getattr(builtins, name, None), type)
    return True


def _pandas() -> Any:
    return lib.require(
        "pandas", package="pandas", extra="sklearn", purpose="Models fitted on data frames"
    )
