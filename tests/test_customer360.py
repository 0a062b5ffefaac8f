"""The customer 360 view: pure computations and build_360 against a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from test_customer360_data import AS_OF, T0, current_360, insert_staged, order, seed_demo, staged_row

from hub.customer360 import (
    SegmentsConfig,
    build_360,
    dedupe_orders,
    lifecycle_stage,
    quintile_scores,
    score_rfm,
    segment_for,
    value_tier,
)
from hub.golden import unpack_lineage
from hub.models import Consent, Customer360, Rfm
from hub.store import Store, golden_customer

# ---------------------------------------------------------------------------------------------- pure functions


def test_quintile_scores_spread_one_to_five_and_ties_share_a_score() -> None:
    assert quintile_scores([10, 20, 30, 40, 50]) == [1, 2, 3, 4, 5]
    assert quintile_scores([10, 20, 30, 40, 50], higher_is_better=False) == [5, 4, 3, 2, 1]
    assert len(set(quintile_scores([7, 7, 7, 7]))) == 1
    scores = quintile_scores(list(range(1000)))
    assert [scores.count(s) for s in range(1, 6)] == [200] * 5
    assert quintile_scores([]) == []


def test_score_rfm_scores_buyers_only_and_recent_is_better() -> None:
    rfm = score_rfm([(5, 10, Decimal(900)), (300, 1, Decimal(10)), (None, 0, Decimal(0)), (60, 3, Decimal(100))])
    assert (rfm[0].r_score, rfm[0].f_score, rfm[0].m_score) == (5, 5, 5)
    assert (rfm[1].r_score, rfm[1].f_score, rfm[1].m_score) == (2, 2, 2)
    assert (rfm[2].r_score, rfm[2].f_score, rfm[2].m_score) == (None, None, None)  # prospect: no position
    assert rfm[3].recency_days == 60 and rfm[3].frequency == 3


def test_value_tier_needs_both_minimums_and_defaults_are_sensible() -> None:
    tiers = SegmentsConfig().value_tiers
    assert value_tier(Decimal(25000), 6, tiers) == "platinum"
    assert value_tier(Decimal(25000), 1, tiers) == "silver"  # one big order is not platinum
    assert value_tier(Decimal(6000), 3, tiers) == "gold"
    assert value_tier(Decimal(50), 1, tiers) == "bronze"
    assert value_tier(Decimal(0), 0, tiers) == "none"
    custom = SegmentsConfig.from_dict({"value_tiers": {"gold": {"min_monetary": 100}}}).value_tiers
    assert value_tier(Decimal(150), 1, custom) == "gold" and value_tier(Decimal(50), 1, custom) == "none"


def test_lifecycle_thresholds() -> None:
    now = datetime(2026, 6, 1)
    assert lifecycle_stage(None, None, 0, now) == "prospect"
    assert lifecycle_stage(now - timedelta(days=30), now - timedelta(days=10), 2, now) == "new"
    assert lifecycle_stage(now - timedelta(days=400), now - timedelta(days=10), 5, now) == "active"
    assert lifecycle_stage(now - timedelta(days=400), now - timedelta(days=200), 5, now) == "at_risk"
    assert lifecycle_stage(now - timedelta(days=900), now - timedelta(days=366), 5, now) == "lapsed"
    # configurable
    assert lifecycle_stage(now - timedelta(days=400), now - timedelta(days=40), 5, now, at_risk_days=30,
                           lapsed_days=60) == "at_risk"


def test_segment_rules_first_match_wins() -> None:
    rules = SegmentsConfig().rules
    assert segment_for(Rfm(frequency=0), "none", "prospect", rules) == "prospect"
    assert segment_for(Rfm(frequency=8, monetary=Decimal(30000)), "platinum", "active", rules) == "vip"
    assert segment_for(Rfm(frequency=8, monetary=Decimal(30000)), "platinum", "at_risk", rules) == "at_risk"
    assert segment_for(Rfm(frequency=1), "bronze", "new", rules) == "new"
    assert segment_for(Rfm(frequency=4), "silver", "active", rules) == "loyal"
    assert segment_for(Rfm(frequency=1), "bronze", "active", rules) == "regular"
    custom = [{"segment": "champion", "min_r_score": 5, "min_f_score": 4}, {"segment": "other"}]
    assert segment_for(Rfm(frequency=9, r_score=5, f_score=4), "gold", "active", custom) == "champion"
    assert segment_for(Rfm(frequency=9, r_score=4, f_score=5), "gold", "active", custom) == "other"
    with pytest.raises(ValueError):
        SegmentsConfig.from_dict({"rules": [{"segment": "x", "colour": "red"}]})


def test_dedupe_orders_by_number_keeps_freshest_copy() -> None:
    a = {"source": "webshop", "source_id": "1", "order_number": "WC-1", "status": "processing",
         "updated_at": "2026-01-01T00:00:00"}
    b = {"source": "erp", "source_id": "9", "order_number": " wc-1", "status": "completed",
         "updated_at": "2026-01-03T00:00:00"}
    c = {"source": "erp", "source_id": "10", "order_number": None}
    d = {"source": "webshop", "source_id": "11", "order_number": None}
    kept, dupes = dedupe_orders([a, b, c, d])
    assert dupes == 1 and len(kept) == 3 and b in kept and a not in kept


# ---------------------------------------------------------------------------------------------- build_360


def test_build_360_links_every_source_and_classifies(store: Store) -> None:
    seed_demo(store)
    stats = build_360(store, {}, as_of=AS_OF)
    assert stats.golden_customers == 3 and stats.inserted == 3 and stats.updated == 0
    assert stats.orders_linked == 9 and stats.orders_unlinked == 1 and stats.duplicate_orders == 1
    assert stats.shipments_linked == 2 and stats.calls_linked == 2 and stats.social_linked == 1
    views = current_360(store)
    assert set(views) == {"G000000001", "G000000002", "G000000003"}  # the retired G4 has none
    g1 = Customer360.model_validate(views["G000000001"])
    assert g1.profile.full_name == "陈伟"
    # the field lineage stays on the golden record: not copied into every view
    assert "lineage" not in views["G000000001"]["profile"]
    with store.engine.connect() as conn:
        lineage = conn.execute(sa.select(golden_customer.c.lineage)
                               .where(golden_customer.c.golden_id == "G000000001")).scalar_one()
    assert unpack_lineage(lineage)["full_name"]["rule"] == "source_priority"
    assert g1.orders_count == 7  # 6 shop orders (one also in the ERP, counted once) + 1 cancelled
    assert g1.rfm.frequency == 6 and g1.total_spent == Decimal(30000) and g1.currency == "CNY"
    assert g1.first_order_at == datetime(2026, 2, 5) and g1.last_order_at == datetime(2026, 7, 5)
    assert g1.rfm.recency_days == (AS_OF - datetime(2026, 7, 5)).days
    assert len(g1.recent_orders) == 5 and g1.recent_orders[0].order_number == "WC-1009"
    assert g1.shipments_count == 2 and g1.open_shipments == 1 and g1.last_shipment_status == "shipped"
    assert g1.calls_count == 2 and g1.last_call_at == datetime(2026, 10, 1, 10)
    # the screen pop lists the open shipment and the calls themselves, newest first
    assert [(s.source_id, s.status) for s in g1.open_shipment_list] == [("SH2", "shipped")]
    assert [c.occurred_at for c in g1.recent_calls][0] == datetime(2026, 10, 1, 10)
    assert len(g1.recent_calls) == 2 and all(c.kind == "call" for c in g1.recent_calls)
    assert g1.social_follows == 1 and g1.social_accounts == ["social:oWx1"]
    assert (g1.value_tier, g1.lifecycle, g1.segment) == ("platinum", "active", "vip")
    assert g1.consent == g1.profile.consent == Consent(email=True, social=False, phone=True)  # the golden record's
    assert (g1.rfm.r_score, g1.rfm.f_score, g1.rfm.m_score) == (5, 5, 5)

    g2 = Customer360.model_validate(views["G000000002"])
    assert (g2.value_tier, g2.lifecycle, g2.segment) == ("bronze", "lapsed", "lapsed")
    assert g2.calls_count == 0 and g2.consent.social is True
    g3 = Customer360.model_validate(views["G000000003"])
    assert (g3.value_tier, g3.lifecycle, g3.segment) == ("none", "prospect", "prospect")
    assert g3.rfm.r_score is None and g3.orders_count == 0
    assert stats.value_tiers == {"platinum": 1, "bronze": 1, "none": 1}
    assert stats.segments == {"vip": 1, "lapsed": 1, "prospect": 1}
    md = stats.markdown()
    assert "| vip | 1 |" in md and "3 golden customers" in md


def test_build_360_is_diff_only(sqlite_store: Store) -> None:
    seed_demo(sqlite_store)
    build_360(sqlite_store, {}, as_of=AS_OF)
    again = build_360(sqlite_store, {}, as_of=AS_OF)
    assert (again.inserted, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)
    # thresholds changed -> only the customers whose classification moves are rewritten
    cfg = {"lifecycle": {"at_risk_days": 100, "lapsed_days": 500}}
    moved = build_360(sqlite_store, cfg, as_of=AS_OF)
    assert (moved.updated, moved.unchanged) == (2, 1)  # G1 active->at_risk, G2 lapsed->at_risk
    views = current_360(sqlite_store)
    assert views["G000000001"]["segment"] == "at_risk" and views["G000000002"]["lifecycle"] == "at_risk"


def test_build_360_skips_a_build_whose_inputs_did_not_change(store: Store) -> None:
    seed_demo(store)
    first = build_360(store, {}, as_of=AS_OF)
    assert not first.skipped and first.inserted == 3
    again = build_360(store, {}, as_of=AS_OF)
    assert again.skipped and again.golden_customers == again.unchanged == 3 and "not rebuilt" in again.markdown()
    assert not build_360(store, {}, as_of=AS_OF, force=True).skipped
    # a new order, the next day and a changed configuration each make it rebuild; the order is stamped when
    # staged, after what the last build read (staging stamps every row with its own time)
    insert_staged(store, [{**staged_row("orders", order("webshop", "9001", "502", "5000", AS_OF - timedelta(days=2),
                                                        number="WC-9001"), customer_key="webshop:502"),
                           "staged_at": T0 + timedelta(days=1)}])
    new_order = build_360(store, {}, as_of=AS_OF)
    assert not new_order.skipped and new_order.updated >= 1
    assert current_360(store)["G000000002"]["orders_count"] == 2
    assert build_360(store, {}, as_of=AS_OF).skipped
    assert not build_360(store, {}, as_of=AS_OF + timedelta(days=1)).skipped
    assert not build_360(store, {"recent_orders": 3}, as_of=AS_OF + timedelta(days=1)).skipped


def test_build_360_removes_views_of_retired_golden_ids(sqlite_store: Store) -> None:
    seed_demo(sqlite_store)
    build_360(sqlite_store, {}, as_of=AS_OF)
    with sqlite_store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000003")
                     .values(status="retired", merged_into="G000000001"))
    stats = build_360(sqlite_store, {}, as_of=AS_OF)
    assert stats.removed == 1 and stats.golden_customers == 2
    assert "G000000003" not in current_360(sqlite_store)
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from customer_360")).scalar() == 2


def test_currency_rates_convert_to_the_base_currency(sqlite_store: Store) -> None:
    seed_demo(sqlite_store)
    build_360(sqlite_store, {"currency_rates": {"CNY": "0.14"}, "recent_orders": 10}, as_of=AS_OF)
    g1 = current_360(sqlite_store)["G000000001"]
    kept = {(o["source"], o["order_number"]) for o in g1["recent_orders"]}
    # the ERP copy of WC-1001 was updated last, so it is the one kept
    assert len(g1["recent_orders"]) == 7 and ("erp", "wc-1001") in kept and ("webshop", "WC-1001") not in kept
    assert Decimal(g1["total_spent"]) == Decimal("4200.00")
    assert g1["value_tier"] == "silver"


def test_guest_checkouts_join_the_only_golden_customer_with_their_billing_contact(sqlite_store: Store) -> None:
    from test_customer360_data import insert_staged, order, staged_row

    from hub.customer360 import guest_order_owner

    owners = {"+1": ["G1"], "+2": ["G1", "G2"]}
    emails = {"a@x.cn": ["G2"]}
    assert guest_order_owner({"billing_phone": "+1"}, owners, emails) == "G1"
    assert guest_order_owner({"billing_phone": "+2", "billing_email": "A@x.cn "}, owners, emails) == "G2"
    assert guest_order_owner({"billing_phone": "+2"}, owners, emails) is None  # shared number: no guess

    seed_demo(sqlite_store)
    guest = order("webshop", "g1", "x", "800", datetime(2026, 10, 20), number="WC-5001").model_copy(
        update={"customer_source_id": None, "billing_phone": "+4915112345678"})
    by_mail = order("webshop", "g2", "x", "50", datetime(2026, 10, 21), number="WC-5002").model_copy(
        update={"customer_source_id": None, "billing_email": "Chen.Wei@example.cn"})
    stranger = order("webshop", "g3", "x", "50", datetime(2026, 10, 21), number="WC-5003").model_copy(
        update={"customer_source_id": None, "billing_phone": "+8617700000000"})
    insert_staged(sqlite_store, [staged_row("orders", o) for o in (guest, by_mail, stranger)])
    stats = build_360(sqlite_store, {}, as_of=AS_OF)
    assert stats.guest_orders_linked == 2 and stats.orders_unlinked == 2
    views = current_360(sqlite_store)
    assert views["G000000002"]["orders_count"] == 2 and views["G000000002"]["lifecycle"] == "active"
    assert views["G000000001"]["rfm"]["frequency"] == 7
    off = build_360(sqlite_store, {"link_guest_orders": False}, as_of=AS_OF)
    assert off.guest_orders_linked == 0 and off.orders_unlinked == 4


def test_documented_segments_config_is_the_default() -> None:
    import yaml

    import hub.customer360 as module

    doc = module.__doc__ or ""
    documented = yaml.safe_load(doc[doc.index("segments:"):])["segments"]
    assert SegmentsConfig.from_dict(documented) == SegmentsConfig.from_dict({}) == SegmentsConfig()


def test_a_malformed_golden_record_is_skipped_and_counted(sqlite_store: Store,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    from hub.store import golden_customer

    seed_demo(sqlite_store)
    with sqlite_store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000003")
                     .values(record={"full_name": "李娜", "birth_date": "not a date", "phones": ["+8613912345678"]}))
    stats = build_360(sqlite_store, {}, as_of=AS_OF)
    assert stats.invalid == 1 and stats.inserted == 2 and "G000000003" not in current_360(sqlite_store)
    assert "G000000003" in caplog.text and "profile.birth_date" in caplog.text
    assert "李娜" not in caplog.text and "not a date" not in caplog.text  # field names only, never values
