"""HashChain on SQLite and a real PostgreSQL: appending, verifying, and catching tampering."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import StorageError
from mainspring.storage import MetadataStore, open_metadata_store
from mainspring.storage.chain import GENESIS, HashChain, canonical_json, entry_hash, fields_hash
from mainspring.storage.sql import SqlMetadataStore

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlMetadataStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'metadata.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    opened = open_metadata_store(url)
    assert isinstance(opened, SqlMetadataStore)
    yield opened
    opened.close()


@pytest.fixture
def chain(store: SqlMetadataStore) -> HashChain:
    return HashChain(store, "registry")


def fill(chain: HashChain, n: int = 5) -> None:
    with chain.store.write() as conn:
        for i in range(1, n + 1):
            chain.append(
                conn,
                actor="ann",
                action="register",
                subject=f"model/credit/{i}",
                reason=f"entry {i}",
                details={"version": i},
            )


def execute(store: MetadataStore, statement: str, **params: Any) -> None:
    with store.write() as conn:
        conn.execute(sa.text(statement), params)


def drop_triggers(store: MetadataStore) -> None:
    """What an attacker with database access does first: remove the append-only triggers."""
    if store.dialect == "postgresql":
        execute(store, "DROP TRIGGER chain_entries_append_only ON chain_entries")
    else:
        execute(store, "DROP TRIGGER chain_entries_no_update")
        execute(store, "DROP TRIGGER chain_entries_no_delete")


def row(store: MetadataStore, seq: int) -> Any:
    with store.read() as conn:
        return conn.execute(
            sa.text("SELECT * FROM chain_entries WHERE stream = 'registry' AND seq = :seq"),
            {"seq": seq},
        ).one()


# --- appending and reading -------------------------------------------------------------------


def test_append_links_each_entry_to_the_one_before(chain: HashChain) -> None:
    fill(chain)
    entries = chain.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in entries}) == 5
    assert all(e.at.tzinfo is not None for e in entries)
    assert entries[2].details == {"version": 3}
    assert chain.count() == 5
    result = chain.verify()
    assert result.ok
    assert result.checked == 5
    assert str(result) == "registry: 5 entries, chain intact"


def test_append_returns_what_is_stored(chain: HashChain) -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with chain.store.write() as conn:
        appended = chain.append(
            conn, actor="ann", action="create", subject="s", reason="why", details={"k": [1]}, at=at
        )
    (stored,) = chain.entries()
    assert stored == appended
    assert stored.at == at
    assert stored.to_dict()["at"] == "2026-01-02T03:04:05.000006+00:00"


def test_an_empty_chain_verifies(chain: HashChain) -> None:
    assert chain.entries() == []
    assert chain.count() == 0
    assert chain.verify().ok
    assert chain.verify().checked == 0


def test_streams_are_independent(store: SqlMetadataStore) -> None:
    first, second = HashChain(store, "registry"), HashChain(store, "decisions")
    with store.write() as conn:
        first.append(conn, actor="a", action="x", subject="s")
        second.append(conn, actor="a", action="x", subject="s")
        first.append(conn, actor="a", action="x", subject="s")
    assert [e.seq for e in first.entries()] == [1, 2]
    assert [e.seq for e in second.entries()] == [1]
    assert second.entries()[0].prev_hash == GENESIS
    assert first.verify().ok and second.verify().ok


def test_entries_filters(chain: HashChain) -> None:
    subjects = ["model/a_b/1", "model/axb/1", "model/a_b/2", "model/a%/1", "other"]
    with chain.store.write() as conn:
        for subject in subjects:
            chain.append(conn, actor="ann", action="x", subject=subject)
    assert [e.seq for e in chain.entries(subject="model/a_b/1")] == [1]
    # '_' and '%' in a prefix are literal characters, not LIKE wildcards
    assert [e.subject for e in chain.entries(subject_prefix="model/a_b/")] == [
        "model/a_b/1",
        "model/a_b/2",
    ]
    assert [e.subject for e in chain.entries(subject_prefix="model/a%")] == ["model/a%/1"]
    assert [e.seq for e in chain.entries(after_seq=3)] == [4, 5]
    assert [e.seq for e in chain.entries(after_seq=1, limit=2)] == [2, 3]


def test_non_utc_times_are_kept_and_verify(chain: HashChain) -> None:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with chain.store.write() as conn:
        chain.append(conn, actor="ann", action="x", subject="s", at=at)
    (entry,) = chain.entries()
    assert entry.at == at
    assert chain.verify().ok


# --- the database refuses changes ----------------------------------------------------------


def test_update_is_refused(chain: HashChain) -> None:
    fill(chain, 3)
    with pytest.raises((sa.exc.SQLAlchemyError, StorageError), match="append-only"):
        execute(chain.store, "UPDATE chain_entries SET reason = 'rewritten' WHERE seq = 2")
    assert row(chain.store, 2).reason == "entry 2"
    assert chain.verify().ok


def test_delete_is_refused(chain: HashChain) -> None:
    fill(chain, 3)
    with pytest.raises((sa.exc.SQLAlchemyError, StorageError), match="append-only"):
        execute(chain.store, "DELETE FROM chain_entries WHERE seq = 2")
    assert chain.count() == 3
    assert chain.verify().ok


# --- tampering, once the triggers are gone -------------------------------------------------


def test_an_altered_entry_is_named(chain: HashChain) -> None:
    fill(chain)
    drop_triggers(chain.store)
    execute(chain.store, "UPDATE chain_entries SET reason = 'nothing to see' WHERE seq = 3")
    result = chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.checked == 2
    assert result.subject == "model/credit/3"
    assert "altered" in result.problem
    assert str(result).startswith("registry: entry 3 (model/credit/3) was altered")


def test_altered_details_are_caught(chain: HashChain) -> None:
    fill(chain)
    drop_triggers(chain.store)
    execute(chain.store, "UPDATE chain_entries SET details = :d WHERE seq = 4", d='{"version":99}')
    result = chain.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_a_deleted_entry_is_named(chain: HashChain) -> None:
    fill(chain)
    drop_triggers(chain.store)
    execute(chain.store, "DELETE FROM chain_entries WHERE seq = 2")
    result = chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 2
    assert "missing" in result.problem
    assert "3" in result.problem  # the next entry present
    assert result.subject is None


def test_a_deleted_last_entry_is_not_detectable_by_the_chain_alone(chain: HashChain) -> None:
    """Truncating the tail leaves a valid, shorter chain: the count is the only witness."""
    fill(chain)
    drop_triggers(chain.store)
    execute(chain.store, "DELETE FROM chain_entries WHERE seq = 5")
    assert chain.verify().ok
    assert chain.verify().checked == 4


def test_a_rehashed_entry_breaks_the_link_to_the_next(chain: HashChain) -> None:
    """An attacker who recomputes the altered entry's hash is caught at the next entry."""
    fill(chain)
    drop_triggers(chain.store)
    old = row(chain.store, 3)
    new_hash = entry_hash(
        old.stream,
        old.seq,
        old.at,
        old.actor,
        old.action,
        old.subject,
        "nothing to see",
        old.details,
        old.prev_hash,
    )
    execute(
        chain.store,
        "UPDATE chain_entries SET reason = 'nothing to see', hash = :h WHERE seq = 3",
        h=new_hash,
    )
    result = chain.verify()
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "does not link" in result.problem
    assert result.subject == "model/credit/4"

    # relinking entry 4 as well changes what entry 4's own hash covers
    execute(chain.store, "UPDATE chain_entries SET prev_hash = :h WHERE seq = 4", h=new_hash)
    result = chain.verify()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "altered" in result.problem


def test_reordered_entries_are_caught(chain: HashChain) -> None:
    fill(chain)
    drop_triggers(chain.store)
    execute(chain.store, "UPDATE chain_entries SET seq = 100 WHERE seq = 2")
    execute(chain.store, "UPDATE chain_entries SET seq = 2 WHERE seq = 3")
    execute(chain.store, "UPDATE chain_entries SET seq = 3 WHERE seq = 100")
    result = chain.verify()
    assert (result.ok, result.first_bad_seq) == (False, 2)


# --- any JSON details round-trip -------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
details_dicts = st.dictionaries(st.text(max_size=12), json_values, max_size=5)


def test_any_json_details_round_trip(store: SqlMetadataStore) -> None:
    @settings(max_examples=30, deadline=None, database=None)
    @given(details=details_dicts)
    def round_trip(details: dict[str, Any]) -> None:
        chain = HashChain(store, f"s-{uuid.uuid4().hex[:16]}")
        with store.write() as conn:
            appended = chain.append(conn, actor="a", action="x", subject="s", details=details)
            chain.append(conn, actor="a", action="y", subject="s", details={"after": details})
        first, second = chain.entries()
        for got, want in ((appended.details, details), (first.details, details)):
            assert got == want
            assert canonical_json(got) == canonical_json(want)  # same types, not just equal
        assert second.details == {"after": details}
        assert json.loads(canonical_json(details)) == details
        assert chain.verify().ok

    round_trip()


@given(
    st.lists(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text() | st.floats(),
        max_size=8,
    )
)
@settings(max_examples=300, deadline=None)
def test_fields_hash_is_the_hash_of_the_canonical_json(fields: list[Any]) -> None:
    """orjson's fast path writes the same bytes as canonical_json, or gives way to it."""
    import hashlib

    try:
        expected = hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()
    except (ValueError, UnicodeEncodeError) as exc:  # NaN, infinity, lone surrogates
        with pytest.raises(type(exc)):
            fields_hash(*fields)
        return
    assert fields_hash(*fields) == expected
