"""Faults: a worker killed with SIGKILL mid-stream and restarted processes every event exactly once
(on the embedded log, on Kafka and on Redis Streams); a Kafka broker or a Redis server that is
down at start or goes down mid-run makes workers retry with backoff and resume, and producers fail
loudly. Each test runs over every backend it applies to (the ``backend`` and ``outage``
fixtures)."""

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
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass
class Backend:
    """An event log in the test process, and what a worker process opens it with."""

    log: EventLog
    #: the URI a worker opens (short sessions, so a killed member's partitions move on soon)
    url: str


def streams_url(redis_url: str, options: str = "") -> str:
    return redis_url.replace("redis://", "redis+streams://", 1) + options


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("kafka", marks=pytest.mark.service),
        pytest.param("redis-streams", marks=pytest.mark.service),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    log: EventLog
    if request.param == "embedded":
        from mainspring.storage.eventlog import SqliteEventLog

        path = tmp_path / "events.db"
        log, url = SqliteEventLog(path), f"sqlite:///{path}?session_timeout_s=2"
    elif request.param == "kafka":
        from mainspring.storage.kafka import KafkaEventLog

        bootstrap = request.getfixturevalue("kafka_bootstrap")
        log, url = KafkaEventLog(bootstrap), f"kafka://{bootstrap}?session_timeout_ms=6000"
    else:
        from mainspring.storage.redisstreams import RedisStreamsEventLog

        redis_url = request.getfixturevalue("redis_url")
        log, url = RedisStreamsEventLog(redis_url), streams_url(redis_url, "?session_timeout_s=2")
    yield Backend(log, url)
    log.close()


def test_worker_killed_mid_stream_and_restarted_processes_every_event_once(
    backend: Backend, tmp_path: Path
) -> None:
    topic = f"faults-{uuid.uuid4().hex[:8]}"
    backend.log.create_topic(topic, partitions=3)
    events, digest = expected(topic)
    backend.log.produce(events)
    sink = tmp_path / "sink.db"

    first = start_worker(tmp_path, backend.url, topic, sink)
    wait_for(lambda: len(sink_rows(sink)) >= 200, "the first worker to make progress")
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    killed_at = len(sink_rows(sink))

    second = start_worker(tmp_path, backend.url, topic, sink, "--until-idle")
    second.wait(WAIT_S * 2)
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))
    assert second.returncode == 0, logs

    rows = sink_rows(sink)
    assert killed_at < EVENTS, "the worker was killed mid-stream"
    assert len(rows) == EVENTS  # every event processed
    assert all(applied == 1 for _, _, applied in rows)  # none took effect twice
    assert checksum([(k, p) for k, p, _ in rows]) == digest


def unreachable(name: str) -> tuple[EventLog, str]:
    """A log of backend ``name`` on a port nothing listens on, and how its errors name it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here
    if name == "kafka":
        from mainspring.storage.kafka import KafkaEventLog

        where = f"127.0.0.1:{port}"
        return KafkaEventLog(
            where, request_timeout_s=0.5, delivery_timeout_s=1
        ), f"Kafka at {where}"
    from mainspring.storage.redisstreams import RedisStreamsEventLog

    url = f"redis://127.0.0.1:{port}/0"
    return RedisStreamsEventLog(url, delivery_timeout_s=0.5), f"Redis at 127.0.0.1:{port}/0"


@pytest.mark.parametrize("name", ["kafka", "redis-streams"])
def test_worker_retries_while_the_backend_is_unreachable_and_stops_cleanly(
    name: str, tmp_path: Path
) -> None:
    log, where = unreachable(name)
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
    with pytest.raises(StorageError, match=where):
        log.produce([Event("orders", {"n": 1})])  # loud, not silent
    view.close()
    log.close()


@dataclass
class Outage:
    """A log on a server of its own that the test may ``kill()`` and ``restart()``."""

    log: EventLog
    server: Any
    #: whether the worker must have seen the outage as errors it retried (librdkafka reconnects
    #: by itself, so a Kafka consumer may only see empty polls)
    retries_seen: bool


@pytest.fixture(
    params=[
        pytest.param("kafka", marks=pytest.mark.service),
        pytest.param("redis-streams", marks=pytest.mark.service),
    ]
)
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    if request.param == "kafka":
        from mainspring.storage.kafka import KafkaEventLog

        server = request.getfixturevalue("kafka_server")
        found = Outage(KafkaEventLog(server.bootstrap, delivery_timeout_s=3), server, False)
    else:
        from mainspring.storage.redisstreams import RedisStreamsEventLog

        server = request.getfixturevalue("durable_redis_server")
        found = Outage(RedisStreamsEventLog(server.url(), delivery_timeout_s=1), server, True)
    yield found
    found.log.close()


def test_server_going_down_mid_run(outage: Outage, tmp_path: Path) -> None:
    log = outage.log
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
        outage.server.kill()
        with pytest.raises(StorageError, match="did not acknowledge"):
            log.produce(events[EVENTS // 2 : EVENTS // 2 + 5])  # loud while the server is down
        outage.server.restart()
        log.produce(events[EVENTS // 2 :])  # again: the sink dedupes any that did land
        wait_for(lambda: len(view.rows()) >= EVENTS, "the worker to resume and catch up")
        wait_for(lambda: worker.lag() == 0, "the worker to commit everything")
    finally:
        worker.stop()
        thread.join(WAIT_S)
    assert not thread.is_alive()
    if outage.retries_seen:
        assert worker.stats.retries > 0  # it did see the server go away
    rows = view.rows()
    assert len(rows) == EVENTS and all(applied == 1 for _, _, applied in rows)
    pairs = [(k, json.dumps(p, separators=(",", ":"), sort_keys=True)) for k, p, _ in rows]
    assert checksum(pairs) == digest
    view.close()
