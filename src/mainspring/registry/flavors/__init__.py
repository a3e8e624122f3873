"""The model flavors, wired explicitly: no import-string registry, no import side effects.

``FLAVORS`` lists one instance of each flavor, in the order they are tried: LightGBM and XGBoost
come before scikit-learn because their scikit-learn API estimators are scikit-learn estimators
too, and pickle comes last. Importing this package imports none of the ML libraries.
"""

from __future__ import annotations

from mainspring.errors import InvalidInputError, UnsupportedFormatError
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared
from mainspring.registry.flavors.lightgbm import LightGBMFlavor
from mainspring.registry.flavors.mlflow import MlflowImport, read_mlflow_model
from mainspring.registry.flavors.onnx import OnnxFlavor
from mainspring.registry.flavors.pickle import PickleFlavor
from mainspring.registry.flavors.sklearn import SklearnFlavor
from mainspring.registry.flavors.xgboost import XGBoostFlavor

__all__ = [
    "FLAVORS",
    "Flavor",
    "LightGBMFlavor",
    "LoadedModel",
    "MlflowImport",
    "OnnxFlavor",
    "PickleFlavor",
    "Prepared",
    "SklearnFlavor",
    "XGBoostFlavor",
    "flavor_for_file",
    "flavor_for_object",
    "get_flavor",
    "read_mlflow_model",
]

FLAVORS: tuple[Flavor, ...] = (
    LightGBMFlavor(),
    XGBoostFlavor(),
    SklearnFlavor(),
    OnnxFlavor(),
    PickleFlavor(),
)


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    >>> get_flavor("lightgbm").extra
    'lightgbm'
    >>> get_flavor("tensorflow")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mainspring.errors.InvalidInputError: unknown model flavor 'tensorflow'; known: lightgbm, ...
    """
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    raise InvalidInputError(
        f"unknown model flavor {name!r}; known: {', '.join(f.name for f in FLAVORS)}",
        field="flavor",
    )


def flavor_for_object(obj: object) -> Flavor:
    """The flavor that saves live model ``obj`` (found without importing any ML library)."""
    for flavor in FLAVORS:
        if flavor.accepts(obj):
            return flavor
    kind = type(obj)
    raise UnsupportedFormatError(
        f"no model flavor saves a {kind.__module__}.{kind.__qualname__}; Mainspring takes "
        "LightGBM and XGBoost boosters and their scikit-learn estimators, fitted scikit-learn "
        "estimators and pipelines, and onnx.ModelProto",
        field="model",
    )


def flavor_for_file(data: bytes, filename: str) -> Flavor:
    """The flavor of model file ``filename`` with contents ``data``."""
    for flavor in FLAVORS:
        if flavor.sniff(data, filename):
            return flavor
    raise UnsupportedFormatError(
        f"model file {filename!r} is not in a format Mainspring reads: LightGBM text models, "
        "XGBoost UBJSON or JSON models, skops archives, ONNX models or (trusted) pickles",
        field="file",
    )
