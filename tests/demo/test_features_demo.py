"""The feature-store step of the demo runs on a fresh project and serves what it trained on."""

from __future__ import annotations

from pathlib import Path

from mainspring.demo.features import APPLICANTS, run
from mainspring.project import Project


def test_features_demo(tmp_path: Path) -> None:
    with Project.open(tmp_path) as project:
        result = run(project)
        assert result.training_set.training_data.rows == len(result.labels) == 2000
        assert 0 < result.training_set.missing["applicant_profile"] < 2000
        assert result.online.found["applicant_profile"] == [True, True, True, False]
        stats = project.features.statistics("applicant_profile")
        assert stats["online_rows"] == APPLICANTS
        assert project.features.verify().ok
