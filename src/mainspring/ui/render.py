"""Templates: one Jinja2 environment over ``ui/templates``, autoescaping everything.

Whatever a page shows that a person or a model typed (names, reason codes, comments, entity
keys) goes through autoescape; only charts, which escape their own text
(:mod:`mainspring.ui.charts`), are marked safe.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from mainspring import __version__
from mainspring.ui.session import COOKIE_PATH, CSRF_COOKIE, TOKEN_COOKIE, csrf_token

NAV = (
    ("overview", "Overview", "/ui"),
    ("models", "Models", "/ui/models"),
    ("deployments", "Deployments", "/ui/deployments"),
    ("decisions", "Decisions", "/ui/decisions"),
    ("reviews", "Review queue", "/ui/reviews"),
    ("charts", "Charts", "/ui/charts"),
)


def when(value: datetime | str | None) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S} UTC"


def shown(value: Any) -> str:
    """A value as text: JSON for structures, ``repr``-exact for floats."""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    if value is None:
        return "—"
    return str(value)


def pretty(value: Any) -> str:
    """JSON, indented, for ``<pre>`` blocks."""
    return json.dumps(value, default=str, ensure_ascii=False, indent=2)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mainspring.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["shown"] = shown
    env.filters["pretty"] = pretty
    env.globals["nav"] = NAV
    env.globals["version"] = __version__
    return env


def svg(markup: str) -> Markup:
    """A chart from :mod:`mainspring.ui.charts` (which escapes its own text) as safe markup."""
    return Markup(markup)  # noqa: S704 (charts escape every text they draw)


def page(
    request: Request, template: str, *, status: int = 200, section: str = "", **context: Any
) -> HTMLResponse:
    """Render ``template`` with the page's CSRF token, the viewer and the nav bar."""
    token = csrf_token(request)
    principal = getattr(request.state, "principal", None)
    html = (
        environment()
        .get_template(template)
        .render(
            csrf=token,
            who=principal.name if principal is not None else None,
            cookie=TOKEN_COOKIE in request.cookies,
            section=section,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status)
    if getattr(request.state, "new_csrf", None) == token:
        response.set_cookie(CSRF_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    return response
