"""MLflow model directories, written by hand as MLflow would (MLflow itself is not installed)."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mainspring.errors import UnsupportedFormatError
from mainspring.records import FeatureSpec
from mainspring.registry.flavors import flavor_for_file, get_flavor, read_mlflow_model

NAMES = ["a", "b", "c"]
RNG = np.random.RandomState(11)
X = RNG.normal(size=(200, 3))
Y = (X[:, 0] - X[:, 2] > 0).astype(int)

COLUMNS = json.dumps([{"type": "double", "name": n, "required": True} for n in NAMES])
OUTPUT = json.dumps([{"type": "long", "required": True}])


def mlmodel(flavor: str, config: dict[str, str], *, inputs: str = COLUMNS) -> str:
    """MLmodel text as mlflow 2.x writes it (the signature schemas are JSON strings)."""
    lines = [
        "artifact_path: model",
        "flavors:",
        "  python_function:",
        f"    data: {next(iter(config.values()))}",
        f"    loader_module: mlflow.{flavor}",
        "    python_version: 3.11.9",
        f"  {flavor}:",
        "    code: null",
        *[f"    {k}: {v}" for k, v in config.items()],
        "mlflow_version: 2.14.1",
        "model_uuid: 4f0d6c1e2b9a4e7c8d3f5a6b7c8d9e0f",
        "run_id: 0a1b2c3d4e5f",
        "signature:",
        f"  inputs: '{inputs}'",
        f"  outputs: '{OUTPUT}'",
        "  params: null",
        "utc_time_created: '2024-06-01 12:34:56.789012'",
        "metadata:",
        "  team: risk",
    ]
    return "\n".join(lines) + "\n"


def write(directory: Path, text: str, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MLmodel").write_text(text)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return directory


def test_lightgbm_booster(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, Y), 5)
    data = booster.model_to_string().encode()
    config = {"data": "model.lgb", "model_class": "lightgbm.basic.Booster"}
    found = read_mlflow_model(write(tmp_path, mlmodel("lightgbm", config), {"model.lgb": data}))

    assert (found.flavor, found.data, found.filename) == ("lightgbm", data, "model.lgb")
    assert found.run_id == "0a1b2c3d4e5f"
    assert found.mlflow_version == "2.14.1"
    assert found.created == datetime(2024, 6, 1, 12, 34, 56, 789012, tzinfo=UTC)
    assert found.created is not None and found.created.tzinfo is not None
    assert found.signature is not None
    assert found.signature.input_names == tuple(NAMES)
    assert found.signature.outputs == (FeatureSpec("prediction", "int64"),)
    assert found.metadata["metadata"] == {"team": "risk"}
    assert found.metadata["mlflow_flavor"] == "lightgbm"
    assert flavor_for_file(found.data, found.filename).name == "lightgbm"
    prepared = get_flavor("lightgbm").prepare_file(found.data, found.filename)
    assert prepared.n_features == 3


def test_lightgbm_sklearn_api_is_a_pickle(tmp_path: Path) -> None:
    lgb = pytest.importorskip("lightgbm")
    cloudpickle = pytest.importorskip("cloudpickle")
    clf = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, Y)
    config = {"data": "model.pkl", "model_class": "lightgbm.sklearn.LGBMClassifier"}
    files = {"model.pkl": cloudpickle.dumps(clf)}
    found = read_mlflow_model(write(tmp_path, mlmodel("lightgbm", config), files))
    assert found.flavor == "pickle"
    assert found.signature is not None
    loaded = get_flavor("pickle").load(found.data, found.signature, trusted=True)
    np.testing.assert_allclose(loaded.predict(X), clf.predict_proba(X)[:, 1], rtol=1e-12)


@pytest.mark.parametrize("filename", ["model.ubj", "model.json", "model.xgb"])
def test_xgboost_with_a_tensor_signature(tmp_path: Path, filename: str) -> None:
    xgb = pytest.importorskip("xgboost")
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, Y), 3)
    # what booster.save_model writes for each extension (".xgb" is UBJSON since XGBoost 2.1)
    data = bytes(booster.save_raw("json" if filename.endswith(".json") else "ubj"))
    tensor = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}])
    config = {"data": filename, "model_class": "xgboost.core.Booster"}
    found = read_mlflow_model(
        write(tmp_path / "m", mlmodel("xgboost", config, inputs=tensor), {filename: data})
    )
    assert found.flavor == "xgboost" and found.data == data
    assert found.signature is None
    assert get_flavor("xgboost").prepare_file(found.data, found.filename).n_features == 3


@pytest.mark.parametrize(
    ("fmt", "flavor"), [("skops", "sklearn"), ("cloudpickle", "pickle"), ("pickle", "pickle")]
)
def test_sklearn_serialization_formats(tmp_path: Path, fmt: str, flavor: str) -> None:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X, Y)
    if fmt == "skops":
        import skops.io

        name, data = "model.skops", skops.io.dumps(clf)
    else:
        name, data = "model.pkl", pickle.dumps(clf)
    config = {"pickled_model": name, "serialization_format": fmt, "sklearn_version": "1.5.0"}
    found = read_mlflow_model(write(tmp_path, mlmodel("sklearn", config), {name: data}))
    assert found.flavor == flavor
    assert flavor_for_file(found.data, found.filename).name == flavor
    assert found.metadata["flavor_config"]["serialization_format"] == fmt


def test_onnx(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression().fit(X.astype(np.float32), Y)
    proto = skl2onnx.convert_sklearn(
        clf,
        initial_types=[("input", FloatTensorType([None, 3]))],
        options={id(clf): {"zipmap": False}},
    )
    data = proto.SerializeToString()
    found = read_mlflow_model(
        write(tmp_path, mlmodel("onnx", {"data": "model.onnx"}), {"model.onnx": data})
    )
    assert (found.flavor, found.filename) == ("onnx", "model.onnx")
    assert get_flavor("onnx").prepare_file(found.data, found.filename).n_features == 3


def test_signature_types_are_mapped(tmp_path: Path) -> None:
    kinds = ["double", "float", "long", "integer", "boolean", "string"]
    inputs = json.dumps([{"type": k, "name": f"x_{k}"} for k in kinds])
    files = {"model.onnx": b"\x08\x08"}
    found = read_mlflow_model(
        write(tmp_path, mlmodel("onnx", {"data": "model.onnx"}, inputs=inputs), files)
    )
    assert found.signature is not None
    dtypes = [spec.dtype for spec in found.signature.inputs]
    assert dtypes == ["float64", "float32", "int64", "int32", "bool", "string"]


def test_unknown_column_type_gives_no_signature(tmp_path: Path) -> None:
    inputs = json.dumps([{"type": "datetime", "name": "when"}])
    files = {"model.onnx": b"\x08\x08"}
    found = read_mlflow_model(
        write(tmp_path, mlmodel("onnx", {"data": "model.onnx"}, inputs=inputs), files)
    )
    assert found.signature is None


def test_directory_without_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="no MLmodel") as caught:
        read_mlflow_model(tmp_path)
    assert caught.value.field == "path"
    assert str(tmp_path) in str(caught.value)


def test_only_python_function(tmp_path: Path) -> None:
    text = "flavors:\n  python_function:\n    loader_module: my.loader\n    data: model\n"
    with pytest.raises(UnsupportedFormatError, match="python_function") as caught:
        read_mlflow_model(write(tmp_path, text, {}))
    assert caught.value.field == "path"
    assert str(tmp_path) in str(caught.value)


def test_missing_model_file(tmp_path: Path) -> None:
    text = mlmodel("lightgbm", {"data": "model.lgb"})
    with pytest.raises(UnsupportedFormatError, match=r"model\.lgb.*missing") as caught:
        read_mlflow_model(write(tmp_path, text, {}))
    assert "lightgbm" in str(caught.value) and str(tmp_path) in str(caught.value)


def test_model_file_outside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "secret.lgb").write_bytes(b"tree\nversion=v4\n")
    text = mlmodel("lightgbm", {"data": "../secret.lgb"})
    with pytest.raises(UnsupportedFormatError, match="outside"):
        read_mlflow_model(write(tmp_path / "model", text, {}))


def test_legacy_xgboost_binary_is_refused(tmp_path: Path) -> None:
    text = mlmodel("xgboost", {"data": "model.xgb"})
    with pytest.raises(UnsupportedFormatError, match="UBJSON"):
        read_mlflow_model(write(tmp_path, text, {"model.xgb": b"binf\x00\x00\x00\x3f"}))


def test_malformed_mlmodel(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="YAML"):
        read_mlflow_model(write(tmp_path, "flavors: [unclosed\n", {}))
    with pytest.raises(UnsupportedFormatError, match="YAML mapping"):
        read_mlflow_model(write(tmp_path, "- just a list\n", {}))
