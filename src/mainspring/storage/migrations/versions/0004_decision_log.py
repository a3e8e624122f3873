"""decision log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("review_required", sa.Boolean(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id", name="uq_decision_log_id"),
    )
    with op.batch_alter_table("decision_log", schema=None) as batch_op:
        batch_op.create_index("ix_decision_log_deployment_at", ["deployment", "at"], unique=False)
        batch_op.create_index("ix_decision_log_decision", ["decision_id", "kind"], unique=False)
        batch_op.create_index("ix_decision_log_at", ["at"], unique=False)

    op.create_table(
        "decision_reviews_pending",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    with op.batch_alter_table("decision_reviews_pending", schema=None) as batch_op:
        batch_op.create_index(
            "ix_decision_reviews_pending_deployment", ["deployment", "seq"], unique=False
        )

    op.create_table(
        "decision_outbox",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    # the decision log is append-only: the database itself refuses to change or remove records
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION mainspring_decision_log_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'decision_log is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER decision_log_append_only BEFORE UPDATE OR DELETE ON decision_log "
            "FOR EACH ROW EXECUTE FUNCTION mainspring_decision_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER decision_log_no_truncate BEFORE TRUNCATE ON decision_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION mainspring_decision_log_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER decision_log_no_{verb.lower()} BEFORE {verb} ON decision_log "
                "BEGIN SELECT RAISE(ABORT, 'decision_log is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER decision_log_no_truncate ON decision_log")
        op.execute("DROP TRIGGER decision_log_append_only ON decision_log")
        op.execute("DROP FUNCTION mainspring_decision_log_append_only()")
    else:
        op.execute("DROP TRIGGER decision_log_no_update")
        op.execute("DROP TRIGGER decision_log_no_delete")
    op.drop_table("decision_outbox")
    with op.batch_alter_table("decision_reviews_pending", schema=None) as batch_op:
        batch_op.drop_index("ix_decision_reviews_pending_deployment")
    op.drop_table("decision_reviews_pending")
    with op.batch_alter_table("decision_log", schema=None) as batch_op:
        batch_op.drop_index("ix_decision_log_at")
        batch_op.drop_index("ix_decision_log_decision")
        batch_op.drop_index("ix_decision_log_deployment_at")
    op.drop_table("decision_log")
