"""Options of ``mainspring worker`` that parse user input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mainspring.cli.worker import parse_duration
from mainspring.errors import InvalidInputError


@given(number=st.integers(min_value=1, max_value=10**6), unit=st.sampled_from("smhd"))
def test_durations_parse_to_their_length(number: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{number}{unit}") == timedelta(seconds=number * seconds)


@given(text=st.text(max_size=8))
def test_anything_else_is_refused_naming_the_option(text: str) -> None:
    try:
        parsed = parse_duration(text)
    except InvalidInputError as exc:
        assert exc.field == "window" and "--window" in str(exc)
    else:
        assert parsed > timedelta(0)


@pytest.mark.parametrize("text", ["", "7", "d", "0d", "-1h", "1.5h", "7w", "¹d"])
def test_examples_of_refused_windows(text: str) -> None:
    with pytest.raises(InvalidInputError, match="write a positive number with s, m, h or d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["¹d", "٣d"])
def test_only_ascii_digits_count(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_duration(text)
