"""Index landing by (source, entity, source_id, payload_hash, hub_state_hash): the push plan's drift check (what a
pull saw of the hub's fields against what the hub last wrote) joins every push state of a target to its landing
record; it read each landing row, payload and all, for its hub_state_hash (300k people: 5.6 s of every plan, the
largest single statement of an incremental sync). Every pulled page looks its records up for both hashes. With the
hashes in the index both read the index only.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05 16:25:00
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_landing_held", "landing", ["source", "entity", "source_id", "payload_hash", "hub_state_hash"])


def downgrade() -> None:
    op.drop_index("ix_landing_held", table_name="landing")
