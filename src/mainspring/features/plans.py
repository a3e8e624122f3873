"""Resolved feature selections: which views, which features, which output columns.

A :class:`Selection` is computed once per feature service or list of references (at apply or
first use) and cached, so that serving does no definition parsing per call.
"""

from __future__ import annotations

from dataclasses import dataclass

from mainspring.errors import InvalidInputError
from mainspring.features.definitions import FeatureView


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
