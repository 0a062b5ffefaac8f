"""Retention: personal data the hub no longer needs is removed on a schedule (the ``retention`` asset of the
nightly sync), per the ``retention:`` section of hub.yaml.

``raw_payloads_days``  a landing payload not re-landed for this long is pruned: the row keeps its key and hash
                       (so an unchanged record is not landed again and the next change still is), the payload
                       becomes ``{"_pruned": true}``; the staged record it produced stays. Staging never
                       re-stages a pruned payload (a mapping change re-stages the others).
``quarantine_days``    quarantined payloads that old are pruned the same way (the row and its reasons stay, so
                       the counts still add up).
``push_log_days``      push results, and outbox rows that reached their end (ok / rejected / superseded), older
                       than this are deleted. What each target holds now (push_state) is kept.
``tombstones_days``    tombstones of records their source deleted, older than this, are deleted (a deactivated
                       record keeps its tombstone: it still exists at the source and must stay retired).
``erase_person_runs``  delete finished ``erase_person`` runs from Dagster's storage: their config holds the phone
                       or e-mail address the operator typed; the hub's own audit row (``erasure``) stays.

``None`` for a period keeps that data for ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from hub.privacy.tombstones import GONE
from hub.store import (
    PRUNED,
    STAGING_MAPPING_ENTITY,
    Store,
    landing,
    parse_dt,
    payload_hash,
    push_outbox,
    push_result,
    quarantine,
    read_cursor,
    source_tombstone,
    sync_state,
    write_cursor,
)

FINISHED = ("ok", "rejected", "superseded")


class RetentionConfig(BaseModel):
    """The ``retention:`` section of hub.yaml (days; null keeps for ever)."""

    model_config = ConfigDict(extra="forbid")

    raw_payloads_days: int | None = Field(90, ge=1)
    quarantine_days: int | None = Field(90, ge=1)
    push_log_days: int | None = Field(180, ge=1)
    tombstones_days: int | None = Field(365, ge=1)
    erase_person_runs: bool = True


@dataclass
class RetentionStats:
    payloads_pruned: int = 0
    quarantine_pruned: int = 0
    push_results_deleted: int = 0
    outbox_rows_deleted: int = 0
    tombstones_deleted: int = 0
    erase_runs_deleted: int = 0
    erasures_finished: int = 0
    personal_rows: dict[str, int] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = ["**Retention**", "", "| what | rows |", "|---|---|"]
        for name in ("payloads_pruned", "quarantine_pruned", "push_results_deleted", "outbox_rows_deleted",
                     "tombstones_deleted", "erase_runs_deleted", "erasures_finished"):
            lines.append(f"| {name.replace('_', ' ')} | {getattr(self, name)} |")
        lines += ["", "| table holding personal data | rows |", "|---|---|"]
        lines += [f"| {t} | {n:,} |" for t, n in sorted(self.personal_rows.items())]
        return "\n".join(lines)


def _cutoff(days: int | None, now: datetime) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


RETENTION_ENTITY = "_retention"  # sync_state (source "hub"): the last payload cut, the last pass over everything
FULL_PASS_DAYS = 7  # a pass over every landed row at least this often


def _landing_window(conn: sa.Connection, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(where this pass over landing payloads may start, when the last pass over every row was). The start is
    the last pass's cut, so that only payloads that expired since are read (through ix_landing_landed; a pass
    over every landed row read 10 GB at a million people, in every sync); None (every landed row) on the first
    pass, a week after the last full one, and after a changed mapping re-staged a source since it: a payload
    that was not staged when it expired (staging interrupted, a record its mapping could not use yet) is pruned
    once it is."""
    kept = read_cursor(conn, "hub", RETENTION_ENTITY) or {}
    since, full_at = parse_dt(kept.get("landing_cut")), parse_dt(kept.get("landing_full_at"))
    if since is None or full_at is None or now - full_at >= timedelta(days=FULL_PASS_DAYS):
        return None, full_at
    restaged = conn.execute(sa.select(sa.func.max(sync_state.c.updated_at))
                            .where(sync_state.c.entity == STAGING_MAPPING_ENTITY)).scalar()
    if restaged is not None and (parse_dt(restaged) or datetime.max) >= full_at:
        return None, full_at
    return since, full_at


def apply_retention(store: Store, cfg: RetentionConfig | None = None, now: datetime | None = None) -> RetentionStats:
    """Remove what the retention periods say is no longer needed; returns what was removed."""
    from hub.privacy.erasure import finish_erasures
    from hub.privacy.inventory import personal_row_counts

    cfg = cfg or RetentionConfig()
    now = now or datetime.now(UTC).replace(tzinfo=None)
    stats = RetentionStats()
    pruned_hash = payload_hash(PRUNED)
    with store.begin() as conn:
        cut = _cutoff(cfg.raw_payloads_days, now)
        if cut is not None:
            # the hash of what the source sent is kept: only the payload itself goes
            since, full_at = _landing_window(conn, now)
            expired = [landing.c.landed_at < cut] if since is None else [landing.c.landed_at < cut,
                                                                           landing.c.landed_at >= since]
            stats.payloads_pruned = conn.execute(
                landing.update().where(*expired, landing.c.staged_hash == landing.c.payload_hash,
                                       landing.c.payload["_pruned"].as_boolean().is_(None))
                .values(payload=PRUNED)).rowcount or 0
            write_cursor(conn, "hub", RETENTION_ENTITY, {
                "landing_cut": cut.isoformat(),
                "landing_full_at": (now if since is None else full_at).isoformat()})
        cut = _cutoff(cfg.quarantine_days, now)
        if cut is not None:
            stats.quarantine_pruned = conn.execute(
                quarantine.update().where(quarantine.c.quarantined_at < cut,
                                          quarantine.c.payload_hash != pruned_hash)
                .values(payload=PRUNED, payload_hash=pruned_hash)).rowcount or 0
        cut = _cutoff(cfg.push_log_days, now)
        if cut is not None:
            stats.push_results_deleted = conn.execute(
                push_result.delete().where(push_result.c.at < cut)).rowcount or 0
            stats.outbox_rows_deleted = conn.execute(
                push_outbox.delete().where(push_outbox.c.updated_at < cut, push_outbox.c.status.in_(FINISHED)
                                           )).rowcount or 0
        cut = _cutoff(cfg.tombstones_days, now)
        if cut is not None:
            stats.tombstones_deleted = conn.execute(
                source_tombstone.delete().where(source_tombstone.c.detected_at < cut,
                                                source_tombstone.c.applied_at.is_not(None),
                                                source_tombstone.c.kind.in_(sorted(GONE)))).rowcount or 0
    stats.erasures_finished = finish_erasures(store)
    stats.personal_rows = personal_row_counts(store)
    return stats


