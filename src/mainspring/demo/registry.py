"""The registry part of the demo: train, register, approve with four eyes, promote, serve, audit."""

from __future__ import annotations

import hashlib
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from mainspring.demo.data import FEATURES, credit_data
from mainspring.errors import PermissionDeniedError
from mainspring.project import Project
from mainspring.records import Lineage, TrainingData

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    order = np.argsort(score)
    ranks = np.empty(len(score))
    ranks[order] = np.arange(1, len(score) + 1)
    pos = y == 1
    return float((ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def _train(rows: int, seed: int, trees: int) -> tuple[object, TrainingData, float]:
    import lightgbm as lgb
    import pandas as pd

    x, y = credit_data(rows, seed=seed)
    frame = pd.DataFrame(x, columns=list(FEATURES))
    cut = rows * 4 // 5
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.1,
        "verbose": -1,
        "seed": seed,
    }
    model = lgb.train(params, lgb.Dataset(frame.iloc[:cut], y[:cut]), num_boost_round=trees)
    auc = _auc(y[cut:], np.asarray(model.predict(frame.iloc[cut:])))
    end = datetime(2026, 11, 1, tzinfo=UTC)
    fingerprint = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
    data = TrainingData(fingerprint, rows, end - timedelta(days=90), end, "demo:credit_data")
    return model, data, auc


def run(directory: Path | None = None) -> None:
    """Run the demo in ``directory`` (a fresh temporary one by default): the registry's
    governance, then features for training and serving, then the champion served over OIP,
    then a stream of events through features, asynchronous scores and outcomes, then decisions:
    explained, replayed, reviewed."""
    from mainspring.demo import decisions, features, serving, streaming

    with tempfile.TemporaryDirectory(prefix="mainspring-demo-") as tmp:
        root = Path(directory) if directory else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        with Project.open(root) as project:
            _walk(project)
            features.run(project)
            console.rule("[bold]Serving: the champion over the Open Inference Protocol")
            serving.serve_champion(project)
            streaming.run(project)
            decisions.run(project)
            console.rule("[bold green]done")
            # the project outlives the demo only with --dir
            again, where = ("", root) if directory else ("mainspring demo --dir DIR; ", "DIR")
            console.print(
                f"The web UI: {again}mainspring -C {where} up; open http://127.0.0.1:8000/ui"
            )


def _walk(project: Project) -> None:
    registry = project.registry
    console.rule("[bold]Mainspring demo: a governed model registry")
    console.print(
        f"project in {project.settings.project_dir}  "
        f"(metadata {project.settings.metadata.split(':', 1)[0]}, artifacts on disk)"
    )

    console.print("\n[bold]1. alice trains a LightGBM credit-risk model and registers it")
    model, data, auc = _train(20_000, seed=1, trees=60)
    v1 = registry.register(
        "credit-risk",
        model,
        actor="alice",
        metrics={"auc": auc},
        training_data=data,
        tags={"team": "risk"},
        lineage=Lineage(run_id="demo-train-1", feature_views=("applicant",)),
        description="baseline, 60 trees",
    )
    console.print(
        f"   registered {v1.ref}: {v1.flavor}, sha256:{v1.digest[:12]}…, "
        f"auc={auc:.3f}, inputs={', '.join(v1.signature.input_names)}"
    )

    console.print("\n[bold]2. promotion needs approval, and not from the registrant (four eyes)")
    registry.request_approval("credit-risk", 1, actor="alice", reason="ready for production")
    try:
        registry.approve("credit-risk", 1, actor="alice", reason="looks good to me")
    except PermissionDeniedError as exc:
        console.print(f"   alice approves her own version → refused: [italic]{exc}")
    registry.approve("credit-risk", 1, actor="bob", reason="holdout AUC reviewed")
    console.print("   bob approves credit-risk/1")
    registry.set_alias("credit-risk", "champion", 1, actor="alice", reason="first release")
    console.print("   credit-risk@champion → 1")

    console.print(
        "\n[bold]3. a second version: trained longer, approved, promoted, then rolled back"
    )
    model2, data2, auc2 = _train(20_000, seed=2, trees=120)
    v2 = registry.register(
        "credit-risk",
        model2,
        actor="alice",
        metrics={"auc": auc2},
        training_data=data2,
        lineage=Lineage(run_id="demo-train-2", parent_version=1),
        description="120 trees",
    )
    registry.set_alias(
        "credit-risk", "challenger", v2.version, actor="alice", reason="shadow evaluation"
    )
    registry.request_approval("credit-risk", 2, actor="alice")
    registry.approve("credit-risk", 2, actor="bob", reason="metrics on par")
    registry.set_alias("credit-risk", "champion", 2, actor="alice", reason="release 2")
    console.print(f"   credit-risk/2 auc={auc2:.3f} is champion")
    back = registry.rollback(
        "credit-risk", "champion", actor="carol", reason="complaint volume up after release 2"
    )
    console.print(f"   carol rolls back: credit-risk@champion → {back.version}")

    console.print("\n[bold]4. load the champion (digest verified) and score applicants")
    champion = registry.load("credit-risk@champion")
    x, _ = credit_data(5, seed=99)
    scores = champion.predict({name: x[:, i] for i, name in enumerate(FEATURES)})
    table = Table("income", "age", "debt ratio", "late payments", "P(default)")
    for row, score in zip(x, scores, strict=True):
        table.add_row(
            f"{row[0]:,.0f}", f"{row[1]:.0f}", f"{row[2]:.2f}", f"{row[4]:.0f}", f"{score:.3f}"
        )
    console.print(table)

    console.print("[bold]5. the registry history: append-only and hash-chained")
    history = Table("#", "who", "what", "subject", "why", "hash")
    for entry in registry.history("credit-risk"):
        history.add_row(
            str(entry.seq),
            entry.actor,
            entry.action,
            entry.subject,
            entry.reason or "-",
            entry.hash[:10] + "…",
        )
    console.print(history)
    console.print(f"   verify: {registry.verify()}")
