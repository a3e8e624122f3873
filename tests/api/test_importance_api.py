"""Global importance over REST: in the version resource, computed on registration or later."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import skops.io
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from mainspring.api.app import create_app
from mainspring.project import Project

FEATURES = ["income", "age", "debt_ratio"]
ALICE = {"X-Mainspring-User": "alice"}


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)


@pytest.fixture(scope="module")
def labels(sample: pd.DataFrame) -> pd.Series:
    return (sample["debt_ratio"] - 0.3 * sample["income"] > 0).astype(int)


@pytest.fixture(scope="module")
def booster_file(sample: pd.DataFrame, labels: pd.Series) -> bytes:
    model = lgb.LGBMClassifier(n_estimators=4, num_leaves=4, verbose=-1).fit(sample, labels)
    return str(model.booster_.model_to_string()).encode()


@pytest.fixture(scope="module")
def sklearn_file(sample: pd.DataFrame, labels: pd.Series) -> bytes:
    return bytes(skops.io.dumps(LogisticRegression().fit(sample, labels)))


def parquet(frame: pd.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.to_parquet(out)
    return out.getvalue()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with (
        Project.open(tmp_path) as project,
        TestClient(create_app(project), raise_server_exceptions=False) as client,
    ):
        yield client


def test_register_with_a_data_sample(
    client: TestClient, booster_file: bytes, sample: pd.DataFrame
) -> None:
    response = client.post(
        "/v1/models/credit/versions",
        files={"file": ("m.txt", booster_file), "data": ("sample.csv", sample.to_csv(index=False))},
        headers=ALICE,
    )
    assert response.status_code == 201, response.text
    importance = response.json()["importance"]
    assert importance["method"] == "treeshap" and importance["rows"] == 200
    assert importance["features"][0]["name"] == "debt_ratio"
    assert importance["background"]["rows"] == 100
    got = client.get("/v1/models/credit/versions/1", headers=ALICE).json()
    assert got["importance"] == importance
    listed = client.get("/v1/models/credit/versions", headers=ALICE).json()
    assert listed[0]["importance"] == importance


def test_store_importance_later_and_bad_data(
    client: TestClient, sklearn_file: bytes, sample: pd.DataFrame
) -> None:
    response = client.post(
        "/v1/models/credit/versions", files={"file": ("m.skops", sklearn_file)}, headers=ALICE
    )
    assert response.status_code == 201 and response.json()["importance"] is None
    url = "/v1/models/credit/versions/1/importance"
    put = client.put(
        url, files={"data": ("s.parquet", parquet(sample))}, data={"rows": "15"}, headers=ALICE
    )
    assert put.status_code == 200, put.text
    assert (put.json()["importance"]["method"], put.json()["importance"]["rows"]) == ("exact", 15)
    bad = client.put(
        url, files={"data": ("s.csv", sample.drop(columns="age").to_csv())}, headers=ALICE
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "age" in bad.json()["detail"]
    wrong = client.put(url, files={"data": ("s.xlsx", b"x")}, headers=ALICE)
    assert wrong.status_code == 422 and "Parquet" in wrong.json()["detail"]
    missing = client.put(
        "/v1/models/credit/versions/9/importance",
        files={"data": ("s.parquet", parquet(sample))},
        headers=ALICE,
    )
    assert missing.status_code == 404


def test_deployments_answer_with_warnings_for_unexplained_arms(
    client: TestClient, sklearn_file: bytes, sample: pd.DataFrame
) -> None:
    client.post(
        "/v1/models/credit/versions", files={"file": ("m.skops", sklearn_file)}, headers=ALICE
    )
    body = {
        "arms": [{"name": "main", "model": "credit", "version": "1"}],
        "policy": {"thresholds": [{"below": 0.5, "decision": "approve"}, {"decision": "decline"}]},
    }
    put = client.put("/v1/deployments/credit-decisions", json=body, headers=ALICE)
    assert put.status_code == 200, put.text
    assert put.json()["warnings"] == [
        "arm main (credit/1, sklearn) has no background sample: its decisions will carry no "
        "attributions or reasons; store one with `mainspring models importance credit/1 --data "
        "FILE`"
    ]
    client.put(
        "/v1/models/credit/versions/1/importance",
        files={"data": ("s.parquet", parquet(sample))},
        data={"rows": "5"},
        headers=ALICE,
    )
    again = client.put("/v1/deployments/credit-decisions", json=body, headers=ALICE)
    assert again.status_code == 200 and "warnings" not in again.json()
