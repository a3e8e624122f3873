"""Importing the flavors, and asking which flavor fits an object, imports no ML library."""

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
    "pandas",
    "joblib",
    "cloudpickle",
    "scipy",
]

CODE = """
import json, sys
import mainspring
import mainspring.registry.flavors as f
from mainspring.errors import UnsupportedFormatError
try:
    f.flavor_for_object(object())
except UnsupportedFormatError:
    pass
for flavor in f.FLAVORS:
    flavor.available()
    flavor.accepts(object())
    flavor.sniff(b"not a model", "model.bin")
print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))
"""


def test_flavors_import_no_ml_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


MISSING = """
import sys
for name in ("lightgbm", "xgboost", "sklearn", "skops", "skops.io", "onnx", "onnxruntime"):
    sys.modules[name] = None  # makes importing it fail, as if it were not installed
import mainspring.registry.flavors as f
from mainspring.errors import MissingDependencyError
from mainspring.records import FeatureSpec, Signature
signature = Signature((FeatureSpec("a", "float64"),))
for flavor in f.FLAVORS:
    if flavor.name == "pickle":
        continue
    try:
        flavor.load(b"model", signature)
    except MissingDependencyError as exc:
        print(flavor.name, exc.extra, exc)
"""


def test_missing_library_names_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", MISSING], capture_output=True, text=True, check=True, timeout=60
    )
    lines = out.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["lightgbm", "lightgbm"],
        ["xgboost", "xgboost"],
        ["sklearn", "sklearn"],
        ["onnx", "onnx"],
    ]
    assert "pip install 'mainspring[lightgbm]'" in lines[0]
    assert "LightGBM models need the lightgbm package" in lines[0]
