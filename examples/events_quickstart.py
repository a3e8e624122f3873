"""Publish events with a schema, dead-letter the invalid one, materialize a table, replay by time.

Run: python examples/events_quickstart.py [PROJECT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mainspring as ms
from mainspring.events import Materialize, Publisher, SchemaRegistry, Worker

#: What tests/test_examples.py looks for in the output.
EXPECT = "each event took effect once"


def main(directory: str) -> None:
    with ms.Project.open(directory) as project:
        log = project.events  # embedded by default: .mainspring/events.db
        log.create_topic("payments", partitions=3)
        schemas = SchemaRegistry(log)
        schemas.register(
            "payments",
            {
                "type": "object",
                "properties": {"amount": {"type": "number", "minimum": 0}},
                "required": ["amount"],
            },
        )

        start = datetime(2026, 1, 1, tzinfo=UTC)
        events = [
            ms.Event(
                "payments",
                {"amount": 10 * n},
                key=f"card-{n % 4}",
                event_time=start + timedelta(minutes=n),
            )
            for n in range(12)
        ]
        events.append(ms.Event("payments", {"amount": -5}, key="card-0"))
        published = Publisher(log, schemas).publish(events)
        print(f"accepted {len(published.accepted)}, dead-lettered {len(published.dead_lettered)}:")
        for dead in published.dead_lettered:
            print(f"  {dead.topic}: {dead.headers['dlq-reason']}")

        view = Materialize(Path(directory) / "views.db", "latest_payment", ["payments"])
        stats = Worker(log, view).run(until_idle=True)
        print(f"worker processed {stats.events} events; lag {Worker(log, view).lag()}")
        Worker(log, view, group="replay").run(until_idle=True)  # a replay: the sink dedupes
        for key, payload, applied in view.rows():
            print(f"  {key}: {payload} ({applied} events)")
        if all(applied == 3 for _, _, applied in view.rows()):
            print(EXPECT)

        consumer = log.consumer("audit", ["payments"])
        for topic, partition in consumer.assignment():
            consumer.seek(
                topic, partition, log.offset_at(topic, partition, start + timedelta(minutes=9))
            )
        replayed = sorted(e.payload["amount"] for e in consumer.poll(100, 1.0))
        print(f"replayed from 00:09: {replayed}")
        consumer.close()
        view.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="mainspring-"))
