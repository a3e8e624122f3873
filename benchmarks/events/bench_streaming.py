"""Events/s of the stream processors: ingest → feature update, and request → prediction.

Run: python benchmarks/events/bench_streaming.py [--events N] [--requests N]
     [--kafka | --kafka-at HOST:PORT]

- **feature updates**: events of a topic (4 partitions, 10,000 customers) through a feature view's
  transformation into the online store (SQLite), each event once (the ledger of idempotency
  keys), with and without the offline Parquet appends;
- **asynchronous predictions**: request events (20 features) scored by a LightGBM model of 200
  trees with 31 leaves, one predict call per polled batch, predictions produced to a topic.

Each run reports events/s from the first poll to the moment the consumer group has caught up
(wall clock), the same per CPU-second of the process (less sensitive to a machine shared with
other work), and the consumer lag then (0 means every event was committed). Targets on a 2-core
machine, embedded log: ≥ 20,000 feature updates/s and ≥ 5,000 predictions/s. ``--kafka`` starts
the Apache Kafka broker of ``tests/servers.py`` (jars fetched once with Maven); ``--kafka-at`` uses
a running one.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core for the model, one for the log

from mainspring.events import Worker
from mainspring.features import Entity, FeatureView, Field, StreamSource
from mainspring.features.streaming import StreamIngest
from mainspring.project import Project
from mainspring.records import Event
from mainspring.serving import DataPlane
from mainspring.serving.asynchronous import AsyncInference
from mainspring.storage.base import EventLog

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CUSTOMERS = 10_000
FEATURES = 20
PRODUCE_BATCH = 5_000


def spend(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    amount = columns["amount"]
    return {"amount": amount, "log_amount": np.log1p(amount), "items": columns["items"] * 1.0}


def produce(log: EventLog, events: list[Event]) -> None:
    for i in range(0, len(events), PRODUCE_BATCH):
        log.produce(events[i : i + PRODUCE_BATCH])


def timed(worker: Worker) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this process (all threads) and the lag after the run."""
    started, cpu = time.perf_counter(), time.process_time()
    worker.run(until_idle=True)
    return time.perf_counter() - started, time.process_time() - cpu, worker.lag()


def bench_features(
    label: str, make_log: Callable[[], EventLog], n: int, workdir: Path, batch: int
) -> None:
    topic = f"payments-{uuid.uuid4().hex[:6]}"
    directory = workdir / topic
    directory.mkdir()
    customer = Entity("customer", {"customer_id": "int64"})
    view = FeatureView(
        "spend",
        customer,
        [Field("amount"), Field("log_amount"), Field("items")],
        StreamSource(topic, offline_path="streams/spend"),
        transformation=spend,
    )
    rng = np.random.default_rng(0)
    ids = rng.integers(CUSTOMERS, size=n).tolist()
    amounts = rng.integers(0, 10_000, size=n).tolist()
    events = [
        Event(
            topic,
            {"customer_id": c, "amount": a / 100, "items": i % 7},
            key=str(c),
            event_time=T0 + timedelta(microseconds=i),
        )
        for i, (c, a) in enumerate(zip(ids, amounts, strict=True))
    ]
    for offline in (True, False):
        with Project.open(directory) as project:
            log = make_log()
            log.create_topic(topic, partitions=4)
            if offline:
                produce(log, events)
            project.features.apply([customer, view], actor="bench")
            ledger = directory / f"ledger-{offline}.db"
            processor = StreamIngest(project.features, ["spend"], ledger=ledger, offline=offline)
            worker = Worker(
                log, processor, group=f"g-{offline}", batch_size=batch, poll_timeout_s=0.05
            )
            seconds, cpu, lag = timed(worker)
            applied = processor.applied()
            assert applied == n, (applied, n, worker.stats, lag, log.committed(worker.group, topic))
            processor.close()
            log.close()
        mode = "online + offline Parquet" if offline else "online only"
        print(
            f"{label:<9} feature updates ({mode:<24}) {n:>7} events  "
            f"{n / seconds:>9,.0f} events/s, {n / cpu:>9,.0f} per CPU-second  "
            f"(lag after: {lag}, batch {batch})"
        )


def train_model() -> Any:
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(5000, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    y = (x["f0"] + x["f1"] * x["f2"] + rng.normal(scale=0.5, size=5000) > 0).astype(int)
    return lgb.LGBMClassifier(n_estimators=200, num_leaves=31, verbose=-1).fit(x, y)


def bench_predictions(
    label: str, make_log: Callable[[], EventLog], n: int, workdir: Path, batch: int
) -> None:
    directory = workdir / f"predict-{uuid.uuid4().hex[:6]}"
    with Project.open(directory) as project:
        project.registry.register("risk", train_model(), actor="bench")
        plane = DataPlane(project.registry)
        plane.start()
        log = make_log()
        requests = f"requests-{uuid.uuid4().hex[:6]}"
        log.create_topic(requests, partitions=4)
        rng = np.random.default_rng(2)
        rows = rng.normal(size=(n, FEATURES)).round(4).tolist()
        names = [f"f{i}" for i in range(FEATURES)]
        produce(
            log,
            [
                Event(
                    requests,
                    {"id": f"r{i}", "inputs": dict(zip(names, row, strict=True))},
                    key=f"c{i % 1000}",
                )
                for i, row in enumerate(rows)
            ],
        )
        processor = AsyncInference(
            plane, log, "risk", requests=requests, predictions=requests + ".predictions"
        )
        seconds, cpu, lag = timed(Worker(log, processor, batch_size=batch, poll_timeout_s=0.05))
        out = sum(h - lo for lo, h in log.watermarks(requests + ".predictions").values())
        assert out >= n, (out, n)
        plane.close()
        log.close()
    print(
        f"{label:<9} async predictions (LightGBM 200x31, 20 feat.) {n:>7} requests "
        f"{n / seconds:>9,.0f} predictions/s, {n / cpu:>9,.0f} per CPU-second  "
        f"(lag after: {lag}, batch {batch})"
    )


def load_servers() -> Any:
    path = Path(__file__).resolve().parents[2] / "tests" / "servers.py"
    spec = importlib.util.spec_from_file_location("mainspring_test_servers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--feature-batch", type=int, default=5_000)
    parser.add_argument("--predict-batch", type=int, default=2_000)
    parser.add_argument("--kafka", action="store_true", help="start tests/servers.py's broker")
    parser.add_argument("--kafka-at", help="bootstrap servers of a running broker")
    parser.add_argument("--no-embedded", action="store_true", help="measure Kafka only")
    args = parser.parse_args()
    print(
        f"{platform.node()}: {os.cpu_count()} cpus, {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="mainspring-bench-"))
    from mainspring.storage.eventlog import SqliteEventLog

    def embedded() -> EventLog:
        return SqliteEventLog(workdir / "events.db")

    if not args.no_embedded:
        bench_features("embedded", embedded, args.events, workdir, args.feature_batch)
        bench_predictions("embedded", embedded, args.requests, workdir, args.predict_batch)
    server = None
    bootstrap = args.kafka_at
    if args.kafka and not bootstrap:
        server = load_servers().KafkaServer().start()
        bootstrap = server.bootstrap
    if bootstrap:
        from mainspring.storage.kafka import KafkaEventLog

        def kafka() -> EventLog:
            return KafkaEventLog(bootstrap)

        try:
            bench_features("kafka", kafka, args.events, workdir, args.feature_batch)
            bench_predictions("kafka", kafka, args.requests, workdir, args.predict_batch)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
