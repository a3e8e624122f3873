"""``/ui/login`` and ``/ui/logout``: a token in, an HttpOnly cookie out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mainspring.errors import AuthenticationError
from mainspring.ui.render import page
from mainspring.ui.session import COOKIE_PATH, TOKEN_COOKIE, CsrfChecked, project_of

router = APIRouter()


def _safe_next(target: str | None) -> str:
    """Only a path of the UI itself (no open redirect to another site)."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    enabled = project_of(request).tokens.enabled()
    return page(request, "login.html", section="login", enabled=enabled, next=_safe_next(next),
                problem=None)  # fmt: skip


@router.post("/login")
def log_in(
    request: Request,
    _: CsrfChecked,
    token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/ui",
) -> Response:
    project = project_of(request)
    if not project.tokens.enabled():
        return RedirectResponse(_safe_next(next), status_code=303)
    try:
        principal = project.tokens.authenticate(token.strip() or None)
    except AuthenticationError as exc:
        return page(request, "login.html", status=401, section="login", enabled=True,
                    next=_safe_next(next), problem=str(exc))  # fmt: skip
    request.state.principal = principal
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        TOKEN_COOKIE, token.strip(), path=COOKIE_PATH, httponly=True, samesite="strict"
    )
    return response


@router.post("/logout")
def log_out(_: CsrfChecked) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
