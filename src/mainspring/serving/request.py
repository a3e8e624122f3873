"""What a caller asks of a deciding deployment, the checks on it, and the model input row made
from it and the features read for it (:func:`model_row`).

>>> DecisionRequest.from_dict({"entity": {"customer_id": 7}, "context": {"amount": 120.0}}).entity
{'customer_id': 7}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.records import FeatureValue
from mainspring.records.decisions import feature_value
from mainspring.serving.runtime import ModelRuntime

#: The JSON scalars an entity key or a context value may be.
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """What a caller asks: entity keys, request context, an optional request id and arm."""

    entity: Mapping[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    arm: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> DecisionRequest:
        if not isinstance(data, Mapping):
            raise InvalidInputError("the body must be a JSON object", field="body")
        unknown = sorted(set(data) - {"entity", "context", "request_id", "arm"})
        if unknown:
            raise InvalidInputError(
                f"{unknown[0]!r} is not a field of a decision request; use entity, context, "
                "request_id, arm",
                field=unknown[0],
            )
        entity = data.get("entity", {})
        context = data.get("context", {})
        for name, value in (("entity", entity), ("context", context)):
            if not isinstance(value, Mapping):
                raise InvalidInputError(f"{name} must be an object", field=name)
            for key, item in value.items():
                if not isinstance(item, SCALARS):
                    raise InvalidInputError(
                        f"{name}.{key} must be a string, number, boolean or null, "
                        f"not {type(item).__name__}",
                        field=f"{name}.{key}",
                    )
                if isinstance(item, float) and not math.isfinite(item):
                    raise InvalidInputError(f"{name}.{key} must be finite", field=f"{name}.{key}")
        for name in ("request_id", "arm"):
            value = data.get(name)
            if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 128):
                raise InvalidInputError(f"{name} must be a string of 1-128 characters", field=name)
        return cls(dict(entity), dict(context), data.get("request_id"), data.get("arm"))


def check_entity(
    keys: tuple[tuple[str, bool], ...],
    entity: Mapping[str, Any],
    deployment: str,
    service: str | None,
) -> None:
    """``entity`` has exactly the join ``keys`` (name, is-integer) of the feature service."""
    names = [k for k, _ in keys]
    missing = [k for k in names if k not in entity]
    if missing:
        raise InvalidInputError(
            f"entity.{missing[0]} is missing; deployment {deployment!r} needs entity "
            f"keys: {', '.join(names)}",
            field=f"entity.{missing[0]}",
        )
    extra = sorted(set(entity) - set(names))
    if extra:
        raise InvalidInputError(
            f"entity.{extra[0]} is not a key of the feature service {service!r}; keys: "
            f"{', '.join(names)}",
            field=f"entity.{extra[0]}",
        )
    for key, integer in keys:
        value = entity[key]
        ok = (type(value) is int) if integer else isinstance(value, str)
        if not ok:
            raise InvalidInputError(
                f"entity.{key} must be {'an integer' if integer else 'a string'}, not "
                f"{type(value).__name__} {value!r}",
                field=f"entity.{key}",
            )


def number(value: Any) -> float:
    """A model input from a feature or context value (None is missing: NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(type(value).__name__)


def model_row(
    columns: Mapping[str, tuple[str, int]],
    service: str | None,
    runtime: ModelRuntime,
    context: Mapping[str, Any],
    values: Mapping[str, Any],
    as_of: Mapping[str, datetime | None],
) -> tuple[npt.NDArray[np.float64], tuple[FeatureValue, ...]]:
    """The model's input row in signature order, and what was read for it: ``values`` from the
    feature service ``service`` (``columns`` maps a column to its view and version), else the
    request's ``context``; a value that is not a number, or a missing one, is refused by name."""
    numbers: list[float] = []
    seen: list[FeatureValue] = []
    missing: list[str] = []
    for name in runtime.feature_names:
        if name in values:
            value = values[name]
            view = columns.get(name, (None, 0))[0]
            seen.append(feature_value(name, value, as_of.get(name), view))
        elif name in context:
            value = context[name]
            seen.append(feature_value(name, value, None, None))
        else:
            missing.append(name)
            continue
        if type(value) is float:  # the usual input: nothing to convert or refuse
            numbers.append(value)
            continue
        try:
            numbers.append(number(value))
        except TypeError:
            where = f"context.{name}" if name not in values else f"features.{name}"
            raise InvalidInputError(
                f"{where} is {value!r}; model {runtime.name} needs a number", field=where
            ) from None
    if missing:
        raise InvalidInputError(
            f"context.{missing[0]} is missing: model {runtime.name} needs "
            f"{', '.join(missing)}, which neither the feature service "
            f"{service!r} nor the request context gives",
            field=f"context.{missing[0]}",
        )
    row = np.array([numbers], dtype=np.float64)
    total = sum(numbers)
    if total - total != 0.0:  # a NaN or an infinity (or an overflowing sum): look closely
        runtime.check_finite(row)
    return row, tuple(seen)
