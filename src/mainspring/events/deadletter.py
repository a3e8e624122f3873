"""Dead letters: an event that cannot be used goes to ``<topic>.dlq`` with the reason in a header.

Nothing is dropped silently and nothing blocks the stream: a :class:`Publisher` sends events that
fail their topic's schema to the dead-letter topic instead of their own, and a
:class:`~mainspring.events.worker.Worker` does the same with events its processor rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mainspring.events.schemas import SchemaRegistry
from mainspring.records import SCHEMA_VERSION, Event
from mainspring.storage.base import EventLog

DLQ_SUFFIX = ".dlq"
#: Why the event was dead-lettered.
REASON = "dlq-reason"
#: The topic the event was meant for (or read from).
ORIGIN = "dlq-topic"
#: Where it was refused: ``publish`` (schema) or ``process`` (the processor).
STAGE = "dlq-stage"


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``.

    >>> dead_letter_topic("orders")
    'orders.dlq'
    """
    return topic + DLQ_SUFFIX


def dead_letter(event: Event, reason: str, stage: str) -> Event:
    """``event`` addressed to its dead-letter topic, with the reason in its headers."""
    headers = {**event.headers, REASON: reason[:1000], ORIGIN: event.topic, STAGE: stage}
    return replace(
        event, topic=dead_letter_topic(event.topic), headers=headers, partition=None, offset=None
    )


@dataclass
class Published:
    """What :meth:`Publisher.publish` did: the events the log accepted on their topics, and the
    ones sent to dead-letter topics instead."""

    accepted: list[Event] = field(default_factory=list)
    dead_lettered: list[Event] = field(default_factory=list)


class Publisher:
    """Produces events after checking them against their topics' schemas.

    >>> from mainspring.storage.memory import memory_event_log
    >>> log = memory_event_log()
    >>> schemas = SchemaRegistry(log)
    >>> _ = schemas.register("orders", {"type": "object", "required": ["amount"]})
    >>> events = [Event("orders", {"amount": 1}), Event("orders", {})]
    >>> result = Publisher(log, schemas).publish(events)
    >>> len(result.accepted), [e.topic for e in result.dead_lettered]
    (1, ['orders.dlq'])
    >>> result.dead_lettered[0].headers["dlq-reason"]
    "payload does not match schema 1 of 'orders': 'amount' is a required property"
    """

    def __init__(self, log: EventLog, schemas: SchemaRegistry | None = None) -> None:
        self.log = log
        self.schemas = schemas if schemas is not None else SchemaRegistry(log)

    def publish(self, events: Sequence[Event]) -> Published:
        """Validate and produce ``events`` in one batch; invalid ones go to ``<topic>.dlq``."""
        self.schemas.refresh()
        outgoing = []
        for event in events:
            reason = self.schemas.check(event)
            if reason is not None:
                outgoing.append(dead_letter(event, reason, "publish"))
                continue
            known = self.schemas.get(event.topic, refresh=False)
            if known is not None and SCHEMA_VERSION not in event.headers:
                event = replace(
                    event, headers={**event.headers, SCHEMA_VERSION: str(known.version)}
                )
            outgoing.append(event)
        result = Published()
        for event in self.log.produce(outgoing):
            if event.topic.endswith(DLQ_SUFFIX) and ORIGIN in event.headers:
                result.dead_lettered.append(event)
            else:
                result.accepted.append(event)
        return result
