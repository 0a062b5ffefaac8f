"""State tables owned by the golden stage (not yet in hub/store.py's Alembic migration).

``match_block``  persisted blocking index: block key -> record keys, so new/changed records are matched
                 against existing records without re-blocking everything.
``match_record`` per staged customer record: the hash last matched, its current cluster (smallest record key
                 of the cluster) and the match run that last changed it (build_golden's dirty marker).
``match_run``    one row per match_and_cluster / build_golden run (watermarks and counts).
``match_model``  frozen scoring parameters of the dedupe engine (trained on a full run, reused by incremental
                 runs and by full rebuilds, so both score every pair identically).

``ensure_tables`` creates them if missing (idempotent, works on SQLite and PostgreSQL).
TODO(lead): move these into hub/store.py + an Alembic revision; this module then only re-exports them.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa

from hub.store import Store, match_pair

golden_metadata = sa.MetaData()

match_block = sa.Table(
    "match_block",
    golden_metadata,
    sa.Column("block_key", sa.String(400), primary_key=True),
    sa.Column("record_key", sa.String(320), primary_key=True),
)
sa.Index("ix_match_block_record", match_block.c.record_key)

match_record = sa.Table(
    "match_record",
    golden_metadata,
    sa.Column("record_key", sa.String(320), primary_key=True),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("cluster_key", sa.String(320), nullable=False),
    sa.Column("changed_run", sa.Integer, nullable=False),
    sa.Column("matched_at", sa.DateTime(), nullable=False),
)
sa.Index("ix_match_record_cluster", match_record.c.cluster_key)
sa.Index("ix_match_record_changed", match_record.c.changed_run)

match_run = sa.Table(
    "match_run",
    golden_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # match | golden
    sa.Column("mode", sa.String(16), nullable=False),  # full | incremental
    sa.Column("matcher", sa.String(32), nullable=True),
    sa.Column("config_hash", sa.String(64), nullable=True),
    sa.Column("upto_run", sa.Integer, nullable=True),  # golden runs: the match run they consumed
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=True),
    sa.Column("stats", sa.JSON, nullable=True),
)

match_model = sa.Table(
    "match_model",
    golden_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("matcher", sa.String(32), nullable=False),
    sa.Column("trained_at", sa.DateTime(), nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # frozen scoring parameters (e.g. m/u, prior, term frequencies)
)

# match_pair is looked up by either end when growing an affected component
_ix_pair_right = sa.Index("ix_match_pair_right_key", match_pair.c.right_key)

_done: set[str] = set()
_lock = threading.Lock()


def ensure_tables(store: Store) -> None:
    key = str(store.engine.url)
    with _lock:
        if key in _done:
            return
        golden_metadata.create_all(store.engine, checkfirst=True)
        insp = sa.inspect(store.engine)
        if "ix_match_pair_right_key" not in {ix["name"] for ix in insp.get_indexes("match_pair")}:
            _ix_pair_right.create(store.engine, checkfirst=True)
        _done.add(key)
