"""staged_record gets engine_input and engine_row: the matching engine's input row of a customer record, written
by staging with the record (``hub.golden.matching.staged_engine_row``), and the key it is valid under. A match
run that derives records (a first or full run, and every record changed since the last) decoded each one's JSON
to build it (100k people: 1.9 s of a 19 s match step on two processes); it now reads the kept row. Existing
rows stay null: the match stage derives those from the JSON, as before, and keeps them in its own cache.

Both engine_row columns (this one and match_record's) are LONGTEXT on MariaDB / MySQL: TEXT holds 64 KB there,
and a row holding a pasted document as a name was refused ("Data too long").

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 07:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import LONGTEXT

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_LONG_TEXT = sa.Text().with_variant(LONGTEXT(), "mysql", "mariadb")


def _mysql() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    op.add_column("staged_record", sa.Column("engine_input", sa.String(32), nullable=True))
    op.add_column("staged_record", sa.Column("engine_row", _LONG_TEXT, nullable=True))
    if _mysql():
        op.alter_column("match_record", "engine_row", type_=LONGTEXT(), existing_type=sa.Text(), existing_nullable=True)


def downgrade() -> None:
    if _mysql():
        op.alter_column("match_record", "engine_row", type_=sa.Text(), existing_type=LONGTEXT(), existing_nullable=True)
    op.drop_column("staged_record", "engine_row")
    op.drop_column("staged_record", "engine_input")
