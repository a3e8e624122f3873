"""Turning registry table rows into records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from mainspring.records import (
    ApprovalState,
    Lineage,
    ModelVersion,
    RegisteredModel,
    Signature,
    TrainingData,
    VersionImportance,
)
from mainspring.storage.schema import aliases, version_importance


def alias_map(conn: Connection, model_id: str) -> dict[str, int]:
    """``{alias: version}`` of one model."""
    rows = conn.execute(
        select(aliases.c.alias, aliases.c.version).where(aliases.c.model_id == model_id)
    )
    return {r.alias: int(r.version) for r in rows}


def importance_from_row(row: Any) -> VersionImportance:
    """A ``version_importance`` row as a record."""
    return VersionImportance(
        values={str(name): float(value) for name, value in row.importance},
        method=row.method,
        rows=int(row.rows),
        computed_at=row.computed_at,
        computed_by=row.computed_by,
        background_digest=row.background_digest,
        background_rows=int(row.background_rows or 0),
    )


def importance_of(conn: Connection, version_ids: list[str]) -> dict[str, VersionImportance]:
    """The stored importance of each of ``version_ids`` that has one."""
    if not version_ids:
        return {}
    rows = conn.execute(
        select(version_importance).where(version_importance.c.version_id.in_(version_ids))
    )
    return {row.version_id: importance_from_row(row) for row in rows}


def version_from_row(
    row: Any, alias_names: tuple[str, ...], importance: VersionImportance | None = None
) -> ModelVersion:
    """A ``model_versions`` row (joined with ``models.name``) as a record."""
    return ModelVersion(
        id=row.id,
        name=row.name,
        version=int(row.version),
        flavor=row.flavor,
        digest=row.digest,
        size=int(row.size),
        library_versions=row.library_versions,
        signature=Signature.from_dict(row.signature),
        params=row.params,
        metrics=row.metrics,
        tags=row.tags,
        training_data=TrainingData.from_dict(row.training_data) if row.training_data else None,
        lineage=Lineage.from_dict(row.lineage),
        code_version=row.code_version,
        description=row.description,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        approval=ApprovalState(row.approval),
        aliases=alias_names,
        importance=importance,
    )


def model_row(row: Any, latest: int, alias_versions: dict[str, int]) -> RegisteredModel:
    """A ``models`` row as a record."""
    return RegisteredModel(
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        latest_version=latest,
        aliases=dict(sorted(alias_versions.items())),
    )
