"""Personal fields are dropped or replaced by a keyed hash before anything reaches the database."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from tests.audit.conftest import decision

from mainspring.audit import DecisionLog, PersonalData
from mainspring.errors import InvalidInputError
from mainspring.records import FeatureValue, Reason
from mainspring.storage.memory import memory_event_log
from mainspring.storage.sql import SqlMetadataStore

KEY = b"0123456789abcdef0123456789abcdef"
SSN, EMAIL, INCOME = "123-45-6789", "ann@example.com", 52_345.25


def personal_decision() -> object:
    return decision(
        1,
        entity={"customer": "c-1", "ssn": SSN},
        context={"applicant": {"email": EMAIL, "age": 41}, "channel": "web"},
        features=(FeatureValue("income", INCOME), FeatureValue("debt_ratio", 0.2)),
        reasons=(Reason("income", "R07", "income is high", -0.3, INCOME),),
    )


def test_fields_are_dropped_or_hashed_in_the_stored_record(store: SqlMetadataStore) -> None:
    personal = PersonalData({"ssn": "drop", "email": "hash", "income": "hash"}, key=KEY)
    events = memory_event_log()
    with DecisionLog(store, personal=personal, events=events) as log:
        logged = log.append(personal_decision())  # type: ignore[arg-type]
        log.publish_pending()
        stored = log.get("d-1").decision
        assert stored == logged.decision
        assert "ssn" not in stored.entity
        assert stored.context["applicant"]["email"] == log.pseudonym(EMAIL)
        assert stored.context["applicant"]["age"] == 41
        income = {f.name: f.value for f in stored.features}["income"]
        assert income == log.pseudonym(INCOME) != log.pseudonym(str(INCOME))
        assert stored.reasons[0].value == log.pseudonym(INCOME)
        # a plain hash of the value is nowhere: the pseudonym is keyed
        assert hashlib.sha256(EMAIL.encode()).hexdigest() not in log.pseudonym(EMAIL)
    with store.read() as conn:
        bodies = " ".join(conn.execute(sa.text("SELECT body FROM decision_log")).scalars())
    published = str([e.payload for e in events.read("decisions", 0, 0)])
    for raw in (SSN, EMAIL, str(INCOME)):
        assert raw not in bodies
        assert raw not in published


def test_another_key_gives_other_pseudonyms() -> None:
    a = PersonalData({"email": "hash"}, key=KEY)
    b = PersonalData({"email": "hash"}, key=KEY[::-1])
    assert a.pseudonym(EMAIL) == a.pseudonym(EMAIL) != b.pseudonym(EMAIL)


def test_hashing_needs_a_key_and_treatments_are_checked() -> None:
    with pytest.raises(InvalidInputError) as caught:
        PersonalData({"email": "hash"})
    assert caught.value.field == "key"
    with pytest.raises(InvalidInputError) as caught:
        PersonalData({"email": "hash"}, key=b"short")
    assert caught.value.field == "key"
    with pytest.raises(InvalidInputError) as caught:
        PersonalData({"email": "encrypt"})
    assert caught.value.field == "personal.email"
    assert PersonalData({"ssn": "drop"}).apply(personal_decision()).entity == {  # type: ignore[arg-type]
        "customer": "c-1"
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4), json_values)
def test_no_personal_value_survives_anywhere_in_entity_or_context(
    entity: dict[str, object], secret: object
) -> None:
    personal = PersonalData({"ssn": "drop"})
    nested = {**entity, "inner": {"ssn": secret, "list": [{"ssn": secret}]}}
    treated = personal.apply(decision(1, entity=nested, context={"ssn": secret}))

    def keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value) | set().union(*(keys(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(keys(v) for v in value)) if value else set()
        return set()

    assert "ssn" not in keys(dict(treated.entity)) | keys(dict(treated.context))
