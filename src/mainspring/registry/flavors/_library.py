"""What every flavor needs from its ML library: a lazy import with an install hint, the installed
versions, and the small shared vocabulary for signatures, params and bad files.

Nothing here imports an ML library at module import time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from mainspring.errors import InvalidInputError, MissingDependencyError, SignatureError
from mainspring.records import FeatureSpec, Signature


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, *, package: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` with an install hint."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package, extra=extra, purpose=purpose) from exc


def versions(*distributions: str) -> dict[str, str]:
    """The installed versions of ``distributions`` (missing ones are left out)."""
    found: dict[str, str] = {}
    for name in distributions:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def generic_names(n_features: int) -> tuple[str, ...]:
    """The names given to the columns of a model trained on a bare array: ``f0``, ``f1``..."""
    return tuple(f"f{i}" for i in range(n_features))


def output_specs(
    n_outputs: int, *, probabilities: bool, labels: Sequence[object] = ()
) -> tuple[FeatureSpec, ...]:
    """The output columns: ``probability`` (binary), ``probability_<class>`` per class
    (multi-class), ``prediction`` (regressors and scores) or ``prediction_<i>`` (several)."""
    if n_outputs <= 1 or (probabilities and n_outputs == 2):
        return (FeatureSpec("probability" if probabilities else "prediction", "float64"),)
    names = [str(label) for label in labels] if probabilities and len(labels) == n_outputs else []
    names = names or [str(i) for i in range(n_outputs)]
    prefix = "probability" if probabilities else "prediction"
    return tuple(FeatureSpec(f"{prefix}_{name}", "float64") for name in names)


def make_signature(
    names: Iterable[str], outputs: tuple[FeatureSpec, ...], dtype: str = "float64"
) -> Signature:
    """A signature whose inputs all share ``dtype``."""
    return Signature(tuple(FeatureSpec(name, dtype) for name in names), outputs)


def json_safe(params: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters as JSON: str, int, float, bool and None kept, anything else ``repr``-ed."""
    safe: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or isinstance(value, str | bool | int | float):
            safe[str(key)] = value
        else:
            safe[str(key)] = repr(value)
    return safe


def file_label(filename: str) -> str:
    """How errors name a model file."""
    return f"model file {filename!r}"


def bad_file(what: str, problem: str) -> InvalidInputError:
    """The error for a corrupt, truncated or otherwise unreadable model file; ``what`` names it
    (``file_label(filename)``, or "the stored artifact")."""
    return InvalidInputError(f"{what} cannot be read: {problem}", field="file")


def first_line(exc: BaseException) -> str:
    """The first line of a library's error message (native libraries append stack traces)."""
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def column_order(
    signature: Signature, model_names: Sequence[str], *, named: bool, flavor: str
) -> list[int] | None:
    """Check ``signature`` fits a model of ``model_names``; return the column permutation that
    takes signature order to model order, or None when they already agree.

    Models that know real feature names need the same names (in any order); other models only
    need the same number of inputs.
    """
    given = signature.input_names
    if not given:
        raise SignatureError(
            f"the {flavor} model needs a signature with its {len(model_names)} inputs",
            field="signature.inputs",
        )
    if len(given) != len(model_names):
        raise SignatureError(
            f"the signature has {len(given)} inputs but the {flavor} model takes "
            f"{len(model_names)}: {', '.join(model_names)}",
            field="signature.inputs",
        )
    if not named or tuple(given) == tuple(model_names):
        return None
    unknown = sorted(set(given) - set(model_names))
    if unknown:
        raise SignatureError(
            f"signature inputs {', '.join(map(repr, unknown))} are not features of the "
            f"{flavor} model; it was trained on: {', '.join(model_names)}",
            field="signature.inputs",
        )
    position = {name: i for i, name in enumerate(given)}
    return [position[name] for name in model_names]
