"""feature store definitions and materialization runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 04:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", JSON_TYPE, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("schema_digest", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "version"),
    )
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("view", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(length=160), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feature_materializations_namespace", ["namespace", "end_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("feature_materializations", schema=None) as batch_op:
        batch_op.drop_index("ix_feature_materializations_namespace")
    op.drop_table("feature_materializations")
    op.drop_table("feature_definitions")
