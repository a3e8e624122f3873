"""``mainspring decisions …``: verify, list, show, outcome and the review queue; exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from mainspring.cli.main import cli
from mainspring.project import Project
from mainspring.records import Decision

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mainspring.yaml").write_text(
        "audit:\n  personal: {ssn: drop, email: hash}\n", encoding="utf-8"
    )
    with Project.open(tmp_path) as p:
        for i in range(1, 4):
            p.decisions.append(
                Decision(
                    id=f"d-{i}",
                    deployment="credit",
                    at=T0 + timedelta(minutes=i),
                    decision="refer",
                    policy="credit@1",
                    entity={"customer": f"c-{i}", "ssn": "123-45-6789"},
                    context={"email": "ann@example.com"},
                    model="credit-risk",
                    version=1,
                    review_required=i < 3,
                )
            )
    return tmp_path


def run(project: Path, *args: str, code: int = 0, user: str = "alice") -> Result:
    result = CliRunner().invoke(cli, ["-C", str(project), "--as", user, *args])
    assert result.exit_code == code, result.output
    return result


def test_list_show_and_verify(project: Path) -> None:
    listed = json.loads(run(project, "--json", "decisions", "list").output)
    assert [d["id"] for d in listed] == ["d-3", "d-2", "d-1"]
    assert "ssn" not in listed[0]["entity"]
    assert listed[0]["context"]["email"].startswith("hmac-sha256:")
    assert (project / ".mainspring" / "audit.key").stat().st_mode & 0o777 == 0o600
    since = json.loads(
        run(project, "--json", "decisions", "list", "--since", "2026-03-01T00:02:00").output
    )
    assert [d["id"] for d in since] == ["d-3", "d-2"]
    shown = json.loads(run(project, "--json", "decisions", "show", "d-2").output)
    assert (shown["seq"], shown["final"]) == (2, "refer")
    assert "chain intact" in run(project, "decisions", "verify").output
    assert "does not exist" in run(project, "decisions", "show", "nope", code=3).output
    assert "--since" in run(project, "decisions", "list", "--since", "soon", code=2).output


def test_review_and_outcome(project: Path) -> None:
    assert "d-1" in run(project, "decisions", "review", "list").output
    out = run(
        project,
        "decisions",
        "review",
        "override",
        "d-1",
        "--decision",
        "approve",
        "--reason-code",
        "income-verified",
        "--comment",
        "checked",
        user="carol",
    ).output
    assert "final decision 'approve'" in out and "carol" in out
    run(project, "decisions", "review", "accept", "d-2", "--reason-code", "ok")
    assert "no decisions to review" in run(project, "decisions", "review", "list").output
    again = run(project, "decisions", "review", "accept", "d-2", "--reason-code", "ok", code=5)
    assert "already reviewed" in again.output
    empty = run(project, "decisions", "review", "accept", "d-3", "--reason-code", "", code=2)
    assert "reason_code" in empty.output
    run(project, "decisions", "outcome", "d-1", '{"defaulted": false}', "--id", "o-1")
    run(project, "decisions", "outcome", "d-1", '{"defaulted": false}', "--id", "o-1")
    shown = json.loads(run(project, "--json", "decisions", "show", "d-1").output)
    assert shown["final"] == "approve"
    assert [o["value"] for o in shown["outcomes"]] == [{"defaulted": False}]
    assert "does not exist" in run(project, "decisions", "outcome", "d-9", "1", code=3).output


def test_verify_names_the_altered_record_and_fails(project: Path) -> None:
    with Project.open(project) as p, p.metadata.write() as conn:
        conn.execute(sa.text("DROP TRIGGER decision_log_no_update"))
        conn.execute(sa.text("UPDATE decision_log SET body = body || ' ' WHERE seq = 2"))
    out = run(project, "decisions", "verify", code=6).output
    assert "entry 2 (d-2)" in out and "altered" in out


def test_worker_attaches_outcome_events(project: Path) -> None:
    from mainspring.records import Event

    with Project.open(project) as p:
        p.events.produce([Event("outcomes", {"decision_id": "d-3", "value": 0}, key="d-3")])
    out = run(project, "--json", "worker", "outcomes", "--until-idle").output
    assert json.loads(out)["events"] == 1
    shown = json.loads(run(project, "--json", "decisions", "show", "d-3").output)
    assert [o["value"] for o in shown["outcomes"]] == [0]
