"""Checks on what is about to be logged, and the stored JSON bodies of records."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from mainspring.audit.entries import stamp
from mainspring.errors import InvalidInputError
from mainspring.records import Decision
from mainspring.storage.chain import canonical_json

MAX_ID = 64
MAX_NAME = 128


def _all_finite(values: Iterable[Any]) -> bool:
    """No NaN or infinity among ``values`` (other types pass): the sum of the floats, checked
    once, answers for all of them unless it overflowed, when each is looked at."""
    floats = [v for v in values if isinstance(v, float)]
    total = sum(floats)
    return total - total == 0.0 or all(map(math.isfinite, floats))


def _finite_numbers(decision: Decision) -> bool:
    """No NaN or infinity among the decision's numbers. A decision with a number for every
    feature is answered by one sum of its numbers (one check, as :func:`_all_finite`); one with a
    missing value or text among them by looking at every value."""
    try:
        total = sum(decision.attributions.values()) + sum(decision.shadows.values())
        total += sum([f.value for f in decision.features])
        total += sum([r.contribution for r in decision.reasons])
        for number in (decision.raw, decision.score, decision.confidence, decision.base_value):
            if number is not None:
                total += number
        total += decision.latency_ms
        for value in itertools.chain(decision.entity.values(), decision.context.values()):
            if isinstance(value, float):
                total += value
    except (TypeError, OverflowError):  # a None, text, an integer past float range: each value
        total = math.nan
    return total - total == 0.0 or _all_finite(
        itertools.chain(
            (decision.raw, decision.score, decision.confidence, decision.base_value,
             decision.latency_ms),
            decision.attributions.values(), decision.shadows.values(),
            (f.value for f in decision.features), (r.contribution for r in decision.reasons),
            decision.entity.values(), decision.context.values(),
        )
    )  # fmt: skip


def decision_json(decision: Decision) -> str:
    """The stored body of a decision: sorted-key JSON, as :func:`canonical_json` but with orjson
    (the body is hashed as stored, so only its determinism matters; this is 15x faster, which
    counts once per decision). NaN and infinity are refused, as ``canonical_json`` does."""
    import orjson  # not at import time: `import mainspring` stays lean

    if not _finite_numbers(decision):
        raise InvalidInputError(
            "decision cannot be logged: it holds NaN or infinity (log missing values as null)",
            field="decision",
        )
    try:
        return orjson.dumps(decision.to_dict(), option=orjson.OPT_SORT_KEYS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInputError(f"decision cannot be logged: {exc}", field="decision") from None


def json_text(value: Any, where: str) -> str:
    """``value`` as canonical JSON, or an error naming ``where`` (NaN and infinity refused)."""
    try:
        return canonical_json(value)
    except ValueError as exc:  # NaN or infinity
        raise InvalidInputError(f"{where} cannot be logged: {exc}", field=where) from None


def text(value: Any, where: str, limit: int, *, required: bool = True) -> str:
    """``value`` if it is a string (non-blank when ``required``) of at most ``limit`` chars."""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInputError(f"{where} must be a non-empty string", field=where)
    if len(value) > limit:
        raise InvalidInputError(f"{where} is longer than {limit} characters", field=where)
    return value


def aware(value: datetime | None, where: str) -> str | None:
    """The stored text of an optional timezone-aware time (naive times are refused)."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInputError(f"{where} must be a timezone-aware time", field=where)
    return stamp(value)


def segment(data: Any, name: str) -> Any:
    """A decision's value of segment field ``name``: from its entity, else its context."""
    for part in ("entity", "context"):
        section = data.get(part) if isinstance(data, dict) else None
        if isinstance(section, dict) and name in section:
            return section[name]
    return None
