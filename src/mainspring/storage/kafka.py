"""The Apache Kafka event log, through confluent-kafka (librdkafka).

``kafka://host:port[,host:port]`` opens one. Events travel as JSON values with the key as bytes;
the event id and the exact event time ride in headers (``mainspring-id``, ``mainspring-time``)
beside the caller's, and the Kafka timestamp is the event time (so :meth:`offset_at` works).
Keyed events are partitioned by librdkafka's ``murmur2_random``, the Java client's rule, which
:func:`~mainspring.storage.base.partition_for` mirrors.

The producer is idempotent with ``acks=all``; :meth:`KafkaEventLog.produce` waits for every
delivery report and raises :class:`~mainspring.errors.StorageError` naming how many events Kafka
did not acknowledge: nothing is dropped silently. Consumers never auto-commit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from mainspring.errors import (
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    StorageError,
)
from mainspring.records import Event, check_name
from mainspring.storage.eventcodec import payload_json

if TYPE_CHECKING:
    import confluent_kafka

    from mainspring.storage.kafkagroup import KafkaConsumer

logger = logging.getLogger("mainspring.kafka")

ID_HEADER = "mainspring-id"
TIME_HEADER = "mainspring-time"
#: No committed offset (librdkafka's OFFSET_INVALID).
_NO_OFFSET = -1001


def _kafka() -> Any:
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError:
        raise MissingDependencyError(
            "confluent-kafka", extra="kafka", purpose="Kafka event logs"
        ) from None
    return confluent_kafka


def _to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise InvalidInputError("times must be timezone-aware (UTC)", field="when")
    return int(when.timestamp() * 1000)


def _event_of(message: Any) -> Event:
    headers: dict[str, str] = {}
    for name, value in message.headers() or []:
        headers[name] = value.decode("utf-8") if isinstance(value, bytes) else str(value or "")
    event_id = headers.pop(ID_HEADER, "")
    when = headers.pop(TIME_HEADER, None)
    key = message.key()
    kwargs: dict[str, Any] = {}
    if event_id:
        kwargs["id"] = event_id
    if when is not None:
        kwargs["event_time"] = datetime.fromisoformat(when)
    return Event(
        topic=message.topic(),
        payload=json.loads(message.value()),
        key=key.decode("utf-8") if key is not None else None,
        headers=headers,
        partition=message.partition(),
        offset=message.offset(),
        **kwargs,
    )


class KafkaEventLog:
    """An :class:`~mainspring.storage.base.EventLog` on an Apache Kafka cluster."""

    def __init__(
        self,
        bootstrap: str,
        *,
        delivery_timeout_s: float = 30.0,
        request_timeout_s: float = 15.0,
        session_timeout_ms: int = 10_000,
    ) -> None:
        kafka = _kafka()
        self.bootstrap = bootstrap
        self.url = f"kafka://{bootstrap}"
        self.delivery_timeout_s = delivery_timeout_s
        self.request_timeout_s = request_timeout_s
        self.session_timeout_ms = session_timeout_ms
        # librdkafka's own log lines go to Python logging, not to stderr
        self._base: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": logger}
        # asking about a topic must not create it (brokers often auto-create on metadata requests)
        self._admin = kafka.admin.AdminClient({**self._base, "allow.auto.create.topics": False})
        self._producer: confluent_kafka.Producer | None = None
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- topics ------------------------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        *,
        retention_ms: int | None = None,
        retention_bytes: int | None = None,
    ) -> None:
        kafka = _kafka()
        check_name(name, field="topic")
        config = {}
        if retention_ms is not None:
            config["retention.ms"] = str(retention_ms)
        if retention_bytes is not None:
            config["retention.bytes"] = str(retention_bytes)
        topic = kafka.admin.NewTopic(
            name, num_partitions=partitions, replication_factor=-1, config=config
        )
        futures = self._admin.create_topics([topic], request_timeout=self.request_timeout_s)
        try:
            futures[name].result(timeout=self.request_timeout_s)
        except kafka.KafkaException as exc:
            error = exc.args[0]
            unreachable = {
                kafka.KafkaError._TIMED_OUT,
                kafka.KafkaError._TRANSPORT,
                kafka.KafkaError._ALL_BROKERS_DOWN,
            }
            if error.code() in unreachable:
                raise StorageError(
                    f"Kafka at {self.bootstrap} is not reachable ({error.str()} creating "
                    f"{name!r}); is the broker up?"
                ) from None
            if error.code() != kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                raise StorageError(
                    f"Kafka at {self.bootstrap} refused topic {name!r}: {error}"
                ) from None
        except Exception as exc:  # the future timed out: no broker answered
            raise StorageError(
                f"Kafka at {self.bootstrap} is not reachable (no answer within "
                f"{self.request_timeout_s:g} s creating {name!r}); is the broker up? {exc}"
            ) from exc
        self._wait_for_topic(name)

    def _wait_for_topic(self, name: str) -> None:
        deadline = time.monotonic() + self.request_timeout_s
        while True:
            try:
                self._known[name] = self.partitions(name)
                return
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def partitions(self, topic: str) -> int:
        kafka = _kafka()
        try:
            metadata = self._admin.list_topics(topic, timeout=self.request_timeout_s)
        except kafka.KafkaException as exc:
            raise StorageError(
                f"Kafka at {self.bootstrap} is not reachable: {exc.args[0]}; is the broker up?"
            ) from exc
        info = metadata.topics.get(topic)
        if info is None or info.error is not None or not info.partitions:
            raise NotFoundError("topic", topic, "produce to it or create it with create_topic")
        return len(info.partitions)

    # -- producing ---------------------------------------------------------------------------

    def _get_producer(self) -> Any:
        if self._producer is None:
            self._producer = _kafka().Producer(
                {
                    **self._base,
                    "enable.idempotence": True,
                    "acks": "all",
                    "partitioner": "murmur2_random",
                    "linger.ms": 5,
                    "message.timeout.ms": int(self.delivery_timeout_s * 1000),
                }
            )
        return self._producer

    def produce(self, events: Sequence[Event]) -> list[Event]:
        batch = list(events)
        if not batch:
            return []
        for topic in {e.topic for e in batch}:
            if topic not in self._known:
                check_name(topic, field="topic")
                self.create_topic(topic, 1)
        with self._lock:
            producer = self._get_producer()
            results: list[Event | None] = [None] * len(batch)
            errors: list[str] = []

            def delivered(index: int) -> Any:
                def callback(err: Any, message: Any) -> None:
                    if err is not None:
                        errors.append(str(err))
                    else:
                        event = batch[index]
                        results[index] = replace(
                            event, partition=message.partition(), offset=message.offset()
                        )

                return callback

            for index, event in enumerate(batch):
                value = payload_json(event)
                headers = [(k, v.encode("utf-8")) for k, v in event.headers.items()]
                headers += [
                    (ID_HEADER, event.id.encode()),
                    (TIME_HEADER, event.event_time.isoformat().encode()),
                ]
                while True:
                    try:
                        producer.produce(
                            event.topic,
                            value=value.encode("utf-8"),
                            key=event.key.encode("utf-8") if event.key is not None else None,
                            headers=headers,
                            timestamp=_to_ms(event.event_time),
                            on_delivery=delivered(index),
                        )
                        break
                    except BufferError:  # the local queue is full: let deliveries drain
                        producer.poll(0.1)
            remaining = producer.flush(self.delivery_timeout_s + 5)
        missing = sum(1 for r in results if r is None)
        if remaining or errors or missing:
            reason = errors[0] if errors else "no delivery report in time"
            raise StorageError(
                f"Kafka at {self.bootstrap} did not acknowledge {missing} of {len(batch)} "
                f"events ({reason}); they may or may not be in the log: produce them again "
                "(consumers dedupe by idempotency key)"
            )
        return [r for r in results if r is not None]

    # -- reading -----------------------------------------------------------------------------

    def _plain_consumer(self, group: str | None = None) -> Any:
        config: dict[str, Any] = {**self._base, "enable.auto.commit": False}
        config["group.id"] = group or "mainspring-reader"
        return _kafka().Consumer(config)

    def read(self, topic: str, partition: int, offset: int, limit: int = 500) -> list[Event]:
        kafka = _kafka()
        low, high = self.watermarks(topic)[partition]
        start = max(offset, low)
        if start >= high or limit <= 0:
            return []
        consumer = self._plain_consumer()
        out: list[Event] = []
        try:
            consumer.assign([kafka.TopicPartition(topic, partition, start)])
            deadline = time.monotonic() + self.request_timeout_s
            while len(out) < limit and (
                not out or out[-1].offset is None or out[-1].offset + 1 < high
            ):
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"Kafka at {self.bootstrap} did not deliver {topic}[{partition}] in time"
                    )
                for message in consumer.consume(min(500, limit - len(out)), 0.5):
                    if message.error() is None:
                        out.append(_event_of(message))
        finally:
            consumer.close()
        return out[:limit]

    def offset_at(self, topic: str, partition: int, when: datetime) -> int:
        kafka = _kafka()
        consumer = self._plain_consumer()
        try:
            found = consumer.offsets_for_times(
                [kafka.TopicPartition(topic, partition, _to_ms(when))],
                timeout=self.request_timeout_s,
            )
        except kafka.KafkaException as exc:
            raise StorageError(f"Kafka at {self.bootstrap}: {exc.args[0]}") from exc
        finally:
            consumer.close()
        offset = int(found[0].offset)
        return offset if offset >= 0 else self.watermarks(topic)[partition][1]

    def watermarks(self, topic: str) -> dict[int, tuple[int, int]]:
        kafka = _kafka()
        n = self.partitions(topic)
        consumer = self._plain_consumer()
        try:
            return {
                p: tuple(
                    consumer.get_watermark_offsets(
                        kafka.TopicPartition(topic, p), timeout=self.request_timeout_s
                    )
                )
                for p in range(n)
            }
        except kafka.KafkaException as exc:
            raise StorageError(f"Kafka at {self.bootstrap}: {exc.args[0]}") from exc
        finally:
            consumer.close()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        kafka = _kafka()
        n = self.partitions(topic)
        consumer = self._plain_consumer(group)
        try:
            found = consumer.committed(
                [kafka.TopicPartition(topic, p) for p in range(n)], timeout=self.request_timeout_s
            )
        except kafka.KafkaException as exc:
            raise StorageError(f"Kafka at {self.bootstrap}: {exc.args[0]}") from exc
        finally:
            consumer.close()
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def consumer(self, group: str, topics: Sequence[str]) -> KafkaConsumer:
        check_name(group, field="group")
        for topic in topics:
            if topic not in self._known:
                self.create_topic(topic, 1)
        from mainspring.storage.kafkagroup import KafkaConsumer

        return KafkaConsumer(self, group, list(topics))

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.delivery_timeout_s)
                self._producer = None


def open_kafka_event_log(url: str) -> KafkaEventLog:
    """Open ``kafka://host:port[,host:port][?delivery_timeout_s=30&session_timeout_ms=10000]``."""
    base, _, query = url.partition("?")
    bootstrap = base.removeprefix("kafka://")
    if not bootstrap:
        raise ConfigError(f"event log URI {url!r} names no broker: kafka://host:port", key="events")
    options = dict(parse_qsl(query))
    kwargs: dict[str, Any] = {}
    try:
        if "delivery_timeout_s" in options:
            kwargs["delivery_timeout_s"] = float(options.pop("delivery_timeout_s"))
        if "session_timeout_ms" in options:
            kwargs["session_timeout_ms"] = int(options.pop("session_timeout_ms"))
    except ValueError:
        raise ConfigError(f"event log URI {url!r} has a non-numeric option", key="events") from None
    if options:
        raise ConfigError(
            f"event log URI {url!r} has unknown options {sorted(options)}; known: "
            "delivery_timeout_s, session_timeout_ms",
            key="events",
        )
    return KafkaEventLog(bootstrap, **kwargs)
