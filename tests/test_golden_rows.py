"""The rows a golden build inserts (golden_customer, xref, golden_id_history) hold what SQLAlchemy's typed inserts
store, on every backend: on SQLite they go to the driver's executemany as prepared tuples (the build time as
the text SQLAlchemy's DateTime writes: sqlite3's own datetime adapter drops a zero fraction of a second, which
sorts and compares differently), elsewhere through SQLAlchemy."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from test_golden_support import cust, stage

import hub.golden.build as build
from hub.golden import build_golden, golden_id_of, load_golden, match_and_cluster
from hub.golden.tables import match_run
from hub.store import Store, golden_customer, golden_id_history, xref


def _text(col: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast(col, sa.Text)


@pytest.mark.parametrize("now", [datetime(2026, 3, 4, 5, 6, 7), datetime(2026, 3, 4, 5, 6, 7, 8)],
                         ids=["whole_second", "fraction"])
def test_first_build_rows_hold_what_sqlalchemy_stores(any_store: Store, now: datetime,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = any_store
    stage(store, [
        cust("erp", "1", "Ana Müller", email="ana@example.de", phone="+4915112345678"),
        cust("webshop", "9", "Ana Mueller", email="ana@example.de", phone="+4915112345678"),
        cust("erp", "2", "陈伟", phone="+8613800138000"),
    ], at=datetime(2026, 1, 2))
    match_and_cluster(store, {"engine": "fixed"}, mode="full")
    monkeypatch.setattr(build, "_now", lambda: now)
    stats = build_golden(store, mode="full")
    assert (stats.mode, stats.golden_written, stats.xref_opened, stats.minted) == ("full", 2, 3, 2)

    with store.engine.connect() as conn:
        # the same build time, written by SQLAlchemy (the run row) and by the build's row inserts
        started = conn.execute(sa.select(_text(match_run.c.started_at)).where(match_run.c.kind == "golden")
                               ).scalar_one()
        # the build time as the database keeps it (MariaDB's DATETIME drops the fraction of a second)
        at = conn.execute(sa.select(match_run.c.started_at).where(match_run.c.kind == "golden")).scalar_one()
        stamps = set(conn.execute(sa.select(_text(xref.c.valid_from))).scalars())
        stamps |= set(conn.execute(sa.select(_text(golden_id_history.c.at))).scalars())
        stamps |= set(conn.execute(sa.select(_text(golden_customer.c.created_at))).scalars())
        stamps |= set(conn.execute(sa.select(_text(golden_customer.c.updated_at))).scalars())
        assert stamps == {started}
        xrows = conn.execute(sa.select(xref.c.record_key, xref.c.source, xref.c.source_id, xref.c.golden_id,
                                       xref.c.valid_from, xref.c.valid_to).order_by(xref.c.id)).all()
        history = conn.execute(sa.select(golden_id_history.c.golden_id, golden_id_history.c.event,
                                         golden_id_history.c.related_golden_id, golden_id_history.c.record_key,
                                         golden_id_history.c.reason, golden_id_history.c.at)
                               .order_by(golden_id_history.c.id)).all()
        goldens = conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.status,
                                         golden_customer.c.merged_into, golden_customer.c.quality_score,
                                         golden_customer.c.record, golden_customer.c.created_at)
                               .order_by(golden_customer.c.golden_id)).all()

    assert at == now or (store.engine.dialect.name == "mysql" and at == now.replace(microsecond=0))
    ana = {r.golden_id for r in xrows if r.record_key in ("erp:1", "webshop:9")}
    chen = {r.golden_id for r in xrows if r.record_key == "erp:2"}
    assert len(ana) == 1 and len(chen) == 1 and ana != chen
    assert [tuple(r) for r in xrows] == [
        ("erp:1", "erp", "1", *ana, at, None), ("erp:2", "erp", "2", *chen, at, None),
        ("webshop:9", "webshop", "9", *ana, at, None),
    ]
    assert sorted(tuple(r) for r in history) == sorted(
        (g, "minted", None, None, "new customer", at) for g in ana | chen
    )
    for g, status, merged_into, score, record, created in goldens:
        assert (record["golden_id"], status, merged_into, created) == (g, "active", None, at)
        assert type(score) is float and score == record["quality_score"]
    assert load_golden(store, next(iter(ana))).record_keys == ["erp:1", "webshop:9"]
    # time travel compares the stored times with bound datetimes
    assert golden_id_of(store, "erp:2", at=at) == next(iter(chen))
    assert golden_id_of(store, "erp:2", at=datetime(2026, 3, 4, 5, 6, 6, 999999)) is None
