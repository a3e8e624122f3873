"""The group committer: asyncio callers' batches, and the log's own checkpoints of SQLite's
write-ahead log."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from tests.audit.conftest import decision

from mainspring.audit import AuditMetrics, DecisionLog, writer
from mainspring.errors import ConflictError, StorageError
from mainspring.storage import open_metadata_store
from mainspring.storage.sql import SqlMetadataStore


def test_the_writer_checkpoints_the_wal_on_a_thread_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "CHECKPOINT_EVERY", 50)
    path = tmp_path / "m.db"
    store = open_metadata_store(f"sqlite:///{path}")
    assert isinstance(store, SqlMetadataStore)
    with DecisionLog(store, durability="process") as log:
        log.append(decision(0))
        before = os.path.getsize(path)
        for i in range(1, 49):
            log.append(decision(i))
        time.sleep(0.2)
        assert os.path.getsize(path) == before  # 49 records: no commit copied the log over
        log.append(decision(49))
        deadline = time.monotonic() + 10
        while os.path.getsize(path) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.getsize(path) > before  # the 50th woke the checkpoint thread
        assert log.count() == 50
        checkpointer = log._writer._checkpointer
        assert checkpointer is not None and checkpointer.native_id is not None
        if sys.platform == "linux":  # its nice value: requests go first
            stat = Path(f"/proc/self/task/{checkpointer.native_id}/stat").read_text()
            nice = int(stat.rsplit(")", 1)[1].split()[16])
            assert nice == min(19, os.nice(0) + writer.BACKGROUND_NICE)
    store.close()


def test_asyncio_callers_get_their_own_results_and_errors(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlMetadataStore)

    async def main(log: DecisionLog) -> list[object]:
        clash = decision(1, decision="decline")  # the id of decision 1, other content
        return await asyncio.gather(
            *(log.append_async(decision(i)) for i in range(1, 11)),
            log.append_async(clash),
            return_exceptions=True,
        )

    with DecisionLog(store, durability="process") as log:
        results = asyncio.run(main(log))
        assert [r.id for r in results[:10]] == [f"d-{i}" for i in range(1, 11)]  # type: ignore[attr-defined]
        assert isinstance(results[10], ConflictError)
        assert log.count() == 10
    store.close()


def test_a_cancelled_asyncio_caller_still_has_its_record_committed(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlMetadataStore)

    async def main(log: DecisionLog) -> None:
        task = asyncio.ensure_future(log.append_async(decision(1)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await log.append_async(decision(2))  # the writer and the loop carry on

    with DecisionLog(store, durability="process") as log:
        asyncio.run(main(log))
        assert sorted(d.id for d in log.list()) == ["d-1", "d-2"]
    store.close()


def test_what_a_loop_submits_in_one_pass_is_committed_together(tmp_path: Path) -> None:
    """Appends made in one pass of the event loop reach the writer together: one commit, not
    one per record (a writer woken by the first would commit it alone)."""
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlMetadataStore)
    registry = CollectorRegistry()

    async def one(log: DecisionLog, i: int) -> None:
        time.sleep(0.002)  # deciding lets go of the GIL (a feature read): the writer could run
        await log.append_async(decision(i))

    async def main(log: DecisionLog) -> None:
        await asyncio.gather(*(one(log, i) for i in range(1, 21)))

    with DecisionLog(store, durability="process", metrics=AuditMetrics(registry)) as log:
        asyncio.run(main(log))
        assert log.count() == 20
    assert registry.get_sample_value("mainspring_decision_log_batch_records_sum") == 20
    assert registry.get_sample_value("mainspring_decision_log_batch_records_count") == 1
    store.close()


def test_appends_handed_over_after_the_log_closed_fail_plainly(tmp_path: Path) -> None:
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlMetadataStore)
    log = DecisionLog(store, durability="process")

    async def main() -> None:
        task = asyncio.ensure_future(log.append_async(decision(1)))
        await asyncio.sleep(0)  # the append waits for the end of the loop's pass
        log.close()
        with pytest.raises(StorageError, match="closed"):
            await task

    asyncio.run(main())
    assert DecisionLog(store).count() == 0
    store.close()


def test_on_sqlite_an_event_loop_commits_its_batches_itself(tmp_path: Path) -> None:
    """An event loop commits what it appended in a pass on its own thread; while another thread
    is committing, it hands the batch to the writer thread instead and does not wait."""
    store = open_metadata_store(f"sqlite:///{tmp_path / 'm.db'}")
    assert isinstance(store, SqlMetadataStore)
    committers: list[int] = []

    with DecisionLog(store, durability="process") as log:
        committer = log._writer
        assert committer.commits_on_loop
        write_batch = committer._write_batch

        def recorded(tx: object, ops: list[writer.Op]) -> list[object]:
            committers.extend(threading.get_ident() for _ in ops)
            return write_batch(tx, ops)  # type: ignore[arg-type]

        committer._write_batch = recorded

        async def main() -> int:
            await asyncio.gather(*(log.append_async(decision(i)) for i in range(1, 4)))
            committer._leading.acquire()  # as if another thread were committing
            asyncio.get_running_loop().call_later(0.05, committer._leading.release)
            await log.append_async(decision(4))
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        assert committers[:3] == [loop_thread] * 3
        assert committers[3] != loop_thread  # the writer thread's
        assert log.count() == 4
    store.close()


def test_a_loop_hands_its_batch_on_when_another_kind_of_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    """A SQLite lock held by a writer outside the decision logs (a migration, say) is waited for
    by the writer thread, not by the event loop, and the record is committed once."""
    path = tmp_path / "m.db"
    store = open_metadata_store(f"sqlite:///{path}")
    assert isinstance(store, SqlMetadataStore)
    committers: list[int] = []
    with DecisionLog(store, durability="process") as log:
        committer = log._writer
        write_batch = committer._write_batch

        def recorded(tx: object, ops: list[writer.Op]) -> list[object]:
            committers.append(threading.get_ident())
            return write_batch(tx, ops)  # type: ignore[arg-type]

        committer._write_batch = recorded
        log.append(decision(0))  # the writer's connection is open
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")

        async def main() -> int:
            asyncio.get_running_loop().call_later(0.2, other.execute, "ROLLBACK")
            await log.append_async(decision(1))
            return threading.get_ident()

        loop_thread = asyncio.run(main())
        # the loop's try wrote nothing; the writer thread committed the record once
        assert len(committers) == 2 and committers[1] != loop_thread
        assert log.count() == 2
        other.close()
    store.close()
