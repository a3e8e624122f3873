"""Definitions files: plain Python in the project, collected by type or from DEFINITIONS."""

from __future__ import annotations

from pathlib import Path

import pytest

from mainspring.errors import InvalidInputError, NotFoundError
from mainspring.features import Entity, FeatureView
from mainspring.features.definition_file import load_definitions

HEADER = "from mainspring.features import Entity, FeatureView, Field, FileSource\n"


def test_collects_every_definition_once(tmp_path: Path) -> None:
    path = tmp_path / "features.py"
    path.write_text(
        HEADER
        + "customer = Entity('customer', {'customer_id': 'int64'})\n"
        + "profile = FeatureView('profile', customer, [Field('x')], FileSource('p.parquet'))\n"
        + "alias = profile\n",
        encoding="utf-8",
    )
    found = load_definitions(path)
    assert [type(d) for d in found] == [Entity, FeatureView]


def test_definitions_list_wins(tmp_path: Path) -> None:
    path = tmp_path / "features.py"
    path.write_text(
        HEADER
        + "customer = Entity('customer', {'customer_id': 'int64'})\n"
        + "other = Entity('other', {'id': 'string'})\n"
        + "DEFINITIONS = [other]\n",
        encoding="utf-8",
    )
    assert [d.name for d in load_definitions(path)] == ["other"]


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="definitions file"):
        load_definitions(tmp_path / "missing.py")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"broken\.py failed to run: RuntimeError: boom"):
        load_definitions(broken)
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="defines no Entity, FeatureView or FeatureService"):
        load_definitions(empty)
    invalid = tmp_path / "invalid.py"
    invalid.write_text(HEADER + "Entity('c', {'id': 'float64'})\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="join key 'id' has type 'float64'"):
        load_definitions(invalid)
