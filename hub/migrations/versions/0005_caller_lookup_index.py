"""caller-lookup index: hashed lookup keys -> golden id, and the 360 hash they were derived from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lookup_key",
        sa.Column("key_hash", sa.BigInteger(), nullable=False),
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", "golden_id"),
    )
    op.create_index("ix_lookup_key_golden", "lookup_key", ["golden_id"], unique=False)
    op.create_table(
        "lookup_record",
        sa.Column("golden_id", sa.String(length=32), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("keys_version", sa.String(length=16), nullable=False),
        sa.Column("indexed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("golden_id"),
    )


def downgrade() -> None:
    op.drop_table("lookup_record")
    op.drop_index("ix_lookup_key_golden", table_name="lookup_key")
    op.drop_table("lookup_key")
