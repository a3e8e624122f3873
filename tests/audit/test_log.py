"""DecisionLog on SQLite and PostgreSQL: appending, reading, group commit, outcomes, reviews."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from tests.audit.conftest import T0, decision

from mainspring.audit import AuditMetrics, DecisionLog, Durability
from mainspring.errors import ConflictError, InvalidInputError, NotFoundError
from mainspring.records import Outcome, ReviewAction
from mainspring.storage.sql import DriverTx, SqlMetadataStore


def test_append_returns_the_committed_record_and_get_reads_it_back(
    store: SqlMetadataStore,
) -> None:
    with DecisionLog(store) as log:
        first = log.append(decision(1))
        second = log.append(decision(2))
        assert (first.seq, second.seq) == (1, 2)
        assert second.prev_hash == first.hash
        stored = log.get("d-2")
        assert stored == second
        assert stored.decision == decision(2)
        assert log.count() == 2
        with pytest.raises(NotFoundError, match="decision 'nope' does not exist"):
            log.get("nope")


def test_list_and_iterate_filter_by_deployment_time_and_model(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:
        for i in range(1, 7):
            log.append(decision(i, deployment="credit" if i <= 4 else "fraud"))
        log.append(decision(7, model=None, version=None, rule="blocklist"))
        assert [d.id for d in log.list(limit=3)] == ["d-7", "d-6", "d-5"]
        assert [d.id for d in log.list(deployment="fraud")] == ["d-6", "d-5"]
        window = log.list(since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=4))
        assert [d.id for d in window] == ["d-3", "d-2"]  # since inclusive, until exclusive
        assert len(log.list(model="credit-risk")) == 6
        replay = log.iterate(deployment="credit", since=T0 + timedelta(minutes=3))
        assert [d.id for d in replay] == ["d-3", "d-4", "d-7"]
        with pytest.raises(InvalidInputError) as caught:
            log.list(since=T0.replace(tzinfo=None))
        assert caught.value.field == "since"
        with pytest.raises(InvalidInputError) as caught:
            log.list(limit=0)
        assert caught.value.field == "limit"


def test_appending_the_same_decision_again_is_idempotent_other_content_conflicts(
    store: SqlMetadataStore,
) -> None:
    with DecisionLog(store) as log:
        first = log.append(decision(1))
        assert log.append(decision(1)) == first
        with pytest.raises(ConflictError, match="'d-1' is already logged"):
            log.append(decision(1, decision="decline"))
        assert log.count() == 1
        assert log.verify().ok


def test_bad_decisions_are_refused_before_anything_is_written(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:
        for changes, field in [
            ({"id": ""}, "id"),
            ({"id": "x" * 65}, "id"),
            ({"deployment": " "}, "deployment"),
            ({"raw": float("nan")}, "decision"),
        ]:
            with pytest.raises(InvalidInputError) as caught:
                log.append(decision(1, **changes))
            assert caught.value.field == field
        assert log.count() == 0


def test_the_database_refuses_to_change_or_remove_records(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:
        log.append(decision(1))
    for statement in (
        "UPDATE decision_log SET body = '{}' WHERE seq = 1",
        "DELETE FROM decision_log WHERE seq = 1",
    ):
        with pytest.raises(Exception, match="append-only"), store.write() as conn:
            conn.execute(sa.text(statement))


class HeldWriter:
    """Keeps the writer waiting for the database lock inside its first transaction, so that
    what is submitted meanwhile queues up and forms the next batch."""

    def __init__(self, log: DecisionLog, store: SqlMetadataStore) -> None:
        self.log, self.store = log, store
        self.entered = threading.Event()
        writer = log._writer
        original = writer._transaction

        def spy(batch: list[Any], wait_s: float | None = None) -> Any:
            self.entered.set()
            return original(batch, wait_s)

        writer._transaction = spy  # type: ignore[method-assign]

    def __enter__(self) -> HeldWriter:
        self.blocker = self.store.engine.connect()
        self.tx = self.blocker.begin()
        if self.store.dialect == "sqlite":
            self.blocker.exec_driver_sql("DELETE FROM decision_outbox")  # the write lock
        else:
            self.blocker.exec_driver_sql("LOCK TABLE decision_log IN EXCLUSIVE MODE")
        self.first = self.log._writer.submit("decision", self.log._prepare(decision(1)))
        assert self.entered.wait(60), "the writer did not start its transaction"
        return self

    def wait_queued(self, n: int) -> None:
        deadline = time.monotonic() + 60
        while self.log._writer._queue.qsize() < n:
            assert time.monotonic() < deadline, "appends did not reach the writer's queue"
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self.tx.commit()
        self.blocker.close()
        assert self.first.result().seq == 1


def test_concurrent_appends_are_group_committed(store: SqlMetadataStore) -> None:
    """While the writer waits for the database lock with one append, 31 threads append: once
    the lock is free the first commits alone and the other 31 together, in one transaction."""
    metrics = AuditMetrics(CollectorRegistry())
    log = DecisionLog(store, metrics=metrics)
    results: dict[int, Any] = {}

    def append(i: int) -> None:
        results[i] = log.append(decision(i))

    threads = [threading.Thread(target=append, args=(i,)) for i in range(2, 33)]
    with HeldWriter(log, store) as held:
        for t in threads:
            t.start()
        held.wait_queued(31)
    for t in threads:
        t.join()
    batches = metrics.registry.get_sample_value("mainspring_decision_log_batch_records_count")
    records = metrics.registry.get_sample_value("mainspring_decision_log_batch_records_sum")
    assert (batches, records) == (2, 32)
    assert sorted(r.seq for r in results.values()) == list(range(2, 33))
    assert log.verify().ok and log.verify().checked == 32
    log.close()


def test_appends_from_32_threads_all_commit_once_in_one_chain(store: SqlMetadataStore) -> None:
    with DecisionLog(store, durability="process") as log:

        def work(t: int) -> None:
            for i in range(10):
                log.append(decision(t * 100 + i))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert log.count() == 320
        assert log.verify().ok


def test_an_append_with_no_commit_under_way_commits_on_the_callers_thread(
    store: SqlMetadataStore,
) -> None:
    with DecisionLog(store, durability="process") as log:
        threads: list[int] = []
        write = log._writer._write_batch

        def spy(tx: Any, ops: list[Any]) -> list[Any]:
            threads.append(threading.get_ident())
            return write(tx, ops)

        log._writer._write_batch = spy
        for i in range(1, 6):
            log.append(decision(i))
        assert threads == [threading.get_ident()] * 5  # no hand-off to the writer thread


def test_blocking_and_asyncio_appends_at_once_all_commit_once(store: SqlMetadataStore) -> None:
    with DecisionLog(store, durability="process") as log:

        def work(t: int) -> None:
            for i in range(25):
                log.append(decision(t * 1000 + i))

        async def appends() -> None:
            await asyncio.gather(*(log.append_async(decision(90_000 + i)) for i in range(100)))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(1, 9)]
        for t in threads:
            t.start()
        asyncio.run(appends())
        for t in threads:
            t.join()
        assert log.count() == 300
        assert sorted(d.id for d in log.iterate()) == sorted(
            [f"d-{t * 1000 + i}" for t in range(1, 9) for i in range(25)]
            + [f"d-{90_000 + i}" for i in range(100)]
        )
        assert log.verify().ok


def test_one_bad_record_in_a_batch_does_not_fail_the_others(store: SqlMetadataStore) -> None:
    log = DecisionLog(store)
    submit = log._writer.submit
    with HeldWriter(log, store):
        futures = [submit("decision", log._prepare(decision(i))) for i in (2, 3)]
        futures.append(submit("decision", log._prepare(decision(1, decision="x"))))
        futures.append(submit("outcome", Outcome("missing", 1)))
        futures.append(submit("decision", log._prepare(decision(4))))
    assert [f.result().seq for f in (futures[0], futures[1], futures[4])] == [2, 3, 4]
    assert isinstance(futures[2].exception(), ConflictError)
    assert isinstance(futures[3].exception(), NotFoundError)
    assert log.verify().ok
    log.close()


def test_ids_are_looked_up_only_when_a_batch_holds_one_logged_before(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decisions are inserted without looking their ids up; a batch that meets an id logged
    before runs again, looking them up: the same decision is returned as logged, another one
    under its id is refused, the rest are written once, and the chain has no gap."""
    lookups: list[int] = []
    original = DriverTx.all

    def all_(tx: DriverTx, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        lookups.append(len(params))
        return original(tx, sql, params)

    monkeypatch.setattr(DriverTx, "all", all_)
    log = DecisionLog(store)
    submit = log._writer.submit
    with HeldWriter(log, store) as held:
        futures = [submit("decision", log._prepare(decision(i))) for i in (2, 1, 3)]
        futures.append(submit("decision", log._prepare(decision(1, decision="x"))))
        held.wait_queued(4)
    assert [futures[i].result().seq for i in (0, 2)] == [2, 3]
    assert futures[1].result() == held.first.result()  # delivered again: the logged one
    assert isinstance(futures[3].exception(), ConflictError)
    assert lookups == [4]  # the first batch (decision 1 alone) and the retried one: one look
    for i in (4, 5):
        log.append(decision(i))
    assert lookups == [4]  # new decisions: no look
    assert [d.seq for d in log.iterate()] == [1, 2, 3, 4, 5]
    assert log.verify().ok
    log.close()


def test_two_writers_on_one_database_extend_each_others_chain(
    store: SqlMetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer remembers the head it wrote and skips reading it while no other connection has
    committed (SQLite's data version says so); after another writer's commit it reads it again."""
    heads: list[int] = []
    with DecisionLog(store) as one, DecisionLog(store) as two:
        original = DriverTx.first

        def first(tx: DriverTx, sql: str, params: Any = ()) -> Any:
            if "ORDER BY seq DESC" in sql:
                heads.append(1)
            return original(tx, sql, params)

        monkeypatch.setattr(DriverTx, "first", first)
        for writer, ids in [(one, (1, 2, 3)), (two, (4, 5)), (one, (6, 7)), (two, (8,))]:
            for i in ids:
                assert writer.append(decision(i)).seq == i
        monkeypatch.undo()
        assert [d.seq for d in one.iterate()] == list(range(1, 9))
        assert one.verify().ok
    if store.dialect == "sqlite":  # read by each writer's first append after the other wrote
        assert len(heads) == 4
    else:
        assert len(heads) == 8


def test_append_async_goes_through_the_same_writer(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:

        async def main() -> list[int]:
            logged = await asyncio.gather(*(log.append_async(decision(i)) for i in range(1, 21)))
            return sorted(d.seq for d in logged)

        assert asyncio.run(main()) == list(range(1, 21))
        assert log.verify().ok


def test_durability_modes(store: SqlMetadataStore) -> None:
    assert DecisionLog(store, durability="process").durability is Durability.PROCESS
    with pytest.raises(InvalidInputError) as caught:
        DecisionLog(store, durability="sometimes")
    assert caught.value.field == "durability"


def test_a_closed_log_refuses_appends(store: SqlMetadataStore) -> None:
    log = DecisionLog(store)
    log.close()
    with pytest.raises(Exception, match="closed"):
        log.append(decision(1))


# --- outcomes --------------------------------------------------------------------------------


def test_outcomes_attach_once_per_id_and_only_to_known_decisions(store: SqlMetadataStore) -> None:
    with DecisionLog(store) as log:
        log.append(decision(1))
        outcome = Outcome("d-1", {"defaulted": False}, T0 + timedelta(days=90), id="o-1")
        assert log.attach_outcome(outcome) == outcome
        assert log.attach_outcome(outcome) == outcome  # delivered twice, attached once
        assert log.outcomes("d-1") == [outcome]
        assert log.count() == 2
        with pytest.raises(NotFoundError, match="decision 'd-9'"):
            log.attach_outcome(Outcome("d-9", 1))
        with pytest.raises(ConflictError):
            log.attach_outcome(Outcome("d-1", 1, id="d-1"))  # the id of another record
        with pytest.raises(InvalidInputError) as caught:
            log.attach_outcome(Outcome("d-1", float("inf")))
        assert caught.value.field == "value"
        assert log.count() == 2
        assert log.verify().ok


# --- reviews ---------------------------------------------------------------------------------


def test_the_review_queue_and_overrides(store: SqlMetadataStore) -> None:
    metrics = AuditMetrics(CollectorRegistry())
    with DecisionLog(store, metrics=metrics, segments=["region"]) as log:
        for i in range(1, 5):
            log.append(decision(i, decision="refer", review_required=i != 4))
        assert [d.id for d in log.pending()] == ["d-1", "d-2", "d-3"]
        assert [d.id for d in log.pending("fraud")] == []
        body_before = log.get("d-1").to_dict()

        review = log.review(
            "d-1",
            reviewer="ann",
            action=ReviewAction.OVERRIDE,
            decision="approve",
            reason_code="income-verified",
            comment="payslips checked",
        )
        assert (review.action, review.decision, review.reviewer) == ("override", "approve", "ann")
        log.review("d-2", reviewer="bob", action="accept", reason_code="policy-ok")
        assert [d.id for d in log.pending()] == ["d-3"]
        assert log.final("d-1") == "approve"
        assert log.final("d-2") == "refer"
        assert log.final("d-4") == "refer"
        assert log.get("d-1").to_dict() == body_before  # the decision itself is untouched
        assert log.reviews("d-1") == [review]

        with pytest.raises(ConflictError, match="already reviewed"):
            log.review("d-1", reviewer="bob", action="accept", reason_code="x")
        with pytest.raises(NotFoundError):
            log.review("d-9", reviewer="bob", action="accept", reason_code="x")
        for kwargs, field in [
            ({"action": "shrug", "reason_code": "x"}, "action"),
            ({"action": "accept", "reason_code": ""}, "reason_code"),
            ({"action": "override", "reason_code": "x"}, "decision"),
            ({"action": "override", "reason_code": "x", "decision": "refer"}, "decision"),
            ({"action": "accept", "reason_code": "x", "decision": "approve"}, "decision"),
        ]:
            with pytest.raises(InvalidInputError) as caught:
                log.review("d-3", reviewer="bob", **kwargs)  # type: ignore[arg-type]
            assert caught.value.field == field
        with pytest.raises(InvalidInputError) as caught:
            log.review("d-3", reviewer="", action="accept", reason_code="x")
        assert caught.value.field == "reviewer"
        assert [d.id for d in log.pending()] == ["d-3"]  # nothing half-written
        assert log.verify().ok and log.verify().checked == 6

        rates = {r.group: (r.reviews, r.overrides) for r in log.override_rate()}
        assert rates == {"credit-risk/3": (2, 1)}
        by_region = {r.group: r.rate for r in log.override_rate("region")}
        assert by_region == {"north": 1.0, "south": 0.0}
        sample = metrics.registry.get_sample_value
        labels = {"deployment": "credit", "model": "credit-risk", "version": "3"}
        assert sample("mainspring_decision_reviews_total", {**labels, "action": "override"}) == 1
        assert sample("mainspring_decision_reviews_total", {**labels, "action": "accept"}) == 1
        segment = {"deployment": "credit", "segment": "region", "value": "north"}
        assert (
            sample("mainspring_decision_segment_reviews_total", {**segment, "action": "override"})
            == 1
        )


def test_labels_pair_each_decision_with_its_final_decision_and_outcome(
    store: SqlMetadataStore,
) -> None:
    with DecisionLog(store) as log:
        for i in range(1, 4):
            log.append(decision(i, decision="refer"))
        log.review("d-2", reviewer="ann", action="override", decision="decline", reason_code="r")
        log.attach_outcome(Outcome("d-2", 1, id="o-2"))
        labels = list(log.labels())
        assert [(x.decision.id, x.final) for x in labels] == [
            ("d-1", "refer"),
            ("d-2", "decline"),
            ("d-3", "refer"),
        ]
        assert labels[1].outcome is not None and labels[1].outcome.value == 1
        assert labels[0].review is None and labels[0].outcome is None
        assert json.loads(json.dumps(labels[1].to_dict()))["final"] == "decline"
