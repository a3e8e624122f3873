"""The floor: a bare Starlette app that decodes the same JSON and calls the same predict.

Run: MODEL_FILE=model.txt python benchmarks/serving/floor.py PORT WORKERS
"""

from __future__ import annotations

import os
import socket

import lightgbm as lgb
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def app() -> Starlette:
    booster = lgb.Booster(model_file=os.environ["MODEL_FILE"])

    async def infer(request: Request) -> Response:
        body = orjson.loads(await request.body())
        tensor = body["inputs"][0]
        matrix = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        scores = booster.predict(matrix)
        out = {
            "model_name": "bench",
            "outputs": [{"name": "probability", "datatype": "FP64", "shape": [len(scores)],
                         "data": scores}],
        }  # fmt: skip
        return Response(orjson.dumps(out, option=orjson.OPT_SERIALIZE_NUMPY))

    return Starlette(routes=[Route("/v2/models/bench/infer", infer, methods=["POST"])])


def _serve(sock: socket.socket) -> None:
    import asyncio

    import uvicorn

    config = uvicorn.Config(app(), log_level="warning", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))


def main() -> None:
    """``floor.py PORT WORKERS``: forked workers on one listening socket, TCP_NODELAY as in
    Mainspring (uvicorn's own multi-worker socket lacks IPPROTO_TCP, so asyncio would leave
    Nagle on and every response would wait for a delayed ACK)."""
    import multiprocessing
    import signal
    import sys

    port, workers = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_serve, args=(sock,)) for _ in range(workers)]
    for proc in procs:
        proc.start()

    def stop(signum: int, frame: object) -> None:
        for proc in procs:
            proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    for proc in procs:
        proc.join()


if __name__ == "__main__":
    main()
