"""Resolved feature selections: which views, which features, which output columns.

A :class:`Selection` is computed once per feature service or list of references (at apply or
first use) and cached, so that serving does no definition parsing per call. A :class:`Plan` adds
the on-demand views of a request: what they compute and which stored features they read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

    def output_columns(self) -> list[str]:
        out: list[str] = []
        for part in self.parts:
            out.extend(part.columns)
            out.append(f"{part.view.name}__event_timestamp")
            out.append(f"{part.view.name}__found")
        return out

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(part.view.name for part in self.parts)

    @property
    def join_keys(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for part in self.parts:
            for key, _ in part.keys:
                seen[key] = None
        return tuple(seen)


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


def check_ondemand(
    view: OnDemandFeatureView, views: Mapping[str, FeatureView], *, run: bool
) -> None:
    """Validate inputs against registered ``views`` and, with ``run``, try the function on two
    sample rows (its outputs must be the declared fields with their types)."""
    inputs = input_types(view, views)
    if run:
        columns = {f.name: [sample_value(f.dtype)] * 2 for f in view.context}
        columns.update({n: [sample_value(t)] * 2 for n, t in inputs})
        with np.errstate(all="ignore"):
            compute(view, columns, 2, dict(inputs))
