"""An append-only, hash-chained log on the metadata store: the registry history, the decision log.

Each entry carries the SHA-256 of the entry before it and its own hash over every field, so any
altered, removed or re-ordered entry breaks the chain at a place :meth:`HashChain.verify` names.
The database also refuses UPDATE and DELETE on the table (triggers), so tampering needs intent.

>>> from mainspring.storage.memory import memory_metadata
>>> chain = HashChain(memory_metadata(), "demo")
>>> with chain.store.write() as conn:
...     first = chain.append(conn, actor="ann", action="create", subject="thing/1")
...     second = chain.append(conn, actor="bob", action="update", subject="thing/1")
>>> second.prev_hash == first.hash, chain.verify().ok
(True, True)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from mainspring.records import ChainEntry, utcnow
from mainspring.storage.base import MetadataStore
from mainspring.storage.schema import chain_entries

GENESIS = "0" * 64
_PAGE = 5000


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept (what the chain hashes)."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=str,
    )


def entry_hash(
    stream: str,
    seq: int,
    at: str,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    details: str,
    prev_hash: str,
) -> str:
    """The hash of one entry, over every field and the previous entry's hash."""
    return fields_hash(stream, seq, at, actor, action, subject, reason, details, prev_hash)


_PLAIN = frozenset({str, int, bool, type(None)})


def fields_hash(*fields: Any) -> str:
    """SHA-256 (hex) of the canonical JSON list of ``fields``: how every chain hashes a record.

    Fields that are all text, integers, booleans or null (a logged row) are encoded by orjson,
    which writes those exactly as :func:`canonical_json` does (tested) and several times faster;
    anything else, and what orjson refuses (integers past 64 bits), by :func:`canonical_json`.

    >>> fields_hash("a", 1) == fields_hash("a", 1) != fields_hash("a", "1")
    True
    """
    if all(type(f) in _PLAIN for f in fields):
        import orjson  # not at import time: `import mainspring` stays lean

        try:
            return hashlib.sha256(orjson.dumps(fields)).hexdigest()
        except TypeError:
            pass
    return hashlib.sha256(canonical_json(list(fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of checking a chain: ``ok``, or the first bad entry and what is wrong with it."""

    stream: str
    checked: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""
    subject: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"{self.stream}: {self.checked} entries, chain intact"
        return (
            f"{self.stream}: entry {self.first_bad_seq} ({self.subject or 'missing'}) "
            f"{self.problem}"
        )


def _row_to_entry(row: Any) -> ChainEntry:
    return ChainEntry(
        stream=row.stream,
        seq=row.seq,
        at=datetime.fromisoformat(row.at),
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        reason=row.reason,
        details=json.loads(row.details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class HashChain:
    """One named stream of hash-chained entries in a :class:`MetadataStore`."""

    def __init__(self, store: MetadataStore, stream: str) -> None:
        self.store = store
        self.stream = stream

    def append(
        self,
        conn: Connection,
        *,
        actor: str,
        action: str,
        subject: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> ChainEntry:
        """Append an entry inside the caller's write transaction (``store.write()``).

        The caller's transaction holds the write lock, so the head cannot move underneath; the
        entry commits or rolls back together with the change it records.
        """
        head = conn.execute(
            select(chain_entries.c.seq, chain_entries.c.hash)
            .where(chain_entries.c.stream == self.stream)
            .order_by(chain_entries.c.seq.desc())
            .limit(1)
        ).first()
        seq = head.seq + 1 if head else 1
        prev = head.hash if head else GENESIS
        stamp = (at or utcnow()).isoformat(timespec="microseconds")
        body = canonical_json(details or {})
        digest = entry_hash(self.stream, seq, stamp, actor, action, subject, reason, body, prev)
        conn.execute(
            chain_entries.insert().values(
                stream=self.stream,
                seq=seq,
                at=stamp,
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                details=body,
                prev_hash=prev,
                hash=digest,
            )
        )
        return ChainEntry(
            self.stream,
            seq,
            datetime.fromisoformat(stamp),
            actor,
            action,
            subject,
            reason,
            json.loads(body),
            prev,
            digest,
        )

    def entries(
        self,
        *,
        subject: str | None = None,
        subject_prefix: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[ChainEntry]:
        """Entries in order, optionally only those about ``subject`` (or under a prefix)."""
        query = (
            select(chain_entries)
            .where(chain_entries.c.stream == self.stream, chain_entries.c.seq > after_seq)
            .order_by(chain_entries.c.seq)
        )
        if subject is not None:
            query = query.where(chain_entries.c.subject == subject)
        if subject_prefix is not None:
            query = query.where(chain_entries.c.subject.startswith(subject_prefix, autoescape=True))
        if limit is not None:
            query = query.limit(limit)
        with self.store.read() as conn:
            return [_row_to_entry(r) for r in conn.execute(query)]

    def count(self) -> int:
        with self.store.read() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(chain_entries)
                .where(chain_entries.c.stream == self.stream)
            ).scalar_one()
            return int(n)

    def _pages(self) -> Iterator[Any]:
        last = 0
        while True:
            with self.store.read() as conn:
                rows = conn.execute(
                    select(chain_entries)
                    .where(chain_entries.c.stream == self.stream, chain_entries.c.seq > last)
                    .order_by(chain_entries.c.seq)
                    .limit(_PAGE)
                ).all()
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def verify(self) -> Verification:
        """Walk the chain from the start and name the first entry that does not check out."""
        prev, expected, checked = GENESIS, 1, 0
        for row in self._pages():
            if row.seq != expected:
                return Verification(
                    self.stream,
                    checked,
                    False,
                    expected,
                    f"is missing (the next entry present is {row.seq})",
                    None,
                )
            if row.prev_hash != prev:
                problem = "does not link to the entry before it (prev_hash differs)"
                return Verification(self.stream, checked, False, row.seq, problem, row.subject)
            digest = entry_hash(
                self.stream,
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.subject,
                row.reason,
                row.details,
                row.prev_hash,
            )
            if digest != row.hash:
                problem = "was altered after it was written (its hash does not match)"
                return Verification(self.stream, checked, False, row.seq, problem, row.subject)
            prev, expected, checked = row.hash, expected + 1, checked + 1
        return Verification(self.stream, checked, True)
