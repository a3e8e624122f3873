"""The examples in docs/ run: Python blocks as doctests (pytest --doctest-glob), and here every
``$ mainspring …`` and ``$ curl …`` line of a console block, in order, in a fresh project."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mainspring.api.app import create_app
from mainspring.cli.main import cli
from mainspring.project import Project

DOCS = Path(__file__).resolve().parents[1] / "docs"


def console_blocks(doc: Path) -> list[list[str]]:
    blocks = re.findall(r"```console\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
    commands = [[line[2:] for line in b.splitlines() if line.startswith("$ ")] for b in blocks]
    # blocks with placeholders (ms_... tokens) are illustrations, not runnable
    return [c for c in commands if not any("ms_..." in line for line in c)]


def write_model(directory: Path) -> None:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["income", "age", "debt_ratio"])
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, (x["income"] > 0).astype(int))
    model.booster_.save_model(str(directory / "model.txt"))
    x.to_csv(directory / "sample.csv", index=False)  # a training-data sample (importance)


def write_feature_files(directory: Path, doc: Path) -> None:
    """The files a feature-store console example expects: the doc's ``# features.py`` block and
    a ``profile.parquet`` for it."""
    blocks = re.findall(
        r"```python\n(# features\.py\n.*?)```", doc.read_text(encoding="utf-8"), re.S
    )
    if not blocks:
        return
    (directory / "features.py").write_text(blocks[0], encoding="utf-8")
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    pd.DataFrame(
        {
            "customer_id": [1, 2],
            "event_timestamp": [t0, t0],
            "income": [40.0, 30.0],
            "debt": [10.0, 24.0],
        }
    ).to_parquet(directory / "profile.parquet")


def run_curl(client: TestClient, line: str, cwd: Path) -> None:
    args = shlex.split(line)[1:]
    method, url, headers, files, data, body = "GET", "", {}, {}, {}, None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            i += 1
            continue
        if arg in {"-X", "-H", "-F", "--json"}:
            value = args[i + 1]
            if arg == "-X":
                method = value
            elif arg == "-H":
                key, _, val = value.partition(":")
                headers[key.strip()] = val.strip()
            elif arg == "-F":
                key, _, val = value.partition("=")
                if val.startswith("@"):
                    files[key] = (val[1:], (cwd / val[1:]).read_bytes())
                else:
                    data[key] = val
            else:
                body = json.loads(value)
                method = method if method != "GET" else "POST"
            i += 2
            continue
        url = arg
        i += 1
    path = "/" + url.split("/", 1)[1]
    response = client.request(
        method, path, headers=headers, files=files or None, data=data or None, json=body
    )
    assert response.status_code < 400, f"{line}\n→ {response.status_code} {response.text}"


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_console_examples_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n, block in enumerate(console_blocks(doc)):
        cwd = tmp_path / f"block{n}"
        cwd.mkdir()
        write_model(cwd)
        write_feature_files(cwd, doc)
        monkeypatch.chdir(cwd)
        with Project.open(cwd) as project, TestClient(create_app(project)) as client:
            for line in block:
                if line.startswith("curl "):
                    run_curl(client, line, cwd)
                    continue
                assert line.startswith("mainspring "), line
                result = CliRunner().invoke(cli, shlex.split(line)[1:], catch_exceptions=False)
                assert result.exit_code == 0, f"{line}\n→ {result.output}"
