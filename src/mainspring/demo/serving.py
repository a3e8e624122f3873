"""The serving step of the demo: serve ``credit-risk@champion`` on a local port and ask it over
the Open Inference Protocol (REST), the way any OIP client (Triton's, KServe's) would."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from typing import Any

from rich.console import Console

from mainspring.demo.data import FEATURES, credit_data
from mainspring.project import Project
from mainspring.serving import DataPlane
from mainspring.serving.deployments import DeploymentStore
from mainspring.serving.server import ProtocolServers, ServeOptions

console = Console(highlight=False)
MODEL = "credit-risk"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http://127.0.0.1
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our local server
        return json.loads(response.read())


def serve_champion(project: Project, *, rows: int = 3) -> list[float]:
    """Serve the project's models on a free port of 127.0.0.1, score ``rows`` applicants with
    ``credit-risk@champion`` over OIP REST, print the exchange and stop; returns the scores."""
    plane = DataPlane(project.registry, deployments=DeploymentStore(project.metadata))
    plane.start()  # load and warm every model: readiness is true only after this
    options = ServeOptions(port=_free_port(), grpc_port=None, sync_seconds=0)
    servers = ProtocolServers(plane, options)
    thread = threading.Thread(target=lambda: asyncio.run(servers.serve()), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{options.port}"
    try:
        deadline = time.monotonic() + 30
        while not servers.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the demo server did not start")
            time.sleep(0.05)
        console.print(f"   serving on {base}: ready={_call(base + '/v2/health/ready')['ready']}")
        meta = _call(f"{base}/v2/models/{MODEL}/versions/champion")
        inputs = ", ".join(t["name"] for t in meta["inputs"])
        console.print(f"   GET /v2/models/{MODEL}/versions/champion → inputs {inputs}")
        x, _ = credit_data(rows, seed=11)
        body = {
            "id": "demo-1",
            "inputs": [
                {"name": n, "datatype": "FP64", "shape": [rows], "data": x[:, i].tolist()}
                for i, n in enumerate(FEATURES)
            ],
        }
        answer = _call(f"{base}/v2/models/{MODEL}@champion/infer", body)
        scores = [float(v) for v in answer["outputs"][0]["data"]]
        console.print(
            f"   POST /v2/models/{MODEL}@champion/infer (id {answer['id']}) → version "
            f"{answer['model_version']}: P(default) {', '.join(f'{s:.3f}' for s in scores)}"
        )
        return scores
    finally:
        servers.stop()
        thread.join(timeout=30)
