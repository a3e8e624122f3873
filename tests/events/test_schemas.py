"""Topic schemas and dead letters: an invalid event goes to ``<topic>.dlq`` with the reason, a
valid one to its topic; none is dropped."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.events import Publisher, SchemaRegistry
from mainspring.events.deadletter import ORIGIN, REASON, STAGE
from mainspring.records import SCHEMA_VERSION, Event
from mainspring.storage.memory import memory_event_log

ORDER = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "USD"]},
        "items": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["amount", "currency"],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.dictionaries(st.sampled_from(["amount", "currency", "items", "x"]), json_values, max_size=4),
    st.fixed_dictionaries(
        {
            "amount": st.floats(min_value=-5, max_value=1e6, allow_nan=False),
            "currency": st.sampled_from(["EUR", "USD", "GBP"]),
        },
        optional={"items": st.lists(st.text(max_size=3) | st.integers(), max_size=3)},
    ),
)


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(payloads, min_size=1, max_size=8))
def test_every_event_lands_on_its_topic_or_its_dead_letter_topic(
    batch: list[dict[str, Any]],
) -> None:
    log = memory_event_log()
    schemas = SchemaRegistry(log)
    schemas.register("orders", ORDER)
    result = Publisher(log, schemas).publish([Event("orders", p, key="k") for p in batch])
    validator = jsonschema.Draft202012Validator(ORDER)
    valid = [p for p in batch if validator.is_valid(p)]
    assert [e.payload for e in result.accepted] == valid
    assert [e.payload for e in result.dead_lettered] == [
        p for p in batch if not validator.is_valid(p)
    ]
    for event in result.accepted:
        assert event.topic == "orders" and event.headers[SCHEMA_VERSION] == "1"
    for event in result.dead_lettered:
        assert event.topic == "orders.dlq"
        assert event.headers[ORIGIN] == "orders" and event.headers[STAGE] == "publish"
        assert event.headers[REASON].startswith("payload does not match schema 1 of 'orders'")
    # nothing dropped: the log holds every event, on one topic or the other
    stored = log.read("orders", 0, 0, 100) if result.accepted else []
    dead = log.read("orders.dlq", 0, 0, 100) if result.dead_lettered else []
    assert len(stored) + len(dead) == len(batch)
    log.close()


def test_a_new_version_replaces_the_old_and_other_processes_see_it(tmp_path: Any) -> None:
    from mainspring.storage.eventlog import SqliteEventLog

    path = tmp_path / "e.db"
    mine, theirs = SqliteEventLog(path), SqliteEventLog(path)
    a, b = SchemaRegistry(mine), SchemaRegistry(theirs)
    assert a.register("t", {"type": "object"}).version == 1
    assert a.register("t", {"type": "object", "required": ["x"]}).version == 2
    known = b.get("t")
    assert known is not None and known.version == 2
    assert b.check(Event("t", {})) is not None
    assert b.check(Event("untyped", {"anything": 1})) is None
    mine.close()
    theirs.close()


def test_an_invalid_schema_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not a valid JSON schema"):
        SchemaRegistry(memory_event_log()).register("t", {"type": "no-such-type"})
