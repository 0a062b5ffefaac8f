"""staged_record gets engine_input and engine_row: the matching engine's input row of a customer record, written
by staging with the record (``hub.golden.matching.staged_engine_row``), and the key it is valid under. A match
run that derives records (a first or full run, and every record changed since the last) decoded each one's JSON
to build it (100k people: 1.9 s of a 19 s match step on two processes); it now reads the kept row. Existing
rows stay null: the match stage derives those from the JSON, as before, and keeps them in its own cache.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("staged_record", sa.Column("engine_input", sa.String(32), nullable=True))
    op.add_column("staged_record", sa.Column("engine_row", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("staged_record", "engine_row")
    op.drop_column("staged_record", "engine_input")
