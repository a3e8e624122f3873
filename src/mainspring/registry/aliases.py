"""Aliases (``champion``, ``challenger``, any name) that point at versions, and rollbacks.

Every move is kept in ``alias_moves`` and in the hash-chained registry history, so a rollback knows
where an alias pointed before.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from mainspring.errors import ConflictError, GovernanceError, NotFoundError
from mainspring.records import ApprovalState, ModelVersion, check_name, new_id, utcnow
from mainspring.registry.rows import alias_map
from mainspring.registry.validation import require_reason
from mainspring.registry.versions import CHAMPION, VersionReader
from mainspring.storage.schema import alias_moves, aliases


class Aliasing(VersionReader):
    """Moving, deleting and rolling back aliases; ``champion`` needs an approved version."""

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
