"""Indexes on the change times the incremental sync filters and aggregates on: the newest change of the 360
views and golden records (push plan marks, report and quality fingerprints), the cross-references opened or
closed since a mark. Without them every ``max(updated_at)`` and every "changed since" read scanned the whole table.
And what the report and the push plan read of each 360 view, kept per golden customer (hub/c360_summary.py),
so that a sync reads the views it rewrote instead of every one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 14:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_360_summary",
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("value_tier", sa.String(length=16), nullable=True),
        sa.Column("lifecycle", sa.String(length=16), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=False),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), "mysql", "mariadb"),
                  nullable=False),
        sa.Column("region", sa.String(length=255), nullable=True),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("has_orders", sa.Boolean(), nullable=False),
        sa.Column("has_calls", sa.Boolean(), nullable=False),
        sa.Column("has_social", sa.Boolean(), nullable=False),
        *(sa.Column(f"consent_{ch}", sa.Boolean(), nullable=True) for ch in ("email", "sms", "phone", "social", "post")),
        sa.Column("view_updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("golden_id"),
    )
    op.create_index("ix_customer_360_summary_view", "customer_360_summary", ["view_updated_at"])
    op.create_table(
        "customer_360_phone",
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("golden_id", "phone"),
    )
    op.create_index("ix_customer_360_phone", "customer_360_phone", ["phone"])
    op.create_index("ix_customer_360_updated", "customer_360", ["updated_at"])
    op.create_index("ix_golden_updated", "golden_customer", ["updated_at"])
    op.create_index("ix_xref_valid_from", "xref", ["valid_from"])
    op.create_index("ix_xref_valid_to", "xref", ["valid_to"])


def downgrade() -> None:
    op.drop_index("ix_customer_360_phone", table_name="customer_360_phone")
    op.drop_table("customer_360_phone")
    op.drop_index("ix_customer_360_summary_view", table_name="customer_360_summary")
    op.drop_table("customer_360_summary")
    op.drop_index("ix_xref_valid_to", table_name="xref")
    op.drop_index("ix_xref_valid_from", table_name="xref")
    op.drop_index("ix_golden_updated", table_name="golden_customer")
    op.drop_index("ix_customer_360_updated", table_name="customer_360")
