"""On-demand features added to a result: online (``OnlineFeatures``) and offline (a training table).

Both paths hand the function the same Python values through :func:`ondemand.compute`: online the
values read from the online store and the request context, offline the point-in-time values and
the context columns of the entity frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mainspring.errors import InvalidInputError
from mainspring.features import ondemand
from mainspring.features.frames import arrow, arrow_type, compatible
from mainspring.features.ondemand import accepts
from mainspring.features.online import OnlineFeatures, entity_columns
from mainspring.features.plans import Plan

if TYPE_CHECKING:
    import pyarrow as pa

#: A request context: one mapping for every entity (scalars) or per entity (lists, or a list of
#: mappings).
Context = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def entities_only(
    entities: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
) -> OnlineFeatures:
    """A result without stored features (every requested view is on-demand, context only)."""
    if isinstance(entities, Mapping):
        listed, _ = entity_columns(entities, tuple(entities))
    else:
        listed = list(entities)
        for i, row in enumerate(listed):
            if not isinstance(row, Mapping):
                raise InvalidInputError(
                    f"entity {i} must be a mapping of join keys to values", field=f"entities[{i}]"
                )
        listed = [dict(row) for row in listed]
    return OnlineFeatures(listed, {}, {}, {})


def evaluate(
    plan: Plan,
    context: Mapping[str, list[Any]],
    stored: Callable[[str], list[Any]],
    found: Callable[[str], list[bool]],
    rows: int,
) -> tuple[dict[str, dict[str, list[Any]]], dict[str, list[bool]]]:
    """Run the on-demand views of ``plan`` in dependency order: the one code path of training
    sets and serving requests.

    ``stored(feature)`` gives a stored input column and ``found(view)`` a stored view's flags.
    A row with a missing input (its view's or upstream on-demand view's flag is false) gets
    ``None`` outputs and a false flag, and the function does not see it, unless the view
    ``handles_missing``. Returns (view → feature → values, view → found flags)."""
    outputs: dict[str, dict[str, list[Any]]] = {}
    flags: dict[str, list[bool]] = {}
    for part in plan.ondemand:
        view = part.view
        given = {f.name: context[f.name] for f in view.context}
        for (name, _), source in zip(part.inputs, part.sources, strict=True):
            given[name] = outputs[source][name] if source in outputs else stored(name)
        ok = [True] * rows
        if not view.handles_missing:
            for source in dict.fromkeys(part.sources):
                upstream = flags[source] if source in flags else found(source)
                ok = [a and b for a, b in zip(ok, upstream, strict=True)]
        if all(ok):
            produced = ondemand.compute(view, given, rows, dict(part.inputs))
        else:
            keep = [i for i, flag in enumerate(ok) if flag]
            subset = {name: [column[i] for i in keep] for name, column in given.items()}
            some = ondemand.compute(view, subset, len(keep), dict(part.inputs))
            produced = {}
            for name, values in some.items():
                column: list[Any] = [None] * rows
                for i, value in zip(keep, values, strict=True):
                    column[i] = value
                produced[name] = column
        outputs[view.name] = produced
        flags[view.name] = ok
    return outputs, flags


def with_online(plan: Plan, result: OnlineFeatures, context: Context | None) -> OnlineFeatures:
    """``result`` (the stored features of ``plan.selection``) with the on-demand features and
    their found flags added, and the input-only features removed."""
    rows = len(result.entities)
    columns = context_columns(plan, context, rows)
    outputs, flags = evaluate(
        plan, columns, result.values.__getitem__, result.found.__getitem__, rows
    )
    values = {k: v for k, v in result.values.items() if k not in plan.hidden}
    hidden = set(plan.hidden_views)
    found = {k: v for k, v in result.found.items() if k not in hidden}
    for part in plan.returned:
        for name in part.features:
            values[name] = outputs[part.view.name][name]
        found[part.view.name] = flags[part.view.name]
    return OnlineFeatures(
        result.entities,
        values,
        {k: v for k, v in result.event_micros.items() if k not in hidden},
        found,
    )


def check_context_columns(plan: Plan, table: pa.Table) -> None:
    """The entity frame holds every context field, of a compatible type and without nulls, and
    no column named like an on-demand output."""
    for name, (dtype, view) in plan.context_fields.items():
        if name not in table.column_names:
            raise InvalidInputError(
                f"on-demand feature view {view!r} needs context field {name!r}: add it as a "
                f"column of the entity frame; columns: {', '.join(table.column_names)}",
                field=name,
            )
        column = table.column(name)
        if not compatible(column.type, dtype) or arrow().types.is_null(column.type):
            raise InvalidInputError(
                f"on-demand feature view {view!r}: context field {name!r} must be {dtype}, but "
                f"the entity frame's column holds {column.type}",
                field=name,
            )
        if column.null_count:
            raise InvalidInputError(
                f"on-demand feature view {view!r}: context column {name!r} has missing values",
                field=name,
            )
    for part in plan.returned:
        for name in (*part.features, f"{part.view.name}__found"):
            if name in table.column_names:
                raise InvalidInputError(
                    f"the entity frame already has a column {name!r}, which on-demand feature "
                    f"view {part.view.name!r} adds; rename it",
                    field=name,
                )


def with_offline(plan: Plan, table: pa.Table) -> pa.Table:
    """A joined training table with the on-demand columns (and ``<view>__found`` flags) added
    and input-only columns removed."""
    pa = arrow()
    cache: dict[str, list[Any]] = {}

    def values(name: str) -> list[Any]:
        if name not in cache:
            cache[name] = table.column(name).to_pylist()
        return cache[name]

    context = {name: values(name) for name in plan.context_fields}
    outputs, flags = evaluate(
        plan, context, values, lambda view: values(f"{view}__found"), table.num_rows
    )
    drop = set(plan.hidden)
    for view in plan.hidden_views:
        drop.update((f"{view}__event_timestamp", f"{view}__found"))
    table = table.drop_columns([c for c in table.column_names if c in drop])
    for part in plan.returned:
        for name in part.features:
            dtype = arrow_type(part.view.field(name).dtype)
            table = table.append_column(name, pa.array(outputs[part.view.name][name], type=dtype))
        table = table.append_column(
            f"{part.view.name}__found", pa.array(flags[part.view.name], type=pa.bool_())
        )
    return table


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
            if not accepts(value, dtype):
                at = f"context.{name}" if rows == 1 else f"context.{name}[{i}]"
                raise InvalidInputError(
                    f"on-demand feature view {view!r}: context field {name!r} must be {dtype}, "
                    f"not {type(value).__name__} {value!r}",
                    field=at,
                )
    return out
