"""Registering model versions, and deleting them.

Every registration commits in one transaction with its entry in the hash-chained registry
history. Artifacts are content-addressed blobs (``sha256/ab/abcd…``), stored once however many
versions share them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from mainspring.errors import ConflictError, InvalidInputError, SignatureError
from mainspring.records import (
    ApprovalState,
    Lineage,
    ModelVersion,
    Signature,
    TrainingData,
    check_name,
    new_id,
    utcnow,
)
from mainspring.registry.flavors import flavor_for_file, flavor_for_object, get_flavor
from mainspring.registry.flavors.base import Flavor, Prepared
from mainspring.registry.flavors.mlflow import read_mlflow_model
from mainspring.registry.importance import blob_in_use, blob_key
from mainspring.registry.rows import alias_map
from mainspring.registry.validation import (
    fit_signature,
    json_safe,
    metric_values,
    require_reason,
    tag_values,
)
from mainspring.registry.versions import VersionReader, check_trust
from mainspring.storage.schema import (
    approvals,
    model_versions,
    model_versions_deleted,
    version_importance,
)


class Registration(VersionReader):
    """Adding immutable versions (from live models, model files or MLflow directories), and
    deleting versions no alias points at."""

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
        key = blob_key(digest)
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
                check_trust(chosen, trusted, str(path))
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
            check_trust(chosen, trusted, fname)
            return chosen, chosen.prepare_file(data, fname, trusted=trusted), None
        chosen = get_flavor(flavor) if flavor else flavor_for_object(model)
        return chosen, chosen.prepare(model), None

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

    def delete_version(self, name: str, version: int, *, actor: str, reason: str) -> None:
        """Delete a version no alias points at: its record, approvals, importance and (unless
        another version shares them) its artifact and background sample. The deletion is recorded
        in the history; the number is never given again, so a logged decision can never silently
        name another model."""
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
            background = conn.execute(
                select(version_importance.c.background_key).where(
                    version_importance.c.version_id == row.id
                )
            ).scalar()
            conn.execute(approvals.delete().where(approvals.c.version_id == row.id))
            conn.execute(
                version_importance.delete().where(version_importance.c.version_id == row.id)
            )
            conn.execute(model_versions.delete().where(model_versions.c.id == row.id))
            conn.execute(
                model_versions_deleted.insert().values(
                    model_id=model_id, version=version, digest=current.digest, at=utcnow(),
                    actor=actor, reason=reason,
                )
            )  # fmt: skip
            unused = [
                key
                for key in (row.artifact_key, background)
                if key is not None and not blob_in_use(conn, key)
            ]
            self.history_log.append(
                conn, actor=actor, action="version.delete", subject=f"{name}/{version}",
                reason=reason, details={"digest": current.digest},
            )  # fmt: skip
        for key in unused:
            self.blobs.delete(key)
