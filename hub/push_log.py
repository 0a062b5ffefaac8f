"""The row-level push log (``hub push log``): what the hub wrote to each target system, row by row.

Recorded rows come from ``push_result``: every attempt with its target record, status (ok / rejected / error),
reason, attempt number, run id, time and the field-level changes (``before → after``) recorded when the row
was sent. ``--status pending`` lists the outbox rows still to send (waiting, or claimed by a running push)
with their changes against what the hub knows the target holds — the rows a dry run previews.

Personal data is masked in every format (see ``hub.push_preview.masked_value``; record ids and reasons that
look like phone numbers or e-mail addresses too).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.push_preview import format_changes, holdings, masked_changes, row_changes, waiting_rows
from hub.report import mask_identifier, scrub_text
from hub.store import Store, push_outbox, push_result

STATUSES = ("ok", "rejected", "error", "pending")
FORMATS = ("table", "csv", "json")
COLUMNS = ("time", "run_id", "target", "record", "status", "attempt", "cause", "changes", "reason")


@dataclass(frozen=True)
class LogRow:
    at: datetime | None
    run_id: str | None
    target: str
    target_id: str
    status: str
    attempt: int | None
    cause: str | None
    reason: str | None
    changes: dict[str, list] = field(default_factory=dict)


def log_rows(store: Store, *, target: str | None = None, status: str | None = None, limit: int = 50,
             sources: Mapping[str, str] | None = None) -> list[LogRow]:
    """The newest ``limit`` log rows, newest first. ``sources`` maps a target to the source whose pulled
    records it writes (default: the same name), for the 'before' of pending rows."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    if status == "pending":
        rows = waiting_rows(store, target, limit, statuses=("pending", "sending"))
        known = holdings(store, rows, sources)
        return [LogRow(r.created_at, r.run_id, r.target, r.target_id,
                       "pending" if r.status == "pending" else "pending (sending)", r.attempts or None, r.cause,
                       r.last_reason, row_changes(r, *known.get(r.target, ({}, {})))) for r in rows]
    q = (
        sa.select(push_result.c.at, push_result.c.run_id, push_result.c.target, push_result.c.target_id,
                  push_result.c.status, push_result.c.attempt, push_outbox.c.cause, push_result.c.reason,
                  push_result.c.changes)
        .join(push_outbox, push_outbox.c.id == push_result.c.outbox_id, isouter=True)
        .order_by(push_result.c.at.desc(), push_result.c.id.desc())
        .limit(limit)
    )
    if target:
        q = q.where(push_result.c.target == target)
    if status:
        q = q.where(push_result.c.status == status)
    with store.engine.connect() as conn:
        return [LogRow(at, run, tgt, tid, st, att, cause, reason, changes or {})
                for at, run, tgt, tid, st, att, cause, reason, changes in conn.execute(q)]


def _fields(row: LogRow) -> dict[str, Any]:
    return {
        "time": row.at.replace(microsecond=0).isoformat(sep=" ") if isinstance(row.at, datetime) else row.at,
        "run_id": row.run_id,
        "target": row.target,
        "record": mask_identifier(row.target_id) if row.target_id else "(new)",
        "status": row.status,
        "attempt": row.attempt,
        "cause": row.cause,
        "changes": " ".join(format_changes(row.changes).split()),  # one line per row, whatever a value holds
        "reason": " ".join(scrub_text(row.reason).split()) if row.reason else None,
    }


def render(rows: Sequence[LogRow], fmt: str = "table") -> str:
    """The rows as an aligned table, CSV or JSON — one line per row in table and CSV."""
    if fmt == "json":
        return json.dumps([{**_fields(r), "changes": masked_changes(r.changes)} for r in rows],
                          ensure_ascii=False, indent=2)
    records = [_fields(row) for row in rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not records:
        return "no push log rows"
    cells = [[("" if r[c] is None else str(r[c])) for c in COLUMNS] for r in records]
    for row in cells:  # a short run id is enough to tell runs apart on screen
        row[1] = row[1][:8]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
