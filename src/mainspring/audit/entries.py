"""What the decision log stores and hands back: logged records, labels, override rates.

One chain holds three kinds of record, each a row of ``decision_log``: a ``decision``, an
``outcome`` attached to one, and a ``review`` of one. A row's ``hash`` covers every column and the
hash of the row before it (:func:`row_hash`), so altering, removing or re-linking any row breaks
the chain at that row.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mainspring.records import JSON, Decision, Outcome, Review
from mainspring.storage.chain import fields_hash


class Kind(enum.StrEnum):
    """The kinds of record in the decision log."""

    DECISION = "decision"
    OUTCOME = "outcome"
    REVIEW = "review"


def stamp(at: datetime) -> str:
    """The ``at`` column: UTC ISO-8601 with microseconds, so text order is time order.

    >>> from datetime import timedelta, timezone
    >>> stamp(datetime(2026, 1, 2, 1, tzinfo=timezone(timedelta(hours=1))))
    '2026-01-02T00:00:00.000000+00:00'
    """
    return at.astimezone(UTC).isoformat(timespec="microseconds")


#: the columns of ``decision_log`` in the order :meth:`Row.values` gives them
COLUMN_NAMES = ("seq", "id", "kind", "decision_id", "deployment", "at", "model", "version",
                "review_required", "body", "prev_hash", "hash")  # fmt: skip
COLUMNS = ", ".join(COLUMN_NAMES)


@dataclass(frozen=True, slots=True)
class Row:
    """One row of ``decision_log`` before (``seq``/hashes unset) or after it is written."""

    id: str
    kind: Kind
    decision_id: str
    deployment: str
    at: str
    model: str | None
    version: int | None
    review_required: bool
    body: str
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""

    def values(self) -> tuple[Any, ...]:
        """The row's values in the order of :data:`COLUMNS`."""
        return (self.seq, self.id, self.kind.value, self.decision_id, self.deployment, self.at,
                self.model, self.version, self.review_required, self.body, self.prev_hash,
                self.hash)  # fmt: skip

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> Row:
        """A row read as the values of :data:`COLUMNS`, in that order."""
        seq, id_, kind, decision_id, deployment, at, model, version, review, body, prev, hash_ = (
            values
        )
        return cls(id_, Kind(kind), decision_id, deployment, at, model, version, bool(review),
                   body, seq, prev, hash_)  # fmt: skip

    @classmethod
    def from_db(cls, row: Any) -> Row:
        """A row read through SQLAlchemy (columns as attributes)."""
        return cls.from_values(tuple(getattr(row, name) for name in COLUMN_NAMES))

    def linked(self, seq: int, prev_hash: str) -> Row:
        """This row at place ``seq`` of the chain, after the row whose hash is ``prev_hash``,
        with its own hash (:func:`row_hash`)."""
        digest = _digest(self, seq, prev_hash)
        return Row(self.id, self.kind, self.decision_id, self.deployment, self.at, self.model,
                   self.version, self.review_required, self.body, seq, prev_hash,
                   digest)  # fmt: skip

    def data(self) -> JSON:
        import orjson  # not at import time: `import mainspring` stays lean

        loaded: JSON = orjson.loads(self.body)
        return loaded


def row_hash(row: Any) -> str:
    """The hash of a row (a :class:`Row` or a database row): every column and ``prev_hash``."""
    return _digest(row, row.seq, row.prev_hash)


def _digest(row: Any, seq: int, prev_hash: str) -> str:
    """The hash of ``row``'s columns at place ``seq``, after the row hashed ``prev_hash``."""
    kind = row.kind.value if isinstance(row.kind, Kind) else row.kind
    return fields_hash(seq, row.id, str(kind), row.decision_id, row.deployment, row.at, row.model,
                       row.version, bool(row.review_required), row.body, prev_hash)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """A decision as the log holds it (personal fields already treated), with its place in the
    chain: ``seq`` and ``hash`` (over the record and ``prev_hash``)."""

    decision: Decision
    seq: int
    hash: str
    prev_hash: str

    @property
    def id(self) -> str:
        return self.decision.id

    def to_dict(self) -> JSON:
        return {
            **self.decision.to_dict(),
            "seq": self.seq,
            "hash": self.hash,
            "prev_hash": self.prev_hash,
        }

    @classmethod
    def from_row(cls, row: Row) -> LoggedDecision:
        return cls(Decision.from_dict(row.data()), row.seq, row.hash, row.prev_hash)


@dataclass(frozen=True, slots=True)
class Label:
    """A training label: the decision, the final decision (a reviewer's override wins), the
    review if any and the latest outcome if any."""

    decision: Decision
    final: str
    review: Review | None
    outcome: Outcome | None

    def to_dict(self) -> JSON:
        return {
            "decision": self.decision.to_dict(),
            "final": self.final,
            "review": self.review.to_dict() if self.review else None,
            "outcome": self.outcome.to_dict() if self.outcome else None,
        }


@dataclass(frozen=True, slots=True)
class OverrideRate:
    """How often reviewers overrode the decisions of one group (a model version or a segment)."""

    group: str
    reviews: int
    overrides: int

    @property
    def rate(self) -> float:
        return self.overrides / self.reviews if self.reviews else 0.0

    def to_dict(self) -> JSON:
        return {
            "group": self.group,
            "reviews": self.reviews,
            "overrides": self.overrides,
            "rate": self.rate,
        }
