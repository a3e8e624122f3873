"""Every script under examples/ runs to completion and prints its module-level ``EXPECT``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected_marker(script) in result.stdout


def expected_marker(script: Path) -> str:
    """The script's ``EXPECT = "..."``: the line its output must contain (required)."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXPECT" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, str) and value, f"{script.name}: EXPECT must be a string"
            return value
    raise AssertionError(f"{script.name} declares no EXPECT = '...' marker for its output")
