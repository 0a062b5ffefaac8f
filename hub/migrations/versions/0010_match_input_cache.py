"""match input cache: each matched record's engine input row and the staged hash it was derived from

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 16:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_hash", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("engine_row", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("match_record", schema=None) as batch_op:
        batch_op.drop_column("engine_row")
        batch_op.drop_column("input_hash")
