"""Serve a registered champion over the Open Inference Protocol and call it like any OIP client.

Run: python examples/serving_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request

import lightgbm as lgb
import numpy as np
import pandas as pd

import mainspring as ms
from mainspring.serving import DataPlane
from mainspring.serving.server import ProtocolServers, ServeOptions

#: What tests/test_examples.py expects in the output.
EXPECT = "served by credit/1"

FEATURES = ["income", "age", "debt_ratio"]


def post(url: str, body: dict) -> dict:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local http
        return dict(json.loads(response.read()))


def main(directory: str) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(1000, 3)), columns=FEATURES)
    y = (x["debt_ratio"] - x["income"] > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, y)

    with ms.Project.open(directory) as project:
        registry = project.registry
        version = registry.register("credit", model, actor="alice")
        registry.request_approval("credit", version.version, actor="alice")
        registry.approve("credit", version.version, actor="bob", reason="reviewed")
        registry.set_alias("credit", ms.CHAMPION, version.version, actor="alice")

        plane = DataPlane(registry)
        plane.start()  # loads and warms every registered model
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        servers = ProtocolServers(plane, ServeOptions(port=port, grpc_port=None))
        thread = threading.Thread(target=lambda: asyncio.run(servers.serve()))
        thread.start()
        while not servers.started:
            time.sleep(0.05)
        try:
            rows = x.head(2)
            answer = post(
                f"http://127.0.0.1:{port}/v2/models/credit/versions/champion/infer",
                {
                    "id": "quickstart",
                    "inputs": [
                        {"name": n, "datatype": "FP64", "shape": [2], "data": rows[n].tolist()}
                        for n in FEATURES
                    ],
                },
            )
        finally:
            servers.stop()
            thread.join()
        output = answer["outputs"][0]
        print(f"{output['name']}: {np.round(output['data'], 3)}")
        print(f"served by {answer['model_name']}/{answer['model_version']} ({answer['id']})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mainspring-"))
