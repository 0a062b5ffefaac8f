"""The merge/split brake: before anything is pushed, a run whose golden layer changed more than the data
supports stops and waits for a person.

Two measures, both against the golden layer *as last accepted* (the last evaluation that passed, or the one a
person released) — so a brake that tripped keeps holding on the next runs until someone decides, and a run that
undoes a bad merge is judged on the net change:

1. **Merge/split rate.** Golden customers of the accepted state whose records are now split over several golden
   customers, or now share one with another golden customer's records, as a share of the accepted golden
   customers. Trips above ``quality.brake.max_merge_split_share`` (and at least ``min_merge_split`` of them).
2. **Unsupported consolidation** — what stops a *first* sync (no accepted state yet) or a new source. A record
   is newly consolidated when it now shares a golden customer with a record it was not with before. It is
   *supported* when it agrees with one of its fellow records on a strong identifier: the same e-mail, phone
   (E.164), national id, external id (WeChat unionid …) or the same name with the same birth date — counting
   only values held by at most ``shared_value_limit`` records, so a placeholder e-mail shared by 800 parties
   is no evidence. A real ERP's first sync that folded 1,282 of 1,501 distinct parties into others by similar
   names and a placeholder e-mail is almost entirely unsupported; the built-in sandbox, where people really
   recur across systems, is 85 % supported. Trips when the unsupported share exceeds
   ``max_unsupported_share`` overall or for one source (``quality.sources.<name>.max_unsupported_share``), once
   at least ``min_consolidated`` records were consolidated.

A person releases the brake with ``hub quality release --by NAME [--note TEXT]`` (or switches it off with
``quality.brake.enabled: false``); the next sync then pushes. Every evaluation is a row in ``push_brake``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa

from hub.dedupe.arrays import distinct
from hub.quality.config import QualityConfig
from hub.quality.identifiers import identifier_digests
from hub.store import (
    Store,
    as_text,
    chunked,
    gc_paused,
    json_value,
    jsonable,
    match_run,
    push_brake,
    staged_record,
    xref,
)

RELEASE_COMMAND = "hub quality release --by YOUR_NAME --note 'why this is right'"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class BrakeOutcome:
    stopped: bool
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    golden_run: int | None = None
    release_command: str = RELEASE_COMMAND

    def as_dict(self) -> dict[str, Any]:
        return {"stopped": self.stopped, "reasons": list(self.reasons), "figures": dict(self.figures),
                "golden_run": self.golden_run, "release_command": self.release_command}


# -- evidence --------------------------------------------------------------------------------------------------------


def _open_at(at: datetime | None) -> Any:
    """The cross-references open now (at=None) or at ``at``."""
    if at is None:
        return xref.c.valid_to.is_(None)
    return sa.and_(xref.c.valid_from <= at, sa.or_(xref.c.valid_to.is_(None), xref.c.valid_to > at))


def _membership(conn: sa.Connection, at: datetime | None) -> dict[str, str]:
    """record key -> golden id, now (at=None) or as it was at ``at``."""
    return dict(conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(_open_at(at))).all())


def _groups(membership: Mapping[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for key, gid in membership.items():
        out[gid].add(key)
    return out


def _moved_since(conn: sa.Connection, at: datetime) -> set[str]:
    """Record keys whose golden customer changed since ``at``: a cross-reference opened or closed after it."""
    # no DISTINCT (the set dedupes): with it SQLite read every cross-reference through ix_xref_record instead
    # of the two time indexes
    return set(conn.execute(sa.select(xref.c.record_key).where(
        sa.or_(xref.c.valid_from > at, xref.c.valid_to > at))).scalars())


def _membership_of(conn: sa.Connection, at: datetime | None, *, keys: Iterable[str] = (),
                   golden_ids: Iterable[str] = ()) -> dict[str, str]:
    """``_membership`` of the given record keys, and of every record of the given golden ids."""
    q = sa.select(xref.c.record_key, xref.c.golden_id).where(_open_at(at))
    out: dict[str, str] = {}
    for part in chunked(sorted(set(keys)), 500):
        out.update(conn.execute(q.where(xref.c.record_key.in_(part))).all())
    for part in chunked(sorted(set(golden_ids)), 500):
        out.update(conn.execute(q.where(xref.c.golden_id.in_(part))).all())
    return out


def _around_moves(conn: sa.Connection, at: datetime) -> tuple[dict[str, str], dict[str, str], set[str], set[str]]:
    """The memberships (now, at ``at``) of what a move since ``at`` can touch, and the golden ids whose groups
    they hold complete: (now_of, old_of, accepted golden customers to judge, current ones to judge).

    Only an accepted golden customer with a record that moved, or now sharing a golden customer with one, can
    have been merged or split; only a current golden customer holding a moved record can hold a record newly
    together with another. Everything else is where it was at ``at``."""
    moved = _moved_since(conn, at)
    now_of = _membership_of(conn, None, keys=moved)
    touched_now = set(now_of.values())
    now_of.update(_membership_of(conn, None, golden_ids=touched_now))
    old_of = _membership_of(conn, at, keys=now_of.keys() | moved)
    judged_old = set(old_of.values())
    old_of.update(_membership_of(conn, at, golden_ids=judged_old))
    # where the records of those accepted golden customers are now, whole groups (a merge is seen from them)
    now_of.update(_membership_of(conn, None, keys=old_of.keys() - now_of.keys()))
    now_of.update(_membership_of(conn, None, golden_ids=set(now_of.values()) - touched_now))
    old_of.update(_membership_of(conn, at, keys=now_of.keys() - old_of.keys()))
    return now_of, old_of, judged_old, touched_now


@gc_paused()
def measure(conn: sa.Connection, cfg: QualityConfig, accepted_at: datetime | None) -> dict[str, Any]:
    """Both measures of the golden layer now against the one accepted at ``accepted_at`` (None: first sync).

    Against an accepted state only the golden customers around the records that moved since are read
    (``_around_moves``): an incremental sync's brake reads what changed, not every cross-reference. How many
    records hold each identifier is counted over every staged customer, from the hashes staging keeps
    (``_rare_identifiers``: hashes it has to work out are kept, and ``conn`` committed)."""
    if accepted_at is None:
        now_of, old_of = _membership(conn, None), {}
        judged_old: set[str] | None = None
        judged_now: set[str] | None = None
        base = 0
    else:
        now_of, old_of, judged_old, judged_now = _around_moves(conn, accepted_at)
        base = conn.execute(sa.select(sa.func.count(sa.distinct(xref.c.golden_id)))
                            .where(_open_at(accepted_at))).scalar_one()
    now_groups, old_groups = _groups(now_of), _groups(old_of)

    # 1. merge/split rate of the accepted golden customers
    changed = 0
    for gid, keys in old_groups.items():
        if judged_old is not None and gid not in judged_old:
            continue
        current = {now_of[k] for k in keys if k in now_of}
        if len(current) > 1:
            changed += 1  # split
            continue
        if current:
            (cur,) = current
            if any(k in old_of and old_of[k] != gid for k in now_groups[cur]):
                changed += 1  # merged with another accepted golden customer (new records joining are judged below)
    if judged_old is None:
        base = len(old_groups)

    # 2. newly consolidated records and whether an identifier supports them
    new_together: list[str] = []
    for gid, keys in now_groups.items():
        if len(keys) < 2 or (judged_now is not None and gid not in judged_now):
            continue
        for k in keys:
            # it shares its golden customer with someone it was not with before (a record not in the accepted
            # layer was with no one: this golden customer holds two or more)
            if k not in old_of or keys - old_groups.get(old_of[k], set()):
                new_together.append(k)
    # the identifiers of the records that joined someone and of their fellows only (every record's would be
    # gigabytes at a million customers); how many records hold each identifier is counted over everyone
    needed: set[str] = set()
    for gid in {now_of[k] for k in new_together}:
        needed.update(now_groups[gid])
    # nothing newly consolidated (an incremental sync that only changed values): no evidence to weigh
    supported = _supported(conn, needed, now_of, cfg.brake.shared_value_limit) if new_together else set()
    consolidated: Counter[str] = Counter()
    unsupported: Counter[str] = Counter()
    # records per source: counted by the database (now_of holds only the records around the moves)
    records: Counter[str] = Counter({source: int(n) for source, n in conn.execute(
        sa.select(xref.c.source, sa.func.count()).where(xref.c.valid_to.is_(None)).group_by(xref.c.source))})
    unsupported_in: Counter[str] = Counter()
    for k in new_together:
        source = k.partition(":")[0]
        consolidated[source] += 1
        if k not in supported:
            gid = now_of[k]
            unsupported[source] += 1
            unsupported_in[gid] += 1
    # where to look first: the golden customers holding most records without evidence (ids only)
    largest = [{"golden_id": gid, "records": len(now_groups[gid]), "unsupported": n,
                "sources": sorted({k.partition(":")[0] for k in now_groups[gid]})}
               for gid, n in sorted(unsupported_in.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    return {
        "accepted_golden_customers": base, "golden_customers_merged_or_split": changed,
        "merge_split_share": round(changed / base, 4) if base else 0.0,
        "records": sum(records.values()),
        "records_consolidated": sum(consolidated.values()),
        "records_consolidated_unsupported": sum(unsupported.values()),
        "unsupported_share": round(sum(unsupported.values()) / sum(consolidated.values()), 4)
        if consolidated else 0.0,
        "largest_unsupported": largest,
        "sources": {s: {"records": records[s], "consolidated": consolidated[s], "unsupported": unsupported[s],
                        "unsupported_share": round(unsupported[s] / consolidated[s], 4) if consolidated[s] else 0.0}
                    for s in sorted(records)},
    }


# -- how many records hold an identifier -----------------------------------------------------------------------------

# The one pass of the brake over every staged customer (1.6M at a million people) reads the identifier hashes
# staging keeps with each record (``staged_record.identifier_hashes``, 8 bytes an identifier) and counts them in
# numpy: decoding every record's JSON instead was 1.8 s of the brake's 2.4 at 100k records. A record kept without
# them (staged by an older version, or written by something else than staging) is decoded here once, and its
# hashes are kept for the next pass.
KEEP_CHUNK = 5000


def _digests(raw: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype="<u8")


def _held_identifiers(conn: sa.Connection, needed: set[str]
                      ) -> tuple[np.ndarray, dict[str, np.ndarray], list[tuple[str, bytes]]]:
    """The identifier hashes of every staged customer, one entry per record holding one; those of each record in
    ``needed``; and (record key, hashes) of the records that had none kept (worked out here from the record)."""
    sr = staged_record.c
    # the record's text only where no hashes are kept (SQLite and PostgreSQL read no more of the row than that)
    record = sa.case((sr.identifier_hashes.is_(None), as_text(sr.record, conn.dialect.name)), else_=sa.null())
    held: list[bytes] = []
    mine: dict[str, np.ndarray] = {}
    computed: list[tuple[str, bytes]] = []
    rows = conn.execute(sa.select(sr.record_key, sr.identifier_hashes, record).where(sr.entity == "customers")
                        .execution_options(yield_per=10_000))
    for key, kept, text in rows:
        if kept is None:
            kept = identifier_digests(json_value(text) or {})
            computed.append((key, kept))
        held.append(kept)
        if key in needed:
            mine[key] = _digests(kept)
    return _digests(b"".join(held)), mine, computed


def _keep_identifiers(conn: sa.Connection, computed: list[tuple[str, bytes]]) -> None:
    """Keep the identifier hashes worked out from records that had none (chunks of ``KEEP_CHUNK``)."""
    sr = staged_record.c
    update = (staged_record.update().where(sr.entity == "customers", sr.record_key == sa.bindparam("b_key"))
              .values(identifier_hashes=sa.bindparam("b_hashes")))
    for part in chunked(computed, KEEP_CHUNK):
        conn.execute(update, [{"b_key": key, "b_hashes": hashes} for key, hashes in part])


def _supported(conn: sa.Connection, needed: set[str], now_of: Mapping[str, str], limit: int) -> set[str]:
    """The records of ``needed`` that share an identifier held by at most ``limit`` staged customers with a
    fellow record of their golden customer (``now_of``): each record's identifiers are a set, so one identifier
    held by at least two records of a golden customer supports both. Keeps the hashes it had to work out from
    the records (``conn`` is committed then).

    In numpy, over every (record, identifier) of ``needed`` at once: per record a set of rare hashes, a counter
    of (golden customer, hash) and a look-up per record were a third of the brake (100k people)."""
    held, mine, computed = _held_identifiers(conn, needed)
    if computed:
        _keep_identifiers(conn, computed)
        conn.commit()
    keys = list(mine)
    if not keys:
        return set()
    ids, holders = np.unique(held, return_counts=True)
    rare = ids[holders <= limit]  # sorted
    hashes = np.concatenate([mine[k] for k in keys])
    rec = np.repeat(np.arange(len(keys)), [len(mine[k]) for k in keys])
    at = np.minimum(np.searchsorted(rare, hashes), max(len(rare) - 1, 0))
    keep = (rare[at] == hashes) if len(rare) else np.zeros(len(hashes), dtype=bool)
    rec, hashes = rec[keep], hashes[keep]
    codes: dict[str, int] = {}
    golden = np.fromiter((codes.setdefault(now_of[k], len(codes)) for k in keys), dtype=np.int64, count=len(keys))
    # (record, hash) once per record, then how many records of the golden customer hold each hash (lexsort and
    # runs: np.unique over rows of pairs took 3.6x as long)
    order = np.lexsort((hashes, rec))
    rec, hashes = rec[order], hashes[order]
    first = _run_starts(rec, hashes)
    rec, hashes = rec[first], hashes[first]
    g = golden[rec]
    order = np.lexsort((hashes, g))
    run = np.cumsum(_run_starts(g[order], hashes[order])) - 1
    shared = np.bincount(run, minlength=int(run[-1]) + 1 if len(run) else 0)[run] > 1
    return {keys[i] for i in distinct(rec[order][shared]).tolist()}


def _run_starts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Of pairs (a, b) sorted by both: True where a pair differs from the one before it (a run's first)."""
    start = np.ones(len(a), dtype=bool)
    start[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return start


def judge(figures: Mapping[str, Any], cfg: QualityConfig) -> list[str]:
    """Plain-language reasons to stop (empty: go on). No personal data: counts and source names only."""
    b = cfg.brake
    reasons = []
    share, changed, base = figures["merge_split_share"], figures["golden_customers_merged_or_split"], \
        figures["accepted_golden_customers"]
    if base and changed >= b.min_merge_split and share > b.max_merge_split_share:
        reasons.append(
            f"Since the last accepted sync, {changed:,} of {base:,} golden customers ({share:.1%}) were merged "
            f"with others or split — more than the {b.max_merge_split_share:.1%} allowed "
            "(hub.yaml quality.brake.max_merge_split_share).")
    total, unsup = figures["records_consolidated"], figures["records_consolidated_unsupported"]
    if total >= b.min_consolidated and figures["unsupported_share"] > b.max_unsupported_share:
        reasons.append(
            f"{total:,} records were consolidated into shared golden customers, and {unsup:,} of them "
            f"({figures['unsupported_share']:.1%}) share no e-mail, phone, national id or name with birth date "
            f"with any fellow record — more than the {b.max_unsupported_share:.0%} the data can support "
            "(quality.brake.max_unsupported_share).")
    for source, s in figures["sources"].items():
        limit = cfg.max_unsupported(source)
        if s["consolidated"] >= b.min_consolidated and s["unsupported_share"] > limit and \
                not any(f"{source}:" in r for r in reasons):
            reasons.append(
                f"{source}: {s['consolidated']:,} of its {s['records']:,} records "
                f"({s['consolidated'] / max(s['records'], 1):.0%}) were consolidated with other records, "
                f"{s['unsupported']:,} of them ({s['unsupported_share']:.0%}) without any agreeing identifier — "
                f"more than the {limit:.0%} allowed for this source.")
    return reasons


# -- state in the store --------------------------------------------------------------------------------------------


def _latest_golden_run(conn: sa.Connection) -> int | None:
    return conn.execute(sa.select(sa.func.max(match_run.c.id))
                        .where(match_run.c.kind == "golden", match_run.c.finished_at.is_not(None))).scalar()


def evaluate(store: Store, cfg: QualityConfig | None = None) -> BrakeOutcome:
    """Judge the golden layer before the push and record the verdict; a tripped brake holds until released."""
    cfg = cfg or QualityConfig()
    with store.engine.connect() as conn:
        golden_run = _latest_golden_run(conn)
        tripped = conn.execute(sa.select(push_brake).where(push_brake.c.status == "tripped")
                               .order_by(push_brake.c.id.desc()).limit(1)).first()
        accepted = conn.execute(sa.select(push_brake.c.evaluated_at).where(
            push_brake.c.status.in_(("passed", "released"))).order_by(push_brake.c.id.desc()).limit(1)).scalar()
    if not cfg.brake.enabled or golden_run is None:
        return BrakeOutcome(stopped=False, golden_run=golden_run,
                            reasons=[] if cfg.brake.enabled else ["brake switched off (quality.brake.enabled)"])
    if tripped is not None and tripped.golden_run == golden_run:
        return BrakeOutcome(True, list(tripped.reasons), dict(tripped.figures), golden_run)
    with store.engine.connect() as conn:
        figures = measure(conn, cfg, accepted)
    reasons = judge(figures, cfg)
    now = _now()
    with store.begin() as conn:
        # a newer evaluation replaces a still-open one: the next release accepts the state judged last
        conn.execute(push_brake.update().where(push_brake.c.status == "tripped").values(status="superseded"))
        conn.execute(push_brake.insert().values(
            golden_run=golden_run, status="tripped" if reasons else "passed", evaluated_at=now,
            reasons=reasons, figures=jsonable(figures)))
    return BrakeOutcome(bool(reasons), reasons, figures, golden_run)


def current(store: Store) -> BrakeOutcome | None:
    """The brake holding pushes now, if any (for the report and the summary)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(push_brake).where(push_brake.c.status == "tripped")
                           .order_by(push_brake.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    return BrakeOutcome(True, list(row.reasons), dict(row.figures), row.golden_run)


def release(store: Store, by: str, note: str | None = None) -> int:
    """A person accepts the golden layer as it was judged: the next sync pushes. Returns rows released."""
    with store.begin() as conn:
        return conn.execute(push_brake.update().where(push_brake.c.status == "tripped").values(
            status="released", released_at=_now(), released_by=by[:128], note=note)).rowcount


def history(store: Store, limit: int = 10) -> Iterable[Any]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(push_brake).order_by(push_brake.c.id.desc()).limit(limit)).all()
