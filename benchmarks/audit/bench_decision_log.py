"""Decision log: appends/s and latency at 1 and 32 threads, both durability modes.

Run: .venv/bin/python benchmarks/audit/bench_decision_log.py [--n 4000] [--postgres]
(``--postgres`` starts a throw-away PostgreSQL server on 127.0.0.1 with tests/servers.py, or
pass ``--postgres-url postgresql://...``.)

Each append is acknowledged only after its group commit returned; committed records are mirrored
to an embedded event log in the background, as in a project (and all are published at the end).
The floor is one bare SQLite INSERT + COMMIT per record with the same ``synchronous`` setting
(what an application writing its own audit row per decision pays); ratios are the log's
throughput over the floor's.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mainspring.audit import DecisionLog, PersonalData
from mainspring.records import Decision, FeatureValue, Reason, new_id
from mainspring.storage import open_event_log, open_metadata_store

ROOT = Path(__file__).resolve().parents[2]


def make_decision(i: int) -> Decision:
    """A realistic record: 20 features, 5 reasons, attributions (about 2.5 kB of JSON)."""
    now = datetime.now(UTC)
    features = tuple(FeatureValue(f"f{j}", 1000.0 + i + j / 7, now, "profile") for j in range(20))
    return Decision(
        id=new_id(),
        deployment="credit",
        at=now,
        decision="approve",
        policy="credit@3",
        entity={"customer": f"c-{i}", "ssn": "123-45-6789"},
        context={"channel": "web", "email": "ann@example.com"},
        features=features,
        feature_views={"profile": 3},
        model="credit-risk",
        version=7,
        digest="ab" * 32,
        arm="champion",
        raw=-1.25,
        score=0.22,
        confidence=0.56,
        reasons=tuple(Reason(f"f{j}", f"R{j:02}", "text", -0.1 * j, 1.0) for j in range(5)),
        attributions={f"f{j}": 0.01 * j for j in range(20)},
        base_value=-0.9,
        latency_ms=0.4,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_log(url: str, durability: str, threads: int, n: int, events: str) -> dict[str, float]:
    store = open_metadata_store(url)
    mirror = open_event_log(events)  # the project default: mirrored to the embedded event log
    personal = PersonalData({"ssn": "drop", "email": "hash"}, key=b"k" * 32)
    log = DecisionLog(store, durability=durability, personal=personal, events=mirror)
    per_thread = n // threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    log.append(make_decision(-1))  # warm: connection, writer thread
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        mine = latencies[t]
        records = [make_decision(t * per_thread + i) for i in range(per_thread)]
        start.wait()
        for d in records:
            t0 = time.perf_counter()
            log.append(d)
            mine.append(time.perf_counter() - t0)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    start.wait()
    t0 = time.perf_counter()
    for p in pool:
        p.join()
    elapsed = time.perf_counter() - t0
    assert log.verify().ok
    log.close()
    assert log.mirror is not None and log.mirror.cursor() == log.count()  # all published
    mirror.close()
    store.close()
    flat = [x for xs in latencies for x in xs]
    return {
        "rate": len(flat) / elapsed,
        "p50": pct(flat, 0.5) * 1000,
        "p99": pct(flat, 0.99) * 1000,
    }


def run_floor(path: Path, durability: str, n: int) -> dict[str, float]:
    """One INSERT + COMMIT per record on one connection, the same synchronous setting."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'fsync' else 'NORMAL'}")
    conn.execute("CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, body TEXT)")
    body = "x" * 2500
    latencies = []
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO audit VALUES (?, ?)", (f"{durability}-{i}", body))
        conn.execute("COMMIT")
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_start
    conn.close()
    return {
        "rate": n / elapsed,
        "p50": pct(latencies, 0.5) * 1000,
        "p99": pct(latencies, 0.99) * 1000,
    }


def machine() -> str:
    cpu = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}, load average {load:.1f} at start"
    )


def postgres_url(args: argparse.Namespace) -> tuple[str | None, object | None]:
    if args.postgres_url:
        return args.postgres_url, None
    if not args.postgres:
        return None, None
    sys.path.insert(0, str(ROOT / "tests"))
    servers: Any = importlib.import_module("servers")  # tests/servers.py: on 127.0.0.1

    server = servers.PostgresServer().start()
    return server.create_database("bench_decision_log"), server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="appends per measurement")
    parser.add_argument("--postgres", action="store_true", help="also on a local PostgreSQL")
    parser.add_argument("--postgres-url", help="also on this PostgreSQL database")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.n} appends per row\n")
    print("| backend | durability | threads | appends/s | p50 ms | p99 ms | vs floor |")
    print("|---|---|---|---|---|---|---|")
    pg, server = postgres_url(args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for durability in ("fsync", "process"):
                floor = run_floor(Path(tmp) / f"floor-{durability}.db", durability, args.n // 4)
                print(
                    f"| SQLite floor: INSERT+COMMIT | {durability} | 1 | {floor['rate']:,.0f} | "
                    f"{floor['p50']:.3f} | {floor['p99']:.3f} | 1.0x |"
                )
                for threads in (1, 32):
                    url = f"sqlite:///{tmp}/log-{durability}-{threads}.db"
                    events = f"sqlite:///{tmp}/events-{durability}-{threads}.db"
                    r = run_log(url, durability, threads, args.n, events)
                    print(
                        f"| SQLite | {durability} | {threads} | {r['rate']:,.0f} | "
                        f"{r['p50']:.3f} | {r['p99']:.3f} | {r['rate'] / floor['rate']:.2f}x |"
                    )
                if pg is not None:
                    for threads in (1, 32):
                        events = f"sqlite:///{tmp}/events-pg-{durability}-{threads}.db"
                        r = run_log(pg, durability, threads, args.n, events)
                        print(
                            f"| PostgreSQL | {durability} | {threads} | {r['rate']:,.0f} | "
                            f"{r['p50']:.3f} | {r['p99']:.3f} | - |"
                        )
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
