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

import asyncio
import builtins
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, bindparam, delete, insert, select

from mainspring.audit.entries import Kind, Label, LoggedDecision, OverrideRate, Row, row_hash, stamp
from mainspring.audit.metrics import AuditMetrics
from mainspring.audit.outbox import Mirror
from mainspring.audit.personal import PersonalData
from mainspring.audit.writer import DEFAULT_MAX_BATCH, Durability, GroupCommitter, Op
from mainspring.errors import ConflictError, InvalidInputError, MainspringError, NotFoundError
from mainspring.records import Decision, Outcome, Review, ReviewAction, new_id, utcnow
from mainspring.storage.base import EventLog, MetadataStore
from mainspring.storage.chain import GENESIS, Verification, canonical_json
from mainspring.storage.schema import decision_log, decision_outbox, decision_reviews_pending
from mainspring.storage.sql import SqlMetadataStore

STREAM = "decisions"
MAX_ID = 64
MAX_NAME = 128
_PAGE = 2000
_IN_CHUNK = 500

# the writer's statements, built once (building a statement costs more than running it here)
_HEAD = select(decision_log.c.seq, decision_log.c.hash).order_by(decision_log.c.seq.desc()).limit(1)
_KNOWN = select(decision_log).where(decision_log.c.id.in_(bindparam("ids", expanding=True)))
_INSERT = insert(decision_log)
_PENDING_ADD = insert(decision_reviews_pending)
_PENDING_REMOVE = delete(decision_reviews_pending).where(
    decision_reviews_pending.c.decision_id.in_(bindparam("ids", expanding=True))
)


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _decision_json(decision: Decision) -> str:
    """The stored body of a decision: sorted-key JSON, as :func:`canonical_json` but with orjson
    (the body is hashed as stored, so only its determinism matters; this is 15x faster, which
    counts once per decision). NaN and infinity are refused, as ``canonical_json`` does."""
    numbers = (decision.raw, decision.score, decision.confidence, decision.base_value,
               decision.latency_ms, *decision.attributions.values(), *decision.shadows.values(),
               *(f.value for f in decision.features), *(r.contribution for r in decision.reasons),
               *decision.entity.values(), *decision.context.values())  # fmt: skip
    import orjson  # not at import time: `import mainspring` stays lean

    if not all(map(_finite, numbers)):
        raise InvalidInputError(
            "decision cannot be logged: it holds NaN or infinity (log missing values as null)",
            field="decision",
        )
    try:
        return orjson.dumps(decision.to_dict(), option=orjson.OPT_SORT_KEYS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInputError(f"decision cannot be logged: {exc}", field="decision") from None


def _json(value: Any, where: str) -> str:
    try:
        return canonical_json(value)
    except ValueError as exc:  # NaN or infinity
        raise InvalidInputError(f"{where} cannot be logged: {exc}", field=where) from None


def _text(value: Any, where: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInputError(f"{where} must be a non-empty string", field=where)
    if len(value) > limit:
        raise InvalidInputError(f"{where} is longer than {limit} characters", field=where)
    return value


def _aware(value: datetime | None, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInputError(f"{where} must be a timezone-aware time", field=where)
    return stamp(value)


@dataclass(slots=True)
class _Batch:
    """What one group commit is writing: the head it extends and the rows not yet inserted."""

    seq: int
    prev: str
    rows: list[Row] = field(default_factory=list)
    pending_add: list[dict[str, Any]] = field(default_factory=list)
    pending_remove: list[str] = field(default_factory=list)
    by_id: dict[str, Row] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.seq += 1
        linked = replace(row, seq=self.seq, prev_hash=self.prev)
        linked = replace(linked, hash=row_hash(linked))
        self.prev = linked.hash
        self.rows.append(linked)
        self.by_id[linked.id] = linked
        return linked

    def flush(self, conn: Connection) -> None:
        if self.rows:
            conn.execute(_INSERT, [r.columns() for r in self.rows])
            self.rows = []
        if self.pending_add:
            conn.execute(_PENDING_ADD, self.pending_add)
            self.pending_add = []
        if self.pending_remove:
            conn.execute(_PENDING_REMOVE, {"ids": self.pending_remove})
            self.pending_remove = []


@dataclass(frozen=True, slots=True)
class _ReviewRequest:
    decision_id: str
    reviewer: str
    action: ReviewAction
    decision: str | None
    reason_code: str
    comment: str
    at: datetime
    id: str


class DecisionLog:
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
        self._notes: builtins.list[tuple[str, str | None, int | None, str, dict[str, str]]] = []
        self._writer = GroupCommitter(
            store,
            self._write_batch,
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
        result: LoggedDecision = self._writer.submit("decision", self._prepare(decision)).result()
        return result

    async def append_async(self, decision: Decision) -> LoggedDecision:
        """:meth:`append` for asyncio code: the same writer, awaited instead of blocked on."""
        future = self._writer.submit("decision", self._prepare(decision))
        result: LoggedDecision = await asyncio.wrap_future(future)
        return result

    def _prepare(self, decision: Decision) -> tuple[Decision, Row]:
        if not isinstance(decision, Decision):
            raise InvalidInputError("append takes a mainspring.records.Decision", field="decision")
        _text(decision.id, "id", MAX_ID)
        _text(decision.deployment, "deployment", MAX_NAME)
        _text(decision.decision, "decision", MAX_NAME)
        if decision.model is not None:
            _text(decision.model, "model", MAX_NAME)
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
            body=_decision_json(stored),
        )
        return stored, row

    def attach_outcome(self, outcome: Outcome) -> Outcome:
        """Attach ``outcome`` to its decision (``NotFoundError`` if unknown). Idempotent by
        ``outcome.id``: delivering it again returns the outcome logged the first time."""
        if not isinstance(outcome, Outcome):
            raise InvalidInputError("attach_outcome takes a mainspring.records.Outcome")
        _text(outcome.id, "id", MAX_ID)
        _text(outcome.decision_id, "decision_id", MAX_ID)
        _text(outcome.source, "source", MAX_NAME)
        _json(outcome.value, "value")
        result: Outcome = self._writer.submit("outcome", outcome).result()
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
        _text(decision_id, "decision_id", MAX_ID)
        _text(reviewer, "reviewer", MAX_NAME)
        try:
            act = ReviewAction(action)
        except ValueError:
            raise InvalidInputError(
                f"action {action!r} is not one of accept, override", field="action"
            ) from None
        _text(reason_code, "reason_code", MAX_NAME)
        if decision is not None:
            _text(decision, "decision", MAX_NAME)
        if not isinstance(comment, str) or len(comment) > 10_000:
            raise InvalidInputError(
                "comment must be text of at most 10000 characters", field="comment"
            )
        when = at or utcnow()
        _aware(when, "at")
        request = _ReviewRequest(
            decision_id, reviewer, act, decision, reason_code, comment, when, new_id()
        )
        result: Review = self._writer.submit("review", request).result()
        return result

    # --- the writer thread's side --------------------------------------------------------------

    def _write_batch(self, conn: Connection, ops: builtins.list[Op]) -> builtins.list[Any]:
        self._notes = []
        head = conn.execute(_HEAD).first()
        batch = _Batch(head.seq, head.hash) if head else _Batch(0, GENESIS)
        ids = [op.payload[1].id for op in ops if op.kind == "decision"]
        existing: dict[str, Row] = {}
        for chunk in range(0, len(ids), _IN_CHUNK):
            for r in conn.execute(_KNOWN, {"ids": ids[chunk : chunk + _IN_CHUNK]}):
                existing[r.id] = Row.from_db(r)
        results: builtins.list[Any] = []
        for op in ops:
            try:
                if op.kind == "decision":
                    results.append(self._add_decision(batch, existing, *op.payload))
                    continue
                batch.flush(conn)  # what follows reads the rows of this batch back
                if op.kind == "outcome":
                    results.append(self._add_outcome(conn, batch, op.payload))
                else:
                    results.append(self._add_review(conn, batch, op.payload))
            except MainspringError as exc:
                results.append(exc)
        batch.flush(conn)
        return results

    def _add_decision(
        self, batch: _Batch, existing: dict[str, Row], stored: Decision, row: Row
    ) -> LoggedDecision:
        known = batch.by_id.get(row.id) or existing.get(row.id)
        if known is not None:
            if known.kind is Kind.DECISION and known.body == row.body:
                return LoggedDecision(stored, known.seq, known.hash, known.prev_hash)
            raise ConflictError(
                f"id {row.id!r} is already logged with other content: decision ids must be unique"
            )
        linked = batch.add(row)
        if row.review_required:
            batch.pending_add.append(
                {"decision_id": row.id, "deployment": row.deployment, "seq": linked.seq}
            )
        return LoggedDecision(stored, linked.seq, linked.hash, linked.prev_hash)

    @staticmethod
    def _record(conn: Connection, record_id: str) -> Row | None:
        found = conn.execute(select(decision_log).where(decision_log.c.id == record_id)).first()
        return Row.from_db(found) if found is not None else None

    def _decision_row(self, conn: Connection, decision_id: str) -> Row:
        row = self._record(conn, decision_id)
        if row is None or row.kind is not Kind.DECISION:
            raise NotFoundError("decision", decision_id)
        return row

    def _add_outcome(self, conn: Connection, batch: _Batch, outcome: Outcome) -> Outcome:
        logged = self._decision_row(conn, outcome.decision_id)
        seen = self._record(conn, outcome.id)
        if seen is not None:
            if seen.kind is Kind.OUTCOME and seen.decision_id == outcome.decision_id:
                return Outcome.from_dict(seen.data())
            raise ConflictError(f"id {outcome.id!r} is already used by another record")
        batch.add(
            Row(
                id=outcome.id,
                kind=Kind.OUTCOME,
                decision_id=outcome.decision_id,
                deployment=logged.deployment,
                at=stamp(outcome.at),
                model=logged.model,
                version=logged.version,
                review_required=False,
                body=_json(outcome.to_dict(), "value"),
            )
        )
        return outcome

    def _add_review(self, conn: Connection, batch: _Batch, request: _ReviewRequest) -> Review:
        logged = self._decision_row(conn, request.decision_id)
        earlier = conn.execute(
            select(decision_log.c.id).where(
                decision_log.c.decision_id == request.decision_id,
                decision_log.c.kind == Kind.REVIEW.value,
            )
        ).first()
        if earlier is not None:
            raise ConflictError(
                f"decision {request.decision_id!r} was already reviewed (review {earlier.id}); "
                "a decision is reviewed once"
            )
        data = logged.data()
        original = str(data["decision"])
        if request.action is ReviewAction.ACCEPT:
            if request.decision is not None and request.decision != original:
                raise InvalidInputError(
                    f"accept keeps the decision {original!r}; to change it to "
                    f"{request.decision!r}, override",
                    field="decision",
                )
            final = original
        else:
            if request.decision is None:
                raise InvalidInputError("an override needs the new decision", field="decision")
            if request.decision == original:
                raise InvalidInputError(
                    f"the decision already is {original!r}: accept it instead of overriding",
                    field="decision",
                )
            final = request.decision
        review = Review(
            decision_id=request.decision_id,
            reviewer=request.reviewer,
            action=request.action,
            decision=final,
            reason_code=request.reason_code,
            comment=request.comment,
            at=request.at,
            id=request.id,
        )
        batch.add(
            Row(
                id=review.id,
                kind=Kind.REVIEW,
                decision_id=review.decision_id,
                deployment=logged.deployment,
                at=stamp(review.at),
                model=logged.model,
                version=logged.version,
                review_required=False,
                body=_json(review.to_dict(), "review"),
            )
        )
        batch.pending_remove.append(review.decision_id)
        segments = {s: str(v) for s in self.segments if (v := _segment(data, s)) is not None}
        self._notes.append(
            (logged.deployment, logged.model, logged.version, review.action.value, segments)
        )
        return review

    def _after_commit(self, ops: builtins.list[Op], results: builtins.list[Any]) -> None:
        if self.metrics is not None:
            kinds: dict[str, int] = {}
            for op, result in zip(ops, results, strict=True):
                if not isinstance(result, BaseException):
                    kinds[op.kind] = kinds.get(op.kind, 0) + 1
            self.metrics.committed(kinds, len(ops))
            for note in self._notes:
                self.metrics.reviewed(*note)
        self._notes = []
        if self.mirror is not None:
            self.mirror.wake()

    # --- reading -------------------------------------------------------------------------------

    def get(self, decision_id: str) -> LoggedDecision:
        """The logged decision ``decision_id`` (``NotFoundError`` if there is none)."""
        with self.store.read() as conn:
            row = self._decision_row(conn, decision_id)
        return LoggedDecision.from_row(row)

    def _decisions_query(
        self,
        deployment: str | None,
        since: datetime | None,
        until: datetime | None,
        model: str | None,
    ) -> Any:
        query = select(decision_log).where(decision_log.c.kind == Kind.DECISION.value)
        if deployment is not None:
            query = query.where(decision_log.c.deployment == deployment)
        if (lo := _aware(since, "since")) is not None:
            query = query.where(decision_log.c.at >= lo)
        if (hi := _aware(until, "until")) is not None:
            query = query.where(decision_log.c.at < hi)
        if model is not None:
            query = query.where(decision_log.c.model == model)
        return query

    def list(
        self,
        *,
        deployment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | None = None,
        limit: int = 100,
    ) -> builtins.list[LoggedDecision]:
        """Logged decisions, newest first; ``since`` is inclusive, ``until`` exclusive."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidInputError("limit must be a positive integer", field="limit")
        query = self._decisions_query(deployment, since, until, model)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(decision_log.c.seq.desc()).limit(limit)).all()
        return [LoggedDecision.from_row(Row.from_db(r)) for r in rows]

    def iterate(
        self,
        *,
        deployment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | None = None,
    ) -> Iterator[LoggedDecision]:
        """Every matching decision in log order, read page by page (for replay and labels)."""
        query = self._decisions_query(deployment, since, until, model)
        after = 0
        while True:
            with self.store.read() as conn:
                rows = conn.execute(
                    query.where(decision_log.c.seq > after)
                    .order_by(decision_log.c.seq)
                    .limit(_PAGE)
                ).all()
            if not rows:
                return
            for r in rows:
                yield LoggedDecision.from_row(Row.from_db(r))
            after = rows[-1].seq

    def _related(self, kind: Kind, decision_ids: Iterable[str]) -> dict[str, builtins.list[Row]]:
        ids = list(decision_ids)
        found: dict[str, builtins.list[Row]] = {}
        with self.store.read() as conn:
            for chunk in range(0, len(ids), _IN_CHUNK):
                for r in conn.execute(
                    select(decision_log)
                    .where(
                        decision_log.c.kind == kind.value,
                        decision_log.c.decision_id.in_(ids[chunk : chunk + _IN_CHUNK]),
                    )
                    .order_by(decision_log.c.seq)
                ):
                    found.setdefault(r.decision_id, []).append(Row.from_db(r))
        return found

    def outcomes(self, decision_id: str) -> builtins.list[Outcome]:
        """The outcomes attached to a decision, in the order they arrived."""
        rows = self._related(Kind.OUTCOME, [decision_id]).get(decision_id, [])
        return [Outcome.from_dict(r.data()) for r in rows]

    def reviews(self, decision_id: str) -> builtins.list[Review]:
        """The review of a decision (a list: empty, or the one review)."""
        rows = self._related(Kind.REVIEW, [decision_id]).get(decision_id, [])
        return [Review.from_dict(r.data()) for r in rows]

    def final(self, decision_id: str) -> str:
        """The final decision: the reviewer's when overridden, else the logged one."""
        logged = self.get(decision_id)
        reviews = self.reviews(decision_id)
        return reviews[-1].decision if reviews else logged.decision.decision

    def pending(
        self, deployment: str | None = None, *, limit: int = 100
    ) -> builtins.list[LoggedDecision]:
        """Decisions that require review and have none yet, oldest first."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidInputError("limit must be a positive integer", field="limit")
        seqs = select(decision_reviews_pending.c.seq)
        if deployment is not None:
            seqs = seqs.where(decision_reviews_pending.c.deployment == deployment)
        seqs = seqs.order_by(decision_reviews_pending.c.seq).limit(limit)
        with self.store.read() as conn:
            wanted = [s for (s,) in conn.execute(seqs)]
            rows = conn.execute(
                select(decision_log)
                .where(decision_log.c.seq.in_(wanted))
                .order_by(decision_log.c.seq)
            ).all()
        return [LoggedDecision.from_row(Row.from_db(r)) for r in rows]

    def labels(
        self,
        *,
        deployment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | None = None,
    ) -> Iterator[Label]:
        """(decision, final decision, review, latest outcome) for each decision, in log order:
        the labels for retraining."""
        page: builtins.list[LoggedDecision] = []
        for logged in self.iterate(deployment=deployment, since=since, until=until, model=model):
            page.append(logged)
            if len(page) >= _IN_CHUNK:
                yield from self._labels(page)
                page = []
        yield from self._labels(page)

    def _labels(self, page: builtins.list[LoggedDecision]) -> Iterator[Label]:
        if not page:
            return
        ids = [p.id for p in page]
        reviews = self._related(Kind.REVIEW, ids)
        outcomes = self._related(Kind.OUTCOME, ids)
        for logged in page:
            r = reviews.get(logged.id)
            o = outcomes.get(logged.id)
            review = Review.from_dict(r[-1].data()) if r else None
            outcome = Outcome.from_dict(o[-1].data()) if o else None
            final = review.decision if review else logged.decision.decision
            yield Label(logged.decision, final, review, outcome)

    def override_rate(
        self,
        by: str = "model",
        *,
        deployment: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[OverrideRate]:
        """Reviews and overrides per model version (``by="model"``, groups ``name/version``) or
        per value of an entity/context field (``by="region"``), sorted by group."""
        _text(by, "by", MAX_NAME)
        query = select(decision_log).where(decision_log.c.kind == Kind.REVIEW.value)
        if deployment is not None:
            query = query.where(decision_log.c.deployment == deployment)
        if (lo := _aware(since, "since")) is not None:
            query = query.where(decision_log.c.at >= lo)
        with self.store.read() as conn:
            rows = [Row.from_db(r) for r in conn.execute(query.order_by(decision_log.c.seq))]
        decisions: dict[str, Any] = {}
        if by != "model":
            with self.store.read() as conn:
                ids = [r.decision_id for r in rows]
                for chunk in range(0, len(ids), _IN_CHUNK):
                    for d in conn.execute(
                        select(decision_log.c.id, decision_log.c.body).where(
                            decision_log.c.id.in_(ids[chunk : chunk + _IN_CHUNK])
                        )
                    ):
                        decisions[d.id] = json.loads(d.body)
        counts: dict[str, builtins.list[int]] = {}
        for r in rows:
            if by == "model":
                group = f"{r.model}/{r.version}" if r.model else "(no model)"
            else:
                value = _segment(decisions.get(r.decision_id, {}), by)
                group = "(none)" if value is None else str(value)
            tally = counts.setdefault(group, [0, 0])
            tally[0] += 1
            tally[1] += r.data().get("action") == ReviewAction.OVERRIDE.value
        return [OverrideRate(g, n, o) for g, (n, o) in sorted(counts.items())]

    def pseudonym(self, value: Any) -> str:
        """The pseudonym a hashed personal field holds for ``value`` (to find its records)."""
        return self.personal.pseudonym(value)

    # --- checking ------------------------------------------------------------------------------

    def verify(self) -> Verification:
        """Walk the whole chain and name the first record that is missing, re-linked or altered.

        Also checks that no published record is gone from the end of the chain (the outbox
        cursor is never past the head), which the links alone cannot show.
        """
        prev, expected, checked = GENESIS, 1, 0
        after = 0
        while True:
            with self.store.read() as conn:
                rows = conn.execute(
                    select(decision_log)
                    .where(decision_log.c.seq > after)
                    .order_by(decision_log.c.seq)
                    .limit(_PAGE)
                ).all()
            if not rows:
                break
            for row in rows:
                if row.seq != expected:
                    problem = f"is missing (the next record present is {row.seq})"
                    return Verification(STREAM, checked, False, expected, problem, None)
                if row.prev_hash != prev:
                    problem = (
                        "does not link to the record before it (prev_hash differs): it was "
                        "re-linked, or the record before it rewritten"
                    )
                    return Verification(STREAM, checked, False, row.seq, problem, row.id)
                if row_hash(row) != row.hash:
                    problem = "was altered after it was written (its hash does not match)"
                    return Verification(STREAM, checked, False, row.seq, problem, row.id)
                prev, expected, checked = row.hash, expected + 1, checked + 1
            after = rows[-1].seq
        with self.store.read() as conn:
            published = conn.execute(select(decision_outbox.c.seq)).scalars().all()
        if published and max(published) >= expected:
            problem = (
                f"is missing: records up to {max(published)} were published, the chain ends "
                f"at {expected - 1}"
            )
            return Verification(STREAM, checked, False, expected, problem, None)
        return Verification(STREAM, checked, True)

    def count(self) -> int:
        """How many records (decisions, outcomes and reviews) the log holds."""
        with self.store.read() as conn:
            head = conn.execute(
                select(decision_log.c.seq).order_by(decision_log.c.seq.desc()).limit(1)
            ).scalar()
        return int(head or 0)

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


def _segment(data: Any, name: str) -> Any:
    """A decision's value of segment field ``name``: from its entity, else its context."""
    for part in ("entity", "context"):
        section = data.get(part) if isinstance(data, dict) else None
        if isinstance(section, dict) and name in section:
            return section[name]
    return None
