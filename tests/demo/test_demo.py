"""``mainspring demo`` runs end to end on embedded defaults."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from fastapi.testclient import TestClient

from mainspring.api.app import create_app
from mainspring.cli.main import cli
from mainspring.project import Project


def test_demo_runs_and_leaves_a_verifiable_project(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "four eyes" in result.output and "chain intact" in result.output
    with Project.open(tmp_path) as project:
        assert project.registry.get("credit-risk@champion").version == 1
        assert project.registry.verify().ok
        decisions = project.decisions.list(deployment="credit-decisions")
        assert len(decisions) == 9 and project.decisions.verify().ok
        reviewed = [d for d in decisions if project.decisions.reviews(d.id)]
        assert (
            len(reviewed) == 1
            and project.decisions.final(reviewed[0].id) != reviewed[0].decision.decision
        )
    assert "identical, bit for bit" in result.output
    assert "http://127.0.0.1:8000/ui" in result.output
    # the web UI shows the demo's project
    with Project.open(tmp_path) as project, TestClient(create_app(project)) as client:
        decision = project.decisions.list(deployment="credit-decisions", limit=1)[0]
        for path in ("/ui/", "/ui/models/credit-risk", "/ui/deployments/credit-decisions",
                     "/ui/decisions", f"/ui/decisions/{decision.id}", "/ui/reviews",
                     "/ui/charts"):  # fmt: skip
            page = client.get(path)
            assert page.status_code == 200, (path, page.text)
        assert "credit-decisions" in client.get("/ui/decisions").text
