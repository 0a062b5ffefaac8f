"""golden_customer gets quality_facts: what the quality dimensions read of a golden customer (which fields its
record holds; for one of several records, per source how many of them agree with it on name, birth date and
national id), written by the golden build with the record, and indexed by (status, quality_facts). The dimensions
read every active golden record's JSON and every staged record of a golden customer of several records on every
sync (at a million people ~1M + ~1.5M rows after any change); they now count the distinct texts from the index.
Existing rows stay null: the dimensions' next pass works out theirs from the records once and keeps them.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 22:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("golden_customer", sa.Column("quality_facts", sa.Text, nullable=True))
    op.create_index("ix_golden_facts", "golden_customer", ["status", "quality_facts"],
                    mysql_length={"quality_facts": 255})


def downgrade() -> None:
    op.drop_index("ix_golden_facts", table_name="golden_customer")
    op.drop_column("golden_customer", "quality_facts")
