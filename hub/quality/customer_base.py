"""The customer base as a CRM team looks at it, from the 360 view: the value pyramid, the lifecycle / sales
funnel, segments by region, source system and channel, and RFM movement since the previous report.

RFM segments (from the 1–5 recency and frequency quintile scores of customer_360):

| segment | recency | frequency |
|---|---|---|
| champions | 4–5 | 4–5 |
| loyal | 3–5 | 3–5 (not champions) |
| promising | 4–5 | 1–2 |
| needs attention | 3 | 1–2 |
| cannot lose | 1–2 | 4–5 |
| at risk | 1–2 | 3 |
| hibernating | 1–2 | 1–2 |
| no purchase | — | — |

Movement compares each golden customer's segment with the one stored at the previous report
(``customer_base_snapshot``); a customer whose golden id was merged into another is followed to its survivor.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.store import (
    Store,
    chunked,
    customer_360,
    customer_base_snapshot,
    golden_customer,
    read_cursor,
    table_fingerprint,
    write_cursor,
)

VALUE_TIERS = ("platinum", "gold", "silver", "bronze", "none")
LIFECYCLES = ("prospect", "new", "active", "at_risk", "lapsed")
RFM_SEGMENTS = ("champions", "loyal", "promising", "needs attention", "cannot lose", "at risk", "hibernating",
                "no purchase")
RFM_RANK = {s: i for i, s in enumerate(("hibernating", "at risk", "cannot lose", "needs attention", "promising",
                                        "loyal", "champions"))}
CHANNELS = {"orders": "bought (any system)", "calls": "called the call center", "social": "follows on social"}
TOP_REGIONS = 12


def rfm_segment(r: int | None, f: int | None) -> str:
    if r is None or f is None:
        return "no purchase"
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r >= 4:
        return "promising"
    if r == 3:
        return "needs attention"
    if f >= 4:
        return "cannot lose"
    if f == 3:
        return "at risk"
    return "hibernating"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# Reading every 360 row is the cost of this view (a million decoded records per report). When neither the view
# nor the snapshot changed since the last report, every figure is what it was and each customer kept its
# segment: the figures are kept in sync_state with that fingerprint.
KEPT_ENTITY = "_customer_base"


def _inputs(conn: sa.Connection) -> str:
    c, s = customer_360.c, customer_base_snapshot.c
    return table_fingerprint(conn, sa.select(sa.func.count(), sa.func.max(c.updated_at)),
                             sa.select(sa.func.count(), sa.func.max(s.updated_at)))


def _unchanged_movement(rfm_counts: Mapping[str, int]) -> dict[str, Any]:
    total = sum(rfm_counts.values())
    if not total:
        return {"compared": False, "matrix": {}, "up": 0, "down": 0, "same": 0, "new": 0, "gone": 0}
    return {"compared": True, "matrix": {seg: {seg: n} for seg, n in rfm_counts.items()}, "up": 0, "down": 0,
            "same": total, "new": 0, "gone": 0}


def customer_base(store: Store, *, update_snapshot: bool = True) -> dict[str, Any]:
    """Every figure of the customer-base view, JSON-ready; stores this report's positions for the next one."""
    if update_snapshot:
        with store.engine.connect() as conn:
            kept = read_cursor(conn, "hub", KEPT_ENTITY)
            if kept and kept.get("fingerprint") == _inputs(conn):
                return {**kept["figures"], "rfm_movement": _unchanged_movement(kept["rfm_counts"])}
    figures = _customer_base(store, update_snapshot=update_snapshot)
    if update_snapshot:
        rfm_counts = dict(Counter(seg for seg, _, _ in figures.pop("_now_state").values()))
        cursor = {"figures": {k: v for k, v in figures.items() if k != "rfm_movement"}, "rfm_counts": rfm_counts}
        with store.begin() as conn:
            cursor["fingerprint"] = _inputs(conn)
            write_cursor(conn, "hub", KEPT_ENTITY, json.loads(json.dumps(cursor, default=str)))
    else:
        figures.pop("_now_state")
    return figures


def _customer_base(store: Store, *, update_snapshot: bool) -> dict[str, Any]:
    tiers: Counter[str] = Counter()
    revenue: dict[str, float] = defaultdict(float)
    lifecycle: Counter[str] = Counter()
    funnel = Counter()
    segments: Counter[str] = Counter()
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: dict[str, Counter[str]] = defaultdict(Counter)
    now_state: dict[str, tuple[str, str, str]] = {}
    with store.engine.connect() as conn:
        for gid, rec in conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record)
                                     .execution_options(yield_per=5000)):
            rec = rec or {}
            rfm = rec.get("rfm") or {}
            tier, stage = rec.get("value_tier") or "none", rec.get("lifecycle") or "prospect"
            seg = rec.get("segment") or "-"
            tiers[tier] += 1
            revenue[tier] += float(rfm.get("monetary") or 0)
            lifecycle[stage] += 1
            freq = int(rfm.get("frequency") or 0)
            funnel["known"] += 1
            funnel["bought"] += freq >= 1
            funnel["bought_again"] += freq >= 2
            funnel["regular"] += freq >= 4
            funnel["active_now"] += stage in ("new", "active")
            segments[seg] += 1
            profile = rec.get("profile") or {}
            address = profile.get("address") or {}
            by_region[address.get("region") or "(unknown)"][seg] += 1
            for source in profile.get("sources") or []:
                by_source[source][seg] += 1
            for channel, has in (("orders", rec.get("orders_count")), ("calls", rec.get("calls_count")),
                                 ("social", rec.get("social_follows"))):
                if has:
                    by_channel[channel][seg] += 1
            now_state[gid] = (rfm_segment(rfm.get("r_score"), rfm.get("f_score")), tier, stage)
        previous = {gid: (s, t, lc) for gid, s, t, lc in conn.execute(
            sa.select(customer_base_snapshot.c.golden_id, customer_base_snapshot.c.rfm_segment,
                      customer_base_snapshot.c.value_tier, customer_base_snapshot.c.lifecycle))}
        merged_into = dict(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.merged_into)
                                        .where(golden_customer.c.status == "retired",
                                               golden_customer.c.merged_into.is_not(None))).all())
    movement = _movement(previous, now_state, merged_into)
    if update_snapshot:
        _save_snapshot(store, previous, now_state)
    regions = sorted(by_region, key=lambda r: (r == "(unknown)", -sum(by_region[r].values()), r))
    shown = regions[:TOP_REGIONS]
    other: Counter[str] = Counter()
    for r in regions[TOP_REGIONS:]:
        other.update(by_region[r])
    seg_order = [s for s, _ in segments.most_common()]
    table = {r: dict(by_region[r]) for r in shown}
    if other:
        table[f"{len(regions) - TOP_REGIONS} other regions"] = dict(other)
    return {
        "customers": sum(tiers.values()),
        "value_pyramid": [{"tier": t, "customers": tiers.get(t, 0), "revenue": round(revenue.get(t, 0.0), 2)}
                          for t in VALUE_TIERS],
        "lifecycle": {s: lifecycle.get(s, 0) for s in LIFECYCLES},
        "funnel": [{"step": "known customers", "customers": funnel["known"]},
                   {"step": "bought at least once", "customers": funnel["bought"]},
                   {"step": "bought again", "customers": funnel["bought_again"]},
                   {"step": "regular (4+ orders)", "customers": funnel["regular"]},
                   {"step": "active now (new or active)", "customers": funnel["active_now"]}],
        "segments": seg_order,
        "by_region": table,
        "by_source": {s: dict(c) for s, c in sorted(by_source.items())},
        "by_channel": {CHANNELS[c]: dict(by_channel[c]) for c in CHANNELS},
        "rfm_movement": movement,
        "_now_state": now_state,
    }


def _movement(previous: Mapping[str, tuple], now: Mapping[str, tuple], merged_into: Mapping[str, str]
              ) -> dict[str, Any]:
    if not previous:
        return {"compared": False, "matrix": {}, "up": 0, "down": 0, "same": 0, "new": len(now), "gone": 0}
    def survivor(gid: str) -> str:
        seen = set()
        while gid in merged_into and gid not in seen:
            seen.add(gid)
            gid = merged_into[gid]
        return gid

    before: dict[str, str] = {}
    for gid, (seg, _, _) in previous.items():
        before.setdefault(survivor(gid), seg)
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    up = down = same = new = 0
    for gid, (seg, _, _) in now.items():
        old = before.get(gid)
        if old is None:
            new += 1
            continue
        matrix[old][seg] += 1
        a, b = RFM_RANK.get(old), RFM_RANK.get(seg)
        if old == seg:
            same += 1
        elif a is not None and (b is None or b < a):
            down += 1
        else:
            up += 1
    gone = sum(1 for gid in before if gid not in now)
    return {"compared": True, "matrix": {o: dict(c) for o, c in matrix.items()}, "up": up, "down": down,
            "same": same, "new": new, "gone": gone}


def _save_snapshot(store: Store, previous: Mapping[str, tuple], now: Mapping[str, tuple]) -> None:
    at = _now()
    changed = [g for g, v in now.items() if previous.get(g) != v]
    gone = [g for g in previous if g not in now]
    with store.begin() as conn:
        for chunk in chunked(sorted(set(changed) | set(gone)), 1000):
            conn.execute(customer_base_snapshot.delete().where(customer_base_snapshot.c.golden_id.in_(chunk)))
        rows = [{"golden_id": g, "rfm_segment": now[g][0], "value_tier": now[g][1], "lifecycle": now[g][2],
                 "updated_at": at} for g in changed]
        for chunk in chunked(rows, 5000):
            conn.execute(customer_base_snapshot.insert(), list(chunk))
