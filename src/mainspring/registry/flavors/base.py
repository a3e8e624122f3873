"""The model-flavor interface: how one ML library's models are saved, recognised and loaded.

A flavor turns a live model object (or a file of its library's native format) into an artifact of
bytes plus what can be read off it (signature, params, library versions), and turns the bytes back
into a :class:`LoadedModel` that predicts. Flavors import their library lazily, so importing this
package never imports LightGBM, XGBoost, scikit-learn or ONNX Runtime.

Every flavor passes the same conformance suite (``tests/conformance/test_flavors.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from mainspring.errors import SignatureError
from mainspring.records import Signature


@dataclass(frozen=True, slots=True)
class Prepared:
    """A model made ready for the registry: its artifact and what the flavor read off it.

    ``signature`` is what the model itself reveals (feature names may be generic such as ``f0``
    when the model was trained on a bare array); ``n_features`` is always known.
    """

    data: bytes
    n_features: int
    signature: Signature
    library_versions: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    #: True when the model knows real feature names (trained on a data frame, named features)
    named: bool = False


class LoadedModel(abc.ABC):
    """A model ready to predict. Inputs are matched to the signature by name or position."""

    def __init__(self, flavor: str, signature: Signature, native: Any) -> None:
        self.flavor = flavor
        self.signature = signature
        #: the library's own model object (Booster, estimator, InferenceSession...)
        self.native = native

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.flavor} inputs={list(self.signature.input_names)}>"

    def matrix(self, rows: Any) -> npt.NDArray[np.float64]:
        """Turn ``rows`` into a 2-D float64 array in signature order.

        ``rows`` may be a 2-D array (columns in signature order), a mapping of column name to
        values, or a pandas/polars data frame (columns picked by name, extra columns ignored).
        """
        names = self.signature.input_names
        columns = getattr(rows, "columns", None)
        if isinstance(rows, Mapping) or columns is not None:
            available = set(rows.keys() if isinstance(rows, Mapping) else [str(c) for c in columns])  # type: ignore[union-attr]
            missing = [n for n in names if n not in available]
            if missing:
                raise SignatureError(
                    f"feature{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
                    f"missing from the input; the model needs: {', '.join(names)}",
                    field=missing[0],
                )
            cols = [np.asarray(rows[n], dtype=np.float64).reshape(-1) for n in names]
            return np.column_stack(cols) if cols else np.empty((0, 0))
        array = np.asarray(rows, dtype=np.float64)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        if array.ndim != 2 or array.shape[1] != len(names):
            raise SignatureError(
                f"input has shape {array.shape}; the model needs rows of {len(names)} features "
                f"({', '.join(names)})",
                field="input",
            )
        return array

    def predict(self, rows: Any) -> npt.NDArray[np.float64]:
        """Scores for ``rows``: probabilities of the positive class for binary classifiers, one
        column per class for multi-class ones, predicted values for regressors."""
        return self._predict(self.matrix(rows))

    @abc.abstractmethod
    def _predict(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Predict on a validated 2-D float64 matrix in signature order."""


class Flavor(abc.ABC):
    """One ML library's model format."""

    #: the flavor's name as stored in the registry (``lightgbm``, ``sklearn``...)
    name: ClassVar[str]
    #: the pip extra that installs the library (``mainspring[<extra>]``)
    extra: ClassVar[str]
    #: loading needs the caller's explicit trust (arbitrary code can run on load)
    needs_trust: ClassVar[bool] = False

    @abc.abstractmethod
    def available(self) -> bool:
        """Whether the library is installed (checked without importing it)."""

    @abc.abstractmethod
    def accepts(self, obj: object) -> bool:
        """Whether ``obj`` is a live model of this library (checked without importing it)."""

    @abc.abstractmethod
    def sniff(self, data: bytes, filename: str) -> bool:
        """Whether ``data`` (the contents of ``filename``) is a model file of this flavor."""

    @abc.abstractmethod
    def prepare(self, obj: object) -> Prepared:
        """Serialise a live model and read its facts."""

    @abc.abstractmethod
    def prepare_file(self, data: bytes, filename: str, *, trusted: bool = False) -> Prepared:
        """Validate a model file by loading it, and read its facts. Corrupt files raise
        ``InvalidInputError`` naming the file; ``trusted`` allows types a safe format would
        otherwise refuse to load."""

    @abc.abstractmethod
    def load(self, data: bytes, signature: Signature, *, trusted: bool = False) -> LoadedModel:
        """Load an artifact of this flavor, ready to predict."""

    @abc.abstractmethod
    def library_versions(self) -> dict[str, str]:
        """The versions of the libraries this flavor uses, for the registry record."""
