"""The dry-run preview of a push: what each target would get, without sending anything.

A dry run (``hub sync --dry-run``) pulls, stages, matches and builds golden records and the outbox as usual;
its push steps call ``preview(store, target)`` instead of sending. The outbox is only read, so the rows stay
pending and the next real sync sends exactly these rows.

Per target: how many rows would create a record (the target does not have one yet), update one, or remove
one (a caller-directory number no golden customer holds any more), and up to five samples each with the
field-level ``before → after``. "Before" is what the hub knows the target record holds: the hub's fields on
that record as the last pull saw them (or the last push wrote them), else the payload last pushed there, else
nothing (a first push). Personal data is masked (``陈*``, ``138****8000``, ``c***@example.cn``).

Shape: ``waiting_rows`` and ``holdings`` read the store; ``preview_target`` and ``TargetPreview.text`` are
plain functions of data; ``preview`` chains them. ``hub push log --status pending`` lists the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.connectors.base import field_changes
from hub.report import mask_email, mask_identifier, mask_name, mask_phone, scrub_text
from hub.store import Store, push_outbox

ACTIONS = ("create", "update", "remove")
SAMPLES = 5
_NAME_FIELDS = frozenset({"display_name", "full_name", "name", "company"})
# the hub's own fields: shown as they are (a golden id is not contact data, though it is mostly digits)
_HUB_FIELDS = frozenset({"golden_id", "segment", "value_tier", "lifecycle"})
_REMOVED = ("deleted", "erased")


@dataclass(frozen=True)
class WaitingRow:
    """An outbox row still to send (pending, in error awaiting retry, or claimed by a running push)."""

    outbox_id: int
    target: str
    target_id: str
    golden_id: str
    payload: dict
    status: str
    cause: str | None = None
    attempts: int = 0
    last_reason: str | None = None
    run_id: str | None = None
    created_at: datetime | None = None
    entity: str = ""


@dataclass
class TargetPreview:
    target: str
    create: int = 0
    update: int = 0
    remove: int = 0
    unchanged: int = 0  # rows whose fields the target already holds (e.g. only a field it does not store)
    samples: dict[str, list[tuple[str, dict[str, list]]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.create + self.update + self.remove + self.unchanged

    def text(self) -> str:
        """Plain text for the end summary: a count line, then the masked samples."""
        lines = [f"  {self.target:<12} would create {self.create}, update {self.update}, remove {self.remove}"
                 + (f" ({self.unchanged} rows change nothing the target stores)" if self.unchanged else "")]
        for action in ACTIONS:
            for record, changes in self.samples.get(action, []):
                lines.append(f"    {action} {record}: {format_changes(changes) or '(no field changes)'}")
        return "\n".join(lines)

    def markdown(self) -> str:
        head = (f"**Dry run — nothing sent to `{self.target}`.** Would create {self.create}, update "
                f"{self.update}, remove {self.remove}.")
        rows = [f"| {action} | {record} | {format_changes(changes)} |"
                for action in ACTIONS for record, changes in self.samples.get(action, [])]
        if not rows:
            return head
        return "\n".join([head, "", "| action | record | before → after |", "|---|---|---|", *rows])


# --------------------------------------------------------------------------------------------------------------
# Store reads


def waiting_rows(store: Store, target: str | None = None, limit: int | None = None,
                 statuses: Sequence[str] = ("pending", "error", "sending")) -> list[WaitingRow]:
    """Outbox rows still to send, newest first (all of them when ``limit`` is None)."""
    q = (
        sa.select(push_outbox.c.id, push_outbox.c.target, push_outbox.c.target_id, push_outbox.c.golden_id,
                  push_outbox.c.payload, push_outbox.c.status, push_outbox.c.cause, push_outbox.c.attempts,
                  push_outbox.c.last_reason, push_outbox.c.run_id, push_outbox.c.created_at, push_outbox.c.entity)
        .where(push_outbox.c.status.in_(tuple(statuses)))
        .order_by(push_outbox.c.id.desc())
    )
    if target:
        q = q.where(push_outbox.c.target == target)
    if limit:
        q = q.limit(limit)
    with store.engine.connect() as conn:
        return [WaitingRow(*row) for row in conn.execute(q)]


def holdings(store: Store, rows: Iterable[WaitingRow], sources: Mapping[str, str] | None = None
             ) -> dict[str, tuple[dict[str, dict], dict[str, tuple[str, dict]]]]:
    """Per target: what the hub knows its records hold (``Store.holdings``). ``sources`` maps a target to
    the source whose pulled records it writes (default: the same name)."""
    by_target: dict[str, list[str]] = {}
    entities: dict[str, set[str]] = {}
    for r in rows:
        if r.target_id:
            by_target.setdefault(r.target, []).append(r.target_id)
            entities.setdefault(r.target, set()).add(r.entity)
    # with the rows' entities: a target record's pushes are searched by (target, entity, target_id)
    return {t: store.holdings(t, (sources or {}).get(t, t), ids, entities[t]) for t, ids in by_target.items()}


# --------------------------------------------------------------------------------------------------------------
# Pure functions


def action_of(row: WaitingRow) -> str:
    if not row.target_id or row.target_id.startswith("new:"):
        return "create"
    if (row.payload or {}).get("lifecycle") in _REMOVED:
        return "remove"
    return "update"


def row_changes(row: WaitingRow, states: Mapping[str, dict], last: Mapping[str, tuple[str, dict]]
                ) -> dict[str, list]:
    """Field-level ``[before, after]`` of one row against what the hub knows the target record holds."""
    after = dict(row.payload or {})
    if row.target_id in states:  # the hub's fields as the target record carries them (pulled or written)
        before: dict | None = states[row.target_id]
        after = {k: v for k, v in after.items() if k in before}
    else:
        before = last[row.target_id][1] if row.target_id in last else None
    if action_of(row) == "remove":
        after = {}
    return field_changes(before, after)


def preview_target(target: str, rows: Iterable[WaitingRow], known: tuple[Mapping, Mapping] | None = None,
                   samples: int = SAMPLES) -> TargetPreview:
    """Counts per action and up to ``samples`` masked examples each, from the rows waiting for ``target``."""
    states, last = known or ({}, {})
    out = TargetPreview(target)
    for row in sorted(rows, key=lambda r: r.outbox_id):
        changes = row_changes(row, states, last)
        action = action_of(row)
        if action == "update" and not changes:
            out.unchanged += 1
            continue
        setattr(out, action, getattr(out, action) + 1)
        shown = out.samples.setdefault(action, [])
        if len(shown) < samples:
            shown.append((mask_identifier(row.target_id) if row.target_id else "(new)", changes))
    return out


def preview_text(previews: Iterable[TargetPreview]) -> str:
    """The dry-run block of the end summary."""
    previews = list(previews)
    lines = ["Dry run — nothing was sent; the outbox stays pending for the next sync:"]
    lines += [p.text() for p in previews] or ["  (nothing to push)"]
    return "\n".join(lines)


def preview(store: Store, target: str, source: str | None = None, samples: int = SAMPLES) -> TargetPreview:
    """What a push to ``target`` would send now (reads the store only)."""
    rows = waiting_rows(store, target)
    known = holdings(store, rows, {target: source or target}).get(target)
    return preview_target(target, rows, known, samples)


# --------------------------------------------------------------------------------------------------------------
# Masked display of field changes (also used by the push log)


def masked_value(name: str, value: Any) -> Any:
    """One field value as a preview or the push log may show it."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [masked_value(name, v) for v in value]
    if name in _HUB_FIELDS:
        return value
    if name in _NAME_FIELDS:
        return mask_name(str(value))
    if name in ("phones", "phone", "primary_phone", "e164"):
        return mask_phone(str(value))
    if name in ("emails", "email", "primary_email"):
        return mask_email(str(value))
    if isinstance(value, dict):  # an address: where, not who
        return {k: value[k] for k in ("city", "country", "country_code") if value.get(k)} or "***"
    return scrub_text(str(value)) if isinstance(value, str) else value


def masked_changes(changes: Mapping[str, Sequence[Any]] | None) -> dict[str, list]:
    return {name: [masked_value(name, before), masked_value(name, after)]
            for name, (before, after) in (changes or {}).items()}


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def format_changes(changes: Mapping[str, Sequence[Any]] | None) -> str:
    """``golden_id: — → G000000012; segment: vip → lapsed`` (masked)."""
    return "; ".join(f"{name}: {_shown(b)} → {_shown(a)}" for name, (b, a) in masked_changes(changes).items())
