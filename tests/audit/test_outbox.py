"""The mirror to the event log: in order, idempotency key = record id, and a crash re-publishes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from tests.audit.conftest import decision

from mainspring.audit import DecisionLog
from mainspring.errors import StorageError
from mainspring.records import IDEMPOTENCY_KEY, Event, Outcome
from mainspring.storage.base import EventLog
from mainspring.storage.memory import memory_event_log
from mainspring.storage.sql import SqlMetadataStore


class Crashing:
    """An event log that dies: before producing (``after=False``) or right after (``True``)."""

    def __init__(self, inner: EventLog, *, after: bool) -> None:
        self.inner = inner
        self.after = after
        self.url = inner.url

    def produce(self, events: Sequence[Event]) -> list[Event]:
        if not self.after:
            raise StorageError("event log unreachable")
        self.inner.produce(events)
        raise StorageError("the process died before moving the cursor")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def published(events: EventLog, topic: str = "decisions") -> list[str]:
    return [e.headers[IDEMPOTENCY_KEY] for e in events.read(topic, 0, 0, limit=10_000)]


def test_committed_records_are_published_in_order(store: SqlMetadataStore) -> None:
    events = memory_event_log()
    with DecisionLog(store, events=events) as log:
        for i in range(1, 6):
            log.append(decision(i, review_required=i == 2))
        log.attach_outcome(Outcome("d-1", 0, id="o-1"))
        log.review("d-2", reviewer="ann", action="accept", reason_code="ok")
    assert published(events) == ["d-1", "d-2", "d-3", "d-4", "d-5"]
    assert published(events, "decision-outcomes") == ["o-1"]
    (review,) = events.read("decision-reviews", 0, 0)
    assert review.key == "d-2" and review.payload["record"]["reason_code"] == "ok"
    first = events.read("decisions", 0, 0)[0]
    assert first.payload["seq"] == 1 and first.payload["record"]["id"] == "d-1"
    assert first.payload["hash"] == DecisionLog(store).get("d-1").hash


@pytest.mark.parametrize("after", [False, True], ids=["before-produce", "after-produce"])
def test_a_crash_while_publishing_republishes_instead_of_losing(
    store: SqlMetadataStore, after: bool
) -> None:
    events = memory_event_log()
    log = DecisionLog(store, events=Crashing(events, after=after))  # type: ignore[arg-type]
    for i in range(1, 4):
        log.append(decision(i))
    with pytest.raises(StorageError):
        log.publish_pending()
    log.close()  # its last pass fails too: the cursor stays where it was
    assert log.mirror is not None and log.mirror.cursor() == 0

    with DecisionLog(store, events=events) as reopened:  # the next process
        reopened.append(decision(4))
        reopened.publish_pending()
        assert reopened.mirror is not None and reopened.mirror.cursor() == 4
    keys = published(events)
    assert sorted(set(keys)) == ["d-1", "d-2", "d-3", "d-4"]  # nothing lost
    if after:  # published, then died: published again, with the same idempotency keys
        assert len(keys) > 4
    else:
        assert keys == ["d-1", "d-2", "d-3", "d-4"]
    assert keys[-4:] == ["d-1", "d-2", "d-3", "d-4"]
