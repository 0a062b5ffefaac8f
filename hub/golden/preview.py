"""Preview a survivorship rule change before applying it (read-only).

``preview(store, new_rules)`` rebuilds every active golden record (or the first ``limit``) in memory with the
new rules and compares each golden field with what is stored: how many golden values would change, and
examples with the winning source and rule. Wired to ``hub golden preview --rules FILE`` by the lead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.golden.build import _members
from hub.golden.config import SurvivorshipConfig, load_survivorship
from hub.golden.survivorship import Survivor
from hub.store import Store, golden_customer, xref

COMPARED_FIELDS = (
    "full_name", "given_name", "family_name", "name_key", "company", "primary_email", "emails", "primary_phone",
    "phones", "birth_date", "gender", "national_id", "address", "addresses", "consent", "quality_score",
)


@dataclass
class FieldChange:
    changed: int = 0
    examples: list[dict] = field(default_factory=list)  # golden_id, old, new, source, rule


@dataclass
class PreviewReport:
    golden_checked: int = 0
    golden_changed: int = 0
    fields: dict[str, FieldChange] = field(default_factory=dict)

    def markdown(self) -> str:
        share = (100.0 * self.golden_changed / self.golden_checked) if self.golden_checked else 0.0
        lines = [
            f"**Survivorship preview**: {self.golden_changed} of {self.golden_checked} golden records would change "
            f"({share:.1f} %)",
            "",
            "| field | golden values changed | example (golden_id: old -> new, winner) |",
            "|---|---|---|",
        ]
        for f in COMPARED_FIELDS:
            fc = self.fields.get(f)
            if not fc or not fc.changed:
                continue
            ex = fc.examples[0] if fc.examples else None
            shown = (
                f"{ex['golden_id']}: {_short(ex['old'])} -> {_short(ex['new'])}"
                + (f" ({ex['source']}, {ex['rule']})" if ex.get("source") else "")
                if ex else ""
            )
            lines.append(f"| {f} | {fc.changed} | {shown} |")
        if not self.golden_changed:
            lines.append("| (none) | 0 | |")
        return "\n".join(lines)


def _short(v: Any, n: int = 60) -> str:
    s = "∅" if v is None or v == [] else str(v)
    return (s[: n - 1] + "…" if len(s) > n else s).replace("|", "\\|")


def preview(
    store: Store,
    new_rules: SurvivorshipConfig | dict | str | Path | None,
    *,
    limit: int | None = None,
    examples: int = 5,
    batch: int = 2000,
) -> PreviewReport:
    """What applying ``new_rules`` would change in the stored golden records (nothing is written)."""
    survivor = Survivor(load_survivorship(new_rules))
    now = datetime.now(UTC).replace(tzinfo=None)
    report = PreviewReport(fields={f: FieldChange() for f in COMPARED_FIELDS})
    with store.engine.connect() as conn:
        last = ""
        remaining = limit
        while remaining is None or remaining > 0:
            # keyset pagination: a million golden records never sit in memory at once
            size = batch if remaining is None else min(batch, remaining)
            part = conn.execute(
                sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                .where(golden_customer.c.status == "active", golden_customer.c.golden_id > last)
                .order_by(golden_customer.c.golden_id)
                .limit(size)
            ).all()
            if not part:
                break
            last = part[-1][0]
            if remaining is not None:
                remaining -= len(part)
            gids = [g for g, _ in part]
            members_of: dict[str, list[str]] = defaultdict(list)
            for i in range(0, len(gids), 500):
                for r, g in conn.execute(
                    sa.select(xref.c.record_key, xref.c.golden_id).where(
                        xref.c.valid_to.is_(None), xref.c.golden_id.in_(gids[i : i + 500])
                    )
                ):
                    members_of[g].append(r)
            members = _members(conn, (r for rs in members_of.values() for r in rs))
            for gid, old in part:
                ms = [members[r] for r in sorted(members_of.get(gid, ())) if r in members]
                if not ms:
                    continue
                new_golden = survivor.survive(gid, ms, now)
                new = new_golden.record
                report.golden_checked += 1
                any_change = False
                for f in COMPARED_FIELDS:
                    if (old or {}).get(f) == new.get(f):
                        continue
                    any_change = True
                    fc = report.fields[f]
                    fc.changed += 1
                    if len(fc.examples) < examples:
                        lin = new_golden.lineage.get(f) or new_golden.lineage.get(f"{f}[0]") or {}
                        fc.examples.append({
                            "golden_id": gid, "old": (old or {}).get(f), "new": new.get(f),
                            "source": lin.get("source"), "rule": lin.get("rule"), "record_key": lin.get("record_key"),
                        })
                report.golden_changed += any_change
    return report
