"""Feature store benchmark: Mainspring and Feast side by side, in one run, on the same data and
the same kind of online store (SQLite).

10 float features, 10k entities, 1M feature rows; online reads for 1 and 100 entities (median and
p99) against a bare SQLite SELECT of the same rows (the floor); a point-in-time join of 100k entity
rows against the 1M feature rows (time, peak memory), with the values of both compared on every
row. Feast runs in its own virtualenv under benchmarks/.venvs/ (created here), never in
Mainspring's dependencies.

Run from the repository: .venv/bin/python benchmarks/features/run.py [--quick] [--record]

--redis N runs only the Redis online reads, N rounds (no Feast): each round starts a fresh
redis-server and reports Mainspring's 1- and 100-entity reads over TCP and over the server's
unix-domain socket (redis+unix://), each beside its floor, a bare MGET of the same keys over a raw
socket of the same kind in the same process (no client library).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FEAST_VENV = ROOT / "benchmarks" / ".venvs" / "feast"
FEAST_VERSION = "0.67.0"
FEATURES = [f"f{i}" for i in range(10)]
TTL = timedelta(days=2)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def feast_python() -> Path:
    python = FEAST_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {FEAST_VENV} with feast=={FEAST_VERSION} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(FEAST_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"feast=={FEAST_VERSION}"], check=True
        )
    return python


def generate(data: Path, entities: int, per_entity: int, entity_rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(42)
    n = entities * per_entity
    ids = np.repeat(np.arange(entities, dtype=np.int64), per_entity)
    # per entity, distinct times over 100 days (whole seconds)
    offsets = rng.choice(100 * 86_400, size=n, replace=True)
    frame = pd.DataFrame({"customer_id": ids})
    frame["event_timestamp"] = pd.Timestamp(T0) + pd.to_timedelta(offsets, unit="s")
    frame = frame.drop_duplicates(["customer_id", "event_timestamp"])
    for f in FEATURES:
        frame[f] = rng.normal(size=len(frame))
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us, UTC]")
    frame.to_parquet(data / "features.parquet", index=False)
    ent = pd.DataFrame(
        {
            "customer_id": rng.integers(0, int(entities * 1.01), entity_rows),  # ~1% unknown
            "event_timestamp": pd.Timestamp(T0)
            + pd.to_timedelta(rng.integers(-5 * 86_400, 105 * 86_400, entity_rows), unit="s"),
        }
    )
    ent["event_timestamp"] = ent["event_timestamp"].astype("datetime64[us, UTC]")
    ent["row_id"] = np.arange(entity_rows)
    ent.to_parquet(data / "entities.parquet", index=False)
    # the floor: a bare table holding the latest row per entity
    latest = frame.sort_values("event_timestamp").groupby("customer_id").tail(1)
    con = sqlite3.connect(data / "bare.db")
    con.execute(
        "CREATE TABLE t (k INTEGER PRIMARY KEY, " + ", ".join(f"{f} REAL" for f in FEATURES) + ")"
    )
    con.executemany(
        f"INSERT INTO t VALUES ({', '.join('?' * (len(FEATURES) + 1))})",
        latest[["customer_id", *FEATURES]].itertuples(index=False),
    )
    con.commit()
    con.close()
    meta = {
        "feature_rows": len(frame),
        "entities": entities,
        "entity_rows": entity_rows,
        "end": (T0 + timedelta(days=101)).isoformat(),
        "online_ids": rng.choice(entities, 100, replace=False).tolist(),
    }
    (data / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return meta


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e6)
    return out


# ----------------------------------------------------------------------------- Mainspring side


def mainspring_store(data: Path, online: Any = None) -> Any:
    import mainspring as ms
    from mainspring.storage.memory import memory_metadata
    from mainspring.storage.sqlite import SqliteOnlineStore

    customer = ms.Entity("customer", {"customer_id": "int64"})
    view = ms.FeatureView(
        "fv", customer, [ms.Field(f) for f in FEATURES], ms.FileSource("features.parquet"), ttl=TTL
    )
    from mainspring.features.metrics import FeatureMetrics

    store = ms.FeatureStore(
        memory_metadata(),
        online or SqliteOnlineStore(f"sqlite:///{data / 'ms_online.db'}"),
        base_dir=data,
        metrics=FeatureMetrics.default(),  # as Project.open wires it: metrics on
    )
    store.apply([customer, view, ms.FeatureService("bench", [view])], actor="bench")
    return store


def mainspring_side(data: Path, mode: str, out: Path) -> None:
    meta = json.loads((data / "meta.json").read_text())
    if mode == "redis":
        end = datetime.fromisoformat(meta["end"])
        ids = meta["online_ids"]
        one = [{"customer_id": ids[0]}]
        hundred = [{"customer_id": i} for i in ids[:100]]
        out.write_text(json.dumps(redis_timings(data, end, one, hundred, True)), "utf-8")
        return
    store = mainspring_store(data)
    if mode == "online":
        end = datetime.fromisoformat(meta["end"])
        t = time.perf_counter()
        store.materialize(end=end, full=True)
        materialize_s = time.perf_counter() - t
        ids = meta["online_ids"]
        one = [{"customer_id": ids[0]}]
        hundred = [{"customer_id": i} for i in ids[:100]]
        for _ in range(20):
            store.get_online_features("bench", one, now=end)
        lat1 = timed(lambda: store.get_online_features("bench", one, now=end), 1000)
        lat100 = timed(lambda: store.get_online_features("bench", hundred, now=end), 200)
        values = store.get_online_features("bench", hundred, now=end).values
        result = {
            "materialize_s": materialize_s,
            "online_1_ms": lat1,
            "online_100_ms": lat100,
            "values": {f: values[f] for f in FEATURES},
            **redis_timings(data, end, one, hundred),
        }
    else:
        entities = pd.read_parquet(data / "entities.parquet")
        t = time.perf_counter()
        training = store.get_historical_features(entities, "bench")
        seconds = time.perf_counter() - t
        training.data.sort_values("row_id").reset_index(drop=True)[
            ["row_id", *FEATURES, "fv__found"]
        ].to_parquet(data / "ms_historical.parquet")
        result = {
            "historical_s": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rows": len(training.data),
        }
    out.write_text(json.dumps(result), encoding="utf-8")


def redis_timings(
    data: Path,
    end: datetime,
    one: list[dict[str, int]],
    hundred: list[dict[str, int]],
    redis_only: bool = False,
) -> dict[str, Any]:
    """The same reads on a Redis online store (Debian's redis-server on 127.0.0.1), if present,
    over TCP (``redis_*``) and over the server's unix-domain socket (``redis_unix_*``), each
    beside its floor. The garbage collector's heap is frozen after the warm-up (``gc.freeze``),
    as a serving process would after loading."""
    binary = shutil.which("redis-server")
    if binary is None:
        return {}
    from mainspring.storage.redis import RedisOnlineStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = data / "redis.sock"
    server = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--unixsocket",
            str(path),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        cwd=data,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        n1, n100 = (5000, 1000) if redis_only else (1000, 200)
        result: dict[str, Any] = {}
        for label, url, address in (
            ("redis", f"redis://127.0.0.1:{port}/0", ("127.0.0.1", port)),
            ("redis_unix", f"redis+unix://{path}?db=0", str(path)),
        ):
            store = mainspring_store(data, RedisOnlineStore(url))
            if label == "redis":
                store.materialize(end=end, full=True)
            for _ in range(200):
                store.get_online_features("bench", one, now=end)
                store.get_online_features("bench", hundred, now=end)
            namespace = store.selection("bench").parts[0].namespace
            keys = [f"mainspring:online:{namespace}\x1e{e['customer_id']}" for e in hundred]
            floor_1, floor_100, close = redis_floor(address, keys)
            gc.collect()
            gc.freeze()
            try:
                result.update(
                    interleaved(
                        {
                            f"{label}_1_ms": (
                                lambda s=store: s.get_online_features("bench", one, now=end),
                                n1,
                            ),
                            f"{label}_floor_1_ms": (floor_1, n1),
                            f"{label}_100_ms": (
                                lambda s=store: s.get_online_features("bench", hundred, now=end),
                                n100,
                            ),
                            f"{label}_floor_100_ms": (floor_100, n100),
                        }
                    )
                )
            finally:
                close()
            gc.unfreeze()
            store.online.close()
        return result
    finally:
        server.terminate()
        server.wait(10)


def interleaved(
    measures: dict[str, tuple[Callable[[], object], int]], blocks: int = 20
) -> dict[str, list[float]]:
    """Time each callable ``n`` times, in ``blocks`` rounds taking turns, so that all of them
    share the machine's noise (a burst of other work lands on each, not on whichever ran then)."""
    out: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(blocks):
        for name, (fn, n) in measures.items():
            out[name] += timed(fn, n // blocks)
    return out


def redis_floor(
    address: tuple[str, int] | str, keys: list[str]
) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """A bare MGET over a raw socket (TCP, or unix-domain for a path): the round trip without
    any client library (the floor). Returns the 1-key and all-keys reads and a closer."""

    def command(names: list[str]) -> bytes:
        parts = [b"*%d\r\n$4\r\nMGET\r\n" % (len(names) + 1)]
        for name in names:
            raw = name.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        return b"".join(parts)

    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
    else:
        sock = socket.create_connection(address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def mget(packed: bytes, replies: int) -> None:
        sock.sendall(packed)
        buffer = sock.recv(1 << 16)
        while buffer.count(b"\r\n") < 1 + 2 * replies:  # header, then length + value each
            buffer += sock.recv(1 << 16)

    one, hundred = command(keys[:1]), command(keys)
    for _ in range(200):
        mget(one, 1)
    return (lambda: mget(one, 1)), (lambda: mget(hundred, len(keys))), sock.close


def floor(data: Path, ids: list[int]) -> dict[str, list[float]]:
    con = sqlite3.connect(data / "bare.db")
    one_sql = "SELECT * FROM t WHERE k = ?"
    many_sql = f"SELECT * FROM t WHERE k IN ({', '.join('?' * 100)})"
    for _ in range(20):
        con.execute(one_sql, (ids[0],)).fetchall()
    return {
        "online_1_ms": timed(lambda: con.execute(one_sql, (ids[0],)).fetchall(), 1000),
        "online_100_ms": timed(lambda: con.execute(many_sql, ids[:100]).fetchall(), 200),
    }


# ----------------------------------------------------------------------------- orchestration


def child(python: Path, args: list[str], out: Path) -> dict[str, Any]:
    subprocess.run([str(python), *args, str(out)], check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def compare_historical(data: Path) -> dict[str, Any]:
    ours = pd.read_parquet(data / "ms_historical.parquet")
    feast = pd.read_parquet(data / "feast_historical.parquet")
    both = ours.merge(feast, on="row_id", suffixes=("", "_feast"))
    mismatched = 0
    for f in FEATURES:
        a, b = both[f].to_numpy(), both[f"{f}_feast"].to_numpy()
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        mismatched += int((~same).sum())
    return {
        "rows_ours": len(ours),
        "rows_feast": len(feast),
        "rows_compared": len(both),
        "values_compared": len(both) * len(FEATURES),
        "mismatched_values": mismatched,
        "rows_without_match": int((~ours["fv__found"]).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1/10 of the data, for a smoke run")
    parser.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument(
        "--redis", type=int, metavar="N", help="only the Redis online reads, N rounds (no Feast)"
    )
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        mainspring_side(Path(args.rest[0]), args.side, Path(args.rest[1]))
        return

    if args.redis:
        redis_rounds(args.redis, args.quick, args.record)
        return
    python = feast_python()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory(prefix="mainspring-bench-") as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        meta = generate(data, 10_000, 100 // scale, 100_000 // scale)
        print(f"data: {meta['feature_rows']:,} feature rows, {time.perf_counter() - t:.1f} s")
        me = [sys.executable, str(Path(__file__).resolve()), "--side"]
        feast_script = str(HERE / "feast_side.py")
        results = {
            "mainspring_online": child(
                Path(me[0]), [*me[1:], "online", str(data)], data / "a.json"
            ),
            "feast_online": child(python, [feast_script, str(data), "online"], data / "b.json"),
            "mainspring_hist": child(
                Path(me[0]), [*me[1:], "historical", str(data)], data / "c.json"
            ),
            "feast_hist": child(python, [feast_script, str(data), "historical"], data / "d.json"),
        }
        base = floor(data, meta["online_ids"])
        check = compare_historical(data)
        # Feast ignores the TTL on online reads; compare where Mainspring finds a fresh row
        ours_v, feast_v = results["mainspring_online"]["values"], results["feast_online"]["values"]
        fresh = [i for i, v in enumerate(ours_v[FEATURES[0]]) if v is not None]
        online_equal = all(ours_v[f][i] == feast_v[f][i] for f in FEATURES for i in fresh)

    ms_on, fe_on, ms_h, fe_h = (
        results["mainspring_online"],
        results["feast_online"],
        results["mainspring_hist"],
        results["feast_hist"],
    )
    rows = []
    for label, key in (("1 entity", "online_1_ms"), ("100 entities", "online_100_ms")):
        rows.append(
            f"| online, {label} | {statistics.median(ms_on[key]):.3f} / {p(ms_on[key], 99):.3f} "
            f"| {statistics.median(fe_on[key]):.3f} / {p(fe_on[key], 99):.3f} "
            f"| {statistics.median(base[key]):.3f} / {p(base[key], 99):.3f} "
            f"| {statistics.median(fe_on[key]) / statistics.median(ms_on[key]):.1f}x faster, "
            f"{statistics.median(ms_on[key]) / statistics.median(base[key]):.1f}x the floor |"
        )
    for label, key in (
        ("1 entity", "redis_1_ms"),
        ("100 entities", "redis_100_ms"),
        ("unix socket, 1 entity", "redis_unix_1_ms"),
        ("unix socket, 100 entities", "redis_unix_100_ms"),
    ):
        if key in ms_on:
            rows.append(
                f"| online on Redis, {label} | {statistics.median(ms_on[key]):.3f} / "
                f"{p(ms_on[key], 99):.3f} | - | - | - |"
            )
    rows.append(
        f"| materialize (full) | {ms_on['materialize_s']:.2f} s | {fe_on['materialize_s']:.2f} s "
        f"| - | {fe_on['materialize_s'] / ms_on['materialize_s']:.1f}x faster |"
    )
    rows.append(
        f"| point-in-time join {meta['entity_rows']:,} x {meta['feature_rows']:,} "
        f"| {ms_h['historical_s']:.2f} s, {ms_h['peak_rss_mb']:.0f} MB peak "
        f"| {fe_h['historical_s']:.2f} s, {fe_h['peak_rss_mb']:.0f} MB peak | - "
        f"| {fe_h['historical_s'] / ms_h['historical_s']:.1f}x faster |"
    )
    report = "\n".join(
        [
            f"## Feature store vs Feast {FEAST_VERSION} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            + (" (quick: 1/10 of the data)" if args.quick else ""),
            "",
            f"Machine: {machine()}. Online store: SQLite for both; 10 float features, "
            f"{meta['entities']:,} entities, {meta['feature_rows']:,} feature rows, TTL 2 days. "
            "Times in ms, median / p99.",
            "",
            "| measure | Mainspring | Feast | bare SQLite SELECT | Mainspring vs |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"Rows returned: Mainspring {check['rows_ours']:,}, Feast {check['rows_feast']:,}. "
            f"Values: point-in-time join compared on {check['rows_compared']:,} rows "
            f"({check['values_compared']:,} values): {check['mismatched_values']} differ; "
            f"{check['rows_without_match']:,} rows without a match kept with nulls and flagged. "
            f"Online values of the {len(fresh)} of 100 entities with a row within the TTL "
            f"{'equal' if online_equal else 'DIFFER'} (Feast does not apply the TTL online).",
            "",
        ]
    )
    print(report)
    if args.record:
        record(report)


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )


def record(report: str) -> None:
    results_md = ROOT / "benchmarks" / "RESULTS.md"
    if not results_md.exists():
        results_md.write_text(
            "# Benchmark results\n\nFigures recorded by the scripts under `benchmarks/`, "
            "newest last, each with its machine and date.\n\n",
            encoding="utf-8",
        )
    with results_md.open("a", encoding="utf-8") as out:
        out.write(report + "\n")


def redis_rounds(rounds: int, quick: bool, save: bool) -> None:
    """Only the Redis online reads, ``rounds`` times, each round in a fresh process."""
    import redis.utils

    scale = 10 if quick else 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="mainspring-bench-") as tmp:
        data = Path(tmp)
        meta = generate(data, 10_000, 100 // scale, 1_000)
        me = [sys.executable, str(Path(__file__).resolve()), "--side"]
        for i in range(rounds):
            r = child(Path(me[0]), [*me[1:], "redis", str(data)], data / f"r{i}.json")
            for label in ("redis", "redis_unix"):
                cells = []
                for key in ("1_ms", "floor_1_ms", "100_ms", "floor_100_ms"):
                    values = r[f"{label}_{key}"]
                    cells.append(f"{statistics.median(values):.3f} / {p(values, 99):.3f}")
                over = "TCP" if label == "redis" else "unix socket"
                rows.append(
                    f"| {i + 1} | {over} | {' | '.join(cells)} | {os.getloadavg()[0]:.1f} |"
                )
    report = "\n".join(
        [
            f"## Feature store, Redis online reads — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Machine: {machine()}. redis-py {redis.__version__}, hiredis "
            f"{'yes' if redis.utils.HIREDIS_AVAILABLE else 'no'}; Debian's redis-server on "
            f"127.0.0.1 (TCP) and its unix-domain socket. 10 float features, "
            f"{meta['entities']:,} entities; per round and transport 5,000 reads of 1 entity "
            "and 1,000 of 100, after a warm-up and gc.freeze(). Floor: a bare MGET of the same "
            "keys over a raw socket of the same kind, timed in turns with ours (20 blocks) so "
            "both share the machine's noise. Times in ms, median / p99.",
            "",
            "| round | transport | Mainspring, 1 entity | floor, 1 | Mainspring, 100 entities "
            "| floor, 100 | load after |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(report)
    if save:
        record(report)


if __name__ == "__main__":
    main()
