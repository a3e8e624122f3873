"""``DecisionLog``: the append-only, hash-chained record of decisions, outcomes and reviews.

>>> from datetime import UTC, datetime
>>> from mainspring.records import Decision, Outcome
>>> from mainspring.storage.memory import memory_metadata
>>> log = DecisionLog(memory_metadata())
>>> d = Decision(id="d-1", deployment="credit", at=datetime(2026, 1, 2, tzinfo=UTC),
...     decision="refer", policy="credit@1", review_required=True)
>>> logged = log.append(d)
>>> logged.seq, [p.id for p in log.pending()]
(1, ['d-1'])
>>> review = log.review("d-1", reviewer="ann", action="override", decision="approve",
...     reason_code="income-verified")
>>> log.final("d-1"), log.pending(), log.verify().ok
('approve', [], True)
>>> log.close()
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from mainspring.audit.batch import BatchWriter, ReviewRequest
from mainspring.audit.checks import MAX_ID, MAX_NAME, aware, decision_json, json_text, text
from mainspring.audit.entries import Kind, LoggedDecision, Row, stamp
from mainspring.audit.metrics import AuditMetrics
from mainspring.audit.outbox import Mirror
from mainspring.audit.personal import PersonalData
from mainspring.audit.reading import STREAM, LogReader
from mainspring.audit.writer import DEFAULT_MAX_BATCH, Durability, GroupCommitter, Op
from mainspring.errors import InvalidInputError
from mainspring.records import Decision, Outcome, Review, ReviewAction, new_id, utcnow
from mainspring.storage.base import EventLog, MetadataStore
from mainspring.storage.sql import SqlMetadataStore

__all__ = ["STREAM", "DecisionLog"]


class DecisionLog(LogReader):
    """Decisions, outcomes and reviews in one append-only hash chain on a SQL metadata store.

    Writes go through one group-committing writer (:mod:`mainspring.audit.writer`): ``append``,
    ``attach_outcome`` and ``review`` return once their record has committed. With ``events``,
    committed records are also published to the event log (:mod:`mainspring.audit.outbox`).
    ``personal`` names the fields dropped or hashed before anything is written; ``segments`` the
    entity/context fields whose override rates are metered.
    """

    def __init__(
        self,
        store: MetadataStore,
        *,
        personal: PersonalData | None = None,
        durability: Durability | str = Durability.FSYNC,
        events: EventLog | None = None,
        segments: Sequence[str] = (),
        max_batch: int = DEFAULT_MAX_BATCH,
        metrics: AuditMetrics | None = None,
        mirror_interval_s: float = 5.0,
        mirror_claim: Callable[[], bool] | None = None,
    ) -> None:
        if not isinstance(store, SqlMetadataStore):
            raise InvalidInputError(
                "the decision log needs an SQL metadata store (sqlite:// or postgresql://)",
                field="store",
            )
        self.store = store
        self.personal = personal or PersonalData()
        self.durability = Durability.parse(durability)
        self.segments = tuple(segments)
        self.metrics = metrics
        self._batches = BatchWriter(self.segments)
        self._writer = GroupCommitter(
            store,
            self._batches,
            lock="decisions",
            durability=self.durability,
            max_batch=max_batch,
            after_commit=self._after_commit,
            name="mainspring-decision-log",
        )
        self.mirror: Mirror | None = None
        if events is not None:
            on_lag = metrics.unpublished.set if metrics is not None else None
            self.mirror = Mirror(store, events, on_lag=on_lag, claim=mirror_claim)
            self.mirror.start(mirror_interval_s)
            self.mirror.wake()  # publish what an earlier process committed but did not publish

    # --- writing -------------------------------------------------------------------------------

    def append(self, decision: Decision) -> LoggedDecision:
        """Log ``decision``; returns once it is committed (see ``durability``).

        Personal fields are treated first. Appending the same decision again (same id, same
        content) returns the logged one; the same id with other content is a ``ConflictError``.
        """
        result: LoggedDecision = self._writer.run("decision", self._prepare(decision))
        return result

    async def append_async(self, decision: Decision) -> LoggedDecision:
        """:meth:`append` for asyncio code: the same writer, awaited instead of blocked on."""
        result: LoggedDecision = await self._writer.run_async("decision", self._prepare(decision))
        return result

    def _prepare(self, decision: Decision) -> tuple[Decision, Row]:
        if not isinstance(decision, Decision):
            raise InvalidInputError("append takes a mainspring.records.Decision", field="decision")
        text(decision.id, "id", MAX_ID)
        text(decision.deployment, "deployment", MAX_NAME)
        text(decision.decision, "decision", MAX_NAME)
        if decision.model is not None:
            text(decision.model, "model", MAX_NAME)
        stored = self.personal.apply(decision)
        row = Row(
            id=decision.id,
            kind=Kind.DECISION,
            decision_id=decision.id,
            deployment=decision.deployment,
            at=stamp(decision.at),
            model=decision.model,
            version=decision.version,
            review_required=decision.review_required,
            body=decision_json(stored),
        )
        return stored, row

    def attach_outcome(self, outcome: Outcome) -> Outcome:
        """Attach ``outcome`` to its decision (``NotFoundError`` if unknown). Idempotent by
        ``outcome.id``: delivering it again returns the outcome logged the first time."""
        if not isinstance(outcome, Outcome):
            raise InvalidInputError("attach_outcome takes a mainspring.records.Outcome")
        text(outcome.id, "id", MAX_ID)
        text(outcome.decision_id, "decision_id", MAX_ID)
        text(outcome.source, "source", MAX_NAME)
        json_text(outcome.value, "value")
        result: Outcome = self._writer.run("outcome", outcome)
        return result

    def review(
        self,
        decision_id: str,
        *,
        reviewer: str,
        action: ReviewAction | str,
        reason_code: str,
        decision: str | None = None,
        comment: str = "",
        at: datetime | None = None,
    ) -> Review:
        """A person's review of a decision, logged as a new record (the decision is untouched).

        ``accept`` keeps the decision; ``override`` replaces it with ``decision``, which then is
        the :meth:`final` one. A decision is reviewed once (``ConflictError`` after that).
        """
        text(decision_id, "decision_id", MAX_ID)
        text(reviewer, "reviewer", MAX_NAME)
        try:
            act = ReviewAction(action)
        except ValueError:
            raise InvalidInputError(
                f"action {action!r} is not one of accept, override", field="action"
            ) from None
        text(reason_code, "reason_code", MAX_NAME)
        if decision is not None:
            text(decision, "decision", MAX_NAME)
        if not isinstance(comment, str) or len(comment) > 10_000:
            raise InvalidInputError(
                "comment must be text of at most 10000 characters", field="comment"
            )
        when = at or utcnow()
        aware(when, "at")
        request = ReviewRequest(
            decision_id, reviewer, act, decision, reason_code, comment, when, new_id()
        )
        result: Review = self._writer.run("review", request)
        return result

    def _after_commit(self, ops: builtins.list[Op], results: builtins.list[Any]) -> None:
        self._batches.committed()
        if self.metrics is not None:
            kinds: dict[str, int] = {}
            for op, result in zip(ops, results, strict=True):
                if not isinstance(result, BaseException):
                    kinds[op.kind] = kinds.get(op.kind, 0) + 1
            self.metrics.committed(kinds, len(ops))
            for note in self._batches.take_notes():
                self.metrics.reviewed(*note)
        if self.mirror is not None:
            self.mirror.wake()

    def pseudonym(self, value: Any) -> str:
        """The pseudonym a hashed personal field holds for ``value`` (to find its records)."""
        return self.personal.pseudonym(value)

    def publish_pending(self) -> int:
        """Publish what is committed but not yet on the event log (0 without an event log)."""
        return self.mirror.publish_pending() if self.mirror is not None else 0

    def close(self) -> None:
        """Commit what is queued, publish what is committed (best effort) and stop."""
        self._writer.close()
        if self.mirror is not None:
            self.mirror.stop(drain=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
