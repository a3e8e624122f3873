"""Every script under examples/ runs to completion and prints what it declares it will: each
declares a module-level ``EXPECT = "..."`` marker string."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def expected_marker(script: Path) -> str:
    """The script's module-level ``EXPECT`` string (read without running it)."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "EXPECT" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and node.value.value
        ):
            return node.value.value
    raise AssertionError(f"{script.name} must declare a non-empty EXPECT = '...' marker")


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    marker = expected_marker(script)
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout, result.stdout
