"""Reading models saved by MLflow (``mlflow.<flavor>.save_model`` or a run's artifact directory)
without MLflow installed.

An MLflow model is a directory holding an ``MLmodel`` YAML file and the model file it names.
:func:`read_mlflow_model` finds the underlying file of a flavor Mainspring understands and returns
its bytes with what MLmodel says about it (signature, run, creation time); registering it is then
an ordinary ``prepare_file`` of that flavor.

======================  ==========================  ==========================================
MLmodel flavor          file key                    Mainspring flavor
======================  ==========================  ==========================================
``lightgbm``            ``data`` (``model.lgb``)    ``lightgbm``; ``pickle`` for the pickled
                                                    scikit-learn API (``model.pkl``)
``xgboost``             ``data``                    ``xgboost`` (UBJSON or JSON model files)
``onnx``                ``data`` (``model.onnx``)   ``onnx``
``sklearn``             ``pickled_model``           ``sklearn`` for ``serialization_format:
                                                    skops``, else ``pickle`` (needs trust)
======================  ==========================  ==========================================
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from mainspring.errors import InvalidInputError, UnsupportedFormatError
from mainspring.records import Signature
from mainspring.registry.flavors.base import Flavor
from mainspring.registry.flavors.lightgbm import LightGBMFlavor
from mainspring.registry.flavors.pickle import PickleFlavor
from mainspring.registry.flavors.xgboost import XGBoostFlavor

#: MLflow flavors Mainspring reads, in order of preference, with the key naming their file
_FILE_KEYS = {"lightgbm": "data", "xgboost": "data", "onnx": "data", "sklearn": "pickled_model"}
_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
}


@dataclass(frozen=True, slots=True)
class MlflowImport:
    """The model file inside an MLflow model directory and what its MLmodel says about it."""

    #: the Mainspring flavor of ``data``: lightgbm, xgboost, sklearn, onnx or pickle
    flavor: str
    data: bytes
    filename: str
    #: from a column-based MLmodel signature; None when absent or tensor-based
    signature: Signature | None
    run_id: str | None
    created: datetime | None
    mlflow_version: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def read_mlflow_model(directory: pathlib.Path) -> MlflowImport:
    """Read the MLflow model in ``directory``.

    Raises :class:`UnsupportedFormatError` (field ``path``) when there is no ``MLmodel`` file, it
    names no flavor Mainspring reads (``python_function`` alone is not enough), or the model file
    it names is missing.
    """
    directory = pathlib.Path(directory)
    spec = _read_mlmodel(directory)
    flavors = spec.get("flavors")
    found = sorted(flavors) if isinstance(flavors, Mapping) else []
    chosen = next((name for name in _FILE_KEYS if name in found), None)
    if chosen is None or not isinstance(flavors, Mapping):
        raise _unsupported(
            f"MLflow model {str(directory)!r} has flavors {', '.join(found) or 'none'}; "
            f"Mainspring reads {', '.join(_FILE_KEYS)}"
        )
    config = flavors[chosen] if isinstance(flavors[chosen], Mapping) else {}
    path = _model_file(directory, config.get(_FILE_KEYS[chosen]), chosen, found)
    data = path.read_bytes()
    flavor = _mainspring_flavor(chosen, config, data, path.name)
    metadata = {
        "mlflow_flavor": chosen,
        "flavor_config": _plain(dict(config)),
        "model_uuid": spec.get("model_uuid"),
        "artifact_path": spec.get("artifact_path"),
        "metadata": _plain(spec.get("metadata") or {}),
    }
    return MlflowImport(
        flavor=flavor,
        data=data,
        filename=path.name,
        signature=_signature(spec.get("signature")),
        run_id=_text(spec.get("run_id")),
        created=_created(spec.get("utc_time_created")),
        mlflow_version=_text(spec.get("mlflow_version")),
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


def _read_mlmodel(directory: pathlib.Path) -> dict[str, Any]:
    path = directory / "MLmodel"
    if not path.is_file():
        raise _unsupported(
            f"{str(directory)!r} is not an MLflow model directory: it has no MLmodel file"
        )
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _unsupported(
            f"the MLmodel file in {str(directory)!r} is not valid YAML: {exc}"
        ) from exc
    if not isinstance(spec, dict):
        raise _unsupported(f"the MLmodel file in {str(directory)!r} is not a YAML mapping")
    return spec


def _model_file(
    directory: pathlib.Path, name: object, flavor: str, found: list[str]
) -> pathlib.Path:
    if not isinstance(name, str) or not name:
        raise _unsupported(
            f"MLflow model {str(directory)!r} (flavors {', '.join(found)}) does not name the "
            f"{flavor} model file"
        )
    root = directory.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise _unsupported(
            f"MLflow model {str(directory)!r} names a {flavor} model file outside its directory: "
            f"{name!r}"
        )
    if not path.is_file():
        raise _unsupported(
            f"MLflow model {str(directory)!r} (flavors {', '.join(found)}) names the {flavor} "
            f"model file {name!r}, which is missing"
        )
    return path


def _mainspring_flavor(chosen: str, config: Mapping[str, Any], data: bytes, filename: str) -> str:
    checks: dict[str, Flavor] = {"lightgbm": LightGBMFlavor(), "xgboost": XGBoostFlavor()}
    if chosen == "sklearn":
        return "sklearn" if config.get("serialization_format") == "skops" else "pickle"
    if chosen in checks and not checks[chosen].sniff(data, filename):
        if PickleFlavor().sniff(data, filename):  # mlflow pickles the scikit-learn API models
            return "pickle"
        raise _unsupported(
            f"the {chosen} model file {filename!r} is in a format Mainspring does not read "
            "(XGBoost's legacy binary format?): save it as UBJSON or JSON"
        )
    return chosen


def _signature(spec: object) -> Signature | None:
    """A signature from MLmodel's JSON strings; None unless the inputs are named columns."""
    if not isinstance(spec, Mapping):
        return None
    inputs = _columns(spec.get("inputs"), "input")
    if not inputs:
        return None
    outputs = _columns(spec.get("outputs"), "output") or []
    try:
        return Signature.from_dict({"inputs": inputs, "outputs": outputs})
    except InvalidInputError:  # duplicate names and the like: leave the signature to the caller
        return None


def _columns(text: object, kind: str) -> list[dict[str, str]] | None:
    """Column specs from a column-based MLflow schema; None for tensor-based or unknown types."""
    try:
        items = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None
    if not isinstance(items, list) or not items:
        return None
    columns: list[dict[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or item.get("type") not in _TYPES:
            return None  # "tensor", or a type without a Mainspring dtype
        name = item.get("name")
        if not isinstance(name, str):
            if kind == "input":
                return None
            name = "prediction" if len(items) == 1 else f"prediction_{i}"
        columns.append({"name": name, "dtype": _TYPES[item["type"]]})
    return columns


def _created(value: object) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _plain(value: Any) -> Any:
    """YAML values made JSON-safe (dates become ISO strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _unsupported(message: str) -> UnsupportedFormatError:
    return UnsupportedFormatError(message, field="path")
