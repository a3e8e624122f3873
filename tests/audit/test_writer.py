"""The group committer: the log's own checkpoints of SQLite's write-ahead log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests.audit.conftest import decision

from mainspring.audit import DecisionLog, writer
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
    store.close()
