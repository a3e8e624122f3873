"""Joining two topics by id: each event of ``right`` (an outcome) is matched to the event of
``left`` (the prediction or decision it answers) with the same join id, within a time window.

:class:`TopicJoin` is a :class:`~mainspring.events.Processor` reading both topics. Either side may
come first; the other waits in the join's state. A match becomes one joined event on ``into``:
``{"id", "left": payload, "right": payload, "left_time", "right_time", "delay_s"}``, keyed like the
left event, with the join id as its idempotency key.

- **Late arrivals.** A right event is accepted when its event time is at most ``window`` after
  its left event's. A later one, a second one for an id already joined, or one whose left event
  never came within ``window`` (as the stream's event time moves on) goes to ``<right>.dlq`` with
  the reason. Left events that nothing answered within ``window`` are dropped from the state.
- **Exactly once.** State, the record of processed events and an outbox of what to emit change
  in one SQLite transaction (a :class:`~mainspring.events.SqliteSink`); the outbox is produced
  after the commit and emptied once the log acknowledged it. A crash after the commit re-emits the
  outbox on restart with the same event ids and idempotency keys, so consumers that dedupe by
  idempotency key (every sink here does) see each joined record once; the join's own table of
  joined ids holds each exactly once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from mainspring.errors import InvalidInputError
from mainspring.events.deadletter import dead_letter
from mainspring.events.sink import SqliteSink
from mainspring.records import IDEMPOTENCY_KEY, Event, check_name
from mainspring.storage.base import EventLog

#: A join id read from the events' headers (the idempotency key) instead of a payload field.
IDEMPOTENCY = "idempotency-key"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _topic_key(event: Event) -> str:
    """Processed events are told apart per topic: an outcome may share its prediction's key."""
    return f"{event.topic}\x1f{event.idempotency_key}"


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // _US


class TopicJoin:
    """Matches events of ``right`` to events of ``left`` by join id; emits the pairs to ``into``.

    ``left_key`` and ``right_key`` name the payload field holding the join id, or
    ``"idempotency-key"`` for the event's idempotency key. ``state`` is the SQLite file holding
    the join's state.

    >>> import os, tempfile
    >>> from mainspring.storage.memory import memory_event_log
    >>> log = memory_event_log()
    >>> join = TopicJoin(log, os.path.join(tempfile.mkdtemp(), "join.db"), left="predictions",
    ...                  right="outcomes", into="labelled", right_key="request_id",
    ...                  window=timedelta(days=1))
    >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
    >>> prediction = Event("predictions", {"score": 0.9}, event_time=t0,
    ...                    headers={"idempotency-key": "r-1"}, partition=0, offset=0)
    >>> outcome = Event("outcomes", {"request_id": "r-1", "label": 1},
    ...                 event_time=t0 + timedelta(hours=2), partition=0, offset=0)
    >>> join.process([outcome]); join.process([prediction, prediction])
    >>> [(e.payload["left"], e.payload["right"]["label"], e.payload["delay_s"])
    ...  for e in log.read("labelled", 0, 0)]
    [({'score': 0.9}, 1, 7200.0)]
    """

    def __init__(
        self,
        log: EventLog,
        state: str | Path,
        *,
        left: str,
        right: str,
        into: str,
        window: timedelta,
        left_key: str = IDEMPOTENCY,
        right_key: str = IDEMPOTENCY,
        name: str | None = None,
    ) -> None:
        for value, what in ((left, "left"), (right, "right"), (into, "into")):
            check_name(value, field=what)
        if left == right:
            raise InvalidInputError("left and right must be different topics", field="right")
        if not isinstance(window, timedelta) or window <= timedelta(0):
            raise InvalidInputError("window must be a positive timedelta", field="window")
        self.log = log
        self.left, self.right, self.into = left, right, into
        self.left_key, self.right_key = left_key, right_key
        self.window_us = window // _US
        self.topics = [left, right]
        self.name = name or f"join-{left}-{right}"
        self.sink = SqliteSink(state)
        for ddl in (
            "CREATE TABLE IF NOT EXISTS join_pending (side TEXT NOT NULL, id TEXT NOT NULL, "
            "event TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (side, id)) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS join_pending_at ON join_pending (at)",
            "CREATE TABLE IF NOT EXISTS join_done (id TEXT PRIMARY KEY, event_id TEXT NOT NULL) "
            "WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS join_clock (side TEXT PRIMARY KEY, at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS join_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "event TEXT NOT NULL)",
        ):
            self.sink.execute(ddl)
        self.flush()

    def _id(self, event: Event, field: str) -> str:
        if field == IDEMPOTENCY:
            return event.idempotency_key
        value = event.payload.get(field)
        if value is None:
            raise InvalidInputError(
                f"event of {event.topic!r} has no join id {field!r} in its payload", field=field
            )
        return str(value)

    def process(self, events: Sequence[Event]) -> None:
        self.sink.apply_batch(events, self._effect, key=_topic_key)
        self.flush()

    def _effect(self, conn: sqlite3.Connection, fresh: list[Event]) -> None:
        emit: list[Event] = []
        clocks = dict(conn.execute("SELECT side, at FROM join_clock").fetchall())
        for event in fresh:
            if event.topic == self.left:
                side, other, field = "left", "right", self.left_key
            elif event.topic == self.right:
                side, other, field = "right", "left", self.right_key
            else:
                continue
            at = _micros(event.event_time)
            clocks[side] = max(clocks.get(side, at), at)
            try:
                jid = self._id(event, field)
            except InvalidInputError as exc:
                emit.append(dead_letter(event, str(exc), "process"))
                continue
            if conn.execute("SELECT 1 FROM join_done WHERE id = ?", (jid,)).fetchone() or (
                conn.execute(
                    "SELECT 1 FROM join_pending WHERE side = ? AND id = ?", (side, jid)
                ).fetchone()
            ):
                emit.append(
                    dead_letter(
                        event,
                        f"a second {event.topic} event for id {jid!r}; the first counts",
                        "process",
                    )
                )
                continue
            found = conn.execute(
                "SELECT event FROM join_pending WHERE side = ? AND id = ?", (other, jid)
            ).fetchone()
            if found is None:
                conn.execute(
                    "INSERT INTO join_pending VALUES (?, ?, ?, ?)",
                    (side, jid, orjson.dumps(event.to_dict()).decode(), at),
                )
                continue
            conn.execute("DELETE FROM join_pending WHERE side = ? AND id = ?", (other, jid))
            waiting = Event.from_dict(orjson.loads(found[0]))
            emit.append(
                self._pair(conn, jid, *((event, waiting) if side == "left" else (waiting, event)))
            )
        conn.executemany("INSERT OR REPLACE INTO join_clock VALUES (?, ?)", list(clocks.items()))
        emit.extend(self._expire(conn, clocks))
        conn.executemany(
            "INSERT INTO join_outbox (event) VALUES (?)",
            [(orjson.dumps(e.to_dict()).decode(),) for e in emit],
        )

    def _pair(self, conn: sqlite3.Connection, jid: str, left: Event, right: Event) -> Event:
        """The joined record of a pair, or the right event as a dead letter when it came late."""
        delay = right.event_time - left.event_time
        if delay // _US > self.window_us:
            return dead_letter(
                right,
                f"arrived {delay} after {self.left} event {jid!r}; the window is "
                f"{timedelta(microseconds=self.window_us)}",
                "process",
            )
        joined = Event(
            self.into,
            {
                "id": jid,
                "left": left.payload,
                "right": right.payload,
                "left_time": left.event_time.isoformat(),
                "right_time": right.event_time.isoformat(),
                "delay_s": delay.total_seconds(),
            },
            key=left.key,
            event_time=max(left.event_time, right.event_time),
            headers={IDEMPOTENCY_KEY: jid},
        )
        conn.execute("INSERT INTO join_done VALUES (?, ?)", (jid, joined.id))
        return joined

    def _expire(self, conn: sqlite3.Connection, clocks: dict[str, int]) -> list[Event]:
        """Settle what waited past the window, judged by the other side's event time (each
        topic is read at its own pace): a left event nothing answered is dropped, a right event
        whose left never came is a dead letter."""
        out = []
        if "left" in clocks:
            before = clocks["left"] - self.window_us
            for (text,) in conn.execute(
                "SELECT event FROM join_pending WHERE side = 'right' AND at < ?", (before,)
            ).fetchall():
                out.append(
                    dead_letter(
                        Event.from_dict(orjson.loads(text)),
                        f"no {self.left} event with its id came within the window of "
                        f"{timedelta(microseconds=self.window_us)}",
                        "process",
                    )
                )
            conn.execute("DELETE FROM join_pending WHERE side = 'right' AND at < ?", (before,))
        if "right" in clocks:
            conn.execute(
                "DELETE FROM join_pending WHERE side = 'left' AND at < ?",
                (clocks["right"] - self.window_us,),
            )
        return out

    def flush(self) -> int:
        """Produce what the outbox holds (the same events, ids and keys after a crash)."""
        rows = self.sink.execute("SELECT seq, event FROM join_outbox ORDER BY seq")
        if not rows:
            return 0
        self.log.produce([Event.from_dict(orjson.loads(str(text))) for _, text in rows])
        self.sink.execute("DELETE FROM join_outbox WHERE seq <= ?", (rows[-1][0],))
        return len(rows)

    def joined(self) -> int:
        """How many ids were joined (each once)."""
        return int(str(self.sink.execute("SELECT count(*) FROM join_done")[0][0]))

    def pending(self) -> dict[str, int]:
        """How many events wait for their other side, per side."""
        rows = self.sink.execute("SELECT side, count(*) FROM join_pending GROUP BY side")
        return {str(side): int(str(n)) for side, n in rows}

    def close(self) -> None:
        self.sink.close()
