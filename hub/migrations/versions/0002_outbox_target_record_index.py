"""outbox lookups per target record

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 09:30:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_target_record", ["target", "entity", "target_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_target_record")
