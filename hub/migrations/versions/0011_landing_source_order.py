"""landing: an index on (source, id), the order staging reads a source's rows in

Staging pages through one source's landing rows by id (``source = ? AND id > ? ORDER BY id LIMIT n``). With
only ``ix_landing_pending`` (source, entity, staged_hash) SQLite read every row of the source and sorted them
for each page: quadratic in the source's size (100k people: 80 pages x 160k web shop rows).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 19:00:00
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_landing_source_id", "landing", ["source", "id"])


def downgrade() -> None:
    op.drop_index("ix_landing_source_id", table_name="landing")
