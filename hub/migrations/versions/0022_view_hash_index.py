"""customer_360 gets (golden_id, record_hash): the caller index compares every view's record hash with what it
indexed, and read every view for it (4.5 GB at a million people, in every sync).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 02:00:00
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customer_360_hash", "customer_360", ["golden_id", "record_hash"])


def downgrade() -> None:
    op.drop_index("ix_customer_360_hash", table_name="customer_360")
