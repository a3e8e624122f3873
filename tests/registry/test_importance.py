"""Global importance and background samples stored with versions, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import alembic.command
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from mainspring.errors import IntegrityError, InvalidInputError, NotFoundError
from mainspring.records import ModelVersion, VersionImportance
from mainspring.registry import Registry
from mainspring.storage import open_metadata_store
from mainspring.storage.memory import MemoryBlobStore
from mainspring.storage.sql import SqlMetadataStore, alembic_config

FEATURES = ["income", "age", "debt_ratio"]
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]


@pytest.fixture(scope="module")
def model() -> lgb.LGBMClassifier:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(200, 3)), columns=FEATURES)
    y = (x["debt_ratio"] > 0).astype(int)
    return lgb.LGBMClassifier(n_estimators=3, num_leaves=4, verbose=-1).fit(x, y)


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(url: str) -> Iterator[SqlMetadataStore]:
    opened = open_metadata_store(url)
    assert isinstance(opened, SqlMetadataStore)
    yield opened
    opened.close()


@pytest.fixture
def registry(store: SqlMetadataStore) -> Registry:
    return Registry(store, MemoryBlobStore())


VALUES = {"income": 0.1, "age": 0.0, "debt_ratio": 0.7}


def stored(registry: Registry, model: object, background: bytes | None = b"rows") -> ModelVersion:
    v = registry.register("credit", model, actor="alice")
    return registry.set_importance(
        v.ref, VALUES, method="treeshap", rows=200, actor="carol",
        background=background, background_rows=3 if background else 0,
    )  # fmt: skip


def test_importance_is_stored_with_the_version(registry: Registry, model: object) -> None:
    v = stored(registry, model)
    imp = v.importance
    assert imp is not None
    assert list(imp.values.items()) == [("debt_ratio", 0.7), ("income", 0.1), ("age", 0.0)]
    assert (imp.method, imp.rows, imp.computed_by) == ("treeshap", 200, "carol")
    assert imp.background_digest == hashlib.sha256(b"rows").hexdigest()
    assert imp.background_rows == 3
    # every way of reading the version carries it, in order
    assert registry.get("credit/1").importance == imp
    assert registry.list_versions("credit")[0].importance == imp
    body = registry.get("credit").to_dict()["importance"]
    assert [f["name"] for f in body["features"]] == ["debt_ratio", "income", "age"]
    assert VersionImportance.from_dict(body) == imp
    assert registry.background("credit/1") == b"rows"
    entry = registry.history("credit")[-1]
    assert (entry.action, entry.subject, entry.actor) == ("importance.set", "credit/1", "carol")
    assert entry.details["top"] == "debt_ratio"
    assert registry.verify().ok


def test_a_version_without_importance(registry: Registry, model: object) -> None:
    v = registry.register("credit", model, actor="alice")
    assert v.importance is None and v.to_dict()["importance"] is None
    assert registry.background("credit") is None


def test_storing_again_replaces_and_frees_the_old_background(
    registry: Registry, model: object
) -> None:
    stored(registry, model, background=b"old")
    old = hashlib.sha256(b"old").hexdigest()
    old_key = f"sha256/{old[:2]}/{old}"
    assert registry.blobs.exists(old_key)
    v = registry.set_importance(
        "credit/1", {"income": 1, "age": 2, "debt_ratio": 3}, method="exact", rows=5, actor="dan",
        background=b"new", background_rows=2,
    )  # fmt: skip
    assert v.importance is not None and list(v.importance.values) == FEATURES[::-1]
    assert not registry.blobs.exists(old_key)
    assert registry.background("credit/1") == b"new"
    removed = registry.set_importance(
        "credit/1", VALUES, method="treeshap", rows=5, actor="dan"
    ).importance
    assert removed is not None and removed.background_digest is None
    assert registry.background("credit/1") is None


def test_a_background_shared_by_two_versions_is_kept_until_both_go(
    registry: Registry, model: object
) -> None:
    stored(registry, model, background=b"same")
    stored(registry, model, background=b"same")  # version 2: same artifact and background
    digest = hashlib.sha256(b"same").hexdigest()
    key = f"sha256/{digest[:2]}/{digest}"
    registry.delete_version("credit", 1, actor="alice", reason="superseded")
    assert registry.blobs.exists(key) and registry.background("credit/2") == b"same"
    registry.delete_version("credit", 2, actor="alice", reason="superseded")
    assert not registry.blobs.exists(key)
    assert list(registry.blobs.list("sha256/")) == []


def test_a_tampered_background_is_refused(registry: Registry, model: object) -> None:
    v = stored(registry, model)
    assert v.importance is not None and v.importance.background_digest is not None
    digest = v.importance.background_digest
    registry.blobs.put(f"sha256/{digest[:2]}/{digest}", b"altered")
    with pytest.raises(IntegrityError, match="background sample of credit/1"):
        registry.background("credit/1")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"income": 0.1, "age": 0.2}, "importance"),
        ({**VALUES, "zip": 0.3}, "importance"),
        ({**VALUES, "age": -0.1}, "importance.age"),
        ({**VALUES, "age": float("nan")}, "importance.age"),
        ({**VALUES, "age": "high"}, "importance.age"),
        ({**VALUES, "age": True}, "importance.age"),
    ],
)
def test_bad_importance_is_refused(
    registry: Registry, model: object, values: dict[str, object], field: str
) -> None:
    registry.register("credit", model, actor="alice")
    with pytest.raises(InvalidInputError) as caught:
        registry.set_importance("credit/1", values, method="exact", rows=1, actor="a")
    assert caught.value.field == field
    assert registry.get("credit/1").importance is None


def test_bad_sizes_and_unknown_versions_are_refused(registry: Registry, model: object) -> None:
    registry.register("credit", model, actor="alice")
    with pytest.raises(InvalidInputError) as caught:
        registry.set_importance("credit/1", VALUES, method="exact", rows=0, actor="a")
    assert caught.value.field == "rows"
    with pytest.raises(InvalidInputError) as caught:
        registry.set_importance(
            "credit/1", VALUES, method="exact", rows=1, actor="a", background=b"x",
            background_rows=101,
        )  # fmt: skip
    assert caught.value.field == "background_rows"
    with pytest.raises(NotFoundError):
        registry.set_importance("credit/9", VALUES, method="exact", rows=1, actor="a")


def test_migration_0006_downgrades_and_upgrades(store: SqlMetadataStore, model: object) -> None:
    registry = Registry(store, MemoryBlobStore())
    stored(registry, model)
    with store.write() as conn:
        alembic.command.downgrade(alembic_config(conn), "0005")
    with store.read() as conn:
        assert "version_importance" not in sa.inspect(conn).get_table_names()
    with store.write() as conn:
        alembic.command.upgrade(alembic_config(conn), "head")
    assert registry.get("credit/1").importance is None  # the table came back empty
    assert stored(registry, model).importance is not None
