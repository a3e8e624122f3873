"""LightGBM models: ``lightgbm.Booster`` and the scikit-learn API (``LGBMClassifier``,
``LGBMRegressor``, ``LGBMRanker``).

The artifact is LightGBM's own text model (``Booster.model_to_string()``), nothing added: the
objective written in its header says what the scores mean. Binary and multi-class objectives make
``Booster.predict`` return probabilities (of class 1, or one column per class), so a saved
``LGBMClassifier`` predicts what its ``predict_proba`` gave (the positive-class column for binary
models); regressors and rankers predict their values. Class labels of an ``LGBMClassifier`` are
not part of the native file: outputs are named by class index.

Feature names come from the model; LightGBM calls the columns of a bare array ``Column_0``...,
which count as unnamed (``named=False``, signature inputs ``f0``...).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.records import Signature
from mainspring.registry.flavors import _library as lib
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared

#: objectives whose predictions are probabilities
_PROBABILISTIC = frozenset(
    {"binary", "multiclass", "multiclassova", "cross_entropy", "xentropy", "cross_entropy_lambda"}
)
_LIVE_TYPES = frozenset({"Booster", "LGBMModel"})

log = logging.getLogger("mainspring.registry")


class _SingleRow:
    """LightGBM's single-row fast path (``LGBM_BoosterPredictForMatSingleRowFast``).

    ``Booster.predict`` spends about 0.2 ms validating and converting even one row (more when its
    OpenMP threads contend for the cores); the C API's single-row path, set up once per model,
    takes about 20 us and runs the same predictor, so its scores are the same bits. The Python
    package does not wrap it, so it is reached through the package's loaded library; when that is
    missing (another LightGBM build), prediction stays on ``Booster.predict``.
    """

    def __init__(self, booster: Any) -> None:
        import ctypes

        from lightgbm import basic

        self._lib = basic._LIB  # type: ignore[attr-defined]  # not public: see the docstring
        # through a PyDLL handle of the same library the call keeps the GIL: releasing it for
        # 20 us lets a busy thread (the decision log's mirror) take it for up to 5 ms
        held = ctypes.PyDLL(self._lib._name, handle=self._lib._handle)
        self._call = held.LGBM_BoosterPredictForMatSingleRowFast
        self._call.restype = ctypes.c_int
        self.n_features = int(booster.num_feature())
        self.outputs = int(booster.num_model_per_iteration())
        iterations = booster.best_iteration if booster.best_iteration > 0 else -1
        handle = ctypes.c_void_p()
        status = self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle,
            ctypes.c_int(0),  # C_API_PREDICT_NORMAL: what Booster.predict returns
            ctypes.c_int(0),  # start iteration
            ctypes.c_int(iterations),
            ctypes.c_int(1),  # C_API_DTYPE_FLOAT64
            ctypes.c_int32(self.n_features),
            basic._c_str("num_threads=1"),
            ctypes.byref(handle),
        )
        if status != 0:
            raise RuntimeError(self._lib.LGBM_GetLastError().decode("utf-8", "replace"))
        self._handle = handle
        self._length = ctypes.c_int64()
        self._lock = threading.Lock()  # one FastConfig: calls on it are serialised
        # the row and the scores go through buffers of this object, their addresses taken once
        # (numpy's ``.ctypes`` costs more per call than LightGBM's whole prediction)
        self._row = np.empty(self.n_features, dtype=np.float64)
        self._out = np.empty(self.outputs, dtype=np.float64)
        self._row_at = ctypes.c_void_p(self._row.ctypes.data)
        self._out_at = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._length_at = ctypes.byref(self._length)

    def predict(self, row: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        with self._lock:
            self._row[:] = row
            status = self._call(self._handle, self._row_at, self._length_at, self._out_at)
            out = self._out.copy()
        if status != 0:
            message = self._lib.LGBM_GetLastError().decode("utf-8", "replace")
            raise InvalidInputError(f"LightGBM refused the row: {message}")
        return out

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            self._lib.LGBM_FastConfigFree(handle)


class LightGBMModel(LoadedModel):
    """A LightGBM booster ready to predict; one row at a time through :class:`_SingleRow`."""

    def __init__(self, signature: Signature, booster: Any, order: list[int] | None) -> None:
        super().__init__("lightgbm", signature, booster)
        self._order = order
        self._single: _SingleRow | None = None
        try:
            self._single = _SingleRow(booster)
        except (ImportError, AttributeError, RuntimeError):  # another build: the general path
            log.debug("LightGBM's single-row fast path is unavailable", exc_info=True)

    def _predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self._order is not None:
            matrix = matrix[:, self._order]
        if self._single is not None and matrix.shape[0] == 1:
            scores = self._single.predict(matrix[0])  # shaped as Booster.predict shapes them
            return scores if self._single.outputs == 1 else scores.reshape(1, -1)
        return np.asarray(self.native.predict(matrix), dtype=np.float64)


class LightGBMFlavor(Flavor):
    """LightGBM boosters in their native text format."""

    name: ClassVar[str] = "lightgbm"
    extra: ClassVar[str] = "lightgbm"

    def available(self) -> bool:
        return lib.installed("lightgbm")

    def accepts(self, obj: object) -> bool:
        return any(
            cls.__module__.startswith("lightgbm.") and cls.__name__ in _LIVE_TYPES
            for cls in type(obj).__mro__
        )

    def sniff(self, data: bytes, filename: str) -> bool:
        return data.startswith(b"tree\n") and b"version=v" in data[:64]

    def prepare(self, obj: object) -> Prepared:
        lgb = self._lightgbm()
        booster: Any = obj
        if not isinstance(obj, lgb.Booster):
            try:
                booster = booster.booster_
            except Exception as exc:  # LGBMNotFittedError and kin
                raise InvalidInputError(
                    f"the {type(obj).__name__} is not fitted: call fit() before registering it",
                    field="model",
                ) from exc
        text: str = booster.model_to_string()
        return self._inspect(text.encode("utf-8"), "the serialised model")

    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        return self._inspect(data, lib.file_label(filename))

    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        booster = self._parse(data, "the stored artifact")
        names, named = _feature_names(booster)
        order = lib.column_order(signature, names, named=named, flavor=self.name)
        return LightGBMModel(signature, booster, order)

    def library_versions(self) -> dict[str, str]:
        return lib.versions("lightgbm", "numpy")

    def _lightgbm(self) -> Any:
        return lib.require(
            "lightgbm", package="lightgbm", extra=self.extra, purpose="LightGBM models"
        )

    def _parse(self, data: bytes, where: str) -> Any:
        lgb = self._lightgbm()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise lib.bad_file(where, "it is not a LightGBM text model (not UTF-8 text)") from exc
        if not self.sniff(data, where):
            raise lib.bad_file(where, "it is not a LightGBM text model (no 'tree' header)")
        if "\nend of trees" not in text:
            raise lib.bad_file(where, "the LightGBM model is truncated ('end of trees' missing)")
        try:
            return lgb.Booster(model_str=text)
        except Exception as exc:  # LightGBMError for malformed text
            raise lib.bad_file(where, lib.first_line(exc)) from exc

    def _inspect(self, data: bytes, where: str) -> Prepared:
        booster = self._parse(data, where)
        names, named = _feature_names(booster)
        objective, n_classes = _objective(data)
        outputs = lib.output_specs(n_classes, probabilities=objective in _PROBABILISTIC)
        return Prepared(
            data=data,
            n_features=len(names),
            signature=lib.make_signature(names, outputs),
            library_versions=self.library_versions(),
            params=lib.json_safe(booster.params or {}),
            named=named,
        )


def _feature_names(booster: Any) -> tuple[tuple[str, ...], bool]:
    """The booster's feature names, and whether they are real (not LightGBM's ``Column_i``)."""
    names = tuple(str(n) for n in booster.feature_name())
    if names == tuple(f"Column_{i}" for i in range(len(names))):
        return lib.generic_names(len(names)), False
    return names, True


def _objective(data: bytes) -> tuple[str, int]:
    """The objective name and number of classes, read from the model text's header."""
    header = data.split(b"\nTree=", 1)[0].decode("utf-8", "replace")
    objective, n_classes = "", 1
    for line in header.splitlines():
        key, _, value = line.partition("=")
        if key == "objective" and value:
            objective = value.split()[0]
        elif key == "num_class" and value.strip().isdigit():
            n_classes = int(value)
    return objective, n_classes
