"""Who is looking, and whether a form really came from our page.

The rules are the REST API's (``mainspring.api.auth``): while no token exists the UI acts as the
local user (the ``X-Mainspring-User`` header, else ``anonymous``) with every role; once tokens
exist every page needs one. A browser gives it once on ``/ui/login``; it is kept in an HttpOnly,
SameSite=Strict cookie scoped to ``/ui`` (a bearer header works too, for scripts).

Forms are protected by a double-submit token: a random value in a SameSite=Strict cookie that
every form repeats in a hidden field. A POST whose field is missing or differs is refused (403)
before anything else happens: another site can make a browser send the cookie, but cannot read
it to fill in the field.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Cookie, Depends, Form, Request

from mainspring.access import require
from mainspring.errors import PermissionDeniedError
from mainspring.project import Project
from mainspring.records import Principal, Role

ANONYMOUS = "anonymous"
TOKEN_COOKIE = "mainspring_token"  # noqa: S105 (a cookie name, not a secret)
CSRF_COOKIE = "mainspring_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/ui"


def project_of(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def identify(request: Request) -> Principal:
    """The principal behind ``request`` (``AuthenticationError`` when a token is needed)."""
    project = project_of(request)
    if project.tokens.enabled():
        token = request.cookies.get(TOKEN_COOKIE)
        header = request.headers.get("authorization", "")
        if not token and header.lower().startswith("bearer "):
            token = header[7:].strip()
        return project.tokens.authenticate(token)
    return Principal(request.headers.get("x-mainspring-user") or ANONYMOUS, frozenset(Role))


def acting(operation: str) -> Callable[[Request], Principal]:
    """A dependency: the caller, who must be allowed ``operation`` (403 page otherwise)."""

    def dependency(request: Request) -> Principal:
        principal = identify(request)
        require(principal, operation)
        request.state.principal = principal
        return principal

    return dependency


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser: its cookie's, or a new one the response will set."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 128:
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


def checked_csrf(
    csrf: Annotated[str | None, Form()] = None,
    mainspring_csrf: Annotated[str | None, Cookie()] = None,
) -> None:
    """A dependency of every POST: the form's token must equal the cookie's."""
    if not csrf or not mainspring_csrf or not hmac.compare_digest(csrf, mainspring_csrf):
        raise PermissionDeniedError(
            "the form's CSRF token is missing or does not match this browser's: reload the "
            "page and submit the form again"
        )


CanRead = Annotated[Principal, Depends(acting("read"))]
CanReview = Annotated[Principal, Depends(acting("review"))]
CsrfChecked = Annotated[None, Depends(checked_csrf)]
