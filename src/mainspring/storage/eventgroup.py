"""A consumer-group member of the embedded event log (see :mod:`mainspring.storage.eventlog`).

Membership is a row with a heartbeat in the log's file; every member computes the same assignment
from the live members (in id order, round-robin over the partitions), so members in several
processes share partitions without a coordinator. A member that stops heartbeating loses its
partitions after the log's ``session_timeout_s``; a new owner starts at the committed offset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from mainspring.errors import InvalidInputError
from mainspring.records import Event, new_id
from mainspring.storage.base import next_offsets
from mainspring.storage.eventcodec import now_ms
from mainspring.storage.eventlog import SqliteEventLog


class SqliteConsumer:
    """A member of a consumer group on a :class:`SqliteEventLog`."""

    def __init__(self, log: SqliteEventLog, group: str, topics: list[str]) -> None:
        self.log = log
        self.group = group
        self.topics = sorted(set(topics))
        self.member = new_id()
        self._positions: dict[tuple[str, int], int] = {}
        self._last_heartbeat = 0.0
        self._closed = False
        self._heartbeat(force=True)

    def _heartbeat(self, *, force: bool = False) -> None:
        """Refresh membership and the assignment (at most a few times a second)."""
        now = time.monotonic()
        if not force and now - self._last_heartbeat < min(1.0, self.log.session_timeout_s / 4):
            return
        self._last_heartbeat = now
        log = self.log
        beat_ms = now_ms()
        with log._lock, log._guard("join the consumer group"), log._write() as conn:
            conn.execute(
                "INSERT INTO group_members VALUES (?, ?, ?, ?) ON CONFLICT (grp, member) "
                "DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms",
                (self.group, self.member, json.dumps(self.topics), beat_ms),
            )
            conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND heartbeat_ms < ?",
                (self.group, beat_ms - int(log.session_timeout_s * 1000)),
            )
            members = [
                m
                for m, topics in conn.execute(
                    "SELECT member, topics FROM group_members WHERE grp = ? ORDER BY member",
                    (self.group,),
                ).fetchall()
            ]
            pairs = []
            for topic in self.topics:
                n = log._create(conn, topic, 1)
                pairs += [(topic, p) for p in range(n)]
            mine = {tp for i, tp in enumerate(pairs) if members[i % len(members)] == self.member}
            committed = {
                (t, p): o
                for t, p, o in conn.execute(
                    "SELECT topic, partition, next_offset FROM group_offsets WHERE grp = ?",
                    (self.group,),
                ).fetchall()
            }
            starts = {
                (t, p): o
                for t, p, o in conn.execute(
                    'SELECT topic, partition, MIN("offset") FROM events GROUP BY topic, partition'
                ).fetchall()
            }
        for tp in list(self._positions):
            if tp not in mine:
                del self._positions[tp]
        for tp in sorted(mine):
            if tp not in self._positions:
                self._positions[tp] = committed.get(tp, starts.get(tp, 0))

    def assignment(self) -> list[tuple[str, int]]:
        self._heartbeat()
        return sorted(self._positions)

    def poll(self, max_events: int = 500, timeout_s: float = 1.0) -> list[Event]:
        deadline = time.monotonic() + timeout_s
        while True:
            self._heartbeat()
            out: list[Event] = []
            for (topic, partition), position in sorted(self._positions.items()):
                if len(out) >= max_events:
                    break
                events = self.log.read(topic, partition, position, max_events - len(out))
                if events:
                    assert events[-1].offset is not None
                    self._positions[(topic, partition)] = events[-1].offset + 1
                    out += events
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def commit(self, events: Sequence[Event]) -> None:
        upto = next_offsets(events)
        if not upto:
            return
        log = self.log
        with log._lock, log._guard("commit offsets"), log._write() as conn:
            conn.executemany(
                "INSERT INTO group_offsets VALUES (?, ?, ?, ?) "
                "ON CONFLICT (grp, topic, partition) "
                "DO UPDATE SET next_offset = excluded.next_offset",
                [(self.group, t, p, o) for (t, p), o in upto.items()],
            )

    def seek(self, topic: str, partition: int, offset: int) -> None:
        if (topic, partition) not in self._positions:
            raise InvalidInputError(
                f"partition {partition} of {topic!r} is not assigned to this consumer; "
                f"assigned: {sorted(self._positions)}",
                field="partition",
            )
        self._positions[(topic, partition)] = offset

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        log = self.log
        with log._lock, log._guard("leave the consumer group"), log._write() as conn:
            conn.execute(
                "DELETE FROM group_members WHERE grp = ? AND member = ?", (self.group, self.member)
            )
