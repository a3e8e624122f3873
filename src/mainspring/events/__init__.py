"""The event backbone on top of :class:`~mainspring.storage.base.EventLog`: topic schemas and
dead letters, idempotent sinks, processors (a table of latest values, a join of two topics) and
the worker loop that runs them."""

from mainspring.events.deadletter import Published, Publisher, dead_letter, dead_letter_topic
from mainspring.events.join import TopicJoin
from mainspring.events.processor import Materialize, Processor
from mainspring.events.schemas import SchemaRegistry, TopicSchema
from mainspring.events.sink import SqliteSink
from mainspring.events.worker import Backoff, Worker, WorkerStats, lag

__all__ = [
    "Backoff",
    "Materialize",
    "Processor",
    "Published",
    "Publisher",
    "SchemaRegistry",
    "SqliteSink",
    "TopicJoin",
    "TopicSchema",
    "Worker",
    "WorkerStats",
    "dead_letter",
    "dead_letter_topic",
    "lag",
]
