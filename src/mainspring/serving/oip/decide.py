"""``POST /v1/decide/{deployment}``: the decision API beside the inference protocol.

It answers with the decision (id, decision, score, confidence, top reasons, model, version, arm,
feature-view versions, ``review_required``) once the decision log holds it. Errors are RFC 9457
problem details naming the field: 422 for invalid input, 404 for an unknown deployment or
entity, 413/415 for an oversized body or a wrong content type.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
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


def problem(exc: MainspringError, instance: str) -> tuple[int, bytes]:
    """The status and RFC 9457 body for a request refused with ``exc``."""
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
    return status, orjson.dumps(body)


PREFIX = "/v1/decide/"
_INTERNAL = {
    "type": "urn:mainspring:problem:internal",
    "title": "Internal Server Error",
    "status": 500,
    "detail": "the server failed to decide; its log says why",
}


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


class DecideEndpoint:
    """``POST /v1/decide/{deployment}`` as a plain ASGI application.

    The data plane's app (``rest.DataPlaneApp``) calls it before its router, and the router
    reaches it when the app is mounted under a prefix. Through Starlette's request, response,
    middlewares and router (which tried each inference-protocol route first), a decision cost
    a serve worker 10-25 % more CPU (benchmarks/RESULTS.md, session 6). An unexpected error is
    logged and answered with a 500 problem, never a traceback.
    """

    def __init__(self, app: OIPRestApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = scope["path_params"]["deployment"]
        try:
            status, body = await self._decide(name, scope, receive)
        except Exception:
            logger.exception("deciding for deployment %s failed", name)
            status, body = 500, orjson.dumps({**_INTERNAL, "instance": scope["path"]})
        media = b"application/json" if status == 200 else PROBLEM_JSON.encode()
        headers = [(b"content-type", media), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _decide(self, name: str, scope: Any, receive: Any) -> tuple[int, bytes]:
        try:
            service = self.app.plane.decisions
            if service is None:
                raise NotFoundError(
                    "decision service", name, "this server was started without a decision log"
                )
            media, length = "", None
            for key, value in scope["headers"]:
                if key == b"content-type":
                    media = value.decode("latin-1")
                elif key == b"content-length":
                    length = value.decode("latin-1")
            self.app.check_body(media, length)
            body = await self.app.read_body(receive)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                message = f"the body is not valid JSON: {exc}"
                raise InvalidInputError(message, field="body") from None
            decision = await service.decide_async(name, DecisionRequest.from_dict(data))
        except MainspringError as exc:
            return problem(exc, scope["path"])
        return 200, orjson.dumps(answer(decision))


def routes(app: OIPRestApp) -> list[Route]:
    """The decision routes over ``app``'s plane (which must carry a decision service)."""
    return [Route(PREFIX + "{deployment:str}", DecideEndpoint(app), methods=["POST"])]
