"""The feature-store part of the demo: define features of the credit data, build a
point-in-time-correct training set, materialize, and serve online features.

``run(project)`` works on any open project; the demo command wires it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.table import Table

from mainspring.demo.data import credit_data
from mainspring.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnlineFeatures,
    TrainingSet,
)
from mainspring.project import Project

console = Console(highlight=False)

APPLICANTS = 500
SNAPSHOTS = 6
END = datetime(2026, 11, 1, tzinfo=UTC)
DATA_DIR = "demo-features"

applicant = Entity("applicant", {"applicant_id": "int64"}, "a credit applicant")


def affordability(columns: dict[str, npt.NDArray[Any]]) -> dict[str, Any]:
    """Log income and the share of income left after debt service (runs offline and online)."""
    income = columns["income"]
    return {
        "log_income": np.log(income),
        "free_income": income * (1.0 - columns["debt_ratio"]),
    }


profile = FeatureView(
    "applicant_profile",
    applicant,
    [
        Field("income"),
        Field("age"),
        Field("debt_ratio"),
        Field("credit_lines"),
        Field("late_payments"),
        Field("utilization"),
    ],
    FileSource(f"{DATA_DIR}/applicants.parquet"),
    ttl=timedelta(days=90),
    owner="risk",
    description="monthly snapshots of the credit bureau profile",
)
derived = FeatureView(
    "applicant_affordability",
    applicant,
    [Field("log_income"), Field("free_income")],
    FileSource(f"{DATA_DIR}/applicants.parquet"),
    ttl=timedelta(days=90),
    owner="risk",
    transformation=affordability,
)
credit_model = FeatureService("credit_model", [profile, derived], "inputs of the credit model")
DEFINITIONS: list[Entity | FeatureView | FeatureService] = [
    applicant,
    profile,
    derived,
    credit_model,
]


@dataclass(frozen=True)
class FeaturesDemo:
    """What the feature walk-through produced, for the next steps of the demo."""

    training_set: TrainingSet
    labels: npt.NDArray[np.int64]
    online: OnlineFeatures


def write_source(directory: Path) -> Path:
    """Monthly snapshots of the demo's applicants, as a Parquet file in the project."""
    import pandas as pd

    frames = []
    for month in range(SNAPSHOTS):
        x, _ = credit_data(APPLICANTS, seed=100 + month, drift=month * 0.05)
        frame = pd.DataFrame(
            x,
            columns=[
                "income",
                "age",
                "debt_ratio",
                "credit_lines",
                "late_payments",
                "utilization",
            ],
        )
        frame.insert(0, "applicant_id", np.arange(APPLICANTS, dtype=np.int64))
        at = END - timedelta(days=30 * (SNAPSHOTS - month))
        frame.insert(1, "event_timestamp", pd.Timestamp(at))
        frames.append(frame)
    path = directory / DATA_DIR / "applicants.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(path)
    return path


def run(project: Project, *, actor: str = "alice") -> FeaturesDemo:
    """Define, apply, build a training set, materialize and serve: the feature-store story."""
    import pandas as pd

    store = project.features
    console.rule("[bold]Features: one definition for training and serving")
    write_source(project.settings.project_dir)
    applied = store.apply(DEFINITIONS, actor=actor)
    for r in applied:
        console.print(f"applied {r.kind} [bold]{r.name}[/] v{r.version}")

    rng = np.random.default_rng(3)
    entity_rows = pd.DataFrame(
        {
            "applicant_id": rng.integers(0, APPLICANTS, 2000),
            "event_timestamp": [
                END - timedelta(days=int(d), hours=int(h))
                for d, h in zip(rng.integers(0, 200, 2000), rng.integers(0, 24, 2000), strict=True)
            ],
        }
    )
    training = store.get_historical_features(entity_rows, credit_model)
    frame = training.data
    _, labels = credit_data(len(frame), seed=11)
    console.print(
        f"training set: {training.training_data.rows} rows, "
        f"{frame['applicant_profile__found'].sum()} with features "
        f"(the rest predate the first snapshot or are past the 90-day TTL), "
        f"fingerprint {training.training_data.fingerprint[:16]}…"
    )

    runs = store.materialize(end=END)
    for run_ in runs:
        console.print(f"materialized {run_.view}: {run_.rows} applicants")
    online = store.get_online_features(
        credit_model, [{"applicant_id": i} for i in (1, 2, 3, 99_999)], now=END
    )
    table = Table("applicant", "income", "debt_ratio", "free_income", "as of")
    for row, found, at in zip(
        online.rows(),
        online.found["applicant_profile"],
        online.event_timestamps["applicant_profile"],
        strict=True,
    ):
        table.add_row(
            str(row["applicant_id"]),
            f"{row['income']:,.0f}" if found else "-",
            f"{row['debt_ratio']:.2f}" if found else "-",
            f"{row['free_income']:,.0f}" if found else "-",
            f"{at:%Y-%m-%d}" if at else "unknown applicant",
        )
    console.print(table)
    return FeaturesDemo(training, labels, online)
