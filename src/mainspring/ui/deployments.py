"""``/ui/deployments`` and ``/ui/deployments/{name}``: arms, traffic, policy and history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mainspring.serving.deployments import Deployment, DeploymentStore
from mainspring.ui import charts, explorer
from mainspring.ui.filters import Page
from mainspring.ui.overview import score_histogram
from mainspring.ui.render import page, svg
from mainspring.ui.session import CanRead, project_of

router = APIRouter()


def traffic(deployment: Deployment) -> list[tuple[str, float]]:
    """Each arm's share of the answered traffic in %: the champion takes what the canary and
    experiment arms leave; shadows see a copy of their share and answer nothing."""
    answering = [a for a in deployment.arms if a.role != "shadow"]
    others = sum(a.weight for a in answering if a.role != "champion")
    out = []
    for arm in deployment.arms:
        share = max(0.0, 100.0 - others) if arm.role == "champion" else arm.weight
        label = f"{arm.name} ({arm.role}, {arm.model}@{arm.version})"
        out.append((label + (" copy" if arm.role == "shadow" else ""), share))
    return out


@router.get("/deployments", response_class=HTMLResponse)
def deployment_list(request: Request, who: CanRead) -> HTMLResponse:
    found = DeploymentStore(project_of(request).metadata).list()
    listed = Page.of(found, dict(request.query_params))
    return page(request, "deployments.html", section="deployments", deployments=listed)


@router.get("/deployments/{name}", response_class=HTMLResponse)
def deployment_page(name: str, request: Request, who: CanRead) -> HTMLResponse:
    project = project_of(request)
    store = DeploymentStore(project.metadata)
    deployment = store.get(name)  # NotFoundError: a 404 page
    history = list(reversed(store.history.entries(subject=f"deployment/{name}")))
    weights = charts.bar_chart(
        traffic(deployment), unit="%", max_value=100.0,
        title=f"Traffic of {name} by arm (shadow arms get a copy)",
    )  # fmt: skip
    histogram = svg(score_histogram(request, deployment)) if deployment.decides else None
    return page(
        request,
        "deployment.html",
        section="deployments",
        deployment=deployment,
        weights=svg(weights),
        histogram=histogram,
        pending=explorer.open_reviews(project, name),
        history=Page.of(history, dict(request.query_params), size=20),
    )
