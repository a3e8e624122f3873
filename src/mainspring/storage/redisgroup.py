"""A consumer-group member of the Redis Streams event log (see
:mod:`mainspring.storage.redisstreams`).

Membership is an entry in the group's sorted set, scored by when its session expires (Redis's
clock); a heartbeat refreshes it and drops the expired members. Every member computes the same
assignment from the live members (in id order, round-robin over the partitions), so members in
several processes share partitions without a coordinator; a member that stops heartbeating
(``kill -9``) loses its partitions after the log's ``session_timeout_s``, and the new owner starts
at the group's committed offset. Reading is ``XREAD`` on the assigned streams, blocking while
nothing is there.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.records import Event, new_id
from mainspring.storage.base import next_offsets
from mainspring.storage.redisentries import event_of
from mainspring.storage.redisscripts import HEARTBEAT
from mainspring.storage.redisstreams import RedisStreamsEventLog


class RedisStreamsConsumer:
    """A member of a consumer group on a :class:`RedisStreamsEventLog`."""

    def __init__(self, log: RedisStreamsEventLog, group: str, topics: list[str]) -> None:
        self.log = log
        self.group = group
        self.topics = sorted(set(topics))
        self.member = new_id()
        self._members_key = log.members_key(group)
        self._heartbeat_script = log.client.register_script(HEARTBEAT)
        self._positions: dict[tuple[str, int], int] = {}
        self._streams: dict[bytes, tuple[str, int]] = {}
        self._last_heartbeat = 0.0
        self._turn = 0
        self._closed = False
        self._heartbeat(force=True)

    @property
    def _beat_s(self) -> float:
        return min(1.0, self.log.session_timeout_s / 4)

    def _heartbeat(self, *, force: bool = False) -> None:
        """Refresh membership and the assignment (at most a few times a second)."""
        now = time.monotonic()
        if not force and now - self._last_heartbeat < self._beat_s:
            return
        log = self.log
        with log.guard("join the consumer group"):
            members = sorted(
                m.decode()
                for m in self._heartbeat_script(
                    keys=[self._members_key],
                    args=[self.member, int(log.session_timeout_s * 1000)],
                )
            )
        self._last_heartbeat = now
        pairs = []
        for topic in self.topics:
            try:
                n = log.partitions(topic)
            except NotFoundError:
                n = log._create(topic, 1)
            pairs += [(topic, p) for p in range(n)]
        mine = {tp for i, tp in enumerate(pairs) if members[i % len(members)] == self.member}
        for tp in list(self._positions):
            if tp not in mine:
                del self._positions[tp]
        new = sorted(mine - set(self._positions))
        if new:
            committed = {topic: log.committed(self.group, topic) for topic in {t for t, _ in new}}
            for topic, partition in new:
                # no commit yet: from the first retained event (XREAD after 0-0)
                self._positions[(topic, partition)] = committed[topic].get(partition, 0)
        self._streams = {log.stream_key(t, p).encode(): (t, p) for t, p in sorted(self._positions)}

    def assignment(self) -> list[tuple[str, int]]:
        self._heartbeat()
        return sorted(self._positions)

    def poll(self, max_events: int = 500, timeout_s: float = 1.0) -> list[Event]:
        deadline = time.monotonic() + timeout_s
        block_ms: int | None = None  # the first read does not wait
        while True:
            self._heartbeat()
            if self._positions:
                out = self._read(max_events, block_ms)
                if out:
                    return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if not self._positions:
                time.sleep(min(0.05, remaining))
                continue
            # wait for new events, but wake up in time to heartbeat
            block_ms = max(1, int(min(remaining, self._beat_s) * 1000))

    def _read(self, max_events: int, block_ms: int | None) -> list[Event]:
        """Read up to ``max_events`` from the assigned streams, in rounds: each round asks every
        stream still active for an equal share of what is missing (so a batch does not fetch, and
        parse, ``max_events`` from every partition), and the streams that filled their share go
        on to the next round."""
        order = list(self._streams)
        start = self._turn % len(order)  # take turns at being first, so no partition starves
        self._turn += 1
        active = order[start:] + order[:start]
        out: list[Event] = []
        while active and len(out) < max_events:
            share = -(-(max_events - len(out)) // len(active))
            streams = {}
            for name in active:
                position = self._positions[self._streams[name]]
                streams[name] = f"{position - 1}-1" if position > 0 else "0-0"
            with self.log.guard("read events"):
                reply = self.log.client.xread(streams, count=share, block=block_ms)
            block_ms = None  # only the first round waits
            found = dict(reply or [])
            full = []
            for name in active:
                entries = found.get(name)
                if not entries or len(out) >= max_events:
                    continue
                topic, partition = self._streams[name]
                taken = [
                    event_of(topic, partition, i, fields)
                    for i, fields in entries[: max_events - len(out)]
                ]
                last = taken[-1].offset
                assert last is not None
                self._positions[(topic, partition)] = last + 1
                out += taken
                if len(entries) == share:
                    full.append(name)
            active = full
        return out

    def commit(self, events: Sequence[Event]) -> None:
        upto = next_offsets(events)
        if not upto:
            return
        log = self.log
        with log.guard("commit offsets"):
            pipe = log.client.pipeline(transaction=True)
            for (topic, partition), offset in upto.items():
                pipe.hset(log.offsets_key(self.group, topic), str(partition), offset)
            pipe.execute()

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) not in self._positions:
            raise InvalidInputError(
                f"partition {partition} of {topic!r} is not assigned to this consumer; "
                f"assigned: {sorted(self._positions)}",
                field="partition",
            )
        self._positions[(topic, partition)] = max(0, offset)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.log.guard("leave the consumer group"):
            self.log.client.zrem(self._members_key, self.member)
