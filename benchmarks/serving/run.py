"""Single-row OIP requests at concurrency 1 and 32: ``mainspring serve``, the floor and the peers.

Every server runs on 127.0.0.1 in the same run, with the same number of worker processes, the
same LightGBM model (200 trees, 31 leaves, 20 features) and the same single-row request (one
[1, 20] FP64 tensor in an OIP body; ``mlflow models serve`` gets its own ``dataframe_split``
body of the same row). The floor is a bare Starlette app that decodes the same JSON and calls
the same predict (``floor.py``). The peers (MLServer default and tuned, BentoML, ``mlflow models
serve``) run from their own virtualenvs under ``benchmarks/.venvs`` (``peers.py`` says how each
is configured); each server is warmed, and its answer is checked against LightGBM's own
prediction before it is measured.

The load generator is wrk (Debian package ``wrk``), closed-loop, keep-alive, one connection per
wrk thread. Two latency figures are quoted:

- **measured**: each request's own latency (request written -> response read), recorded by
  ``latency.lua``; these are the p50/p99 the targets are judged on;
- **wrk**: wrk's printed percentiles, which are coordinated-omission corrected (wrk adds
  synthetic samples for every response slower than the mean interval), so stalls weigh more.

Each configuration runs ``--runs`` times for ``--seconds``; medians are printed, then the ratios
Mainspring/peer against issue 6's targets at concurrency 32.

Run: python benchmarks/serving/run.py [--seconds 20] [--runs 3] [--workers 2]
     [--peers floor,mlserver,mlserver-tuned,bentoml,mlflow]
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
from typing import Any

import lightgbm as lgb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from peers import FEATURES, Server, oip_body, oip_score

import mainspring as ms

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ALL = ("floor", *peers.PEERS)
#: issue 6's targets at concurrency 32: Mainspring's req/s at least this many times the peer's
TARGETS = {"mlserver": 3.0, "bentoml": 10.0, "mlflow": 40.0, "floor": 0.7}


def free_port(span: int = 1) -> int:
    """A free port (and the ``span - 1`` after it, for servers that open several)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + span < 65535 and all(_free(port + i) for i in range(1, span)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def train(path: Path) -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20_000, 20))
    y = (x[:, :5].sum(axis=1) + rng.normal(size=20_000) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x, y, feature_name=FEATURES), num_boost_round=200)
    booster.save_model(str(path))
    return booster


def post(url: str, body: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return dict(json.loads(response.read()))


def wait_ready(server: Server, url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {proc.returncode}")
        try:
            post(url, server.body, timeout=10)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s",
         "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    result = {
        "rps": rps,
        "errors": (float(errors.group(1)) if errors else 0.0)
        + (sum(float(g) for g in sockets.groups()) if sockets else 0.0),
    }
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"wrk_p{pct}"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    measured = re.search(
        r"MEASURED count=\d+ p50_ms=([\d.]+) p99_ms=([\d.]+) p999_ms=([\d.]+) max_ms=([\d.]+)", out
    )
    if measured:
        for key, value in zip(("p50", "p99", "p999", "max"), measured.groups(), strict=True):
            result[key] = float(value)
    return result


def mainspring_server(work: Path, model: Path, row: list[float], workers: int) -> Server:
    with ms.Project.open(work / "project") as project:
        project.registry.register("bench", model, actor="bench")
    binary = str(Path(sys.executable).with_name("mainspring"))

    def command(port: int) -> list[str]:
        return [binary, "-C", str(work / "project"), "serve", "--port", str(port),
                "--grpc-port", "0", "--workers", str(workers)]  # fmt: skip

    return Server("mainspring", command, "/v2/models/bench/infer", oip_body(row), oip_score,
                  ROOT, {}, f"mainspring serve --workers {workers} (defaults)")  # fmt: skip


def floor_server(model: Path, row: list[float], workers: int) -> Server:
    def command(port: int) -> list[str]:
        return [sys.executable, str(HERE / "floor.py"), str(port), str(workers)]

    return Server("floor", command, "/v2/models/bench/infer", oip_body(row), oip_score, ROOT,
                  {"MODEL_FILE": str(model)}, f"bare Starlette, {workers} workers")  # fmt: skip


def measure(
    server: Server, args: argparse.Namespace, expected: float, work: Path
) -> dict[int, dict[str, float]]:
    script = work / f"{server.name}.lua"
    script.write_text(
        f"wrk.body = {json.dumps(json.dumps(server.body))}\n" + (HERE / "latency.lua").read_text()
    )
    port = free_port(span=3)
    # one OpenMP thread per worker process for every server: the workers are the parallelism
    env = {**os.environ, "OMP_NUM_THREADS": "1", **server.env}
    log = (work / f"{server.name}.log").open("wb")
    proc = subprocess.Popen(
        server.command(port), cwd=server.cwd, env=env, start_new_session=True,
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{server.path}"
    try:
        wait_ready(server, url, proc, timeout=args.start_timeout)
        got = server.score(post(url, server.body))
        if not np.isclose(got, expected, rtol=1e-9, atol=1e-12):
            raise RuntimeError(f"{server.name} answered {got}, LightGBM predicts {expected}")
        print(f"{server.name}: {server.about}; answer {got:.12f} agrees", flush=True)
        wrk(url, 8, max(2, args.seconds // 4), script)  # warm-up, not counted
        results = {}
        for connections in args.concurrency:
            runs = [wrk(url, connections, args.seconds, script) for _ in range(args.runs)]
            results[connections] = {
                key: statistics.median(r.get(key, float("nan")) for r in runs) for key in runs[0]
            }
            r = results[connections]
            print(f"  c={connections}: {r['rps']:.0f} req/s, p50 {r.get('p50', 0):.2f} ms, "
                  f"p99 {r.get('p99', 0):.2f} ms", flush=True)  # fmt: skip
        return results
    except Exception:
        log.flush()
        print((work / f"{server.name}.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def report(results: dict[str, dict[int, dict[str, float]]], concurrency: list[int]) -> None:
    print()
    print(
        "latency in ms: p50 to max measured per request; wrk's are coordinated-omission corrected"
    )
    print(f"{'server':<16}{'conc':>5}{'req/s':>9}{'p50':>8}{'p99':>8}{'p99.9':>8}{'max':>8}"
          f"{'wrk p50':>9}{'wrk p99':>9}{'errors':>8}")  # fmt: skip
    for name, by_conc in results.items():
        for c, r in by_conc.items():
            print(
                f"{name:<16}{c:>5}{r['rps']:>9.0f}{r.get('p50', 0):>8.2f}{r.get('p99', 0):>8.2f}"
                f"{r.get('p999', 0):>8.2f}{r.get('max', 0):>8.1f}"
                f"{r.get('wrk_p50', 0):>9.2f}{r.get('wrk_p99', 0):>9.2f}{r['errors']:>8.0f}"
            )
    ours = results.get("mainspring")
    if ours is None:
        return
    print()
    for c in concurrency:
        for name, by_conc in results.items():
            if name == "mainspring" or c not in by_conc or c not in ours:
                continue
            ratio = ours[c]["rps"] / by_conc[c]["rps"]
            target = TARGETS.get(name.removesuffix("-tuned"))
            line = f"c={c:<3} mainspring / {name:<15} {ratio:7.2f}x req/s"
            if c == 32 and target is not None:
                line += f" (target >= {target:g}x: {'met' if ratio >= target else 'NOT met'})"
            if name != "floor":
                lower = ours[c].get("p99", 0) < by_conc[c].get("p99", 0)
                line += f"; p99 {ours[c].get('p99', 0):.1f} vs {by_conc[c].get('p99', 0):.1f} ms"
                line += f" ({'lower' if lower else 'NOT lower'})"
            print(line)
    best = [results[n][32] for n in ("mlserver", "mlserver-tuned") if 32 in results.get(n, {})]
    if best and 32 in ours:
        top = max(best, key=lambda r: r["rps"])
        ratio = ours[32]["rps"] / top["rps"]
        print(f"c=32 mainspring / MLServer's best {ratio:.2f}x (target >= 3x: "
              f"{'met' if ratio >= 3 else 'NOT met'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument(
        "--peers", default=",".join(ALL),
        help=f"servers to compare with Mainspring, comma-separated, from: {', '.join(ALL)} "
        "('' for Mainspring alone)",
    )  # fmt: skip
    parser.add_argument("--concurrency", default="1,32", help="comma-separated [1,32]")
    parser.add_argument("--start-timeout", type=float, default=180)
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    chosen = [p for p in args.peers.split(",") if p]
    unknown = set(chosen) - set(ALL)
    if unknown:
        sys.exit(f"unknown peers {sorted(unknown)}; choose from {', '.join(ALL)}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="mainspring-bench-"))
    model = work / "model.txt"
    booster = train(model)
    row = np.random.default_rng(1).normal(size=20).round(4).tolist()
    expected = float(booster.predict(np.asarray([row]))[0])
    servers = [mainspring_server(work, model, row, args.workers)]
    for name in chosen:
        if name == "floor":
            servers.append(floor_server(model, row, args.workers))
        else:
            servers.append(peers.make(name, work, model, row, args.workers, lgb.__version__))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, LightGBM "
          f"{lgb.__version__}, {args.runs} runs of {args.seconds} s, work dir {work}")  # fmt: skip
    results = {s.name: measure(s, args, expected, work) for s in servers}
    report(results, args.concurrency)
    if args.keep:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
