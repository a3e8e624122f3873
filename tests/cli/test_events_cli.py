"""``mainspring events produce|tail|lag`` and ``mainspring worker materialize``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner, Result

from mainspring.cli.main import cli


def run(project: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["-C", str(project), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_produce_tail_materialize_and_lag(tmp_path: Path) -> None:
    for n in range(3):
        run(tmp_path, "events", "produce", "orders", json.dumps({"n": n}), "--key", f"c{n % 2}")
    tail = run(tmp_path, "--json", "events", "tail", "orders", "-n", "2")
    assert [e["payload"]["n"] for e in json.loads(tail.output)] == [1, 2]
    assert run(tmp_path, "events", "lag", "materialize-orders", "orders").output.strip() == "3"

    out = run(
        tmp_path,
        "--json",
        "worker",
        "materialize",
        "--topic",
        "orders",
        "--into",
        str(tmp_path / "view.db"),
        "--table",
        "orders",
        "--until-idle",
    )
    assert json.loads(out.output)["events"] == 3 and json.loads(out.output)["lag"] == 0
    with sqlite3.connect(tmp_path / "view.db") as conn:
        rows = conn.execute("SELECT key, payload, applied FROM orders ORDER BY key").fetchall()
    assert rows == [("c0", '{"n":2}', 2), ("c1", '{"n":1}', 1)]
    assert run(tmp_path, "events", "lag", "materialize-orders", "orders").output.strip() == "0"


def test_bad_payload_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "events", "produce", "orders", "{not json", code=2)
    assert "payload is not JSON" in result.output
