"""Request bodies of the control plane (responses are the records' ``to_dict``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mainspring.records import Role


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AliasBody(Body):
    version: int = Field(gt=0, le=2**63 - 1, description="The version the alias should point at.")
    reason: str = Field(default="", max_length=2000)


class ReasonBody(Body):
    reason: str = Field(default="", max_length=2000)


class RequiredReasonBody(Body):
    reason: str = Field(min_length=1, max_length=2000, description="Why (required).")


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=128)
    roles: list[Role] = Field(min_length=1)
