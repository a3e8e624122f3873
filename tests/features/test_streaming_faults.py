"""A `mainspring worker features` process killed with SIGKILL mid-stream and restarted: every
event is applied once (the ledger's count, the offline rows' count and checksum), and the online
values are the latest of each entity; on the embedded log and on Kafka."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mainspring.features.definition_file import load_definitions
from mainspring.project import Project
from mainspring.records import Event

EVENTS = 3000
ENTITIES = 300
WAIT_S = 180.0
MAINSPRING = str(Path(sys.executable).parent / "mainspring")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

DEFINITIONS = """
import numpy as np
from mainspring import Entity, FeatureView, Field, StreamSource

customer = Entity("customer", join_keys={"customer_id": "int64"})


def doubled(columns):
    return {"amount2": columns["amount"] * 2.0}


spend = FeatureView(
    "spend", entity=customer, fields=[Field("amount2")],
    source=StreamSource("TOPIC", offline_path="streams/spend"), transformation=doubled)
"""


def checksum(rows: list[tuple[int, int, float]]) -> str:
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(f"{row}\n".encode())
    return digest.hexdigest()


def applied(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(ledger, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM mainspring_processed").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def start(project: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MAINSPRING_EVENTS": url}
    with (project / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as out:
        return subprocess.Popen(
            [
                MAINSPRING,
                "-C",
                str(project),
                "worker",
                "features",
                "spend",
                "--batch-size",
                "40",
                *extra,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def kill_and_restart(tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"spend-{uuid.uuid4().hex[:8]}"
    (tmp_path / "features.py").write_text(DEFINITIONS.replace("TOPIC", topic))
    monkeypatch.setenv("MAINSPRING_EVENTS", url)
    with Project.open(tmp_path) as project:
        project.features.apply(load_definitions(tmp_path / "features.py"), actor="alice")
        project.events.create_topic(topic, partitions=3)
        events = [
            Event(
                topic,
                {"customer_id": n % ENTITIES, "amount": float(n)},
                key=str(n % ENTITIES),
                event_time=T0 + timedelta(seconds=n),
            )
            for n in range(EVENTS)
        ]
        project.events.produce(events)
    ledger = tmp_path / ".mainspring" / "streams.db"

    first = start(tmp_path, url)
    wait_for(lambda: applied(ledger) >= 200, "the first worker to make progress")
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    killed_at = applied(ledger)

    second = start(tmp_path, url, "--until-idle")
    second.wait(WAIT_S * 2)
    logs = "\n".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))
    assert second.returncode == 0, logs

    assert killed_at < EVENTS, "the worker was killed mid-stream"
    assert applied(ledger) == EVENTS  # every event, none twice
    offline = pd.read_parquet(tmp_path / "streams" / "spend")
    assert len(offline) == EVENTS
    got = checksum(
        [
            (int(c), int(t.timestamp()), float(a))
            for c, t, a in zip(
                offline["customer_id"], offline["event_timestamp"], offline["amount"], strict=True
            )
        ]
    )
    want = checksum(
        [
            (n % ENTITIES, int((T0 + timedelta(seconds=n)).timestamp()), float(n))
            for n in range(EVENTS)
        ]
    )
    assert got == want
    with Project.open(tmp_path) as project:
        project.features.load(load_definitions(tmp_path / "features.py"))
        ids = list(range(ENTITIES))
        online = project.features.get_online_features(["spend"], {"customer_id": ids})
        last = {n % ENTITIES: n for n in range(EVENTS)}
        assert online.values["amount2"] == [2.0 * last[c] for c in ids]


def test_feature_worker_killed_mid_stream_on_the_embedded_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}?session_timeout_s=2"
    kill_and_restart(tmp_path, url, monkeypatch)


def test_feature_worker_killed_mid_stream_on_kafka(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_and_restart(tmp_path, f"kafka://{kafka_bootstrap}?session_timeout_ms=6000", monkeypatch)
