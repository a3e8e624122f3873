"""A Kafka consumer-group member (see :mod:`mainspring.storage.kafka`): no auto-commit, offsets
reset to the earliest, a broker that is down raises ``StorageError`` so the caller can back off."""

from __future__ import annotations

from collections.abc import Sequence

from mainspring.errors import InvalidInputError, StorageError
from mainspring.records import Event
from mainspring.storage.base import next_offsets
from mainspring.storage.kafka import KafkaEventLog, _event_of, _kafka


class KafkaConsumer:
    """A member of a Kafka consumer group (no auto-commit; offsets reset to the earliest)."""

    def __init__(self, log: KafkaEventLog, group: str, topics: list[str]) -> None:
        self.log = log
        self.group = group
        self._consumer = _kafka().Consumer(
            {
                **log._base,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": log.session_timeout_ms,
                "heartbeat.interval.ms": max(100, log.session_timeout_ms // 5),
                "allow.auto.create.topics": False,
            }
        )
        self._consumer.subscribe(topics)
        self._seeks: dict[tuple[str, int], int] = {}

    def poll(self, max_events: int = 500, timeout_s: float = 1.0) -> list[Event]:
        kafka = _kafka()
        self._apply_seeks()
        try:
            messages = self._consumer.consume(max_events, timeout_s)
        except kafka.KafkaException as exc:
            raise StorageError(f"Kafka at {self.log.bootstrap}: {exc.args[0]}") from exc
        out = []
        for message in messages:
            error = message.error()
            if error is None:
                out.append(_event_of(message))
            elif error.code() == kafka.KafkaError._ALL_BROKERS_DOWN:
                raise StorageError(f"Kafka at {self.log.bootstrap} is down: {error}")
            elif error.fatal():
                raise StorageError(f"Kafka consumer failed: {error}")
        return out

    def commit(self, events: Sequence[Event]) -> None:
        kafka = _kafka()
        upto = next_offsets(events)
        if not upto:
            return
        offsets = [kafka.TopicPartition(t, p, o) for (t, p), o in upto.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except kafka.KafkaException as exc:
            raise StorageError(
                f"Kafka at {self.log.bootstrap} did not take the commit: {exc.args[0]}; the "
                "events will be delivered again"
            ) from exc

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) not in self.assignment():
            raise InvalidInputError(
                f"partition {partition} of {topic!r} is not assigned to this consumer; "
                f"assigned: {self.assignment()}",
                field="partition",
            )
        self._seeks[(topic, partition)] = offset
        self._apply_seeks()

    def _apply_seeks(self) -> None:
        kafka = _kafka()
        for (topic, partition), offset in list(self._seeks.items()):
            try:
                self._consumer.seek(kafka.TopicPartition(topic, partition, offset))
            except kafka.KafkaException:
                continue  # not fetching yet: try again on the next poll
            del self._seeks[(topic, partition)]

    def assignment(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def close(self) -> None:
        self._consumer.close()
