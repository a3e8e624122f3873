"""Decisions asked through the event log: a processor that decides each request event.

An event on ``decision-requests`` (the default topic) carries ``{"deployment": NAME, "entity":
{...}, "context": {...}, "request_id": ...}``. The decision takes the event's id as its own, so a
request delivered twice (at-least-once delivery, a worker killed before it committed) makes one
decision: the log refuses the second append of the same id. The decision log mirrors every
decision to its topic, where callers pick up the answer by ``request_id``. A malformed request
goes to ``decision-requests.dlq`` with the reason (the worker's dead-letter handling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mainspring.errors import ConflictError, InvalidInputError
from mainspring.records import Event
from mainspring.serving.decisions import DecisionService
from mainspring.serving.request import DecisionRequest

TOPIC = "decision-requests"


class DecisionRequests:
    """A :class:`~mainspring.events.Processor` that decides request events."""

    def __init__(self, service: DecisionService, topic: str = TOPIC) -> None:
        self.service = service
        self.topic = topic
        self.decided = 0
        self.duplicates = 0

    @property
    def name(self) -> str:
        return f"decide-{self.topic}"

    @property
    def topics(self) -> Sequence[str]:
        return (self.topic,)

    def process(self, events: Sequence[Event]) -> None:
        for event in events:
            payload: Any = event.payload
            if not isinstance(payload, dict) or not isinstance(payload.get("deployment"), str):
                raise InvalidInputError(
                    "a decision request needs a 'deployment' name", field="deployment"
                )
            body = {k: v for k, v in payload.items() if k != "deployment"}
            request = DecisionRequest.from_dict(body)
            decision = self.service.make(
                payload["deployment"], request, at=None, decision_id=event.id
            )
            try:
                self.service.log.append(decision)
            except ConflictError:  # delivered again after it took effect: decided once already
                self.duplicates += 1
                continue
            self.decided += 1

    def close(self) -> None:
        """Nothing to release: the service belongs to the caller."""
