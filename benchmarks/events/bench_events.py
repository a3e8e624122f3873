"""Events/s for produce -> consume on the embedded log (and on Kafka or Redis Streams when given a
server).

Run: python benchmarks/events/bench_events.py [--events N] [--kafka 127.0.0.1:9092]
     [--redis redis://127.0.0.1:6379/0]

Three numbers per backend: produce (batches of 500, each batch durable on return), consume (a
consumer group polling batches of 500 and committing each), and consume + materialize (a Worker
keeping the latest payload per key in a SQLite table, each event once).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mainspring.events import Materialize, Worker
from mainspring.records import Event
from mainspring.storage.base import EventLog
from mainspring.storage.eventlog import SqliteEventLog

BATCH = 500


def bench(name: str, make_log: Callable[[], EventLog], n: int, workdir: Path) -> None:
    log = make_log()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    log.create_topic(topic, partitions=4)
    events = [
        Event(topic, {"card": n % 1000, "amount": n * 0.37, "merchant": "m-17"}, key=f"c{n % 1000}")
        for n in range(n)
    ]
    started = time.perf_counter()
    for i in range(0, n, BATCH):
        log.produce(events[i : i + BATCH])
    produce_s = time.perf_counter() - started

    consumer = log.consumer("plain", [topic])
    started = time.perf_counter()
    seen = 0
    while seen < n:
        batch = consumer.poll(BATCH, 1.0)
        consumer.commit(batch)
        seen += len(batch)
    consume_s = time.perf_counter() - started
    consumer.close()

    view = Materialize(workdir / f"{topic}.db", "latest", [topic])
    worker = Worker(log, view, batch_size=BATCH)
    started = time.perf_counter()
    worker.run(until_idle=True)
    materialize_s = time.perf_counter() - started
    lag = worker.lag()
    view.close()
    log.close()
    print(
        f"{name:<9} {n:>7} events  produce {n / produce_s:>9,.0f}/s"
        f"  consume {n / consume_s:>9,.0f}/s"
        f"  consume+materialize {n / materialize_s:>9,.0f}/s  (lag after: {lag})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--kafka", help="bootstrap servers of a Kafka broker to measure too")
    parser.add_argument("--redis", help="redis://host:port/db of a Redis server to measure too")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mainspring-bench-"))
    bench("embedded", lambda: SqliteEventLog(workdir / "events.db"), args.events, workdir)
    if args.kafka:
        from mainspring.storage.kafka import KafkaEventLog

        bench("kafka", lambda: KafkaEventLog(args.kafka), args.events, workdir)
    if args.redis:
        from mainspring.storage.redisstreams import RedisStreamsEventLog

        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        bench(
            "redis", lambda: RedisStreamsEventLog(args.redis, prefix=prefix), args.events, workdir
        )


if __name__ == "__main__":
    main()
