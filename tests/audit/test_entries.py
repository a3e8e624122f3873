"""Log rows: linking a row into the chain gives it the hash verification recomputes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.audit.entries import Kind, Row, row_hash


@given(
    st.text(min_size=1, max_size=20),
    st.sampled_from(list(Kind)),
    st.none() | st.text(max_size=10),
    st.none() | st.integers(0, 10**6),
    st.booleans(),
    st.text(max_size=200),
    st.integers(1, 2**62),
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)
@settings(max_examples=100, deadline=None)
def test_a_linked_row_carries_the_hash_verification_recomputes(
    id_: str,
    kind: Kind,
    model: str | None,
    version: int | None,
    review: bool,
    body: str,
    seq: int,
    prev: str,
) -> None:
    row = Row(id_, kind, id_, "credit", "2026-01-01T00:00:00.000000+00:00", model, version,
              review, body)  # fmt: skip
    linked = row.linked(seq, prev)
    assert (linked.seq, linked.prev_hash) == (seq, prev)
    assert linked.hash == row_hash(linked)
    assert linked.values()[1:10] == row.values()[1:10]
