"""Index the landing rows staging has still to read (never staged, or changed since) by (source, id): a
partial index on SQLite and PostgreSQL, which holds those rows only; MariaDB has no partial indexes and gets
the whole (source, id). An incremental stage paged through ix_landing_source_id and read every landed row of
a source, payload and all, to compare its two hashes: at 1M people 14.5 GB read from disk (33 s) for 27k
changed records.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 20:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

UNSTAGED = sa.text("staged_hash IS NULL OR staged_hash != payload_hash")


def upgrade() -> None:
    op.create_index("ix_landing_unstaged", "landing", ["source", "id"], sqlite_where=UNSTAGED,
                    postgresql_where=UNSTAGED)


def downgrade() -> None:
    op.drop_index("ix_landing_unstaged", table_name="landing")
