"""Query parameters: parsed, or refused naming the field; never another exception."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.ui.filters import DecisionFilter, Page


def test_times_without_an_offset_are_utc_and_offsets_are_kept() -> None:
    f = DecisionFilter.parse({"since": "2026-03-01T09:30", "until": "2026-03-01T12:00+02:00"})
    assert f.since == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert f.until == datetime(2026, 3, 1, 10, tzinfo=timezone(timedelta(0)))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
        ({"review_required": "maybe"}, "review_required"),
        ({"model": "credit/x"}, "model"),
        ({"model": "/3"}, "model"),
        ({"version": "3"}, "model"),
        ({"model": "credit/3", "version": "4"}, "version"),
        ({"version": "0", "model": "credit"}, "version"),
        ({"limit": "501"}, "limit"),
        ({"before": "-1"}, "before"),
        ({"deployment": "x" * 200}, "deployment"),
    ],
)
def test_bad_values_name_their_field(params: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        DecisionFilter.parse(params)
    assert caught.value.field == field


def test_blank_boxes_mean_no_filter_and_the_query_round_trips() -> None:
    blank = DecisionFilter.parse(dict.fromkeys(("deployment", "since", "model", "version"), ""))
    assert blank == DecisionFilter() and not blank
    f = DecisionFilter.parse({"deployment": "credit", "model": "m/2", "review_required": "no",
                              "since": "2026-03-01T00:00:00+00:00", "limit": "10"})  # fmt: skip
    again = DecisionFilter.parse(dict(parse_qsl(f.query(before=7))))
    assert again == replace(f, before=7)
    assert (f.model, f.version, f.limit) == ("m", 2, 10)


def test_pages() -> None:
    page = Page.of(list(range(60)), {"page": "3"}, size=25)
    assert (list(page.items), page.pages, page.previous, page.next) == (
        list(range(50, 60)), 3, 2, None
    )  # fmt: skip
    assert Page.of([], {}).pages == 1
    with pytest.raises(InvalidInputError) as caught:
        Page.of([1], {"history_page": "2"}, param="history_page")
    assert caught.value.field == "history_page"


KEYS = st.sampled_from(
    ["deployment", "decision", "review_required", "since", "until", "model", "version",
     "before", "limit", "other"]
)  # fmt: skip


@given(st.dictionaries(KEYS, st.text(max_size=60)))
def test_any_text_parses_or_names_a_field(params: dict[str, str]) -> None:
    try:
        f = DecisionFilter.parse(params)
    except InvalidInputError as exc:
        assert exc.field in {"deployment", "decision", "review_required", "since", "until",
                             "model", "version", "before", "limit"}  # fmt: skip
    else:
        assert 1 <= f.limit <= 500
        assert f.since is None or f.since.tzinfo is not None
