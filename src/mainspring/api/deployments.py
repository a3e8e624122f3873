"""``/v1/deployments``: serving deployments and their traffic weights over REST.

Changes are stored with a new revision and recorded in the registry history; running servers pick
them up within their sync interval (``mainspring serve`` checks every two seconds) without a
restart or a failed request. Every arm must name a registered model version or alias.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from mainspring.api.auth import CanAlias, CanRead, project_of
from mainspring.project import Project
from mainspring.records import ModelRef
from mainspring.serving.deployments import (
    ROLES,
    Arm,
    Deployment,
    DeploymentStore,
    check_policy_output,
    decision_fields,
)
from mainspring.serving.explaining import unexplained_arms

router = APIRouter(prefix="/v1", tags=["deployments"])
ProjectDep = Annotated[Project, Depends(project_of)]


class ArmBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="The arm's name.")
    model: str = Field(min_length=1, max_length=128, description="A registered model.")
    version: str = Field(
        min_length=1, max_length=128, description="A version number or an alias (champion...)."
    )
    role: str = Field(default="champion", description=f"One of: {', '.join(ROLES)}.")
    weight: float = Field(default=0.0, ge=0, le=100, description="Traffic share in %.")


class DeploymentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arms: list[ArmBody] = Field(min_length=1)
    features: str | None = Field(
        default=None, description="The feature service a deciding deployment reads."
    )
    policy: dict[str, Any] | None = Field(
        default=None,
        description="The decision policy (thresholds, review band, rules, fallback, explain); "
        "see docs/decisions.md.",
    )
    reason: str = Field(default="", max_length=2000)


class WeightsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(min_length=1, description="Arm name -> weight in %.")
    reason: str = Field(default="", max_length=2000)


def _store(project: Project) -> DeploymentStore:
    return DeploymentStore(project.metadata)


@router.get("/deployments", summary="List deployments")
def list_deployments(project: ProjectDep, _: CanRead) -> list[dict[str, Any]]:
    return [d.to_dict() for d in _store(project).list()]


@router.get("/deployments/{name}", summary="One deployment")
def get_deployment(name: str, project: ProjectDep, _: CanRead) -> dict[str, Any]:
    return _store(project).get(name).to_dict()


@router.put("/deployments/{name}", summary="Create or replace a deployment")
def put_deployment(
    name: str, body: DeploymentBody, project: ProjectDep, principal: CanAlias
) -> dict[str, Any]:
    arms = tuple(Arm(a.name, a.model, a.version, a.role, a.weight) for a in body.arms)
    deployment = Deployment(
        name, arms, **decision_fields({"features": body.features, "policy": body.policy})
    )
    if deployment.features is not None:  # the feature service must exist now
        project.features.selection(deployment.features)
    for arm in arms:  # every arm must resolve now, not when traffic arrives
        version = (
            f"{arm.model}/{arm.version}" if arm.version.isdigit() else f"{arm.model}@{arm.version}"
        )
        project.registry.get(ModelRef.parse(version, field=f"arms.{arm.name}"))
    check_policy_output(project.registry, deployment)  # a score column every arm has
    stored = _store(project).put(deployment, actor=principal.name, reason=body.reason)
    warnings = unexplained_arms(project.registry, stored)  # arms whose decisions go unexplained
    return {**stored.to_dict(), "warnings": warnings} if warnings else stored.to_dict()


@router.patch("/deployments/{name}/weights", summary="Change arm weights at run time")
def set_weights(
    name: str, body: WeightsBody, project: ProjectDep, principal: CanAlias
) -> dict[str, Any]:
    stored = _store(project).set_weights(
        name, body.weights, actor=principal.name, reason=body.reason
    )
    return stored.to_dict()


@router.delete("/deployments/{name}", status_code=204, summary="Remove a deployment")
def delete_deployment(name: str, project: ProjectDep, principal: CanAlias) -> None:
    _store(project).delete(name, actor=principal.name)
