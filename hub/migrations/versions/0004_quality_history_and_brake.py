"""data quality: run history, the push brake, the customer-base snapshot

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_quality_run_finished", "quality_run", ["finished_at"], unique=False)
    op.create_table(
        "push_brake",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("golden_run", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(length=128), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_push_brake_status", "push_brake", ["status"], unique=False)
    op.create_table(
        "customer_base_snapshot",
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.Column("rfm_segment", sa.String(length=32), nullable=False),
        sa.Column("value_tier", sa.String(length=16), nullable=False),
        sa.Column("lifecycle", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("golden_id"),
    )


def downgrade() -> None:
    op.drop_table("customer_base_snapshot")
    op.drop_index("ix_push_brake_status", table_name="push_brake")
    op.drop_table("push_brake")
    op.drop_index("ix_quality_run_finished", table_name="quality_run")
    op.drop_table("quality_run")
