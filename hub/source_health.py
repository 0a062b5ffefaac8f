"""A failing source is isolated: its pull fails, everything else goes on.

Dagster skips every step downstream of a failed step, so a source that cannot be read must not fail its pull
step: after the step's retries the pull records the failure here (``source_health``) and ends without
landing anything new, its ``pull_succeeded`` check fails (the run is partial: ``hub sync`` exits 1), the
other sources' data flow on through golden records, the 360 view and their pushes, the failing source's
push is skipped (a system the hub cannot read is not written to) and the data-quality report names the source
and the error. The source keeps its last good state: what it landed before stays, its cursor stays, and no
delete sweep runs on an incomplete listing. Its next successful pull clears the failure.

The error is kept as its class and a redacted message: URL query strings (tokens), user:password in URLs,
the source's own secrets, e-mail addresses and long digit runs (phone numbers, ids) are removed, so neither
personal data nor secrets reach the store, Dagster's event log or the report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from hub.store import Store, source_health

MAX_ERROR_CHARS = 300

_USERINFO = re.compile(r"(?<=://)[^/@\s'\"]+@")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"(?<![\w.])\+?\d[\d \-]{5,}\d(?![\w.])")


@dataclass(frozen=True, slots=True)
class SourceFailure:
    source: str
    error: str
    run_id: str | None
    attempts: int
    failing_since: datetime | None
    last_ok_at: datetime | None

    def describe(self) -> str:
        since = f"failing since {self.failing_since:%Y-%m-%d %H:%M} UTC" if self.failing_since else "failing"
        last = f", last good pull {self.last_ok_at:%Y-%m-%d %H:%M} UTC" if self.last_ok_at else ", never pulled"
        tries = f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}"
        return f"{self.error} ({since}{tries}{last}; not pushed to, keeps its last good state)"


def describe_error(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``Class: message`` with everything that could be a secret or personal data taken out."""
    from hub.connectors.base import redact_text

    text = " ".join(str(exc).split())
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "<secret>")
    text = redact_text(text)
    text = _USERINFO.sub("<user>@", text)
    text = _EMAIL.sub("<e-mail>", text)
    text = _DIGITS.sub("<number>", text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def record_ok(store: Store, source: str, *, run_id: str | None, attempts: int = 1) -> None:
    now = _now()
    with store.begin() as conn:
        updated = conn.execute(source_health.update().where(source_health.c.source == source).values(
            status="ok", error=None, run_id=run_id, attempts=attempts, checked_at=now, last_ok_at=now,
            failing_since=None)).rowcount
        if not updated:
            conn.execute(source_health.insert().values(source=source, status="ok", run_id=run_id,
                                                       attempts=attempts, checked_at=now, last_ok_at=now))


def record_failure(store: Store, source: str, error: str, *, run_id: str | None, attempts: int) -> SourceFailure:
    now = _now()
    with store.begin() as conn:
        row = conn.execute(sa.select(source_health).where(source_health.c.source == source)).first()
        since = (row.failing_since if row is not None and row.status == "failed" else None) or now
        values = {"status": "failed", "error": error, "run_id": run_id, "attempts": attempts, "checked_at": now,
                  "failing_since": since}
        if row is None:
            conn.execute(source_health.insert().values(source=source, **values))
        else:
            conn.execute(source_health.update().where(source_health.c.source == source).values(**values))
    return SourceFailure(source, error, run_id, attempts, since, row.last_ok_at if row is not None else None)


def failing(store: Store) -> dict[str, SourceFailure]:
    """Sources whose latest pull failed."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(source_health).where(source_health.c.status == "failed")
                            .order_by(source_health.c.source)).all()
    return {r.source: SourceFailure(r.source, r.error or "", r.run_id, r.attempts, r.failing_since, r.last_ok_at)
            for r in rows}


def failed_in_run(store: Store, run_id: str) -> dict[str, SourceFailure]:
    """Sources whose pull failed in this run (the run is partial)."""
    return {s: f for s, f in failing(store).items() if f.run_id == run_id}


def report_failures(store: Store, run_id: str | None = None) -> dict[str, str]:
    """What the data-quality report names at its top: ``{"pull of webshop": "ConnectionError: … (…)"}``; the
    sources that failed in ``run_id`` (every failing source when None)."""
    found = failing(store) if run_id is None else failed_in_run(store, run_id)
    return {f"pull of {s}": f.describe() for s, f in found.items()}
