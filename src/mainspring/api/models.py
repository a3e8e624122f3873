"""``/v1/models``: the registry over REST."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from starlette.concurrency import run_in_threadpool

from mainspring.api.auth import (
    CanAlias,
    CanApprove,
    CanRead,
    CanRegister,
    CanReject,
    CanRequestApproval,
    CanRollback,
    project_of,
)
from mainspring.api.schemas import AliasBody, ReasonBody, RequiredReasonBody
from mainspring.errors import InvalidInputError
from mainspring.pipelines.importance import read_data, register_with_importance, store_importance
from mainspring.project import Project
from mainspring.records import JSON, Lineage, ModelRef, Signature

router = APIRouter(prefix="/v1", tags=["registry"])
ProjectDep = Annotated[Project, Depends(project_of)]
#: a version number in a path: positive, and within the metadata store's 64-bit integers
VersionNumber = Annotated[int, Path(ge=1, le=2**63 - 1, description="version number")]


def _json_form(text: str | None, field: str) -> Any:
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{field} is not valid JSON: {exc}", field=field) from None


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field} must be a JSON object", field=field)
    return value


@router.get("/models", summary="List registered models")
def list_models(project: ProjectDep, _: CanRead) -> list[JSON]:
    return [m.to_dict() for m in project.registry.list_models()]


@router.post("/models/{name}/versions", status_code=201, summary="Register a new version")
async def register(
    name: str,
    project: ProjectDep,
    principal: CanRegister,
    file: Annotated[
        UploadFile,
        File(
            description="The model file (LightGBM, XGBoost, skops, "
            "ONNX; a pickle only with trusted=true)"
        ),
    ],
    flavor: Annotated[str | None, Form()] = None,
    signature: Annotated[str | None, Form(description="JSON: {inputs: [{name, dtype}]}")] = None,
    metrics: Annotated[str | None, Form(description="JSON object of numbers")] = None,
    tags: Annotated[str | None, Form(description="JSON object of strings")] = None,
    params: Annotated[str | None, Form(description="JSON object")] = None,
    description: Annotated[str, Form()] = "",
    run_id: Annotated[str | None, Form()] = None,
    parent_version: Annotated[int | None, Form(gt=0)] = None,
    trusted: Annotated[bool, Form()] = False,
    data: Annotated[
        UploadFile | None,
        File(
            description="A sample of the training data (Parquet or CSV): global importance and a "
            "background sample are computed from it and stored with the version"
        ),
    ] = None,
) -> JSON:
    model = await file.read()
    if not model:
        raise InvalidInputError("file is empty", field="file")
    sig_value = _json_form(signature, "signature")
    sig = Signature.from_dict(sig_value) if sig_value is not None else None
    lineage = Lineage(run_id=run_id, parent_version=parent_version)
    arguments: dict[str, Any] = {
        "filename": file.filename or "model",
        "actor": principal.name,
        "flavor": flavor,
        "signature": sig,
        "metrics": _mapping(_json_form(metrics, "metrics"), "metrics"),
        "tags": _mapping(_json_form(tags, "tags"), "tags"),
        "params": _mapping(_json_form(params, "params"), "params"),
        "lineage": lineage,
        "description": description,
        "trusted": trusted,
    }
    if data is None:
        version = project.registry.register(name, model, **arguments)
    else:
        sample = read_data(await data.read(), filename=data.filename or "data")
        version = await run_in_threadpool(
            register_with_importance, project.registry, name, model, data=sample, **arguments
        )
    return version.to_dict()


@router.get("/models/{name}/versions", summary="List the versions of a model")
def list_versions(name: str, project: ProjectDep, _: CanRead) -> list[JSON]:
    return [v.to_dict() for v in project.registry.list_versions(name)]


@router.get("/models/{name}/versions/{version}", summary="One version")
def get_version(name: str, version: VersionNumber, project: ProjectDep, _: CanRead) -> JSON:
    return project.registry.get(ModelRef(name, version=version)).to_dict()


@router.put(
    "/models/{name}/versions/{version}/importance",
    summary="Compute and store a version's global importance from a data sample",
)
async def put_importance(
    name: str,
    version: VersionNumber,
    project: ProjectDep,
    principal: CanRegister,
    data: Annotated[UploadFile, File(description="A sample of the training data (Parquet or CSV)")],
    rows: Annotated[
        int | None, Form(gt=0, le=2**63 - 1, description="Rows to explain (sampled)")
    ] = None,
    seed: Annotated[int, Form(ge=0, le=2**63 - 1)] = 0,
    trusted: Annotated[bool, Form()] = False,
) -> JSON:
    sample = read_data(await data.read(), filename=data.filename or "data")
    stored = await run_in_threadpool(
        store_importance, project.registry, ModelRef(name, version=version), sample,
        actor=principal.name, rows=rows, seed=seed, trusted=trusted,
    )  # fmt: skip
    return stored.to_dict()


@router.get("/models/{name}/aliases/{alias}", summary="The version an alias points at")
def get_alias(name: str, alias: str, project: ProjectDep, _: CanRead) -> JSON:
    return project.registry.get(ModelRef(name, alias=alias)).to_dict()


@router.put("/models/{name}/aliases/{alias}", summary="Point an alias at a version")
def set_alias(
    name: str,
    alias: str,
    body: AliasBody,
    project: ProjectDep,
    principal: CanAlias,
) -> JSON:
    return project.registry.set_alias(
        name, alias, body.version, actor=principal.name, reason=body.reason
    ).to_dict()


@router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
def delete_alias(name: str, alias: str, project: ProjectDep, principal: CanAlias) -> None:
    project.registry.delete_alias(name, alias, actor=principal.name)


@router.post(
    "/models/{name}/aliases/{alias}/rollback", summary="Move an alias back to its previous version"
)
def rollback(
    name: str,
    alias: str,
    body: RequiredReasonBody,
    project: ProjectDep,
    principal: CanRollback,
) -> JSON:
    return project.registry.rollback(
        name, alias, actor=principal.name, reason=body.reason
    ).to_dict()


@router.post(
    "/models/{name}/versions/{version}/approval-request", summary="Request approval of a version"
)
def request_approval(
    name: str,
    version: VersionNumber,
    body: ReasonBody,
    project: ProjectDep,
    principal: CanRequestApproval,
) -> JSON:
    return project.registry.request_approval(
        name, version, actor=principal.name, reason=body.reason
    ).to_dict()


@router.post(
    "/models/{name}/versions/{version}/approve", summary="Approve a version (not your own)"
)
def approve(
    name: str,
    version: VersionNumber,
    body: RequiredReasonBody,
    project: ProjectDep,
    principal: CanApprove,
) -> JSON:
    return project.registry.approve(
        name, version, actor=principal.name, reason=body.reason
    ).to_dict()


@router.post("/models/{name}/versions/{version}/reject", summary="Reject a version")
def reject(
    name: str,
    version: VersionNumber,
    body: RequiredReasonBody,
    project: ProjectDep,
    principal: CanReject,
) -> JSON:
    return project.registry.reject(
        name, version, actor=principal.name, reason=body.reason
    ).to_dict()


@router.get("/models/{name}/history", summary="The registry history of one model")
def model_history(name: str, project: ProjectDep, _: CanRead) -> list[JSON]:
    return [e.to_dict() for e in project.registry.history(name)]


@router.get("/registry/history", summary="The whole registry history")
def history(project: ProjectDep, _: CanRead) -> list[JSON]:
    return [e.to_dict() for e in project.registry.history()]


@router.get("/registry/verify", summary="Check the registry history's hash chain")
def verify(project: ProjectDep, _: CanRead) -> JSON:
    result = project.registry.verify()
    return {
        "ok": result.ok,
        "checked": result.checked,
        "first_bad_seq": result.first_bad_seq,
        "subject": result.subject,
        "problem": result.problem,
    }
