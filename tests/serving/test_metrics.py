"""The /metrics output passes ``promtool check metrics`` and carries the serving labels."""

from __future__ import annotations

import subprocess

import pytest

from mainspring.errors import InvalidInputError
from mainspring.serving import DataPlane, InferenceRequest, tensor


def test_promtool_accepts_the_metrics(plane: DataPlane, promtool: str) -> None:
    columns = [tensor(n, "FP64", [2], [0.1, 0.2]) for n in ("income", "age", "debt_ratio")]
    for version, protocol in ((None, "rest"), ("champion", "grpc"), ("2", "rest")):
        plane.infer("credit", version, InferenceRequest(columns), protocol=protocol)
    with pytest.raises(InvalidInputError):
        plane.infer("credit", None, InferenceRequest(columns[:1]), protocol="rest")
    text = plane.metrics.exposition()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    for needle in ('arm="champion"', 'protocol="grpc"', 'version="2"', 'kind="invalid-input"'):
        assert needle in text.decode()
