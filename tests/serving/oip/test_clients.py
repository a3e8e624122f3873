"""``mainspring serve`` in worker processes, spoken to by unmodified ``tritonclient`` clients.

The server runs as a real subprocess (two workers sharing the ports) on free ports of 127.0.0.1.
The gRPC client runs in a subprocess of its own: tritonclient ships protobuf messages of the same
``inference`` package as ours, and one process cannot register both descriptor sets.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from tests.servers import free_port, mainspring_serve

from mainspring.project import Project

httpclient = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException
pytest.importorskip("grpc")

FEATURES = ["income", "age", "debt_ratio"]
ROWS = np.array([[0.5, -1.0, 0.2], [-1.5, 0.3, 1.1]])


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[object, object]
) -> Iterator[dict]:
    directory = tmp_path_factory.mktemp("served")
    with Project.open(directory) as project:
        registry = project.registry
        for model in models:
            registry.register("credit", model, actor="alice")
        registry.request_approval("credit", 1, actor="alice")
        registry.approve("credit", 1, actor="bob", reason="ok")
        registry.set_alias("credit", "champion", 1, actor="alice")
        registry.set_alias("credit", "challenger", 2, actor="alice")
        expected = {v: registry.load(f"credit/{v}").predict(ROWS).tolist() for v in (1, 2)}
    grpc_port = free_port()
    with mainspring_serve(
        directory, "--grpc-port", str(grpc_port), "--workers", "2",
        ready=lambda port: ready(f"http://127.0.0.1:{port}"),
    ) as (proc, port, log):  # fmt: skip
        yield {
            "http": f"127.0.0.1:{port}",
            "grpc": f"127.0.0.1:{grpc_port}",
            "expected": expected,
            "directory": directory,
        }
        proc.send_signal(signal.SIGTERM)  # graceful: drain, then exit 0
        assert proc.wait(timeout=60) == 0, log.read_text()


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclient_http(server: dict, binary: bool) -> None:
    client = httpclient.InferenceServerClient(server["http"])
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("credit") and client.is_model_ready("credit", "2")
        assert client.get_server_metadata()["name"] == "mainspring"
        assert [t["name"] for t in client.get_model_metadata("credit")["inputs"]] == FEATURES
        tensors = []
        for i, name in enumerate(FEATURES):
            tensor = httpclient.InferInput(name, [len(ROWS)], "FP64")
            tensor.set_data_from_numpy(ROWS[:, i], binary_data=binary)
            tensors.append(tensor)
        wanted = [httpclient.InferRequestedOutput("probability", binary_data=binary)]
        result = client.infer("credit", tensors, model_version="2", outputs=wanted, request_id="r1")
        np.testing.assert_allclose(result.as_numpy("probability"), server["expected"][2])
        assert result.get_response()["id"] == "r1"
        assert result.get_response()["model_version"] == "2"
        champion = client.infer("credit", tensors, model_version="champion")
        np.testing.assert_allclose(champion.as_numpy("probability"), server["expected"][1])
        with pytest.raises(InferenceServerException, match="model 'nope' does not exist"):
            client.infer("nope", tensors)
    finally:
        client.close()


def test_tritonclient_http_repository(server: dict) -> None:
    # with two workers each holds its own repository: index and load answer on any of them
    client = httpclient.InferenceServerClient(server["http"])
    try:
        index = client.get_model_repository_index()
        assert {(e["name"], e["version"]) for e in index} == {("credit", "1"), ("credit", "2")}
        client.load_model("credit")
        assert client.is_model_ready("credit")
    finally:
        client.close()


GRPC_CLIENT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    url, features, rows = sys.argv[1], json.loads(sys.argv[2]), np.array(json.loads(sys.argv[3]))
    client = grpcclient.InferenceServerClient(url)
    out = {"live": client.is_server_live(), "ready": client.is_server_ready(),
           "model_ready": client.is_model_ready("credit", "champion"),
           "unknown_ready": client.is_model_ready("nope"),
           "server": client.get_server_metadata().name}
    meta = client.get_model_metadata("credit", "2")
    out["inputs"], out["versions"] = [t.name for t in meta.inputs], list(meta.versions)
    for datatype, dtype in (("FP64", np.float64), ("FP32", np.float32)):
        tensors = []
        for i, name in enumerate(features):
            t = grpcclient.InferInput(name, [len(rows)], datatype)
            t.set_data_from_numpy(rows[:, i].astype(dtype))
            tensors.append(t)
        result = client.infer("credit", tensors, model_version="challenger", request_id="g1",
                              outputs=[grpcclient.InferRequestedOutput("probability")])
        response = result.get_response()
        out[datatype] = [result.as_numpy("probability").tolist(), response.id,
                         response.model_version]
    errors = []
    for version, inputs in (("7", tensors), ("", tensors[:1])):
        try:
            client.infer("credit", inputs, model_version=version)
        except InferenceServerException as exc:
            errors.append([str(exc.status()), exc.message()])
    out["errors"] = errors
    print(json.dumps(out))
    """
)


def test_tritonclient_grpc(server: dict) -> None:
    result = subprocess.run(
        [sys.executable, "-c", GRPC_CLIENT, server["grpc"], json.dumps(FEATURES),
         json.dumps(ROWS.tolist())],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["live"] and out["ready"] and out["model_ready"] and not out["unknown_ready"]
    assert out["server"] == "mainspring"
    assert out["inputs"] == FEATURES and out["versions"] == ["1", "2"]
    for datatype in ("FP64", "FP32"):
        values, request_id, version = out[datatype]
        np.testing.assert_allclose(values, server["expected"][2], rtol=1e-5)
        assert request_id == "g1" and version == "2"
    (status_a, message_a), (status_b, message_b) = out["errors"]
    assert "NOT_FOUND" in status_a and "credit/7" in message_a
    assert "INVALID_ARGUMENT" in status_b and "'age', 'debt_ratio' missing" in message_b


def test_promotions_while_serving_fail_no_request(server: dict) -> None:
    """Load from threads while the champion moves 1 -> 2 -> 1 -> 2 in the registry: the servers
    (two workers, each syncing on its own) switch without a restart and without a failed request.
    """
    import threading
    import urllib.request

    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 3], "data": ROWS.tolist()}]}
    ).encode()
    url = f"http://{server['http']}/v2/models/credit/infer"
    failures: list[str] = []
    versions: list[str] = []
    stop = threading.Event()

    def infer() -> str:
        request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["model_version"])

    def load() -> None:
        while not stop.is_set():
            try:
                versions.append(infer())
            except Exception as exc:  # counted: that is the test
                failures.append(repr(exc))

    def wait_for(version: str) -> None:
        deadline = time.monotonic() + 60
        streak = 0
        while streak < 10:  # both workers answer with it (connections spread over them)
            assert time.monotonic() < deadline, f"the servers did not switch to version {version}"
            streak = streak + 1 if infer() == version else 0

    with Project.open(server["directory"]) as project:
        registry = project.registry
        registry.request_approval("credit", 2, actor="alice")
        registry.approve("credit", 2, actor="bob", reason="ok")
        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for version in (2, 1, 2):
                registry.set_alias("credit", "champion", version, actor="alice")
                wait_for(str(version))
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert failures == []
    assert {"1", "2"} <= set(versions)
