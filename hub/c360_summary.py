"""What the report and the push plan read of each customer 360 view, kept per golden customer.

The customer base (hub/quality/customer_base.py), the report's 360 distributions and the push plan's phone
holders each read every view's JSON once a sync: at a million customers seconds of decoding that a sync which
rewrote a few views repeats for nothing. ``refresh(store)`` brings two narrow tables up to date instead:

* ``customer_360_summary``: per golden customer the fields those figures count (segment, tier, lifecycle,
  RFM segment, frequency, monetary, region, sources, channels, consent per channel);
* ``customer_360_phone``: per golden customer the E.164 numbers its profile holds (as the directory reads them).

Only views rewritten after the newest view summarised (``customer_360.updated_at``, kept with each row as
``view_updated_at``; both indexed) are read, and rows of views that are gone (merged, erased) are dropped: an
empty summary reads every view. What a row holds changes only with a migration that empties the table.
``rebuild`` always reads every view (tests compare).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from hub.consent import CHANNELS
from hub.store import (
    Store,
    as_text,
    bound_time,
    canonical_json,
    chunked,
    customer_360,
    customer_360_phone,
    customer_360_summary,
    insert_rows,
    json_value,
)

CONSENT = CHANNELS


def rfm_segment(r: int | None, f: int | None) -> str:
    """The RFM segment of recency and frequency quintile scores (the table in hub/quality/customer_base.py)."""
    if r is None or f is None:
        return "no purchase"
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r >= 4:
        return "promising"
    if r == 3:
        return "needs attention"
    if f >= 4:
        return "cannot lose"
    if f == 3:
        return "at risk"
    return "hibernating"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _consent(value: Any) -> bool | None:
    # as the report's SQL read it (a JSON path as boolean): true / false, anything else unknown
    return value if isinstance(value, bool) else (None if value is None else bool(value))


def profile_phones(profile: Mapping[str, Any]) -> list[str]:
    """The numbers of a 360 profile, primary first (the caller directory's numbers and the summary's)."""
    phones = [p for p in profile.get("phones") or [] if p]
    primary = profile.get("primary_phone")
    if primary and primary not in phones:
        phones.insert(0, primary)
    return phones


def summary_row(gid: str, rec: Mapping[str, Any] | None) -> dict[str, Any]:
    """One view's summary row: the fields exactly as customer_base and the report's 360 figures take them."""
    rec = rec or {}
    rfm = rec.get("rfm") or {}
    profile = rec.get("profile") or {}
    address = profile.get("address") or {}
    consent = rec.get("consent") or {}
    consent = consent if isinstance(consent, Mapping) else {}
    return {
        "golden_id": gid, "segment": _text(rec.get("segment")), "value_tier": _text(rec.get("value_tier")),
        "lifecycle": _text(rec.get("lifecycle")),
        "rfm_segment": rfm_segment(rfm.get("r_score"), rfm.get("f_score")),
        "frequency": int(rfm.get("frequency") or 0), "monetary": float(rfm.get("monetary") or 0),
        "region": _text(address.get("region") or None),
        "sources": canonical_json(list(profile.get("sources") or [])),
        "has_orders": bool(rec.get("orders_count")), "has_calls": bool(rec.get("calls_count")),
        "has_social": bool(rec.get("social_follows")),
        **{f"consent_{ch}": _consent(consent.get(ch)) for ch in CONSENT},
    }


_SUMMARY = tuple(c.name for c in customer_360_summary.columns)
_COUNTED = _SUMMARY[:-1]  # summary_row's fields; view_updated_at last
_PHONE = ("golden_id", "phone")


def _write(conn: sa.Connection, gids: Iterable[str], rows: Iterable[tuple[str, Any, Any]]) -> int:
    """Replace the summary and phone rows of ``gids`` by those of ``rows`` ((golden id, decoded view, its
    updated_at)). Inserted as tuples straight to the driver on SQLite (``insert_rows``): SQLAlchemy's
    processing of each row's 20 parameters cost more than the insert (a first summary of every view)."""
    for part in chunked(sorted(set(gids)), 500):
        conn.execute(customer_360_summary.delete().where(customer_360_summary.c.golden_id.in_(part)))
        conn.execute(customer_360_phone.delete().where(customer_360_phone.c.golden_id.in_(part)))
    n = 0
    summaries: list[tuple] = []
    phones: list[tuple] = []
    times: dict[Any, Any] = {}  # a 360 build writes its views with one time: bound once
    for gid, rec, at in rows:
        n += 1
        bound = times.get(at)
        if bound is None:
            bound = times[at] = bound_time(conn, at)
        row = summary_row(gid, rec)
        summaries.append((*(row[c] for c in _COUNTED), bound))
        profile = (rec or {}).get("profile") or {}
        phones += [(gid, str(p)) for p in dict.fromkeys(profile_phones(profile))]
        if len(summaries) >= 5000:
            insert_rows(conn, customer_360_summary, _SUMMARY, summaries)
            summaries = []
        if len(phones) >= 5000:
            insert_rows(conn, customer_360_phone, _PHONE, phones)
            phones = []
    insert_rows(conn, customer_360_summary, _SUMMARY, summaries)
    insert_rows(conn, customer_360_phone, _PHONE, phones)
    return n


def _views(conn: sa.Connection, where: Any = None) -> Iterable[tuple[str, Any, Any]]:
    q = sa.select(customer_360.c.golden_id, as_text(customer_360.c.record, conn.dialect.name),
                  customer_360.c.updated_at)
    if where is not None:
        q = q.where(where)
    for gid, text, at in conn.execute(q.execution_options(yield_per=5000)):
        yield gid, json_value(text), at


def refresh(store: Store) -> int:
    """Bring the summary up to date with the 360 views; returns how many views were read."""
    sm = customer_360_summary.c
    with store.begin() as conn:
        mark = conn.execute(sa.select(sa.func.max(sm.view_updated_at))).scalar()
        if mark is None:  # nothing summarised yet: every view, streamed
            conn.execute(customer_360_phone.delete())
            read = _write(conn, (), _views(conn))
        else:
            # after the mark, as the push plan reads its marks: a 360 build writes its views with one time, later
            # than any earlier build's
            changed = list(_views(conn, customer_360.c.updated_at > mark))
            read = _write(conn, [gid for gid, _, _ in changed], changed)
        held = conn.execute(sa.select(sa.func.count()).select_from(customer_360_summary)).scalar_one()
        views = conn.execute(sa.select(sa.func.count()).select_from(customer_360)).scalar_one()
        if held != views:  # views gone since (merged away, erased): their rows go too
            gone = list(conn.execute(sa.select(sm.golden_id).where(~sa.exists().where(
                customer_360.c.golden_id == sm.golden_id))).scalars())
            _write(conn, gone, ())
    return read


def rebuild(store: Store) -> int:
    """Summarise every view anew (what ``refresh`` keeps up to date)."""
    with store.begin() as conn:
        conn.execute(customer_360_summary.delete())
        conn.execute(customer_360_phone.delete())
    return refresh(store)
