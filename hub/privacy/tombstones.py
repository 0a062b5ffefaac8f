"""Deletes at the source: tombstones from id-only sweeps, and what they retire in the hub.

A connector that can list the ids its source holds (``present_ids(entity) -> SourceIds``: ids only, no
payloads — a SQL ``SELECT id, active``, Tryton ``search``, WooCommerce ``_fields=id``, WeChat ``user/get``)
is swept after every pull (``connectors.base.run_sweep``; a pull that read the whole entity, start to end,
gives the ids itself). ``record_sweep`` compares the ids with what the hub landed and keeps one
``source_tombstone`` row per record that is

  deleted      landed before, no longer in the source;
  deactivated  still in the source, switched off there (Tryton / ERP ``active = false``);
  unfollowed   a WeChat follower who left (user/get lists followers only).

A record that comes back (re-created, re-activated, followed again) loses its tombstone and is staged again.
The staging stage applies new tombstones (``apply_tombstones``): the record's staged rows and quarantine row go,
and so does its landing payload unless the record still exists at the source (deactivated). Matching then
drops the record, the golden stage takes it out of its golden record (or retires that record with the reason
in its history) and the push plan withdraws what the hub wrote for it.

A sweep that would retire more than ``MAX_SHARE`` of an entity's records (and more than ``MIN_REFUSED``) is
refused and nothing is retired: an API that suddenly lists nothing is far likelier than half the customers
leaving at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.store import Store, chunked, landing, quarantine, source_tombstone, staged_record

KINDS = ("deleted", "deactivated", "unfollowed")
GONE = frozenset({"deleted", "unfollowed"})  # the source no longer holds the record at all
MAX_SHARE = 0.5
MIN_REFUSED = 20
REASONS = {
    "deleted": "deleted at its source",
    "deactivated": "deactivated at its source",
    "unfollowed": "unfollowed the account",
}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class SourceIds:
    """What an id-only sweep found: every id the source holds for an entity, and which of them are inactive.
    ``absent`` names what a landed id missing from ``present`` means there."""

    present: frozenset[str]
    inactive: frozenset[str] = frozenset()
    absent: str = "deleted"

    @classmethod
    def of(cls, present: Iterable[object], inactive: Iterable[object] = (), absent: str = "deleted") -> SourceIds:
        return cls(frozenset(str(i) for i in present), frozenset(str(i) for i in inactive), absent)


@dataclass
class SweepStats:
    source: str
    entity: str
    present: int = 0
    landed: int = 0
    deleted: int = 0  # newly found gone (deleted or unfollowed)
    deactivated: int = 0
    revived: int = 0  # tombstoned before, back now
    refused: str | None = None
    seconds: float = 0.0

    @property
    def retired(self) -> int:
        return self.deleted + self.deactivated


def record_sweep(store: Store, source: str, entity: str, ids: SourceIds, *, max_share: float = MAX_SHARE,
                 min_refused: int = MIN_REFUSED) -> SweepStats:
    """Turn one sweep's ids into tombstones (new ones, kind changes) and lift the tombstones of records that
    are back; all in one transaction."""
    stats = SweepStats(source, entity, present=len(ids.present))
    now = _now()
    with store.begin() as conn:
        landed = {r[0] for r in conn.execute(
            sa.select(landing.c.source_id).where(landing.c.source == source, landing.c.entity == entity))}
        known = dict(conn.execute(
            sa.select(source_tombstone.c.source_id, source_tombstone.c.kind)
            .where(source_tombstone.c.source == source, source_tombstone.c.entity == entity)).all())
        stats.landed = len(landed)
        wanted: dict[str, str] = {sid: ids.absent for sid in landed - ids.present}
        wanted.update({sid: "deactivated" for sid in landed & ids.inactive})
        new = {sid: kind for sid, kind in wanted.items() if known.get(sid) != kind}
        if len(new) > max(min_refused, max_share * max(len(landed), 1)):
            stats.refused = (f"the sweep would retire {len(new)} of {len(landed)} {entity}: refused (a source "
                             "listing far fewer records than before is likelier an API problem)")
            return stats
        back = sorted(sid for sid in known if sid in ids.present and sid not in ids.inactive)
        for part in chunked(back, 500):
            conn.execute(source_tombstone.delete().where(
                source_tombstone.c.source == source, source_tombstone.c.entity == entity,
                source_tombstone.c.source_id.in_(part)))
            # staged again from its landing payload (a deleted record's payload comes back with the pull)
            conn.execute(landing.update().where(landing.c.source == source, landing.c.entity == entity,
                                                landing.c.source_id.in_(part)).values(staged_hash=None))
        stats.revived = len(back)
        for part in chunked(sorted(new), 500):
            conn.execute(source_tombstone.delete().where(
                source_tombstone.c.source == source, source_tombstone.c.entity == entity,
                source_tombstone.c.source_id.in_(part)))
        if new:
            conn.execute(source_tombstone.insert(), [
                {"source": source, "entity": entity, "source_id": sid, "kind": kind, "detected_at": now,
                 "applied_at": None} for sid, kind in sorted(new.items())])
        stats.deleted = sum(1 for k in new.values() if k in GONE)
        stats.deactivated = sum(1 for k in new.values() if k == "deactivated")
    return stats


@dataclass
class RetireStats:
    records: int = 0  # tombstones applied
    staged_removed: int = 0
    landing_removed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def apply_tombstones(conn: Connection, source: str, derived_keys: Mapping[str, list[tuple[str, str]]]
                     ) -> RetireStats:
    """Retire the records of the source's new tombstones inside the staging transaction ``conn``.

    ``derived_keys[landing entity]`` lists ``(staged entity, record-key prefix)`` pairs: the staged rows a
    landing row of that entity produces are ``<source>:<prefix><source_id>`` (the mapping knows them)."""
    stats = RetireStats()
    rows = conn.execute(
        sa.select(source_tombstone.c.entity, source_tombstone.c.source_id, source_tombstone.c.kind)
        .where(source_tombstone.c.source == source, source_tombstone.c.applied_at.is_(None))
    ).all()
    now = _now()
    for entity, sid, kind in rows:
        for staged_entity, prefix in derived_keys.get(entity, ()):
            stats.staged_removed += conn.execute(staged_record.delete().where(
                staged_record.c.entity == staged_entity,
                staged_record.c.record_key == f"{source}:{prefix}{sid}")).rowcount or 0
        conn.execute(quarantine.delete().where(quarantine.c.source == source, quarantine.c.entity == entity,
                                               quarantine.c.source_id == sid))
        if kind in GONE:  # the source holds nothing any more: neither does the hub
            stats.landing_removed += conn.execute(landing.delete().where(
                landing.c.source == source, landing.c.entity == entity, landing.c.source_id == sid)).rowcount or 0
        stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
        stats.records += 1
    if rows:
        conn.execute(source_tombstone.update().where(source_tombstone.c.source == source,
                                                     source_tombstone.c.applied_at.is_(None))
                     .values(applied_at=now))
    return stats


def live_tombstone() -> sa.ColumnElement[bool]:
    """``EXISTS`` a tombstone for the landing row in the enclosing query (staging leaves such rows alone)."""
    return sa.exists().where(source_tombstone.c.source == landing.c.source,
                             source_tombstone.c.entity == landing.c.entity,
                             source_tombstone.c.source_id == landing.c.source_id)


def removal_reasons(conn: Connection, record_keys: Iterable[str]) -> dict[str, str]:
    """Why these (customer) records left the hub, by record key, where a tombstone says so."""
    by_source: dict[str, list[str]] = {}
    for rk in record_keys:
        source, _, sid = rk.partition(":")
        by_source.setdefault(source, []).append(sid)
    out: dict[str, str] = {}
    for source, sids in by_source.items():
        for part in chunked(sorted(set(sids)), 500):
            for sid, kind in conn.execute(
                sa.select(source_tombstone.c.source_id, source_tombstone.c.kind)
                .where(source_tombstone.c.source == source, source_tombstone.c.source_id.in_(part))
            ):
                out[f"{source}:{sid}"] = REASONS.get(kind, kind)
    return out
