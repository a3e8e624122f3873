"""A registry with a small LightGBM model ``credit`` (v1 champion, v2 challenger) for serving."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.storage.memory import MemoryBlobStore, memory_metadata

lgb = pytest.importorskip("lightgbm")
pd = pytest.importorskip("pandas")

FEATURES = ["income", "age", "debt_ratio"]
ROWS = np.array([[0.5, -1.0, 0.2], [-1.5, 0.3, 1.1]])


def train(seed: int = 0, trees: int = 5) -> object:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    y = (x["income"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    return lgb.LGBMClassifier(n_estimators=trees, num_leaves=4, verbose=-1).fit(x, y)


def approve(registry: Registry, name: str, version: int) -> None:
    registry.request_approval(name, version, actor="alice")
    registry.approve(name, version, actor="bob", reason="reviewed")


@pytest.fixture(scope="session")
def models() -> tuple[object, object]:
    return train(0, 3), train(1, 6)


@pytest.fixture
def registry(models: tuple[object, object]) -> Registry:
    registry = Registry(memory_metadata(), MemoryBlobStore())
    registry.register("credit", models[0], actor="alice")
    registry.register("credit", models[1], actor="alice")
    approve(registry, "credit", 1)
    registry.set_alias("credit", "champion", 1, actor="alice")
    registry.set_alias("credit", "challenger", 2, actor="alice")
    return registry


@pytest.fixture
def plane(registry: Registry) -> Iterator[DataPlane]:
    plane = DataPlane(registry)
    plane.start()
    yield plane
    plane.close()
