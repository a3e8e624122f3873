"""``POST /v1/decide/{deployment}``: the decision API beside the inference protocol.

It answers with the decision (id, decision, score, confidence, top reasons, model, version, arm,
feature-view versions, ``review_required``) once the decision log holds it. Errors are RFC 9457
problem details naming the field: 422 for invalid input, 404 for an unknown deployment or
entity, 413/415 for an oversized body or a wrong content type.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mainspring.errors import ConflictError, InvalidInputError, MainspringError, NotFoundError
from mainspring.records import Decision
from mainspring.serving.request import DecisionRequest

if TYPE_CHECKING:
    from mainspring.serving.oip.rest import OIPRestApp

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("mainspring.serving")
_STATUS: tuple[tuple[type[MainspringError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 422),
)


def answer(decision: Decision) -> dict[str, Any]:
    """The response body for a decision."""
    return {
        "decision_id": decision.id,
        "decision": decision.decision,
        "score": decision.score,
        "confidence": decision.confidence,
        "review_required": decision.review_required,
        "reasons": [r.to_dict() for r in decision.reasons],
        "model": decision.model,
        "version": decision.version,
        "arm": decision.arm,
        "feature_views": dict(decision.feature_views),
        "rule": decision.rule,
        "policy": decision.policy,
        "request_id": decision.request_id,
        "latency_ms": decision.latency_ms,
    }


def problem(exc: MainspringError, instance: str) -> Response:
    from mainspring.serving.oip.rest import BodyTooLarge, WrongContentType

    if isinstance(exc, BodyTooLarge):
        status = 413
    elif isinstance(exc, WrongContentType):
        status = 415
    else:
        status = next((s for kind, s in _STATUS if isinstance(exc, kind)), 400)
    body = {
        "type": f"urn:mainspring:problem:{exc.code}",
        "title": type(exc).__name__,
        "status": status,
        "detail": exc.message,
        "instance": instance,
    }
    field = getattr(exc, "field", None)
    if field:
        body["field"] = field
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON)


PREFIX = "/v1/decide/"


def internal_error(instance: str) -> Response:
    """The answer to a request that failed for a reason of the server's (logged), not its own."""
    body = {
        "type": "urn:mainspring:problem:internal",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "the server failed to decide; its log says why",
        "instance": instance,
    }
    return Response(orjson.dumps(body), status_code=500, media_type=PROBLEM_JSON)


def deployment_of(scope: Any) -> str | None:
    """The deployment a request asks to decide (``POST /v1/decide/{deployment}``), else None."""
    path: str = scope.get("path", "")
    if (
        scope["type"] != "http"
        or scope["method"] != "POST"
        or not path.startswith(PREFIX)
        or scope.get("root_path")
    ):
        return None
    name = path[len(PREFIX) :]
    return name if name and "/" not in name else None


async def serve_directly(
    handler: Callable[[Request], Awaitable[Response]],
    deployment: str,
    scope: Any,
    receive: Any,
    send: Any,
) -> None:
    """Answer a decision request with ``handler`` without Starlette's routing and middlewares.

    Through them, a decision went through two error-handling middlewares, a router that tried
    every route of the inference protocol before this one, and three wrappers of ``send``: about
    14 % of a serve worker's event-loop time at 2,500 decisions/s. The answers are the same; an
    unexpected error is logged and answered with a 500 problem, never a traceback.
    """
    scope["path_params"] = {"deployment": deployment}
    try:
        response = await handler(Request(scope, receive))
    except Exception:
        logger.exception("deciding for deployment %s failed", deployment)
        response = internal_error(scope["path"])
    await response(scope, receive, send)


def handler(app: OIPRestApp) -> Callable[[Request], Awaitable[Response]]:
    """The decision endpoint over ``app``'s plane (which must carry a decision service)."""

    async def decide(request: Request) -> Response:
        name = request.path_params["deployment"]
        try:
            service = app.plane.decisions
            if service is None:
                raise NotFoundError(
                    "decision service", name, "this server was started without a decision log"
                )
            body = await app.body(request)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                message = f"the body is not valid JSON: {exc}"
                raise InvalidInputError(message, field="body") from None
            decision = await service.decide_async(name, DecisionRequest.from_dict(data))
        except MainspringError as exc:
            return problem(exc, request.url.path)
        return Response(orjson.dumps(answer(decision)), media_type="application/json")

    return decide


def routes(app: OIPRestApp) -> list[Route]:
    """The decision routes over ``app``'s plane (``POST`` is answered by :func:`serve_directly`
    before routing; other methods get the router's 405)."""
    return [Route(PREFIX + "{deployment:str}", handler(app), methods=["POST"])]
