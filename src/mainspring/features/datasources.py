"""Where a feature view's rows come from: Parquet or CSV files, a DuckDB query, or a topic of the
event log (reading them is :mod:`mainspring.features.sources`).

>>> source_from_dict(FileSource("profile.parquet").to_dict())
FileSource(path='profile.parquet', timestamp_column='event_timestamp')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.records import JSON, check_name


def column_name(value: str, what: str) -> str:
    """``value`` if it can name a column (an identifier without ``__``), else an error."""
    if not isinstance(value, str) or not value.isidentifier():
        raise InvalidInputError(
            f"{what} {value!r} is not a valid column name: use letters, digits and '_', "
            "not starting with a digit",
            field=what,
        )
    if value.startswith("__") or "__" in value:
        raise InvalidInputError(
            f"{what} {value!r} may not contain '__' (reserved for the feature store's columns)",
            field=what,
        )
    return value


@dataclass(frozen=True, slots=True)
class FileSource:
    """Parquet or CSV files (a path or a glob; relative paths are relative to the project)."""

    path: str
    timestamp_column: str = "event_timestamp"

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise InvalidInputError("source path must be a non-empty string", field="source.path")
        if not self.path.lower().endswith((".parquet", ".csv", ".pq")):
            raise InvalidInputError(
                f"source {self.path!r} must be a .parquet or .csv file (or a glob of them)",
                field="source.path",
            )
        column_name(self.timestamp_column, "source.timestamp_column")

    @property
    def format(self) -> str:
        return "csv" if self.path.lower().endswith(".csv") else "parquet"

    def to_dict(self) -> JSON:
        return {"kind": "file", "path": self.path, "timestamp_column": self.timestamp_column}


@dataclass(frozen=True, slots=True)
class QuerySource:
    """A DuckDB ``SELECT`` (it may read files: ``SELECT * FROM 'events/*.parquet'``)."""

    query: str
    timestamp_column: str = "event_timestamp"

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidInputError("source query must be a non-empty string", field="source.query")
        column_name(self.timestamp_column, "source.timestamp_column")

    def to_dict(self) -> JSON:
        return {"kind": "query", "query": self.query, "timestamp_column": self.timestamp_column}


@dataclass(frozen=True, slots=True)
class StreamSource:
    """A topic of the event log: each event's payload holds the join keys and the inputs of one
    row, its event time is the row's time (the ``timestamp_column`` of the rows).

    A stream processor (:class:`~mainspring.features.streaming.StreamIngest`, ``mainspring worker
    features``) writes the rows to the online store. With ``offline_path`` (a directory, relative
    to the project) it also appends them there as Parquet files, which are then the view's
    offline source: training sets see the streamed values.

    >>> StreamSource("payments", offline_path="streams/payments").to_dict()["kind"]
    'stream'
    """

    topic: str
    offline_path: str | None = None
    timestamp_column: str = "event_timestamp"

    def __post_init__(self) -> None:
        check_name(self.topic, field="source.topic")
        if self.offline_path is not None and (
            not isinstance(self.offline_path, str) or not self.offline_path
        ):
            raise InvalidInputError(
                "source offline_path must be a directory path or None", field="source.offline_path"
            )
        column_name(self.timestamp_column, "source.timestamp_column")

    @property
    def offline_glob(self) -> str | None:
        """The Parquet files streamed rows are appended to (``None``: not kept offline)."""
        if self.offline_path is None:
            return None
        return self.offline_path.rstrip("/") + "/*.parquet"

    def to_dict(self) -> JSON:
        return {
            "kind": "stream",
            "topic": self.topic,
            "offline_path": self.offline_path,
            "timestamp_column": self.timestamp_column,
        }


Source = FileSource | QuerySource | StreamSource


def source_from_dict(data: Mapping[str, Any]) -> Source:
    """A source from its stored form (:meth:`to_dict`)."""
    if data["kind"] == "file":
        return FileSource(data["path"], data["timestamp_column"])
    if data["kind"] == "stream":
        return StreamSource(data["topic"], data.get("offline_path"), data["timestamp_column"])
    return QuerySource(data["query"], data["timestamp_column"])
