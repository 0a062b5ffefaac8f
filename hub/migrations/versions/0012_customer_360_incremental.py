"""customer 360 incremental state: record -> golden id links and per-customer ranking figures of the last build

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_360_link",
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.String(length=320), nullable=False),
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("entity", "record_key", "golden_id"),
    )
    op.create_index("ix_customer_360_link_golden", "customer_360_link", ["golden_id"])
    op.create_table(
        "customer_360_rank",
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.Column("first_order_at", sa.DateTime(), nullable=True),
        sa.Column("last_order_at", sa.DateTime(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Float(), nullable=False),
        sa.Column("duplicate_orders", sa.Integer(), nullable=False),
        sa.Column("recency_days", sa.Integer(), nullable=True),
        sa.Column("r_score", sa.Integer(), nullable=True),
        sa.Column("f_score", sa.Integer(), nullable=True),
        sa.Column("m_score", sa.Integer(), nullable=True),
        sa.Column("lifecycle", sa.String(length=16), nullable=True),
        sa.Column("value_tier", sa.String(length=16), nullable=True),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("golden_id"),
    )


def downgrade() -> None:
    op.drop_table("customer_360_rank")
    op.drop_index("ix_customer_360_link_golden", table_name="customer_360_link")
    op.drop_table("customer_360_link")
