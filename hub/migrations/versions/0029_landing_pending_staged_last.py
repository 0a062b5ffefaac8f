"""ix_landing_pending keeps staged_hash last: (source, entity, landed_at, first_landed_at, staged_hash).

Staging sets every landed row's staged_hash. With staged_hash third, each of those updates moved the row's
entry from the never-staged end of its (source, entity) to a place set by the hash: one random spot of a large
index per landed row. At 200k people (1.1M landing rows, bench/bench_staging.py, one process) a first stage took
154 CPU s and 169 s wall with it, 139 / 147 without the index and 134 / 142 with this order, where an entry stays
where it was (rows are staged in landing order, which is the order they landed in). The report's counts per
source and entity (all rows, the staged ones, the newest landing) still read this index alone.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-05 21:40:00
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_landing_pending", table_name="landing")
    op.create_index("ix_landing_pending", "landing",
                    ["source", "entity", "landed_at", "first_landed_at", "staged_hash"])


def downgrade() -> None:
    op.drop_index("ix_landing_pending", table_name="landing")
    op.create_index("ix_landing_pending", "landing",
                    ["source", "entity", "staged_hash", "landed_at", "first_landed_at"])
