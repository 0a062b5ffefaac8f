"""MySQL/MariaDB stores made before the store compiled DateTime as DATETIME(6) and Float as DOUBLE: their
whole-second DATETIME columns broke the outbox claim (a claim is read back by its exact claim time: such a store
pushed nothing) and their single-precision FLOAT columns rounded money and probabilities. Widened in place;
SQLite and PostgreSQL stores are untouched (they always kept microseconds and doubles).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# the hub's tables at this revision (the store may share its database with other applications' tables)
_TABLES = frozenset({
    "customer_360", "customer_360_link", "customer_360_rank", "customer_base_snapshot", "erasure", "file_import",
    "golden_customer", "golden_id_history", "golden_id_sequence", "landing", "lookup_key", "lookup_record",
    "match_block", "match_candidates", "match_model", "match_pair", "match_record", "match_run", "push_brake",
    "push_outbox", "push_result", "push_state", "quality_run", "quarantine", "review_decision", "source_health",
    "source_tombstone", "staged_record", "suppression", "sync_lock", "sync_state", "xref",
})


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    rows = bind.execute(sa.text(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND ((data_type = 'datetime' AND datetime_precision < 6) "
        "OR data_type = 'float') ORDER BY table_name, ordinal_position")).all()
    for table, column, kind, nullable in rows:
        if table not in _TABLES:
            continue
        wider = "DATETIME(6)" if kind == "datetime" else "DOUBLE"
        op.execute(f"ALTER TABLE `{table}` MODIFY `{column}` {wider} {'NULL' if nullable == 'YES' else 'NOT NULL'}")


def downgrade() -> None:
    pass  # narrowing would lose microseconds and precision: the wider columns stay
