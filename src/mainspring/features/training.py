"""Point-in-time-correct training sets: DuckDB ASOF joins of an entity frame with feature views.

Each entity row gets, per view, the latest feature row of the same entity at or before the row's
event time, and only if that row is within the view's TTL; never a later one. Rows without such a
match are kept, with nulls and ``<view>__found = false``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.features.frames import TS, arrow, check_keys, check_timestamps, to_arrow
from mainspring.features.plans import Selection
from mainspring.features.progress import Steps
from mainspring.features.sources import connect, fetch, quote, register_features
from mainspring.records import TrainingData

if TYPE_CHECKING:
    import pyarrow as pa

Output = Literal["pandas", "polars", "arrow"]
ROW = "__row"


@dataclass(frozen=True)
class TrainingSet:
    """A training set and its fingerprint (give ``training_data`` to ``Registry.register``)."""

    data: Any
    table: pa.Table = field(repr=False)
    training_data: TrainingData
    feature_views: tuple[str, ...]
    missing: dict[str, int]

    def save(self, path: str | Path) -> Path:
        """Write the training set to a Parquet file."""
        import pyarrow.parquet as pq

        target = Path(path)
        pq.write_table(self.table, target)
        return target


def fingerprint(table: pa.Table) -> str:
    """SHA-256 of the table's Arrow IPC stream: same columns, types and values, same hash."""
    pa = arrow()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def convert(table: pa.Table, output: Output) -> Any:
    if output == "arrow":
        return table
    if output == "pandas":
        return table.to_pandas()
    if output == "polars":
        try:
            import polars
        except ImportError:
            raise MissingDependencyError(
                "polars", extra="features", purpose="Polars training sets"
            ) from None
        return polars.from_arrow(table)
    raise InvalidInputError(
        f"output {output!r} is not one of pandas, polars, arrow", field="output"
    )


def build_training_set(
    entities: Any,
    selection: Selection,
    base_dir: Path,
    *,
    timestamp_column: str = "event_timestamp",
    output: Output = "pandas",
    progress: bool = False,
    filesystems: Sequence[Any] = (),
    extend: Callable[[pa.Table], pa.Table] | None = None,
    extra_refs: Sequence[str] = (),
) -> TrainingSet:
    """Join ``entities`` (join keys + ``timestamp_column``) with the selected features.

    ``extend``, if given, turns the joined table into the training set before it is
    fingerprinted (on-demand features); ``extra_refs`` are the views it adds (``name@vN``).
    """
    if output not in ("pandas", "polars", "arrow"):
        raise InvalidInputError(
            f"output {output!r} is not one of pandas, polars, arrow", field="output"
        )
    pa = arrow()
    table = to_arrow(entities, "entities")
    table = check_timestamps(table, timestamp_column, "the entity frame")
    keys: dict[str, str] = {}
    for part in selection.parts:
        for key, dtype in part.view.entity.join_keys.items():
            if keys.setdefault(key, dtype) != dtype:
                raise InvalidInputError(
                    f"join key {key!r} is {keys[key]} in one entity and {dtype} in another "
                    f"(feature view {part.view.name!r}); give them one type",
                    field=key,
                )
    table = check_keys(table, keys, "the entity frame")
    taken = set(table.column_names)
    for column in selection.output_columns():
        if column in taken:
            raise InvalidInputError(
                f"the entity frame already has a column {column!r}, which the training set "
                "adds; rename it",
                field=column,
            )
    table = table.append_column(ROW, pa.array(range(table.num_rows), pa.int64()))

    con = connect(base_dir, filesystems)
    try:
        with Steps(progress, total=len(selection.parts) + 2) as steps:
            con.register("__entities", table)
            for i, part in enumerate(selection.parts):
                steps.advance(f"reading {part.view.name}")
                register_features(con, part.view, base_dir, relation=f"__f{i}")
            steps.advance("joining")
            result = fetch(con, _join_sql(selection, timestamp_column))
            if extend is not None:
                result = extend(result)
            steps.advance("fingerprinting")
            digest = fingerprint(result)
    finally:
        con.close()

    start: datetime | None = None
    end: datetime | None = None
    if result.num_rows:
        import pyarrow.compute as pc

        bounds = pc.min_max(result.column(timestamp_column))
        start = bounds["min"].as_py().astimezone(UTC)
        end = bounds["max"].as_py().astimezone(UTC)
    views = [part.view.name for part in selection.parts]
    views += [ref.partition("@")[0] for ref in extra_refs]  # on-demand views, when returned
    missing = {
        view: result.num_rows - _count_true(result.column(f"{view}__found"))
        for view in views
        if f"{view}__found" in result.column_names
    }
    refs = tuple(f"{p.view.name}@v{p.version}" for p in selection.parts) + tuple(extra_refs)
    record = TrainingData(
        fingerprint=digest,
        rows=result.num_rows,
        start=start,
        end=end,
        source="features:" + ",".join(refs),
    )
    return TrainingSet(convert(result, output), result, record, refs, missing)


def _count_true(column: Any) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(column).as_py() or 0)


def _join_sql(selection: Selection, ts: str) -> str:
    select = ["e.* EXCLUDE (__row)"]
    joins = []
    for i, part in enumerate(selection.parts):
        alias = f"v{i}"
        view = part.view
        on = [f"e.{quote(k)} = {alias}.{quote(k)}" for k in view.entity.join_keys]
        on.append(f"e.{quote(ts)} >= {alias}.{TS}")
        joins.append(f"ASOF LEFT JOIN __f{i} {alias} ON {' AND '.join(on)}")
        ok = f"{alias}.{TS} IS NOT NULL"
        if view.ttl is not None:
            micros = int(view.ttl.total_seconds() * 1_000_000)
            ok += f" AND {alias}.{TS} >= e.{quote(ts)} - to_microseconds({micros})"
        for feature, column in zip(part.features, part.columns, strict=True):
            select.append(f"CASE WHEN {ok} THEN {alias}.{quote(feature)} END AS {quote(column)}")
        select.append(
            f"CASE WHEN {ok} THEN {alias}.{TS} END AS {quote(view.name + '__event_timestamp')}"
        )
        select.append(f"({ok}) AS {quote(view.name + '__found')}")
    return f"SELECT {', '.join(select)} FROM __entities e {' '.join(joins)} ORDER BY e.{ROW}"  # noqa: S608 (quoted identifiers, no user values)
