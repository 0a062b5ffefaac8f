"""The outbox's waiting rows in id order: ix_outbox_pending (target, status) becomes (target, status, id). A claim
reads the first waiting rows of a target in id order; PostgreSQL's entries of one status were not in id order, so
each claim walked the primary key past every row sent before (quadratic in the outbox).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 15:55:00
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="push_outbox")
    op.create_index("ix_outbox_pending", "push_outbox", ["target", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="push_outbox")
    op.create_index("ix_outbox_pending", "push_outbox", ["target", "status"])
