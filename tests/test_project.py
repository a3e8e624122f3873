"""``Project.open`` wires the services from settings; registrations record the git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import lightgbm as lgb
import numpy as np

from mainspring.project import Project, git_commit


def git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    data = lgb.Dataset(rng.normal(size=(100, 2)), rng.integers(0, 2, 100))
    return lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 4}, data, 2)


def test_embedded_defaults(tmp_path: Path) -> None:
    with Project.open(tmp_path) as project:
        assert (
            project.settings.metadata == f"sqlite:///{tmp_path.resolve()}/.mainspring/metadata.db"
        )
        assert project.metadata.dialect == "sqlite"
        assert (tmp_path / ".mainspring" / "metadata.db").exists()
        assert project.tokens.enabled() is False


def test_registration_records_the_git_commit(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print('train')\n")
    git(tmp_path, "add", "train.py")
    git(tmp_path, "commit", "-qm", "train")
    head = git(tmp_path, "rev-parse", "HEAD")
    with Project.open(tmp_path) as project:
        assert project.registry.register("m", booster(), actor="a").code_version == head
        (tmp_path / "train.py").write_text("print('changed')\n")
        assert project.registry.register("m", booster(), actor="a").code_version == head + "+dirty"
        explicit = project.registry.register("m", booster(), actor="a", code_version="v1.2")
        assert explicit.code_version == "v1.2"
