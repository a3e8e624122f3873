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
    transformation_digest,
)
from mainspring.features.plans import Selection, select
from mainspring.records import JSON, check_name

#: The kind under which on-demand views are registered.
KIND = "ondemand"
#: Modules whose functions cannot be imported again by name (scripts and definitions files).
SCRIPT_MODULES = frozenset({"__main__", "mainspring_features", "builtins"})

#: A request context: one mapping for every entity (scalars) or per entity (lists, or a list of
#: mappings).
Context = Mapping[str, Any] | Sequence[Mapping[str, Any]]


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
    other views (a :class:`FeatureView`, ``"view"`` or ``"view:feature"``), passed to the function
    under their feature names; ``fields`` are the typed outputs.
    """

    name: str
    context: Sequence[Field]
    fields: Sequence[Field]
    function: Transformation
    inputs: Sequence[FeatureView | str] = ()
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

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
            if not isinstance(item, FeatureView) and not (isinstance(item, str) and item):
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
        tags = dict(self.tags)
        for key, value in tags.items():
            check_name(str(key), field=f"tags.{key}")
            if not isinstance(value, str):
                raise InvalidInputError(
                    f"{where}: tag {key!r} must be a string", field=f"tags.{key}"
                )
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "fields", fields)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "tags", tags)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def input_refs(self) -> tuple[str, ...]:
        return tuple(i.name if isinstance(i, FeatureView) else i for i in self.inputs)

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
        return {
            "name": self.name,
            "context": [f.to_dict() for f in self.context],
            "fields": [f.to_dict() for f in self.fields],
            "inputs": list(self.input_refs),
            "function": self.function_ref(),
            "owner": self.owner,
            "description": self.description,
            "tags": dict(self.tags),
        }

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


def _accepts(value: Any, dtype: str) -> bool:
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
    if values is not None and all(v is None or _accepts(v, dtype) for v in values):
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


# ---------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class OnDemandPart:
    """The features taken from one on-demand view and the input features it reads."""

    view: OnDemandFeatureView
    version: int
    features: tuple[str, ...]
    #: (feature name, dtype) of each input feature, as passed to the function.
    inputs: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request reads from the stores and what it computes on demand.

    ``selection`` holds the requested stored features plus the inputs of on-demand views;
    ``hidden`` are feature columns read only as inputs and ``hidden_views`` views read only for
    inputs: neither is returned.
    """

    selection: Selection
    ondemand: tuple[OnDemandPart, ...] = ()
    hidden: tuple[str, ...] = ()
    hidden_views: tuple[str, ...] = ()

    @property
    def context_fields(self) -> dict[str, tuple[str, str]]:
        """Context field → (dtype, the first view that needs it)."""
        out: dict[str, tuple[str, str]] = {}
        for part in self.ondemand:
            for f in part.view.context:
                out.setdefault(f.name, (f.dtype, part.view.name))
        return out

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(f"{p.view.name}@v{p.version}" for p in self.ondemand)


def split(
    refs: Sequence[str], ondemand: Mapping[str, Any]
) -> tuple[list[str], dict[str, list[str]]]:
    """References → (stored-view references, on-demand view → its features taken)."""
    stored: list[str] = []
    taken: dict[str, list[str]] = {}
    for ref in refs:
        name, _, feature = ref.partition(":") if isinstance(ref, str) else ("", "", "")
        if name in ondemand:
            view = ondemand[name]
            names = [feature] if feature else list(view.feature_names)
            chosen = taken.setdefault(name, [])
            for n in names:
                view.field(n)
                if n not in chosen:
                    chosen.append(n)
        else:
            stored.append(ref)
    return stored, taken


def make_plan(
    refs: Sequence[str],
    views: Mapping[str, OnDemandFeatureView],
    versions: Mapping[str, int],
    registered: dict[str, tuple[FeatureView, int, str]],
) -> Plan:
    """Resolve ``refs`` naming stored views (``registered``: name → (view, version, namespace))
    and on-demand ``views`` into what to read and what to compute."""
    stored_refs, taken = split(refs, views)
    inputs = [ref for name in taken for ref in views[name].input_refs]
    wanted = select(tuple(stored_refs), registered) if stored_refs else None
    everything = (
        select((*stored_refs, *inputs), registered) if stored_refs or inputs else Selection(())
    )
    shown = set(wanted.output_columns()) if wanted is not None else set()
    hidden = tuple(c for p in everything.parts for c in p.columns if c not in shown)
    hidden_views = tuple(
        p.view.name for p in everything.parts if f"{p.view.name}__found" not in shown
    )
    available = {p.view.name: p.view for p in everything.parts}
    owners = {c: p.view.name for p in everything.parts for c in p.columns if c in shown}
    parts = []
    for name, features in taken.items():
        view = views[name]
        for f in features:
            if f in owners:
                raise InvalidInputError(
                    f"feature {f!r} is in both {owners[f]!r} and on-demand feature view "
                    f"{name!r}; select one of them",
                    field=f"{name}:{f}",
                )
            owners[f] = name
        types = input_types(view, available)
        parts.append(OnDemandPart(view, versions[name], tuple(features), types))
    return Plan(everything, tuple(parts), hidden, hidden_views)


def input_types(
    view: OnDemandFeatureView, views: Mapping[str, FeatureView]
) -> tuple[tuple[str, str], ...]:
    """(feature, dtype) of each input of ``view``, resolved against ``views``."""
    out: dict[str, str] = {}
    context = {f.name for f in view.context}
    for ref in view.input_refs:
        name, _, feature = ref.partition(":")
        source = views.get(name)
        if source is None:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r} reads feature view {name!r}, which is "
                f"not registered; registered views: {', '.join(sorted(views)) or 'none'}",
                field=f"{view.name}.inputs",
            )
        for n in [feature] if feature else list(source.feature_names):
            dtype = source.field(n).dtype
            if n in context or n in view.feature_names or out.get(n, dtype) != dtype:
                raise InvalidInputError(
                    f"on-demand feature view {view.name!r}: input feature {n!r} (of {name!r}) "
                    "has the name of a context field, an output or another input; rename one",
                    field=f"{view.name}.inputs",
                )
            out[n] = dtype
    return tuple(out.items())


def check_view(view: OnDemandFeatureView, views: Mapping[str, FeatureView], *, run: bool) -> None:
    """Validate inputs against registered ``views`` and, with ``run``, try the function on two
    sample rows (its outputs must be the declared fields with their types)."""
    inputs = input_types(view, views)
    if run:
        columns = {f.name: [sample_value(f.dtype)] * 2 for f in view.context}
        columns.update({n: [sample_value(t)] * 2 for n, t in inputs})
        with np.errstate(all="ignore"):
            compute(view, columns, 2, dict(inputs))


def context_columns(plan: Plan, context: Context | None, rows: int) -> dict[str, list[Any]]:
    """The request context as one list per context field, checked against the declared types."""
    wanted = plan.context_fields
    if not wanted:
        return {}
    if context is None:
        name, (_, view) = next(iter(wanted.items()))
        raise InvalidInputError(
            f"on-demand feature view {view!r} needs context field {name!r}; pass "
            f"context={{{', '.join(repr(n) + ': ...' for n in wanted)}}}",
            field=f"context.{name}",
        )
    out: dict[str, list[Any]] = {}
    if isinstance(context, Mapping):
        for name, (_, view) in wanted.items():
            if name not in context or context[name] is None:
                raise InvalidInputError(
                    f"on-demand feature view {view!r} needs context field {name!r}; the "
                    f"context has: {', '.join(map(str, context)) or 'nothing'}",
                    field=f"context.{name}",
                )
            value = context[name]
            if isinstance(value, list | tuple | np.ndarray):
                column = list(value)
                if len(column) != rows:
                    raise InvalidInputError(
                        f"on-demand feature view {view!r}: context field {name!r} has "
                        f"{len(column)} values for {rows} entities; give one value, or one "
                        "per entity",
                        field=f"context.{name}",
                    )
            else:
                column = [value] * rows
            out[name] = column
    elif isinstance(context, Sequence) and not isinstance(context, str | bytes):
        if len(context) != rows:
            raise InvalidInputError(
                f"the context has {len(context)} rows for {rows} entities; give one mapping, "
                "or one per entity",
                field="context",
            )
        for name, (_, view) in wanted.items():
            column = []
            for i, row in enumerate(context):
                if not isinstance(row, Mapping) or row.get(name) is None:
                    raise InvalidInputError(
                        f"on-demand feature view {view!r} needs context field {name!r}; "
                        f"context row {i} lacks it",
                        field=f"context[{i}].{name}",
                    )
                column.append(row[name])
            out[name] = column
    else:
        raise InvalidInputError(
            "context must be a mapping of context fields to values (or to one value per "
            "entity), or a list of such mappings",
            field="context",
        )
    for name, (dtype, view) in wanted.items():
        for i, value in enumerate(out[name]):
            if not _accepts(value, dtype):
                at = f"context.{name}" if rows == 1 else f"context.{name}[{i}]"
                raise InvalidInputError(
                    f"on-demand feature view {view!r}: context field {name!r} must be {dtype}, "
                    f"not {type(value).__name__} {value!r}",
                    field=at,
                )
    return out
