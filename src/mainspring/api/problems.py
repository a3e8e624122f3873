"""RFC 9457 problem details: the only place where domain errors become HTTP status codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mainspring import errors

log = logging.getLogger("mainspring.api")

PROBLEM_JSON = "application/problem+json"

#: Status codes by error class; the first match wins, so subclasses come first.
STATUS: tuple[tuple[type[errors.MainspringError], int], ...] = (
    (errors.InvalidInputError, 422),
    (errors.NotFoundError, 404),
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.GovernanceError, 409),
    (errors.ConflictError, 409),
    (errors.IntegrityError, 409),
    (errors.MissingDependencyError, 501),
    (errors.StorageError, 503),
    (errors.ConfigError, 500),
)


def problem(
    status: int, title: str, detail: str, *, code: str, instance: str, **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:mainspring:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(errors.MainspringError)
    async def domain_error(request: Request, exc: errors.MainspringError) -> JSONResponse:
        status = next((s for cls, s in STATUS if isinstance(exc, cls)), 400)
        return problem(
            status,
            type(exc).__name__,
            str(exc),
            code=exc.code,
            instance=request.url.path,
            field=getattr(exc, "field", None),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            field = _field(err.get("loc", ()))
            message = str(err.get("msg", "invalid"))
            if err.get("type") == "json_invalid":
                message = f"the body is not valid JSON: {err.get('ctx', {}).get('error', message)}"
                field = "body"
            problems.append({"field": field, "message": message})
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return problem(
            422,
            "InvalidInputError",
            detail,
            code="invalid-input",
            instance=request.url.path,
            field=first["field"],
            errors=problems,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            exc.status_code,
            "HTTPError",
            str(exc.detail),
            code=f"http-{exc.status_code}",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # never a traceback to the user; the server log has it
        # (the module's logger, not the app's state: a mounted app such as /ui has its own)
        log.exception("unexpected error on %s", request.url.path)
        return problem(
            500,
            "InternalError",
            "the server failed; the error is in its log",
            code="internal",
            instance=request.url.path,
        )
