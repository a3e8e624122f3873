"""``/ui`` (the overview) and ``/ui/charts`` (decisions over time, override rates, scores)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mainspring.errors import InvalidInputError
from mainspring.records import utcnow
from mainspring.serving.deployments import Deployment, DeploymentStore
from mainspring.ui import charts, explorer
from mainspring.ui.filters import integer, text
from mainspring.ui.render import page, svg
from mainspring.ui.session import CanRead, project_of

router = APIRouter()


def decision_columns(
    buckets: list[tuple[datetime, Counter[str]]], fmt: str
) -> tuple[list[tuple[str, dict[str, float]]], list[str]]:
    """Buckets as chart columns, and the decision values seen (most frequent first)."""
    total: Counter[str] = Counter()
    for _, counts in buckets:
        total.update(counts)
    series = [name for name, _ in total.most_common()]
    columns = [(f"{at:{fmt}}", {k: float(v) for k, v in c.items()}) for at, c in buckets]
    return columns, series


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: CanRead) -> HTMLResponse:
    project = project_of(request)
    now = utcnow()
    buckets = explorer.per_period(project, now, periods=24, step=timedelta(hours=1))
    columns, series = decision_columns(buckets, "%H:00")
    counts = {
        "models": len(project.registry.list_models()),
        "deployments": len(DeploymentStore(project.metadata).list()),
        "decisions (last 24 h)": sum(sum(c.values()) for _, c in buckets),
        "open reviews": explorer.open_reviews(project),
    }
    chart = charts.stacked_bars(
        columns, series=series, title="Decisions per hour over the last 24 hours, by decision"
    )
    return page(request, "overview.html", section="overview", counts=counts, chart=svg(chart),
                now=now)  # fmt: skip


def thresholds(deployment: Deployment) -> list[tuple[str, float]]:
    """The lines a score histogram draws: each band's upper bound and the review band."""
    policy = deployment.policy
    if policy is None:
        return []
    lines = [(f"{b.decision} below", b.below) for b in policy.thresholds if b.below is not None]
    if policy.review_low is not None and policy.review_high is not None:
        lines += [("review from", policy.review_low), ("review to", policy.review_high)]
    return [(label, float(x)) for label, x in lines]


def score_histogram(request: Request, deployment: Deployment, bins: int = 20) -> str:
    values = explorer.scores(project_of(request), deployment.name)
    lines = thresholds(deployment)
    lo, hi = 0.0, 1.0
    if values and (min(values) < 0 or max(values) > 1):  # not a probability: its own range
        lo, hi = min(values + [x for _, x in lines]), max(values + [x for _, x in lines])
    return charts.histogram(
        values,
        bins=bins,
        lo=lo,
        hi=hi,
        lines=lines,
        title=f"Scores of {deployment.name}'s latest {len(values)} decisions, with the policy's "
        "thresholds",
    )


@router.get("/charts", response_class=HTMLResponse)
def chart_page(request: Request, who: CanRead) -> HTMLResponse:
    project = project_of(request)
    params = dict(request.query_params)
    days = integer(params, "days", default=14, high=366) or 14
    only = text(params, "deployment")
    store = DeploymentStore(project.metadata)
    known = store.list()
    if only is not None and only not in {d.name for d in known}:
        raise InvalidInputError(f"there is no deployment {only!r}", field="deployment")
    now = utcnow()
    buckets = explorer.per_period(
        project, now, periods=days, step=timedelta(days=1), deployment=only
    )
    columns, series = decision_columns(buckets, "%m-%d")
    over_time = charts.stacked_bars(
        columns, series=series, title=f"Decisions per day over the last {days} days, by decision"
    )
    rates = [("model version", "model")] + [
        (f"segment {s}", s) for s in project.settings.audit.segments
    ]
    override_charts = []
    for label, by in rates:
        found = project.decisions.override_rate(by, deployment=only)
        bars = [(f"{r.group} ({r.overrides}/{r.reviews})", r.rate * 100) for r in found]
        title = f"Override rate of reviews per {label}"
        override_charts.append(svg(charts.bar_chart(bars, unit="%", max_value=100.0, title=title)))
    histograms = [
        (d.name, svg(score_histogram(request, d)))
        for d in known
        if d.decides and (only is None or d.name == only)
    ]
    return page(request, "charts.html", section="charts", over_time=svg(over_time),
                override_charts=override_charts, histograms=histograms, days=days,
                deployment=only or "", deployments=[d.name for d in known])  # fmt: skip
