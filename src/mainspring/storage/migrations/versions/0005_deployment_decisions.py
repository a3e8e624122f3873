"""deployment decisions and deleted model versions

The feature service and policy of a deployment that decides; deleted model versions, whose numbers
are never reused (a logged decision names its model version).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("deployments", sa.Column("decision", JSON_TYPE, nullable=True))
    op.create_table(
        "model_versions_deleted",
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"]),
        sa.PrimaryKeyConstraint("model_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("model_versions_deleted")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("decision")
