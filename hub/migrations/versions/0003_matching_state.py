"""matching state of the golden stage: blocking index, per-record match state, runs, frozen model

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:25:00

Stores created by a pre-release build may already hold these tables (the golden stage created them on first
use): they are kept as they are.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "match_block" not in existing:
        op.create_table(
            "match_block",
            sa.Column("block_key", sa.String(length=400), nullable=False),
            sa.Column("record_key", sa.String(length=320), nullable=False),
            sa.PrimaryKeyConstraint("block_key", "record_key"),
        )
        op.create_index("ix_match_block_record", "match_block", ["record_key"], unique=False)
    if "match_record" not in existing:
        op.create_table(
            "match_record",
            sa.Column("record_key", sa.String(length=320), nullable=False),
            sa.Column("record_hash", sa.String(length=64), nullable=False),
            sa.Column("cluster_key", sa.String(length=320), nullable=False),
            sa.Column("changed_run", sa.Integer(), nullable=False),
            sa.Column("matched_at", sa.DateTime(), nullable=False),
            sa.PrimaryKeyConstraint("record_key"),
        )
        op.create_index("ix_match_record_cluster", "match_record", ["cluster_key"], unique=False)
        op.create_index("ix_match_record_changed", "match_record", ["changed_run"], unique=False)
    if "match_run" not in existing:
        op.create_table(
            "match_run",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("mode", sa.String(length=16), nullable=False),
            sa.Column("matcher", sa.String(length=32), nullable=True),
            sa.Column("config_hash", sa.String(length=64), nullable=True),
            sa.Column("upto_run", sa.Integer(), nullable=True),
            sa.Column("started_at", sa.DateTime(), nullable=False),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.Column("stats", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    if "match_model" not in existing:
        op.create_table(
            "match_model",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("matcher", sa.String(length=32), nullable=False),
            sa.Column("trained_at", sa.DateTime(), nullable=False),
            sa.Column("records", sa.Integer(), nullable=False),
            sa.Column("params", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    pair_indexes = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("match_pair")}
    if "ix_match_pair_right_key" not in pair_indexes:
        op.create_index("ix_match_pair_right_key", "match_pair", ["right_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_match_pair_right_key", table_name="match_pair")
    for table in ("match_model", "match_run", "match_record", "match_block"):
        op.drop_table(table)
