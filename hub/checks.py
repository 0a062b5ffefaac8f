"""Data checks run before the hub writes anything back (wired as Dagster asset checks in hub/assets.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from hub.store import Store, golden_customer, push_outbox, quarantine, staged_record, xref


@dataclass
class CheckOutcome:
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = "**passed**" if self.passed else "**failed**"
        rows = "\n".join(f"- {p}" for p in self.problems[:20])
        return f"{head}\n\n{rows}" if rows else head


def golden_consistency(store: Store) -> CheckOutcome:
    """Every staged customer has exactly one open xref to an active golden id; no national-id conflicts."""
    with store.engine.connect() as conn:
        staged = {
            k
            for (k,) in conn.execute(
                sa.select(staged_record.c.record_key).where(staged_record.c.entity == "customers")
            )
        }
        open_rows = conn.execute(
            sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))
        ).all()
        active = {
            g for (g,) in conn.execute(
                sa.select(golden_customer.c.golden_id).where(golden_customer.c.status == "active")
            )
        }
        records = conn.execute(
            sa.select(staged_record.c.record_key, staged_record.c.record).where(
                staged_record.c.entity == "customers"
            )
        ).all()
    per_record = Counter(k for k, _ in open_rows)
    golden_of = {k: g for k, g in open_rows}
    unmapped = sorted(staged - per_record.keys())
    multiple = sorted(k for k, n in per_record.items() if n > 1)
    dangling = sorted({g for _, g in open_rows if g not in active})
    ids_per_golden: dict[str, set[str]] = {}
    for key, rec in records:
        nid = (rec or {}).get("national_id")
        if nid and key in golden_of:
            ids_per_golden.setdefault(golden_of[key], set()).add(nid)
    conflicts = sorted(g for g, ids in ids_per_golden.items() if len(ids) > 1)
    problems = []
    if unmapped:
        problems.append(f"{len(unmapped)} staged customer records without a golden id (e.g. {unmapped[0]})")
    if multiple:
        problems.append(f"{len(multiple)} records with more than one open xref row (e.g. {multiple[0]})")
    if dangling:
        problems.append(f"{len(dangling)} xref rows point at retired or missing golden ids (e.g. {dangling[0]})")
    if conflicts:
        problems.append(f"{len(conflicts)} golden records hold two different national ids (e.g. {conflicts[0]})")
    return CheckOutcome(
        passed=not problems,
        metadata={
            "staged_customers": len(staged),
            "unmapped_records": len(unmapped),
            "records_with_multiple_xref": len(multiple),
            "dangling_xref_golden_ids": len(dangling),
            "national_id_conflicts": len(conflicts),
        },
        problems=problems,
    )


def quarantine_rate(store: Store, max_rate: float = 0.10) -> CheckOutcome:
    with store.engine.connect() as conn:
        staged = dict(
            conn.execute(
                sa.select(staged_record.c.source, sa.func.count())
                .where(staged_record.c.entity == "customers")
                .group_by(staged_record.c.source)
            ).all()
        )
        held = dict(
            conn.execute(
                sa.select(quarantine.c.source, sa.func.count())
                .where(quarantine.c.entity.in_(("customers", "followers")))
                .group_by(quarantine.c.source)
            ).all()
        )
    problems, meta = [], {}
    for source in sorted(set(staged) | set(held)):
        total = staged.get(source, 0) + held.get(source, 0)
        rate = held.get(source, 0) / total if total else 0.0
        meta[f"quarantine_rate_{source}"] = round(rate, 4)
        if rate > max_rate:
            problems.append(f"{source}: {rate:.1%} of customer records in quarantine (limit {max_rate:.0%})")
    return CheckOutcome(passed=not problems, metadata=meta, problems=problems)


def outbox_targets(store: Store, may_create: frozenset[str] = frozenset()) -> CheckOutcome:
    """Rows without a target record are creates: only targets configured with create_missing may have them."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(push_outbox.c.target, sa.func.count())
            .where(push_outbox.c.status.in_(("pending", "error")), push_outbox.c.target_id == "")
            .group_by(push_outbox.c.target)
        ).all()
    bad = {t: n for t, n in rows if t not in may_create}
    problems = [f"{n} pending rows for {t} with no target record (create not supported)" for t, n in bad.items()]
    return CheckOutcome(passed=not bad, metadata={"rows_without_target": sum(bad.values())}, problems=problems)
