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


def test_the_decision_log_opens_lazily_with_the_audit_settings(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from mainspring.records import Decision

    key_file = tmp_path / ".mainspring" / "audit.key"
    with Project.open(tmp_path) as project:
        assert project.decisions.durability == "fsync"
    assert not key_file.exists()  # no hashed field, no key
    (tmp_path / "mainspring.yaml").write_text(
        "audit: {personal: {email: hash}, durability: process}\n", encoding="utf-8"
    )
    d = Decision(
        id="d-1",
        deployment="credit",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        decision="approve",
        policy="p",
        context={"email": "ann@example.com"},
    )
    with Project.open(tmp_path) as project:
        logged = project.decisions.append(d)
        assert project.decisions.durability == "process"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with Project.open(tmp_path) as project:  # the same key next time: pseudonyms still join
        assert logged.decision.context["email"] == project.decisions.pseudonym("ann@example.com")
        assert [e.headers["idempotency-key"] for e in project.events.read("decisions", 0, 0)] == [
            "d-1"
        ]
