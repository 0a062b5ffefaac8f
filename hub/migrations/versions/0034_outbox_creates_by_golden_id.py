"""push_outbox gets an index led by golden_id: a push plan looks up the create rows (empty target_id) of the
golden customers it queues creates for, where it read every create row of the target for each chunk of 20,000
golden customers (a full plan at a million people: 50 reads of every create row per target; an incremental one:
one, for a 1 % change). Led by golden_id, not an extension of ix_outbox_target_record: with golden_id after
(target, entity) SQLite chose that index over ix_outbox_pending for a target's waiting rows (every row of the
target read).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 15:30:00
"""

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_golden", "push_outbox", ["golden_id", "target", "entity", "target_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_golden", table_name="push_outbox")
