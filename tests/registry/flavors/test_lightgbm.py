"""LightGBM's single-row fast path gives what ``Booster.predict`` gives, bit for bit."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mainspring.registry.flavors import get_flavor
from mainspring.registry.flavors.lightgbm import LightGBMModel

lgb = pytest.importorskip("lightgbm")

RNG = np.random.default_rng(3)
X = RNG.normal(size=(400, 5))
X[::7, 2] = np.nan  # missing values take the default branch, in both paths


def loaded(objective: str, y: np.ndarray, **params: object) -> tuple[LightGBMModel, object]:
    booster = lgb.train(
        {"objective": objective, "num_leaves": 15, "verbose": -1, "seed": 0, **params},
        lgb.Dataset(X, y),
        num_boost_round=30,
    )
    flavor = get_flavor("lightgbm")
    prepared = flavor.prepare(booster)
    model = flavor.load(prepared.data, prepared.signature)
    assert isinstance(model, LightGBMModel)
    return model, booster


@pytest.mark.parametrize(
    ("objective", "target", "params"),
    [
        ("binary", (X[:, 0] > 0).astype(int), {}),
        ("regression", np.nan_to_num(X[:, 1]) * 3.0, {}),
        ("multiclass", np.digitize(X[:, 0], [-0.5, 0.5]), {"num_class": 3}),
    ],
)
def test_single_rows_equal_the_boosters_own_predictions(
    objective: str, target: np.ndarray, params: dict[str, object]
) -> None:
    model, booster = loaded(objective, target, **params)
    assert model._single is not None, "the fast path should be available with this LightGBM"
    expected = booster.predict(X)  # type: ignore[attr-defined]
    for i in range(len(X)):
        one = model.predict(X[i : i + 1])
        assert one.shape == expected[i : i + 1].shape
        np.testing.assert_array_equal(one, expected[i : i + 1])


def test_threads_predicting_at_once_get_their_own_rows() -> None:
    model, booster = loaded("binary", (X[:, 0] > 0).astype(int))
    expected = booster.predict(X)  # type: ignore[attr-defined]
    wrong: list[int] = []

    def work(offset: int) -> None:
        for i in range(offset, len(X), 4):
            if model.predict(X[i : i + 1])[0] != expected[i]:
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_without_the_fast_path_rows_still_predict(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightgbm import basic

    booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(X, (X[:, 0] > 0).astype(int)), 5
    )
    flavor = get_flavor("lightgbm")
    prepared = flavor.prepare(booster)
    original = basic._LIB

    class WithoutSingleRow:  # a LightGBM build whose library lacks the single-row entry points
        def __getattr__(self, name: str) -> object:
            if "SingleRowFast" in name:
                raise AttributeError(name)
            return getattr(original, name)

    monkeypatch.setattr(basic, "_LIB", WithoutSingleRow())
    model = flavor.load(prepared.data, prepared.signature)
    assert isinstance(model, LightGBMModel) and model._single is None
    np.testing.assert_array_equal(model.predict(X[:1]), booster.predict(X[:1]))
