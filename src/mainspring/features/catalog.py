"""Registered definitions and materialization runs in the metadata store.

Who uses a feature view is read from the registry's tables through the storage schema (model
versions list the views they were trained on in ``lineage.feature_views``); the feature store
never imports the registry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from mainspring.records import JSON, new_id, utcnow
from mainspring.storage.schema import (
    aliases,
    feature_definitions,
    feature_materializations,
    model_versions,
    models,
)

KINDS = ("entity", "view", "service", "ondemand")


def digest_of(definition: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(definition, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class Registered:
    """One applied version of a definition."""

    kind: str
    name: str
    version: int
    definition: JSON
    digest: str
    schema_digest: str | None
    created_at: datetime
    created_by: str

    def to_dict(self) -> JSON:
        return {
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "definition": self.definition,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True, slots=True)
class Materialization:
    """One materialization run of a view: the event-time window it covered and rows written."""

    view: str
    version: int
    namespace: str
    start: datetime | None
    end: datetime
    rows: int
    finished_at: datetime
    actor: str

    def to_dict(self) -> JSON:
        return {
            "view": self.view,
            "version": self.version,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat(),
            "rows": self.rows,
            "finished_at": self.finished_at.isoformat(),
            "actor": self.actor,
        }


def _registered(row: Any) -> Registered:
    return Registered(
        row.kind,
        row.name,
        row.version,
        dict(row.definition),
        row.digest,
        row.schema_digest,
        row.created_at,
        row.created_by,
    )


def latest(conn: Connection, kind: str, name: str) -> Registered | None:
    t = feature_definitions
    row = conn.execute(
        select(t).where(t.c.kind == kind, t.c.name == name).order_by(t.c.version.desc()).limit(1)
    ).first()
    return _registered(row) if row else None


def all_latest(conn: Connection, kind: str) -> list[Registered]:
    t = feature_definitions
    newest = (
        select(t.c.name, func.max(t.c.version).label("version"))
        .where(t.c.kind == kind)
        .group_by(t.c.name)
        .subquery()
    )
    rows = conn.execute(
        select(t)
        .join(newest, (t.c.name == newest.c.name) & (t.c.version == newest.c.version))
        .where(t.c.kind == kind)
        .order_by(t.c.name)
    ).all()
    return [_registered(r) for r in rows]


def versions(conn: Connection, kind: str, name: str) -> list[Registered]:
    t = feature_definitions
    rows = conn.execute(
        select(t).where(t.c.kind == kind, t.c.name == name).order_by(t.c.version)
    ).all()
    return [_registered(r) for r in rows]


def insert(
    conn: Connection,
    kind: str,
    name: str,
    version: int,
    definition: JSON,
    schema_digest: str | None,
    actor: str,
) -> Registered:
    at = utcnow()
    digest = digest_of(definition)
    conn.execute(
        feature_definitions.insert().values(
            kind=kind,
            name=name,
            version=version,
            definition=definition,
            digest=digest,
            schema_digest=schema_digest,
            created_at=at,
            created_by=actor,
        )
    )
    return Registered(kind, name, version, definition, digest, schema_digest, at, actor)


def uses_view(entry: str, view: str) -> bool:
    """Whether a ``lineage.feature_views`` entry names ``view`` (``view``, ``view@v3``...)."""
    return entry == view or entry.startswith((f"{view}@", f"{view}:"))


def model_users(conn: Connection, view: str) -> list[str]:
    """Registered model versions trained on ``view``, as ``model/version (aliases)``."""
    rows = conn.execute(
        select(models.c.id, models.c.name, model_versions.c.version, model_versions.c.lineage)
        .join(models, models.c.id == model_versions.c.model_id)
        .order_by(models.c.name, model_versions.c.version)
    ).all()
    users = []
    for row in rows:
        lineage = row.lineage or {}
        if any(uses_view(str(e), view) for e in lineage.get("feature_views") or ()):
            held = conn.execute(
                select(aliases.c.alias)
                .where(aliases.c.model_id == row.id, aliases.c.version == row.version)
                .order_by(aliases.c.alias)
            ).scalars()
            names = ", ".join(held)
            users.append(f"{row.name}/{row.version}" + (f" ({names})" if names else ""))
    return users


def record_materialization(conn: Connection, run: Materialization) -> None:
    conn.execute(
        feature_materializations.insert().values(
            id=new_id(),
            view=run.view,
            version=run.version,
            namespace=run.namespace,
            start_at=run.start,
            end_at=run.end,
            rows=run.rows,
            finished_at=run.finished_at,
            actor=run.actor,
        )
    )


def last_materialization(conn: Connection, namespace: str) -> Materialization | None:
    t = feature_materializations
    row = conn.execute(
        select(t).where(t.c.namespace == namespace).order_by(t.c.end_at.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return Materialization(
        row.view,
        row.version,
        row.namespace,
        row.start_at,
        row.end_at,
        row.rows,
        row.finished_at,
        row.actor,
    )


def marker(conn: Connection) -> tuple[int, int]:
    """Changes whenever a definition is applied (how many there are, the newest version)."""
    t = feature_definitions
    count, newest = conn.execute(select(func.count(), func.max(t.c.version))).one()
    return int(count), int(newest or 0)
