"""Global importance computed from a data sample and stored with the version."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mainspring.errors import InvalidInputError
from mainspring.explain import TreeExplainer, global_importance
from mainspring.pipelines.importance import (
    compute_importance,
    register_with_importance,
    store_importance,
)
from mainspring.registry import Registry
from mainspring.serving.explaining import background_matrix
from mainspring.storage.memory import MemoryBlobStore, memory_metadata

FEATURES = ["income", "age", "debt_ratio"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 3)), columns=FEATURES)
    x["label"] = (2 * x["debt_ratio"] - x["income"] > 0).astype(int)
    return x


@pytest.fixture(scope="module")
def booster(frame: pd.DataFrame) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(n_estimators=10, num_leaves=4, verbose=-1).fit(
        frame[FEATURES], frame["label"]
    )


@pytest.fixture(scope="module")
def logistic(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[FEATURES], frame["label"])


@pytest.fixture
def registry() -> Registry:
    return Registry(memory_metadata(), MemoryBlobStore())


def test_tree_models_get_exact_treeshap_importance(
    registry: Registry, booster: lgb.LGBMClassifier, frame: pd.DataFrame
) -> None:
    v = store_importance(
        registry, registry.register("credit", booster, actor="alice").ref, frame, actor="carol"
    )
    imp = v.importance
    assert imp is not None and (imp.method, imp.rows) == ("treeshap", 400)
    expected = global_importance(TreeExplainer.from_lightgbm(booster, FEATURES), frame[FEATURES])
    assert list(imp.values) == list(expected)
    for name, value in expected.items():
        assert imp.values[name] == pytest.approx(value, rel=1e-12)
    assert next(iter(imp.values)) == "debt_ratio"
    # the background sample: 100 of the rows, in signature order, as Parquet
    assert imp.background_rows == 100
    stored = registry.background("credit/1")
    assert stored is not None
    background = background_matrix(stored, FEATURES)
    assert background.shape == (100, 3)
    rows = {tuple(r) for r in frame[FEATURES].to_numpy()}
    assert all(tuple(r) in rows for r in background)


def test_other_flavors_get_the_agnostic_explainer(
    registry: Registry, logistic: LogisticRegression, frame: pd.DataFrame
) -> None:
    version = registry.register("credit", logistic, actor="alice")
    found = compute_importance(registry.load(version.ref), frame, rows=40, seed=3)
    assert (found.method, found.rows, found.background.shape) == ("exact", 40, (100, 3))
    assert list(found.values)[:2] == ["debt_ratio", "income"]
    again = compute_importance(registry.load(version.ref), frame, rows=40, seed=3)
    assert again.values == found.values  # the sample is drawn with the seed
    stored = store_importance(registry, version.ref, frame, actor="carol", rows=40, seed=3)
    assert stored.importance is not None and stored.importance.values == found.values


def test_data_files_parquet_and_csv(
    registry: Registry, booster: lgb.LGBMClassifier, frame: pd.DataFrame, tmp_path: Path
) -> None:
    version = registry.register("credit", booster, actor="alice")
    frame.to_parquet(tmp_path / "sample.parquet")
    frame.to_csv(tmp_path / "sample.csv", index=False)
    loaded = registry.load(version.ref)
    from_parquet = compute_importance(loaded, tmp_path / "sample.parquet")
    from_csv = compute_importance(loaded, str(tmp_path / "sample.csv"))
    assert list(from_parquet.values) == list(from_csv.values)
    for name, value in from_parquet.values.items():
        assert from_csv.values[name] == pytest.approx(value, rel=1e-9)
    (tmp_path / "sample.json").write_text("{}")
    for path, message in [
        (tmp_path / "nope.parquet", "does not exist"),
        (tmp_path / "sample.json", "Parquet"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            compute_importance(loaded, path)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        compute_importance(loaded, tmp_path / "bad.parquet")


def test_rows_a_model_cannot_take_are_left_out(
    registry: Registry, logistic: LogisticRegression, frame: pd.DataFrame
) -> None:
    loaded = registry.load(registry.register("credit", logistic, actor="alice").ref)
    holed = frame.copy()
    holed.loc[:9, "age"] = np.nan
    found = compute_importance(loaded, holed, rows=20)
    assert found.dropped == 10 and np.isfinite(found.background).all()
    with pytest.raises(InvalidInputError, match="no usable rows"):
        compute_importance(loaded, frame.assign(age=np.nan))
    with pytest.raises(InvalidInputError) as caught:
        compute_importance(loaded, frame.drop(columns="age"))
    assert caught.value.field == "age"
    with pytest.raises(InvalidInputError) as caught:
        compute_importance(loaded, frame, background_rows=101)
    assert caught.value.field == "background_rows"


def test_register_with_importance(
    registry: Registry, booster: lgb.LGBMClassifier, frame: pd.DataFrame
) -> None:
    v = register_with_importance(
        registry, "credit", booster, data=frame, actor="alice", progress=True,
        metrics={"auc": 0.8},
    )  # fmt: skip
    assert v.importance is not None and v.metrics == {"auc": 0.8}
    with pytest.raises(InvalidInputError, match=r"registered credit/2, but its importance"):
        register_with_importance(
            registry, "credit", booster, data=frame.drop(columns="age"), actor="alice"
        )
    assert registry.get("credit/2").importance is None  # registered, without importance
    with pytest.raises(InvalidInputError, match="does not exist"):
        register_with_importance(registry, "credit", booster, data="missing.csv", actor="alice")
    assert [v.version for v in registry.list_versions("credit")] == [1, 2]


WIDE = ["income", "age", "debt_ratio", "tenure", "region"]


@pytest.fixture(scope="module")
def three_classes() -> pd.DataFrame:
    """Five features; the class (0, 1, 2) depends on ``tenure`` and ``income`` only."""
    rng = np.random.default_rng(4)
    x = pd.DataFrame(rng.normal(size=(600, 5)), columns=WIDE)
    x["label"] = np.digitize(x["tenure"] + 0.8 * x["income"], [-0.7, 0.7])
    return x


def test_multiclass_tree_importance_sums_mean_abs_shap_over_classes(
    registry: Registry, three_classes: pd.DataFrame
) -> None:
    import xgboost as xgb

    x, y = three_classes[WIDE], three_classes["label"]
    models = [
        lgb.LGBMClassifier(n_estimators=20, num_leaves=6, verbose=-1).fit(x, y),
        xgb.XGBClassifier(n_estimators=20, max_depth=3).fit(x, y),
    ]
    for model in models:
        version = registry.register("species", model, actor="alice")
        assert len(version.signature.outputs or ()) == 3
        found = compute_importance(registry.load(version.ref), three_classes)
        assert (found.method, found.rows, found.outputs) == ("treeshap", 600, 3)
        assert list(found.values)[:2] == ["tenure", "income"]
        # the sum over the classes of each class's mean |SHAP| (its raw margin)
        read = TreeExplainer.from_xgboost
        if version.flavor == "lightgbm":
            read = TreeExplainer.from_lightgbm
        per_class = [
            global_importance(read(model, WIDE, class_index=k), x.to_numpy()) for k in range(3)
        ]
        for name in WIDE:
            expected = sum(imp[name] for imp in per_class)
            assert found.values[name] == pytest.approx(expected, rel=1e-9)
        assert found.values["tenure"] > max(imp["tenure"] for imp in per_class)
        stored = store_importance(registry, version.ref, three_classes, actor="carol")
        assert stored.importance is not None and stored.importance.values == found.values
        assert stored.importance.background_rows == 100
        assert registry.background(version.ref) is not None


def test_multiclass_agnostic_importance_sums_over_classes(
    registry: Registry, three_classes: pd.DataFrame
) -> None:
    x, y = three_classes[WIDE], three_classes["label"]
    logistic = LogisticRegression().fit(x, y)
    version = registry.register("species", logistic, actor="alice")
    found = compute_importance(registry.load(version.ref), three_classes, rows=15)
    assert (found.method, found.rows, found.outputs) == ("exact", 15, 3)
    assert list(found.values)[:2] == ["tenure", "income"]
    # the sum over the classes of each class probability's mean |SHAP|
    from mainspring.explain import AgnosticExplainer

    rng = np.random.default_rng(0)  # the samples compute_importance draws with seed 0
    matrix = x.to_numpy()
    explained = matrix[np.sort(rng.choice(len(matrix), size=15, replace=False))]
    assert np.array_equal(
        found.background, matrix[np.sort(rng.choice(len(matrix), size=100, replace=False))]
    )
    total = dict.fromkeys(WIDE, 0.0)
    for k in range(3):

        def probability(rows: np.ndarray, k: int = k) -> np.ndarray:
            scores = logistic.predict_proba(pd.DataFrame(rows, columns=WIDE))
            return np.asarray(scores[:, k], dtype=np.float64)

        explainer = AgnosticExplainer(probability, found.background, WIDE)
        for name, value in global_importance(explainer, explained).items():
            total[name] += value
    for name in WIDE:
        assert found.values[name] == pytest.approx(total[name], rel=1e-9)


def test_register_multiclass_with_importance(
    registry: Registry, three_classes: pd.DataFrame
) -> None:
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=4, verbose=-1).fit(
        three_classes[WIDE], three_classes["label"]
    )
    v = register_with_importance(registry, "species", model, data=three_classes, actor="alice")
    assert v.importance is not None and v.importance.method == "treeshap"
    assert list(v.importance.values)[:2] == ["tenure", "income"]
