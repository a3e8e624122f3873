"""Who is calling: bearer tokens once any exist; before that, a claimed name (local use only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from mainspring.access import require
from mainspring.project import Project
from mainspring.records import Principal, Role

ANONYMOUS = "anonymous"


def project_of(request: Request) -> Project:
    project: Project = request.app.state.project
    return project


def acting(operation: str) -> Callable[..., Principal]:
    """A dependency that authenticates the caller and checks it may perform ``operation``."""

    def dependency(
        project: Project = Depends(project_of),
        authorization: str | None = Header(default=None),
        x_mainspring_user: str | None = Header(default=None),
    ) -> Principal:
        if project.tokens.enabled():
            token = None
            if authorization and authorization.lower().startswith("bearer "):
                token = authorization[7:].strip()
            principal = project.tokens.authenticate(token)
        else:
            principal = Principal(x_mainspring_user or ANONYMOUS, frozenset(Role))
        require(principal, operation)
        return principal

    return dependency


CanRead = Annotated[Principal, Depends(acting("read"))]
CanRegister = Annotated[Principal, Depends(acting("register"))]
CanAlias = Annotated[Principal, Depends(acting("alias"))]
CanRequestApproval = Annotated[Principal, Depends(acting("request-approval"))]
CanRollback = Annotated[Principal, Depends(acting("rollback"))]
CanApprove = Annotated[Principal, Depends(acting("approve"))]
CanReject = Annotated[Principal, Depends(acting("reject"))]
CanRecordOutcome = Annotated[Principal, Depends(acting("record-outcome"))]
CanReview = Annotated[Principal, Depends(acting("review"))]
IsAdmin = Annotated[Principal, Depends(acting("admin"))]
