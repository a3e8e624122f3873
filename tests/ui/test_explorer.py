"""The explorer's queries on each metadata backend: pages by chain position, counts per period,
the review queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mainspring.errors import InvalidInputError
from mainspring.project import Project
from mainspring.records import Decision
from mainspring.ui import explorer
from mainspring.ui.filters import DecisionFilter

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
VALUES = ("approve", "refer", "decline")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    settings = "audit:\n  durability: process\n"
    if request.param == "postgresql":
        settings += f"metadata: {request.getfixturevalue('fresh_postgres_url')}\n"
    (tmp_path / "mainspring.yaml").write_text(settings, encoding="utf-8")
    with Project.open(tmp_path) as project:
        for i in range(30):  # one every 20 minutes, back from NOW
            project.decisions.append(Decision(
                id=f"d-{i:02}", deployment="credit" if i % 4 else "fraud",
                at=NOW - timedelta(minutes=20 * (29 - i)), decision=VALUES[i % 3],
                policy="credit@1", model="m", version=1 + i % 2, score=i / 30,
                review_required=i % 3 == 1,
            ))  # fmt: skip
        yield project


def test_pages_by_chain_position_with_every_filter(project: Project) -> None:
    everything = [f"d-{i:02}" for i in reversed(range(30))]
    seen, before = [], None
    while True:
        page = explorer.find(project, DecisionFilter(limit=7, before=before))
        seen += [d.id for d in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == everything
    refer = explorer.find(project, DecisionFilter(decision="refer", limit=4))
    assert [d.id for d in refer.items] == ["d-28", "d-25", "d-22", "d-19"]
    rest = explorer.find(project, DecisionFilter(decision="refer", before=refer.next_before))
    assert [d.id for d in rest.items] == [f"d-{i:02}" for i in (16, 13, 10, 7, 4, 1)]
    assert rest.next_before is None
    picked = explorer.find(project, DecisionFilter(
        deployment="credit", model="m", version=2, review_required=True,
        since=NOW - timedelta(hours=5), until=NOW))  # fmt: skip
    # credit (i % 4), version 2 (odd i), flagged (i % 3 == 1), in the 5 hours before NOW
    assert [d.id for d in picked.items] == ["d-25", "d-19"]


def test_counts_per_hour_and_per_day(project: Project) -> None:
    hours = explorer.per_period(project, NOW, periods=24, step=timedelta(hours=1))
    assert [at for at, _ in hours][-1] == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert sum(sum(c.values()) for _, c in hours) == 30
    assert dict(hours[-1][1]) == {"refer": 1, "decline": 1}  # 10:10 and 10:30: d-28, d-29
    assert sum(c["approve"] for _, c in hours) == 10
    days = explorer.per_period(project, NOW, periods=3, step=timedelta(days=1), deployment="fraud")
    assert [at.day for at, _ in days] == [28, 1, 2]  # February 2026 has 28 days
    assert sum(sum(c.values()) for _, c in days) == 8
    assert explorer.count_since(project, NOW - timedelta(hours=1)) == 4  # 9:30 to 10:30
    with pytest.raises(InvalidInputError):
        explorer.per_period(project, NOW, periods=2, step=timedelta(minutes=5))


def test_review_queue_pages(project: Project) -> None:
    flagged = [f"d-{i:02}" for i in range(30) if i % 3 == 1]
    assert explorer.open_reviews(project) == len(flagged)
    first, after = explorer.pending(project, None, None, 6)
    second, done = explorer.pending(project, None, after, 6)
    assert [d.id for d in first + second] == flagged and done is None
    fraud, _ = explorer.pending(project, "fraud", None, 10)
    assert [d.id for d in fraud] == [f for f in flagged if int(f[2:]) % 4 == 0]
