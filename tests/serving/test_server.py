"""Graceful shutdown of ``mainspring serve``: readiness turns false, in-flight requests finish.

The server runs as a real subprocess with two workers. Slow requests (tens of thousands of rows
through a model of 400 trees) are in flight when SIGTERM reaches the master: readiness must turn
false while connections are still accepted (``--drain-delay``), then the listener closes and new
connections are refused, and every request that was in flight completes with 200.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from tests.servers import mainspring_serve

from mainspring.project import Project

lgb = pytest.importorskip("lightgbm")

ROWS = 60_000
IN_FLIGHT = 4


def get(port: int, path: str) -> int:
    """The status of ``GET path`` on a new connection (ConnectionRefusedError when closed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 63, "min_data_in_leaf": 2, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=400)
    with Project.open(tmp_path) as project:
        project.registry.register("slow", booster, actor="alice")
    with mainspring_serve(
        tmp_path, "--grpc-port", "0", "--workers", "2", "--drain-delay", "1", ready=is_ready
    ) as served:
        yield served


def is_ready(port: int) -> bool:
    try:
        return get(port, "/v2/health/ready") == 200
    except OSError:
        return False


def slow_body() -> tuple[bytes, dict[str, str]]:
    """``ROWS`` rows as binary tensor data (the JSON head says how long it is)."""
    matrix = np.random.default_rng(1).normal(size=(ROWS, 3))
    raw = matrix.astype("<f8").tobytes()
    head = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [ROWS, 3],
                                     "parameters": {"binary_data_size": len(raw)}}]})  # fmt: skip
    headers = {"Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(head))}  # fmt: skip
    return head + raw, headers


def test_sigterm_turns_readiness_false_then_drains_in_flight_requests(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = served
    body, headers = slow_body()
    sent = threading.Barrier(IN_FLIGHT + 1)
    answers: list[tuple[int | str, int, float]] = []  # status (or error), rows answered, when

    def infer() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/v2/models/slow/infer", body, headers)
            sent.wait()
            response = conn.getresponse()
            payload = response.read()
            rows = orjson.loads(payload)["outputs"][0]["shape"][0] if response.status == 200 else 0
            answers.append((response.status, rows, time.monotonic()))
        except OSError as exc:  # a dropped request: reported by the assertion below
            answers.append((repr(exc), 0, time.monotonic()))
        finally:
            conn.close()

    threads = [threading.Thread(target=infer) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    sent.wait(timeout=60)  # every body is written: the requests are being served
    proc.send_signal(signal.SIGTERM)  # to the master, as an orchestrator does

    readiness: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # readiness while the workers accept, until they refuse
        try:
            readiness.append(get(port, "/v2/health/ready"))
        except ConnectionRefusedError:
            break
        except (ConnectionResetError, http.client.RemoteDisconnected):
            pass  # a probe that raced a listener's closing; the next one is refused
        time.sleep(0.02)
    refused_at = time.monotonic()
    for thread in threads:
        thread.join(timeout=120)

    assert 503 in readiness, readiness  # not ready while draining, before refusing connections
    assert set(readiness) <= {200, 503}, readiness  # 200 only before a worker saw the signal
    outcomes = [(status, rows, round(when - refused_at, 2)) for status, rows, when in answers]
    assert [o[:2] for o in outcomes] == [(200, ROWS)] * IN_FLIGHT, (outcomes, log.read_text())
    # the premise: some requests were still in flight when the listener closed
    assert max(when for _, _, when in answers) > refused_at
    assert proc.wait(timeout=60) == 0, log.read_text()
    with pytest.raises(ConnectionRefusedError):
        get(port, "/v2/health/live")


def test_workers_run_on_uvloop_and_on_asyncio_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    from mainspring.serving.server import run_loop

    loops: list[str] = []

    async def main() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    run_loop(main())
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows, where it is not installed
    run_loop(main())
    assert loops[0].startswith("uvloop") and loops[1].startswith("asyncio")


def test_a_worker_lets_go_of_a_connection_when_it_holds_two_more_than_another() -> None:
    from mainspring.serving.server import SHED_EVERY_S, ConnectionShare

    counts, held, now = [0, 0, 0], 0, 100.0
    share = ConnectionShare(counts, 0, lambda: held, clock=lambda: now)
    for mine, others, over in [(11, [11, 11], False), (13, [11, 11], True),
                               (12, [11, 11], False), (14, [11, 13], True), (1, [0, 1], False),
                               (0, [0, 0], False)]:  # fmt: skip
        held, counts[1:] = mine, others
        now += 2 * SHED_EVERY_S
        assert share.over() is over, (mine, others)
        assert counts[0] == held  # published for the other workers
    held, counts[1:] = 20, [10, 10]
    assert share.over() and not share.over()  # at most one connection every SHED_EVERY_S
    now += 2 * SHED_EVERY_S
    assert share.over()


def connections_per_worker(server: int, port: int) -> list[int]:
    """How many established connections to ``port`` each child process of ``server`` holds."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])  # the socket's inode
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    held = []
    for child in children:
        fds = Path(f"/proc/{child}/fd")
        links = [str(fd.readlink()) for fd in fds.iterdir() if fd.is_symlink()]
        held.append(sum(link[8:-1] in established for link in links if link.startswith("socket:")))
    return sorted(n for n in held if n)


def test_keep_alive_connections_end_up_even_over_the_workers(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, _ = served
    clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(24)]
    closed, split = 0, []
    deadline = time.monotonic() + 60  # a worker listens once its models are loaded
    while split != [12, 12] and time.monotonic() < deadline:
        for i, client in enumerate(clients):  # a round: one request on each connection
            client.request("GET", "/v2/health/live")
            response = client.getresponse()
            response.read()
            assert response.status == 200
            if response.getheader("connection") == "close":  # over its share: reconnect
                client.close()
                clients[i] = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                clients[i].connect()
                closed += 1
        time.sleep(0.02)
        split = connections_per_worker(proc.pid, port)
    for client in clients:
        client.close()
    assert split == [12, 12], (split, closed)
