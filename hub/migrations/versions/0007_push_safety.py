"""push safety: outbox claims, row-level push log, what targets hold (drift)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00

push_outbox: ``claimed_by`` / ``claimed_at`` (a row is claimed atomically before it is sent; status
'sending' until its result is recorded), ``run_id``, ``cause`` (change | create | remove | drift).
push_result: ``run_id``, ``attempt``, ``changes`` (field -> [before, after]).
push_state: ``held_hash`` (hash of what the target holds once the payload is applied).
landing: ``hub_state`` / ``hub_state_hash`` (the hub's own fields as the target holds them, last seen by a
pull or written by a push).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=96), nullable=True))
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("run_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("cause", sa.String(length=16), nullable=True))
    with op.batch_alter_table("push_result", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.JSON(), nullable=True))
        batch_op.create_index("ix_push_result_outbox", ["outbox_id"], unique=False)
    with op.batch_alter_table("push_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("landing", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hub_state", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("hub_state_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("landing", schema=None) as batch_op:
        batch_op.drop_column("hub_state_hash")
        batch_op.drop_column("hub_state")
    with op.batch_alter_table("push_state", schema=None) as batch_op:
        batch_op.drop_column("held_hash")
    with op.batch_alter_table("push_result", schema=None) as batch_op:
        batch_op.drop_index("ix_push_result_outbox")
        batch_op.drop_column("changes")
        batch_op.drop_column("attempt")
        batch_op.drop_column("run_id")
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.drop_column("cause")
        batch_op.drop_column("run_id")
        batch_op.drop_column("claimed_at")
        batch_op.drop_column("claimed_by")
