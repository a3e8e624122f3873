"""Reading the registry: versions by name, number or alias, loaded and verified; the history.

:class:`VersionReader` holds the stores and the lookups every part of the registry builds on; the
:class:`~mainspring.registry.service.Registry` facade adds registration, aliases and approvals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select

from mainspring.errors import GovernanceError, IntegrityError, NotFoundError
from mainspring.records import (
    JSON,
    ChainEntry,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    Signature,
    new_id,
    utcnow,
)
from mainspring.registry.flavors import get_flavor
from mainspring.registry.flavors.base import Flavor, LoadedModel
from mainspring.registry.rows import alias_map, importance_of, model_row, version_from_row
from mainspring.storage.base import BlobStore, MetadataStore
from mainspring.storage.chain import HashChain, Verification
from mainspring.storage.schema import aliases, model_versions, model_versions_deleted, models

#: The alias that serving answers with; it may only point at an approved version.
CHAMPION = "champion"
HISTORY_STREAM = "registry"


@dataclass(frozen=True, slots=True)
class LoadedVersion:
    """A registered model version, loaded and ready to predict."""

    version: ModelVersion
    model: LoadedModel

    @property
    def signature(self) -> Signature:
        return self.version.signature

    def predict(self, rows: Any) -> npt.NDArray[np.float64]:
        """Scores for ``rows`` (an array in signature order, a mapping or a data frame)."""
        return self.model.predict(rows)


def check_trust(flavor: Flavor, trusted: bool, what: str) -> None:
    """Refuse a flavor that can run code on load (a plain pickle) unless the caller trusts it."""
    if flavor.needs_trust and not trusted:
        raise GovernanceError(
            f"{what} is a plain pickle, which can run arbitrary code when loaded; register "
            "it with trusted=True (CLI: --trusted) only if you trust its source, or save the "
            "model in a safe format (LightGBM/XGBoost model file, ONNX, skops)"
        )


class VersionReader:
    """Model versions on a metadata store and a blob store: lookups, loading and the history."""

    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        *,
        code_version: Callable[[], str | None] | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.history_log = HashChain(store, HISTORY_STREAM)
        #: finds the code version (git commit) to record when a registration names none
        self._code_version = code_version

    def _model_id(
        self, conn: Connection, name: str, *, create_as: str | None = None, description: str = ""
    ) -> str:
        found = conn.execute(select(models.c.id).where(models.c.name == name)).scalar()
        if found is not None:
            return str(found)
        if create_as is None:
            raise NotFoundError("model", name)
        model_id = new_id()
        conn.execute(
            models.insert().values(
                id=model_id,
                name=name,
                description=description,
                created_at=utcnow(),
                created_by=create_as,
            )
        )
        return model_id

    def _resolve(self, conn: Connection, ref: ModelRef) -> tuple[str, int]:
        model_id = self._model_id(conn, ref.name)
        if ref.alias is not None:
            version = conn.execute(
                select(aliases.c.version).where(
                    aliases.c.model_id == model_id, aliases.c.alias == ref.alias
                )
            ).scalar()
            if version is None:
                known = sorted(alias_map(conn, model_id))
                raise NotFoundError(
                    "alias",
                    str(ref),
                    f"aliases of {ref.name}: {', '.join(known) if known else 'none'}",
                )
            return model_id, int(version)
        if ref.version is not None:
            return model_id, ref.version
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model_id)
        ).scalar()
        if latest is None:
            raise NotFoundError("model", ref.name, "it has no versions")
        return model_id, int(latest)

    def _next_number(self, conn: Connection, model_id: str, name: str) -> int:
        """The next version number: numbers of deleted versions are never given again."""
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.model_id == model_id)
        ).scalar()
        deleted = conn.execute(
            select(func.max(model_versions_deleted.c.version)).where(
                model_versions_deleted.c.model_id == model_id
            )
        ).scalar()
        return max(int(latest or 0), int(deleted or 0)) + 1

    def _version(self, conn: Connection, name: str, number: int) -> ModelVersion:
        row = conn.execute(
            select(model_versions, models.c.name)
            .join(models)
            .where(models.c.name == name, model_versions.c.version == number)
        ).first()
        if row is None:
            raise NotFoundError("model version", f"{name}/{number}")
        names = sorted(a for a, v in alias_map(conn, row.model_id).items() if v == number)
        return version_from_row(row, tuple(names), importance_of(conn, [row.id]).get(row.id))

    def get(self, ref: ModelRef | str) -> ModelVersion:
        """The version ``ref`` names (``name`` alone means the latest version)."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.store.read() as conn:
            _, number = self._resolve(conn, ref)
            return self._version(conn, ref.name, number)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self.store.read() as conn:
            query = select(model_versions.c.model_id, func.max(model_versions.c.version))
            latest = {r[0]: r[1] for r in conn.execute(query.group_by(model_versions.c.model_id))}
            rows = conn.execute(select(models).order_by(models.c.name)).all()
            return [model_row(r, int(latest.get(r.id, 0)), alias_map(conn, r.id)) for r in rows]

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of model ``name``, oldest first."""
        with self.store.read() as conn:
            model_id = self._model_id(conn, name)
            names = alias_map(conn, model_id)
            rows = conn.execute(
                select(model_versions, models.c.name)
                .join(models)
                .where(model_versions.c.model_id == model_id)
                .order_by(model_versions.c.version)
            ).all()
            found = importance_of(conn, [r.id for r in rows])
            return [
                version_from_row(
                    r, tuple(sorted(a for a, v in names.items() if v == r.version)), found.get(r.id)
                )
                for r in rows
            ]

    def load(self, ref: ModelRef | str, *, trusted: bool = False) -> LoadedVersion:
        """Load a version ready to predict, after checking the artifact against its digest."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.store.read() as conn:
            model_id, number = self._resolve(conn, ref)
            version = self._version(conn, ref.name, number)
            key = conn.execute(
                select(model_versions.c.artifact_key).where(
                    model_versions.c.model_id == model_id, model_versions.c.version == number
                )
            ).scalar_one()
        flavor = get_flavor(version.flavor)
        if flavor.needs_trust and not trusted:
            check_trust(flavor, trusted, f"model {version.ref}")
        data = self.blobs.get(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != version.digest:
            raise IntegrityError(
                f"artifact of {version.ref} does not match its digest (expected "
                f"{version.digest[:12]}…, found {actual[:12]}…): it was altered or corrupted"
            )
        return LoadedVersion(version, flavor.load(data, version.signature, trusted=trusted))

    def deleted(self, name: str, version: int) -> JSON | None:
        """When, by whom and why ``name/version`` was deleted (None if it never was)."""
        with self.store.read() as conn:
            row = conn.execute(
                select(model_versions_deleted)
                .join(models, models.c.id == model_versions_deleted.c.model_id)
                .where(models.c.name == name, model_versions_deleted.c.version == version)
            ).first()
        if row is None:
            return None
        return {"digest": row.digest, "at": row.at.isoformat(), "actor": row.actor,
                "reason": row.reason}  # fmt: skip

    # ------------------------------------------------------------------ history

    def history(self, name: str | None = None) -> list[ChainEntry]:
        """Registry changes in order, all of them or those about model ``name``."""
        if name is None:
            return self.history_log.entries()
        with self.store.read() as conn:
            self._model_id(conn, name)
        return [
            e
            for e in self.history_log.entries(subject_prefix=name)
            if e.subject.split("/", 1)[0].split("@", 1)[0] == name
        ]

    def verify(self) -> Verification:
        """Check the registry history's hash chain; names the first altered entry."""
        return self.history_log.verify()
