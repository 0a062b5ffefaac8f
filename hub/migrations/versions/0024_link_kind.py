"""customer_360_link gets the interaction's kind: the 360 build counts linked calls and social events from the
links instead of joining every interaction link to its staged JSON (1M people: ~2 minutes a build). Existing
interaction links take the kind of their staged record.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05 13:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("customer_360_link", sa.Column("kind", sa.String(32), nullable=False, server_default=""))
    link = sa.table("customer_360_link", sa.column("entity"), sa.column("record_key"), sa.column("kind"))
    staged = sa.table("staged_record", sa.column("entity"), sa.column("record_key"), sa.column("record", sa.JSON))
    kind = (sa.select(staged.c.record["kind"].as_string())
            .where(staged.c.entity == link.c.entity, staged.c.record_key == link.c.record_key)
            .scalar_subquery())
    op.execute(link.update().where(link.c.entity == "interactions").values(kind=sa.func.coalesce(kind, "")))


def downgrade() -> None:
    op.drop_column("customer_360_link", "kind")
