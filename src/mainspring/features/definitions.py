"""The definitions of the feature store: entities, fields, feature views and feature services.

Definitions are plain, frozen Python objects; ``FeatureStore.apply`` validates and registers them.

>>> customer = Entity("customer", join_keys={"customer_id": "int64"})
>>> profile = FeatureView(
...     "profile", entity=customer,
...     fields=[Field("income"), Field("age", "int64")],
...     source=FileSource("profile.parquet"), ttl=timedelta(days=30))
>>> profile.feature_names
('income', 'age')
>>> FeatureView("bad", entity=customer, fields=[Field("customer_id")],
...             source=FileSource("x.parquet"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
mainspring.errors.InvalidInputError: feature view 'bad': field 'customer_id' is also a join key ...
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mainspring.errors import InvalidInputError
from mainspring.features.datasources import (
    FileSource,
    QuerySource,
    Source,
    StreamSource,
    column_name,
    source_from_dict,
)
from mainspring.records import DTYPES, JSON, check_name

if TYPE_CHECKING:
    from mainspring.features.ondemand import OnDemandFeatureView

#: Columns handed to and returned by a transformation: name → 1-D array (NumPy or list-like).
Columns = Mapping[str, Any]
Transformation = Callable[[dict[str, npt.NDArray[Any]]], Columns]

#: Types a join key may have.
KEY_DTYPES = frozenset({"int64", "string"})


def _name(value: str, what: str) -> str:
    return check_name(value, field=what)  # no ':' (it separates view and feature)


@dataclass(frozen=True, slots=True)
class Entity:
    """What features describe (a customer, a card): a name and its typed join keys."""

    name: str
    join_keys: Mapping[str, str]
    description: str = ""

    def __post_init__(self) -> None:
        _name(self.name, "entity.name")
        if isinstance(self.join_keys, str) or not isinstance(self.join_keys, Mapping):
            raise InvalidInputError(
                f"entity {self.name!r}: join_keys must map key names to types, e.g. "
                "{'customer_id': 'int64'}",
                field="entity.join_keys",
            )
        if not self.join_keys:
            raise InvalidInputError(
                f"entity {self.name!r} needs at least one join key", field="entity.join_keys"
            )
        for key, dtype in self.join_keys.items():
            column_name(key, f"entity {self.name!r}: join key")
            if dtype not in KEY_DTYPES:
                raise InvalidInputError(
                    f"entity {self.name!r}: join key {key!r} has type {dtype!r}; use one of "
                    f"{', '.join(sorted(KEY_DTYPES))}",
                    field=f"entity.join_keys.{key}",
                )
        object.__setattr__(self, "join_keys", dict(self.join_keys))

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.join_keys)

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "join_keys": dict(self.join_keys),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        return cls(data["name"], dict(data["join_keys"]), data.get("description", ""))


@dataclass(frozen=True, slots=True)
class Field:
    """One named, typed feature of a view."""

    name: str
    dtype: str = "float64"
    description: str = ""

    def __post_init__(self) -> None:
        column_name(self.name, "field")
        if self.dtype not in DTYPES:
            raise InvalidInputError(
                f"field {self.name!r} has type {self.dtype!r}; use one of "
                f"{', '.join(sorted(DTYPES))}",
                field=f"fields.{self.name}.dtype",
            )

    def to_dict(self) -> JSON:
        return {"name": self.name, "dtype": self.dtype, "description": self.description}


def checked_tags(tags: Mapping[str, str], where: str) -> dict[str, str]:
    """``tags`` as a dict once every key is a valid name and every value a string."""
    out = dict(tags)
    for key, value in out.items():
        check_name(str(key), field=f"tags.{key}")
        if not isinstance(value, str):
            raise InvalidInputError(f"{where}: tag {key!r} must be a string", field=f"tags.{key}")
    return out


def transformation_digest(func: Transformation | None) -> str | None:
    """A digest of a transformation's source code (its identity across processes)."""
    if func is None:
        return None
    try:
        code = inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__qualname__", repr(func))
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class FeatureView:
    """Named, typed features of an entity from a batch source or a stream, with a TTL.

    ``transformation``, if given, is a plain function from the source's columns (a dict of
    NumPy arrays) to the view's feature columns; it runs identically in training-set retrieval,
    materialization and :meth:`FeatureStore.write_online <mainspring.features.FeatureStore>`.
    """

    name: str
    entity: Entity
    fields: Sequence[Field]
    source: Source
    ttl: timedelta | None = None
    owner: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    transformation: Transformation | None = None

    def __post_init__(self) -> None:
        _name(self.name, "feature_view.name")
        where = f"feature view {self.name!r}"
        if not isinstance(self.entity, Entity):
            raise InvalidInputError(f"{where}: entity must be an Entity", field="entity")
        if not isinstance(self.source, FileSource | QuerySource | StreamSource):
            raise InvalidInputError(
                f"{where}: source must be a FileSource, a QuerySource or a StreamSource",
                field="source",
            )
        fields = tuple(self.fields)
        if not fields or not all(isinstance(f, Field) for f in fields):
            raise InvalidInputError(f"{where} needs a non-empty list of Field", field="fields")
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise InvalidInputError(
                    f"{where}: field {f.name!r} appears twice", field=f"fields.{f.name}"
                )
            if f.name in self.entity.join_keys:
                raise InvalidInputError(
                    f"{where}: field {f.name!r} is also a join key of entity "
                    f"{self.entity.name!r}; rename the field",
                    field=f"fields.{f.name}",
                )
            if f.name == self.source.timestamp_column:
                raise InvalidInputError(
                    f"{where}: field {f.name!r} is the source's timestamp column",
                    field=f"fields.{f.name}",
                )
            seen.add(f.name)
        object.__setattr__(self, "fields", fields)
        if self.ttl is not None and (
            not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0)
        ):
            raise InvalidInputError(
                f"{where}: ttl must be a positive timedelta or None (no expiry)", field="ttl"
            )
        tags = checked_tags(self.tags, where)
        object.__setattr__(self, "tags", tags)
        if self.transformation is not None and not callable(self.transformation):
            raise InvalidInputError(
                f"{where}: transformation must be a function of columns", field="transformation"
            )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise InvalidInputError(
            f"feature view {self.name!r} has no feature {name!r}; it has: "
            f"{', '.join(self.feature_names)}",
            field=f"{self.name}:{name}",
        )

    def schema_digest(self) -> str:
        """What online rows depend on: keys, fields and their types, the transformation."""
        data = {
            "join_keys": dict(self.entity.join_keys),
            "fields": [[f.name, f.dtype] for f in self.fields],
            "transformation": transformation_digest(self.transformation),
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "entity": self.entity.to_dict(),
            "fields": [f.to_dict() for f in self.fields],
            "source": self.source.to_dict(),
            "ttl_seconds": self.ttl.total_seconds() if self.ttl is not None else None,
            "owner": self.owner,
            "description": self.description,
            "tags": dict(self.tags),
            "transformation": (
                {
                    "name": getattr(self.transformation, "__qualname__", "transformation"),
                    "digest": transformation_digest(self.transformation),
                }
                if self.transformation is not None
                else None
            ),
        }

    def breaking_changes(self, before: Mapping[str, Any]) -> list[str]:
        """How this definition breaks consumers of ``before`` (a stored ``to_dict``)."""
        changes: list[str] = []
        old_keys = before["entity"]["join_keys"]
        if dict(old_keys) != dict(self.entity.join_keys):
            changes.append(f"join keys change from {old_keys} to {dict(self.entity.join_keys)}")
        old_fields = {f["name"]: f["dtype"] for f in before["fields"]}
        new_fields = {f.name: f.dtype for f in self.fields}
        for name, dtype in old_fields.items():
            if name not in new_fields:
                changes.append(f"field {name!r} is removed")
            elif new_fields[name] != dtype:
                changes.append(f"field {name!r} changes type from {dtype} to {new_fields[name]}")
        old_t = (before.get("transformation") or {}).get("digest")
        if old_t != transformation_digest(self.transformation):
            changes.append("the transformation changes")
        return changes


@dataclass(frozen=True, slots=True)
class FeatureService:
    """The named set of features a model consumes.

    ``features`` holds feature views and on-demand feature views (all their features),
    ``"view"`` names, or ``"view:feature"`` references.
    """

    name: str
    features: Sequence[FeatureView | OnDemandFeatureView | str]
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self.name, "feature_service.name")
        refs = self.refs
        if not refs:
            raise InvalidInputError(
                f"feature service {self.name!r} needs at least one feature", field="features"
            )
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "tags", dict(self.tags))

    @property
    def refs(self) -> tuple[str, ...]:
        """The features as ``view`` or ``view:feature`` references."""
        from mainspring.features.ondemand import OnDemandFeatureView  # it builds on this module

        out: list[str] = []
        for item in self.features:
            if isinstance(item, FeatureView | OnDemandFeatureView):
                out.append(item.name)
            elif isinstance(item, str) and item:
                out.append(item)
            else:
                raise InvalidInputError(
                    f"feature service {self.name!r}: {item!r} is not a feature view or a "
                    "'view:feature' reference",
                    field="features",
                )
        return tuple(out)

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "features": list(self.refs),
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureService:
        return cls(
            data["name"],
            list(data["features"]),
            data.get("description", ""),
            data.get("owner", ""),
            dict(data.get("tags", {})),
        )


def view_from_dict(
    data: Mapping[str, Any], transformation: Transformation | None = None
) -> FeatureView:
    """A view from its stored form (the transformation, code, must come from the definitions)."""
    ttl = data.get("ttl_seconds")
    return FeatureView(
        data["name"],
        entity=Entity.from_dict(data["entity"]),
        fields=[Field(f["name"], f["dtype"], f.get("description", "")) for f in data["fields"]],
        source=source_from_dict(data["source"]),
        ttl=timedelta(seconds=ttl) if ttl is not None else None,
        owner=data.get("owner", ""),
        description=data.get("description", ""),
        tags=dict(data.get("tags", {})),
        transformation=transformation,
    )


def as_array(values: Any, name: str, where: str) -> npt.NDArray[Any]:
    """A transformation's output column as a 1-D array."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidInputError(
            f"{where}: the transformation returned {name!r} with shape {array.shape}; "
            "return one 1-D column per feature",
            field=name,
        )
    return array
