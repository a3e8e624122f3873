"""Decisions over a feature service with on-demand views: an unknown entity is still unknown."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt
import pytest
from tests.serving.conftest import POLICY, deployment, profile

from mainspring.errors import NotFoundError
from mainspring.features import FeatureService, FeatureStore, Field, OnDemandFeatureView
from mainspring.serving.decisions import DecisionService
from mainspring.serving.request import DecisionRequest


def fee_of(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    return {"fee": columns["amount"] * 0.02}


def test_a_context_only_view_does_not_make_an_unknown_entity_known(
    service: DecisionService, features: FeatureStore
) -> None:
    fees = OnDemandFeatureView("fees", [Field("amount")], [Field("fee")], function=fee_of)
    features.apply([fees, FeatureService("scoring_fees", [profile, fees])], actor="alice")
    store = service.plane.deployments
    assert store is not None
    store.put(deployment(POLICY, features="scoring_fees"), actor="alice")
    service.plane.sync()
    request = {"entity": {"customer_id": 999}, "context": {"amount": 10.0}}
    with pytest.raises(NotFoundError, match="unknown_entity"):
        service.decide("credit-decisions", DecisionRequest.from_dict(request))
    known = {"entity": {"customer_id": 7}, "context": {"amount": 10.0}}
    decision = service.decide("credit-decisions", DecisionRequest.from_dict(known))
    assert decision.model == "credit" and decision.score is not None
