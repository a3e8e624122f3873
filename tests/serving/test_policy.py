"""Decision policies: validation of user input and the meaning of each field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.serving.policy import Policy

BANDS = [{"below": 0.3, "decision": "approve"}, {"below": 0.7, "decision": "refer"},
         {"decision": "decline"}]  # fmt: skip


def test_bands_review_band_and_decisions() -> None:
    policy = Policy.from_dict({"thresholds": BANDS, "review": {"low": 0.25, "high": 0.35}})
    assert [policy.band(s) for s in (0.0, 0.29, 0.3, 0.69, 0.7, 1.0)] == [
        "approve", "approve", "refer", "refer", "decline", "decline"
    ]  # fmt: skip
    assert [policy.in_review_band(s) for s in (0.2, 0.25, 0.35, 0.4)] == [False, True, True, False]
    assert policy.decisions == {"approve", "refer", "decline", "review"}


def test_rules_test_paths_with_operators() -> None:
    policy = Policy.from_dict({
        "thresholds": [{"decision": "approve"}],
        "rules": {
            "before": [
                {"name": "blocked", "if": {"entity.id": {"in": ["x", "y"]}}, "decision": "no"},
                {"name": "no-age", "if": {"context.age": {"missing": True}}, "review": True},
            ],
            "after": [{"name": "thin", "if": {"features.lines": {"<=": 1}, "score": {">": 0.1}},
                       "decision": "refer"}],
        },
    })  # fmt: skip
    blocked = policy.first_rule("before", {"entity": {"id": "x"}, "context": {"age": 30}})
    assert blocked is not None and blocked.name == "blocked"
    no_age = policy.first_rule("before", {"entity": {"id": "z"}, "context": {}})
    assert no_age is not None and (no_age.decision, no_age.review) == (None, True)
    assert policy.first_rule("before", {"entity": {"id": "z"}, "context": {"age": 3}}) is None
    facts = {"features": {"lines": 1.0}, "score": 0.5, "context": {}, "entity": {}}
    thin = policy.first_rule("after", facts)
    assert thin is not None and thin.decision == "refer"
    assert policy.first_rule("after", {**facts, "score": 0.05}) is None
    assert policy.first_rule("after", {**facts, "features": {"lines": None}}) is None


def test_the_digest_follows_the_definition() -> None:
    a = Policy.from_dict({"thresholds": BANDS})
    b = Policy.from_dict({"thresholds": BANDS, "review": {"low": 0.1, "high": 0.2}})
    assert a.digest == Policy.from_dict({"thresholds": BANDS}).digest != b.digest


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({}, "policy.thresholds"),
        ({"thresholds": [{"below": 0.5, "decision": "a"}]}, "policy.thresholds[0].below"),
        (
            {
                "thresholds": [
                    {"below": 0.5, "decision": "a"},
                    {"below": 0.4, "decision": "b"},
                    {"decision": "c"},
                ]
            },
            "policy.thresholds[1].below",
        ),
        ({"thresholds": [{"decision": ""}]}, "policy.thresholds[0].decision"),
        ({"thresholds": [{"decision": "a", "max": 1}]}, "policy.thresholds[0].max"),
        ({"thresholds": BANDS, "review": {"low": 0.5, "high": 0.1}}, "policy.review.low"),
        ({"thresholds": BANDS, "colour": "red"}, "policy.colour"),
        ({"thresholds": BANDS, "unknown_entity": "guess"}, "policy.unknown_entity"),
        ({"thresholds": BANDS, "model_enabled": "yes"}, "policy.model_enabled"),
        ({"thresholds": BANDS, "explain": {"top_k": -1}}, "policy.explain.top_k"),
        (
            {"thresholds": BANDS, "explain": {"codes": {"a": {"sideways": {}}}}},
            "policy.explain.codes.a.sideways",
        ),
        (
            {
                "thresholds": BANDS,
                "rules": {"before": [{"name": "r", "if": {"score": {">": 1}}, "decision": "x"}]},
            },
            "policy.rules.before[0].if.score",
        ),
        (
            {
                "thresholds": BANDS,
                "rules": {"after": [{"name": "r", "if": {"score": {"~": 1}}, "decision": "x"}]},
            },
            "policy.rules.after[0].if.score.~",
        ),
        (
            {"thresholds": BANDS, "rules": {"after": [{"name": "r", "if": {"score": {">": 1}}}]}},
            "policy.rules.after[0].decision",
        ),
    ],
)
def test_invalid_policies_name_the_field(policy: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Policy.from_dict(policy)
    assert caught.value.field == field


JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)  # fmt: skip
KEYS = st.sampled_from(["thresholds", "review", "rules", "fallback", "explain", "defaults",
                        "unknown_entity", "model_enabled", "output", "other"])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, JSONISH, max_size=5) | JSONISH)
def test_junk_gives_invalid_input_never_another_error(junk: Any) -> None:
    try:
        Policy.from_dict(junk)
    except InvalidInputError as exc:
        assert exc.field and exc.field.startswith("policy")
