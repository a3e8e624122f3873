"""The Open Inference Protocol over REST: a thin Starlette adapter over the data plane.

Errors follow the specification: a 4xx status with ``{"error": "..."}`` naming the tensor and
the problem (400 bad input, 404 unknown model or version, 413 body over the limit, 415 wrong
content type). Only this module maps domain errors to HTTP status codes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mainspring.errors import ConflictError, InvalidInputError, MainspringError, NotFoundError
from mainspring.serving.batching import MicroBatcher
from mainspring.serving.dataplane import DataPlane
from mainspring.serving.metrics import CONTENT_TYPE
from mainspring.serving.oip import decide
from mainspring.serving.oip.codec import HEADER_LENGTH, decode_request, dumps, encode_response

#: Default limit of a request body (64 MiB).
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: Requests with more input elements than this predict on a worker thread, not the event loop.
THREAD_THRESHOLD = 50_000
JSON = "application/json"
_ACCEPTED_TYPES = frozenset({"application/json", "application/octet-stream", ""})
_STATUS: tuple[tuple[type[MainspringError], int], ...] = (
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 400),
)
logger = logging.getLogger("mainspring.serving")

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class BodyTooLarge(InvalidInputError):
    """The request body is over the configured limit."""

    code = "too-large"


class WrongContentType(InvalidInputError):
    code = "content-type"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type=JSON)


def error_response(exc: MainspringError) -> Response:
    if isinstance(exc, BodyTooLarge):
        status = 413
    elif isinstance(exc, WrongContentType):
        status = 415
    else:
        status = next((s for kind, s in _STATUS if isinstance(exc, kind)), 400)
    return json_response({"error": exc.message}, status)


def handled(endpoint: Endpoint) -> Endpoint:
    """Turn domain errors raised by ``endpoint`` into ``{"error": ...}`` responses."""

    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except MainspringError as exc:
            return error_response(exc)

    wrapper.__name__ = endpoint.__name__
    return wrapper


class OIPRestApp:
    """The routes of the protocol over one :class:`DataPlane`."""

    def __init__(
        self,
        plane: DataPlane,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        batcher: MicroBatcher | None = None,
    ) -> None:
        self.plane = plane
        self.max_body_bytes = max_body_bytes
        self.batcher = batcher

    def routes(self) -> list[Route]:
        model = "/v2/models/{name:str}"
        version = model + "/versions/{version:str}"
        h = handled
        return [
            Route("/v2/health/live", h(self.live), methods=["GET"]),
            Route("/v2/health/ready", h(self.ready), methods=["GET"]),
            Route("/v2", h(self.server_metadata), methods=["GET"]),
            Route(model, h(self.model_metadata), methods=["GET"]),
            Route(version, h(self.model_metadata), methods=["GET"]),
            Route(model + "/ready", h(self.model_ready), methods=["GET"]),
            Route(version + "/ready", h(self.model_ready), methods=["GET"]),
            Route(model + "/infer", h(self.infer), methods=["POST"]),
            Route(version + "/infer", h(self.infer), methods=["POST"]),
            Route("/v2/repository/index", h(self.repository_index), methods=["POST"]),
            Route("/v2/repository/models/{name:str}/load", h(self.load), methods=["POST"]),
            Route("/v2/repository/models/{name:str}/unload", h(self.unload), methods=["POST"]),
            Route("/metrics", h(self.metrics), methods=["GET"]),
            *decide.routes(self),
        ]

    async def live(self, request: Request) -> Response:
        return json_response({"live": self.plane.live()})

    async def ready(self, request: Request) -> Response:
        ready = self.plane.ready()
        return json_response({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return json_response(self.plane.metadata().to_dict())

    async def model_metadata(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")
        return json_response(self.plane.model_metadata(name, version).to_dict())

    async def model_ready(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")
        ready = self.plane.model_ready(name, version)
        return json_response({"name": name, "ready": ready}, 200 if ready else 503)

    async def body(self, request: Request) -> bytes:
        self.check_body(
            request.headers.get("content-type", ""), request.headers.get("content-length")
        )
        return await self.read_body(request.receive)

    async def read_body(self, receive: Any) -> bytes:
        """The request body from ASGI ``receive``, refused once it grows over the limit."""
        limit, chunks, size = self.max_body_bytes, [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                raise InvalidInputError("the client disconnected", field="body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the body is over the limit of {limit} bytes", field="body")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def check_body(self, content_type: str, length: str | None) -> None:
        """Refuse a body of another media type, or one whose declared length is over the limit."""
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in _ACCEPTED_TYPES:
            raise WrongContentType(
                f"content type {media!r} is not accepted; send application/json (or "
                "application/octet-stream with binary tensor data)",
                field="content-type",
            )
        limit = self.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise BodyTooLarge(
                f"the body ({length} bytes) is over the limit of {limit} bytes "
                "(setting serving.max_body_bytes)",
                field="body",
            )

    async def infer(self, request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")
        body = await self.body(request)
        header = request.headers.get(HEADER_LENGTH)
        if header is not None and not header.isdigit():
            raise InvalidInputError(
                f"Inference-Header-Content-Length {header!r} is not a number",
                field="Inference-Header-Content-Length",
            )
        decoded = decode_request(body, int(header) if header is not None else None)
        answer = await self.plane.infer_async(
            name, version, decoded, protocol="rest", batcher=self.batcher,
            thread_rows=THREAD_THRESHOLD,
        )  # fmt: skip
        binary = decoded.parameters.get("binary_data_output") is True
        payload, json_length = encode_response(answer, binary)
        if json_length is None:
            return Response(payload, media_type=JSON)
        return Response(
            payload,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(json_length)},
        )

    async def repository_index(self, request: Request) -> Response:
        return json_response([e.to_dict() for e in self.plane.repository_index()])

    async def load(self, request: Request) -> Response:
        await run_in_threadpool(self.plane.load, request.path_params["name"])
        return Response(status_code=200)

    async def unload(self, request: Request) -> Response:
        self.plane.unload(request.path_params["name"])
        return Response(status_code=200)

    async def metrics(self, request: Request) -> Response:
        return Response(self.plane.metrics.exposition(), media_type=CONTENT_TYPE)


def create_app(
    plane: DataPlane,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    start: bool = True,
    batching: bool = True,
    max_batch_rows: int = 64,
    on_shutdown: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> DataPlaneApp:
    """The OIP REST application over ``plane``. With ``start``, the models are loaded and warmed
    at start-up (readiness stays false until then); with ``batching``, concurrent small requests
    to one model are merged into one predict call (:mod:`mainspring.serving.batching`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if start and not plane.ready():
            await run_in_threadpool(plane.start)
        yield
        if on_shutdown is not None:
            await on_shutdown()

    batcher = plane.batcher(max_batch_rows=max_batch_rows) if batching else None
    oip = OIPRestApp(plane, max_body_bytes=max_body_bytes, batcher=batcher)
    app = DataPlaneApp(decide.DecideEndpoint(oip), routes=oip.routes(), lifespan=lifespan)
    app.state.plane = plane
    return app


class DataPlaneApp(Starlette):
    """Starlette, but decisions go to their endpoint before the router (``POST /v1/decide/...``:
    see :class:`decide.DecideEndpoint`), and a worker holding more than its share of the
    connections closes this one after its answer, when :attr:`over_share` says so (see
    :class:`mainspring.serving.server.ConnectionShare`)."""

    def __init__(self, decide_endpoint: decide.DecideEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._decide = decide_endpoint
        #: set by the server: whether this worker should let go of the connection at hand
        self.over_share: Callable[[], bool] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.over_share is not None and self.over_share():
            send = _closing(send)
        deployment = decide.deployment_of(scope)
        if deployment is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope["path_params"] = {"deployment": deployment}
        await self._decide(scope, receive, send)


def _closing(send: Any) -> Any:
    """``send``, with ``Connection: close`` added to the response: the client reconnects, and
    the kernel places the new connection on a worker by its hash."""

    async def closing(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return closing
