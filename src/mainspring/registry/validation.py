"""Checking what callers hand the registry: metric, tag and param values, reasons, signatures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mainspring.errors import InvalidInputError, SignatureError
from mainspring.records import Signature, check_name
from mainspring.registry.flavors.base import Prepared


def json_safe(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(f"{where} must be a finite number, not {value}", field=where)
        return value
    if isinstance(value, np.generic):
        return json_safe(value.item(), where)
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, f"{where}.{k}") for k, v in value.items()}
    return repr(value)


def metric_values(values: Mapping[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, raw in (values or {}).items():
        where = f"metrics.{key}"
        check_name(str(key), field=where)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{where} must be a number, not {raw!r}", field=where) from None
        if not math.isfinite(number):
            raise InvalidInputError(f"{where} must be a finite number, not {raw!r}", field=where)
        out[str(key)] = number
    return out


def tag_values(values: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, raw in (values or {}).items():
        check_name(str(key), field=f"tags.{key}")
        if not isinstance(raw, str | int | float | bool):
            raise InvalidInputError(f"tags.{key} must be a string", field=f"tags.{key}")
        out[str(key)] = str(raw)
    return out


def require_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInputError(f"{what} needs a reason", field="reason")
    return text


def fit_signature(
    prepared: Prepared, given: Signature | Mapping[str, Any] | None, flavor: str
) -> Signature:
    """The signature to record: the caller's, checked against the model, or the model's own."""
    if given is None:
        if not prepared.signature.inputs:
            raise SignatureError(
                f"the {flavor} model does not reveal its inputs; pass a signature naming them",
                field="signature",
            )
        return prepared.signature
    signature = given if isinstance(given, Signature) else Signature.from_dict(given)
    names = signature.input_names
    if prepared.n_features and len(names) != prepared.n_features:
        raise SignatureError(
            f"signature has {len(names)} inputs but the model takes {prepared.n_features} "
            f"features ({', '.join(prepared.signature.input_names)})",
            field="signature.inputs",
        )
    if prepared.named and names != prepared.signature.input_names:
        model_names = prepared.signature.input_names
        missing = [n for n in model_names if n not in names]
        extra = [n for n in names if n not in model_names]
        detail = (
            f"missing {', '.join(missing)}; unknown {', '.join(extra)}"
            if missing or extra
            else "same names in another order"
        )
        raise SignatureError(
            f"signature inputs do not match the model's features ({detail}); the model was "
            f"trained on: {', '.join(model_names)}",
            field="signature.inputs",
        )
    if not signature.outputs:
        signature = Signature(signature.inputs, prepared.signature.outputs)
    return signature
