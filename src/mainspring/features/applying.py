"""Registering definitions: group them, validate them, refuse breaking changes, version them.

:func:`register` runs inside one metadata transaction: every definition of a batch is checked
before the transaction commits, so a refused batch writes nothing. Each new version is an entry of
the hash-chained ``features`` history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mainspring.errors import GovernanceError, InvalidInputError
from mainspring.features import catalog, ondemand
from mainspring.features.catalog import Registered
from mainspring.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    view_from_dict,
)
from mainspring.features.ondemand import OnDemandFeatureView
from mainspring.features.plans import check_ondemand, dependency_order, outputs_of
from mainspring.records import JSON
from mainspring.storage.chain import HashChain

Definition = Entity | FeatureView | FeatureService | OnDemandFeatureView


@dataclass(slots=True)
class Batch:
    """The definitions of one ``apply``, by kind and name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)
    ondemands: dict[str, OnDemandFeatureView] = field(default_factory=dict)


def _add(target: dict[str, Any], item: Definition) -> None:
    if item.name in target and target[item.name] != item:
        raise InvalidInputError(
            f"two different definitions are named {item.name!r}", field=item.name
        )
    target[item.name] = item


def group(definitions: Iterable[Definition]) -> Batch:
    """Sort definitions by kind; a view's entity is applied with it."""
    batch = Batch()
    for item in definitions:
        if isinstance(item, FeatureView):
            batch.entities.setdefault(item.entity.name, item.entity)
            if batch.entities[item.entity.name] != item.entity:
                raise InvalidInputError(
                    f"feature view {item.name!r} uses a different definition of entity "
                    f"{item.entity.name!r} than another definition applied with it",
                    field=f"{item.name}.entity",
                )
            _add(batch.views, item)
        elif isinstance(item, Entity):
            _add(batch.entities, item)
        elif isinstance(item, FeatureService):
            _add(batch.services, item)
        elif isinstance(item, OnDemandFeatureView):
            _add(batch.ondemands, item)
        else:
            raise InvalidInputError(
                f"{item!r} is not an Entity, FeatureView, OnDemandFeatureView or FeatureService",
                field="definitions",
            )
    return batch


def register(
    conn: Any, history: HashChain, batch: Batch, *, actor: str, check: bool
) -> list[Registered]:
    """Validate and register ``batch`` in the transaction ``conn``; returns the new versions."""
    changed: list[Registered] = []
    earlier = _outputs_before(conn, batch)
    for entity in batch.entities.values():
        changed += _apply_one(conn, history, "entity", entity.name, entity.to_dict(), None, actor)
    for view in batch.views.values():
        if view.name in batch.ondemands or catalog.latest(conn, ondemand.KIND, view.name):
            raise InvalidInputError(
                f"feature view {view.name!r} has the name of an on-demand feature view; "
                "give it another name",
                field=view.name,
            )
        before = catalog.latest(conn, "view", view.name)
        definition = view.to_dict()
        if before is not None and before.digest != catalog.digest_of(definition):
            breaks = view.breaking_changes(before.definition)
            users = catalog.model_users(conn, view.name) if breaks else []
            if users:
                raise GovernanceError(
                    f"feature view {view.name!r} is used by model versions "
                    f"{', '.join(users)}; this change would break them: "
                    f"{'; '.join(breaks)}. Add the change as a new view (e.g. "
                    f"'{view.name}_v2') and retrain, or keep the old fields"
                )
        changed += _apply_one(
            conn, history, "view", view.name, definition, view.schema_digest(), actor
        )
    known = {r.name for r in catalog.all_latest(conn, "view")}
    changed += _apply_ondemand(conn, history, batch, known, earlier, actor, check)
    computed_views = {r.name: r for r in catalog.all_latest(conn, ondemand.KIND)}
    for service in batch.services.values():
        _check_service(conn, service, batch.views, known, computed_views)
        changed += _apply_one(
            conn, history, "service", service.name, service.to_dict(), None, actor
        )
    return changed


def _check_service(
    conn: Any,
    service: FeatureService,
    views: Mapping[str, FeatureView],
    known: set[str],
    computed_views: Mapping[str, Registered],
) -> None:
    for ref in service.refs:
        name, _, feature = ref.partition(":")
        if name in computed_views:
            fields = [f["name"] for f in computed_views[name].definition["fields"]]
            if feature and feature not in fields:
                raise InvalidInputError(
                    f"on-demand feature view {name!r} has no feature {feature!r}; "
                    f"it has: {', '.join(fields)}",
                    field=f"{name}:{feature}",
                )
            continue
        used = views.get(name)
        if used is None and name not in known:
            raise InvalidInputError(
                f"feature service {service.name!r} names feature view {name!r}, "
                "which is not registered; apply it too",
                field=f"{service.name}.features",
            )
        if used is None:
            stored = catalog.latest(conn, "view", name)
            assert stored is not None
            used = view_from_dict(stored.definition)
        if feature:
            used.field(feature)


def _outputs_before(conn: Any, batch: Batch) -> dict[str, dict[str, str]]:
    """The registered features (and dtypes) of the views this batch changes, before it."""
    out: dict[str, dict[str, str]] = {}
    for kind, names in (("view", batch.views), (ondemand.KIND, batch.ondemands)):
        for name in names:
            stored = catalog.latest(conn, kind, name)
            if stored is not None:
                out[name] = {f["name"]: f["dtype"] for f in stored.definition["fields"]}
    return out


def _apply_ondemand(
    conn: Any,
    history: HashChain,
    batch: Batch,
    known: set[str],
    earlier: Mapping[str, Mapping[str, str]],
    actor: str,
    check: bool,
) -> list[Registered]:
    """Validate on-demand views and register them; a breaking change to one that model versions
    use is refused.

    Inputs must name registered (or applied) feature views or on-demand views, with no cycle
    among on-demand views; registered on-demand views that read a view of this batch are checked
    again. With ``check`` each function of the batch is tried on sample rows."""
    changed: list[Registered] = []
    ondemands = batch.ondemands
    if not ondemands and not batch.views:
        return changed
    available: dict[str, FeatureView] = dict(batch.views)
    for name in known - set(batch.views):
        stored = catalog.latest(conn, "view", name)
        assert stored is not None
        available[name] = view_from_dict(stored.definition)
    outputs = outputs_of(available)
    registered = {r.name: r.definition for r in catalog.all_latest(conn, ondemand.KIND)}
    for name, definition in registered.items():
        if name not in ondemands:
            outputs[name] = {f["name"]: f["dtype"] for f in definition["fields"]}
    outputs.update(outputs_of(ondemands))
    reads = {name: [ref.partition(":")[0] for ref in d["inputs"]] for name, d in registered.items()}
    reads.update({name: list(od.input_views) for name, od in ondemands.items()})
    for od in ondemands.values():
        if od.name in available:
            raise InvalidInputError(
                f"on-demand feature view {od.name!r} has the name of a feature view; give "
                "it another name",
                field=od.name,
            )
    dependency_order({name: [n for n in used if n in reads] for name, used in reads.items()})
    names = set(reads)
    touched = set(ondemands) | set(batch.views)
    for name, definition in registered.items():
        if name not in ondemands and touched & set(reads[name]):
            _check_inputs(name, definition, {**outputs, **earlier}, outputs)
    for od in ondemands.values():
        check_ondemand(od, outputs, names, run=check)
        before = catalog.latest(conn, ondemand.KIND, od.name)
        definition = od.to_dict()
        if before is not None and before.digest != catalog.digest_of(definition):
            breaks = od.breaking_changes(before.definition)
            users = catalog.model_users(conn, od.name) if breaks else []
            if users:
                raise GovernanceError(
                    f"on-demand feature view {od.name!r} is used by model versions "
                    f"{', '.join(users)}; this change would break them: "
                    f"{'; '.join(breaks)}. Add the change as a new view (e.g. "
                    f"'{od.name}_v2') and retrain"
                )
        changed += _apply_one(
            conn, history, ondemand.KIND, od.name, definition, ondemand.schema_digest(od), actor
        )
    return changed


def _check_inputs(
    name: str,
    definition: JSON,
    before: Mapping[str, Mapping[str, str]],
    after: Mapping[str, Mapping[str, str]],
) -> None:
    """A registered on-demand view still gets the same input features after this batch."""
    for ref in definition["inputs"]:
        source, _, feature = ref.partition(":")
        old, new = before.get(source, {}), after.get(source)
        if new is None or (feature and feature not in new):
            what = f"{feature!r} of {source!r}" if feature else repr(source)
            raise InvalidInputError(
                f"registered on-demand feature view {name!r} reads {what}, which this change "
                "removes; apply a new version of it too, or keep what it reads",
                field=f"{name}.inputs",
            )
        wanted = [feature] if feature else list(old)
        if [(n, old.get(n)) for n in wanted] != [(n, new.get(n)) for n in wanted] or (
            not feature and list(old) != list(new)
        ):
            raise InvalidInputError(
                f"registered on-demand feature view {name!r} reads {source!r}, whose features "
                f"change ({', '.join(f'{n} {t}' for n, t in old.items())} -> "
                f"{', '.join(f'{n} {t}' for n, t in new.items())}); apply a new version of "
                f"{name!r} with them too, or keep them",
                field=f"{name}.inputs",
            )


def _apply_one(
    conn: Any,
    history: HashChain,
    kind: str,
    name: str,
    definition: JSON,
    schema_digest: str | None,
    actor: str,
) -> list[Registered]:
    before = catalog.latest(conn, kind, name)
    if before is not None and before.digest == catalog.digest_of(definition):
        return []
    version = before.version + 1 if before else 1
    registered = catalog.insert(conn, kind, name, version, definition, schema_digest, actor)
    history.append(
        conn,
        actor=actor,
        action=f"{kind}.apply",
        subject=f"{kind}/{name}",
        details={"version": version, "digest": registered.digest},
    )
    return [registered]
