"""ix_outbox_target_record holds golden_id too: a push plan looks up the create rows (empty target_id) of the
golden customers it queues creates for, where it read every create row of the target for each chunk of 20,000
golden customers (a full plan at a million people: 50 reads of every create row per target; an incremental one:
one, for a 1 % change). Lookups per target record use the index's first three columns as before.

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
    op.drop_index("ix_outbox_target_record", table_name="push_outbox")
    op.create_index("ix_outbox_target_record", "push_outbox", ["target", "entity", "target_id", "golden_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_target_record", table_name="push_outbox")
    op.create_index("ix_outbox_target_record", "push_outbox", ["target", "entity", "target_id"])
