"""The metadata database schema, shared by every domain (registry, tokens, hash-chained logs).

Tables are SQLAlchemy Core objects; Alembic migrations under ``migrations/`` create them. Change a
table here only together with a new migration (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Mainspring stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


Json = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("model_id", String(36), ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("flavor", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("artifact_key", Text, nullable=False),
    Column("library_versions", Json, nullable=False),
    Column("signature", Json, nullable=False),
    Column("params", Json, nullable=False),
    Column("metrics", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Column("training_data", Json, nullable=True),
    Column("lineage", Json, nullable=False),
    Column("code_version", String(64), nullable=True),
    Column("description", Text, nullable=False, default=""),
    Column("registered_by", String(128), nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Column("approval", String(16), nullable=False, default="none"),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

# Deleted versions: their numbers are never given again, and replay can say what happened.
model_versions_deleted = Table(
    "model_versions_deleted",
    metadata,
    Column("model_id", String(36), ForeignKey("models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", String(36), ForeignKey("models.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

alias_moves = Table(
    "alias_moves",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("model_id", String(36), ForeignKey("models.id"), nullable=False),
    Column("alias", String(128), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),
    Column("kind", String(16), nullable=False),  # set | rollback | delete
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Index("ix_alias_moves_model_alias", "model_id", "alias"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version_id", String(36), ForeignKey("model_versions.id"), nullable=False),
    Column("action", String(16), nullable=False),  # request | approve | reject
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_approvals_version", "version_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("roles", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# Append-only, hash-chained logs. Every column is text or an integer so that an entry hashes to
# the same value on every backend; ``at`` is an ISO-8601 string with microseconds.
chain_entries = Table(
    "chain_entries",
    metadata,
    Column("stream", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_chain_entries_subject", "stream", "subject"),
)

# Feature store: every applied version of an entity, feature view or feature service, and the
# materialization runs (offline → online) with the event-time window each one covered.
feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("kind", String(16), primary_key=True),  # entity | view | service
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("definition", Json, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("schema_digest", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
)

feature_materializations = Table(
    "feature_materializations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("view", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("namespace", String(160), nullable=False),
    Column("start_at", UTCDateTime, nullable=True),
    Column("end_at", UTCDateTime, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_feature_materializations_namespace", "namespace", "end_at"),
)

# Serving deployments: a served name bound to arms (model, version or alias, role, weight %).
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("arms", Json, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
    # features (a feature service) and policy of a deployment that makes decisions
    Column("decision", Json, nullable=True),
)

# The decision log: decisions, their outcomes and reviews in one append-only hash chain (the
# database refuses UPDATE and DELETE, see migration 0004). Columns the queries need sit beside the
# canonical JSON ``body``; every column is covered by ``hash``. ``at`` is an ISO-8601 UTC string
# with microseconds, so it sorts and compares as text on every backend.
decision_log = Table(
    "decision_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # decision | outcome | review
    Column("decision_id", String(64), nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("at", String(40), nullable=False),
    Column("model", String(128), nullable=True),
    Column("version", Integer, nullable=True),
    Column("review_required", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("id", name="uq_decision_log_id"),
    Index("ix_decision_log_deployment_at", "deployment", "at"),
    Index("ix_decision_log_decision", "decision_id", "kind"),
    Index("ix_decision_log_at", "at"),
)

# Decisions waiting for a person (derived from the chain: a row is added with a decision that
# requires review and removed by its review, in the same transactions).
decision_reviews_pending = Table(
    "decision_reviews_pending",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("ix_decision_reviews_pending_deployment", "deployment", "seq"),
)

# How far each mirror of the decision log (the event log) has published: the last ``seq`` sent.
decision_outbox = Table(
    "decision_outbox",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

# Global feature importance of a model version (mean |SHAP| per feature over a sample of its
# training data) and the small background sample that model-agnostic explanations need at decision
# time (a content-addressed Parquet blob, verified against its digest when read).
version_importance = Table(
    "version_importance",
    metadata,
    Column("version_id", String(36), ForeignKey("model_versions.id"), primary_key=True),
    Column("method", String(32), nullable=False),  # treeshap | exact | permutation
    Column("importance", Json, nullable=False),  # [[feature, mean |SHAP|], ...], largest first
    Column("rows", Integer, nullable=False),
    Column("background_key", Text, nullable=True),
    Column("background_digest", String(64), nullable=True),
    Column("background_rows", Integer, nullable=True),
    Column("computed_at", UTCDateTime, nullable=False),
    Column("computed_by", String(128), nullable=False),
)
