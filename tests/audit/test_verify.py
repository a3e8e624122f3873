"""verify() finds tampering done with database access: altered, deleted, re-linked, truncated."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from tests.audit.conftest import decision

from mainspring.audit import DecisionLog
from mainspring.audit.entries import row_hash
from mainspring.records import Outcome
from mainspring.storage.memory import memory_event_log
from mainspring.storage.sql import SqlMetadataStore


def execute(store: SqlMetadataStore, statement: str, **params: Any) -> None:
    with store.write() as conn:
        conn.execute(sa.text(statement), params)


def drop_triggers(store: SqlMetadataStore) -> None:
    """What someone with database access does first: remove the append-only triggers."""
    if store.dialect == "postgresql":
        execute(store, "DROP TRIGGER decision_log_append_only ON decision_log")
    else:
        execute(store, "DROP TRIGGER decision_log_no_update")
        execute(store, "DROP TRIGGER decision_log_no_delete")


@pytest.fixture
def log(store: SqlMetadataStore) -> Any:
    with DecisionLog(store) as log:
        for i in range(1, 6):
            log.append(decision(i))
        log.attach_outcome(Outcome("d-2", 1, id="o-2"))
        assert log.verify().ok
        drop_triggers(store)
        yield log


def test_an_altered_record_is_named(log: DecisionLog, store: SqlMetadataStore) -> None:
    execute(
        store,
        "UPDATE decision_log SET body = replace(body, '\"approve\"', '\"decline\"') WHERE seq = 3",
    )
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.subject) == (False, 3, "d-3")
    assert "altered" in result.problem
    assert result.checked == 2


def test_an_altered_column_is_named(log: DecisionLog, store: SqlMetadataStore) -> None:
    execute(store, "UPDATE decision_log SET model = 'other' WHERE seq = 4")
    result = log.verify()
    assert (result.first_bad_seq, result.subject) == (4, "d-4")


def test_a_deleted_record_is_named(log: DecisionLog, store: SqlMetadataStore) -> None:
    execute(store, "DELETE FROM decision_log WHERE seq = 2")
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "missing" in result.problem


def test_a_relinked_record_is_named(log: DecisionLog, store: SqlMetadataStore) -> None:
    """Remove record 3, then make record 4 point at record 2 with a freshly computed hash."""
    with store.read() as conn:
        two, four = (
            conn.execute(sa.text("SELECT * FROM decision_log WHERE seq = :s"), {"s": s}).one()
            for s in (2, 4)
        )
    execute(store, "DELETE FROM decision_log WHERE seq = 3")
    forged = dict(four._mapping)
    forged["prev_hash"] = two.hash

    class Row:
        pass

    row = Row()
    row.__dict__.update(forged)
    execute(
        store,
        "UPDATE decision_log SET prev_hash = :p, hash = :h WHERE seq = 4",
        p=two.hash,
        h=row_hash(row),
    )
    result = log.verify()
    assert (result.ok, result.first_bad_seq) == (False, 3)  # the gap is found first

    # the same re-link without the gap: renumber is impossible to hide, so forge in place
    execute(store, "UPDATE decision_log SET seq = 3 WHERE seq = 4")
    result = log.verify()
    assert (result.ok, result.first_bad_seq, result.subject) == (False, 3, "d-4")


def test_a_truncated_tail_is_found_through_the_outbox_cursor(store: SqlMetadataStore) -> None:
    events = memory_event_log()
    with DecisionLog(store, events=events) as log:
        for i in range(1, 5):
            log.append(decision(i))
        assert log.publish_pending() >= 0
        assert log.mirror is not None and log.mirror.cursor() == 4
        drop_triggers(store)
        execute(store, "DELETE FROM decision_log WHERE seq >= 3")
        result = log.verify()
        assert (result.ok, result.first_bad_seq) == (False, 3)
        assert "published" in result.problem
