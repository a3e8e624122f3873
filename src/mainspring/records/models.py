"""Model records: references, signatures, training data, lineage, versions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mainspring.errors import InvalidInputError
from mainspring.records.core import JSON, check_name, utcnow


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to a model version: ``name``, ``name/VERSION`` or ``name@ALIAS``.

    >>> ModelRef.parse("credit@champion")
    ModelRef(name='credit', version=None, alias='champion')
    >>> str(ModelRef.parse("credit/3"))
    'credit/3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, *, field: str = "model") -> ModelRef:
        """Parse ``name``, ``name/VERSION``, ``name/versions/VERSION`` or ``name@ALIAS``."""
        if not isinstance(text, str) or not text:
            raise InvalidInputError(f"{field} must be a non-empty string", field=field)
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(
                check_name(name, field=field), alias=check_name(alias, field=f"{field}.alias")
            )
        parts = text.split("/")
        if len(parts) == 1:
            return cls(check_name(text, field=field))
        if len(parts) == 3 and parts[1] == "versions":
            parts = [parts[0], parts[2]]
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) > 0:
            return cls(check_name(parts[0], field=field), version=int(parts[1]))
        raise InvalidInputError(
            f"{field} {text!r} is not a model reference: use NAME, NAME/VERSION or NAME@ALIAS",
            field=field,
        )

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One named, typed column of a model's input or output."""

    name: str
    dtype: str

    def to_dict(self) -> JSON:
        return {"name": self.name, "dtype": self.dtype}


#: The dtypes a signature may use (numpy names, plus ``string`` and ``bool``).
DTYPES = frozenset(
    {"float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool", "string"}
)


@dataclass(frozen=True, slots=True)
class Signature:
    """The input and output columns of a model, in order.

    >>> sig = Signature.from_dict({"inputs": [{"name": "age", "dtype": "float64"}],
    ...                            "outputs": [{"name": "score", "dtype": "float64"}]})
    >>> sig.input_names
    ('age',)
    """

    inputs: tuple[FeatureSpec, ...]
    outputs: tuple[FeatureSpec, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    def to_dict(self) -> JSON:
        return {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, field: str = "signature") -> Signature:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{field} must be an object with 'inputs'", field=field)

        def specs(key: str, required: bool) -> tuple[FeatureSpec, ...]:
            items = data.get(key, [] if not required else None)
            if not isinstance(items, list) or (required and not items):
                raise InvalidInputError(
                    f"{field}.{key} must be a non-empty list of {{name, dtype}}",
                    field=f"{field}.{key}",
                )
            out: list[FeatureSpec] = []
            seen: set[str] = set()
            for i, item in enumerate(items):
                where = f"{field}.{key}[{i}]"
                if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                    raise InvalidInputError(f"{where} must have a string 'name'", field=where)
                dtype = item.get("dtype", "float64")
                if dtype not in DTYPES:
                    raise InvalidInputError(
                        f"{where}.dtype {dtype!r} is not one of {', '.join(sorted(DTYPES))}",
                        field=f"{where}.dtype",
                    )
                if item["name"] in seen:
                    raise InvalidInputError(
                        f"{where}.name {item['name']!r} appears twice", field=f"{where}.name"
                    )
                seen.add(item["name"])
                out.append(FeatureSpec(item["name"], dtype))
            return tuple(out)

        return cls(specs("inputs", True), specs("outputs", False))


@dataclass(frozen=True, slots=True)
class TrainingData:
    """A fingerprint of the data a model was trained on."""

    fingerprint: str
    rows: int
    start: datetime | None = None
    end: datetime | None = None
    source: str | None = None

    def to_dict(self) -> JSON:
        return {
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingData:
        def ts(key: str) -> datetime | None:
            v = data.get(key)
            return datetime.fromisoformat(v) if v else None

        return cls(
            data["fingerprint"], int(data["rows"]), ts("start"), ts("end"), data.get("source")
        )


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a model version came from."""

    run_id: str | None = None
    feature_views: tuple[str, ...] = ()
    parent_version: int | None = None

    def to_dict(self) -> JSON:
        return {
            "run_id": self.run_id,
            "feature_views": list(self.feature_views),
            "parent_version": self.parent_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lineage:
        return cls(
            data.get("run_id"), tuple(data.get("feature_views") or ()), data.get("parent_version")
        )


class ApprovalState(enum.StrEnum):
    """Where a model version stands in the promotion process."""

    NONE = "none"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class VersionImportance:
    """The global feature importance of a model version, and the background sample stored with it.

    ``values`` maps each feature to its mean absolute SHAP value over ``rows`` rows of the
    version's data, largest first, in raw-score units (the units of a decision's attributions).
    ``method`` says how the SHAP values were computed: ``treeshap`` (exact, LightGBM and XGBoost),
    ``exact`` or ``permutation`` (SHAP's model-agnostic explainers). ``background_digest`` and
    ``background_rows`` describe the background sample (a Parquet artifact) that model-agnostic
    explanations start from at decision time; None and 0 when none is stored.

    >>> imp = VersionImportance({"debt_ratio": 0.4, "age": 0.1}, "treeshap", 200,
    ...                         utcnow(), "alice")
    >>> imp.to_dict()["features"][0]
    {'name': 'debt_ratio', 'importance': 0.4}
    >>> VersionImportance.from_dict(imp.to_dict()) == imp
    True
    """

    values: Mapping[str, float]
    method: str
    rows: int
    computed_at: datetime
    computed_by: str
    background_digest: str | None = None
    background_rows: int = 0

    def to_dict(self) -> JSON:
        return {
            "method": self.method,
            "rows": self.rows,
            "features": [{"name": k, "importance": v} for k, v in self.values.items()],
            "background": (
                {"digest": self.background_digest, "rows": self.background_rows}
                if self.background_digest
                else None
            ),
            "computed_at": self.computed_at.isoformat(),
            "computed_by": self.computed_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VersionImportance:
        background = data.get("background") or {}
        return cls(
            values={str(f["name"]): float(f["importance"]) for f in data["features"]},
            method=str(data["method"]),
            rows=int(data["rows"]),
            computed_at=datetime.fromisoformat(data["computed_at"]),
            computed_by=str(data["computed_by"]),
            background_digest=background.get("digest"),
            background_rows=int(background.get("rows", 0)),
        )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """An immutable registered model artifact and everything known about it."""

    id: str
    name: str
    version: int
    flavor: str
    digest: str
    size: int
    library_versions: Mapping[str, str]
    signature: Signature
    params: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    training_data: TrainingData | None = None
    lineage: Lineage = Lineage()
    code_version: str | None = None
    description: str = ""
    registered_by: str = ""
    registered_at: datetime = field(default_factory=utcnow)
    approval: ApprovalState = ApprovalState.NONE
    aliases: tuple[str, ...] = ()
    #: global feature importance and background sample, once computed for this version
    importance: VersionImportance | None = None

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.name, self.version)

    def to_dict(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "flavor": self.flavor,
            "digest": self.digest,
            "size": self.size,
            "library_versions": dict(self.library_versions),
            "signature": self.signature.to_dict(),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "training_data": self.training_data.to_dict() if self.training_data else None,
            "lineage": self.lineage.to_dict(),
            "code_version": self.code_version,
            "description": self.description,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at.isoformat(),
            "approval": self.approval.value,
            "aliases": list(self.aliases),
            "importance": self.importance.to_dict() if self.importance else None,
        }


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model name in the registry with a summary of its versions and aliases."""

    name: str
    description: str
    created_at: datetime
    created_by: str
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> JSON:
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
        }
