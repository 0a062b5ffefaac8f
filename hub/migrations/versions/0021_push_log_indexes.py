"""Indexes for what reads the push log and the outbox by time: push_result gets (at, target, status), its (target,
at) index gains status, the outbox's claim index (target, status, id) gains cause and the outbox gets
(updated_at, status).

Retention deleted push results and finished outbox rows older than its period by reading every row of both tables
in every sync (at a million people 674 MB and 1.4 GB; retention took 58 s of the 1M sync with landing's payload
pruning), and the report counted results since the last run and per target and status by fetching every row
through (target, at). Rows expire in the order they were written: with these, a sync reads only those that
expire.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 02:00:00
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_push_result_at", "push_result", ["at", "target", "status"])
    op.drop_index("ix_push_result_target", table_name="push_result")
    op.create_index("ix_push_result_target", "push_result", ["target", "at", "status"])
    op.drop_index("ix_outbox_pending", table_name="push_outbox")
    op.create_index("ix_outbox_pending", "push_outbox", ["target", "status", "id", "cause"])
    op.create_index("ix_outbox_updated", "push_outbox", ["updated_at", "status"])


def downgrade() -> None:
    op.drop_index("ix_outbox_updated", table_name="push_outbox")
    op.drop_index("ix_outbox_pending", table_name="push_outbox")
    op.create_index("ix_outbox_pending", "push_outbox", ["target", "status", "id"])
    op.drop_index("ix_push_result_target", table_name="push_result")
    op.create_index("ix_push_result_target", "push_result", ["target", "at"])
    op.drop_index("ix_push_result_at", table_name="push_result")
