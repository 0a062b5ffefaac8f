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

from hub import c360_summary
from hub.c360_summary import rfm_segment
from hub.store import (
    Store,
    as_text,
    chunked,
    customer_360,
    customer_360_summary,
    customer_base_snapshot,
    golden_customer,
    json_value,
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


# golden customers as the figures count them: how many, tier, stage, segment, their monetary value together,
# frequency (or the funnel step it reaches: 0, 1, 2 or 4+ orders), region, sources and (orders, calls, social).
# A row of the views is one golden customer; a row of the summary is a group of them (counted in SQL)
_Row = tuple[int, str, str, str, float, int, str | None, list[str], tuple[Any, Any, Any]]
# golden id -> (RFM segment, tier, stage): what the snapshot keeps per customer for the next report's movement
_State = dict[str, tuple[str, str, str]]


def _summary_rows(store: Store) -> tuple[list[_Row], _State]:
    """The golden customers from the kept 360 summary (brought up to date first: only rewritten views read),
    counted per group in SQL (a million customers are a few thousand groups), and each one's state."""
    c360_summary.refresh(store)
    s = customer_360_summary.c
    # the funnel steps need only whether a customer has 0, 1, 2-3 or 4+ orders
    step = sa.case((s.frequency >= 4, 4), (s.frequency >= 2, 2), (s.frequency >= 1, 1), else_=0)
    keys = (s.value_tier, s.lifecycle, s.segment, step, s.region, s.sources, s.has_orders, s.has_calls,
            s.has_social)
    sources: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        rows = [(n, tier or "none", stage or "prospect", seg or "-", float(monetary or 0), int(freq or 0), region,
                 sources.setdefault(src, json.loads(src)), (orders, calls, social))
                for tier, stage, seg, freq, region, src, orders, calls, social, n, monetary in conn.execute(
                    sa.select(*keys, sa.func.count(), sa.func.sum(s.monetary)).group_by(*keys))]
        state = {gid: (rfm, tier or "none", stage or "prospect") for gid, rfm, tier, stage in conn.execute(
            sa.select(s.golden_id, s.rfm_segment, s.value_tier, s.lifecycle))}
    return rows, state


def _view_rows(store: Store) -> tuple[list[_Row], _State]:
    """Every golden customer from the 360 views themselves, in the order the table is read, and each one's
    state."""
    out: list[_Row] = []
    state: _State = {}
    with store.engine.connect() as conn:
        for gid, text in conn.execute(sa.select(customer_360.c.golden_id,
                                                as_text(customer_360.c.record, conn.dialect.name))
                                      .execution_options(yield_per=5000)):
            rec = json_value(text) or {}
            rfm = rec.get("rfm") or {}
            profile = rec.get("profile") or {}
            address = profile.get("address") or {}
            tier, stage = rec.get("value_tier") or "none", rec.get("lifecycle") or "prospect"
            out.append((1, tier, stage, rec.get("segment") or "-", float(rfm.get("monetary") or 0),
                        int(rfm.get("frequency") or 0), address.get("region"), list(profile.get("sources") or []),
                        (rec.get("orders_count"), rec.get("calls_count"), rec.get("social_follows"))))
            state[gid] = (rfm_segment(rfm.get("r_score"), rfm.get("f_score")), tier, stage)
    return out, state


def _customer_base(store: Store, *, update_snapshot: bool) -> dict[str, Any]:
    rows, now_state = _summary_rows(store)
    figures = _tally(rows)
    if figures is None:
        # segments with as many customers as each other are listed in the order the views are read first:
        # that order is the 360 table's, which only reading it gives
        rows, now_state = _view_rows(store)
        figures = _tally(rows, ties=True)
    assert figures is not None
    with store.engine.connect() as conn:
        previous = {gid: (s, t, lc) for gid, s, t, lc in conn.execute(
            sa.select(customer_base_snapshot.c.golden_id, customer_base_snapshot.c.rfm_segment,
                      customer_base_snapshot.c.value_tier, customer_base_snapshot.c.lifecycle))}
        merged_into = dict(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.merged_into)
                                        .where(golden_customer.c.status == "retired",
                                               golden_customer.c.merged_into.is_not(None))).all())
    figures["rfm_movement"] = _movement(previous, now_state, merged_into)
    if update_snapshot:
        _save_snapshot(store, previous, now_state)
    figures["_now_state"] = now_state
    return figures


def _tally(rows: list[_Row], *, ties: bool = False) -> dict[str, Any] | None:
    """The figures of ``rows``; None when two segments hold as many customers (unless ``ties``: the rows are
    the views in the 360 table's order, which decides their order)."""
    tiers: Counter[str] = Counter()
    revenue: dict[str, float] = defaultdict(float)
    lifecycle: Counter[str] = Counter()
    funnel = Counter()
    segments: Counter[str] = Counter()
    by_region: dict[str, Counter[str]] = defaultdict(Counter)
    by_source: dict[str, Counter[str]] = defaultdict(Counter)
    by_channel: dict[str, Counter[str]] = defaultdict(Counter)
    for n, tier, stage, seg, monetary, freq, region, sources, channels in rows:
        tiers[tier] += n
        revenue[tier] += monetary
        lifecycle[stage] += n
        funnel["known"] += n
        funnel["bought"] += n * (freq >= 1)
        funnel["bought_again"] += n * (freq >= 2)
        funnel["regular"] += n * (freq >= 4)
        funnel["active_now"] += n * (stage in ("new", "active"))
        segments[seg] += n
        by_region[region or "(unknown)"][seg] += n
        for source in sources:
            by_source[source][seg] += n
        for channel, has in zip(CHANNELS, channels, strict=True):
            if has:
                by_channel[channel][seg] += n
    if not ties and len(set(segments.values())) < len(segments):
        return None
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
