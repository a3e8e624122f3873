"""The decision flow over a real feature store, registry, LightGBM model and policy."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from tests.serving.conftest import END, FEATURES, POLICY, deployment

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.features import FeatureStore
from mainspring.records import Decision
from mainspring.serving.decisions import DecisionService, _scorer
from mainspring.serving.request import DecisionRequest


def decide(service: DecisionService, **request: Any) -> Decision:
    return service.decide("credit-decisions", DecisionRequest.from_dict(request))


def test_a_decision_carries_features_model_score_reasons_and_is_logged(
    service: DecisionService, features: FeatureStore
) -> None:
    d = decide(service, entity={"customer_id": 7}, request_id="r-1")
    online = features.get_online_features("scoring", [{"customer_id": 7}])
    assert [f.name for f in d.features] == FEATURES
    assert [f.value for f in d.features] == [online.values[n][0] for n in FEATURES]
    assert all(f.view == "profile" and f.as_of == END - timedelta(days=1) for f in d.features)
    assert d.feature_views == {"profile": 1}
    assert (d.model, d.version, d.arm) == ("credit", 1, "main")
    loaded = service.plane.runtime_for(service.plan("credit-decisions").deployment, "main")
    row = np.array([[online.values[n][0] for n in FEATURES]])
    assert d.score == float(loaded.predict_matrix(row)[0, 0])  # bit for bit
    assert d.digest == loaded.loaded.version.digest
    assert d.decision == ("approve" if d.score < 0.4 else "decline")
    assert d.review_required == (0.35 <= d.score <= 0.45)
    assert d.confidence == max(d.score, 1 - d.score)
    assert d.rule == "thresholds" and d.request_id == "r-1"
    assert set(d.shadows) == {"next"}  # the shadow scored a copy; its answer is only logged
    assert d.policy.startswith("credit-decisions@1:")
    assert service.log.decisions == [d]
    # exact TreeSHAP: base value plus attributions give the model's margin (log-odds of the score)
    assert set(d.attributions) == set(FEATURES) and d.base_value is not None
    margin = d.base_value + sum(d.attributions.values())
    assert margin == pytest.approx(float(np.log(d.score / (1 - d.score))), abs=1e-9)
    ups = sorted((v, k) for k, v in d.attributions.items() if v > 0)[::-1][:2]
    assert [r.feature for r in d.reasons] == [k for _, k in ups]  # top 2 that raised the score
    for r in d.reasons:
        assert r.contribution == d.attributions[r.feature]
        assert r.code == ("D1" if r.feature == "debt_ratio" else f"{r.feature}+")


def test_rules_before_the_model_and_after_it(service: DecisionService) -> None:
    minor = decide(service, entity={"customer_id": 1}, context={"age": 16})
    assert (minor.decision, minor.rule, minor.model, minor.features) == (
        "decline", "before:minor", None, ()
    )  # fmt: skip
    vip = decide(service, entity={"customer_id": 1}, context={"segment": "vip"})
    assert (vip.decision, vip.rule, vip.model) == ("approve", "after:vip", "credit")


def test_disabled_model_falls_back(service: DecisionService) -> None:
    store = service.plane.deployments
    assert store is not None
    store.put(deployment({**POLICY, "model_enabled": False}), actor="alice")
    service.plane.sync()
    d = decide(service, entity={"customer_id": 3})
    assert (d.decision, d.review_required, d.model) == ("refer", True, None)
    assert d.rule == "fallback: model disabled"
    assert d.policy.startswith("credit-decisions@2:")


def test_unknown_entity_is_refused_or_filled_with_defaults(service: DecisionService) -> None:
    with pytest.raises(NotFoundError, match="unknown_entity"):
        decide(service, entity={"customer_id": 999})
    store = service.plane.deployments
    assert store is not None
    defaults = {"income": 0.0, "age": 0.0, "debt_ratio": 0.5}
    store.put(deployment({**POLICY, "unknown_entity": "defaults", "defaults": defaults}),
              actor="alice")  # fmt: skip
    service.plane.sync()
    d = decide(service, entity={"customer_id": 999})
    assert [f.value for f in d.features] == [0.0, 0.0, 0.5]
    assert all(f.as_of is None for f in d.features)


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"entity": {}}, "entity.customer_id"),
        ({"entity": {"customer_id": "7"}}, "entity.customer_id"),
        ({"entity": {"customer_id": 7, "other": 1}}, "entity.other"),
        ({"entity": {"customer_id": 7}, "context": {"x": [1]}}, "context.x"),
        ({"entity": {"customer_id": 7}, "surprise": 1}, "surprise"),
        ({"entity": [7]}, "entity"),
        ({"entity": {"customer_id": 7}, "arm": 5}, "arm"),
    ],
)
def test_bad_requests_name_the_field(
    service: DecisionService, request_body: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        decide(service, **request_body)
    assert caught.value.field == field
    assert service.log.decisions == []


def test_a_deployment_without_policy_does_not_decide(service: DecisionService) -> None:
    store = service.plane.deployments
    assert store is not None
    store.put(deployment(None), actor="alice")
    service.plane.sync()
    with pytest.raises(InvalidInputError, match="no decision policy"):
        decide(service, entity={"customer_id": 7})


def test_deployments_are_planned_when_loaded_not_on_their_first_request(
    service: DecisionService, caplog: pytest.LogCaptureFixture
) -> None:
    store = service.plane.deployments
    assert store is not None
    assert service.planned == []  # the fixture attached the service after the plane started
    store.put(deployment(), actor="alice")  # a new revision: the plane loads its routes again
    unplannable = dataclasses.replace(deployment(features="no-such-service"), name="unplannable")
    store.put(unplannable, actor="alice")
    with caplog.at_level(logging.WARNING, logger="mainspring.serving.decisions"):
        assert service.plane.sync()
    assert service.planned == ["credit-decisions"]  # before any decision
    assert "unplannable cannot decide yet" in caplog.text and "no-such-service" in caplog.text
    with pytest.raises(NotFoundError, match="no-such-service"):  # its requests say why
        service.decide("unplannable", DecisionRequest({"customer_id": 1}))
    assert decide(service, entity={"customer_id": 1}).decision in {"approve", "decline", "refer"}


def test_lightgbm_arms_are_scored_from_the_explainers_trees_with_lightgbms_bits(
    service: DecisionService, features: FeatureStore, caplog: pytest.LogCaptureFixture
) -> None:
    plan = service.plan("credit-decisions")
    main = service.plane.runtime_for(plan.deployment, "main")
    explaining = plan.explaining[(main.name, main.version)]
    assert explaining is not None and explaining.scorer is not None
    for customer in range(50):
        d = decide(service, entity={"customer_id": customer})
        online = features.get_online_features("scoring", [{"customer_id": customer}])
        row = np.array([[online.values[n][0] for n in FEATURES]])
        assert (d.score, d.raw) == (float(main.predict_matrix(row)[0, 0]),) * 2  # bit for bit
    # a scorer is used only once it predicts as the arm's model does: not another version's
    shadow = service.plane.runtime_for(plan.deployment, "next")
    with caplog.at_level(logging.WARNING, logger="mainspring.serving.decisions"):
        assert _scorer(shadow, explaining.explainer) is None
    assert "do not predict as LightGBM does" in caplog.text


def test_sticky_arms_by_entity_and_async_path(service: DecisionService) -> None:
    first = asyncio.run(
        service.decide_async("credit-decisions", DecisionRequest({"customer_id": 8}))
    )
    again = decide(service, entity={"customer_id": 8})
    assert first.arm == again.arm and first.score == again.score and first.id != again.id


def debt_from_request(columns: dict[str, Any]) -> dict[str, Any]:
    """An on-demand feature: the debt ratio of the loan asked for (module level: importable)."""
    return {"debt_ratio": columns["monthly_debt"] / (1.0 + abs(columns["income"]))}


def test_on_demand_features_come_from_the_request_context(
    service: DecisionService, features: FeatureStore
) -> None:
    from mainspring.features import FeatureService, Field, OnDemandFeatureView

    debt = OnDemandFeatureView(
        "debt", context=[Field("monthly_debt")], fields=[Field("debt_ratio")],
        function=debt_from_request, inputs=["profile:income"],
    )  # fmt: skip
    service_def = FeatureService("scoring_live", ["profile:income", "profile:age", debt])
    features.apply([debt, service_def], actor="alice")
    store = service.plane.deployments
    assert store is not None
    store.put(deployment(features="scoring_live"), actor="alice")
    service.plane.sync()
    d = decide(service, entity={"customer_id": 5}, context={"monthly_debt": 2.0})
    income = next(f.value for f in d.features if f.name == "income")
    computed = next(f for f in d.features if f.name == "debt_ratio")
    assert computed.value == pytest.approx(2.0 / (1.0 + abs(income)))
    assert computed.view == "debt" and d.feature_views["debt"] == 1
    with pytest.raises(InvalidInputError) as caught:
        decide(service, entity={"customer_id": 5})
    assert "monthly_debt" in str(caught.value)
