"""Replay: the same output bit for bit, a candidate's changes, and plain refusals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.records import Decision, FeatureValue
from mainspring.serving.decisions import DecisionService
from mainspring.serving.replay import Replayer
from mainspring.serving.request import DecisionRequest


def replayer(service: DecisionService) -> Replayer:
    assert service.plane.deployments is not None
    return Replayer(service.plane.registry, service.plane.deployments)


def decisions(service: DecisionService, n: int = 30, **extra: object) -> list[Decision]:
    return [
        service.decide("credit-decisions", DecisionRequest({"customer_id": i}, **extra))
        for i in range(n)
    ]


def test_replay_gives_the_same_score_bit_for_bit_and_the_same_decision(
    service: DecisionService,
) -> None:
    replay = replayer(service)
    made = decisions(service) + decisions(service, 2, context={"age": 12})  # two by rule
    for logged in made:
        again = replay.replay(logged)
        assert again.same, (logged, again)
        assert again.score == logged.score


def test_a_candidate_model_reports_which_decisions_change(service: DecisionService) -> None:
    made = decisions(service) + decisions(service, 1, context={"age": 12})
    comparison = replayer(service).against(made, "credit/2")
    loaded = service.plane.registry.load("credit/2")
    expected = []
    for d in made[:-1]:
        row = np.array([[f.value for f in d.features]])
        score = float(loaded.predict(row).reshape(-1)[0])
        verdict = "approve" if score < 0.4 else "decline"
        if verdict != d.decision:
            expected.append((d.id, d.decision, verdict))
    assert comparison.total == len(made) and comparison.rescored == len(made) - 1
    assert comparison.skipped == {"decided without the model": 1}
    assert [(c.decision_id, c.before, c.after) for c in comparison.changes] == expected
    assert comparison.changed == len(expected)


def test_a_deleted_model_version_is_said_plainly(service: DecisionService) -> None:
    (logged,) = decisions(service, 1, arm="next")
    assert (logged.model, logged.version) == ("credit", 2)
    service.plane.registry.delete_version("credit", 2, actor="carol", reason="retired")
    with pytest.raises(NotFoundError, match=r"deleted on .* by carol \(retired\)"):
        Replayer(service.plane.registry, service.plane.deployments).replay(logged)


def test_inputs_hashed_or_dropped_as_personal_data_cannot_be_replayed(
    service: DecisionService,
) -> None:
    (logged,) = decisions(service, 1)
    hashed = replace(logged, features=(FeatureValue("income", "hmac-sha256:ab12"),
                                       *logged.features[1:]))  # fmt: skip
    with pytest.raises(InvalidInputError, match="hashed as personal data") as caught:
        replayer(service).replay(hashed)
    assert caught.value.field == "income"
    dropped = replace(logged, features=logged.features[1:])
    with pytest.raises(InvalidInputError, match="no logged value for 'income'"):
        replayer(service).replay(dropped)


def test_a_tampered_digest_is_refused(service: DecisionService) -> None:
    (logged,) = decisions(service, 1)
    with pytest.raises(InvalidInputError, match="decision was made with"):
        replayer(service).replay(replace(logged, digest="0" * 64))
