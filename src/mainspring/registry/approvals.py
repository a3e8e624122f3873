"""The approval of versions for production: request, approve, reject, with four eyes."""

from __future__ import annotations

from mainspring.errors import GovernanceError, PermissionDeniedError
from mainspring.records import ApprovalState, ModelVersion, new_id, utcnow
from mainspring.registry.validation import require_reason
from mainspring.registry.versions import VersionReader
from mainspring.storage.schema import approvals, model_versions


class Approving(VersionReader):
    """Approval steps; each one is a row in ``approvals`` and an entry in the history."""

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
