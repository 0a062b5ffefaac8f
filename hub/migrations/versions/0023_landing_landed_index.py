"""Index landing by landed_at: retention prunes the payloads that expired since its last pass instead of reading
every landed row in every sync (10 GB at a million people).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 02:40:00
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_landing_landed", "landing", ["landed_at"])


def downgrade() -> None:
    op.drop_index("ix_landing_landed", table_name="landing")
