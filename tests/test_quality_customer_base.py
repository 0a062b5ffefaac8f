"""The customer-base view from the 360 view: pyramid, funnel, segments by region/source/channel, RFM movement."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from test_customer360_data import AS_OF, seed_demo

from hub.customer360 import build_360
from hub.quality.customer_base import customer_base, rfm_segment
from hub.store import Store, customer_360


def test_rfm_segments_from_scores() -> None:
    assert rfm_segment(5, 5) == "champions" and rfm_segment(3, 4) == "loyal"
    assert rfm_segment(5, 1) == "promising" and rfm_segment(3, 2) == "needs attention"
    assert rfm_segment(1, 5) == "cannot lose" and rfm_segment(2, 3) == "at risk"
    assert rfm_segment(1, 1) == "hibernating" and rfm_segment(None, None) == "no purchase"


def test_views_add_up_and_movement_follows_each_customer(store: Store) -> None:
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    first = customer_base(store)
    n = first["customers"]
    assert n == 3 and sum(r["customers"] for r in first["value_pyramid"]) == n
    steps = [r["customers"] for r in first["funnel"]]
    assert steps[0] == n and steps[1] >= steps[2] >= steps[3]
    assert sum(first["lifecycle"].values()) == n
    assert sum(sum(c.values()) for c in first["by_region"].values()) == n
    assert first["rfm_movement"]["compared"] is False  # nothing to compare with yet

    # one customer's scores change between reports: the movement names where they went
    with store.begin() as conn:
        gid, rec = conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record)).first()
        before = rfm_segment(rec["rfm"]["r_score"], rec["rfm"]["f_score"])
        rec["rfm"] = {**rec["rfm"], "r_score": 1, "f_score": 1, "frequency": max(rec["rfm"]["frequency"], 1)}
        # written as build_360 writes a changed view: with its updated_at
        conn.execute(customer_360.update().where(customer_360.c.golden_id == gid)
                     .values(record=rec, updated_at=datetime.now(UTC).replace(tzinfo=None)))
    second = customer_base(store)["rfm_movement"]
    assert second["compared"] and second["new"] == 0 and second["gone"] == 0
    if before != "hibernating":
        assert second["matrix"][before]["hibernating"] >= 1
        assert second["up"] + second["down"] == 1 and second["same"] == n - 1


def test_a_report_over_an_unchanged_view_keeps_the_figures_and_counts_everyone_the_same(store: Store) -> None:
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    customer_base(store)
    computed = customer_base(store, update_snapshot=False)  # reads every view, compares with the snapshot
    kept = customer_base(store)  # nothing changed since the last report: the kept figures
    assert kept == computed
    assert kept["rfm_movement"]["compared"] and kept["rfm_movement"]["same"] == kept["customers"]
