"""``/v1/tokens`` and ``/v1/whoami``: access management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from mainspring.api.auth import CanRead, IsAdmin, project_of
from mainspring.api.schemas import TokenBody
from mainspring.project import Project
from mainspring.records import JSON

router = APIRouter(prefix="/v1", tags=["access"])
ProjectDep = Annotated[Project, Depends(project_of)]


@router.get("/whoami", summary="The calling principal and its roles")
def whoami(principal: CanRead) -> JSON:
    return {"name": principal.name, "roles": sorted(r.value for r in principal.roles)}


@router.post("/tokens", status_code=201, summary="Create a token (shown once)")
def create_token(body: TokenBody, project: ProjectDep, principal: IsAdmin) -> JSON:
    token = project.tokens.create(body.name, body.roles, actor=principal.name)
    return {"name": body.name, "roles": sorted(r.value for r in body.roles), "token": token}


@router.get("/tokens", summary="List tokens (never their secrets)")
def list_tokens(project: ProjectDep, _: IsAdmin) -> list[JSON]:
    return [
        {
            "name": t.name,
            "roles": sorted(r.value for r in t.roles),
            "created_at": t.created_at.isoformat(),
            "created_by": t.created_by,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in project.tokens.list()
    ]


@router.delete("/tokens/{name}", summary="Revoke every token of a principal")
def revoke_token(name: str, project: ProjectDep, principal: IsAdmin) -> JSON:
    return {"revoked": project.tokens.revoke(name, actor=principal.name)}
