"""Single-row OIP requests at concurrency 1 and 32: ``mainspring serve`` against the floor.

Both servers run on 127.0.0.1 with the same number of worker processes, the same LightGBM model
(200 trees, 31 leaves, 20 features) and the same request body (one [1, 20] FP64 tensor). The
load generator is wrk (Debian package ``wrk``), closed-loop: latency percentiles are wrk's
measured per-request latencies (no coordinated-omission correction). Each configuration runs
``--runs`` times for ``--seconds``; the medians are printed with the Mainspring/floor ratios.

Run: python benchmarks/serving/run.py [--seconds 10] [--runs 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import lightgbm as lgb
import numpy as np

import mainspring as ms

ROOT = Path(__file__).resolve().parents[2]
FEATURES = [f"f{i}" for i in range(20)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20))
    y = (x[:, :5].sum(axis=1) + rng.normal(size=20_000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "seed": 0}
    lgb.train(params, lgb.Dataset(x, y, feature_name=FEATURES), num_boost_round=200).save_model(
        str(path)
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            body = json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 20],
                                           "data": [0.0] * 20}]}).encode()  # fmt: skip
            request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", str(min(connections, 2)), "-c", str(connections), "-d", f"{seconds}s",
         "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result = {"rps": rps, "non_2xx": float(errors.group(1)) if errors else 0.0}
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{pct}_ms"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="mainspring-bench-"))
    model = tmp / "model.txt"
    train(model)
    with ms.Project.open(tmp / "project") as project:
        project.registry.register("bench", model, actor="bench")
    script = tmp / "post.lua"
    row = np.random.default_rng(1).normal(size=20).round(4).tolist()
    body = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 20], "data": row}]}
    )
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    servers = {
        "mainspring": lambda port: [
            str(Path(sys.executable).with_name("mainspring")), "-C", str(tmp / "project"),
            "serve", "--port", str(port), "--grpc-port", "0", "--workers", str(args.workers),
        ],
        "floor": lambda port: [
            sys.executable, str(ROOT / "benchmarks" / "serving" / "floor.py"), str(port),
            str(args.workers),
        ],
    }  # fmt: skip
    results: dict[str, dict[int, dict[str, float]]] = {}
    # one OpenMP thread per worker process: the workers are the parallelism (both servers)
    env = {**os.environ, "MODEL_FILE": str(model), "OMP_NUM_THREADS": "1"}
    for name, command in servers.items():
        port = free_port()
        proc = subprocess.Popen(command(port), cwd=ROOT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}/v2/models/bench/infer"
        try:
            wait_ready(url, proc)
            results[name] = {}
            for connections in (1, 32):
                runs = [wrk(url, connections, args.seconds, script) for _ in range(args.runs)]
                results[name][connections] = {
                    key: statistics.median(r.get(key, float("nan")) for r in runs)
                    for key in runs[0]
                }
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    print(f"{'server':<12}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for name, by_conc in results.items():
        for connections, r in by_conc.items():
            print(f"{name:<12}{connections:>6}{r['rps']:>10.0f}{r.get('p50_ms', 0):>9.2f}"
                  f"{r.get('p99_ms', 0):>9.2f}{r['non_2xx']:>9.0f}")  # fmt: skip
    for connections in (1, 32):
        ratio = results["mainspring"][connections]["rps"] / results["floor"][connections]["rps"]
        print(f"mainspring / floor at concurrency {connections}: {ratio:.0%}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
