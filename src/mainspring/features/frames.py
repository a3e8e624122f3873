"""Feature tables in Arrow: entity frames in, source rows through the transformation, out.

Every path that produces feature values (training sets, materialization, streaming writes) goes
through :func:`feature_table` when a view has a transformation, so they compute the same values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mainspring.errors import InvalidInputError, MissingDependencyError
from mainspring.features.definitions import FeatureView, as_array

if TYPE_CHECKING:
    import pyarrow as pa

#: The event-time column of a feature table (reserved name).
TS = "__ts"

ARROW_TYPES = {
    "float64": "float64",
    "float32": "float32",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool_",
    "string": "string",
}

DUCKDB_TYPES = {
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "int64": "BIGINT",
    "int32": "INTEGER",
    "int16": "SMALLINT",
    "int8": "TINYINT",
    "uint8": "UTINYINT",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
}


def arrow() -> Any:
    """The ``pyarrow`` module, or an install hint."""
    try:
        import pyarrow
    except ImportError:
        raise MissingDependencyError(
            "pyarrow", extra="features", purpose="Feature tables"
        ) from None
    return pyarrow


def arrow_type(dtype: str) -> pa.DataType:
    pa = arrow()
    return getattr(pa, ARROW_TYPES[dtype])()


def to_arrow(data: Any, what: str) -> pa.Table:
    """A pandas or polars data frame, an Arrow table, a list of row dicts or a dict of columns."""
    pa = arrow()
    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    try:
        if isinstance(data, Mapping):
            return pa.table(
                {str(k): list(v) if not hasattr(v, "__array__") else v for k, v in data.items()}
            )
        if isinstance(data, Sequence) and not isinstance(data, str | bytes):
            return pa.Table.from_pylist([dict(row) for row in data])
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} cannot be read as columns: {exc}", field=what) from None
    raise InvalidInputError(
        f"{what} must be a pandas or polars data frame, an Arrow table, a list of rows or a "
        f"dict of columns, not {type(data).__name__}",
        field=what,
    )


def check_timestamps(table: pa.Table, column: str, where: str) -> pa.Table:
    """``column`` as ``timestamp[us, UTC]``; naive or missing times are errors naming it."""
    pa = arrow()
    if column not in table.column_names:
        raise InvalidInputError(
            f"{where} has no timestamp column {column!r}; columns: {', '.join(table.column_names)}",
            field=column,
        )
    col = table.column(column)
    if not pa.types.is_timestamp(col.type):
        raise InvalidInputError(
            f"{where}: column {column!r} must hold timezone-aware timestamps, not {col.type}",
            field=column,
        )
    if col.type.tz is None:
        raise InvalidInputError(
            f"{where}: column {column!r} holds naive timestamps; make them timezone-aware "
            "(UTC), e.g. pandas: df[col].dt.tz_localize('UTC')",
            field=column,
        )
    if col.null_count:
        raise InvalidInputError(f"{where}: column {column!r} has missing times", field=column)
    converted = col.cast(pa.timestamp("us", tz="UTC"))
    return table.set_column(table.column_names.index(column), column, converted)


def check_keys(table: pa.Table, join_keys: Mapping[str, str], where: str) -> pa.Table:
    """Join-key columns present, without nulls, cast to their declared types."""
    pa = arrow()
    for key, dtype in join_keys.items():
        if key not in table.column_names:
            raise InvalidInputError(
                f"{where} has no join key column {key!r}; columns: {', '.join(table.column_names)}",
                field=key,
            )
        col = table.column(key)
        ok = (
            pa.types.is_integer(col.type)
            if dtype == "int64"
            else pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        )
        if not ok:
            raise InvalidInputError(
                f"{where}: join key {key!r} must be {dtype}, not {col.type}", field=key
            )
        if col.null_count:
            raise InvalidInputError(f"{where}: join key {key!r} has missing values", field=key)
        target = pa.int64() if dtype == "int64" else pa.string()
        table = table.set_column(table.column_names.index(key), key, col.cast(target))
    return table


def compatible(actual: pa.DataType, dtype: str) -> bool:
    """Whether data of Arrow type ``actual`` may fill a field of type ``dtype``."""
    pa = arrow()
    if pa.types.is_null(actual):
        return True
    if dtype == "string":
        return bool(pa.types.is_string(actual) or pa.types.is_large_string(actual))
    if dtype == "bool":
        return bool(pa.types.is_boolean(actual))
    if dtype.startswith("float"):
        return bool(pa.types.is_floating(actual) or pa.types.is_integer(actual))
    return bool(pa.types.is_integer(actual))


def cast_field(values: Any, view: FeatureView, name: str) -> pa.Array:
    """A feature column cast (safely) to the field's declared type."""
    pa = arrow()
    field = view.field(name)
    where = f"{view.name}:{name}"
    try:
        array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"feature view {view.name!r}: field {name!r} holds values that are not a column: {exc}",
            field=where,
        ) from None
    if not compatible(array.type, field.dtype):
        raise InvalidInputError(
            f"feature view {view.name!r}: field {name!r} is declared {field.dtype} but the data "
            f"holds {array.type}; fix the source or the field's type",
            field=where,
        )
    try:
        return array.cast(arrow_type(field.dtype))
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"feature view {view.name!r}: field {name!r} must be {field.dtype}, but its values "
            f"cannot be converted: {exc}",
            field=where,
        ) from None


def feature_table(view: FeatureView, source: pa.Table, where: str) -> pa.Table:
    """Source rows → ``join keys, __ts, features`` (the transformation applied, types cast)."""
    pa = arrow()
    source = check_timestamps(source, view.source.timestamp_column, where)
    source = check_keys(source, view.entity.join_keys, where)
    if view.transformation is not None:
        columns = {
            name: source.column(name).to_numpy(zero_copy_only=False) for name in source.column_names
        }
        try:
            produced = view.transformation(columns)
        except Exception as exc:  # the user's code: say whose it is
            raise InvalidInputError(
                f"feature view {view.name!r}: the transformation failed: "
                f"{type(exc).__name__}: {exc}",
                field="transformation",
            ) from exc
        if not isinstance(produced, Mapping):
            raise InvalidInputError(
                f"feature view {view.name!r}: the transformation must return a dict of columns",
                field="transformation",
            )
        values: dict[str, Any] = {}
        for name in view.feature_names:
            if name not in produced:
                raise InvalidInputError(
                    f"feature view {view.name!r}: the transformation did not return field "
                    f"{name!r}; it returned: {', '.join(map(str, produced)) or 'nothing'}",
                    field=f"{view.name}:{name}",
                )
            array = as_array(produced[name], name, f"feature view {view.name!r}")
            if len(array) != source.num_rows:
                raise InvalidInputError(
                    f"feature view {view.name!r}: the transformation returned {len(array)} "
                    f"values for {name!r} from {source.num_rows} rows; keep one value per row",
                    field=f"{view.name}:{name}",
                )
            values[name] = array
    else:
        missing = [n for n in view.feature_names if n not in source.column_names]
        if missing:
            raise InvalidInputError(
                f"{where} lacks the columns of fields {', '.join(map(repr, missing))} of feature "
                f"view {view.name!r}; columns: {', '.join(source.column_names)}",
                field=f"{view.name}:{missing[0]}",
            )
        values = {name: source.column(name) for name in view.feature_names}
    out: dict[str, Any] = {key: source.column(key) for key in view.entity.join_keys}
    out[TS] = source.column(view.source.timestamp_column)
    for name in view.feature_names:
        out[name] = cast_field(values[name], view, name)
    return pa.table(out)
