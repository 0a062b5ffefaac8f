"""Push planning against a real store: desired states per target, consent, caller directory, creates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from test_customer360_data import AS_OF, insert_xref, seed_demo

from hub.customer360 import build_360
from hub.push_plan import (
    desired_state,
    directory_entries,
    marketing_allowed,
    plan_pushes,
    target_configs,
)
from hub.store import Store, golden_customer, push_outbox

PUSH_CFG = {"targets": ["erp", "webshop", "social", "callcenter"], "erp": {"create_missing": True}}


def _outbox(store: Store, target: str, status: str = "pending") -> dict[str, dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(push_outbox.c.target_id, push_outbox.c.golden_id, push_outbox.c.payload)
            .where(push_outbox.c.target == target, push_outbox.c.status == status)
        ).all()
    return {tid or f"new:{gid}": payload for tid, gid, payload in rows}


def _ack_all(store: Store) -> None:
    for target in ("erp", "webshop", "social", "callcenter"):
        store.record_push_results([(i.id, "ok", None) for i in store.pending_pushes(target)])


def test_target_config_defaults_and_validation() -> None:
    by_name = {t.name: t for t in target_configs(PUSH_CFG)}
    assert by_name["social"].consent_channel == "social" and by_name["social"].mode == "records"
    assert by_name["callcenter"].mode == "directory" and by_name["callcenter"].entity == "directory"
    assert by_name["erp"].create_missing and not by_name["webshop"].create_missing
    tryton = target_configs({"targets": {"party_sync": {"kind": "wechat", "source": "wx2"}}})[0]
    assert (tryton.source, tryton.consent_channel) == ("wx2", "social")
    with pytest.raises(ValueError):
        target_configs({"targets": ["erp"], "erp": {"create_mising": True}})


def test_consent_policy() -> None:
    assert marketing_allowed({"social": True}, "social")
    assert not marketing_allowed({"social": None}, "social")  # unknown is never granted
    assert marketing_allowed({"social": None}, "social", "not_opted_out")
    assert not marketing_allowed({"social": False}, "social", "not_opted_out")
    assert marketing_allowed({}, None)  # not a marketing target
    view = {"segment": "vip", "value_tier": "gold", "lifecycle": "active", "consent": {"social": False}}
    assert desired_state("G1", view, "social") == ({"golden_id": "G1"}, True)
    assert desired_state("G1", view, None)[0] == {"golden_id": "G1", "segment": "vip", "value_tier": "gold",
                                                  "lifecycle": "active"}
    # a target holding consent is told it per channel, whether or not marketing fields may go
    payload, withheld = desired_state("G1", view, "social", with_consent=True)
    assert withheld and payload == {"golden_id": "G1", "consent_email": None, "consent_sms": None,
                                    "consent_phone": None, "consent_social": "no", "consent_post": None}


def test_directory_entries_pick_one_owner_per_shared_number() -> None:
    views = {
        "G2": {"profile": {"full_name": "王芳", "phones": ["+8613800000001", "+8613800000002"]},
               "orders_count": 1, "value_tier": "bronze", "segment": "new"},
        "G1": {"profile": {"full_name": "张伟", "phones": ["+8613800000001"]}, "orders_count": 9,
               "value_tier": "gold", "segment": "vip"},
    }
    entries, ambiguous, withheld = directory_entries(views)
    assert (ambiguous, withheld) == (1, 0)
    assert [(t, g) for t, g, _ in entries] == [("+8613800000001", "G1"), ("+8613800000002", "G2")]
    assert entries[0][2] == {"display_name": "张伟", "golden_id": "G1", "value_tier": "gold", "segment": "vip"}
    # the phone line is a marketing channel: without phone consent an agent sees no segment or tier
    views["G1"]["consent"] = {"phone": True, "sms": False}
    entries, _, withheld = directory_entries(views, "phone", with_consent=True)
    assert withheld == 1 and entries[0][2] == {"display_name": "张伟", "golden_id": "G1", "value_tier": "gold",
                                               "segment": "vip", "consent_phone": "yes", "consent_sms": "no"}
    assert entries[1][2] == {"display_name": "王芳", "golden_id": "G2", "consent_phone": None, "consent_sms": None}


def test_plan_pushes_queues_desired_state_per_target(store: Store) -> None:
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    stats = plan_pushes(store, PUSH_CFG)

    erp = _outbox(store, "erp")
    assert erp["10"] == {"golden_id": "G000000001", "segment": "vip", "value_tier": "platinum",
                         "lifecycle": "active", "consent_email": "yes", "consent_sms": None,
                         "consent_phone": "yes", "consent_social": "no", "consent_post": None}
    assert erp["11"]["segment"] == "prospect"
    # Anna has orders in the shop but no ERP party: a create row with contact data
    create = erp["new:G000000002"]
    assert create["display_name"] == "Anna Schmidt" and create["phones"] == ["+4915112345678"]
    assert create["emails"] == ["anna@example.de"] and create["value_tier"] == "bronze"
    assert create["consent_email"] == "yes" and create["consent_social"] == "yes"
    assert "new:G000000003" not in erp  # a prospect with no orders anywhere is not created
    webshop = _outbox(store, "webshop")
    assert set(webshop) == {"501", "502"}
    assert webshop["501"]["segment"] == "vip" and webshop["501"]["consent_email"] == "yes"  # e-mail consent
    # 陈伟 opted out of social marketing on WeChat: his follower record gets the golden id only
    assert _outbox(store, "social") == {"oWx1": {"golden_id": "G000000001"}}
    directory = _outbox(store, "callcenter")
    assert directory["+8613800138000"] == {"display_name": "陈伟", "golden_id": "G000000001",
                                           "value_tier": "platinum", "segment": "vip", "consent_phone": "yes",
                                           "consent_sms": None}
    # Anna never said yes to calls: her entry carries no segment or tier
    assert directory["+4915112345678"] == {"display_name": "Anna Schmidt", "golden_id": "G000000002",
                                           "consent_phone": None, "consent_sms": None}
    assert set(directory) == {"+8613800138000", "+4915112345678", "+8613912345678"}

    t = stats.targets
    assert (t["erp"].candidates, t["erp"].queued, t["erp"].creates_queued) == (2, 2, 1)
    assert (t["social"].queued, t["social"].consent_withheld) == (1, 1)
    assert t["callcenter"].consent_withheld == 2
    assert t["callcenter"].queued == 3 and stats.queued == 2 + 1 + 2 + 1 + 3
    assert "| social | customers | 1 | 1 | 0 | 1 |" in stats.markdown()

    # planning again changes nothing: nothing changed since the last plan, so nobody is planned; planned in
    # full, the same rows are already pending (creates included)
    again = plan_pushes(store, PUSH_CFG)
    assert again.queued == 0 and not again.full and again.golden_planned == 0
    again = plan_pushes(store, PUSH_CFG, force=True)
    assert again.queued == 0 and again.full and again.targets["erp"].unchanged == 2


def test_plan_is_diff_only_against_what_targets_hold(sqlite_store: Store) -> None:
    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    plan_pushes(store, PUSH_CFG)
    _ack_all(store)
    assert plan_pushes(store, PUSH_CFG).queued == 0  # targets hold the desired state, creates already done

    # 陈伟 slips to at_risk: exactly his records and his directory entry are re-queued
    build_360(store, {"lifecycle": {"at_risk_days": 100}}, as_of=AS_OF)
    stats = plan_pushes(store, PUSH_CFG)
    assert {n: t.queued for n, t in stats.targets.items()} == {"erp": 1, "webshop": 1, "social": 0,
                                                               "callcenter": 1}
    assert _outbox(store, "erp")["10"]["segment"] == "at_risk"
    assert stats.creates_queued == 0  # Anna's create succeeded: no second party, whatever changes


def test_directory_removes_numbers_no_golden_customer_holds(sqlite_store: Store) -> None:
    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    plan_pushes(store, {"targets": ["callcenter"]})
    _ack_all(store)
    with store.begin() as conn:
        rec = conn.execute(sa.select(golden_customer.c.record)
                           .where(golden_customer.c.golden_id == "G000000003")).scalar_one()
        rec = {**rec, "phones": [], "primary_phone": None}
        # as the golden stage writes a changed record: with its change time (what the 360 build looks at)
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000003")
                     .values(record=rec, updated_at=datetime.now(UTC).replace(tzinfo=None)))
    build_360(store, {}, as_of=AS_OF)
    stats = plan_pushes(store, {"targets": ["callcenter"]})
    assert stats.targets["callcenter"].removed == 1
    assert _outbox(store, "callcenter") == {"+8613912345678": {"golden_id": "G000000003", "lifecycle": "deleted"}}
    _ack_all(store)
    assert plan_pushes(store, {"targets": ["callcenter"]}).targets["callcenter"].removed == 0


def test_pending_create_is_superseded_when_the_golden_record_changes(sqlite_store: Store) -> None:
    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    plan_pushes(store, {"targets": ["erp"], "erp": {"create_missing": True}})
    build_360(store, {"lifecycle": {"lapsed_days": 1000}}, as_of=AS_OF)  # Anna: lapsed -> at_risk
    stats = plan_pushes(store, {"targets": ["erp"], "erp": {"create_missing": True}})
    assert stats.creates_queued == 1
    assert _outbox(store, "erp")["new:G000000002"]["lifecycle"] == "at_risk"
    superseded = _outbox(store, "erp", status="superseded")
    assert superseded["new:G000000002"]["lifecycle"] == "lapsed"
    # a rejected create is not retried with the same payload
    store.record_push_results([(i.id, "rejected", "validation") for i in store.pending_pushes("erp")
                               if i.target_id == ""])
    assert plan_pushes(store, {"targets": ["erp"], "erp": {"create_missing": True}}).creates_queued == 0


def test_social_follower_with_opt_in_gets_segment_tags(sqlite_store: Store) -> None:
    from test_customer360_data import customer, insert_staged, insert_xref, staged_row

    from hub.models import Consent

    store = sqlite_store
    seed_demo(store)
    insert_staged(store, [staged_row("customers", customer("social", "oAnna", "Anna",
                                                           consent=Consent(social=True)))])
    insert_xref(store, [("social:oAnna", "G000000002")])
    build_360(store, {}, as_of=AS_OF)
    stats = plan_pushes(store, {"targets": ["social"]})
    assert _outbox(store, "social")["oAnna"] == {"golden_id": "G000000002", "segment": "lapsed",
                                                 "value_tier": "bronze", "lifecycle": "lapsed"}
    assert stats.targets["social"].consent_withheld == 1  # 陈伟 still opted out


def test_records_the_source_does_not_hold_are_not_pushed(sqlite_store: Store) -> None:
    """A customer record derived from another payload (a web-shop guest checkout) has no target record."""
    store = sqlite_store
    seed_demo(store)
    insert_xref(store, [("webshop:guest-order-77", "G000000001")], landed=False)
    build_360(store, {}, as_of=AS_OF)
    plan_pushes(store, {"targets": ["webshop"]})
    assert "guest-order-77" not in _outbox(store, "webshop")
    assert _outbox(store, "webshop")  # the shop's own customers are still pushed


def test_queueing_over_a_backlog_reads_each_records_rows_by_key(sqlite_store: Store) -> None:
    """Queueing looks up the rows of the records it queues (waiting, refused) through (target, entity,
    target_id): with the status in the WHERE clause SQLite walked every waiting row of the target for each 500
    ids — quadratic once a target that was down has a backlog. The outcome is the same: a new desired state
    supersedes the waiting row, a refused payload is not offered again."""
    from query_plans import plan_of, statements_of

    store = sqlite_store
    first = [(str(i), f"G{i}", {"hub_golden_id": f"G{i}", "v": 1}) for i in range(600)]
    assert store.enqueue_pushes("webshop", "customers", first) == 600
    with store.begin() as conn:
        conn.execute(push_outbox.update().where(push_outbox.c.target_id == "7").values(status="rejected"))
    again = [(t, g, {**p, "v": 1 if t == "7" else 2}) for t, g, p in first]
    seen = statements_of(store, lambda: store.enqueue_pushes("webshop", "customers", again))
    reads = [(s, p) for s, p in seen if "FROM push_outbox" in s and "target_id IN" in s]
    assert reads
    for statement, params in reads:
        plan = " ".join(plan_of(store, statement, params))
        assert "ix_outbox_target_record (target=? AND entity=? AND target_id=?)" in plan, plan
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(push_outbox.c.target_id, push_outbox.c.status, push_outbox.c.payload)).all()
    assert sum(1 for _, status, _ in rows if status == "pending") == 599  # each superseded by its v2 row
    assert [p["v"] for t, status, p in rows if status == "pending" and t == "8"] == [2]
    assert not [r for r in rows if r[0] == "7" and r[1] == "pending"]  # the refused payload is not queued again


def test_a_plan_reads_the_holders_of_directory_numbers_by_number(sqlite_store: Store) -> None:
    """The caller directory's holders of a chunk's numbers are read from the phone rows by number (and by golden
    id), each holder's status looked up after: as a join SQLite walked every active golden customer for each
    500 numbers asked for — 140 s of a 20k-people first plan, hours at a million."""
    from query_plans import plan_of, statements_of

    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    seen = statements_of(store, lambda: plan_pushes(store, PUSH_CFG))
    reads = [(s, p) for s, p in seen
             if s.startswith("SELECT customer_360_phone.phone, customer_360_phone.golden_id") and " IN (" in s]
    assert reads
    for statement, params in reads:
        plan = plan_of(store, statement, params)
        assert plan[0].startswith("SEARCH customer_360_phone USING"), plan  # the phone rows first
        assert "SCAN golden_customer" not in " ".join(plan) and "ix_golden_status" not in " ".join(plan), plan
    assert _outbox(store, "callcenter")  # the directory is planned


@pytest.mark.parametrize("by_key_max", [20_000, 0])
def test_an_incremental_plan_finds_drift_as_a_full_plan_does(sqlite_store: Store, monkeypatch: pytest.MonkeyPatch,
                                                             by_key_max: int) -> None:
    """An incremental plan checks for drift only the records a pull saw change, a push wrote, or that wait or
    were refused: a record whose hub fields someone changed after the push is queued again; a refused repair is
    queued again by every plan (as a full plan does), and one that went through leaves nothing to repair. With
    more such records than ``DRIFT_BY_KEY_MAX`` (0 here), every push state is joined: the same findings."""
    import hub.store
    from hub.store import LandingRecord, payload_hash, push_state

    monkeypatch.setattr(hub.store, "DRIFT_BY_KEY_MAX", by_key_max)
    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    body = {"id": "501"}

    def pull_sees(hub_state: dict) -> None:
        store.land_page("webshop", "customers", [LandingRecord("501", body, payload_hash(body), hub_state)], None)

    pull_sees({"hub_golden_id": "G000000001"})  # what the shop shows of the hub's fields before the first push
    plan_pushes(store, PUSH_CFG)
    desired = _outbox(store, "webshop")["501"]
    for target in ("erp", "webshop", "social", "callcenter"):  # every push lands; the shop reports what it holds
        store.record_push_results([(i.id, "ok", None) for i in store.pending_pushes(target)],
                                  held={i.id: i.payload for i in store.pending_pushes(target)}
                                  if target == "webshop" else None,
                                  held_source="webshop" if target == "webshop" else None)
    assert plan_pushes(store, PUSH_CFG).drift == 0

    pull_sees({"hub_golden_id": "G000000001", "hub_segment": "typed over"})  # someone edits the hub's fields
    stats = plan_pushes(store, PUSH_CFG)
    assert not stats.full and stats.drift == 1 and _outbox(store, "webshop") == {"501": desired}
    assert stats.drift == plan_pushes(store, PUSH_CFG, force=True).drift  # what a full plan finds

    rows = store.pending_pushes("webshop")
    store.record_push_results([(i.id, "rejected", "refused") for i in rows])
    again = plan_pushes(store, PUSH_CFG)  # nothing changed, but the repair was refused: queued again
    assert not again.full and again.drift == 1 and _outbox(store, "webshop") == {"501": desired}

    rows = store.pending_pushes("webshop")
    store.record_push_results([(i.id, "ok", None) for i in rows], held={i.id: i.payload for i in rows},
                              held_source="webshop")
    with store.engine.connect() as conn:
        held = conn.execute(sa.select(push_state.c.held_hash).where(push_state.c.target == "webshop",
                                                                    push_state.c.target_id == "501")).scalar()
    assert held == payload_hash(desired)
    done = plan_pushes(store, PUSH_CFG)
    assert not done.full and done.drift == 0 and not _outbox(store, "webshop")
    assert plan_pushes(store, PUSH_CFG, force=True).drift == 0


def test_creates_are_queued_once_per_payload_and_looked_up_by_golden_id(sqlite_store: Store) -> None:
    """``enqueue_creates`` skips a golden customer whose create row has this payload or was sent (ok), supersedes
    a waiting create with an older payload, and reads only the create rows of the golden customers it is given,
    through the index (it read every create row of the target for each chunk of a plan: a full plan's reads grew
    with the square of the population)."""
    from query_plans import plan_of, statements_of

    from hub.push_plan import enqueue_creates

    store = sqlite_store
    assert enqueue_creates(store, "erp", "customers", [(f"G{i:05d}", {"n": i}) for i in range(3000)]) == 3000
    assert enqueue_creates(store, "shop", "customers", [("G00001", {"n": 1})]) == 1  # another target's own
    with store.begin() as conn:
        conn.execute(push_outbox.update().where(push_outbox.c.golden_id == "G00002").values(status="ok"))
    again = [("G00001", {"n": 1}), ("G00002", {"n": 22}), ("G00003", {"n": 33}), ("G09999", {"n": 9})]
    seen = statements_of(store, lambda: enqueue_creates(store, "erp", "customers", again))
    reads = [(s, p) for s, p in seen if "FROM push_outbox" in s]
    assert len(reads) == 1
    plan = " ".join(plan_of(store, *reads[0]))
    assert "ix_outbox_golden (golden_id=? AND target=? AND entity=? AND target_id=?)" in plan, plan
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(push_outbox.c.target, push_outbox.c.golden_id, push_outbox.c.status,
                                      push_outbox.c.payload).order_by(push_outbox.c.id)).all()
    erp = [(g, status, p["n"]) for t, g, status, p in rows if t == "erp" and g in ("G00001", "G00002", "G00003", "G09999")]
    assert erp == [("G00001", "pending", 1), ("G00002", "ok", 2), ("G00003", "superseded", 3),
                   ("G00003", "pending", 33), ("G09999", "pending", 9)]
    assert [(g, status) for t, g, status, _ in rows if t == "shop"] == [("G00001", "pending")]
    assert len(rows) == 3000 + 1 + 2


def test_an_incremental_plan_removes_a_number_whose_last_holder_dropped_it_before_its_push_went_out(
        sqlite_store: Store) -> None:
    """The directory's number moves from 李娜 to 陈伟 while the call center is down (the row naming 陈伟 waits in
    the outbox; the directory still says 李娜), then 陈伟 drops it too: the incremental plan, which checks only
    the numbers of the golden customers that changed, finds it through the waiting row and removes it, as a
    full plan does (it checks every number)."""
    store = sqlite_store
    seed_demo(store)
    build_360(store, {}, as_of=AS_OF)
    cfg = {"targets": ["callcenter"]}
    plan_pushes(store, cfg)
    _ack_all(store)
    number = "+8613912345678"
    assert _outbox(store, "callcenter", "ok")[number]["golden_id"] == "G000000003"

    def phones(gid: str, keep: list[str], at: datetime) -> None:
        with store.begin() as conn:
            rec = conn.execute(sa.select(golden_customer.c.record)
                               .where(golden_customer.c.golden_id == gid)).scalar_one()
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == gid).values(
                record={**rec, "phones": keep, "primary_phone": keep[0] if keep else None}, updated_at=at))

    with store.engine.connect() as conn:
        chen = conn.execute(sa.select(golden_customer.c.record)
                            .where(golden_customer.c.golden_id == "G000000001")).scalar_one()["phones"]
    phones("G000000003", [], datetime(2030, 1, 1))
    phones("G000000001", [*chen, number], datetime(2030, 1, 1))
    build_360(store, {}, as_of=AS_OF)
    assert not plan_pushes(store, cfg).full
    assert _outbox(store, "callcenter")[number]["golden_id"] == "G000000001"  # waiting: the call center is down
    phones("G000000001", chen, datetime(2030, 1, 2))
    build_360(store, {}, as_of=AS_OF)
    stats = plan_pushes(store, cfg)
    assert not stats.full and stats.targets["callcenter"].removed == 1
    assert _outbox(store, "callcenter")[number] == {"golden_id": "G000000003", "lifecycle": "deleted"}
    assert plan_pushes(store, cfg, force=True).queued == 0  # a full plan queues nothing more
