"""The consumer loop: a :class:`Worker` feeds a processor batches from a consumer group.

- **Batching and backpressure.** The worker polls at most ``batch_size`` events, hands them to the
  processor and commits their offsets only when it returns. It reads nothing more until then, so
  a slow sink slows the reading instead of filling memory; the log holds the backlog (the lag).
- **At-least-once.** A crash between processing and committing delivers the batch again; the
  processor's idempotent sink makes each event take effect once.
- **Failures.** ``StorageError`` (broker or sink down) retries with exponential backoff, forever
  unless ``max_retries`` says otherwise; an event the processor rejects with any other error after
  ``max_attempts`` tries, or that fails its topic's schema, goes to ``<topic>.dlq`` with the reason.
- **Graceful stop.** :meth:`Worker.stop` (or SIGTERM in ``mainspring worker``) finishes the batch
  in hand, commits it and leaves the group.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from mainspring.errors import StorageError
from mainspring.events.deadletter import dead_letter
from mainspring.events.processor import Processor
from mainspring.events.schemas import SchemaRegistry
from mainspring.records import Event
from mainspring.storage.base import EventConsumer, EventLog

logger = logging.getLogger("mainspring.events")


def lag(log: EventLog, group: str, topics: Sequence[str]) -> int:
    """How many events of ``topics`` the group has not committed yet.

    >>> from mainspring.storage.memory import memory_event_log
    >>> log = memory_event_log()
    >>> _ = log.produce([Event("t", {"n": n}) for n in range(3)])
    >>> lag(log, "g", ["t"])
    3
    """
    total = 0
    for topic in topics:
        committed = log.committed(group, topic)
        for partition, (low, high) in log.watermarks(topic).items():
            total += max(0, high - max(low, committed.get(partition, low)))
    return total


@dataclass
class Backoff:
    """Exponential backoff with jitter: ``initial_s`` doubling up to ``max_s``."""

    initial_s: float = 0.1
    max_s: float = 5.0

    #: Its own generator: jitter must not draw from (or disturb) the global ``random`` state.
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_s, self.initial_s * 2 ** min(attempt, 30))
        return base * (0.5 + self.rng.random() / 2)


@dataclass
class WorkerStats:
    """Counters of a worker's run."""

    batches: int = 0
    events: int = 0
    dead_lettered: int = 0
    retries: int = 0


class Worker:
    """Runs ``processor`` on a consumer group of ``log`` until stopped.

    >>> from mainspring.storage.memory import memory_event_log
    >>> from mainspring.events.processor import Materialize
    >>> import tempfile, os
    >>> log = memory_event_log()
    >>> _ = log.produce([Event("orders", {"n": n}, key=f"k{n % 2}") for n in range(5)])
    >>> view = Materialize(os.path.join(tempfile.mkdtemp(), "v.db"), "orders", ["orders"])
    >>> worker = Worker(log, view)
    >>> worker.run(until_idle=True).events, worker.lag()
    (5, 0)
    >>> view.rows()
    [('k0', {'n': 4}, 3), ('k1', {'n': 3}, 2)]
    """

    def __init__(
        self,
        log: EventLog,
        processor: Processor,
        *,
        group: str | None = None,
        batch_size: int = 500,
        poll_timeout_s: float = 0.5,
        schemas: SchemaRegistry | None = None,
        backoff: Backoff | None = None,
        max_attempts: int = 3,
        max_retries: int | None = None,
    ) -> None:
        self.log = log
        self.processor = processor
        self.group = group or processor.name
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.schemas = schemas
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.max_retries = max_retries
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._failures = 0
        self._uncommitted: dict[tuple[str, int], Event] = {}

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it and return (thread- and
        signal-safe)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def lag(self) -> int:
        """Events of the processor's topics that the group has not committed yet."""
        return lag(self.log, self.group, self.processor.topics)

    def _retry(self, what: str, exc: StorageError) -> None:
        """Wait before the next try, or give up after ``max_retries`` in a row."""
        self._failures += 1
        self.stats.retries += 1
        if self.max_retries is not None and self._failures > self.max_retries:
            raise exc
        delay = self.backoff.delay(self._failures - 1)
        logger.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
        self._stopping.wait(delay)

    def _connect(self) -> EventConsumer | None:
        while not self.stopping:
            try:
                consumer = self.log.consumer(self.group, list(self.processor.topics))
            except StorageError as exc:
                self._retry("joining the consumer group", exc)
                continue
            self._failures = 0
            return consumer
        return None

    def run(self, *, until_idle: bool = False, max_events: int | None = None) -> WorkerStats:
        """Process until :meth:`stop` (or, with ``until_idle``, until a poll finds nothing new; or
        after ``max_events``). Returns the run's counters."""
        consumer = self._connect()
        if consumer is None:
            return self.stats
        try:
            while not self.stopping:
                try:
                    batch = consumer.poll(self.batch_size, self.poll_timeout_s)
                except StorageError as exc:
                    self._retry("polling", exc)
                    continue
                if not batch:
                    self._commit(consumer, [])  # offsets a failed commit left behind
                    if until_idle and not self._uncommitted and self.lag() == 0:
                        break
                    continue
                self._handle(batch)
                self._commit(consumer, batch)
                self.stats.batches += 1
                self.stats.events += len(batch)
                if max_events is not None and self.stats.events >= max_events:
                    break
            self._commit(consumer, [])
        finally:
            try:
                consumer.close()
            except StorageError as exc:
                logger.warning("leaving the consumer group failed: %s", exc)
        return self.stats

    def _handle(self, batch: list[Event]) -> None:
        good = batch
        rejected: list[Event] = []
        if self.schemas is not None:
            good = []
            for event in batch:
                reason = self.schemas.check(event)
                if reason is None:
                    good.append(event)
                else:
                    rejected.append(dead_letter(event, reason, "publish"))
        while True:
            try:
                self.processor.process(good)
                break
            except StorageError as exc:
                self._retry("processing a batch", exc)
                if self.stopping:
                    raise
            except Exception:  # one bad event must not block the stream: find it
                good, bad = self._isolate(good)
                rejected += bad
        if rejected:
            self._send_dead_letters(rejected)

    def _isolate(self, batch: list[Event]) -> tuple[list[Event], list[Event]]:
        """Process events one at a time; those that keep failing become dead letters."""
        bad = []
        for event in batch:
            for attempt in range(self.max_attempts):
                try:
                    self.processor.process([event])
                    break
                except StorageError:
                    raise
                except Exception as exc:
                    if attempt == self.max_attempts - 1:
                        reason = f"{type(exc).__name__}: {exc}"
                        bad.append(dead_letter(event, reason, "process"))
        return [], bad

    def _send_dead_letters(self, events: list[Event]) -> None:
        while True:
            try:
                self.log.produce(events)
            except StorageError as exc:
                self._retry("sending dead letters", exc)
                if self.stopping:
                    raise
                continue
            self.stats.dead_lettered += len(events)
            return

    def _commit(self, consumer: EventConsumer, batch: list[Event]) -> None:
        """Commit the batch (and any offsets an earlier failed commit left behind), once.

        A failed commit does not block: the effects are in the sink already, so the offsets wait
        for the next try (after the next poll, which is also what lets a Kafka consumer rejoin
        its group after a broker restart). Should they never be committed, the events only come
        again and the sink ignores them.
        """
        for event in batch:
            assert event.partition is not None and event.offset is not None
            tp = (event.topic, event.partition)
            held = self._uncommitted.get(tp)
            if held is None or (held.offset or 0) < event.offset:
                self._uncommitted[tp] = event
        if not self._uncommitted:
            return
        try:
            consumer.commit(list(self._uncommitted.values()))
        except StorageError as exc:
            self._retry("committing offsets", exc)
            return
        self._uncommitted.clear()
        self._failures = 0
