"""``/v1/decisions``, ``/v1/outcomes``, ``/v1/reviews``: the decision log and human review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from mainspring.api.auth import CanRead, CanRecordOutcome, CanReview, project_of
from mainspring.api.schemas import Body
from mainspring.audit import LoggedDecision
from mainspring.project import Project
from mainspring.records import JSON, Outcome, new_id, utcnow

router = APIRouter(tags=["decisions"])
ProjectDep = Annotated[Project, Depends(project_of)]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many (1-1000).")]
Name = Annotated[str | None, Query(min_length=1, max_length=128)]


class OutcomeBody(Body):
    decision_id: str = Field(min_length=1, max_length=64, description="The decision it is for.")
    value: Any = Field(description="The true label or value (any JSON).")
    at: datetime | None = Field(default=None, description="When it was observed (default: now).")
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Idempotency key: the same id attaches once (default: a new id).",
    )
    source: str = Field(default="api", min_length=1, max_length=128)


class ReviewBody(Body):
    action: Literal["accept", "override"]
    decision: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The new decision (override); for accept it may repeat the logged one.",
    )
    reason_code: str = Field(min_length=1, max_length=128, description="Why, as a code.")
    comment: str = Field(default="", max_length=10_000)


def _full(project: Project, logged: LoggedDecision) -> JSON:
    log = project.decisions
    reviews = log.reviews(logged.id)
    return {
        **logged.to_dict(),
        "final": reviews[-1].decision if reviews else logged.decision.decision,
        "reviews": [r.to_dict() for r in reviews],
        "outcomes": [o.to_dict() for o in log.outcomes(logged.id)],
    }


@router.get("/v1/decisions/verify", summary="Check the whole decision log's hash chain")
def verify(project: ProjectDep, _: CanRead) -> JSON:
    result = project.decisions.verify()
    return {
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_seq": result.first_bad_seq,
        "record": result.subject,
        "problem": result.problem or None,
        "message": str(result),
    }


@router.get("/v1/decisions", summary="Logged decisions, newest first")
def list_decisions(
    project: ProjectDep,
    _: CanRead,
    deployment: Name = None,
    model: Name = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601 with offset.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601 with offset.")] = None,
    limit: Limit = 100,
) -> list[JSON]:
    found = project.decisions.list(
        deployment=deployment, model=model, since=since, until=until, limit=limit
    )
    return [d.to_dict() for d in found]


@router.get("/v1/decisions/{decision_id}", summary="One decision with its reviews and outcomes")
def get_decision(decision_id: str, project: ProjectDep, _: CanRead) -> JSON:
    return _full(project, project.decisions.get(decision_id))


@router.post("/v1/outcomes", status_code=201, summary="Attach an outcome to its decision")
def post_outcome(body: OutcomeBody, project: ProjectDep, _: CanRecordOutcome) -> JSON:
    outcome = Outcome(
        body.decision_id, body.value, body.at or utcnow(), body.id or new_id(), body.source
    )
    return project.decisions.attach_outcome(outcome).to_dict()


@router.get("/v1/reviews", summary="Decisions waiting for review, oldest first")
def pending(
    project: ProjectDep, _: CanRead, deployment: Name = None, limit: Limit = 100
) -> list[JSON]:
    return [d.to_dict() for d in project.decisions.pending(deployment, limit=limit)]


@router.post(
    "/v1/reviews/{decision_id}",
    status_code=201,
    summary="Accept or override a decision (the reviewer is the caller)",
)
def review(
    decision_id: str, body: ReviewBody, project: ProjectDep, who: CanReview, response: Response
) -> JSON:
    done = project.decisions.review(
        decision_id,
        reviewer=who.name,
        action=body.action,
        decision=body.decision,
        reason_code=body.reason_code,
        comment=body.comment,
    )
    response.headers["Location"] = f"/v1/decisions/{decision_id}"
    return done.to_dict()
