"""Definitions validate on construction, with errors naming the view and the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mainspring.errors import InvalidInputError
from mainspring.features import Entity, FeatureService, FeatureView, Field, FileSource, QuerySource
from mainspring.features.definitions import view_from_dict

customer = Entity("customer", {"customer_id": "int64"})
source = FileSource("profile.parquet")


def test_round_trip_through_the_stored_form() -> None:
    view = FeatureView(
        "profile",
        customer,
        [Field("income"), Field("segment", "string")],
        QuerySource("SELECT * FROM 'p.parquet'", timestamp_column="ts"),
        ttl=timedelta(hours=6),
        owner="risk",
        description="income and segment",
        tags={"team": "risk"},
    )
    again = view_from_dict(view.to_dict())
    assert again == view
    assert again.schema_digest() == view.schema_digest()


def test_schema_digest_follows_the_schema_only() -> None:
    a = FeatureView("v", customer, [Field("x")], source)
    b = FeatureView("v", customer, [Field("x")], source, description="other", ttl=timedelta(1))
    c = FeatureView("v", customer, [Field("x", "float32")], source)
    assert a.schema_digest() == b.schema_digest() != c.schema_digest()


@pytest.mark.parametrize(
    ("build", "message", "field"),
    [
        (lambda: Entity("c", {}), "needs at least one join key", "entity.join_keys"),
        (
            lambda: Entity("c", {"id": "float64"}),
            "join key 'id' has type 'float64'",
            "entity.join_keys.id",
        ),
        (lambda: Field("x", "complex"), "field 'x' has type 'complex'", "fields.x.dtype"),
        (lambda: Field("bad name"), "not a valid column name", None),
        (lambda: Field("a__b"), "may not contain '__'", None),
        (lambda: FileSource("data.json"), "must be a .parquet or .csv", "source.path"),
        (lambda: QuerySource("  "), "non-empty", "source.query"),
        (
            lambda: FeatureView("v", customer, [Field("x"), Field("x")], source),
            "feature view 'v': field 'x' appears twice",
            "fields.x",
        ),
        (lambda: FeatureView("v", customer, [], source), "needs a non-empty list", "fields"),
        (
            lambda: FeatureView("v", customer, [Field("event_timestamp")], source),
            "is the source's timestamp column",
            "fields.event_timestamp",
        ),
        (
            lambda: FeatureView("v", customer, [Field("x")], source, ttl=timedelta(0)),
            "ttl must be a positive timedelta",
            "ttl",
        ),
        (
            lambda: FeatureView("v:1", customer, [Field("x")], source),
            "'v:1' is not valid",
            "feature_view.name",
        ),
        (lambda: FeatureService("s", []), "needs at least one feature", "features"),
    ],
)
def test_invalid_definitions(build: object, message: str, field: str | None) -> None:
    with pytest.raises(InvalidInputError, match=message) as err:
        build()  # type: ignore[operator]
    if field is not None:
        assert err.value.field == field


def test_unknown_feature_names_what_the_view_has() -> None:
    view = FeatureView("v", customer, [Field("x"), Field("y")], source)
    with pytest.raises(
        InvalidInputError, match="feature view 'v' has no feature 'z'; it has: x, y"
    ) as err:
        view.field("z")
    assert err.value.field == "v:z"


def test_breaking_changes_are_listed() -> None:
    before = FeatureView("v", customer, [Field("x"), Field("y")], source).to_dict()
    after = FeatureView(
        "v", Entity("customer", {"customer_id": "string"}), [Field("x", "int64")], source
    )
    assert after.breaking_changes(before) == [
        "join keys change from {'customer_id': 'int64'} to {'customer_id': 'string'}",
        "field 'x' changes type from float64 to int64",
        "field 'y' is removed",
    ]


@settings(deadline=None)
@given(name=st.text(max_size=12))
def test_field_names_are_identifiers_or_refused(name: str) -> None:
    if name.isidentifier() and "__" not in name:
        assert Field(name).name == name
    else:
        with pytest.raises(InvalidInputError):
            Field(name)


@settings(deadline=None)
@given(dtype=st.text(max_size=10))
def test_key_types_are_int64_or_string(dtype: str) -> None:
    if dtype in {"int64", "string"}:
        assert Entity("e", {"k": dtype}).join_keys == {"k": dtype}
    else:
        with pytest.raises(InvalidInputError, match="join key 'k'"):
            Entity("e", {"k": dtype})
