"""Decision policies: what a deployment does with a score.

A policy is plain data (JSON or YAML), validated once when the deployment is stored, so a decision
only compares numbers. In order, a decision:

1. runs the ``before`` rules on the request (entity keys, context): the first that matches decides
   without the model (a rule may also just flag the decision for review);
2. scores with the model unless ``model_enabled`` is false or the model is unavailable, in which
   case ``fallback`` decides;
3. maps the score to a decision with ``thresholds``: the first band whose ``below`` is above the
   score wins, the last band (without ``below``) catches the rest;
4. flags it for human review when the score lies in the ``review`` band;
5. runs the ``after`` rules, which also see ``score`` and the features, and may change the decision.

A rule's ``if`` maps a path (``context.age``, ``entity.customer``, ``features.income``, ``score``)
to conditions (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``in``, ``not_in``, ``missing``); all
must hold.

>>> policy = Policy.from_dict({
...     "thresholds": [{"below": 0.3, "decision": "approve"}, {"decision": "decline"}],
...     "review": {"low": 0.25, "high": 0.4},
...     "rules": {"before": [{"name": "minor", "if": {"context.age": {"<": 18}},
...                           "decision": "decline"}]}})
>>> policy.band(0.1), policy.band(0.35), policy.in_review_band(0.35)
('approve', 'decline', True)
>>> rule = policy.first_rule("before", {"context": {"age": 16}})
>>> rule.name, rule.decision
('minor', 'decline')
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.serving.rules import STAGES, Rule, flag, nonempty, parse_rules

#: How an unknown entity (no row in any view) is handled.
UNKNOWN_ENTITY = ("refuse", "defaults")


@dataclass(frozen=True, slots=True)
class Band:
    below: float | None
    decision: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated decision policy (see the module docstring for the fields)."""

    thresholds: tuple[Band, ...]
    review_low: float | None = None
    review_high: float | None = None
    before: tuple[Rule, ...] = ()
    after: tuple[Rule, ...] = ()
    fallback: str = "review"
    fallback_review: bool = True
    model_enabled: bool = True
    output: str | None = None
    unknown_entity: str = "refuse"
    defaults: Mapping[str, Any] = field(default_factory=dict)
    top_k: int = 5
    toward: str = "up"
    reason_codes: Mapping[str, Any] = field(default_factory=dict)
    explain: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def digest(self) -> str:
        """A short hash of the policy's definition: part of the logged policy version."""
        body = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def score_column(self, outputs: Sequence[str], *, model: str = "the model") -> int:
        """Which of a model's outputs is the score: ``output`` when the policy names one, else
        the first. A named ``output`` the model lacks is refused (``model`` names it in the
        message): scoring another column would decide on the wrong number.

        >>> Policy.from_dict({"thresholds": [{"decision": "approve"}], "output": "probability_2"}
        ...                  ).score_column(("probability_0", "probability_1", "probability_2"))
        2
        """
        if self.output is None:
            return 0
        if self.output in outputs:
            return outputs.index(self.output)
        raise InvalidInputError(
            f"policy.output is {self.output!r}, which {model} does not have; its outputs are "
            f"{', '.join(outputs) or 'unnamed'}: set policy.output to one of them (or leave it "
            "out to score the first)",
            field="policy.output",
        )

    def band(self, score: float) -> str:
        for band in self.thresholds:
            if band.below is None or score < band.below:
                return band.decision
        return self.thresholds[-1].decision

    def in_review_band(self, score: float) -> bool:
        if self.review_low is None or self.review_high is None:
            return False
        return self.review_low <= score <= self.review_high

    def first_rule(self, stage: str, facts: Mapping[str, Any]) -> Rule | None:
        rules = self.before if stage == "before" else self.after
        for rule in rules:
            if rule.matches(facts):
                return rule
        return None

    def conclude(
        self, score: float, facts: Mapping[str, Any], flagged_by: Rule | None = None
    ) -> tuple[str, bool, str]:
        """Decision, review flag and what decided, for a model ``score`` (steps 3-5).

        ``facts`` holds ``context``, ``entity`` and ``features``; ``flagged_by`` is a ``before``
        rule that asked for review without deciding.
        """
        decision = self.band(score)
        review = flagged_by is not None or self.in_review_band(score)
        after = self.first_rule("after", {**facts, "score": score})
        if after is not None:
            return after.decision or decision, review or after.review, f"after:{after.name}"
        if flagged_by is not None:
            return decision, review, f"thresholds (before:{flagged_by.name} asked for review)"
        return decision, review, "thresholds"

    @property
    def decisions(self) -> frozenset[str]:
        """Every decision this policy can reach (a reviewer may override to any of them)."""
        names = {b.decision for b in self.thresholds} | {self.fallback}
        names |= {r.decision for r in (*self.before, *self.after) if r.decision}
        return frozenset(names)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Any, where: str = "policy") -> Policy:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{where} must be an object", field=where)
        known = {
            "thresholds", "review", "rules", "fallback", "model_enabled", "output",
            "unknown_entity", "defaults", "explain",
        }  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(
                f"{where}.{unknown[0]} is not a policy field; use: {', '.join(sorted(known))}",
                field=f"{where}.{unknown[0]}",
            )
        thresholds = _thresholds(data.get("thresholds"), f"{where}.thresholds")
        low, high = _review(data.get("review"), f"{where}.review")
        rules = data.get("rules") or {}
        if not isinstance(rules, Mapping) or set(rules) - set(STAGES):
            raise InvalidInputError(
                f"{where}.rules must be an object with 'before' and/or 'after' lists",
                field=f"{where}.rules",
            )
        fallback, fallback_review = _fallback(data.get("fallback"), f"{where}.fallback")
        unknown_entity = data.get("unknown_entity", "refuse")
        if unknown_entity not in UNKNOWN_ENTITY:
            raise InvalidInputError(
                f"{where}.unknown_entity must be one of {', '.join(UNKNOWN_ENTITY)}",
                field=f"{where}.unknown_entity",
            )
        defaults = data.get("defaults") or {}
        if not isinstance(defaults, Mapping) or not all(isinstance(k, str) for k in defaults):
            raise InvalidInputError(
                f"{where}.defaults must map feature names to values", field=f"{where}.defaults"
            )
        explain = _explain(data.get("explain"), f"{where}.explain")
        return cls(
            thresholds=thresholds,
            review_low=low,
            review_high=high,
            before=parse_rules(rules.get("before"), "before", f"{where}.rules.before"),
            after=parse_rules(rules.get("after"), "after", f"{where}.rules.after"),
            fallback=fallback,
            fallback_review=fallback_review,
            model_enabled=flag(data.get("model_enabled", True), f"{where}.model_enabled"),
            output=_optional_str(data.get("output"), f"{where}.output"),
            unknown_entity=unknown_entity,
            defaults=dict(defaults),
            raw=json.loads(json.dumps(data, default=str)),
            **explain,
        )


def _optional_str(value: Any, where: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidInputError(f"{where} must be a non-empty string", field=where)
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{where} must be a finite number", field=where)
    return float(value)


def _thresholds(value: Any, where: str) -> tuple[Band, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise InvalidInputError(
            f"{where} must be a non-empty list of bands like "
            '{"below": 0.3, "decision": "approve"}, the last without "below"',
            field=where,
        )
    bands: list[Band] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"{at} must be an object", field=at)
        extra = sorted(set(item) - {"below", "decision"})
        if extra:
            bad = f"{at}.{extra[0]}"
            raise InvalidInputError(f"{bad} is not a band field; use below, decision", field=bad)
        decision = nonempty(item.get("decision"), f"{at}.decision")
        last = i == len(value) - 1
        if last:
            if item.get("below") is not None:
                raise InvalidInputError(
                    f"{at} is the last band and catches every other score: drop its 'below'",
                    field=f"{at}.below",
                )
            bands.append(Band(None, decision))
            continue
        below = _number(item.get("below"), f"{at}.below")
        if bands and bands[-1].below is not None and below <= bands[-1].below:
            raise InvalidInputError(
                f"{at}.below must be above the band before", field=f"{at}.below"
            )
        bands.append(Band(below, decision))
    return tuple(bands)


def _review(value: Any, where: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping) or set(value) != {"low", "high"}:
        raise InvalidInputError(f'{where} must be {{"low": number, "high": number}}', field=where)
    low, high = _number(value["low"], f"{where}.low"), _number(value["high"], f"{where}.high")
    if low > high:
        raise InvalidInputError(f"{where}.low must not be above {where}.high", field=f"{where}.low")
    return low, high


def _fallback(value: Any, where: str) -> tuple[str, bool]:
    if value is None:
        return "review", True
    if not isinstance(value, Mapping) or set(value) - {"decision", "review"}:
        raise InvalidInputError(
            f'{where} must be {{"decision": "...", "review": true|false}}', field=where
        )
    return (
        nonempty(value.get("decision"), f"{where}.decision"),
        flag(value.get("review", True), f"{where}.review"),
    )


def _explain(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or set(value) - {"enabled", "top_k", "toward", "codes"}:
        raise InvalidInputError(
            f"{where} must be an object with enabled, top_k, toward and/or codes", field=where
        )
    top_k = value.get("top_k", 5)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 0 <= top_k <= 100:
        raise InvalidInputError(
            f"{where}.top_k must be an integer from 0 to 100", field=f"{where}.top_k"
        )
    toward = value.get("toward", "up")
    if toward not in ("up", "down", "both"):
        raise InvalidInputError(f"{where}.toward must be up, down or both", field=f"{where}.toward")
    codes = value.get("codes") or {}
    if not isinstance(codes, Mapping):
        raise InvalidInputError(f"{where}.codes must be an object", field=f"{where}.codes")
    from mainspring.explain.reasons import ReasonCodes

    try:  # checked now, not when the first decision is explained
        ReasonCodes.from_mapping(codes)
    except InvalidInputError as exc:
        field = f"{where}.codes.{exc.field}" if exc.field else f"{where}.codes"
        raise InvalidInputError(f"{where}.codes: {exc.message}", field=field) from None
    return {
        "explain": flag(value.get("enabled", True), f"{where}.enabled"),
        "top_k": top_k,
        "toward": toward,
        "reason_codes": dict(codes),
    }
