"""``/ui/decisions``: the decision explorer, one decision's account, and replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mainspring.audit import LoggedDecision
from mainspring.cli.deciding import account
from mainspring.errors import MainspringError, NotFoundError
from mainspring.records import Decision
from mainspring.serving.deployments import DeploymentStore
from mainspring.ui import charts, explorer
from mainspring.ui.filters import DecisionFilter
from mainspring.ui.render import page, svg
from mainspring.ui.session import CanRead, CsrfChecked, project_of

router = APIRouter()
#: Features shown in a decision's attribution chart (the largest by magnitude).
CHART_FEATURES = 12


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What the Replay button found: the same decision, a different one, or why it cannot."""

    same: bool | None
    logged_score: str = ""
    score: str = ""
    logged_decision: str = ""
    decision: str = ""
    note: str = ""
    problem: str = ""


@router.get("/decisions", response_class=HTMLResponse)
def decision_list(request: Request, who: CanRead) -> HTMLResponse:
    project = project_of(request)
    f = DecisionFilter.parse(dict(request.query_params))
    found = explorer.find(project, f)
    return page(
        request,
        "decisions.html",
        section="decisions",
        filter=f,
        found=found,
        deployments=[d.name for d in DeploymentStore(project.metadata).list()],
        next_query=f.query(before=found.next_before) if found.next_before else None,
        first_query=f.query(before=None) if f.before is not None else None,
    )


def attribution_items(decision: Decision) -> list[tuple[str, float]]:
    """(label, contribution) of the features that moved the score most."""
    values = {f.name: f.value for f in decision.features}
    pairs = list(decision.attributions.items()) or [
        (r.feature, r.contribution) for r in decision.reasons
    ]
    pairs.sort(key=lambda kv: abs(kv[1]), reverse=True)
    out = []
    for name, contribution in pairs[:CHART_FEATURES]:
        value = values.get(name)
        label = name if value is None else f"{name} = {_short(value)}"
        out.append((label, float(contribution)))
    return out


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def choices(request: Request, decision: Decision) -> list[str]:
    """The decisions a reviewer may pick: those the deployment's current policy can reach."""
    try:
        deployment = DeploymentStore(project_of(request).metadata).get(decision.deployment)
    except NotFoundError:
        return []
    return sorted(deployment.policy.decisions) if deployment.policy is not None else []


def _render(
    request: Request, logged: LoggedDecision, replay: ReplayResult | None = None
) -> HTMLResponse:
    log = project_of(request).decisions
    decision = logged.decision
    reviews, outcomes = log.reviews(decision.id), log.outcomes(decision.id)
    chart = charts.attribution_chart(
        attribution_items(decision),
        title=f"How each feature moved the score of decision {decision.id}",
    )
    return page(
        request,
        "decision.html",
        section="decisions",
        logged=logged,
        d=decision,
        reviews=reviews,
        outcomes=outcomes,
        final=reviews[-1].decision if reviews else decision.decision,
        chart=svg(chart),
        why="\n".join(account(logged, reviews, outcomes)),
        replay=replay,
        choices=choices(request, decision),
        margin=(
            decision.base_value + sum(decision.attributions.values())
            if decision.base_value is not None
            else None
        ),
    )


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
def decision_page(decision_id: str, request: Request, who: CanRead) -> HTMLResponse:
    return _render(request, project_of(request).decisions.get(decision_id))


@router.post("/decisions/{decision_id}/replay", response_class=HTMLResponse)
def replay(decision_id: str, request: Request, _: CsrfChecked, who: CanRead) -> HTMLResponse:
    from mainspring.serving.replay import Replayer

    project = project_of(request)
    logged = project.decisions.get(decision_id)
    replayer = Replayer(project.registry, DeploymentStore(project.metadata))
    try:
        done = replayer.replay(logged.decision)
    except MainspringError as exc:
        result = ReplayResult(same=None, problem=str(exc))
    else:
        result = ReplayResult(
            same=done.same,
            logged_score=repr(done.logged.score),
            score=repr(done.score),
            logged_decision=done.logged.decision,
            decision=done.decision,
            note=done.note,
        )
    return _render(request, logged, result)
