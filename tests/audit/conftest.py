"""Fixtures of the decision-log tests: one store per backend (SQLite file, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mainspring.records import Decision, FeatureValue, Reason
from mainspring.storage import open_metadata_store
from mainspring.storage.sql import SqlMetadataStore

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlMetadataStore]:
    opened = open_metadata_store(store_url)
    assert isinstance(opened, SqlMetadataStore)
    yield opened
    opened.close()


def decision(i: int = 1, **changes: Any) -> Decision:
    """A decision as the decision service logs it (id ``d-<i>``, one minute apart)."""
    fields: dict[str, Any] = {
        "id": f"d-{i}",
        "deployment": "credit",
        "at": T0 + timedelta(minutes=i),
        "decision": "approve",
        "policy": "credit@1",
        "entity": {"customer": f"c-{i}", "region": "north" if i % 2 else "south"},
        "context": {"channel": "web"},
        "features": (
            FeatureValue("income", 40_000.0 + i, T0, "profile"),
            FeatureValue("debt_ratio", 0.25, T0, "profile"),
        ),
        "feature_views": {"profile": 1},
        "model": "credit-risk",
        "version": 3,
        "digest": "ab" * 32,
        "arm": "champion",
        "raw": -1.5,
        "score": 0.18,
        "confidence": 0.64,
        "reasons": (Reason("debt_ratio", "R01", "debt is low", -0.4, 0.25),),
        "attributions": {"income": -0.2, "debt_ratio": -0.4},
        "base_value": -0.9,
        "latency_ms": 0.4,
    }
    fields.update(changes)
    return Decision(**fields)
