"""Faults: a worker killed with SIGKILL mid-stream and restarted processes every event exactly once
(on the embedded log, on Kafka and on Redis Streams); a Kafka broker or a Redis server that is
down at start or goes down mid-run makes workers retry with backoff and resume, and producers fail
loudly."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from mainspring.errors import StorageError
from mainspring.events import Backoff, Materialize, Worker
from mainspring.records import Event
from mainspring.storage.base import EventLog

EVENTS = 4000
#: Generous bound for waits (a loaded CI machine); the tests never assert on durations.
WAIT_S = 180.0
MAINSPRING = str(Path(sys.executable).parent / "mainspring")


def checksum(pairs: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for key, payload in sorted(pairs):
        digest.update(f"{key}={payload}\n".encode())
    return digest.hexdigest()


def expected(topic: str) -> tuple[list[Event], str]:
    events = [Event(topic, {"n": n, "amount": n * 3 % 101}, key=f"k{n}") for n in range(EVENTS)]
    pairs = [
        (e.key or "", json.dumps(e.payload, separators=(",", ":"), sort_keys=True)) for e in events
    ]
    return events, checksum(pairs)


def sink_rows(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            return conn.execute("SELECT key, payload, applied FROM view").fetchall()
    except sqlite3.OperationalError:  # the table is not there yet
        return []


def start_worker(
    project: Path, url: str, topic: str, sink: Path, *extra: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAINSPRING_EVENTS": url}
    with (project / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as log:
        return subprocess.Popen(
            [
                MAINSPRING,
                "-C",
                str(project),
                "worker",
                "materialize",
                "--topic",
                topic,
                "--into",
                str(sink),
                "--table",
                "view",
                "--batch-size",
                "40",
                *extra,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def kill_and_restart(log: EventLog, url: str, tmp_path: Path) -> None:
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    log.create_topic(topic, partitions=3)
    events, digest = expected(topic)
    log.produce(events)
    sink = tmp_path / "sink.db"

    first = start_worker(tmp_path, url, topic, sink)
    wait_for(lambda: len(sink_rows(sink)) >= 200, "the first worker to make progress")
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    killed_at = len(sink_rows(sink))

    second = start_worker(tmp_path, url, topic, sink, "--until-idle")
    second.wait(WAIT_S * 2)
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))
    assert second.returncode == 0, logs

    rows = sink_rows(sink)
    assert killed_at < EVENTS, "the worker was killed mid-stream"
    assert len(rows) == EVENTS  # every event processed
    assert all(applied == 1 for _, _, applied in rows)  # none took effect twice
    assert checksum([(k, p) for k, p, _ in rows]) == digest


def test_worker_killed_mid_stream_on_the_embedded_log(tmp_path: Path) -> None:
    from mainspring.storage.eventlog import SqliteEventLog

    path = tmp_path / "events.db"
    log = SqliteEventLog(path)
    kill_and_restart(log, f"sqlite:///{path}?session_timeout_s=2", tmp_path)
    log.close()


def test_worker_killed_mid_stream_on_kafka(kafka_bootstrap: str, tmp_path: Path) -> None:
    from mainspring.storage.kafka import KafkaEventLog

    log = KafkaEventLog(kafka_bootstrap)
    kill_and_restart(log, f"kafka://{kafka_bootstrap}?session_timeout_ms=6000", tmp_path)
    log.close()


def test_worker_retries_while_kafka_is_unreachable_and_stops_cleanly(tmp_path: Path) -> None:
    from mainspring.storage.kafka import KafkaEventLog

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    log = KafkaEventLog(f"127.0.0.1:{port}", request_timeout_s=0.5, delivery_timeout_s=1)
    view = Materialize(tmp_path / "view.db", "view", ["orders"])
    worker = Worker(log, view, backoff=Backoff(initial_s=0.01, max_s=0.05))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.stats.retries >= 2, "the worker to retry")
    finally:
        worker.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    with pytest.raises(StorageError, match=f"Kafka at 127.0.0.1:{port}"):
        log.produce([Event("orders", {"n": 1})])  # loud, not silent
    view.close()
    log.close()


def test_kafka_going_down_mid_run(kafka_server: Any, tmp_path: Path) -> None:
    from mainspring.storage.kafka import KafkaEventLog

    log = KafkaEventLog(kafka_server.bootstrap, delivery_timeout_s=3)
    topic = f"down-{uuid.uuid4().hex[:8]}"
    log.create_topic(topic, partitions=2)
    events, digest = expected(topic)
    log.produce(events[: EVENTS // 2])
    view = Materialize(tmp_path / "view.db", "view", [topic])
    worker = Worker(log, view, batch_size=40, backoff=Backoff(initial_s=0.05, max_s=1.0))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: len(view.rows()) >= 100, "the worker to make progress")
        kafka_server.kill()
        with pytest.raises(StorageError, match="did not acknowledge"):
            log.produce(events[EVENTS // 2 : EVENTS // 2 + 5])  # loud while the broker is down
        kafka_server.restart()
        log.produce(events[EVENTS // 2 :])  # again: the sink dedupes any that did land
        wait_for(lambda: len(view.rows()) >= EVENTS, "the worker to resume and catch up")
        wait_for(lambda: worker.lag() == 0, "the worker to commit everything")
    finally:
        worker.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    rows = view.rows()
    assert len(rows) == EVENTS and all(applied == 1 for _, _, applied in rows)
    pairs = [(k, json.dumps(p, separators=(",", ":"), sort_keys=True)) for k, p, _ in rows]
    assert checksum(pairs) == digest
    view.close()
    log.close()


def streams_url(redis_url: str, options: str = "") -> str:
    return redis_url.replace("redis://", "redis+streams://", 1) + options


def test_worker_killed_mid_stream_on_redis_streams(redis_url: str, tmp_path: Path) -> None:
    from mainspring.storage.redisstreams import RedisStreamsEventLog

    log = RedisStreamsEventLog(redis_url)
    kill_and_restart(log, streams_url(redis_url, "?session_timeout_s=2"), tmp_path)
    log.close()


def test_worker_retries_while_redis_is_unreachable_and_stops_cleanly(tmp_path: Path) -> None:
    from mainspring.storage.redisstreams import RedisStreamsEventLog

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    log = RedisStreamsEventLog(f"redis://127.0.0.1:{port}/0", delivery_timeout_s=0.5)
    view = Materialize(tmp_path / "view.db", "view", ["orders"])
    worker = Worker(log, view, backoff=Backoff(initial_s=0.01, max_s=0.05))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: worker.stats.retries >= 2, "the worker to retry")
    finally:
        worker.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    with pytest.raises(StorageError, match=f"Redis at 127.0.0.1:{port}/0"):
        log.produce([Event("orders", {"n": 1})])  # loud, not silent
    view.close()
    log.close()


def test_redis_going_down_mid_run(durable_redis_server: Any, tmp_path: Path) -> None:
    from mainspring.storage.redisstreams import RedisStreamsEventLog

    server = durable_redis_server
    log = RedisStreamsEventLog(server.url(), delivery_timeout_s=1)
    topic = f"down-{uuid.uuid4().hex[:8]}"
    log.create_topic(topic, partitions=2)
    events, digest = expected(topic)
    log.produce(events[: EVENTS // 2])
    view = Materialize(tmp_path / "view.db", "view", [topic])
    worker = Worker(log, view, batch_size=40, backoff=Backoff(initial_s=0.05, max_s=1.0))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        wait_for(lambda: len(view.rows()) >= 100, "the worker to make progress")
        server.kill()
        with pytest.raises(StorageError, match="did not acknowledge"):
            log.produce(events[EVENTS // 2 : EVENTS // 2 + 5])  # loud while the server is down
        server.restart()
        log.produce(events[EVENTS // 2 :])
        wait_for(lambda: len(view.rows()) >= EVENTS, "the worker to resume and catch up")
        wait_for(lambda: worker.lag() == 0, "the worker to commit everything")
    finally:
        worker.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    assert worker.stats.retries > 0  # it did see the server go away
    rows = view.rows()
    assert len(rows) == EVENTS and all(applied == 1 for _, _, applied in rows)
    pairs = [(k, json.dumps(p, separators=(",", ":"), sort_keys=True)) for k, p, _ in rows]
    assert checksum(pairs) == digest
    view.close()
    log.close()
