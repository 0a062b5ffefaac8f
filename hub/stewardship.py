"""How the steward review queue (hub.golden.review) is shown: in the terminal and as Dagster metadata.

The terminal view is for stewards and shows the records side by side; the Dagster metadata shows record keys,
weights and per-field comparison levels only — no personal data in the UI's event log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.golden import ReviewItem, pending_reviews, review_queue
from hub.privacy.refs import record_ref
from hub.store import Store

SHOWN_FIELDS = ("full_name", "emails", "phones", "birth_date", "national_id", "addresses")


def _value(record: dict | None, name: str) -> str:
    if not record:
        return ""
    value = record.get(name)
    if name == "phones":
        value = [p.get("e164") if isinstance(p, dict) else p for p in value or []]
    if name == "addresses":
        value = [" ".join(str(a.get(k) or "") for k in ("street", "city")).strip() for a in value or []]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v)
    return "" if value is None else str(value)


def _levels(item: ReviewItem) -> str:
    parts = []
    for name, detail in sorted(item.explanation.items()):
        if isinstance(detail, dict):
            parts.append(f"{name}={detail.get('level', '?')}({detail.get('weight', 0):+.1f})")
    return " ".join(parts)


def format_review_queue(items: list[ReviewItem]) -> str:
    """Terminal view: one block per pair with both records and the per-field evidence."""
    if not items:
        return "review queue is empty"
    blocks = []
    for item in items:
        lines = [
            f"PAIR {item.pair}   weight {item.match_weight:+.2f}   p={item.match_probability:.3f}   "
            f"golden {item.left_golden_id or '-'} / {item.right_golden_id or '-'}",
        ]
        for name in SHOWN_FIELDS:
            left, right = _value(item.left_record, name), _value(item.right_record, name)
            if left or right:
                lines.append(f"  {name:<12} {left[:40]:<40} | {right[:40]}")
        lines.append(f"  evidence     {_levels(item)}")
        blocks.append("\n".join(lines))
    blocks.append(f"\n{len(items)} pair(s). Decide with: hub review decide 'LEFT|RIGHT' match|no-match")
    return "\n\n".join(blocks)


SHOWN = 25  # pairs the asset's summary shows; `hub review list` shows the rest


@dataclass
class ReviewQueueStats:
    pending: int = 0
    items: list[ReviewItem] = field(default_factory=list)

    def markdown(self) -> str:
        if not self.items:
            return "No pairs awaiting review."
        # record keys may be openids or the e-mail / phone keys of imported files: the UI gets golden ids and
        # references; `hub review list` shows stewards the records themselves
        rows = ["| records | golden ids | weight | p | evidence |", "|---|---|---|---|---|"]
        for item in self.items[:SHOWN]:
            rows.append(
                f"| {record_ref(item.left_key)} / {record_ref(item.right_key)} | {item.left_golden_id or '-'} / "
                f"{item.right_golden_id or '-'} | {item.match_weight:+.2f} | {item.match_probability:.3f} | "
                f"{_levels(item)} |"
            )
        more = f"\n\n…and {self.pending - SHOWN} more (`hub review list`)" if self.pending > SHOWN else ""
        return "\n".join(rows) + more


def review_queue_summary(store: Store) -> ReviewQueueStats:
    """The queue's size and the pairs the summary shows. Counted in SQL, the shown pairs' records read alone:
    reading every pending pair with both records to show 25 took 66 s at a million customers."""
    return ReviewQueueStats(pending=pending_reviews(store), items=review_queue(store, limit=SHOWN))
