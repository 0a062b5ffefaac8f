"""One consent rule everywhere: per channel the most recent explicit statement wins, on the golden record and
in the 360 view alike (through the real match / golden / 360 stages), and survivorship cannot override it."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from test_customer360_data import customer, insert_staged, staged_row

from hub.consent import consent_fields, latest, marketing_allowed, statements
from hub.customer360 import build_360
from hub.golden import build_golden, decide, load_survivorship, match_and_cluster, unpack_lineage
from hub.models import Consent
from hub.store import Store, customer_360, golden_customer

OLD, MID, NEW = datetime(2024, 1, 1), datetime(2025, 1, 1), datetime(2026, 1, 1)


def test_the_latest_statement_wins_per_channel_and_a_tie_goes_to_the_opt_out() -> None:
    said = [*statements("erp:1", "erp", Consent(email=True, sms=True), OLD),
            *statements("webshop:2", "webshop", {"email": False, "phone": None}, MID),
            *statements("webshop:3", "webshop", Consent(email=True), NEW),
            *statements("social:o", "social", Consent(social=True), None),  # no time: still a statement
            *statements("erp:4", "erp", Consent(sms=False), OLD)]  # same time as erp:1's yes
    won = latest(said)
    assert (won["email"].value, won["email"].record_key, won["email"].at) == (True, "webshop:3", NEW)
    assert won["sms"].value is False and won["sms"].record_key == "erp:4"  # tie: do not contact
    assert won["social"].value is True and "phone" not in won and "post" not in won
    undated = latest([*statements("a:1", "a", Consent(post=True), None),
                      *statements("b:1", "b", Consent(post=False), OLD)])
    assert undated["post"].value is False  # a dated statement outranks an undated one


def test_marketing_and_consent_fields() -> None:
    assert marketing_allowed(Consent(email=True), "email") and not marketing_allowed({}, "email")
    assert marketing_allowed({}, "email", "not_opted_out") and not marketing_allowed({"email": False}, "email",
                                                                                  "not_opted_out")
    assert consent_fields(Consent(email=True, post=False)) == {
        "consent_email": "yes", "consent_sms": None, "consent_phone": None, "consent_social": None,
        "consent_post": "no"}


def test_consent_is_not_a_survivorship_field() -> None:
    with pytest.raises(ValueError, match="one rule applies everywhere"):
        load_survivorship({"fields": {"consent.email": {"strategy": "source_priority"}}})


def _person(source: str, sid: str, consent: Consent, at: datetime) -> dict:
    return staged_row("customers", customer(source, sid, "Chen Wei", ["+8613800138000"], ["chen.wei@example.cn"],
                                            consent=consent, source_updated_at=at,
                                            birth_date=datetime(1980, 5, 4).date()))


def test_golden_record_and_360_view_agree_after_opt_out_and_opt_in(store: Store) -> None:
    """One person in three systems: opted in (2024), out in the shop (2025), in again on WeChat / by e-mail in
    the ERP (2026). The golden record and the 360 view both show the latest statement, with its lineage."""
    insert_staged(store, [
        _person("erp", "1", Consent(email=True, phone=True), OLD),
        _person("webshop", "2", Consent(email=False, phone=False), MID),
        _person("social", "3", Consent(social=True, email=True), NEW),
    ])
    # one person for sure: a steward says so (the model cannot estimate anything from three records)
    decide(store, "erp:1", "webshop:2", "match", by="test")
    decide(store, "erp:1", "social:3", "match", by="test")
    match_and_cluster(store, {}, mode="full")
    build_golden(store, None, mode="full")
    build_360(store, {})
    with store.engine.connect() as conn:
        golden = conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record,
                                        golden_customer.c.lineage)
                              .where(golden_customer.c.status == "active")).all()
        views = dict(conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record)).all())
    assert len(golden) == 1, "the three records are one person"
    gid, record, lineage = golden[0]
    lineage = unpack_lineage(lineage)
    expected = {"email": True, "sms": None, "phone": False, "social": True, "post": None}
    assert record["consent"] == expected
    assert views[gid]["consent"] == record["consent"] == views[gid]["profile"]["consent"]
    assert lineage["consent.email"]["record_key"] == "social:3"
    assert lineage["consent.email"]["rule"] == "latest_statement"
    assert lineage["consent.phone"]["record_key"] == "webshop:2"
    assert lineage["consent.phone"]["source_updated_at"].startswith("2025-01-01")
