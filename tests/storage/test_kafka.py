"""What only the Kafka event log does: topic configuration, URI options."""

from __future__ import annotations

import uuid

import pytest

from mainspring.errors import ConfigError
from mainspring.storage import open_event_log


def test_retention_becomes_topic_configuration(kafka_bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    from mainspring.storage.kafka import KafkaEventLog

    log = KafkaEventLog(kafka_bootstrap)
    name = f"r-{uuid.uuid4().hex[:8]}"
    log.create_topic(name, partitions=2, retention_ms=3_600_000, retention_bytes=1_048_576)
    log.create_topic(name, partitions=2)  # again: a no-op
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [future] = admin.describe_configs([ConfigResource("topic", name)]).values()
    config = future.result(timeout=30)
    assert config["retention.ms"].value == "3600000"
    assert config["retention.bytes"].value == "1048576"
    assert log.partitions(name) == 2
    log.close()


def test_uri_options() -> None:
    from mainspring.storage.kafka import KafkaEventLog

    log = open_event_log(
        "kafka://127.0.0.1:1,127.0.0.1:2?delivery_timeout_s=4&session_timeout_ms=7000"
    )
    assert isinstance(log, KafkaEventLog)
    assert (log.bootstrap, log.delivery_timeout_s, log.session_timeout_ms) == (
        "127.0.0.1:1,127.0.0.1:2",
        4.0,
        7000,
    )
    with pytest.raises(ConfigError, match="unknown options"):
        open_event_log("kafka://127.0.0.1:1?acks=0")
    with pytest.raises(ConfigError, match="names no broker"):
        open_event_log("kafka://")


def test_test_brokers_cluster_ids_never_read_as_an_option() -> None:
    # One random id in 64 starts with "-"; kafka-storage then took it for an option and CI failed.
    from tests.servers import kafka_cluster_id

    ids = [kafka_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids)
