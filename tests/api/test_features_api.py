"""``/v1/features``: online features, definitions and statistics; problem details naming fields."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from mainspring.api.app import create_app
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource
from mainspring.project import Project

T0 = datetime(2026, 1, 1, tzinfo=UTC)
customer = Entity("customer", {"customer_id": "int64"})
profile = FeatureView(
    "profile", customer, [Field("income")], FileSource("profile.parquet"), ttl=timedelta(days=3650)
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [T0, T0], "income": [10.0, 20.0]}
    ).to_parquet(tmp_path / "profile.parquet")
    with Project.open(tmp_path) as project:
        project.features.apply(
            [customer, profile, FeatureService("credit", [profile])], actor="ann"
        )
        project.features.materialize(end=T0 + timedelta(days=1))
        with TestClient(create_app(project), raise_server_exceptions=False) as client:
            yield client


def test_online_features(client: TestClient) -> None:
    response = client.post(
        "/v1/features/online",
        json={"features": "credit", "entities": [{"customer_id": 2}, {"customer_id": 9}]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["features"] == {"income": [20.0, None]}
    assert body["found"] == {"profile": [True, False]}
    assert body["event_timestamps"]["profile"][0] == T0.isoformat()
    refs = client.post(
        "/v1/features/online",
        json={"features": ["profile:income"], "entities": [{"customer_id": 1}]},
    )
    assert refs.json()["features"] == {"income": [10.0]}


def test_definitions_and_statistics(client: TestClient) -> None:
    assert [v["name"] for v in client.get("/v1/features/views").json()] == ["profile"]
    view = client.get("/v1/features/views/profile").json()
    assert view["versions"][0]["created_by"] == "ann"
    assert client.get("/v1/features/entities").json()[0]["definition"]["join_keys"] == {
        "customer_id": "int64"
    }
    assert client.get("/v1/features/services/credit").json()["definition"]["features"] == [
        "profile"
    ]
    stats = client.get("/v1/features/views/profile/statistics").json()
    assert stats["online_rows"] == 2 and stats["last_materialization"]["rows"] == 2


def test_problem_details_name_the_field(client: TestClient) -> None:
    wrong = client.post(
        "/v1/features/online", json={"features": "credit", "entities": [{"customer_id": "x"}]}
    )
    assert wrong.status_code == 422
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["field"] == "entities[0].customer_id"
    unknown = client.post(
        "/v1/features/online", json={"features": ["profile:age"], "entities": [{"customer_id": 1}]}
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "profile:age"
    assert client.get("/v1/features/views/nope").status_code == 404
    empty = client.post("/v1/features/online", json={"features": "credit", "entities": []})
    assert empty.status_code == 422 and empty.json()["field"] == "entities"
