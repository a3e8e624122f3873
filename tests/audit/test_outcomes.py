"""Outcomes from the event backbone: attached once, bad ones dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.audit.conftest import decision

from mainspring.audit import DecisionLog, OutcomeProcessor
from mainspring.events.worker import Worker
from mainspring.records import IDEMPOTENCY_KEY, Event
from mainspring.storage.memory import memory_event_log, memory_metadata


def test_outcome_events_attach_once_and_bad_ones_are_dead_lettered() -> None:
    log = DecisionLog(memory_metadata())
    log.append(decision(1))
    events = memory_event_log()
    at = datetime(2026, 6, 1, tzinfo=UTC)
    twice = Event(
        "outcomes",
        {"decision_id": "d-1", "value": {"repaid": True}},
        event_time=at,
        headers={IDEMPOTENCY_KEY: "loan-1-closed"},
    )
    events.produce(
        [
            twice,
            Event("outcomes", twice.payload, event_time=at, headers=dict(twice.headers)),
            Event("outcomes", {"decision_id": "d-404", "value": 1}),
            Event("outcomes", {"value": 1}),
            Event("outcomes", {"decision_id": "d-1", "value": 2, "at": "2026-06-01T00:00:00"}),
        ]
    )
    stats = Worker(events, OutcomeProcessor(log)).run(until_idle=True)
    assert stats.events == 5
    (outcome,) = log.outcomes("d-1")
    assert (outcome.id, outcome.value, outcome.at, outcome.source) == (
        "loan-1-closed",
        {"repaid": True},
        at,
        "event:outcomes",
    )
    dead = events.read("outcomes.dlq", 0, 0)
    assert len(dead) == 3
    assert log.verify().ok
    log.close()
