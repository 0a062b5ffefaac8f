"""ix_xref_valid_to holds closed links only (SQLite, PostgreSQL: a partial index). Holding the open rows too
(valid_to NULL: most of the table), it made SQLite plan "valid_to IS NULL AND golden_id IN (...)" through it and
read every open link per chunk of golden ids: the 360 build at 1M people ran 1,500+ s, superlinear. The queries
it is for ("closed since a mark": valid_to > ?) imply valid_to IS NOT NULL and still use it. MySQL / MariaDB have
no partial indexes and plan by statistics: unchanged there.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 18:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_CLOSED = sa.text("valid_to IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name not in ("sqlite", "postgresql"):
        return
    op.drop_index("ix_xref_valid_to", table_name="xref")
    op.create_index("ix_xref_valid_to", "xref", ["valid_to"], sqlite_where=_CLOSED, postgresql_where=_CLOSED)


def downgrade() -> None:
    if op.get_bind().dialect.name not in ("sqlite", "postgresql"):
        return
    op.drop_index("ix_xref_valid_to", table_name="xref")
    op.create_index("ix_xref_valid_to", "xref", ["valid_to"])
