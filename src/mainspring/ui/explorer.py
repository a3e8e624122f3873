"""Reading the decision log for the pages: filtered pages by chain position, counts, buckets.

Pages are cut by chain position (``seq``), newest first: a page lists decisions below a cursor,
and the next page starts below its last one, so a page never shifts while decisions arrive. The
log's columns filter in SQL (deployment, model, version, review flag, time); the decision value
lives in the record's body and is filtered here, reading the log in batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, cast, func, select

from mainspring.audit import Kind, LoggedDecision
from mainspring.audit.entries import Row, stamp
from mainspring.errors import InvalidInputError
from mainspring.project import Project
from mainspring.storage.schema import decision_log, decision_reviews_pending
from mainspring.ui.filters import DecisionFilter

#: Rows read per query while filtering by decision value.
BATCH = 500
#: At most this many rows are read for one page of a filter by decision value.
SCAN_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """Decisions of one explorer page, and the cursor of the next one (None on the last)."""

    items: list[LoggedDecision]
    next_before: int | None
    scanned_out: bool = False  # the scan limit stopped the search before the page was full


def _query(f: DecisionFilter) -> Any:
    query = select(decision_log).where(decision_log.c.kind == Kind.DECISION.value)
    if f.deployment is not None:
        query = query.where(decision_log.c.deployment == f.deployment)
    if f.model is not None:
        query = query.where(decision_log.c.model == f.model)
    if f.version is not None:
        query = query.where(decision_log.c.version == f.version)
    if f.review_required is not None:
        query = query.where(decision_log.c.review_required == f.review_required)
    if f.since is not None:
        query = query.where(decision_log.c.at >= stamp(f.since))
    if f.until is not None:
        query = query.where(decision_log.c.at < stamp(f.until))
    return query


def find(project: Project, f: DecisionFilter) -> DecisionPage:
    """One page of decisions matching ``f``, newest first."""
    query = _query(f)
    found: list[LoggedDecision] = []
    cursor, scanned = f.before, 0
    while len(found) <= f.limit and scanned < SCAN_LIMIT:
        batch = query if cursor is None else query.where(decision_log.c.seq < cursor)
        size = f.limit + 1 if f.decision is None else BATCH
        with project.metadata.read() as conn:
            rows = conn.execute(batch.order_by(decision_log.c.seq.desc()).limit(size)).all()
        if not rows:
            break
        scanned += len(rows)
        for r in rows:
            logged = LoggedDecision.from_row(Row.from_db(r))
            if f.decision is None or logged.decision.decision == f.decision:
                found.append(logged)
                if len(found) > f.limit:
                    break
        cursor = rows[-1].seq
        if len(rows) < size:
            break
    if len(found) > f.limit:
        return DecisionPage(found[: f.limit], found[f.limit - 1].seq)
    if scanned >= SCAN_LIMIT and cursor is not None:
        return DecisionPage(found, cursor, scanned_out=True)
    return DecisionPage(found, None)


def count_since(project: Project, since: datetime) -> int:
    """How many decisions were logged at or after ``since``."""
    with project.metadata.read() as conn:
        n = conn.execute(
            select(func.count())
            .select_from(decision_log)
            .where(decision_log.c.kind == Kind.DECISION.value, decision_log.c.at >= stamp(since))
        ).scalar_one()
    return int(n)


def open_reviews(project: Project, deployment: str | None = None) -> int:
    """How many decisions wait for review."""
    query = select(func.count()).select_from(decision_reviews_pending)
    if deployment is not None:
        query = query.where(decision_reviews_pending.c.deployment == deployment)
    with project.metadata.read() as conn:
        return int(conn.execute(query).scalar_one())


def pending(
    project: Project, deployment: str | None, after: int | None, limit: int
) -> tuple[list[LoggedDecision], int | None]:
    """One page of the review queue, oldest first, after chain position ``after``; and the
    cursor of the next page (None on the last)."""
    seqs = select(decision_reviews_pending.c.seq)
    if deployment is not None:
        seqs = seqs.where(decision_reviews_pending.c.deployment == deployment)
    if after is not None:
        seqs = seqs.where(decision_reviews_pending.c.seq > after)
    with project.metadata.read() as conn:
        wanted = [s for (s,) in conn.execute(seqs.order_by(decision_reviews_pending.c.seq)
                                             .limit(limit + 1))]  # fmt: skip
        rows = conn.execute(
            select(decision_log)
            .where(decision_log.c.seq.in_(wanted[:limit]))
            .order_by(decision_log.c.seq)
        ).all()
    items = [LoggedDecision.from_row(Row.from_db(r)) for r in rows]
    return items, (items[-1].seq if len(wanted) > limit and items else None)


def hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _decision_value(dialect: str) -> Any:
    """The decision value of a record, read from its JSON body by the database."""
    if dialect == "sqlite":  # CAST(... AS JSON) would give the text numeric affinity there
        return func.json_extract(decision_log.c.body, "$.decision")
    return cast(decision_log.c.body, JSON)["decision"].as_string()


def per_period(
    project: Project,
    now: datetime,
    *,
    periods: int,
    step: timedelta,
    deployment: str | None = None,
) -> list[tuple[datetime, Counter[str]]]:
    """Decisions per hour (``step`` of an hour) or per day (a day) by decision value:
    ``periods`` buckets, the last one holding ``now``, oldest first.

    The database counts: the ``at`` column is UTC ISO 8601 text, so its first 13 (10)
    characters name the hour (day), and the decision value is read from the record's JSON.
    """
    if step not in (timedelta(hours=1), timedelta(days=1)):
        raise InvalidInputError("step must be an hour or a day", field="step")
    daily = step == timedelta(days=1)
    last = hour(now).replace(hour=0) if daily else hour(now)
    first = last - step * (periods - 1)
    width = 10 if daily else 13
    bucket = func.substr(decision_log.c.at, 1, width)
    counts: dict[str, Counter[str]] = {}
    with project.metadata.read() as conn:
        value = _decision_value(conn.dialect.name)
        query = select(bucket, value, func.count()).where(
            decision_log.c.kind == Kind.DECISION.value,
            decision_log.c.at >= stamp(first),
            decision_log.c.at < stamp(last + step),
        )
        if deployment is not None:
            query = query.where(decision_log.c.deployment == deployment)
        for label, decision, n in conn.execute(query.group_by(bucket, value)):
            counts.setdefault(label, Counter())[str(decision)] += int(n)
    starts = [first + step * i for i in range(periods)]
    return [(at, counts.get(stamp(at)[:width], Counter())) for at in starts]


def scores(project: Project, deployment: str, limit: int = 5000) -> list[float]:
    """The scores of a deployment's latest ``limit`` decisions made with the model."""
    found = project.decisions.list(deployment=deployment, limit=limit)
    return [d.decision.score for d in found if d.decision.score is not None]
