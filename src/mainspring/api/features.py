"""``/v1/features``: feature definitions, statistics and online features over REST."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field

from mainspring.api.auth import CanRead, project_of
from mainspring.api.schemas import Body
from mainspring.project import Project
from mainspring.records import JSON

router = APIRouter(prefix="/v1/features", tags=["features"])
ProjectDep = Annotated[Project, Depends(project_of)]


class OnlineBody(Body):
    features: str | list[str] = Field(
        description="A feature service name, or a list of 'view' / 'view:feature' references."
    )
    entities: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=10_000,
        description="Join keys of each entity, e.g. [{customer_id: 1}].",
    )
    context: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None,
        description="Request context for on-demand features: one object for every entity "
        "(e.g. {amount: 120.5}), an object of one list per field, or one object per entity.",
    )


@router.post("/online", summary="Latest feature values for entities (one online-store read)")
def online(body: OnlineBody, project: ProjectDep, _: CanRead) -> JSON:
    return project.features.get_online_features(
        body.features, body.entities, context=body.context
    ).to_dict()


def _listing(project: Project, kind: str) -> list[JSON]:
    return [r.to_dict() for r in project.features.definitions(kind)]


@router.get("/views", summary="Registered feature views (newest versions)")
def views(project: ProjectDep, _: CanRead) -> list[JSON]:
    return _listing(project, "view")


@router.get("/views/{name}", summary="A feature view with all its versions")
def view(name: str, project: ProjectDep, _: CanRead) -> JSON:
    newest = project.features.get("view", name).to_dict()
    newest["versions"] = [
        {"version": r.version, "created_at": r.created_at.isoformat(), "created_by": r.created_by}
        for r in project.features.versions("view", name)
    ]
    return newest


@router.get("/views/{name}/statistics", summary="Online rows, last materialization, freshness")
def statistics(name: str, project: ProjectDep, _: CanRead) -> JSON:
    return project.features.statistics(name)


@router.get("/entities", summary="Registered entities")
def entities(project: ProjectDep, _: CanRead) -> list[JSON]:
    return _listing(project, "entity")


@router.get("/services", summary="Registered feature services")
def services(project: ProjectDep, _: CanRead) -> list[JSON]:
    return _listing(project, "service")


@router.get("/services/{name}", summary="A feature service")
def service(name: str, project: ProjectDep, _: CanRead) -> JSON:
    return project.features.get("service", name).to_dict()
