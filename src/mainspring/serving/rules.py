"""Business rules of decision policies: conditions on the request, the features and the score.

A rule's ``if`` maps a path (``context.age``, ``entity.customer``, ``features.income``, ``score``)
to conditions (``<``, ``<=``, ``>``, ``>=``, ``==``, ``!=``, ``in``, ``not_in``, ``missing``);
all must hold. ``before`` rules see the request only; ``after`` rules also see the features and
the score. Rules are parsed once, when the policy is stored (:func:`parse_rules`).

>>> [rule] = parse_rules([{"name": "minor", "if": {"context.age": {"<": 18}},
...                        "decision": "decline"}], "before", "rules.before")
>>> rule.matches({"context": {"age": 16}}), rule.matches({"context": {}})
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mainspring.errors import InvalidInputError

STAGES = ("before", "after")
_PATH_ROOTS = {"before": ("context", "entity"), "after": ("context", "entity", "features", "score")}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        def run(a: Any, b: Any) -> bool:
            if _missing(a):
                return False
            try:
                return bool(test(a, b))
            except TypeError:
                return False

        return run

    table: dict[str, Callable[[Any, Any], bool]] = {
        "<": ordered(lambda a, b: a < b),
        "<=": ordered(lambda a, b: a <= b),
        ">": ordered(lambda a, b: a > b),
        ">=": ordered(lambda a, b: a >= b),
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "in": lambda a, b: a in b,
        "not_in": lambda a, b: a not in b,
        "missing": lambda a, b: _missing(a) == bool(b),
    }
    return table[op]


OPERATORS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in", "missing")


@dataclass(frozen=True, slots=True)
class Condition:
    """``path op value``, e.g. ``context.age < 18``."""

    path: tuple[str, ...]
    op: str
    value: Any
    test: Callable[[Any, Any], bool] = field(repr=False, compare=False)

    def holds(self, facts: Mapping[str, Any]) -> bool:
        current: Any = facts
        for part in self.path:
            if not isinstance(current, Mapping) or part not in current:
                current = None
                break
            current = current[part]
        return self.test(current, self.value)


@dataclass(frozen=True, slots=True)
class Rule:
    """A named business rule: when every condition holds, it decides (and/or flags review)."""

    name: str
    conditions: tuple[Condition, ...]
    decision: str | None
    review: bool

    def matches(self, facts: Mapping[str, Any]) -> bool:
        return all(c.holds(facts) for c in self.conditions)


def flag(value: Any, where: str) -> bool:
    """``value`` if it is a boolean, else an error naming ``where``."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{where} must be true or false", field=where)
    return value


def nonempty(value: Any, where: str) -> str:
    """``value`` if it is a non-blank string (a decision, a rule name), else an error."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{where} must be a non-empty string", field=where)
    return value


def parse_rules(value: Any, stage: str, where: str) -> tuple[Rule, ...]:
    """The ``stage`` rules of a policy from their JSON form (errors name the field)."""
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInputError(f"{where} must be a list of rules", field=where)
    rules: list[Rule] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInputError(f"{at} must be an object", field=at)
        extra = sorted(set(item) - {"name", "if", "decision", "review"})
        if extra:
            raise InvalidInputError(
                f"{at}.{extra[0]} is not a rule field; use name, if, decision, review",
                field=f"{at}.{extra[0]}",
            )
        name = nonempty(item.get("name"), f"{at}.name")
        decision = item.get("decision")
        if decision is not None:
            decision = nonempty(decision, f"{at}.decision")
        review = flag(item.get("review", False), f"{at}.review")
        if decision is None and not review:
            raise InvalidInputError(
                f"{at} must set a decision or review: true", field=f"{at}.decision"
            )
        rules.append(Rule(name, _conditions(item.get("if"), stage, f"{at}.if"), decision, review))
    return tuple(rules)


def _conditions(value: Any, stage: str, where: str) -> tuple[Condition, ...]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInputError(
            f'{where} must map paths to conditions, e.g. {{"context.age": {{"<": 18}}}}',
            field=where,
        )
    roots = _PATH_ROOTS[stage]
    out: list[Condition] = []
    for path, tests in value.items():
        parts = tuple(str(path).split("."))
        at = f"{where}.{path}"
        if (
            parts[0] not in roots
            or (parts[0] != "score" and len(parts) != 2)
            or any(not p for p in parts)
        ):
            paths = ", ".join(r if r == "score" else f"{r}.NAME" for r in roots)
            raise InvalidInputError(f"{at}: a {stage} rule can test {paths}", field=at)
        if not isinstance(tests, Mapping) or not tests:
            raise InvalidInputError(f'{at} must be an object like {{"<": 18}}', field=at)
        for op, operand in tests.items():
            if op not in OPERATORS:
                raise InvalidInputError(
                    f"{at}: unknown operator {op!r}; use one of {' '.join(OPERATORS)}",
                    field=f"{at}.{op}",
                )
            if op in ("in", "not_in") and (
                not isinstance(operand, Sequence) or isinstance(operand, str)
            ):
                raise InvalidInputError(f"{at}.{op} needs a list", field=f"{at}.{op}")
            if op == "missing" and not isinstance(operand, bool):
                raise InvalidInputError(f"{at}.missing needs true or false", field=f"{at}.missing")
            if op in ("in", "not_in"):
                operand = tuple(operand)
            out.append(Condition(parts, op, operand, _compare(op)))
    return tuple(out)
