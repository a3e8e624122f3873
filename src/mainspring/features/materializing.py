"""Materialization: the latest row per entity, from a view's offline source to the online store.

One run reads the source (incrementally since the previous run's end unless ``full``), keeps the
newest row per entity, writes it in atomic batches and records the run in the catalog.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from mainspring.features import catalog
from mainspring.features.catalog import Materialization
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import TS
from mainspring.features.metrics import FeatureMetrics
from mainspring.features.online import encode_rows
from mainspring.features.progress import Steps
from mainspring.features.sources import connect, fetch, quote, register_features
from mainspring.records import utcnow
from mainspring.storage.base import MetadataStore, OnlineStore

#: Rows per atomic online write during materialization.
BATCH_ROWS = 10_000


def materialize_view(
    view: FeatureView,
    version: int,
    namespace: str,
    *,
    metadata: MetadataStore,
    online: OnlineStore,
    base_dir: Path,
    filesystems: list[Any],
    end: datetime,
    full: bool,
    actor: str,
    progress: bool,
    metrics: FeatureMetrics | None,
) -> Materialization:
    """Materialize one registered ``view`` (its ``version`` and online ``namespace``)."""
    name = view.name
    with metadata.read() as conn:
        last = catalog.last_materialization(conn, namespace)
    start = None if full or last is None else last.end
    con = connect(base_dir, filesystems)
    try:
        register_features(con, view, base_dir, relation="__f", since=start, until=end)
        keys = ", ".join(quote(k) for k in view.entity.join_keys)
        latest = fetch(
            con,
            f"SELECT * FROM __f QUALIFY row_number() OVER "  # noqa: S608 (quoted identifiers, no user values)
            f"(PARTITION BY {keys} ORDER BY {TS} DESC) = 1",
        )
    finally:
        con.close()
    rows = encode_rows(view, latest)
    batches = range(0, len(rows), BATCH_ROWS)
    with Steps(progress, total=len(batches), description=f"materializing {name}") as steps:
        for i in batches:
            online.write(namespace, rows[i : i + BATCH_ROWS])
            steps.advance(f"materializing {name}")
    run = Materialization(name, version, namespace, start, end, len(rows), utcnow(), actor)
    with metadata.write() as conn:
        catalog.record_materialization(conn, run)
    if metrics is not None:
        metrics.written(name, len(rows), "materialize")
        metrics.materialized(name, end, online.count(namespace))
    return run
