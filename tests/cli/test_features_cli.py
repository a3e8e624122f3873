"""``mainspring features …``: apply, list, show, materialize, get, and their errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from mainspring.cli.main import cli

T0 = datetime(2026, 1, 1, tzinfo=UTC)

DEFINITIONS = """
from datetime import timedelta
import numpy as np
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource

customer = Entity("customer", {"customer_id": "int64"})

def ratio(columns):
    return {"debt_ratio": columns["debt"] / np.maximum(columns["income"], 1.0)}

profile = FeatureView("profile", customer, [Field("income"), Field("debt")],
                      FileSource("profile.parquet"), ttl=timedelta(days=3650))
derived = FeatureView("derived", customer, [Field("debt_ratio")], FileSource("profile.parquet"),
                      transformation=ratio)
credit = FeatureService("credit", [profile, derived])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "event_timestamp": [T0, T0 + timedelta(days=1), T0],
            "income": [10.0, 20.0, 30.0],
            "debt": [1.0, 4.0, 3.0],
        }
    ).to_parquet(tmp_path / "profile.parquet")
    (tmp_path / "features.py").write_text(DEFINITIONS, encoding="utf-8")
    return tmp_path


def run(project: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(
        cli, ["-C", str(project), "--as", "alice", *args], catch_exceptions=False
    )
    assert result.exit_code == code, result.output
    return result


def test_apply_materialize_get(project: Path) -> None:
    assert "applied view profile v1" in run(project, "features", "apply").output
    assert "no changes" in run(project, "features", "apply").output
    assert "profile" in run(project, "features", "list").output
    assert "customer_id:int64" in run(project, "features", "list", "--kind", "entity").output
    out = run(project, "features", "materialize", "--end", "2026-06-01T00:00:00+00:00").output
    assert "materialized profile v1: 2 rows" in out
    got = json.loads(
        run(
            project,
            "--json",
            "features",
            "get",
            "credit",
            '[{"customer_id": 1}, {"customer_id": 3}]',
        ).output
    )
    assert got["features"] == {
        "income": [20.0, None],
        "debt": [4.0, None],
        "debt_ratio": [0.2, None],
    }
    assert got["found"]["profile"] == [True, False]
    table = run(project, "features", "get", "profile:income", '{"customer_id": 2}').output
    assert "30.0" in table
    shown = json.loads(run(project, "--json", "features", "show", "profile").output)
    assert shown["statistics"]["online_rows"] == 2
    assert (
        "materialized profile v1: 0 rows"
        in run(
            project, "features", "materialize", "profile", "--end", "2026-07-01T00:00:00+00:00"
        ).output
    )


def test_errors_are_one_line_with_exit_codes(project: Path) -> None:
    run(project, "features", "apply")
    bad = run(project, "features", "get", "credit", '{"customer_id": "one"}', code=2)
    assert "join key 'customer_id' must be int64" in bad.output
    assert "not valid JSON" in run(project, "features", "get", "credit", "{", code=2).output
    assert (
        "no time zone"
        in run(project, "features", "materialize", "--end", "2026-01-01", code=2).output
    )
    missing = run(project, "features", "show", "nope", code=3).output
    assert "feature view 'nope' does not exist" in missing
    assert "does not exist" in run(project, "features", "apply", "-f", "nothing.py", code=3).output
    (project / "profile.parquet").unlink()
    (project / "features.py").write_text(DEFINITIONS.replace("debt", "debts"), encoding="utf-8")
    assert "cannot be read" in run(project, "features", "apply", code=2).output
    assert "applied view" in run(project, "features", "apply", "--no-check-sources").output
