"""What only the embedded event log does: durability settings, retention, group commit, and
consumers in several processes."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mainspring.errors import ConfigError, InvalidInputError
from mainspring.records import Event, utcnow
from mainspring.storage import open_event_log
from mainspring.storage.eventfile import CannotAppend
from mainspring.storage.eventlog import SqliteEventLog


def test_file_is_wal_with_full_sync(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    mode = log._conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = log._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, sync) == ("wal", 2)
    log.close()


def test_acknowledged_events_survive_reopening(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    log.produce([Event("t", {"n": n}) for n in range(3)])
    log.close()
    again = SqliteEventLog(tmp_path / "e.db")
    assert [e.payload["n"] for e in again.read("t", 0, 0)] == [0, 1, 2]
    again.close()


def test_retention_by_size_keeps_the_newest(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    log.create_topic("t", retention_bytes=200)
    log.produce([Event("t", {"n": n, "pad": "x" * 40}) for n in range(20)])
    log.enforce_retention()  # produce runs it too, every few seconds
    low, high = log.watermarks("t")[0]
    assert high == 20 and 0 < low < 20
    kept = log.read("t", 0, 0, limit=100)
    assert [e.offset for e in kept] == list(range(low, 20))
    log.close()


def test_retention_by_age(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    log.create_topic("t", retention_ms=60_000)
    log.create_topic("forever")
    log.produce([Event("t", {}), Event("forever", {})])
    assert log.enforce_retention(utcnow() + timedelta(seconds=30)) == 0
    assert log.enforce_retention(utcnow() + timedelta(minutes=2)) == 1
    assert log.watermarks("t") == {0: (1, 1)}
    assert log.watermarks("forever") == {0: (0, 1)}
    log.close()


def test_concurrent_producers_share_transactions_and_lose_nothing(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    log.create_topic("t", partitions=2)

    def produce(worker: int) -> None:
        for n in range(25):
            log.produce([Event("t", {"w": worker, "n": n}, key=f"{worker}")])

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = [e for p in range(2) for e in log.read("t", p, 0, limit=1000)]
    assert len(events) == 150
    for worker in range(6):
        assert [e.payload["n"] for e in events if e.payload["w"] == worker] == list(range(25))
    log.close()


def test_bad_payload_is_refused_and_nothing_of_the_batch_is_written(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db")
    with pytest.raises(InvalidInputError, match="not JSON"):
        log.produce([Event("t", {"ok": 1}), Event("t", {"bad": float("nan")})])
    log.produce([Event("t", {"ok": 2})])
    assert [e.payload for e in log.read("t", 0, 0)] == [{"ok": 2}]
    log.close()


def test_open_by_uri(tmp_path: Path) -> None:
    log = open_event_log(f"sqlite:///{tmp_path}/e.db?session_timeout_s=2")
    assert isinstance(log, SqliteEventLog) and log.session_timeout_s == 2
    log.close()
    with pytest.raises(ConfigError, match="unknown options"):
        open_event_log(f"sqlite:///{tmp_path}/e.db?bogus=1")
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_event_log("nats://x")


def test_a_member_that_died_loses_its_partitions(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "e.db", session_timeout_s=1)
    log.create_topic("t", partitions=2)
    dead = log.consumer("g", ["t"])  # never polls again, never leaves: like kill -9
    alive = log.consumer("g", ["t"])
    assert len(alive.assignment()) < 2 or len(dead.assignment()) < 2
    # after the session timeout the live member holds every partition
    stale = sqlite3.connect(tmp_path / "e.db")
    stale.execute("UPDATE group_members SET heartbeat_ms = 0 WHERE member = ?", (dead.member,))
    stale.commit()
    stale.close()
    alive._heartbeat(force=True)
    assert alive.assignment() == [("t", 0), ("t", 1)]
    alive.close()
    log.close()


PRODUCER = """
import sys
from mainspring.records import Event
from mainspring.storage.eventlog import SqliteEventLog

log = SqliteEventLog(sys.argv[1])
n = 0
while True:
    log.produce([Event("t", {"n": n + i}) for i in range(20)])
    n += 20
    print(n, flush=True)  # acknowledged
"""


def test_what_was_acknowledged_survives_kill_9_of_the_producer(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    path = tmp_path / "e.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:
        acked = int(line)
        if acked >= 400:
            break
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    acked = max([acked, *(int(x) for x in rest.split())])
    log = SqliteEventLog(path)
    stored = log.read("t", 0, 0, limit=1_000_000)
    assert len(stored) >= acked
    assert [e.payload["n"] for e in stored] == list(range(len(stored)))
    log.close()


# ---- append_selected: events a SELECT over another SQLite file yields, copied inside SQLite

SELECT = (
    "SELECT n AS ord, topic, 'e-' || n AS id, 'k' AS key, n * 1000 AS event_time_us, "
    "'{}' AS headers, json_object('n', n) AS payload FROM source.src WHERE n > ? ORDER BY n"
)


def source_file(path: Path, topics: list[str | None]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE src (n INTEGER PRIMARY KEY, topic TEXT)")
        conn.executemany("INSERT INTO src VALUES (?, ?)", list(enumerate(topics, start=1)))
    return str(path)


def test_append_selected_copies_in_order_and_leaves_the_source_to_its_writers(
    tmp_path: Path,
) -> None:
    source = source_file(tmp_path / "source.db", ["a", "b", "a", "a"])
    log = SqliteEventLog(tmp_path / "events.db")
    log.produce([Event("a", {"n": 0})])  # offsets go on from what is there
    writable: list[bool] = []

    def probe() -> int:  # runs inside the copy's transaction: may another connection write?
        other = sqlite3.connect(source, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            writable.append(True)
        except sqlite3.OperationalError:
            writable.append(False)
        finally:
            other.close()
        return 0

    log._conn.create_function("probe", 0, probe)  # the log's own connection runs the SELECT
    probing = SELECT.replace("n AS ord", "n + probe() AS ord")
    assert log.append_selected(source, probing, (1,)) == (3, 4)  # rows 2, 3 and 4
    assert writable and all(writable)
    assert [(e.offset, e.payload) for e in log.read("a", 0, 0)] == [
        (0, {"n": 0}), (1, {"n": 3}), (2, {"n": 4})
    ]  # fmt: skip
    assert [e.id for e in log.read("a", 0, 1)] == ["e-3", "e-4"]
    assert [(e.offset, e.id, e.key, e.event_time) for e in log.read("b", 0, 0)] == [
        (0, "e-2", "k", datetime(1970, 1, 1, 0, 0, 0, 2000, tzinfo=UTC))
    ]
    assert log.append_selected(source, SELECT, (4,)) == (0, None)
    log.close()


@pytest.mark.parametrize(
    ("topics", "why"),
    [(["a", "wide"], "'wide' has 3 partitions"), (["a", None], "missing values")],
    ids=["several-partitions", "a-missing-topic"],
)
def test_append_selected_refuses_what_it_cannot_place_and_writes_nothing(
    tmp_path: Path, topics: list[str | None], why: str
) -> None:
    source = source_file(tmp_path / "source.db", topics)
    log = SqliteEventLog(tmp_path / "events.db")
    log.create_topic("wide", partitions=3)
    with pytest.raises(CannotAppend, match=why):
        log.append_selected(source, SELECT, (0,))
    assert log.topics() == ["wide"]  # not even topic "a" was created
    log.close()
