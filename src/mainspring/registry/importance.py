"""Global feature importance stored with a model version, and its background sample.

The registry stores what it is given: a mapping of feature to importance, the name of the method
that computed it, and (optionally) the bytes of a small background sample, a content-addressed
artifact like the model itself and verified against its digest when read. Computing them needs the
explainers, which live in another domain; the runtime layer composes the two
(``mainspring.pipelines.importance``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from sqlalchemy import Connection, func, select

from mainspring.errors import IntegrityError, InvalidInputError
from mainspring.records import ModelRef, ModelVersion, check_name, utcnow
from mainspring.registry.versions import VersionReader
from mainspring.storage.schema import model_versions, version_importance

#: The most rows a background sample may hold: each explained row costs one prediction per
#: background row and coalition, so SHAP's guidance is about 100.
MAX_BACKGROUND_ROWS = 100


def blob_key(digest: str) -> str:
    """The content-addressed key of an artifact with ``digest``."""
    return f"sha256/{digest[:2]}/{digest}"


def blob_in_use(conn: Connection, key: str) -> bool:
    """Whether a version's artifact or a stored background sample still uses blob ``key``."""
    as_model = conn.execute(
        select(func.count()).where(model_versions.c.artifact_key == key)
    ).scalar_one()
    as_background = conn.execute(
        select(func.count()).where(version_importance.c.background_key == key)
    ).scalar_one()
    return bool(as_model or as_background)


def _checked_values(values: Mapping[str, float], inputs: tuple[str, ...]) -> list[list[object]]:
    """``values`` as ``[[feature, importance], ...]``, largest first (ties in input order)."""
    if not isinstance(values, Mapping):
        raise InvalidInputError("importance must map feature names to numbers", field="importance")
    unknown = sorted(set(values) - set(inputs))
    missing = [name for name in inputs if name not in values]
    if unknown or missing:
        raise InvalidInputError(
            "importance must give one number per model input"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""),
            field="importance",
        )
    pairs: list[tuple[str, float]] = []
    for name in inputs:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(
                f"importance of {name!r} is {value!r}, not a number", field=f"importance.{name}"
            )
        if not math.isfinite(value) or value < 0:
            raise InvalidInputError(
                f"importance of {name!r} is {value}; a mean absolute attribution is a finite "
                "number of at least 0",
                field=f"importance.{name}",
            )
        pairs.append((name, float(value)))
    pairs.sort(key=lambda pair: -pair[1])  # stable: ties keep the signature's order
    return [[name, value] for name, value in pairs]


class ImportanceRecords(VersionReader):
    """Global importance and background samples of versions."""

    def set_importance(
        self,
        ref: ModelRef | str,
        values: Mapping[str, float],
        *,
        method: str,
        rows: int,
        actor: str,
        background: bytes | None = None,
        background_rows: int = 0,
    ) -> ModelVersion:
        """Store the global importance of version ``ref`` (replacing any earlier one).

        ``values`` gives each model input its mean absolute attribution over ``rows`` rows;
        ``method`` names how (``treeshap``, ``exact``, ``permutation``...). ``background`` is a
        Parquet file of ``background_rows`` rows (at most 100) in the model's input columns,
        stored as a content-addressed artifact for model-agnostic explanations at decision time.
        The change is recorded in the registry history.
        """
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        check_name(method, field="method")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise InvalidInputError(f"rows must be a positive integer, not {rows!r}", field="rows")
        if background is not None and not 1 <= background_rows <= MAX_BACKGROUND_ROWS:
            raise InvalidInputError(
                f"a background sample holds 1 to {MAX_BACKGROUND_ROWS} rows, not "
                f"{background_rows}; sample fewer rows",
                field="background_rows",
            )
        digest = key = None
        if background is not None:
            digest = hashlib.sha256(background).hexdigest()
            key = blob_key(digest)
            if not self.blobs.exists(key):
                self.blobs.put(key, background)
        now = utcnow()
        with self.store.write() as conn:
            _, number = self._resolve(conn, ref)
            version = self._version(conn, ref.name, number)
            pairs = _checked_values(values, version.signature.input_names)
            old_key = conn.execute(
                select(version_importance.c.background_key).where(
                    version_importance.c.version_id == version.id
                )
            ).scalar()
            conn.execute(
                version_importance.delete().where(version_importance.c.version_id == version.id)
            )
            conn.execute(
                version_importance.insert().values(
                    version_id=version.id, method=method, importance=pairs, rows=rows,
                    background_key=key, background_digest=digest,
                    background_rows=background_rows if background is not None else None,
                    computed_at=now, computed_by=actor,
                )
            )  # fmt: skip
            self.history_log.append(
                conn, actor=actor, action="importance.set", subject=str(version.ref), at=now,
                details={"method": method, "rows": rows, "top": pairs[0][0] if pairs else None,
                         "background": digest},
            )  # fmt: skip
            stale = old_key is not None and old_key != key and not blob_in_use(conn, old_key)
            updated = self._version(conn, ref.name, number)
        if stale:
            self.blobs.delete(str(old_key))
        return updated

    def background(self, ref: ModelRef | str) -> bytes | None:
        """The background sample stored with version ``ref`` (Parquet bytes, checked against
        its digest), or None when the version has none."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        with self.store.read() as conn:
            _, number = self._resolve(conn, ref)
            version = self._version(conn, ref.name, number)
            row = conn.execute(
                select(version_importance.c.background_key, version_importance.c.background_digest)
                .where(version_importance.c.version_id == version.id)
            ).first()  # fmt: skip
        if row is None or row.background_key is None:
            return None
        data = self.blobs.get(row.background_key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != row.background_digest:
            raise IntegrityError(
                f"background sample of {version.ref} does not match its digest (expected "
                f"{row.background_digest[:12]}…, found {actual[:12]}…): it was altered or "
                "corrupted; store it again with `mainspring models importance`"
            )
        return data
