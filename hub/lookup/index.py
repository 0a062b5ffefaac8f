"""The caller-lookup index stage: customer_360 -> lookup_key / lookup_record, incrementally, on every sync.

A golden customer is (re)indexed when its 360 row is new, its ``record_hash`` differs from the one its keys
were derived from, or the key derivation itself changed (``keys_fingerprint``); a golden id whose 360 row is
gone (merged away, retired, erased) leaves the index. Each chunk of customers is replaced in one transaction,
so a lookup running meanwhile sees a customer's old keys or new keys, never neither.

``remove_from_lookup_index(store, golden_ids)`` takes customers out at once (erasure, deletion). It does not
touch customer_360: the erasure must delete that row too, or the next refresh indexes the customer again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.lookup.keys import key_hash, keys_fingerprint, profile_keys
from hub.store import (
    Store,
    as_text,
    bound_time,
    chunked,
    customer_360,
    gc_paused,
    insert_rows,
    json_value,
    lookup_key,
    lookup_record,
)

_CHUNK = 2000


@dataclass
class LookupIndexStats:
    mode: str  # incremental | full
    indexed: int = 0  # customers whose keys were (re)written this run
    removed: int = 0  # golden ids taken out (no 360 row any more)
    keys_written: int = 0
    customers: int = 0  # customers in the index after the run
    seconds: float = 0.0

    def markdown(self) -> str:
        return "\n".join([
            f"**Caller-lookup index** ({self.mode}) — {self.customers} customers in {self.seconds:.1f}s",
            "",
            "| reindexed | keys written | removed |",
            "|---|---|---|",
            f"| {self.indexed} | {self.keys_written} | {self.removed} |",
        ])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stale_ids(conn: Connection, fingerprint: str) -> list[str]:
    # every view's golden id and record hash come from ix_customer_360_hash (0022), not from the views
    c, r = customer_360, lookup_record
    q = (
        sa.select(c.c.golden_id)
        .select_from(c.outerjoin(r, r.c.golden_id == c.c.golden_id))
        .where(sa.or_(r.c.golden_id.is_(None), r.c.record_hash != c.c.record_hash,
                      r.c.keys_version != fingerprint))
    )
    return list(conn.execute(q).scalars())


def _gone_ids(conn: Connection) -> list[str]:
    c, r = customer_360, lookup_record
    q = sa.select(r.c.golden_id).where(~sa.exists(sa.select(c.c.golden_id).where(c.c.golden_id == r.c.golden_id)))
    return list(conn.execute(q).scalars())


def _delete(conn: Connection, golden_ids: Sequence[str]) -> int:
    conn.execute(lookup_key.delete().where(lookup_key.c.golden_id.in_(golden_ids)))
    return conn.execute(lookup_record.delete().where(lookup_record.c.golden_id.in_(golden_ids))).rowcount


def _columns(conn: Connection) -> tuple[Any, ...]:
    """What the index reads of a 360 row: golden id, the profile's JSON text (``json_value`` decodes it), record
    hash. Only the profile: a view also holds the customer's orders, shipments and calls, and decoding whole
    views was ~45 % of the samples of a full index build at 1M people (py-spy)."""
    c = customer_360.c
    return c.golden_id, as_text(c.record["profile"], conn.dialect.name), c.record_hash


def _write(conn: Connection, rows: Sequence[Any], fingerprint: str, now: datetime, *, fresh: bool = False) -> int:
    """Replace the keys of these (golden_id, profile JSON text, record_hash) rows; returns the keys written.
    ``fresh``: the index was empty when the run began (nothing to replace)."""
    if not fresh:
        _delete(conn, [row[0] for row in rows])
    keys = [(h, gid) for gid, profile, _ in rows
            for h in {key_hash(k) for k in profile_keys(json_value(profile) or {})}]
    if keys:
        insert_rows(conn, lookup_key, ("key_hash", "golden_id"), keys)
    at = bound_time(conn, now)
    insert_rows(conn, lookup_record, ("golden_id", "record_hash", "keys_version", "indexed_at"),
                [(gid, rh, fingerprint, at) for gid, _, rh in rows])
    return len(keys)


@gc_paused()  # a bulk pass: no cycles among its many small containers (see hub.store.gc_paused)
def refresh_lookup_index(store: Store, *, full: bool = False) -> LookupIndexStats:
    """Bring the lookup index up to date with customer_360 (only changed customers unless ``full``)."""
    started = time.monotonic()
    fingerprint = keys_fingerprint()
    with store.engine.connect() as conn:
        indexed_before = conn.execute(sa.select(sa.func.count()).select_from(lookup_record)).scalar_one()
        full = full or indexed_before == 0
        stale = None if full else _stale_ids(conn, fingerprint)
        gone = _gone_ids(conn)
    stats = LookupIndexStats(mode="full" if full else "incremental")
    now = _now()
    fresh = indexed_before == 0
    if stale is None:
        # every 360 row, paged by golden id (no long-lived cursor while this stage writes)
        last = ""
        while True:
            with store.begin() as conn:
                rows = conn.execute(sa.select(*_columns(conn)).where(customer_360.c.golden_id > last)
                                    .order_by(customer_360.c.golden_id).limit(_CHUNK)).all()
                if not rows:
                    break
                stats.keys_written += _write(conn, rows, fingerprint, now, fresh=fresh)
            stats.indexed += len(rows)
            last = rows[-1][0]
    else:
        for chunk in chunked(stale, _CHUNK):
            with store.begin() as conn:
                rows = conn.execute(sa.select(*_columns(conn)).where(customer_360.c.golden_id.in_(chunk))).all()
                stats.keys_written += _write(conn, rows, fingerprint, now)
            stats.indexed += len(rows)
    stats.removed = remove_from_lookup_index(store, gone)
    if stats.mode == "full" and store.dialect == "postgresql":
        # every key was rewritten: fresh planner statistics now rather than whenever autovacuum (off on some
        # servers) gets to it; without them a key was estimated at thousands of rows
        with store.begin() as conn:
            conn.execute(sa.text("ANALYZE lookup_key, lookup_record"))
    with store.engine.connect() as conn:
        stats.customers = conn.execute(sa.select(sa.func.count()).select_from(lookup_record)).scalar_one()
    stats.seconds = time.monotonic() - started
    return stats


def remove_from_lookup_index(store: Store, golden_ids: Iterable[str]) -> int:
    """Take these golden ids out of the lookup index now (erasure / deletion); returns how many were in it.

    Lookups stop finding them as soon as this returns. Delete their customer_360 rows as well, or the next
    ``refresh_lookup_index`` puts them back.
    """
    ids = sorted(set(golden_ids))
    removed = 0
    for chunk in chunked(ids, _CHUNK):
        with store.begin() as conn:
            removed += _delete(conn, chunk)
    return removed
