"""Reading the decision log: decisions, their outcomes and reviews, labels, override rates, and
the walk that verifies the chain (:class:`LogReader`, the read side of ``DecisionLog``)."""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select

from mainspring.audit.batch import IN_CHUNK, decision_row
from mainspring.audit.checks import MAX_NAME, aware, segment, text
from mainspring.audit.entries import Kind, Label, LoggedDecision, OverrideRate, Row, row_hash
from mainspring.errors import InvalidInputError
from mainspring.records import Outcome, Review, ReviewAction
from mainspring.storage.chain import GENESIS, Verification
from mainspring.storage.schema import decision_log, decision_outbox, decision_reviews_pending
from mainspring.storage.sql import SqlMetadataStore

STREAM = "decisions"
_PAGE = 2000


class LogReader:
    """The queries of a decision log on ``store`` (never writes)."""

    store: SqlMetadataStore

    def get(self, decision_id: str) -> LoggedDecision:
        """The logged decision ``decision_id`` (``NotFoundError`` if there is none)."""
        with self.store.driver_read() as tx:
            row = decision_row(tx, decision_id)
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
        if (lo := aware(since, "since")) is not None:
            query = query.where(decision_log.c.at >= lo)
        if (hi := aware(until, "until")) is not None:
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
            for chunk in range(0, len(ids), IN_CHUNK):
                for r in conn.execute(
                    select(decision_log)
                    .where(
                        decision_log.c.kind == kind.value,
                        decision_log.c.decision_id.in_(ids[chunk : chunk + IN_CHUNK]),
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
            if len(page) >= IN_CHUNK:
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
        text(by, "by", MAX_NAME)
        query = select(decision_log).where(decision_log.c.kind == Kind.REVIEW.value)
        if deployment is not None:
            query = query.where(decision_log.c.deployment == deployment)
        if (lo := aware(since, "since")) is not None:
            query = query.where(decision_log.c.at >= lo)
        with self.store.read() as conn:
            rows = [Row.from_db(r) for r in conn.execute(query.order_by(decision_log.c.seq))]
        decisions: dict[str, Any] = {}
        if by != "model":
            with self.store.read() as conn:
                ids = [r.decision_id for r in rows]
                for chunk in range(0, len(ids), IN_CHUNK):
                    for d in conn.execute(
                        select(decision_log.c.id, decision_log.c.body).where(
                            decision_log.c.id.in_(ids[chunk : chunk + IN_CHUNK])
                        )
                    ):
                        decisions[d.id] = json.loads(d.body)
        counts: dict[str, builtins.list[int]] = {}
        for r in rows:
            if by == "model":
                group = f"{r.model}/{r.version}" if r.model else "(no model)"
            else:
                value = segment(decisions.get(r.decision_id, {}), by)
                group = "(none)" if value is None else str(value)
            tally = counts.setdefault(group, [0, 0])
            tally[0] += 1
            tally[1] += r.data().get("action") == ReviewAction.OVERRIDE.value
        return [OverrideRate(g, n, o) for g, (n, o) in sorted(counts.items())]

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
