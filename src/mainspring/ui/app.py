"""``create_ui(project)``: the web UI as an ASGI app that ``api.app.create_app`` mounts at ``/ui``.

Every error becomes an HTML page with the status the REST API would give (the same table,
``mainspring.api.problems.STATUS``) naming the field and the problem; never a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mainspring import errors
from mainspring.api.problems import STATUS
from mainspring.project import Project
from mainspring.ui import decisions, deployments, login, models, overview, reviews
from mainspring.ui.render import page

logger = logging.getLogger("mainspring.ui")


def error_page(
    request: Request, status: int, title: str, message: str, field: str | None = None
) -> HTMLResponse:
    response = page(request, "error.html", status=status, title=title, message=message, field=field)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="mainspring"'
    return response


def create_ui(project: Project) -> FastAPI:
    """The web UI of ``project``: pages for models, deployments, decisions and reviews."""
    ui = FastAPI(title="Mainspring UI", openapi_url=None, docs_url=None, redoc_url=None)
    ui.state.project = project
    for module in (overview, models, deployments, decisions, reviews, login):
        ui.include_router(module.router)

    @ui.exception_handler(errors.MainspringError)
    async def domain_error(request: Request, exc: errors.MainspringError) -> HTMLResponse:
        status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
        titles = {401: "Please log in", 403: "Not allowed", 404: "Not found"}
        title = titles.get(status, "Cannot do that" if status < 500 else "Server problem")
        return error_page(request, status, title, str(exc), getattr(exc, "field", None))

    @ui.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        problems = [
            (".".join(str(p) for p in e.get("loc", ())[1:]) or "request", str(e.get("msg", "")))
            for e in exc.errors()
        ]
        message = "; ".join(f"{f}: {m}" for f, m in problems) or "the request is not valid"
        return error_page(
            request, 422, "Cannot do that", message, problems[0][0] if problems else None
        )

    @ui.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return error_page(request, 404, "Not found", "there is no such page")
        return error_page(request, exc.status_code, "Cannot do that", str(exc.detail))

    @ui.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTMLResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return error_page(
            request, 500, "Server problem", "the server failed; the error is in its log"
        )

    return ui
