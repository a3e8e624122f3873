"""A registry with a small LightGBM model ``credit`` (v1 champion, v2 challenger) for serving."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mainspring.features import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource
from mainspring.records import Decision
from mainspring.registry import Registry
from mainspring.serving import DataPlane
from mainspring.serving.decisions import DecisionService
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore
from mainspring.serving.policy import Policy
from mainspring.storage.memory import MemoryBlobStore, MemoryOnlineStore, memory_metadata

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


# ---------------------------------------------------------------- decisions

END = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = {
    "thresholds": [{"below": 0.4, "decision": "approve"}, {"decision": "decline"}],
    "review": {"low": 0.35, "high": 0.45},
    "rules": {
        "before": [{"name": "minor", "if": {"context.age": {"<": 18}}, "decision": "decline"}],
        "after": [{"name": "vip", "if": {"context.segment": {"==": "vip"}}, "decision": "approve"}],
    },
    "fallback": {"decision": "refer", "review": True},
    "unknown_entity": "refuse",
    "explain": {"top_k": 2, "codes": {"debt_ratio": {"up": {"code": "D1", "text": "high debt"}}}},
}


class Collected:
    """A decision sink that keeps what it is given (the decision log's interface)."""

    def __init__(self) -> None:
        self.decisions: list[Decision] = []

    def append(self, decision: Decision) -> None:
        self.decisions.append(decision)

    async def append_async(self, decision: Decision) -> None:
        self.decisions.append(decision)


customer = Entity("customer", {"customer_id": "int64"})
profile = FeatureView(
    "profile",
    customer,
    [Field("income"), Field("age"), Field("debt_ratio")],
    FileSource("profile.parquet"),
    ttl=timedelta(days=30),
)


@pytest.fixture
def features(tmp_path: Path) -> FeatureStore:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=FEATURES)
    frame.insert(0, "customer_id", np.arange(50, dtype=np.int64))
    frame.insert(1, "event_timestamp", pd.Timestamp(END - timedelta(days=1)))
    frame.to_parquet(tmp_path / "profile.parquet")
    store = FeatureStore(memory_metadata(), MemoryOnlineStore(), base_dir=tmp_path)
    store.apply([customer, profile, FeatureService("scoring", [profile])], actor="alice")
    store.materialize(end=END)
    return store


def deployment(
    policy: dict[str, Any] | None = POLICY, features: str = "scoring", **extra: Any
) -> Deployment:
    arms = (Arm("main", "credit", "champion"), Arm("next", "credit", "2", "shadow", 100.0))
    return Deployment(
        "credit-decisions", arms, features=features,
        policy=Policy.from_dict(policy) if policy else None, **extra,
    )  # fmt: skip


@pytest.fixture
def service(features: FeatureStore, models: tuple[object, object]) -> Iterator[DecisionService]:
    metadata = memory_metadata()
    registry = Registry(metadata, MemoryBlobStore())
    registry.register("credit", models[0], actor="alice")
    registry.register("credit", models[1], actor="alice")
    approve(registry, "credit", 1)
    registry.set_alias("credit", "champion", 1, actor="alice")
    store = DeploymentStore(metadata)
    store.put(deployment(), actor="alice")
    plane = DataPlane(registry, deployments=store)
    plane.start()
    plane.decisions = DecisionService(plane, Collected(), features)
    yield plane.decisions
    plane.close()
