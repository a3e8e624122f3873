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


def shares(deployment: Deployment) -> dict[str, float]:
    """Each arm's share of the traffic in %: the champion takes what the canary and experiment
    arms leave; a shadow sees a copy of its share and answers nothing."""
    others = sum(a.weight for a in deployment.arms if a.role not in ("champion", "shadow"))
    return {
        a.name: max(0.0, 100.0 - others) if a.role == "champion" else a.weight
        for a in deployment.arms
    }


def traffic(deployment: Deployment) -> list[tuple[str, float]]:
    """The traffic chart's bars: (arm, share in %)."""
    share = shares(deployment)
    return [
        (f"{a.name} ({a.role}, {a.model}@{a.version})" + (" copy" if a.role == "shadow" else ""),
         share[a.name])
        for a in deployment.arms
    ]  # fmt: skip


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
        shares=shares(deployment),
        histogram=histogram,
        pending=explorer.open_reviews(project, name),
        history=Page.of(history, dict(request.query_params), size=20),
    )
