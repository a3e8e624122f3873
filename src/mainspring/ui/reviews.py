"""``/ui/reviews``: the review queue, and the accept / override forms.

A submitted form goes to the same service the REST API's ``POST /v1/reviews/{id}`` uses
(``DecisionLog.review``); the reviewer is the authenticated principal, never a form field.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.records import Review
from mainspring.serving.deployments import DeploymentStore
from mainspring.ui import explorer
from mainspring.ui.filters import integer, text
from mainspring.ui.render import page
from mainspring.ui.session import CanRead, CanReview, CsrfChecked, project_of

router = APIRouter()
PAGE_SIZE = 20
MAX_CODE = 128
MAX_COMMENT = 10_000


@router.get("/reviews", response_class=HTMLResponse)
def queue(request: Request, who: CanRead) -> HTMLResponse:
    project = project_of(request)
    params = dict(request.query_params)
    deployment = text(params, "deployment")
    after = integer(params, "after")
    items, next_after = explorer.pending(project, deployment, after, PAGE_SIZE)
    store = DeploymentStore(project.metadata)
    choices: dict[str, list[str]] = {}
    for d in store.list():
        if d.policy is not None:
            choices[d.name] = sorted(d.policy.decisions)
    done: Review | None = None
    reviewed = text(params, "reviewed", limit=64)
    if reviewed is not None:
        try:
            found = project.decisions.reviews(reviewed)
        except NotFoundError:
            found = []
        done = found[-1] if found else None
    return page(
        request,
        "reviews.html",
        section="reviews",
        items=items,
        deployment=deployment or "",
        deployments=sorted(choices),
        choices=choices,
        next_after=next_after,
        after=after,
        total=explorer.open_reviews(project, deployment),
        done=done,
    )


def _field(value: str | None, name: str, limit: int, *, required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInputError(f"{name} is required", field=name)
        return None
    if len(value) > limit:
        raise InvalidInputError(f"{name} is longer than {limit} characters", field=name)
    return value


@router.post("/reviews/{decision_id}")
def submit(
    decision_id: str,
    request: Request,
    _: CsrfChecked,
    who: CanReview,
    action: Annotated[str | None, Form()] = None,
    decision: Annotated[str | None, Form()] = None,
    reason_code: Annotated[str | None, Form()] = None,
    comment: Annotated[str | None, Form()] = None,
) -> Response:
    if action not in ("accept", "override"):
        raise InvalidInputError(
            f"action must be accept or override, not {str(action)[:40]!r}", field="action"
        )
    new = _field(decision, "decision", MAX_CODE, required=action == "override")
    code = _field(reason_code, "reason_code", MAX_CODE, required=True)
    note = _field(comment, "comment", MAX_COMMENT, required=False) or ""
    assert code is not None
    project_of(request).decisions.review(
        decision_id,
        reviewer=who.name,
        action=action,
        decision=new.strip() if new is not None else None,
        reason_code=code.strip(),
        comment=note,
    )
    return RedirectResponse(f"/ui/reviews?{urlencode({'reviewed': decision_id})}", status_code=303)
