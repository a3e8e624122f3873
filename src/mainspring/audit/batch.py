"""The writer's side of the decision log: one group commit's records, linked into the chain.

Runs inside the writer's transaction (:mod:`mainspring.audit.writer`) through the database
driver (:class:`~mainspring.storage.sql.DriverTx`): the statements below are plain SQL written
once, because compiling SQLAlchemy statements cost more than SQLite took to run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mainspring.audit.checks import json_text, segment
from mainspring.audit.entries import COLUMNS, Kind, LoggedDecision, Row, stamp
from mainspring.audit.writer import Op, RetryBatch
from mainspring.errors import ConflictError, InvalidInputError, MainspringError, NotFoundError
from mainspring.records import Decision, Outcome, Review, ReviewAction
from mainspring.storage.chain import GENESIS
from mainspring.storage.sql import DriverTx, placeholders

IN_CHUNK = 500

_HEAD = "SELECT seq, hash FROM decision_log ORDER BY seq DESC LIMIT 1"
# the f-strings below put in column names and placeholders only; every value is bound
_RECORD = f"SELECT {COLUMNS} FROM decision_log WHERE id = ?"  # noqa: S608
_INSERT = f"INSERT INTO decision_log ({COLUMNS}) VALUES ({placeholders(12)})"  # noqa: S608
_PENDING_ADD = (
    "INSERT INTO decision_reviews_pending (decision_id, deployment, seq) VALUES (?, ?, ?)"
)
_REVIEWED = "SELECT id FROM decision_log WHERE decision_id = ? AND kind = 'review'"

#: one segment note per committed review: (deployment, model, version, action, segments)
Note = tuple[str, str | None, int | None, str, dict[str, str]]


def record(tx: DriverTx, record_id: str) -> Row | None:
    """The record ``record_id`` of the log, if there is one."""
    found = tx.first(_RECORD, (record_id,))
    return Row.from_values(found) if found is not None else None


def decision_row(tx: DriverTx, decision_id: str) -> Row:
    """The logged decision ``decision_id`` (``NotFoundError`` if there is none)."""
    row = record(tx, decision_id)
    if row is None or row.kind is not Kind.DECISION:
        raise NotFoundError("decision", decision_id)
    return row


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """A review as asked for, before the writer checks it against the logged decision."""

    decision_id: str
    reviewer: str
    action: ReviewAction
    decision: str | None
    reason_code: str
    comment: str
    at: datetime
    id: str


@dataclass(slots=True)
class _Batch:
    """What one group commit is writing: the head it extends and the rows not yet inserted."""

    seq: int
    prev: str
    rows: list[Row] = field(default_factory=list)
    pending_add: list[tuple[str, str, int]] = field(default_factory=list)
    pending_remove: list[str] = field(default_factory=list)
    by_id: dict[str, Row] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.seq += 1
        linked = row.linked(self.seq, self.prev)
        self.prev = linked.hash
        self.rows.append(linked)
        self.by_id[linked.id] = linked
        return linked

    def flush(self, tx: DriverTx) -> None:
        tx.many(_INSERT, [r.values() for r in self.rows])
        tx.many(_PENDING_ADD, self.pending_add)
        for start in range(0, len(self.pending_remove), IN_CHUNK):
            chunk = self.pending_remove[start : start + IN_CHUNK]
            tx.execute(
                "DELETE FROM decision_reviews_pending "  # noqa: S608
                f"WHERE decision_id IN ({placeholders(len(chunk))})",
                chunk,
            )
        self.rows, self.pending_add, self.pending_remove = [], [], []


class BatchWriter:
    """Writes one batch of decisions, outcomes and reviews; keeps notes of the reviews for the
    metrics, read by the log after the commit (:meth:`take_notes`).

    Decisions are inserted without first looking their ids up: a decision delivered again (an
    idempotent append) is rare, and the unique index on ``id`` refuses it anyway. When it does,
    the batch asks the writer to run it again (:class:`~mainspring.audit.writer.RetryBatch`),
    this time looking the ids up first, so that the decision already logged is returned (or a
    different one with its id refused) and the others are written. Looking every batch's ids up
    cost a statement per commit: about 15 us of a 0.6 ms decision in process.
    """

    def __init__(self, segments: tuple[str, ...]) -> None:
        self.segments = segments
        self._notes: list[Note] = []
        self._look_up_ids = False  # the next run looks the ids up (after a RetryBatch)
        #: the log's head (seq, hash) after this writer's last commit, with SQLite's data
        #: version then: while no other connection commits, the next batch extends it without
        #: reading it (see :meth:`committed`)
        self._head: tuple[int, str, int] | None = None
        self._written: tuple[int, str, int] | None = None

    def take_notes(self) -> list[Note]:
        notes, self._notes = self._notes, []
        return notes

    def committed(self) -> None:
        """The batch last written has committed: its head is the log's head until another
        connection commits (which changes SQLite's data version; on other databases the head is
        read in every transaction)."""
        self._head, self._written = self._written, None

    def __call__(self, tx: DriverTx, ops: list[Op]) -> list[Any]:
        self._notes = []
        known, self._head, self._written = self._head, None, None  # known only if this commits
        version = tx.data_version()
        if known is not None and known[2] == version:
            batch = _Batch(known[0], known[1])
        else:
            head = tx.first(_HEAD)
            batch = _Batch(int(head[0]), str(head[1])) if head else _Batch(0, GENESIS)
        looked_up, self._look_up_ids = self._look_up_ids, False
        existing = self._logged(tx, ops) if looked_up else {}
        results: list[Any] = []
        try:
            for op in ops:
                try:
                    if op.kind == "decision":
                        results.append(self._add_decision(batch, existing, *op.payload))
                        continue
                    batch.flush(tx)  # what follows reads the rows of this batch back
                    if op.kind == "outcome":
                        results.append(self._add_outcome(tx, batch, op.payload))
                    else:
                        results.append(self._add_review(tx, batch, op.payload))
                except MainspringError as exc:
                    results.append(exc)
            batch.flush(tx)
        except tx.integrity_error as exc:
            if looked_up:
                raise
            self._look_up_ids = True  # a decision's id was there already: look them up
            raise RetryBatch from exc
        if version is not None:
            self._written = (batch.seq, batch.prev, version)
        return results

    @staticmethod
    def _logged(tx: DriverTx, ops: list[Op]) -> dict[str, Row]:
        """The records already logged under the ids of the batch's decisions."""
        ids = [op.payload[1].id for op in ops if op.kind == "decision"]
        existing: dict[str, Row] = {}
        for start in range(0, len(ids), IN_CHUNK):
            chunk = ids[start : start + IN_CHUNK]
            for values in tx.all(
                f"SELECT {COLUMNS} FROM decision_log "  # noqa: S608
                f"WHERE id IN ({placeholders(len(chunk))})",
                chunk,
            ):
                row = Row.from_values(values)
                existing[row.id] = row
        return existing

    @staticmethod
    def _add_decision(
        batch: _Batch, existing: dict[str, Row], stored: Decision, row: Row
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
            batch.pending_add.append((row.id, row.deployment, linked.seq))
        return LoggedDecision(stored, linked.seq, linked.hash, linked.prev_hash)

    def _add_outcome(self, tx: DriverTx, batch: _Batch, outcome: Outcome) -> Outcome:
        logged = decision_row(tx, outcome.decision_id)
        seen = record(tx, outcome.id)
        if seen is not None:
            if seen.kind is Kind.OUTCOME and seen.decision_id == outcome.decision_id:
                return Outcome.from_dict(seen.data())
            raise ConflictError(f"id {outcome.id!r} is already used by another record")
        body = json_text(outcome.to_dict(), "value")
        batch.add(_attached(Kind.OUTCOME, outcome.id, logged, outcome.at, body))
        return outcome

    def _add_review(self, tx: DriverTx, batch: _Batch, request: ReviewRequest) -> Review:
        logged = decision_row(tx, request.decision_id)
        earlier = tx.first(_REVIEWED, (request.decision_id,))
        if earlier is not None:
            raise ConflictError(
                f"decision {request.decision_id!r} was already reviewed (review {earlier[0]}); "
                "a decision is reviewed once"
            )
        data = logged.data()
        review = Review(
            decision_id=request.decision_id,
            reviewer=request.reviewer,
            action=request.action,
            decision=_final(str(data["decision"]), request),
            reason_code=request.reason_code,
            comment=request.comment,
            at=request.at,
            id=request.id,
        )
        body = json_text(review.to_dict(), "review")
        batch.add(_attached(Kind.REVIEW, review.id, logged, review.at, body))
        batch.pending_remove.append(review.decision_id)
        segments = {s: str(v) for s in self.segments if (v := segment(data, s)) is not None}
        self._notes.append(
            (logged.deployment, logged.model, logged.version, review.action.value, segments)
        )
        return review


def _attached(kind: Kind, record_id: str, logged: Row, at: datetime, body: str) -> Row:
    """The row of an outcome or a review of the logged decision ``logged``."""
    return Row(
        id=record_id,
        kind=kind,
        decision_id=logged.id,
        deployment=logged.deployment,
        at=stamp(at),
        model=logged.model,
        version=logged.version,
        review_required=False,
        body=body,
    )


def _final(original: str, request: ReviewRequest) -> str:
    """The decision after ``request``: the original when accepted, the new one when overridden."""
    if request.action is ReviewAction.ACCEPT:
        if request.decision is not None and request.decision != original:
            raise InvalidInputError(
                f"accept keeps the decision {original!r}; to change it to "
                f"{request.decision!r}, override",
                field="decision",
            )
        return original
    if request.decision is None:
        raise InvalidInputError("an override needs the new decision", field="decision")
    if request.decision == original:
        raise InvalidInputError(
            f"the decision already is {original!r}: accept it instead of overriding",
            field="decision",
        )
    return request.decision
