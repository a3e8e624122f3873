"""``import mainspring`` imports no optional integration, model library or web framework."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "lightgbm",
    "xgboost",
    "sklearn",
    "skops",
    "onnx",
    "onnxruntime",
    "psycopg",
    "s3fs",
    "redis",
    "confluent_kafka",
    "jsonschema",
    "ray",
    "shap",
    "numba",
    "llvmlite",
    "fastapi",
    "starlette",
    "uvicorn",
    "pandas",
    "boto3",
    "botocore",
    "aiobotocore",
    "rich",
    "click",
    "jinja2",
    "duckdb",
    "pyarrow",
    "polars",
    "grpc",
    "google",
    "orjson",
    "prometheus_client",
]


def test_import_mainspring_is_lean() -> None:
    code = (
        "import sys, json, mainspring as ms; "
        "ms.Project; ms.Registry; ms.ModelRef.parse('a@b'); ms.ReasonCodes; ms.explainer_for; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))
