"""Asynchronous inference: request events → one predict call per batch → prediction events that
carry the request id; invalid requests go to the dead-letter topic with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mainspring.errors import NotFoundError
from mainspring.events import Worker
from mainspring.records import IDEMPOTENCY_KEY, TRACE_ID, Event
from mainspring.serving import DataPlane
from mainspring.serving.asynchronous import AsyncInference
from mainspring.storage.memory import memory_event_log

FEATURES = ["income", "age", "debt_ratio"]  # the conftest's model


def request(i: int, row: list[float] | dict[str, object], **headers: str) -> Event:
    inputs = dict(zip(FEATURES, row, strict=True)) if isinstance(row, list) else row
    return Event("requests", {"id": f"r-{i}", "inputs": inputs}, key=f"c-{i % 3}", headers=headers)


def test_requests_become_predictions_equal_to_the_models_with_their_request_ids(
    plane: DataPlane,
) -> None:
    log = memory_event_log()
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 3)).round(3).tolist()
    log.produce([request(i, row, **{TRACE_ID: f"t-{i}"}) for i, row in enumerate(rows)])
    processor = AsyncInference(plane, log, "credit", requests="requests", predictions="scores")
    stats = Worker(log, processor, batch_size=20).run(until_idle=True)
    assert stats.events == 50 and stats.dead_lettered == 0
    scores = log.read("scores", 0, 0, limit=100)
    assert [e.payload["request_id"] for e in scores] == [f"r-{i}" for i in range(50)]
    assert all(e.idempotency_key == e.payload["request_id"] for e in scores)
    assert [e.trace_id for e in scores] == [f"t-{i}" for i in range(50)]
    assert {(e.payload["model"], e.payload["version"]) for e in scores} == {("credit", "1")}
    runtime, _ = plane.runtime("credit")
    want = runtime.predict_matrix(np.array(rows)).tolist()
    got = [[e.payload["outputs"][n] for n in runtime.output_names] for e in scores]
    assert got == want


def test_invalid_requests_go_to_the_dead_letter_topic_with_the_reason(plane: DataPlane) -> None:
    log = memory_event_log()
    good = [0.1, 0.2, 0.3]
    log.produce(
        [
            request(0, good),
            request(1, {"income": 1.0, "age": 2.0}),
            request(2, {"income": "high", "age": 2.0, "debt_ratio": 0.1}),
            Event("requests", {"id": "r-3"}, key="c-0"),
            Event("requests", {"inputs": [1.0, 2.0, None]}, headers={IDEMPOTENCY_KEY: "k"}),
            request(5, good),
        ]
    )
    processor = AsyncInference(plane, log, "credit", requests="requests", predictions="scores")
    stats = Worker(log, processor).run(until_idle=True)
    assert stats.events == 6
    scores = log.read("scores", 0, 0)
    # null is a missing value for LightGBM: request "k" is scored, its id is the idempotency key
    assert [e.payload["request_id"] for e in scores] == ["r-0", "k", "r-5"]
    letters = log.read("requests.dlq", 0, 0)
    reasons = {e.payload.get("id"): e.headers["dlq-reason"] for e in letters}
    assert reasons == {
        "r-1": "request lacks input 'debt_ratio'; model credit needs: income, age, debt_ratio",
        "r-2": "input 'income' is 'high'; model credit takes numbers (null for missing)",
        "r-3": "request needs 'inputs': an object of income, age, debt_ratio (or a list of 3 "
        "numbers)",
    }


def test_a_version_alias_picks_the_runtime_and_an_unknown_model_is_refused_at_start(
    plane: DataPlane,
) -> None:
    log = memory_event_log()
    log.produce([request(0, [0.1, 0.2, 0.3])])
    processor = AsyncInference(
        plane, log, "credit", version="challenger", requests="requests", predictions="scores"
    )
    Worker(log, processor).run(until_idle=True)
    (score,) = log.read("scores", 0, 0)
    assert (score.payload["version"], score.payload["arm"]) == ("2", "challenger")
    with pytest.raises(NotFoundError, match="fraud"):
        AsyncInference(plane, log, "fraud", requests="requests", predictions="scores")


def test_a_redelivered_batch_produces_predictions_with_the_same_idempotency_keys(
    plane: DataPlane,
) -> None:
    log = memory_event_log()
    log.produce([request(i, [0.1 * i, 0.2, 0.3]) for i in range(10)])
    processor = AsyncInference(plane, log, "credit", requests="requests", predictions="scores")
    Worker(log, processor).run(until_idle=True)
    Worker(log, processor, group="again").run(until_idle=True)  # at-least-once: a replay
    scores = log.read("scores", 0, 0)
    assert len(scores) == 20
    keys = [e.idempotency_key for e in scores]
    assert sorted(set(keys)) == sorted(keys[:10]) and keys[10:] == keys[:10]


def test_a_promotion_reaches_the_next_batches(plane: DataPlane) -> None:
    log = memory_event_log()
    processor = AsyncInference(
        plane, log, "credit", requests="requests", predictions="scores", sync_seconds=0.0
    )
    log.produce([request(0, [0.1, 0.2, 0.3])])
    Worker(log, processor).run(until_idle=True)
    plane.registry.request_approval("credit", 2, actor="alice")
    plane.registry.approve("credit", 2, actor="bob", reason="better")
    plane.registry.set_alias("credit", "champion", 2, actor="alice")
    log.produce([request(1, [0.1, 0.2, 0.3])])
    Worker(log, processor).run(until_idle=True)
    assert [e.payload["version"] for e in log.read("scores", 0, 0)] == ["1", "2"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
payloads = st.dictionaries(
    st.sampled_from(["id", "inputs", "other"]),
    json_values | st.dictionaries(st.sampled_from([*FEATURES, "x"]), json_values, max_size=4),
    max_size=3,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(payloads, min_size=1, max_size=6))
def test_any_request_payload_is_scored_or_dead_lettered_never_lost(
    plane: DataPlane, batch: list[dict[str, object]]
) -> None:
    log = memory_event_log()
    log.produce([Event("requests", p, key=f"k{i}") for i, p in enumerate(batch)])
    processor = AsyncInference(plane, log, "credit", requests="requests", predictions="scores")
    stats = Worker(log, processor, poll_timeout_s=0.01).run(until_idle=True)
    scored = {e.key for e in log.read("scores", 0, 0, limit=100)}
    refused = {e.key for e in log.read("requests.dlq", 0, 0, limit=100)}
    assert stats.dead_lettered == 0  # the processor sorts them itself
    assert len(scored) + len(refused) == len(batch) and not scored & refused
