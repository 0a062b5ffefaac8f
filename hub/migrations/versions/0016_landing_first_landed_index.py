"""Index landing by (entity, first_landed_at): the push plan's mark (the newest target record landed) and the
target records landed since it were a scan of every landed row, orders and calls included.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 15:10:00
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_landing_first_landed", "landing", ["entity", "first_landed_at"])


def downgrade() -> None:
    op.drop_index("ix_landing_first_landed", table_name="landing")
