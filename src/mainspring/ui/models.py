"""``/ui/models`` and ``/ui/models/{name}``: the registry's models, versions and history."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mainspring.records import ChainEntry
from mainspring.ui.filters import Page
from mainspring.ui.render import page
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
        approvals=approvals(history),
        history=Page.of(list(reversed(history)), params, size=25, param="history_page"),
    )
