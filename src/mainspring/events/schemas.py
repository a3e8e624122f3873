"""JSON schemas for topics, kept on the event log itself (topic ``mainspring.schemas``).

Registering a schema appends an event keyed by the topic name whose payload holds the schema and
its version; the newest registration of a topic is the one in force. Because the registry lives on
the log, every process and every backend sees the same schemas without another store.

Validation uses the ``jsonschema`` package (``pip install 'mainspring[schemas]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mainspring.errors import InvalidInputError, MissingDependencyError, NotFoundError
from mainspring.records import JSON, Event, check_name
from mainspring.storage.base import EventLog

SCHEMA_TOPIC = "mainspring.schemas"


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise MissingDependencyError(
            "jsonschema", extra="schemas", purpose="Event schemas"
        ) from None
    return jsonschema


@dataclass(frozen=True, slots=True)
class TopicSchema:
    """The JSON schema in force for a topic, with its version (1, 2, ...)."""

    topic: str
    version: int
    schema: JSON


class SchemaRegistry:
    """Topic schemas on an :class:`~mainspring.storage.base.EventLog`.

    >>> from mainspring.storage.memory import memory_event_log
    >>> registry = SchemaRegistry(memory_event_log())
    >>> registry.register("orders", {"type": "object", "required": ["amount"]}).version
    1
    >>> registry.check(Event("orders", {"amount": 3})) is None
    True
    >>> registry.check(Event("orders", {"amont": 3}))
    "payload does not match schema 1 of 'orders': 'amount' is a required property"
    """

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._schemas: dict[str, TopicSchema] = {}
        self._validators: dict[tuple[str, int], Any] = {}
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()

    def register(self, topic: str, schema: Mapping[str, Any]) -> TopicSchema:
        """Put ``schema`` in force for ``topic`` (a new version); returns it."""
        check_name(topic, field="topic")
        jsonschema = _jsonschema()
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInputError(
                f"schema for {topic!r} is not a valid JSON schema: {exc.message}", field="schema"
            ) from None
        current = self.get(topic)
        version = current.version + 1 if current is not None else 1
        self.log.produce(
            [Event(SCHEMA_TOPIC, {"schema": dict(schema), "version": version}, key=topic)]
        )
        self.refresh()
        registered = self.get(topic, refresh=False)
        assert registered is not None
        return registered

    def refresh(self) -> None:
        """Read registrations made since the last look (by any process)."""
        try:
            marks = self.log.watermarks(SCHEMA_TOPIC)
        except NotFoundError:  # no schema was ever registered: the topic does not exist yet
            return
        with self._lock:
            for partition, (low, high) in marks.items():
                position = max(self._positions.get(partition, 0), low)
                while position < high:
                    batch = self.log.read(SCHEMA_TOPIC, partition, position)
                    if not batch:
                        break
                    for event in batch:
                        assert event.key is not None and event.offset is not None
                        self._schemas[event.key] = TopicSchema(
                            event.key, int(event.payload["version"]), event.payload["schema"]
                        )
                        position = event.offset + 1
                self._positions[partition] = position

    def get(self, topic: str, *, refresh: bool = True) -> TopicSchema | None:
        """The schema in force for ``topic``, or ``None`` when it has none."""
        if refresh:
            self.refresh()
        with self._lock:
            return self._schemas.get(topic)

    def check(self, event: Event, *, refresh: bool = False) -> str | None:
        """Why ``event`` does not match its topic's schema, or ``None`` when it does (or the
        topic has no schema)."""
        with self._lock:
            known = self._schemas.get(event.topic)
        if known is None and (refresh or not self._positions):
            known = self.get(event.topic)
        if known is None:
            return None
        key = (known.topic, known.version)
        validator = self._validators.get(key)
        if validator is None:
            jsonschema = _jsonschema()
            cls = jsonschema.validators.validator_for(known.schema)
            validator = self._validators[key] = cls(known.schema)
        error = next(iter(validator.iter_errors(event.payload)), None)
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        at = f" at {where}" if where else ""
        return (
            f"payload does not match schema {known.version} of {known.topic!r}{at}: {error.message}"
        )
