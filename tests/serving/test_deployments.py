"""Deployments through the data plane: weights, sticky experiments, shadows, run-time changes."""

from __future__ import annotations

import logging
import threading
from collections import Counter

import pytest

from mainspring.errors import ConflictError, InvalidInputError, NotFoundError
from mainspring.registry import Registry
from mainspring.serving import DataPlane, InferenceRequest, tensor
from mainspring.serving.deployments import Arm, Deployment, DeploymentStore

FEATURES = ["income", "age", "debt_ratio"]


def request(key: str | None = None) -> InferenceRequest:
    columns = [tensor(n, "FP64", [1], [0.3]) for n in FEATURES]
    return InferenceRequest(columns, parameters={"routing_key": key} if key else {})


@pytest.fixture
def store(registry: Registry) -> DeploymentStore:
    return DeploymentStore(registry.store)


@pytest.fixture
def served(registry: Registry, store: DeploymentStore) -> DataPlane:
    store.put(
        Deployment(
            "credit-api",
            (
                Arm("main", "credit", "champion"),
                Arm("next", "credit", "challenger", "canary", 30.0),
                Arm("mirror", "credit", "2", "shadow", 100.0),
            ),
        ),
        actor="alice",
        reason="start a canary",
    )
    plane = DataPlane(registry, deployments=store)
    plane.start()
    return plane


def test_weights_split_the_traffic(served: DataPlane) -> None:
    arms = Counter(
        served.infer("credit-api", None, request(f"user-{i}")).parameters["arm"] for i in range(600)
    )
    assert set(arms) == {"main", "next"}
    assert 100 < arms["next"] < 260  # 30% of 600 = 180, hashed keys


def test_assignment_is_sticky_by_routing_key(served: DataPlane) -> None:
    first = [
        served.infer("credit-api", None, request(f"k{i}")).parameters["arm"] for i in range(40)
    ]
    again = [
        served.infer("credit-api", None, request(f"k{i}")).parameters["arm"] for i in range(40)
    ]
    assert first == again


def test_a_version_naming_an_arm_forces_it(served: DataPlane) -> None:
    answer = served.infer("credit-api", "next", request())
    assert answer.parameters["arm"] == "next" and answer.model_version == "2"
    assert served.model_metadata("credit-api").versions == ("main", "next", "mirror")
    with pytest.raises(NotFoundError, match="arm 'credit-api/nope'"):
        served.infer("credit-api", "nope", request())


def test_shadow_answers_are_logged_never_returned(
    served: DataPlane, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mainspring.serving.shadow"):
        answer = served.infer("credit-api", "main", request())  # forced arm: no shadow copy
        answer = served.infer("credit-api", None, request("key-1"))
        served.close()  # waits for the shadow predictions
    assert answer.parameters["arm"] in {"main", "next"}
    records = [r.getMessage() for r in caplog.records if r.name == "mainspring.serving.shadow"]
    assert len(records) == 1 and '"arm": "mirror"' in records[0] and '"version": "2"' in records[0]


def test_weights_change_at_run_time_and_are_in_the_history(
    served: DataPlane, store: DeploymentStore, registry: Registry
) -> None:
    changed = store.set_weights("credit-api", {"next": 100.0}, actor="bob", reason="full canary")
    assert changed.revision == 2
    assert served.sync()
    assert {served.infer("credit-api", None, request()).parameters["arm"] for _ in range(20)} == {
        "next"
    }
    actions = [(e.action, e.subject) for e in registry.history()][-2:]
    assert actions == [
        ("deployment.set", "deployment/credit-api"),
        ("deployment.weights", "deployment/credit-api"),
    ]
    assert registry.verify().ok
    assert not served.sync()  # nothing new


def test_bad_deployments_are_refused(store: DeploymentStore) -> None:
    with pytest.raises(InvalidInputError, match="exactly one champion"):
        Deployment("d", (Arm("a", "credit", "1", "canary", 10.0),))
    with pytest.raises(InvalidInputError, match="take 120% of the traffic"):
        Deployment(
            "d",
            (
                Arm("a", "credit", "1"),
                Arm("b", "credit", "2", "canary", 60.0),
                Arm("c", "credit", "2", "experiment", 60.0),
            ),
        )
    with pytest.raises(InvalidInputError, match="role 'boss'"):
        Deployment("d", (Arm("a", "credit", "1", "boss"),))
    with pytest.raises(InvalidInputError, match="unknown arm 'x'"):
        Deployment("d", (Arm("a", "credit", "1"),)).with_weights({"x": 1})
    with pytest.raises(NotFoundError):
        store.set_weights("nope", {"a": 1}, actor="a")
    store.put(Deployment("d", (Arm("a", "credit", "1"),)), actor="a")
    with pytest.raises(ConflictError, match="revision 1, not 5"):
        store.put(Deployment("d", (Arm("a", "credit", "1"),)), actor="a", expected_revision=5)


def test_promotions_and_weight_changes_under_load_fail_no_request(
    served: DataPlane, registry: Registry, store: DeploymentStore
) -> None:
    registry.request_approval("credit", 2, actor="alice")
    registry.approve("credit", 2, actor="bob", reason="ok")
    errors: list[BaseException] = []
    answered = Counter[str]()
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            for name in ("credit-api", "credit"):
                try:
                    answer = served.infer(name, None, request(f"{worker}-{i}"))
                    answered[answer.model_version] += 1
                except BaseException as exc:  # counted: that is the test
                    errors.append(exc)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(8):
            registry.set_alias("credit", "champion", 2 - i % 2, actor="alice")
            store.set_weights("credit-api", {"next": float(10 * i)}, actor="bob")
            assert served.sync()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert set(answered) <= {"1", "2"} and sum(answered.values()) > 0
