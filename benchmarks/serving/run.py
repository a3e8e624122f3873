"""Single-row OIP requests at concurrency 1 and 32: ``mainspring serve``, the floor and the peers.

Every server runs on 127.0.0.1 in the same run, with the same number of worker processes (but
the peers' default configurations, which keep their own), the same LightGBM model (200 trees,
31 leaves, 20 features) and the same single-row request (one [1, 20] FP64 tensor in an OIP
body; ``mlflow models serve`` gets its own ``dataframe_split`` body of the same row). The floor
is a bare Starlette app that decodes the same JSON and calls the same predict (``floor.py``).
The peers (MLServer, BentoML and ``mlflow models serve``, each in its default configuration and
tuned to the run's worker count) run from their own virtualenvs under ``benchmarks/.venvs``
(``peers.py`` says how each is configured); each server is warmed, and its answer is checked
against LightGBM's own prediction before it is measured.

The load generator is wrk (Debian package ``wrk``), closed-loop, keep-alive, one connection per
wrk thread. Two latency figures are quoted:

- **measured**: each request's own latency (request written -> response read), recorded by
  ``latency.lua``; these are the p50/p99 the targets are judged on;
- **wrk**: wrk's printed percentiles, which are coordinated-omission corrected (wrk adds
  synthetic samples for every response slower than the mean interval), so stalls weigh more.

Each configuration runs ``--runs`` times for ``--seconds``; medians are printed, then the ratios
Mainspring/peer, and issue 6's targets at concurrency 32 judged against MLServer's best
configuration and BentoML's and mlflow's defaults (see ``TARGETS``).

Run: python benchmarks/serving/run.py [--seconds 20] [--runs 3] [--workers 2]
     [--peers floor,mlserver,mlserver-tuned,bentoml-default,bentoml,mlflow-default,mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import peers
from loadgen import free_port, wrk
from peers import FEATURES, Server, oip_body, oip_score

import mainspring as ms

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ALL = ("floor", *peers.PEERS)


#: Issue 6's targets at concurrency 32, per peer: Mainspring's req/s at least ``times`` the
#: peer's, judged against the configuration ``judged`` names. The issue asks for 3x "MLServer's
#: best configuration"; its BentoML (0.35-0.43k req/s) and mlflow (0.1k) figures are those
#: servers' out-of-the-box configurations, so 10x and 40x are judged against the defaults. The
#: ratio against the other configuration is printed beside it.
@dataclass(frozen=True)
class Target:
    peer: str
    times: float
    #: "best" (the faster of the two at c=32) or "default"
    judged: str
    default: str
    tuned: str


TARGETS = (
    Target("MLServer", 3.0, "best", "mlserver", "mlserver-tuned"),
    Target("BentoML", 10.0, "default", "bentoml-default", "bentoml"),
    Target("mlflow models serve", 40.0, "default", "mlflow-default", "mlflow"),
)
FLOOR_TARGET = 0.7


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
        wrk(url, 8, max(2, args.seconds // 4), script, timeout_s=10)  # warm-up, not counted
        results = {}
        for connections in args.concurrency:
            runs = [
                wrk(url, connections, args.seconds, script, timeout_s=10) for _ in range(args.runs)
            ]
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
            line = f"c={c:<3} mainspring / {name:<16} {ratio:7.2f}x req/s"
            if name != "floor":
                lower = ours[c].get("p99", 0) < by_conc[c].get("p99", 0)
                line += f"; p99 {ours[c].get('p99', 0):.1f} vs {by_conc[c].get('p99', 0):.1f} ms"
                line += f" ({'lower' if lower else 'NOT lower'})"
            print(line)
    if 32 in ours:
        print()
        print(targets(results))


def targets(results: dict[str, dict[int, dict[str, float]]]) -> str:
    """Issue 6's targets at concurrency 32: Mainspring's ratio against each peer's default and
    best configuration, and whether the target holds against the one it is judged on."""
    ours = results["mainspring"][32]
    lines = ["issue 6's targets at c=32, judged against MLServer's best configuration (as the "
             "issue says)", "and against BentoML's and mlflow's defaults (the issue's figures "
             "for them are their defaults'):"]  # fmt: skip
    if 32 in results.get("floor", {}):
        ratio = ours["rps"] / results["floor"][32]["rps"]
        met = "met" if ratio >= FLOOR_TARGET else "NOT met"
        lines.append(f"  {'floor':<20} {ratio:.2f}x (target >= {FLOOR_TARGET:g}x: {met})")
    pad = " " * 23
    for target in TARGETS:
        measured = {n: results[n][32] for n in (target.default, target.tuned)
                    if 32 in results.get(n, {})}  # fmt: skip
        if not measured:
            continue
        best = max(measured, key=lambda n: measured[n]["rps"])
        ratios = {n: ours["rps"] / r["rps"] for n, r in measured.items()}
        default = (
            f"vs default ({target.default}) {ratios[target.default]:.2f}x"
            if target.default in ratios
            else f"default ({target.default}) not measured"
        )
        lines.append(f"  {target.peer:<20} {default}, vs best ({best}) {ratios[best]:.2f}x")
        judged = best if target.judged == "best" else target.default
        verdict = "not measured"
        if judged in ratios:
            verdict = "met" if ratios[judged] >= target.times else "NOT met"
        lines.append(f"{pad}target >= {target.times:g}x, judged vs its {target.judged}: {verdict}")
        higher = [n for n, r in measured.items() if ours.get("p99", 0) >= r.get("p99", 0)]
        theirs = ", ".join(f"{n} {r.get('p99', 0):.1f}" for n, r in measured.items())
        verdict = "lower than each" if not higher else f"NOT lower than {', '.join(higher)}"
        lines.append(f"{pad}p99 {ours.get('p99', 0):.1f} ms vs {theirs} ms: {verdict}")
    return "\n".join(lines)


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
