"""``mainspring serve`` deciding under load: acknowledged decisions survive SIGKILL of the whole
server, and the supervisor (not the workers) mirrors the decision log to the event log."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from mainspring.project import Project

pytest.importorskip("lightgbm")

from tests.servers import mainspring_serve
from tests.ui.conftest import DEPLOYMENT, build

ENTITIES = 40


def decide(port: int, customer: int) -> str | None:
    """One decision over HTTP: its id once answered 200, None when the server is gone."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = orjson.dumps({"entity": {"customer_id": customer}})
        conn.request("POST", f"/v1/decide/{DEPLOYMENT}", body, {"content-type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        assert answer.status == 200, data
        return str(orjson.loads(data)["decision_id"])
    except (ConnectionError, http.client.HTTPException, OSError):
        return None
    finally:
        conn.close()


def answering(port: int) -> bool:
    return decide(port, 0) is not None


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    build(tmp_path, ENTITIES)
    options = ("--grpc-port", "0", "--workers", "2")
    with mainspring_serve(tmp_path, *options, ready=answering) as (proc, port, _):
        yield proc, port, tmp_path


def test_no_acknowledged_decision_is_lost_when_the_server_is_killed(
    serving: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, root = serving
    acknowledged: list[str] = []
    stop = threading.Event()

    def load(k: int) -> None:
        i = k
        while not stop.is_set():
            made = decide(port, i % ENTITIES)
            if made is None:
                return  # the server is gone
            acknowledged.append(made)
            i += 8

    threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-stream: the threads are still sending
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 300
    with Project.open(root) as project:
        log = project.decisions
        missing = [d for d in acknowledged if not _logged(log, d)]
        assert missing == []
        assert log.verify().ok


def _logged(log: object, decision_id: str) -> bool:
    from mainspring.errors import NotFoundError

    try:
        log.get(decision_id)  # type: ignore[attr-defined]
    except NotFoundError:
        return False
    return True


def test_the_supervisor_mirrors_the_decision_log_to_the_event_log(
    serving: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, root = serving
    made = {decide(port, i) for i in range(30)}
    assert None not in made
    with Project.open(root) as project:
        assert project.mirror_decisions() is None  # another process (the supervisor) mirrors
        events = project.events
        deadline = time.monotonic() + 30
        published: set[str] = set()
        while not made <= published and time.monotonic() < deadline:
            published = {
                str(e.payload["record"]["id"])
                for p in range(events.partitions("decisions"))
                for e in events.read("decisions", p, 0, limit=10_000)
            }
            time.sleep(0.2)
        assert made <= published
    assert _holder(root / ".mainspring" / "decision-mirror.lock") == proc.pid  # not a worker


def _holder(lock: Path) -> int | None:
    """The pid holding a flock on ``lock`` (from /proc/locks), if any."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if "FLOCK" in parts and parts[-3].split(":")[-1] == str(inode):
            return int(parts[-4])
    return None
