"""Resolved feature selections: which views, which features, which output columns.

A :class:`Selection` is computed once per feature service or list of references (at apply or
first use) and cached, so that serving does no definition parsing per call. A :class:`Plan` adds
the on-demand views of a request: what they compute and which stored features they read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mainspring.errors import InvalidInputError
from mainspring.features.definitions import FeatureView
from mainspring.features.ondemand import OnDemandFeatureView, compute, sample_value


@dataclass(frozen=True, slots=True)
class Part:
    """The features taken from one view, as registered (``version``, online ``namespace``)."""

    view: FeatureView
    version: int
    namespace: str
    features: tuple[str, ...]
    columns: tuple[str, ...]
    #: Index of each taken feature in the view's stored row.
    positions: tuple[int, ...]
    #: TTL in microseconds (``None``: no expiry).
    ttl_us: int | None
    #: Join keys of the view's entity and whether each is an integer.
    keys: tuple[tuple[str, bool], ...]
    #: Values per stored row (the view's fields).
    width: int
    #: Whether every feature of the view is taken, in field order.
    whole: bool


@dataclass(frozen=True, slots=True)
class Selection:
    """Features from one or more views, with their output column names."""

    parts: tuple[Part, ...]
    #: The views' names, in order (computed once: the serving path reads it per request).
    view_names: tuple[str, ...] = field(init=False)
    #: The join keys of the views' entities, each once, in order.
    join_keys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        keys: dict[str, None] = {}
        for part in self.parts:
            for key, _ in part.keys:
                keys[key] = None
        object.__setattr__(self, "view_names", tuple(part.view.name for part in self.parts))
        object.__setattr__(self, "join_keys", tuple(keys))

    def output_columns(self) -> list[str]:
        out: list[str] = []
        for part in self.parts:
            out.extend(part.columns)
            out.append(f"{part.view.name}__event_timestamp")
            out.append(f"{part.view.name}__found")
        return out


def namespace_of(view: str, schema_digest: str) -> str:
    """The online namespace of a view's schema: a new schema starts a new namespace."""
    return f"{view}:{schema_digest[:12]}"


def select(
    refs: tuple[str, ...],
    views: dict[str, tuple[FeatureView, int, str]],
    known: str = "",
) -> Selection:
    """Resolve ``view`` / ``view:feature`` references against registered ``views``.

    ``views`` maps a view name to (definition, version, namespace).
    """
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        if not isinstance(ref, str) or not ref:
            raise InvalidInputError(f"feature reference {ref!r} is not valid", field="features")
        name, _, feature = ref.partition(":")
        if name not in views:
            raise InvalidInputError(
                f"feature view {name!r} (in {ref!r}) is not registered; registered views: "
                f"{', '.join(sorted(views)) or 'none'}{known}",
                field=ref,
            )
        view = views[name][0]
        names = [feature] if feature else list(view.feature_names)
        for n in names:
            view.field(n)  # raises, naming the view and what it has
            chosen = wanted.setdefault(name, [])
            if n not in chosen:
                chosen.append(n)
    parts: list[Part] = []
    owners: dict[str, str] = {}
    for name, features in wanted.items():
        view, version, namespace = views[name]
        for f in features:
            if f in owners:
                raise InvalidInputError(
                    f"feature {f!r} is in both feature views {owners[f]!r} and {name!r}; select "
                    "one of them, or give the features distinct names",
                    field=f"{name}:{f}",
                )
            owners[f] = name
        order = view.feature_names
        ttl = int(view.ttl.total_seconds() * 1_000_000) if view.ttl is not None else None
        parts.append(
            Part(
                view=view,
                version=version,
                namespace=namespace,
                features=tuple(features),
                columns=tuple(features),
                positions=tuple(order.index(f) for f in features),
                ttl_us=ttl,
                keys=tuple((k, t == "int64") for k, t in view.entity.join_keys.items()),
                width=len(order),
                whole=tuple(features) == order,
            )
        )
    if not parts:
        raise InvalidInputError("select at least one feature", field="features")
    return Selection(tuple(parts))


# ---------------------------------------------------------------------------- on-demand views


@dataclass(frozen=True, slots=True)
class OnDemandPart:
    """One on-demand view of a plan: the features taken from it and the inputs it reads."""

    view: OnDemandFeatureView
    version: int
    #: Features returned (empty for a view computed only as another's input).
    features: tuple[str, ...]
    #: (feature name, dtype) of each input feature, as passed to the function.
    inputs: tuple[tuple[str, str], ...]
    #: The view each input comes from (a stored view or an earlier on-demand view of the plan).
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """What a request reads from the stores and what it computes on demand.

    ``selection`` holds the requested stored features plus the inputs of on-demand views;
    ``hidden`` are feature columns read only as inputs and ``hidden_views`` views read only for
    inputs: neither is returned. ``ondemand`` is in dependency order (a view after the on-demand
    views it reads); ``shown`` names the on-demand views returned, in request order.
    """

    selection: Selection
    ondemand: tuple[OnDemandPart, ...] = ()
    hidden: tuple[str, ...] = ()
    hidden_views: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()

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

    @property
    def returned(self) -> tuple[OnDemandPart, ...]:
        """The on-demand parts whose features are returned, in request order."""
        by_name = {p.view.name: p for p in self.ondemand}
        return tuple(by_name[name] for name in self.shown)


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


def dependency_order(reads: Mapping[str, Sequence[str]]) -> list[str]:
    """On-demand views (name → the on-demand views it reads) in an order where each comes after
    those it reads; a cycle is refused, naming its views."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: being visited, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise InvalidInputError(
                f"on-demand feature views {' -> '.join(repr(n) for n in cycle)} read each other "
                "in a cycle; an on-demand view may read another's outputs only if that one does "
                "not depend on it",
                field=f"{cycle[0]}.inputs",
            )
        state[name] = 1
        for used in reads.get(name, ()):
            if used in reads:
                visit(used, [*path, name])
        state[name] = 2
        order.append(name)

    for name in reads:
        visit(name, [])
    return order


def closure(names: Sequence[str], reads: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` and every on-demand view they read, directly or not."""
    seen: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen[name] = None
            todo.extend(n for n in reads.get(name, ()) if n in reads)
    return list(seen)


def make_plan(
    refs: Sequence[str],
    views: Mapping[str, OnDemandFeatureView],
    versions: Mapping[str, int],
    registered: dict[str, tuple[FeatureView, int, str]],
) -> Plan:
    """Resolve ``refs`` naming stored views (``registered``: name → (view, version, namespace))
    and on-demand ``views`` (those named and those they read) into what to read and compute."""
    stored_refs, taken = split(refs, views)
    reads = {name: view.input_views for name, view in views.items()}
    needed = set(closure(list(taken), reads))
    order = [name for name in dependency_order(reads) if name in needed]
    inputs = [
        ref
        for name in order
        for ref in views[name].input_refs
        if ref.partition(":")[0] not in views
    ]
    wanted = select(tuple(stored_refs), registered) if stored_refs else None
    everything = (
        select((*stored_refs, *inputs), registered) if stored_refs or inputs else Selection(())
    )
    shown = set(wanted.output_columns()) if wanted is not None else set()
    hidden = tuple(c for p in everything.parts for c in p.columns if c not in shown)
    hidden_views = tuple(
        p.view.name for p in everything.parts if f"{p.view.name}__found" not in shown
    )
    outputs = outputs_of({name: view for name, (view, _, _) in registered.items()})
    outputs.update(outputs_of(views))
    owners = {c: p.view.name for p in everything.parts for c in p.columns if c in shown}
    for name, features in taken.items():
        for f in features:
            if f in owners:
                raise InvalidInputError(
                    f"feature {f!r} is in both {owners[f]!r} and on-demand feature view "
                    f"{name!r}; select one of them",
                    field=f"{name}:{f}",
                )
            owners[f] = name
    parts = []
    for name in order:
        typed = input_types(views[name], outputs, set(views))
        parts.append(
            OnDemandPart(
                views[name],
                versions[name],
                tuple(taken.get(name, ())),
                tuple((n, t) for n, t, _ in typed),
                tuple(source for _, _, source in typed),
            )
        )
    return Plan(everything, tuple(parts), hidden, hidden_views, tuple(taken))


def input_types(
    view: OnDemandFeatureView,
    outputs: Mapping[str, Mapping[str, str]],
    ondemand: set[str] | frozenset[str] = frozenset(),
) -> tuple[tuple[str, str, str], ...]:
    """(feature, dtype, source view) of each input of ``view``, resolved against ``outputs``
    (view name → its features and their dtypes; ``ondemand`` names the on-demand ones)."""
    out: dict[str, tuple[str, str]] = {}
    context = {f.name for f in view.context}
    for ref in view.input_refs:
        name, _, feature = ref.partition(":")
        source = outputs.get(name)
        if source is None:
            raise InvalidInputError(
                f"on-demand feature view {view.name!r} reads feature view {name!r}, which is "
                "not registered (as a feature view or an on-demand feature view); registered: "
                f"{', '.join(sorted(outputs)) or 'none'}. Apply it too, or fix the input",
                field=f"{view.name}.inputs",
            )
        for n in [feature] if feature else list(source):
            if n not in source:
                kind = "on-demand feature view" if name in ondemand else "feature view"
                raise InvalidInputError(
                    f"{kind} {name!r} has no feature {n!r} (an input of on-demand feature "
                    f"view {view.name!r}); it has: {', '.join(source)}",
                    field=f"{view.name}.inputs",
                )
            dtype = source[n]
            if out.get(n) == (dtype, name):
                continue  # named twice from the same view
            if n in context or n in view.feature_names or n in out:
                raise InvalidInputError(
                    f"on-demand feature view {view.name!r}: input feature {n!r} (of {name!r}) "
                    "has the name of a context field, an output or another input; rename one",
                    field=f"{view.name}.inputs",
                )
            out[n] = (dtype, name)
    return tuple((n, t, source) for n, (t, source) in out.items())


def outputs_of(views: Mapping[str, FeatureView | OnDemandFeatureView]) -> dict[str, dict[str, str]]:
    """View name → its features and their dtypes."""
    return {name: {f.name: f.dtype for f in view.fields} for name, view in views.items()}


def check_ondemand(
    view: OnDemandFeatureView,
    outputs: Mapping[str, Mapping[str, str]],
    ondemand: set[str] | frozenset[str] = frozenset(),
    *,
    run: bool,
) -> None:
    """Validate inputs against ``outputs`` (see :func:`input_types`) and, with ``run``, try the
    function on two sample rows (its outputs must be the declared fields with their types)."""
    inputs = input_types(view, outputs, ondemand)
    if run:
        columns = {f.name: [sample_value(f.dtype)] * 2 for f in view.context}
        columns.update({n: [sample_value(t)] * 2 for n, t, _ in inputs})
        with np.errstate(all="ignore"):
            compute(view, columns, 2, {n: t for n, t, _ in inputs})
