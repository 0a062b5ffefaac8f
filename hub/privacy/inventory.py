"""Which hub tables hold personal data, and how erasure and retention treat each.

Every table of ``hub.store.metadata`` must be listed here (``tests/test_privacy_inventory.py`` fails
otherwise), so a table another stage adds is classified — and handled by ``hub erase`` — before it lands.

``PERSONAL``: table -> how ``hub erase`` removes a person from it (the report counts its rows).
``NOT_PERSONAL``: table -> why it holds none (counts, hashes, ids of the hub's own making, configuration).
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from hub.store import Store, metadata

PERSONAL: dict[str, str] = {
    "landing": "raw payloads of the person's records (and of their orders, calls, messages) deleted",
    "staged_record": "canonical records of the person and their orders, shipments, calls deleted",
    "quarantine": "quarantined payloads carrying the person's contacts deleted",
    "match_pair": "scored pairs with one of the person's records deleted",
    "match_block": "blocking-index rows of the person's records deleted",
    "match_record": "match state (and cached engine input rows) of the person's records deleted",
    "match_model": "the person's phone numbers / e-mail addresses taken out of the term-frequency tables",
    "review_decision": "steward decisions on the person's records deleted",
    "golden_customer": "golden records (incl. ids merged away) kept as ids only: status erased, no values",
    "golden_id_history": "history of the person's golden ids replaced by one 'erased' event; their record "
                         "keys removed from other ids' history",
    "xref": "the person's cross-references deleted",
    "customer_360": "360 views deleted",
    "customer_360_link": "which of the person's records their 360 view was built from: deleted",
    "customer_360_rank": "the person's order figures and ranks of the last 360 build deleted",
    "customer_360_summary": "what the report and the push plan count of the person's 360 view deleted",
    "customer_360_phone": "the phone numbers of the person's 360 view (caller directory holders) deleted",
    "push_outbox": "earlier rows anonymised (payload, target id); erasure rows keep the target id only until "
                   "the target confirmed",
    "push_result": "target ids and reasons of the person's rows anonymised",
    "push_state": "what the hub pushed for the person forgotten",
    "sync_state": "a cursor pointing at one of the person's records is reset (the sweep starts over)",
    "source_tombstone": "tombstones of the person's records deleted",
    "customer_base_snapshot": "the person's segment / tier / lifecycle at the last report deleted",
    "lookup_key": "the person's hashed phone / e-mail / name keys taken out of the caller-lookup index",
    "lookup_record": "the person's caller-lookup index entry deleted",
}

NOT_PERSONAL: dict[str, str] = {
    "golden_id_sequence": "a counter",
    "match_run": "run counts and watermarks",
    "match_candidates": "the last match run's candidate pairs as record indices and bands (no keys, no values)",
    "suppression": "salted hashes only (the erased person cannot be read back from them)",
    "erasure": "audit row: erasure id, time, selector kind, reason, counts",
    "alembic_version": "schema revision",
    "sync_lock": "run id, job name, host name and process id of the sync holding the store",
    "source_health": "per source: pull status and the error's class and redacted message",
    "quality_run": "report history: dimension scores and counts",
    "push_brake": "brake evaluations: counts and golden ids (bare ids once a person is erased)",
    "file_import": "one row per `hub import`: counts, line numbers and column names (the file name is the "
                   "operator's)",
}


def unclassified() -> list[str]:
    """Tables of the store nobody has classified yet (must be empty)."""
    return sorted(set(metadata.tables) - set(PERSONAL) - set(NOT_PERSONAL))


def personal_row_counts(store: Store, known: Mapping[str, int] | None = None) -> dict[str, int]:
    """Rows per table that can hold personal data (the report's privacy section). ``known``: counts the caller
    has just taken (the report's landing and staged counts: a count of every landing row was ~45 s at 1M
    people on PostgreSQL, each time)."""
    known = known or {}
    out: dict[str, int] = {}
    with store.engine.connect() as conn:
        for name in sorted(PERSONAL):
            table = metadata.tables.get(name)
            if name in known:
                out[name] = int(known[name])
            elif table is not None:
                out[name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    return out
