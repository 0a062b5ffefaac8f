"""The numbers at the end of a sync, in words an operator understands: why N customer records became M golden
customers, what waits for a person, and whether the brake stopped the push. Used by `hub demo` / `hub sync`."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from hub.quality import brake
from hub.quality.codes import describe
from hub.store import Store, golden_customer, match_pair, quarantine, review_decision, staged_record, xref


def explain_golden(store: Store) -> list[str]:
    """People vs golden customers: records consolidated, left unmatched, held back, awaiting a steward."""
    with store.engine.connect() as conn:
        records = conn.execute(sa.select(sa.func.count()).select_from(staged_record)
                               .where(staged_record.c.entity == "customers")).scalar_one()
        systems = conn.execute(sa.select(sa.func.count(sa.distinct(staged_record.c.source)))
                               .where(staged_record.c.entity == "customers")).scalar_one()
        sizes = Counter(n for (n,) in conn.execute(
            sa.select(sa.func.count()).select_from(xref).where(xref.c.valid_to.is_(None))
            .group_by(xref.c.golden_id)))
        active = conn.execute(sa.select(sa.func.count()).select_from(golden_customer)
                              .where(golden_customer.c.status == "active")).scalar_one()
        reasons: Counter[str] = Counter()
        held = 0
        for (codes,) in conn.execute(sa.select(quarantine.c.reasons).where(
                quarantine.c.entity.in_(("customers", "followers")))):
            held += 1
            reasons.update(str(c) for c in (codes or [])[:1])
        decided = sa.exists().where(review_decision.c.left_key == match_pair.c.left_key,
                                    review_decision.c.right_key == match_pair.c.right_key)
        queue = conn.execute(sa.select(sa.func.count()).select_from(match_pair)
                             .where(match_pair.c.band == "review", ~decided)).scalar_one()
    alone = sizes.get(1, 0)
    shared = sum(n for size, n in sizes.items() if size > 1)
    consolidated = sum(size * n for size, n in sizes.items() if size > 1)
    lines = [f"{records:,} customer records from {systems} system{'s' if systems != 1 else ''} became "
             f"{active:,} golden customers:"]
    if consolidated:
        lines.append(f"  {consolidated:,} records were recognised as the same person and consolidated into "
                     f"{shared:,} golden customers ({consolidated / shared:.1f} records each on average);")
    lines.append(f"  {alone:,} records matched no other record and are a golden customer of their own "
                 "(a person only one system knows, or whose records differ too much to be sure);")
    if held:
        top, n = reasons.most_common(1)[0]
        lines.append(f"  {held:,} customer records are held in quarantine and not in any golden customer yet "
                     f"(most often: {describe(top).label.lower()}, {n:,});")
    lines.append(f"  {queue:,} pairs of records wait for a steward to decide whether they are the same person "
                 "(`hub review list`)." if queue else "  no pair waits for a steward.")
    return lines


def brake_lines(store: Store) -> list[str]:
    """Empty when pushes go ahead; otherwise why they stopped and how to release them."""
    held = brake.current(store)
    if held is None:
        return []
    return ["PUSHES STOPPED — the merge/split brake is waiting for a person:",
            *[f"  - {r}" for r in held.reasons],
            f"  Look at the report, then release with: {held.release_command}"]
