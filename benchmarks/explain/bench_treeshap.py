"""Exact TreeSHAP per row: Mainspring against LightGBM's pred_contrib and shap.TreeExplainer.

The model is the one of the serving and decision benchmarks: LightGBM binary, 200 trees of 31
leaves over 20 features, trained on synthetic data with a fixed seed. Single-row times are the
median and p99 over 2,000 rows, each explained alone (the decision service's call); batch times
are a batch of 1,000 rows divided by 1,000 (best of 3). Values are checked against shap's (max
absolute difference) and against the raw score. Cold time is a fresh process with an empty numba
cache: import, compile and first call; warm start is the same with the cache filled.

A smaller XGBoost line (100 trees, depth 6, 20 features) compares with XGBoost's pred_contribs
and shap.

Run: python benchmarks/explain/bench_treeshap.py [--rows 2000] [--peer-rows 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import xgboost as xgb

from mainspring.explain import TreeExplainer

warnings.filterwarnings("ignore")
import shap  # noqa: E402 - after silencing its import-time warnings

N_FEATURES = 20


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES))
    y = (x[:, :5].sum(axis=1) + rng.normal(size=n) > 0).astype(int)
    return x, y


def per_row(fn: Callable[[np.ndarray], Any], rows: np.ndarray) -> tuple[float, float]:
    """Median and p99 in ms of ``fn`` on each row alone."""
    times = []
    for row in rows:
        start = time.perf_counter_ns()
        fn(row)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times), float(np.percentile(times, 99))


def batch(fn: Callable[[np.ndarray], Any], rows: np.ndarray, repeat: int = 3) -> float:
    """Best time per row in ms of ``fn`` on the whole batch."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(rows)
        best = min(best, (time.perf_counter() - start) * 1e3 / len(rows))
    return best


COLD = """
import time, sys
start = time.perf_counter()
import lightgbm as lgb
from mainspring.explain import TreeExplainer
booster = lgb.Booster(model_file=sys.argv[1])
loaded = time.perf_counter()
TreeExplainer.from_lightgbm(booster)
print(time.perf_counter() - loaded)
"""


def cold_start(model_file: str) -> tuple[float, float]:
    """Seconds to build and warm an explainer with an empty numba cache, then with it filled."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        times = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", COLD, model_file],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return times[0], times[1]


def row(name: str, single: tuple[float, float] | None, per: float, ours: Any) -> str:
    median, p99 = single if single else (float("nan"), float("nan"))
    ratio = f"{median / ours[0][0]:.1f}x / {per / ours[1]:.1f}x" if name != "Mainspring" else "1x"
    return f"| {name} | {median:.3f} | {p99:.3f} | {per:.3f} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--peer-rows", type=int, default=500)
    args = parser.parse_args()

    x, y = synthetic(20_000, 0)
    params = {"objective": "binary", "num_leaves": 31, "verbose": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=200)
    test, _ = synthetic(max(args.rows, 1000), 1)
    test[::10, 3] = np.nan

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.txt")
        booster.save_model(path)
        cold, cached = cold_start(path)

    start = time.perf_counter()
    ours = TreeExplainer.from_lightgbm(booster)
    build = time.perf_counter() - start
    reference = shap.TreeExplainer(booster)
    batch_rows = test[:1000]

    values = ours.shap_values(batch_rows)
    shap_values = np.asarray(reference.shap_values(batch_rows))
    diff_shap = float(np.abs(values - shap_values).max())
    contrib = booster.predict(batch_rows, pred_contrib=True)
    diff_lgb = float(np.abs(values - contrib[:, :N_FEATURES]).max())
    raw = booster.predict(batch_rows, raw_score=True)
    diff_raw = float(np.abs(values.sum(axis=1) + ours.expected_value - raw).max())

    rows = test[: args.rows]
    peer_rows = test[: args.peer_rows]
    results = {
        "Mainspring": (per_row(ours.explain_row, rows), batch(ours.shap_values, batch_rows)),
        "LightGBM pred_contrib": (
            per_row(lambda r: booster.predict(r[None], pred_contrib=True), peer_rows),
            batch(lambda b: booster.predict(b, pred_contrib=True), batch_rows),
        ),
        "shap.TreeExplainer": (
            per_row(lambda r: reference.shap_values(r[None]), peer_rows),
            batch(reference.shap_values, batch_rows, repeat=1),
        ),
        "LightGBM predict (raw score)": (
            per_row(lambda r: booster.predict(r[None], raw_score=True), peer_rows),
            batch(lambda b: booster.predict(b, raw_score=True), batch_rows),
        ),
    }
    mine = results["Mainspring"]

    print(
        f"Machine: {platform.system()} {platform.release()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; lightgbm {lgb.__version__}, shap {shap.__version__}, "
        f"xgboost {xgb.__version__}"
    )
    f = ours.forest
    print(
        f"LightGBM binary: {f.n_trees} trees, {f.n_leaves} leaves, {N_FEATURES} "
        f"features, Gauss points per tree {int(f.tree_points.min())}-{int(f.tree_points.max())}"
    )
    print(
        "\n| LightGBM | single row median ms | single row p99 ms | batch of 1,000, ms/row |"
        " peer / Mainspring (single / batch) |"
    )
    print("|---|---|---|---|---|")
    for name, (single, per) in results.items():
        print(row(name, single, per, mine))
    print(
        f"\nmax |Mainspring - shap| = {diff_shap:.2e}, max |Mainspring - pred_contrib| = "
        f"{diff_lgb:.2e}, max |sum + expected - raw score| = {diff_raw:.2e} (1,000 rows, 10% NaN "
        "in one feature)"
    )
    print(
        f"explainer build (parse + precompute + warm call, cache filled) {build * 1e3:.0f} ms; "
        f"fresh process, empty numba cache (compile): {cold:.2f} s; with the cache: {cached:.2f} s"
    )

    # XGBoost: smaller line
    dtrain = xgb.DMatrix(x[:10_000], y[:10_000])
    xbooster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "eta": 0.1, "seed": 0}, dtrain, 100
    )
    xours = TreeExplainer.from_xgboost(xbooster)
    xreference = shap.TreeExplainer(xbooster)
    xvalues = xours.shap_values(batch_rows)
    xdiff = float(np.abs(xvalues - np.asarray(xreference.shap_values(batch_rows))).max())
    xresults = {
        "Mainspring": (per_row(xours.explain_row, rows), batch(xours.shap_values, batch_rows)),
        "XGBoost pred_contribs": (
            per_row(
                lambda r: xbooster.predict(xgb.DMatrix(r[None]), pred_contribs=True), peer_rows
            ),
            batch(lambda b: xbooster.predict(xgb.DMatrix(b), pred_contribs=True), batch_rows),
        ),
        "shap.TreeExplainer": (
            per_row(lambda r: xreference.shap_values(r[None]), peer_rows),
            batch(xreference.shap_values, batch_rows, repeat=1),
        ),
    }
    print(
        "\n| XGBoost, 100 trees, depth 6 | single row median ms | single row p99 ms |"
        " batch of 1,000, ms/row | peer / Mainspring (single / batch) |"
    )
    print("|---|---|---|---|---|")
    for name, (single, per) in xresults.items():
        print(row(name, single, per, xresults["Mainspring"]))
    print(f"\nmax |Mainspring - shap| = {xdiff:.2e}")


if __name__ == "__main__":
    main()
