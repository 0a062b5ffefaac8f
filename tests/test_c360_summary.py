"""The kept 360 summary (hub/c360_summary.py) brought up to date from the rewritten views equals one built from
every view, and the figures read from it equal those read from the views (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from test_customer360_data import AS_OF
from test_customer360_scale import _seed

from hub import c360_summary
from hub.customer360 import build_360
from hub.quality import customer_base as cb
from hub.report import _c360
from hub.store import Store, customer_360, customer_360_phone, customer_360_summary


def _kept(store: Store) -> tuple[list[Any], list[Any]]:
    with store.engine.connect() as conn:
        summary = [tuple(r) for r in conn.execute(sa.select(customer_360_summary).order_by(
            customer_360_summary.c.golden_id))]
        phones = [tuple(r) for r in conn.execute(sa.select(customer_360_phone).order_by(
            customer_360_phone.c.golden_id, customer_360_phone.c.phone))]
    return summary, phones


def _rewrite(store: Store, gid: str, change: Any) -> None:
    """A view rewritten as the 360 build writes one: new content, a later updated_at."""
    with store.begin() as conn:
        rec, at = conn.execute(sa.select(customer_360.c.record, customer_360.c.updated_at)
                               .where(customer_360.c.golden_id == gid)).one()
        newest = conn.execute(sa.select(sa.func.max(customer_360.c.updated_at))).scalar()
        conn.execute(customer_360.update().where(customer_360.c.golden_id == gid)
                     .values(record=change(rec), updated_at=newest + timedelta(seconds=1)))


def test_a_refresh_reads_the_rewritten_views_and_ends_as_a_rebuild(store: Store) -> None:
    _seed(store, 40)
    build_360(store, {}, as_of=AS_OF)
    assert c360_summary.refresh(store) == 40  # nothing kept yet: every view
    assert c360_summary.refresh(store) == 0  # up to date: nothing read

    def moved(rec: dict) -> dict:  # another segment, tier and number; a number of another customer too
        profile = {**rec["profile"], "phones": ["+8613800000003", "+8613900000000"],
                   "primary_phone": "+8613900000000", "sources": ["webshop"], "address": None}
        return {**rec, "segment": "vip", "value_tier": "gold", "profile": profile, "orders_count": 0,
                "consent": {**rec["consent"], "email": True}, "rfm": {**rec["rfm"], "r_score": 5, "f_score": 5}}

    _rewrite(store, "G000000007", moved)
    _rewrite(store, "G000000011", lambda rec: {**rec, "lifecycle": "lapsed", "consent": {"sms": False}})
    with store.begin() as conn:  # a view gone (merged away, erased)
        conn.execute(customer_360.delete().where(customer_360.c.golden_id == "G000000020"))
    read = c360_summary.refresh(store)
    assert read == 2  # the two rewritten views, not every view
    incremental = _kept(store)
    c360_summary.rebuild(store)
    assert _kept(store) == incremental
    summary, phones = incremental
    assert len(summary) == 39 and "G000000020" not in {r[0] for r in summary}
    assert ("G000000007", "+8613900000000") in phones and ("G000000003", "+8613800000003") in phones


def test_figures_from_the_summary_equal_those_from_every_view(store: Store) -> None:
    _seed(store, 60)
    build_360(store, {}, as_of=AS_OF)
    _rewrite(store, "G000000005", lambda rec: {**rec, "segment": None, "value_tier": None})
    from_summary = cb._tally(cb._summary_rows(store)[0], ties=True)
    from_views = cb._tally(cb._view_rows(store)[0], ties=True)
    assert from_summary is not None and from_views is not None
    # segments with as many customers as each other are listed in the views' order, which the summary lacks
    assert sorted(from_summary.pop("segments")) == sorted(from_views.pop("segments"))
    assert from_summary == from_views
    # each customer's state for the movement: the same from the summary's rows as from the views
    assert cb._summary_rows(store)[1] == cb._view_rows(store)[1]

    # the 360 distributions: one grouped read of the summary against the same read of every view's JSON
    rec = customer_360.c.record
    names = ("segment", "value_tier", "lifecycle")
    with store.engine.connect() as conn:
        got = _c360(conn)
        cols = [rec[n].as_string() for n in names]
        want = {n: {} for n in names}
        for *values, n in conn.execute(sa.select(*cols, sa.func.count()).group_by(*cols)):
            for name, value in zip(names, values, strict=True):
                key = str(value) if value is not None else "-"
                want[name][key] = want[name].get(key, 0) + n
    for name in names:
        assert got[name] == dict(sorted(want[name].items(), key=lambda kv: (-kv[1], kv[0])))
    assert got["customers"] == 60


def test_the_customer_base_with_tied_segments_lists_them_as_the_views_are_read(store: Store) -> None:
    _seed(store, 8)
    build_360(store, {}, as_of=AS_OF)
    figures = cb.customer_base(store, update_snapshot=False)
    views = cb._tally(cb._view_rows(store)[0], ties=True)
    assert views is not None
    assert figures["segments"] == views["segments"]
