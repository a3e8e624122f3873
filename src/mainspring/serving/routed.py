"""A request routed to an arm (:class:`Routed`), and the decision fields its answer carries when
the deployment decides (OIP response ``parameters``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mainspring.records import Decision
from mainspring.serving.deployments import Deployment
from mainspring.serving.inference import InferenceRequest, InferenceResponse
from mainspring.serving.runtime import ModelRuntime


@dataclass(slots=True)
class Routed:
    """A validated request on its way to a prediction (see :meth:`DataPlane.route`)."""

    name: str
    request: InferenceRequest
    protocol: str
    runtime: ModelRuntime
    arm: str
    #: the deployment whose shadows get a copy (None when no copy is due)
    deployment: Deployment | None
    key: str | None
    matrix: npt.NDArray[np.float64]
    started: float
    #: the deployment whose policy turns the scores into logged decisions (None: plain inference)
    deciding: Deployment | None = None


def decision_parameters(made: list[Decision]) -> dict[str, Any]:
    """Decision fields as OIP response parameters (scalars: one row as is, several rows as
    comma-separated lists in row order)."""

    def joined(values: list[str]) -> str:
        return ",".join(values)

    if len(made) == 1:
        (d,) = made
        return {
            "decision_id": d.id,
            "decision": d.decision,
            "review_required": d.review_required,
            "confidence": d.confidence if d.confidence is not None else "",
            "reason_codes": joined([r.code for r in d.reasons]),
            "policy": d.policy,
        }
    return {
        "decision_id": joined([d.id for d in made]),
        "decision": joined([d.decision for d in made]),
        "review_required": joined(["true" if d.review_required else "false" for d in made]),
        "reason_codes": joined(["|".join(r.code for r in d.reasons) for d in made]),
        "policy": made[0].policy if made else "",
    }


def with_decisions(response: InferenceResponse, made: list[Decision]) -> InferenceResponse:
    """``response`` with the decisions' fields added to its parameters."""
    parameters = {**response.parameters, **decision_parameters(made)}
    return dataclasses.replace(response, parameters=parameters)
