"""``create_app(project)``: the control-plane ASGI application."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from mainspring import __version__
from mainspring.api import decisions, deployments, features, models, problems, tokens
from mainspring.project import Project
from mainspring.ui.app import create_ui


class BodyLimit(BaseHTTPMiddleware):
    """Refuse bodies over the configured size before reading them (413, problem details)."""

    def __init__(self, app: object, max_bytes: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.max_bytes = max_bytes

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return problems.problem(
                413,
                "PayloadTooLarge",
                f"the body ({length} bytes) is over the limit of {self.max_bytes} bytes "
                "(setting api.max_upload_mb)",
                code="too-large",
                instance=request.url.path,
            )
        return await call_next(request)


def create_app(project: Project) -> FastAPI:
    """The control plane of ``project``: registry and access over REST, the web UI at ``/ui``."""
    app = FastAPI(
        title="Mainspring control plane",
        version=__version__,
        description="Registry, deployments, features, monitoring, decisions and reviews. "
        "Errors are RFC 9457 problem details.",
    )
    app.state.project = project
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=project.settings.api.max_upload_mb * 1024 * 1024)
    app.include_router(models.router)
    app.include_router(tokens.router)
    app.include_router(features.router)
    app.include_router(deployments.router)
    app.include_router(decisions.router)
    app.mount("/ui", create_ui(project), name="ui")

    @app.get("/healthz", tags=["health"], summary="Liveness of the control plane")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
