"""The model registry: immutable, governed model versions with aliases, approvals and a history.

Every change (registration, alias move, approval step, rollback) commits in one transaction with
its entry in the hash-chained registry history, so the history is exactly the set of changes.
Artifacts are content-addressed blobs (``sha256/ab/abcd…``) verified against their digest on
every load.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, func, select

from mainspring.errors import (
    ConflictError,
    GovernanceError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
)
from mainspring.records import (
    JSON,
    ApprovalState,
    ChainEntry,
    Lineage,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    Signature,
    TrainingData,
    check_name,
    new_id,
    utcnow,
)
from mainspring.registry.flavors import flavor_for_file, flavor_for_object, get_flavor
from mainspring.registry.flavors.base import Flavor, LoadedModel, Prepared
from mainspring.registry.flavors.mlflow import read_mlflow_model
from mainspring.registry.rows import alias_map, model_row, version_from_row
from mainspring.registry.validation import (
    fit_signature,
    json_safe,
    metric_values,
    require_reason,
    tag_values,
)
from mainspring.storage.base import BlobStore, MetadataStore
from mainspring.storage.chain import HashChain, Verification
from mainspring.storage.schema import (
    alias_moves,
    aliases,
    approvals,
    model_versions,
    model_versions_deleted,
    models,
)

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


class Registry:
    """Governed model versions on a metadata store and a blob store.

    >>> from mainspring.storage.memory import MemoryBlobStore, memory_metadata
    >>> registry = Registry(memory_metadata(), MemoryBlobStore())
    >>> registry.list_models()
    []
    """

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

    # ------------------------------------------------------------------ registration

    def register(
        self,
        name: str,
        model: object,
        *,
        actor: str,
        flavor: str | None = None,
        signature: Signature | Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        training_data: TrainingData | None = None,
        lineage: Lineage | None = None,
        code_version: str | None = None,
        description: str = "",
        trusted: bool = False,
        filename: str | None = None,
    ) -> ModelVersion:
        """Register a new immutable version of model ``name``.

        ``model`` is a live model object, a path to a model file or an MLflow model directory,
        or the bytes of a model file (then ``filename`` helps recognise it).
        """
        check_name(name, field="name")
        checked_metrics, checked_tags = metric_values(metrics), tag_values(tags)
        extra_params = json_safe(dict(params or {}), "params")
        chosen, prepared, imported = self._prepare(model, flavor, filename, trusted)
        if imported is not None:
            signature = signature or imported.get("signature")
            lineage = lineage or Lineage(run_id=imported.get("run_id"))
        sig = fit_signature(prepared, signature, chosen.name)
        self._probe(chosen, prepared.data, sig, trusted)
        digest = hashlib.sha256(prepared.data).hexdigest()
        key = f"sha256/{digest[:2]}/{digest}"
        if not self.blobs.exists(key):
            self.blobs.put(key, prepared.data)
        now = utcnow()
        with self.store.write() as conn:
            model_id = self._model_id(conn, name, create_as=actor, description=description)
            number = self._next_number(conn, model_id, name)
            row = {
                "id": new_id(),
                "model_id": model_id,
                "version": number,
                "flavor": chosen.name,
                "digest": digest,
                "size": len(prepared.data),
                "artifact_key": key,
                "library_versions": dict(prepared.library_versions),
                "signature": sig.to_dict(),
                "params": {**json_safe(dict(prepared.params), "params"), **extra_params},
                "metrics": checked_metrics,
                "tags": checked_tags,
                "training_data": training_data.to_dict() if training_data else None,
                "lineage": (lineage or Lineage()).to_dict(),
                "code_version": code_version
                or (self._code_version() if self._code_version else None),
                "description": description,
                "registered_by": actor,
                "registered_at": now,
                "approval": ApprovalState.NONE.value,
            }
            conn.execute(model_versions.insert().values(**row))
            self.history_log.append(
                conn,
                actor=actor,
                action="register",
                subject=f"{name}/{number}",
                at=now,
                details={
                    "digest": digest,
                    "flavor": chosen.name,
                    "size": len(prepared.data),
                    "metrics": checked_metrics,
                },
            )
            return self._version(conn, name, number)

    def _prepare(
        self, model: object, flavor: str | None, filename: str | None, trusted: bool
    ) -> tuple[Flavor, Prepared, dict[str, Any] | None]:
        if isinstance(model, str | os.PathLike):
            path = Path(model)
            if path.is_dir():
                imported = read_mlflow_model(path)
                chosen = get_flavor(imported.flavor)
                self._check_trust(chosen, trusted, str(path))
                prepared = chosen.prepare_file(imported.data, imported.filename, trusted=trusted)
                return (
                    chosen,
                    prepared,
                    {"signature": imported.signature, "run_id": imported.run_id},
                )
            if not path.is_file():
                raise InvalidInputError(f"model file {str(path)!r} does not exist", field="file")
            model, filename = path.read_bytes(), path.name
        if isinstance(model, bytes | bytearray | memoryview):
            data, fname = bytes(model), filename or "model"
            chosen = get_flavor(flavor) if flavor else flavor_for_file(data, fname)
            self._check_trust(chosen, trusted, fname)
            return chosen, chosen.prepare_file(data, fname, trusted=trusted), None
        chosen = get_flavor(flavor) if flavor else flavor_for_object(model)
        return chosen, chosen.prepare(model), None

    @staticmethod
    def _check_trust(flavor: Flavor, trusted: bool, what: str) -> None:
        if flavor.needs_trust and not trusted:
            raise GovernanceError(
                f"{what} is a plain pickle, which can run arbitrary code when loaded; register "
                "it with trusted=True (CLI: --trusted) only if you trust its source, or save the "
                "model in a safe format (LightGBM/XGBoost model file, ONNX, skops)"
            )

    @staticmethod
    def _probe(flavor: Flavor, data: bytes, signature: Signature, trusted: bool) -> None:
        """Load the artifact and predict one row: the model works with this signature."""
        loaded = flavor.load(data, signature, trusted=trusted)
        try:
            loaded.predict(np.zeros((1, len(signature.inputs))))
        except (ValueError, TypeError, RuntimeError) as exc:
            raise SignatureError(
                f"the model cannot predict rows of the signature's {len(signature.inputs)} "
                f"inputs: {exc}",
                field="signature",
            ) from exc

    # ------------------------------------------------------------------ reading

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
        return version_from_row(row, tuple(names))

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
            return [
                version_from_row(r, tuple(sorted(a for a, v in names.items() if v == r.version)))
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
            self._check_trust(flavor, trusted, f"model {version.ref}")
        data = self.blobs.get(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != version.digest:
            raise IntegrityError(
                f"artifact of {version.ref} does not match its digest (expected "
                f"{version.digest[:12]}…, found {actual[:12]}…): it was altered or corrupted"
            )
        return LoadedVersion(version, flavor.load(data, version.signature, trusted=trusted))

    # ------------------------------------------------------------------ aliases

    def set_alias(
        self, name: str, alias: str, version: int, *, actor: str, reason: str = ""
    ) -> ModelVersion:
        """Point ``name@alias`` at ``version``. ``champion`` accepts only approved versions."""
        check_name(alias, field="alias")
        with self.store.write() as conn:
            model_id = self._model_id(conn, name)
            target = self._version(conn, name, version)
            self._require_champion_ok(alias, target)
            current = alias_map(conn, model_id).get(alias)
            if current == version:
                raise ConflictError(f"{name}@{alias} already points at version {version}")
            self._move(
                conn,
                model_id,
                name,
                alias,
                current,
                version,
                kind="set",
                actor=actor,
                reason=reason,
            )
            return self._version(conn, name, version)

    @staticmethod
    def _require_champion_ok(alias: str, target: ModelVersion) -> None:
        if alias == CHAMPION and target.approval is not ApprovalState.APPROVED:
            raise GovernanceError(
                f"{target.ref} cannot become {CHAMPION}: it is {target.approval.value}, not "
                f"approved; request approval and have another person approve it first"
            )

    def _move(
        self,
        conn: Connection,
        model_id: str,
        name: str,
        alias: str,
        old: int | None,
        new: int | None,
        *,
        kind: str,
        actor: str,
        reason: str,
    ) -> None:
        now = utcnow()
        if new is None:
            conn.execute(
                aliases.delete().where(aliases.c.model_id == model_id, aliases.c.alias == alias)
            )
        elif old is None:
            conn.execute(
                aliases.insert().values(
                    model_id=model_id, alias=alias, version=new, updated_at=now, updated_by=actor
                )
            )
        else:
            conn.execute(
                aliases.update()
                .where(aliases.c.model_id == model_id, aliases.c.alias == alias)
                .values(version=new, updated_at=now, updated_by=actor)
            )
        conn.execute(
            alias_moves.insert().values(
                id=new_id(),
                model_id=model_id,
                alias=alias,
                from_version=old,
                to_version=new,
                kind=kind,
                at=now,
                actor=actor,
                reason=reason,
            )
        )
        self.history_log.append(
            conn,
            actor=actor,
            action=f"alias.{kind}",
            subject=f"{name}@{alias}",
            reason=reason,
            at=now,
            details={"from": old, "to": new},
        )

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str = "") -> None:
        """Remove ``name@alias``."""
        with self.store.write() as conn:
            model_id = self._model_id(conn, name)
            current = alias_map(conn, model_id).get(alias)
            if current is None:
                raise NotFoundError("alias", f"{name}@{alias}")
            self._move(
                conn,
                model_id,
                name,
                alias,
                current,
                None,
                kind="delete",
                actor=actor,
                reason=reason,
            )

    def delete_version(self, name: str, version: int, *, actor: str, reason: str) -> None:
        """Delete a version no alias points at: its record, approvals and (unless another version
        shares it) its artifact. The deletion is recorded in the history; the number is never
        given again, so a logged decision can never silently name another model."""
        reason = require_reason(reason, "deleting a version")
        with self.store.write() as conn:
            model_id = self._model_id(conn, name)
            current = self._version(conn, name, version)
            held = sorted(a for a, v in alias_map(conn, model_id).items() if v == version)
            if held:
                raise ConflictError(
                    f"{name}/{version} is {', '.join('@' + a for a in held)}; move or delete "
                    "those aliases first"
                )
            row = conn.execute(
                select(model_versions.c.id, model_versions.c.artifact_key).where(
                    model_versions.c.model_id == model_id, model_versions.c.version == version
                )
            ).one()
            conn.execute(approvals.delete().where(approvals.c.version_id == row.id))
            conn.execute(model_versions.delete().where(model_versions.c.id == row.id))
            conn.execute(
                model_versions_deleted.insert().values(
                    model_id=model_id, version=version, digest=current.digest, at=utcnow(),
                    actor=actor, reason=reason,
                )
            )  # fmt: skip
            shared = conn.execute(
                select(func.count()).where(model_versions.c.artifact_key == row.artifact_key)
            ).scalar_one()
            self.history_log.append(
                conn, actor=actor, action="version.delete", subject=f"{name}/{version}",
                reason=reason, details={"digest": current.digest},
            )  # fmt: skip
        if not shared:
            self.blobs.delete(row.artifact_key)

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

    def rollback(self, name: str, alias: str, *, actor: str, reason: str) -> ModelVersion:
        """Move ``name@alias`` back to the version it pointed at before its current one."""
        reason = require_reason(reason, "a rollback")
        with self.store.write() as conn:
            model_id = self._model_id(conn, name)
            current = alias_map(conn, model_id).get(alias)
            if current is None:
                raise NotFoundError("alias", f"{name}@{alias}")
            previous = conn.execute(
                select(alias_moves.c.from_version)
                .where(
                    alias_moves.c.model_id == model_id,
                    alias_moves.c.alias == alias,
                    alias_moves.c.kind == "set",
                    alias_moves.c.to_version == current,
                )
                .order_by(alias_moves.c.at.desc(), alias_moves.c.id.desc())
                .limit(1)
            ).first()
            if previous is None or previous.from_version is None:
                raise ConflictError(
                    f"{name}@{alias} has no earlier version to roll back to (it was first set "
                    f"to version {current})"
                )
            target = self._version(conn, name, int(previous.from_version))
            self._require_champion_ok(alias, target)
            self._move(
                conn,
                model_id,
                name,
                alias,
                current,
                target.version,
                kind="rollback",
                actor=actor,
                reason=reason,
            )
            return self._version(conn, name, target.version)

    # ------------------------------------------------------------------ approvals

    def _approval_step(
        self,
        name: str,
        version: int,
        *,
        actor: str,
        reason: str,
        action: str,
        allowed_from: set[ApprovalState],
        to: ApprovalState,
    ) -> ModelVersion:
        with self.store.write() as conn:
            target = self._version(conn, name, version)
            if action != "request" and actor == target.registered_by:
                raise PermissionDeniedError(
                    f"{actor} registered {target.ref} and so cannot {action} it: a different "
                    "person must (four eyes)"
                )
            if target.approval not in allowed_from:
                hint = {
                    "request": "",
                    "approve": "; request approval first",
                    "reject": "; only a pending request can be rejected",
                }[action]
                raise GovernanceError(
                    f"cannot {action} {target.ref}: its approval state is "
                    f"{target.approval.value}{hint}"
                )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == target.id)
                .values(approval=to.value)
            )
            now = utcnow()
            conn.execute(
                approvals.insert().values(
                    id=new_id(),
                    version_id=target.id,
                    action=action,
                    actor=actor,
                    reason=reason,
                    at=now,
                )
            )
            self.history_log.append(
                conn,
                actor=actor,
                action=f"approval.{action}",
                subject=str(target.ref),
                reason=reason,
                at=now,
                details={"from": target.approval.value, "to": to.value},
            )
            return self._version(conn, name, version)

    def request_approval(
        self, name: str, version: int, *, actor: str, reason: str = ""
    ) -> ModelVersion:
        """Ask for ``name/version`` to be approved for production."""
        return self._approval_step(
            name,
            version,
            actor=actor,
            reason=reason.strip(),
            action="request",
            allowed_from={ApprovalState.NONE, ApprovalState.REJECTED},
            to=ApprovalState.PENDING,
        )

    def approve(self, name: str, version: int, *, actor: str, reason: str) -> ModelVersion:
        """Approve a pending version. The approver must not be its registrant (four eyes)."""
        return self._approval_step(
            name,
            version,
            actor=actor,
            reason=require_reason(reason, "an approval"),
            action="approve",
            allowed_from={ApprovalState.PENDING},
            to=ApprovalState.APPROVED,
        )

    def reject(self, name: str, version: int, *, actor: str, reason: str) -> ModelVersion:
        """Reject a pending version, with a reason."""
        return self._approval_step(
            name,
            version,
            actor=actor,
            reason=require_reason(reason, "a rejection"),
            action="reject",
            allowed_from={ApprovalState.PENDING},
            to=ApprovalState.REJECTED,
        )

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
