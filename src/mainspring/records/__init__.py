"""The shared vocabulary: plain records that every layer speaks.

Records are frozen dataclasses with ``to_dict``/``from_dict`` for JSON. Time is always UTC and
timezone-aware; ids are time-ordered UUIDv7 strings. The records live in three modules (identity
and the log's records, models, decisions) and are all importable from here.
"""

from mainspring.records.core import (
    IDEMPOTENCY_KEY,
    JSON,
    SCHEMA_VERSION,
    TRACE_ID,
    ChainEntry,
    Event,
    Principal,
    Role,
    check_name,
    new_id,
    utcnow,
)
from mainspring.records.decisions import (
    Decision,
    FeatureValue,
    Outcome,
    Reason,
    Review,
    ReviewAction,
)
from mainspring.records.models import (
    DTYPES,
    ApprovalState,
    FeatureSpec,
    Lineage,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    Signature,
    TrainingData,
    VersionImportance,
)

__all__ = [
    "DTYPES",
    "IDEMPOTENCY_KEY",
    "JSON",
    "SCHEMA_VERSION",
    "TRACE_ID",
    "ApprovalState",
    "ChainEntry",
    "Decision",
    "Event",
    "FeatureSpec",
    "FeatureValue",
    "Lineage",
    "ModelRef",
    "ModelVersion",
    "Outcome",
    "Principal",
    "Reason",
    "RegisteredModel",
    "Review",
    "ReviewAction",
    "Role",
    "Signature",
    "TrainingData",
    "VersionImportance",
    "check_name",
    "new_id",
    "utcnow",
]
