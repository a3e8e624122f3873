"""The registry's behaviour: versions, aliases, approvals, rollback, loading, history."""

from __future__ import annotations

import hashlib
import itertools
import pickle
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from mainspring.errors import (
    ConflictError,
    GovernanceError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    UnsupportedFormatError,
)
from mainspring.records import ApprovalState, Lineage, ModelRef, Signature, TrainingData, utcnow
from mainspring.registry import Registry
from mainspring.storage.memory import MemoryBlobStore, memory_metadata

FEATURES = ["income", "age", "debt_ratio"]


def train(seed: int = 0, trees: int = 5) -> lgb.LGBMClassifier:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    y = (x["income"] + rng.normal(scale=0.5, size=300) > 0).astype(int)
    return lgb.LGBMClassifier(n_estimators=trees, num_leaves=4, verbose=-1).fit(x, y)


@pytest.fixture(scope="module")
def model() -> lgb.LGBMClassifier:
    return train()


@pytest.fixture
def registry() -> Registry:
    return Registry(memory_metadata(), MemoryBlobStore())


def approved(registry: Registry, model: object, name: str = "credit") -> int:
    v = registry.register(name, model, actor="alice")
    registry.request_approval(name, v.version, actor="alice")
    registry.approve(name, v.version, actor="bob", reason="reviewed")
    return v.version


def test_register_records_everything(registry: Registry, model: lgb.LGBMClassifier) -> None:
    data = TrainingData("f" * 64, 300, utcnow(), utcnow(), "unit")
    v = registry.register(
        "credit",
        model,
        actor="alice",
        metrics={"auc": 0.91},
        tags={"team": "risk"},
        params={"note": "x"},
        training_data=data,
        code_version="abc123",
        lineage=Lineage(run_id="run-1", feature_views=("applicant",), parent_version=None),
    )
    assert (v.name, v.version, v.flavor) == ("credit", 1, "lightgbm")
    assert v.signature.input_names == tuple(FEATURES)
    assert v.metrics == {"auc": 0.91} and v.tags == {"team": "risk"}
    assert v.params["note"] == "x" and "num_leaves" in str(v.params)
    assert v.training_data == data and v.code_version == "abc123"
    assert v.lineage.run_id == "run-1" and v.lineage.feature_views == ("applicant",)
    assert "lightgbm" in v.library_versions
    assert v.registered_by == "alice" and v.approval is ApprovalState.NONE
    blob = registry.blobs.get(f"sha256/{v.digest[:2]}/{v.digest}")
    assert hashlib.sha256(blob).hexdigest() == v.digest and len(blob) == v.size
    assert registry.get("credit/1") == v
    assert registry.register("credit", model, actor="alice").version == 2


def test_register_from_file_and_bytes(
    registry: Registry, model: lgb.LGBMClassifier, tmp_path: Path
) -> None:
    path = tmp_path / "model.txt"
    model.booster_.save_model(str(path))
    v = registry.register("credit", path, actor="alice")
    assert v.flavor == "lightgbm" and v.signature.input_names == tuple(FEATURES)
    v2 = registry.register("credit", path.read_bytes(), actor="alice", filename="m.txt")
    assert v2.digest == v.digest and v2.version == 2


def test_load_predicts_like_the_live_model(registry: Registry, model: lgb.LGBMClassifier) -> None:
    registry.register("credit", model, actor="alice")
    x = pd.DataFrame(np.random.default_rng(5).normal(size=(20, 3)), columns=FEATURES)
    loaded = registry.load("credit/1")
    np.testing.assert_allclose(loaded.predict(x), model.predict_proba(x)[:, 1], rtol=1e-9)
    assert loaded.version.ref == ModelRef("credit", 1)


def test_unknown_things_are_named(registry: Registry, model: lgb.LGBMClassifier) -> None:
    with pytest.raises(NotFoundError, match="model 'nope'"):
        registry.get("nope")
    registry.register("credit", model, actor="alice")
    with pytest.raises(NotFoundError, match=r"credit@gold.*aliases of credit: none"):
        registry.load("credit@gold")
    with pytest.raises(NotFoundError, match="credit/7"):
        registry.get("credit/7")


def test_bad_input_leaves_the_registry_unchanged(
    registry: Registry, model: lgb.LGBMClassifier
) -> None:
    registry.register("credit", model, actor="alice")
    before = (registry.list_versions("credit"), registry.history(), list(registry.blobs.list()))
    with pytest.raises(UnsupportedFormatError):
        registry.register("credit", b"this is not a model", actor="alice", filename="x.bin")
    with pytest.raises(InvalidInputError, match="file"):
        registry.register(
            "credit",
            model.booster_.model_to_string().encode()[:200],
            actor="alice",
            flavor="lightgbm",
        )
    with pytest.raises(SignatureError, match="debt_ratio"):
        registry.register(
            "credit",
            model,
            actor="alice",
            signature={"inputs": [{"name": "income"}, {"name": "age"}, {"name": "debt"}]},
        )
    with pytest.raises(SignatureError, match="2 inputs but the model takes 3"):
        registry.register(
            "credit",
            model,
            actor="alice",
            signature={"inputs": [{"name": "income"}, {"name": "age"}]},
        )
    with pytest.raises(InvalidInputError, match=r"metrics\.auc"):
        registry.register("credit", model, actor="alice", metrics={"auc": float("nan")})
    with pytest.raises(InvalidInputError, match="name"):
        registry.register("bad name", model, actor="alice")
    with pytest.raises(UnsupportedFormatError):
        registry.register("credit", object(), actor="alice")
    after = (registry.list_versions("credit"), registry.history(), list(registry.blobs.list()))
    assert after == before


def test_plain_pickle_needs_trust(registry: Registry, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    clf = LogisticRegression().fit(rng.normal(size=(50, 2)), rng.integers(0, 2, 50))
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    sig = Signature.from_dict({"inputs": [{"name": "a"}, {"name": "b"}]})
    with pytest.raises(GovernanceError, match="plain pickle"):
        registry.register("pk", path, actor="alice", signature=sig)
    v = registry.register("pk", path, actor="alice", signature=sig, trusted=True)
    assert v.flavor == "pickle"
    with pytest.raises(GovernanceError, match="plain pickle"):
        registry.load("pk/1")
    assert registry.load("pk/1", trusted=True).predict(np.zeros((1, 2))).shape == (1,)


def test_digest_is_verified_on_every_load(registry: Registry, model: lgb.LGBMClassifier) -> None:
    v = registry.register("credit", model, actor="alice")
    key = f"sha256/{v.digest[:2]}/{v.digest}"
    registry.load("credit/1")
    registry.blobs.put(key, registry.blobs.get(key).replace(b"tree", b"TREE", 1))
    with pytest.raises(IntegrityError, match="credit/1 does not match its digest"):
        registry.load("credit/1")


def test_four_eyes_and_approved_champion(registry: Registry, model: lgb.LGBMClassifier) -> None:
    registry.register("credit", model, actor="alice")
    with pytest.raises(GovernanceError, match="not approved"):
        registry.set_alias("credit", "champion", 1, actor="alice")
    with pytest.raises(GovernanceError, match="request approval first"):
        registry.approve("credit", 1, actor="bob", reason="ok")
    assert registry.request_approval("credit", 1, actor="alice").approval is ApprovalState.PENDING
    with pytest.raises(PermissionDeniedError, match="four eyes"):
        registry.approve("credit", 1, actor="alice", reason="mine is fine")
    with pytest.raises(InvalidInputError, match="reason"):
        registry.approve("credit", 1, actor="bob", reason=" ")
    assert registry.get("credit/1").approval is ApprovalState.PENDING
    assert (
        registry.approve("credit", 1, actor="bob", reason="ok").approval is ApprovalState.APPROVED
    )
    v = registry.set_alias("credit", "champion", 1, actor="alice")
    assert v.aliases == ("champion",) and registry.get("credit@champion").version == 1


def test_reject_then_request_again(registry: Registry, model: lgb.LGBMClassifier) -> None:
    registry.register("credit", model, actor="alice")
    registry.request_approval("credit", 1, actor="alice")
    assert registry.reject("credit", 1, actor="bob", reason="AUC too low").approval is (
        ApprovalState.REJECTED
    )
    with pytest.raises(GovernanceError):
        registry.reject("credit", 1, actor="bob", reason="again")
    assert registry.request_approval("credit", 1, actor="alice").approval is ApprovalState.PENDING


def test_aliases_move_and_roll_back(registry: Registry, model: lgb.LGBMClassifier) -> None:
    for _ in range(3):
        approved(registry, model)
    registry.set_alias("credit", "champion", 1, actor="alice", reason="r1")
    registry.set_alias("credit", "champion", 2, actor="alice", reason="r2")
    registry.set_alias("credit", "champion", 3, actor="alice", reason="r3")
    with pytest.raises(ConflictError):
        registry.set_alias("credit", "champion", 3, actor="alice")
    with pytest.raises(InvalidInputError, match="reason"):
        registry.rollback("credit", "champion", actor="carol", reason="")
    assert registry.rollback("credit", "champion", actor="carol", reason="bad").version == 2
    assert registry.rollback("credit", "champion", actor="carol", reason="bad").version == 1
    with pytest.raises(ConflictError, match="no earlier version"):
        registry.rollback("credit", "champion", actor="carol", reason="bad")
    moves = [e for e in registry.history("credit") if e.action.startswith("alias.")]
    assert [(e.action, e.details["from"], e.details["to"]) for e in moves] == [
        ("alias.set", None, 1),
        ("alias.set", 1, 2),
        ("alias.set", 2, 3),
        ("alias.rollback", 3, 2),
        ("alias.rollback", 2, 1),
    ]
    registry.set_alias("credit", "shadow", 3, actor="alice")
    registry.delete_alias("credit", "shadow", actor="alice")
    assert registry.list_models()[0].aliases == {"champion": 1}


def test_history_is_chained_and_verifiable(registry: Registry, model: lgb.LGBMClassifier) -> None:
    approved(registry, model)
    registry.set_alias("credit", "champion", 1, actor="alice", reason="go")
    history = registry.history("credit")
    assert [e.action for e in history] == [
        "register",
        "approval.request",
        "approval.approve",
        "alias.set",
    ]
    assert [e.actor for e in history] == ["alice", "alice", "bob", "alice"]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(history))
    assert registry.verify().ok and registry.verify().checked == 4
    with pytest.raises(NotFoundError):
        registry.history("other")


def test_list_models_and_versions(registry: Registry, model: lgb.LGBMClassifier) -> None:
    registry.register("b-model", model, actor="alice")
    registry.register("a-model", model, actor="alice")
    registry.register("a-model", model, actor="alice")
    assert [(m.name, m.latest_version) for m in registry.list_models()] == [
        ("a-model", 2),
        ("b-model", 1),
    ]
    assert [v.version for v in registry.list_versions("a-model")] == [1, 2]
    assert registry.get("a-model").version == 2


def test_deleting_a_version_keeps_its_number_and_says_when(
    registry: Registry, model: lgb.LGBMClassifier
) -> None:
    registry.register("m", model, actor="ann")
    registry.register("m", model, actor="ann", tags={"again": "yes"})
    registry.set_alias("m", "staging", 2, actor="ann")
    with pytest.raises(ConflictError, match="@staging"):
        registry.delete_version("m", 2, actor="ann", reason="old")
    registry.delete_alias("m", "staging", actor="ann")
    registry.delete_version("m", 2, actor="ann", reason="old")
    gone = registry.deleted("m", 2)
    assert gone is not None and gone["actor"] == "ann" and registry.deleted("m", 1) is None
    with pytest.raises(NotFoundError):
        registry.get("m/2")
    assert registry.register("m", model, actor="ann").version == 3  # 2 is never given again
    assert registry.load("m/1").predict(np.zeros((1, 3))).shape == (1,)  # shared artifact kept
    registry.delete_version("m", 1, actor="ann", reason="old")
    registry.delete_version("m", 3, actor="ann", reason="old")
    assert list(registry.blobs.list()) == []
    assert registry.verify().ok
