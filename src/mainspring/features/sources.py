"""Reading batch sources with DuckDB: Parquet or CSV files, or a DuckDB query.

A source becomes a *feature relation* named after its view: ``join keys, __ts, features``, with
types checked against the view's fields and duplicate (key, time) rows refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.features.datasources import FileSource, StreamSource
from mainspring.features.definitions import FeatureView
from mainspring.features.frames import DUCKDB_TYPES, TS, arrow, compatible, feature_table

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


def quote(name: str) -> str:
    """A DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def time_literal(value: datetime) -> str:
    """A DuckDB TIMESTAMPTZ literal of an aware time; naive times are refused."""
    if value.tzinfo is None:
        raise InvalidInputError(f"time {value} must be timezone-aware (UTC)", field="time")
    return f"TIMESTAMPTZ {literal(value.astimezone(UTC).isoformat())}"


def connect(base_dir: Path, filesystems: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection in UTC that finds relative paths under ``base_dir`` and
    reads remote paths (``s3://``) through the given fsspec ``filesystems``."""
    try:
        import duckdb
    except ImportError:
        raise MissingDependencyError(
            "duckdb", extra="features", purpose="Offline features"
        ) from None
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET file_search_path = {literal(str(base_dir))}")
    for filesystem in filesystems:
        con.register_filesystem(filesystem)
    return con


def remote_schemes(views: Iterable[FeatureView]) -> set[str]:
    """The URL schemes (``s3``…) of the views' file sources."""
    return {
        v.source.path.split("://", 1)[0]
        for v in views
        if isinstance(v.source, FileSource) and "://" in v.source.path
    }


class RemoteFilesystems:
    """fsspec filesystems for remote sources (``s3://``), created once, on first use, with the
    project's ``options`` (endpoint_url, key, secret...)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self._opened: dict[str, Any] = {}

    def of(self, views: Iterable[FeatureView]) -> list[Any]:
        """The filesystems that the sources of ``views`` need."""
        out = []
        for scheme in sorted(remote_schemes(views)):
            if scheme not in self._opened:
                if scheme not in ("s3", "s3a"):
                    raise InvalidInputError(
                        f"sources under {scheme}:// are not supported; use local paths or s3://",
                        field="source.path",
                    )
                try:
                    import s3fs
                except ImportError:
                    raise MissingDependencyError(
                        "s3fs", extra="s3", purpose="Feature sources on S3"
                    ) from None
                self._opened[scheme] = s3fs.S3FileSystem(**self.options)
            out.append(self._opened[scheme])
        return out


def source_sql(view: FeatureView, base_dir: Path) -> str:
    """The FROM-clause expression that reads a view's source."""
    source = view.source
    if isinstance(source, FileSource):
        path = source.path
        if not Path(path).is_absolute() and "://" not in path:
            path = str(base_dir / path)
        reader = "read_csv" if source.format == "csv" else "read_parquet"
        return f"{reader}({literal(path)})"
    if isinstance(source, StreamSource):
        glob = source.offline_glob
        if glob is None:
            raise InvalidInputError(
                f"feature view {view.name!r} streams from topic {source.topic!r} without an "
                "offline_path, so it has no offline rows; give StreamSource an offline_path to "
                "build training sets from it",
                field=f"{view.name}.source.offline_path",
            )
        path = glob if Path(glob).is_absolute() else str(base_dir / glob)
        if not list(Path(path).parent.glob("*.parquet")):
            raise InvalidInputError(
                f"feature view {view.name!r}: no rows of topic {source.topic!r} have been "
                f"streamed to {source.offline_path!r} yet; run `mainspring worker features "
                f"{view.name}` first",
                field=f"{view.name}.source.offline_path",
            )
        return f"read_parquet({literal(path)}, union_by_name = true)"
    return f"({source.query})"


def _schema(con: duckdb.DuckDBPyConnection, view: FeatureView, sql: str) -> pa.Schema:
    import duckdb

    try:
        return fetch(con, f"SELECT * FROM {sql} LIMIT 0").schema  # noqa: S608 (quoted identifiers, no user values)
    except duckdb.Error as exc:
        raise InvalidInputError(
            f"feature view {view.name!r}: its source cannot be read: {exc}", field="source"
        ) from None


def register_features(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    base_dir: Path,
    *,
    relation: str,
    since: datetime | None = None,
    until: datetime | None = None,
    sample: int | None = None,
) -> None:
    """Create the feature relation ``relation`` of ``view`` in ``con`` (checked, deduplicated);
    ``sample`` reads only that many rows (to check a definition against its source)."""
    pa = arrow()
    sql = source_sql(view, base_dir)
    where = f"feature view {view.name!r}: source"
    schema = _schema(con, view, sql)
    ts_col = view.source.timestamp_column
    if ts_col not in schema.names:
        raise InvalidInputError(
            f"{where} has no timestamp column {ts_col!r}; columns: {', '.join(schema.names)}",
            field=f"{view.name}:{ts_col}",
        )
    ts_type = schema.field(ts_col).type
    if not pa.types.is_timestamp(ts_type) or ts_type.tz is None:
        raise InvalidInputError(
            f"{where} column {ts_col!r} must hold timezone-aware timestamps, not {ts_type}"
            + ("; store UTC times with their zone" if pa.types.is_timestamp(ts_type) else ""),
            field=f"{view.name}:{ts_col}",
        )
    window = []
    if since is not None:
        window.append(f"{quote(ts_col)} > {time_literal(since)}")
    if until is not None:
        window.append(f"{quote(ts_col)} <= {time_literal(until)}")
    filtered = f"SELECT * FROM {sql}" + (f" WHERE {' AND '.join(window)}" if window else "")  # noqa: S608 (quoted identifiers, no user values)
    if sample is not None:
        filtered += f" LIMIT {int(sample)}"

    if view.transformation is not None:
        source = fetch(con, filtered)
        table = feature_table(view, source, where)
        con.register(relation, table)
    else:
        columns = []
        for key, dtype in view.entity.join_keys.items():
            if key not in schema.names:
                raise InvalidInputError(
                    f"{where} has no join key column {key!r}; columns: {', '.join(schema.names)}",
                    field=f"{view.name}:{key}",
                )
            actual = schema.field(key).type
            if not compatible(actual, dtype):
                raise InvalidInputError(
                    f"{where} join key {key!r} is declared {dtype} but holds {actual}",
                    field=f"{view.name}:{key}",
                )
            columns.append(f"CAST({quote(key)} AS {DUCKDB_TYPES[dtype]}) AS {quote(key)}")
        columns.append(f"CAST({quote(ts_col)} AS TIMESTAMPTZ) AS {TS}")
        for f in view.fields:
            if f.name not in schema.names:
                raise InvalidInputError(
                    f"{where} has no column for field {f.name!r}; columns: "
                    f"{', '.join(schema.names)}",
                    field=f"{view.name}:{f.name}",
                )
            actual = schema.field(f.name).type
            if not compatible(actual, f.dtype):
                raise InvalidInputError(
                    f"feature view {view.name!r}: field {f.name!r} is declared {f.dtype} but "
                    f"the source column holds {actual}; fix the source or the field's type",
                    field=f"{view.name}:{f.name}",
                )
            columns.append(f"CAST({quote(f.name)} AS {DUCKDB_TYPES[f.dtype]}) AS {quote(f.name)}")
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote(relation)} AS "  # noqa: S608 (quoted identifiers, no user values)
            f"SELECT {', '.join(columns)} FROM ({filtered})"
        )
    check_duplicates(con, view, relation)


def check_duplicates(con: duckdb.DuckDBPyConnection, view: FeatureView, relation: str) -> None:
    """Refuse two rows for the same entity at the same event time (which one would win?)."""
    keys = ", ".join(quote(k) for k in view.entity.join_keys)
    row = con.execute(
        f"SELECT {keys}, {TS}, count(*) FROM {quote(relation)} "  # noqa: S608 (quoted identifiers, no user values)
        f"GROUP BY {keys}, {TS} HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if row is not None:
        key_text = ", ".join(f"{k}={v!r}" for k, v in zip(view.entity.join_keys, row, strict=False))
        raise InvalidInputError(
            f"feature view {view.name!r}: the source has {row[-1]} rows for {key_text} at "
            f"{row[-2].isoformat()}; keep one row per entity and event time",
            field=view.name,
        )


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pa.Table:
    """A query's result as one Arrow table."""
    return con.sql(sql, params=params or None).to_arrow_table()
