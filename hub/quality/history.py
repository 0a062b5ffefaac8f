"""The history of runs in the store (table ``quality_run``): one row per data-quality report, read back for
the report's charts and the JSON twin's ``history``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from hub.store import Store, jsonable, quality_run


@dataclass(frozen=True)
class RunInfo:
    """The run a report describes: its Dagster run id (shown unmasked), what started it, when."""

    run_id: str
    trigger: str = "manual"
    started_at: datetime | None = None  # naive UTC


def record_run(store: Store, run: RunInfo, finished_at: datetime, status: str, scores: dict[str, Any],
               figures: dict[str, Any]) -> None:
    seconds = (finished_at - run.started_at).total_seconds() if run.started_at else None
    with store.begin() as conn:
        conn.execute(quality_run.insert().values(
            run_id=run.run_id[:64], trigger=(run.trigger or "")[:64] or None, started_at=run.started_at,
            finished_at=finished_at, seconds=round(seconds, 1) if seconds is not None else None, status=status,
            scores=jsonable(scores), figures=jsonable(figures)))


def previous_finished_at(store: Store) -> datetime | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(quality_run.c.finished_at))).scalar()


def recent_runs(store: Store, limit: int = 30) -> list[dict[str, Any]]:
    """The last ``limit`` runs, oldest first, JSON-ready."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(quality_run).order_by(quality_run.c.id.desc()).limit(limit)).all()
    out = []
    for r in reversed(rows):
        out.append({
            "run_id": r.run_id, "trigger": r.trigger, "status": r.status, "seconds": r.seconds,
            "started_at": r.started_at.replace(microsecond=0).isoformat(sep=" ") if r.started_at else None,
            "finished_at": r.finished_at.replace(microsecond=0).isoformat(sep=" "),
            "scores": r.scores, "figures": r.figures,
        })
    return out
