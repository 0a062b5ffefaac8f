"""The one consent rule of the hub: per channel, the most recent explicit statement wins.

A *statement* is one source record saying yes or no to marketing on one channel (``None`` = the record says
nothing). Its time is the record's ``source_updated_at`` (the source's own change time), else the time the
hub staged it. For every channel the statement with the latest time wins; a statement without any time ranks
below every dated one; at the same time an opt-out beats an opt-in (when in doubt, do not contact), then the
record key decides (deterministic). The winner's record, source and time are the value's lineage.

This is the only place consent is merged: the golden record (``hub.golden.survivorship``) applies it to its
members, the 360 view shows the golden record's consent, and the push plan decides from it whether a target
may receive marketing fields (``marketing_allowed``) and what consent it is told (``consent_fields``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.models import Consent

CHANNELS: tuple[str, ...] = ("email", "sms", "phone", "social", "post")
RULE = "latest_statement"
# push payload keys that carry consent to a target: consent_email = "yes" | "no" | None (unknown)
CONSENT_FIELDS: tuple[str, ...] = tuple(f"consent_{c}" for c in CHANNELS)
POLICIES = ("opt_in", "not_opted_out")


@dataclass(frozen=True)
class Statement:
    """One record's explicit yes/no for one channel."""

    channel: str
    value: bool
    at: datetime | None  # naive UTC; None = the source gives no time
    record_key: str
    source: str


def _naive_utc(ts: datetime | None) -> datetime | None:
    if ts is not None and ts.tzinfo is not None:
        return ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def statements(record_key: str, source: str, consent: Consent | Mapping[str, Any] | None,
               at: datetime | None) -> list[Statement]:
    """The explicit statements one record makes (channels it leaves unknown make none)."""
    if consent is None:
        return []
    values = consent.model_dump() if isinstance(consent, Consent) else consent
    out = []
    for channel in CHANNELS:
        value = values.get(channel)
        if isinstance(value, bool):
            out.append(Statement(channel, value, _naive_utc(at), record_key, source))
    return out


def _rank(s: Statement) -> tuple:
    # ascending sort: the winner comes first
    return (s.at is None, -(s.at.replace(tzinfo=UTC).timestamp()) if s.at else 0.0, s.value, s.record_key)


def latest(all_statements: Iterable[Statement]) -> dict[str, Statement]:
    """The winning statement per channel (channels nobody spoke about are absent)."""
    best: dict[str, Statement] = {}
    for s in all_statements:
        cur = best.get(s.channel)
        if cur is None or _rank(s) < _rank(cur):
            best[s.channel] = s
    return best


def consent_of(winners: Mapping[str, Statement]) -> Consent:
    return Consent(**{c: (winners[c].value if c in winners else None) for c in CHANNELS})


def marketing_allowed(consent: Mapping[str, Any] | Consent | None, channel: str | None,
                      policy: str = "opt_in") -> bool:
    """May marketing data (segment, tier, lifecycle) about this customer go to a target on ``channel``?
    No channel = the target is not a marketing channel. ``opt_in``: only a yes allows it (unknown never
    counts as granted); ``not_opted_out``: anything but a no allows it."""
    if channel is None:
        return True
    values = consent.model_dump() if isinstance(consent, Consent) else (consent or {})
    value = values.get(channel)
    if policy == "not_opted_out":
        return value is not False
    return value is True


def consent_fields(consent: Mapping[str, Any] | Consent | None) -> dict[str, str | None]:
    """Consent as push payload fields: ``{"consent_email": "yes" | "no" | None, ...}``."""
    values = consent.model_dump() if isinstance(consent, Consent) else (consent or {})
    return {f"consent_{c}": ({True: "yes", False: "no"}.get(values.get(c))) for c in CHANNELS}
