"""On-demand feature views: features computed at request time by one plain Python function.

The function takes columns (a dict of 1-D NumPy arrays) of **request context** values (the
``context`` fields: an amount, a channel, known only when the request comes) and, optionally,
features of other views (``inputs``), and returns the view's feature columns. It runs on the same
kind of arrays offline and online, through :func:`compute`, so a training set and a serving
request with the same entity, time and context get the same values:

- offline, the context values are columns of the entity frame given to
  ``get_historical_features`` and the input features come from the point-in-time join;
- online, ``get_online_features(service, entities, context={...})`` takes the context for one
  entity or per entity, and the input features come from the same online-store read.

Input columns are built by :func:`input_array`: floats as float64/float32 with ``NaN`` for a
missing value, integers as their type (float64 with ``NaN`` if one is missing), booleans as bool
(object with ``None`` if one is missing), strings as object arrays. An output ``NaN`` is a missing
value (``None`` online, null offline).

>>> import numpy as np
>>> def fee(columns):
...     return {"fee": columns["amount"] * 0.02}
>>> view = OnDemandFeatureView("pricing", context=[Field("amount")], fields=[Field("fee")],
...                            function=fee)
>>> compute(view, {"amount": [10.0, 250.0]}, 2)
{'fee': [0.2, 5.0]}
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.features.definitions import (
    FeatureView,
    Field,
    Transformation,
    _name,
    as_array,
    checked_tags,
    transformation_digest,
)
from mainspring.records import JSON

#: The kind under which on-demand views are registered.
KIND = "ondemand"
#: Modules whose functions cannot be imported again by name (scripts and definitions files).
SCRIPT_MODULES = frozenset({"__main__", "mainspring_features", "builtins"})


def _check_function(func: Any, where: str) -> None:
    """A function another process can find again: a top-level ``def`` of its module."""
    if not callable(func):
        raise InvalidInputError(
            f"{where}: function must be a function of columns", field="function"
        )
    qualname = getattr(func, "__qualname__", None)
    found = getattr(func, "__globals__", {}).get(qualname) if isinstance(qualname, str) else None
    if found is not func:
        raise InvalidInputError(
            f"{where}: function {qualname or func!r} must be a top-level 'def' of the definitions "
            "file (or of an importable module), not a lambda, a method or a nested function, so "
            "that serving processes can load it by name",
            field="function",
        )


@dataclass(frozen=True, slots=True)
class OnDemandFeatureView:
    """Features computed at request time from ``context`` values and other views' features.

    ``context`` lists the typed request values the function needs; ``inputs`` names features of
    other views (a :class:`FeatureView`, an ``OnDemandFeatureView``, ``"view"`` or
    ``"view:feature"``), passed to the function under their feature names; ``fields`` are the
    typed outputs. An input may be another on-demand view's output: views are computed in
    dependency order, and a cycle is refused at ``apply``.

    A row whose inputs are missing (an unknown entity, a row past its TTL, an on-demand input
    that is itself missing) gets null outputs and ``found = False``, and the function does not
    see it; with ``handles_missing=True`` the function gets every row, missing inputs as ``NaN``
    (``None`` for strings and booleans), and its outputs count as found.
    """

    name: str
    context: Sequence[Field]
    fields: Sequence[Field]
    function: Transformation
    inputs: Sequence[FeatureView | OnDemandFeatureView | str] = ()
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    handles_missing: bool = False

    def __post_init__(self) -> None:
        _name(self.name, "on_demand_view.name")
        where = f"on-demand feature view {self.name!r}"
        context = tuple(self.context)
        fields = tuple(self.fields)
        if not all(isinstance(f, Field) for f in (*context, *fields)):
            raise InvalidInputError(f"{where}: context and fields must be Field", field="fields")
        if not fields:
            raise InvalidInputError(f"{where} needs a non-empty list of Field", field="fields")
        seen: set[str] = set()
        for f in (*context, *fields):
            if f.name in seen:
                raise InvalidInputError(
                    f"{where}: {f.name!r} appears twice among its context and fields",
                    field=f"fields.{f.name}",
                )
            seen.add(f.name)
        inputs = tuple(self.inputs)
        for item in inputs:
            if not isinstance(item, FeatureView | OnDemandFeatureView) and not (
                isinstance(item, str) and item
            ):
                raise InvalidInputError(
                    f"{where}: input {item!r} is not a feature view or a 'view:feature' reference",
                    field="inputs",
                )
        if not context and not inputs:
            raise InvalidInputError(
                f"{where} needs context fields or inputs (features of other views)",
                field="context",
            )
        _check_function(self.function, where)
        if not isinstance(self.handles_missing, bool):
            raise InvalidInputError(
                f"{where}: handles_missing must be True or False", field="handles_missing"
            )
        tags = checked_tags(self.tags, where)
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "tags", tags)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def input_refs(self) -> tuple[str, ...]:
        return tuple(i if isinstance(i, str) else i.name for i in self.inputs)

    @property
    def input_views(self) -> tuple[str, ...]:
        """The names of the views the inputs come from, once each, in order."""
        return tuple(dict.fromkeys(ref.partition(":")[0] for ref in self.input_refs))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise InvalidInputError(
            f"on-demand feature view {self.name!r} has no feature {name!r}; it has: "
            f"{', '.join(self.feature_names)}",
            field=f"{self.name}:{name}",
        )

    def function_ref(self) -> JSON:
        return {
            "module": getattr(self.function, "__module__", None),
            "name": getattr(self.function, "__qualname__", "function"),
            "digest": transformation_digest(self.function),
        }

    def to_dict(self) -> JSON:
        out: JSON = {
            "name": self.name,
            "context": [f.to_dict() for f in self.context],
            "fields": [f.to_dict() for f in self.fields],
            "inputs": list(self.input_refs),
            "function": self.function_ref(),
            "owner": self.owner,
            "description": self.description,
            "tags": dict(self.tags),
        }
        if self.handles_missing:  # only when set: earlier definitions keep their digests
            out["handles_missing"] = True
        return out

    def breaking_changes(self, before: Mapping[str, Any]) -> list[str]:
        """How this definition breaks consumers of ``before`` (a stored ``to_dict``)."""
        changes: list[str] = []
        old_fields = {f["name"]: f["dtype"] for f in before["fields"]}
        new_fields = {f.name: f.dtype for f in self.fields}
        for name, dtype in old_fields.items():
            if name not in new_fields:
                changes.append(f"field {name!r} is removed")
            elif new_fields[name] != dtype:
                changes.append(f"field {name!r} changes type from {dtype} to {new_fields[name]}")
        old_context = {f["name"]: f["dtype"] for f in before["context"]}
        if old_context != {f.name: f.dtype for f in self.context}:
            changes.append("the context fields change")
        if list(before["inputs"]) != list(self.input_refs):
            changes.append("the inputs change")
        if before["function"]["digest"] != transformation_digest(self.function):
            changes.append("the function changes")
        if bool(before.get("handles_missing", False)) != self.handles_missing:
            changes.append("rows with missing inputs are handled differently")
        return changes


def _field_from(data: Mapping[str, Any]) -> Field:
    return Field(data["name"], data["dtype"], data.get("description", ""))


def view_from_dict(data: Mapping[str, Any], function: Transformation) -> OnDemandFeatureView:
    """An on-demand view from its stored form and its (loaded) function."""
    return OnDemandFeatureView(
        data["name"],
        context=[_field_from(f) for f in data["context"]],
        fields=[_field_from(f) for f in data["fields"]],
        function=function,
        inputs=list(data["inputs"]),
        owner=data.get("owner", ""),
        description=data.get("description", ""),
        tags=dict(data.get("tags", {})),
        handles_missing=bool(data.get("handles_missing", False)),
    )


def import_function(ref: Mapping[str, Any]) -> Transformation | None:
    """The function of a stored definition from its module, if it is importable and unchanged."""
    module, name = ref.get("module"), ref.get("name")
    if not isinstance(module, str) or not isinstance(name, str) or module in SCRIPT_MODULES:
        return None
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
    if callable(found) and transformation_digest(found) == ref.get("digest"):
        return found  # type: ignore[no-any-return]
    return None


def digest_of_function(data: Mapping[str, Any]) -> str | None:
    digest = data["function"].get("digest")
    return digest if isinstance(digest, str) else None


def schema_digest(view: OnDemandFeatureView) -> str:
    return hashlib.sha256(json.dumps(view.to_dict(), sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------- values


def input_array(values: Sequence[Any], dtype: str) -> npt.NDArray[Any]:
    """One input column as the function sees it (the same offline and online)."""
    missing = any(v is None for v in values)
    if dtype.startswith("float"):
        return np.array([math.nan if v is None else v for v in values], dtype=dtype)
    if dtype in ("string", "bool") and (missing or dtype == "string"):
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array
    if missing:  # an integer column with holes: float64 with NaN, as pandas does
        return np.array([math.nan if v is None else v for v in values], dtype="float64")
    return np.array(values, dtype=dtype)


def accepts(value: Any, dtype: str) -> bool:
    if dtype == "string":
        return isinstance(value, str)
    if dtype == "bool":
        return isinstance(value, bool | np.bool_)
    if isinstance(value, bool | np.bool_):
        return False
    if dtype.startswith("float"):
        return isinstance(value, int | float | np.integer | np.floating)
    if isinstance(value, np.integer):
        value = int(value)
    if not isinstance(value, int):
        return False
    info = np.iinfo(dtype)
    return int(info.min) <= value <= int(info.max)


def _python(value: Any, dtype: str) -> Any:
    """An output value as a plain Python value (``None`` for a missing one)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if dtype.startswith("float"):
        number = float(value)
        if math.isnan(number):
            return None
        return float(np.float32(number)) if dtype == "float32" else number
    if dtype == "bool":
        return bool(value)
    if dtype == "string":
        return value
    return int(value)


def output_values(view: OnDemandFeatureView, name: str, produced: Any, rows: int) -> list[Any]:
    """One output column as Python values of its field's type; errors name the view and field."""
    where = f"on-demand feature view {view.name!r}"
    dtype = view.field(name).dtype
    array = as_array(produced, name, where)
    if len(array) != rows:
        raise InvalidInputError(
            f"{where}: the function returned {len(array)} values for {name!r} from {rows} rows; "
            "keep one value per row",
            field=f"{view.name}:{name}",
        )
    kind = array.dtype.kind
    if dtype.startswith("float") and kind in "fiu":
        return [None if math.isnan(v) else v for v in array.astype(dtype).astype(float).tolist()]
    if dtype == "bool" and kind == "b":
        return [bool(v) for v in array.tolist()]
    integer = dtype not in ("string", "bool") and not dtype.startswith("float")
    plain = (integer and kind in "iu") or (dtype == "string" and kind == "U") or kind == "O"
    values = array.tolist() if plain else None
    if values is not None and all(v is None or accepts(v, dtype) for v in values):
        return [_python(v, dtype) for v in values]
    raise InvalidInputError(
        f"{where}: field {name!r} is declared {dtype} but the function returned "
        f"{array.dtype} values; return values of the declared type",
        field=f"{view.name}:{name}",
    )


def compute(
    view: OnDemandFeatureView,
    columns: Mapping[str, Sequence[Any]],
    rows: int,
    dtypes: Mapping[str, str] | None = None,
) -> dict[str, list[Any]]:
    """Run ``view``'s function on ``columns`` (Python values per input, by name) → Python values
    per output field. The one code path for training sets and serving requests."""
    types = {f.name: f.dtype for f in view.context}
    types.update(dtypes or {})
    if not rows:
        return {name: [] for name in view.feature_names}
    arrays = {name: input_array(values, types[name]) for name, values in columns.items()}
    try:
        produced = view.function(arrays)
    except InvalidInputError:
        raise
    except Exception as exc:  # the user's code: say whose it is
        raise InvalidInputError(
            f"on-demand feature view {view.name!r}: the function failed: "
            f"{type(exc).__name__}: {exc}",
            field="function",
        ) from exc
    if not isinstance(produced, Mapping):
        raise InvalidInputError(
            f"on-demand feature view {view.name!r}: the function must return a dict of columns",
            field="function",
        )
    out: dict[str, list[Any]] = {}
    for name in view.feature_names:
        if name not in produced:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r}: the function did not return field "
                f"{name!r}; it returned: {', '.join(map(str, produced)) or 'nothing'}",
                field=f"{view.name}:{name}",
            )
        out[name] = output_values(view, name, produced[name], rows)
    return out


def sample_value(dtype: str) -> Any:
    """A harmless value of ``dtype`` for trying a function at ``apply``."""
    return {"string": "a", "bool": True}.get(dtype, 1.0 if dtype.startswith("float") else 1)
