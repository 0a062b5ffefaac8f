"""Index push_state by (target, golden_id): an incremental push plan looks up what the hub wrote for the golden
customers that changed, and erasure what it wrote for a person; without it every lookup of 500 golden ids read
all of a target's push states (300k people, ~10k changed golden customers: 20 reads of 166k rows per target,
quadratic with the population).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05 16:20:00
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_push_state_golden", "push_state", ["target", "golden_id"])


def downgrade() -> None:
    op.drop_index("ix_push_state_golden", table_name="push_state")
