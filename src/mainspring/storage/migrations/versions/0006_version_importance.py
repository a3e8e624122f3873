"""global importance and background sample of model versions

Mean |SHAP| per feature of a model version over a sample of its training data, and the key and
digest of the small background sample that model-agnostic explanations use at decision time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "version_importance",
        sa.Column("version_id", sa.String(length=36), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("importance", JSON_TYPE, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("background_key", sa.Text(), nullable=True),
        sa.Column("background_digest", sa.String(length=64), nullable=True),
        sa.Column("background_rows", sa.Integer(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"]),
        sa.PrimaryKeyConstraint("version_id"),
    )


def downgrade() -> None:
    op.drop_table("version_importance")
