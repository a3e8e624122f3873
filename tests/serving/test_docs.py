"""The ``sh`` blocks of docs/serving.md run against the OIP REST app: every ``$ curl`` succeeds."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.serving.oip.rest import create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def curl_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [line[2:] for b in blocks for line in b.splitlines() if line.startswith("$ curl ")]


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(DataPlane(registry))) as client:
        yield client


def test_there_are_examples() -> None:
    assert len(curl_lines()) >= 5


@pytest.mark.parametrize("line", curl_lines())
def test_curl_example(client: TestClient, line: str) -> None:
    args = shlex.split(line)[1:]
    method, body, url, headers = "GET", None, "", {}
    i = 0
    while i < len(args):
        if args[i] == "-s":
            i += 1
        elif args[i] == "-X":
            method, i = args[i + 1], i + 2
        elif args[i] in ("-d", "--json"):  # like curl: -d sends a form content type
            body, i = args[i + 1].encode(), i + 2
            method = "POST" if method == "GET" else method
            json_type = "application/json" if args[i - 2] == "--json" else None
            headers["Content-Type"] = json_type or "application/x-www-form-urlencoded"
        else:
            url, i = args[i], i + 1
    path = "/" + url.split("/", 1)[1]
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == 200, f"{line}\n→ {response.status_code} {response.text}"
