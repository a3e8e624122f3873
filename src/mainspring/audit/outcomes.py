"""Outcomes from the event backbone: a worker processor that attaches them to their decisions.

Events on the ``outcomes`` topic carry ``{"decision_id": ..., "value": ..., "at": ...}`` (``at``
optional, ISO 8601 with offset; default the event time). The outcome's id is the event's
idempotency key (else its id), so an event delivered twice attaches once. An event for an unknown
decision, or one that is not an outcome, is an ``InvalidInputError``: the worker sends it to the
dead-letter topic instead of retrying forever.

>>> from mainspring.events.worker import Worker
>>> from mainspring.records import Decision, Event
>>> from mainspring.storage.memory import memory_event_log, memory_metadata
>>> from datetime import UTC, datetime
>>> log = DecisionLog(memory_metadata())
>>> _ = log.append(Decision(id="d-1", deployment="credit", at=datetime.now(UTC),
...                         decision="approve", policy="p"))
>>> events = memory_event_log()
>>> _ = events.produce([Event("outcomes", {"decision_id": "d-1", "value": 1})])
>>> Worker(events, OutcomeProcessor(log)).run(until_idle=True).events
1
>>> [o.value for o in log.outcomes("d-1")]
[1]
>>> log.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mainspring.audit.log import DecisionLog
from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.records import Event, Outcome

TOPIC = "outcomes"


class OutcomeProcessor:
    """Attaches the outcomes of ``topics`` to the decisions of ``log`` (idempotent)."""

    def __init__(self, log: DecisionLog, topics: Sequence[str] = (TOPIC,)) -> None:
        self.log = log
        self._topics = tuple(topics)

    @property
    def name(self) -> str:
        return "mainspring-outcomes"

    @property
    def topics(self) -> Sequence[str]:
        return self._topics

    def process(self, events: Sequence[Event]) -> None:
        for event in events:
            try:
                self.log.attach_outcome(self.outcome(event))
            except NotFoundError as exc:  # retrying cannot help: dead-letter it
                raise InvalidInputError(str(exc), field="decision_id") from None

    @staticmethod
    def outcome(event: Event) -> Outcome:
        """The outcome an event carries (``InvalidInputError`` naming the field if it is not)."""
        payload = event.payload
        if not isinstance(payload, Mapping) or not isinstance(payload.get("decision_id"), str):
            raise InvalidInputError("an outcome event needs a decision_id", field="decision_id")
        if "value" not in payload:
            raise InvalidInputError("an outcome event needs a value", field="value")
        data = {
            "decision_id": payload["decision_id"],
            "value": payload["value"],
            "at": payload.get("at") or event.event_time.isoformat(),
            "id": event.headers.get("idempotency-key") or event.id,
            "source": f"event:{event.topic}",
        }
        return Outcome.from_dict(data)  # a naive or malformed ``at`` is an InvalidInputError

    def close(self) -> None:
        """The decision log belongs to the caller."""
