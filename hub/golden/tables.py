"""State tables of the golden stage (defined in hub/store.py, created by Alembic migration 0003).

``match_block``  persisted blocking index: hashed block key -> record keys, so new/changed records are matched
                 against existing records without re-blocking everything.
``match_record`` per staged customer record: the hash last matched, its current cluster (smallest record key
                 of the cluster) and the match run that last changed it (build_golden's dirty marker).
``match_run``    one row per match_and_cluster / build_golden run (watermarks and counts).
``match_model``  frozen scoring parameters of the dedupe engine (trained on a full run, reused by incremental
                 runs and by full rebuilds, so both score every pair identically).
"""

from hub.store import match_block, match_model, match_record, match_run

__all__ = ["match_block", "match_model", "match_record", "match_run"]
