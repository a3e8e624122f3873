"""``/ui/models`` and ``/ui/models/{name}``: the registry's models, versions and history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from mainspring.records import ChainEntry, ModelVersion
from mainspring.ui import charts
from mainspring.ui.filters import Page
from mainspring.ui.render import page, svg
from mainspring.ui.session import CanRead, project_of

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
def model_list(request: Request, who: CanRead) -> HTMLResponse:
    found = project_of(request).registry.list_models()
    listed = Page.of(found, dict(request.query_params))
    return page(request, "models.html", section="models", models=listed)


def approvals(history: list[ChainEntry]) -> dict[str, list[ChainEntry]]:
    """The approval steps (request, approve, reject) of each version, by ``name/version``."""
    out: dict[str, list[ChainEntry]] = {}
    for entry in history:
        if entry.action.startswith("approval."):
            out.setdefault(entry.subject, []).append(entry)
    return out


#: features shown in a version's importance chart
TOP_FEATURES = 10


def importance_chart(version: ModelVersion) -> Markup | None:
    """A bar chart of the version's stored global importance (its top features), if any."""
    stored = version.importance
    if stored is None:
        return None
    top = sorted(stored.values.items(), key=lambda item: -item[1])[:TOP_FEATURES]
    return svg(
        charts.bar_chart(
            top,
            title=f"{version.name}/{version.version}: mean |SHAP| per feature ({stored.method}, "
            f"{stored.rows} rows), top {len(top)}",
        )
    )


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(name: str, request: Request, who: CanRead) -> HTMLResponse:
    registry = project_of(request).registry
    history = registry.history(name)  # NotFoundError (404 page) for an unknown model
    versions = sorted(registry.list_versions(name), key=lambda v: v.version, reverse=True)
    params = dict(request.query_params)
    return page(
        request,
        "model.html",
        section="models",
        name=name,
        versions=Page.of(versions, params, size=10),
        importance={v.version: importance_chart(v) for v in versions},
        approvals=approvals(history),
        history=Page.of(list(reversed(history)), params, size=25, param="history_page"),
    )
