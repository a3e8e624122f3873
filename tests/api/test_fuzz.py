"""Schemathesis over the control plane's own OpenAPI document, in-process: no 5xx, no traceback.

Every operation gets generated requests (valid and invalid by the schema) from a user who may
act (``X-Mainspring-User``), against a project that has a model, so that the handlers run past
authentication and lookups.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from mainspring.api.app import create_app
from mainspring.project import Project

HEADERS = {"X-Mainspring-User": "alice"}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(100, 3)), columns=["income", "age", "debt_ratio"])
    model = lgb.LGBMClassifier(n_estimators=2, num_leaves=4, verbose=-1)
    model.fit(x, (x["income"] > 0).astype(int))
    with Project.open(tmp_path) as project:
        project.registry.register("credit", model, actor="alice")
        yield project


def check_operation(app: Any, operation: Any, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **HEADERS}
        response = case.call(app=app)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        assert "Traceback" not in response.text

    run()


def test_control_plane_fuzz_finds_no_5xx(project: Project) -> None:
    app = create_app(project)
    with TestClient(app):
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 10
        for operation in operations:
            check_operation(app, operation, examples=int(os.environ.get("FUZZ_EXAMPLES", "15")))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/models/credit/versions/9223372036854775808", None),
        ("post", "/v1/models/credit/versions/99999999999999999999/reject", {"reason": "r"}),
        ("post", "/v1/models/credit/versions/0/approve", {"reason": "r"}),
        ("put", "/v1/models/credit/aliases/champion", {"version": 2**64}),
    ],
)
def test_version_numbers_out_of_range_are_422_not_500(
    project: Project, method: str, path: str, body: dict | None
) -> None:
    """Found by the fuzz test: SQLite cannot take integers past 64 bits (OverflowError, 500)."""
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        response = client.request(method, path, json=body, headers=HEADERS)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "version"
