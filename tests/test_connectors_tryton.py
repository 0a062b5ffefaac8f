"""The Tryton connector against a real trytond (SQLite backend) started by tests/tryton_harness.py.

One server per session; tests that change ERP data use their own parties/sales so the order of tests does
not matter. Each test lands into its own fresh hub store.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
import tryton_harness as harness
from test_connectors_base import QuietHTTPServer

from hub.connectors.base import ConnectorError, SourceAuthError, SourceUnavailable, run_pull, run_push
from hub.connectors.tryton import (
    GOLDEN_ID_PREFIX,
    TrytonAuthError,
    TrytonConnector,
    decode_body,
    hash_view,
)
from hub.store import OutboxItem, Store, landing, payload_hash, push_outbox, push_result

pytestmark = pytest.mark.tryton

MODELS = {"customers": "party.party", "orders": "sale.sale", "shipments": "stock.shipment.out"}


@pytest.fixture(scope="session")
def tryton() -> Iterator[harness.TrytonServer]:
    with harness.running_server(parties=40, sales=30) as server:
        yield server


@pytest.fixture
def rpc(tryton: harness.TrytonServer) -> harness.RawRpc:
    r = tryton.rpc()
    r.context["active_test"] = False
    return r


def connector(server: harness.TrytonServer, **kw) -> TrytonConnector:
    return TrytonConnector(server.url, server.database, server.username, server.password, **kw)


def server_ids(rpc: harness.RawRpc, entity: str) -> set[str]:
    """What a pull must land: every row, less the ERP's own company party among the customers."""
    ids = {str(i) for i in rpc.search(MODELS[entity], [])}
    if entity == "customers":
        ids -= {str(r["party"]) for r in rpc.search_read("company.company", [], ["party"])}
    return ids


def landed(store: Store, entity: str, source_id: int | str) -> dict:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(landing.c.payload, landing.c.payload_hash).where(
            landing.c.source == "tryton", landing.c.entity == entity,
            landing.c.source_id == str(source_id))).one()
    payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
    return {"payload": payload, "hash": row.payload_hash}


def pull_all(conn: TrytonConnector, store: Store) -> dict:
    return {e: run_pull(conn, store, e) for e in conn.entities}


# ------------------------------------------------------------------------------------------------- pulls
def test_full_pull_lands_every_record_exactly_once(tryton, rpc, sqlite_store):
    conn = connector(tryton, page_size=16)  # several pages per entity
    stats = pull_all(conn, sqlite_store)
    for entity in conn.entities:
        expected = server_ids(rpc, entity)
        assert expected, entity
        assert sqlite_store.landed_ids("tryton", entity) == expected
        assert stats[entity].new == len(expected) == stats[entity].records
        assert stats[entity].pages >= 2

    # the ERP's own company is not a customer; the carrier (a supplier party) is not the hub's to judge
    own = rpc.search_read("company.company", [], ["party"])[0]["party"]
    assert str(own) not in sqlite_store.landed_ids("tryton", "customers")

    # content is the server's own data, children embedded
    pid = tryton.seed.parties[1]
    srv = rpc.search_read("party.party", [["id", "=", pid]],
                          ["name", "addresses.street", "contact_mechanisms.value"])[0]
    got = landed(sqlite_store, "customers", pid)["payload"]
    assert got["name"] == srv["name"] and "#00001" in got["name"]
    assert [a["street"] for a in got["addresses"]] == [a["street"] for a in srv["addresses."]]
    assert sorted(c["value"] for c in got["contact_mechanisms"]) == sorted(
        c["value"] for c in srv["contact_mechanisms."])
    assert any("+86" in c["value"] for c in got["contact_mechanisms"])

    sale = rpc.search_read("sale.sale", [["state", "=", "processing"]], ["total_amount", "lines"], limit=1)[0]
    order = landed(sqlite_store, "orders", sale["id"])["payload"]
    assert Decimal(order["total_amount"]) == Decimal(sale["total_amount"]["decimal"]) and len(order["lines"]) == len(
        sale["lines"])
    assert order["state"] == "processing" and order["shipments"]
    done = rpc.search_read("stock.shipment.out", [["state", "=", "done"]], ["effective_date"], limit=1)[0]
    ship = landed(sqlite_store, "shipments", done["id"])["payload"]
    assert ship["state"] == "done" and ship["effective_date"] and ship["delivery_address"]["city"]
    assert ship["outgoing_moves"] and ship["outgoing_moves"][0]["origin"].startswith("sale.line,")
    assert {m["sale"] for m in ship["outgoing_moves"]} <= {int(i) for i in server_ids(rpc, "orders")}

    # a second sync with no changes lands nothing
    again = pull_all(connector(tryton, page_size=16), sqlite_store)
    for entity, s in again.items():
        assert (s.new, s.changed) == (0, 0), entity


def test_incremental_sync_picks_up_parent_and_child_changes(tryton, rpc, sqlite_store):
    # overlap 0 so the second sweep really is narrow (only rows at/after the high-water mark)
    conn = connector(tryton, overlap=timedelta(0))
    pull_all(conn, sqlite_store)
    total = len(server_ids(rpc, "customers"))

    renamed, phoned, moved, buyer = tryton.seed.parties[10:14]
    rpc.write("party.party", [renamed], {"name": "陳偉 (renamed) #00010"})
    # a child create and a child write: neither touches party.write_date (tryton.md §5)
    rpc.create("party.contact_mechanism", [{"party": phoned, "type": "phone", "value": "+86 10 6552 9988"}])
    addr = rpc.search("party.address", [["party", "=", moved]], limit=1)
    rpc.write("party.address", addr, {"street": "88号 长安街"})
    rnd = random.Random(3)
    sale = harness.create_sale(rpc, buyer, tryton.seed.products, tryton.seed.unit, rnd)
    rpc.call("model.sale.sale.quote", [sale])
    rpc.call("model.sale.sale.confirm", [sale])
    new_ship = rpc.search_read("sale.sale", [["id", "=", sale]], ["shipments"])[0]["shipments"]
    assert new_ship

    conn2 = connector(tryton, overlap=timedelta(0))
    st = pull_all(conn2, sqlite_store)
    assert (st["customers"].new, st["customers"].changed) == (0, 3)
    assert st["customers"].records < total  # a window, not a full sweep
    assert landed(sqlite_store, "customers", renamed)["payload"]["name"] == "陳偉 (renamed) #00010"
    phones = [c["value"] for c in landed(sqlite_store, "customers", phoned)["payload"]["contact_mechanisms"]]
    assert "+86 10 6552 9988" in phones
    streets = [a["street"] for a in landed(sqlite_store, "customers", moved)["payload"]["addresses"]]
    assert "88号 长安街" in streets
    assert st["orders"].new == 1 and str(sale) in sqlite_store.landed_ids("tryton", "orders")
    assert landed(sqlite_store, "orders", sale)["payload"]["state"] == "processing"
    assert st["shipments"].new == len(new_ship)
    # orders/shipments embed their address: the street change is a change of exactly those rows
    moved_sales = rpc.search("sale.sale", [["shipment_address", "in", addr], ["id", "!=", sale]])
    moved_ships = rpc.search("stock.shipment.out", [["delivery_address", "in", addr], ["id", "not in", new_ship]])
    assert st["orders"].changed == len(moved_sales)
    assert st["shipments"].changed == len(moved_ships)

    # shipment state change (a child stock.move and the shipment itself) is seen too
    rpc.call("model.stock.shipment.out.assign_try", new_ship)
    st3 = run_pull(connector(tryton, overlap=timedelta(0)), sqlite_store, "shipments")
    assert st3.changed == len(new_ship)
    assert landed(sqlite_store, "shipments", new_ship[0])["payload"]["state"] == "assigned"

    # and a quiet sync after that lands nothing (default overlap: re-reads, but unchanged)
    quiet = pull_all(connector(tryton), sqlite_store)
    for entity, s in quiet.items():
        assert (s.new, s.changed) == (0, 0), entity
        assert s.unchanged == s.records


class Killed(RuntimeError):
    pass


def _dies_after(conn: TrytonConnector, k: int) -> TrytonConnector:
    """Fault injection: the pull process dies after k pages were produced (page k+1 never lands)."""
    real = conn.pages

    def pages(entity, cursor):
        for i, page in enumerate(real(entity, cursor)):
            if i == k:
                raise Killed(f"killed before page {k + 1}")
            yield page

    conn.pages = pages  # type: ignore[method-assign]
    return conn


@pytest.mark.parametrize("entity", ["customers", "orders"])
def test_killed_pull_resumes_without_loss_or_duplicates(tryton, rpc, sqlite_store, entity):
    expected = server_ids(rpc, entity)
    with pytest.raises(Killed):
        run_pull(_dies_after(connector(tryton, page_size=7), 2), sqlite_store, entity)
    assert len(sqlite_store.landed_ids("tryton", entity)) == 14
    cursor = sqlite_store.get_cursor("tryton", entity)
    assert cursor["last_id"] is not None  # mid-sweep

    resumed = run_pull(connector(tryton, page_size=7), sqlite_store, entity)
    assert resumed.changed == 0 and resumed.unchanged == 0
    assert resumed.new == len(expected) - 14  # nothing re-landed, nothing skipped
    assert sqlite_store.landed_ids("tryton", entity) == expected
    assert sqlite_store.get_cursor("tryton", entity)["last_id"] is None


def test_deactivated_party_comes_through_as_a_change(tryton, rpc, sqlite_store):
    victim = tryton.seed.parties[20]
    run_pull(connector(tryton), sqlite_store, "customers")
    rpc.write("party.party", [victim], {"active": False})
    try:
        st = run_pull(connector(tryton), sqlite_store, "customers")
        assert st.changed == 1
        assert landed(sqlite_store, "customers", victim)["payload"]["active"] is False
    finally:
        rpc.write("party.party", [victim], {"active": True})


def test_id_sweep_finds_deleted_and_deactivated_parties_and_their_return(tryton, rpc, sqlite_store):
    """Tryton's ``active`` and deletions are found by an id-only sweep; a party switched on again is back."""
    from hub.connectors.base import run_sweep
    from hub.store import source_tombstone

    conn = connector(tryton)
    run_pull(conn, sqlite_store, "customers")
    off = tryton.seed.parties[21]
    doomed = harness.create_parties(rpc, 1, start=9000)[0]  # a party without documents can be deleted
    run_pull(conn, sqlite_store, "customers")
    assert str(doomed) in conn.present_ids("customers").present
    rpc.write("party.party", [off], {"active": False})
    rpc.call("model.party.party.delete", [doomed])
    try:
        stats = run_sweep(conn, sqlite_store, "customers")
        assert (stats.deleted, stats.deactivated, stats.refused) == (1, 1, None)
        with sqlite_store.engine.connect() as c:
            kinds = dict(c.execute(sa.select(source_tombstone.c.source_id, source_tombstone.c.kind)).all())
        assert kinds == {str(doomed): "deleted", str(off): "deactivated"}
        assert run_sweep(conn, sqlite_store, "customers").retired == 0  # known already: nothing new
    finally:
        rpc.write("party.party", [off], {"active": True})
    stats = run_sweep(conn, sqlite_store, "customers")
    assert stats.revived == 1
    with sqlite_store.engine.connect() as c:
        assert dict(c.execute(sa.select(source_tombstone.c.source_id, source_tombstone.c.kind)).all()) == {
            str(doomed): "deleted"}
    assert run_sweep(conn, sqlite_store, "orders").retired == 0


def test_withdrawal_takes_the_hubs_identifier_and_categories_off_a_party(tryton, rpc, sqlite_store):
    party = tryton.seed.parties[27]
    conn = connector(tryton)
    out = conn.push([OutboxItem(1, "tryton", "customers", str(party), "G000779",
                                {"golden_id": "G000779", "segment": "vip", "consent_email": "yes"}, 0)])
    assert out[0].status == "ok"
    assert _hub_state(rpc, party)[:2] == ([GOLDEN_ID_PREFIX + "G000779"],
                                          ["hub:consent_email:yes", "hub:segment:vip"])
    others = [c["name"] for c in rpc.search_read("party.party", [["id", "=", party]], ["categories.name"])[0][
        "categories."] if not c["name"].startswith("hub:")]
    out = conn.push([OutboxItem(2, "tryton", "customers", str(party), "G000779", {"action": "withdraw"}, 0)])
    assert out[0].status == "ok"
    assert _hub_state(rpc, party)[:2] == ([], [])
    assert [c["name"] for c in rpc.search_read("party.party", [["id", "=", party]], ["categories.name"])[0][
        "categories."] if not c["name"].startswith("hub:")] == others


def test_erasure_deletes_a_party_without_documents_and_anonymises_one_with_documents(tryton, rpc):
    """``{"action": "erase"}``: a party no document points at is deleted; a party with sales is switched off,
    renamed and stripped of contact mechanisms, identifiers and address details; pushing again changes
    nothing (the erasure is idempotent)."""
    conn = connector(tryton)
    lone = harness.create_parties(rpc, 1, start=9100)[0]
    with_sales = rpc.search_read("sale.sale", [["id", "=", tryton.seed.sales[-1]]], ["party"])[0]["party"]
    conn.push([OutboxItem(1, "tryton", "customers", str(with_sales), "G000780",
                          {"golden_id": "G000780", "segment": "vip"}, 0)])
    erase = {"action": "erase", "erasure_id": "E000000001"}
    out = conn.push([OutboxItem(2, "tryton", "customers", str(lone), "E000000001", erase, 0),
                     OutboxItem(3, "tryton", "customers", str(with_sales), "E000000001", erase, 0)])
    assert [(o.status, o.reason) for o in out] == [("ok", "party deleted"),
                                                  ("ok", "party deactivated and anonymised")]
    assert rpc.search("party.party", [["id", "=", lone]]) == []
    party = rpc.search_read("party.party", [["id", "=", with_sales]],
                            ["name", "active", "contact_mechanisms", "identifiers", "categories.name",
                             "addresses.street", "addresses.city", "addresses.postal_code"])[0]
    assert (party["name"], party["active"], party["contact_mechanisms"], party["identifiers"]) == (
        "(erased)", False, [], [])
    assert not [c for c in party["categories."] if c["name"].startswith("hub:")]
    assert all(not a.get("street") and not a.get("city") and not a.get("postal_code") for a in party["addresses."])
    again = conn.push([OutboxItem(4, "tryton", "customers", str(with_sales), "E000000001", erase, 0)])
    assert (again[0].status, again[0].reason) == ("ok", "party deactivated and anonymised")


# ------------------------------------------------------------------------------------------------- push
def _hub_state(rpc: harness.RawRpc, party: int) -> tuple[list[str], list[str], dict]:
    p = rpc.search_read("party.party", [["id", "=", party]],
                        ["write_date", "identifiers.code", "identifiers.type", "categories.name"])[0]
    idents = [i["code"] for i in p["identifiers."] if i["code"].startswith(GOLDEN_ID_PREFIX)]
    cats = sorted(c["name"] for c in p["categories."] if c["name"].startswith("hub:"))
    return idents, cats, p["write_date"]


def test_push_golden_id_and_categories_is_idempotent_and_not_echoed(tryton, rpc, sqlite_store):
    a, b = tryton.seed.parties[25], tryton.seed.parties[26]
    run_pull(connector(tryton), sqlite_store, "customers")
    hash_before = landed(sqlite_store, "customers", a)["hash"]

    sqlite_store.enqueue_push("tryton", "customers", str(a), "G000777",
                              {"golden_id": "G000777", "segment": "vip", "value_tier": "gold"})
    sqlite_store.enqueue_push("tryton", "customers", str(b), "G000778",
                              {"golden_id": "G000778", "segment": "regular"})
    conn = connector(tryton)
    ps = run_push(conn, sqlite_store)
    assert (ps.ok, ps.rejected, ps.error) == (2, 0, 0)
    assert sqlite_store.pending_pushes("tryton") == []
    idents, cats, wd = _hub_state(rpc, a)
    assert idents == [GOLDEN_ID_PREFIX + "G000777"]
    assert cats == ["hub:segment:vip", "hub:value_tier:gold"]
    assert _hub_state(rpc, b)[:2] == ([GOLDEN_ID_PREFIX + "G000778"], ["hub:segment:regular"])

    # echo suppression: the party was written (categories) and got an identifier, yet the pull sees no change
    st = run_pull(connector(tryton), sqlite_store, "customers")
    assert st.changed == 0 and st.new == 0
    stored = landed(sqlite_store, "customers", a)
    assert stored["hash"] == hash_before
    # ...although the payload read from Tryton does carry the hub's identifier and categories
    fresh = {r.source_id: r for p in connector(tryton).pages("customers", None) for r in p.records}[str(a)]
    assert GOLDEN_ID_PREFIX + "G000777" in [i["code"] for i in fresh.payload["identifiers"]]
    assert "hub:segment:vip" in [c["name"] for c in fresh.payload["categories"]]
    assert fresh.payload_hash == hash_before

    # idempotent: the same push again writes nothing at all in Tryton
    items = [OutboxItem(1, "tryton", "customers", str(a), "G000777",
                        {"golden_id": "G000777", "segment": "vip", "value_tier": "gold"}, 1)]
    assert [o.status for o in conn.push(items)] == ["ok"]
    assert _hub_state(rpc, a) == (idents, cats, wd)

    # a changed segment replaces the hub category instead of piling up; non-hub categories are untouched
    before_other = [c for c in rpc.search_read("party.party", [["id", "=", a]], ["categories.name"])[0][
        "categories."] if not c["name"].startswith("hub:")]
    out = conn.push([OutboxItem(2, "tryton", "customers", str(a), "G000777",
                                {"golden_id": "G000777", "segment": "regular", "value_tier": "gold"}, 0)])
    assert out[0].status == "ok"
    assert _hub_state(rpc, a)[1] == ["hub:segment:regular", "hub:value_tier:gold"]
    after_other = [c for c in rpc.search_read("party.party", [["id", "=", a]], ["categories.name"])[0][
        "categories."] if not c["name"].startswith("hub:")]
    assert after_other == before_other
    # a push is never a landing change
    assert run_pull(connector(tryton), sqlite_store, "customers").changed == 0

    # the golden id changed upstream (two golden records merged): the identifier is rewritten, not added
    out = conn.push([OutboxItem(3, "tryton", "customers", str(a), "G000100",
                                {"golden_id": "G000100", "segment": "regular", "value_tier": "gold"}, 0)])
    assert out[0].status == "ok"
    assert _hub_state(rpc, a)[0] == [GOLDEN_ID_PREFIX + "G000100"]


def test_the_hubs_own_writes_are_not_read_again_but_a_change_they_hide_is(tryton, rpc, sqlite_store):
    """A push moves the parties' write_date (categories) and creates identifiers: the next pull must not
    re-read those parties for it. A party a clerk renamed after the pull and before the hub wrote it still
    comes through (the hub's write hid the clerk's date)."""
    wrote, clerk = tryton.seed.parties[22:24], tryton.seed.parties[24]
    # a later change elsewhere: the pull's high-water mark is past the seeding, as in any live ERP
    rpc.write("party.party", [tryton.seed.parties[28]], {"name": "赵敏 #00028"})
    run_pull(connector(tryton, overlap=timedelta(0)), sqlite_store, "customers")
    rpc.write("party.party", [clerk], {"name": "周杰 (clerk edit) #00024"})  # after the pull, before the push
    sqlite_store.enqueue_pushes("tryton", "customers", [
        (str(pid), f"G{500 + k:06d}", {"golden_id": f"G{500 + k:06d}", "segment": "vip", "value_tier": "gold"})
        for k, pid in enumerate([*wrote, clerk])])
    assert run_push(connector(tryton, overlap=timedelta(0)), sqlite_store).ok == 3  # as its pull: one config
    own = sqlite_store.get_cursor("tryton", "customers")["own"]
    assert own["stamps"] and own["reread"] == [clerk]

    st = run_pull(connector(tryton, overlap=timedelta(0)), sqlite_store, "customers")
    # the clerk's party, and the party changed at the high-water mark (the window includes its bound); the
    # hub's own writes are not read
    assert (st.records, st.changed) == (2, 1)
    assert landed(sqlite_store, "customers", clerk)["payload"]["name"] == "周杰 (clerk edit) #00024"
    assert sqlite_store.get_cursor("tryton", "customers")["own"]["reread"] == []
    assert run_pull(connector(tryton, overlap=timedelta(0)), sqlite_store, "customers").records == 0
    # the drift check still sees what the parties hold: the hub state of the landing rows was kept
    assert sqlite_store.holdings("tryton", "tryton", [str(wrote[0])])[0][str(wrote[0])]["golden_id"] == "G000500"

    # someone else's later change to a party the hub wrote is a change like any other
    rpc.write("party.party", [wrote[1]], {"name": "王芳 (renamed) #00023"})
    ident = rpc.search("party.identifier", [["party", "=", wrote[0]], ["code", "like", GOLDEN_ID_PREFIX + "%"]])
    rpc.write("party.identifier", ident, {"code": "G-TYPO"})  # a direct child write: the party's date stays
    st = run_pull(connector(tryton, overlap=timedelta(0)), sqlite_store, "customers")
    assert (st.records, st.changed) == (2, 2)  # the typo'd code is no hub identifier any more
    assert sqlite_store.holdings("tryton", "tryton", [str(wrote[0])])[0][str(wrote[0])]["golden_id"] is None


def test_push_rejects_unknown_party_and_creates_missing_party_once(tryton, rpc):
    conn = connector(tryton)
    out = conn.push([OutboxItem(1, "tryton", "customers", "99999999", "G1", {"golden_id": "G1"}, 0),
                     OutboxItem(2, "tryton", "customers", "", "G2", {"golden_id": "G2", "display_name": "x"}, 0)])
    assert [o.status for o in out] == ["rejected", "rejected"]  # create_missing_parties is off by default

    creator = connector(tryton, create_missing_parties=True)
    payload = {"golden_id": "G009001", "display_name": "陈伟", "phones": ["+8613800138000"],
               "emails": ["chen.wei@example.com"], "segment": "vip",
               "address": {"street": "1号 人民路", "city": "上海", "postal_code": "200002", "country": "CN"}}
    item = OutboxItem(3, "tryton", "customers", "", "G009001", payload, 0)
    first = creator.push([item])
    assert first[0].status == "ok", first
    ident = rpc.search_read("party.identifier", [["code", "=", GOLDEN_ID_PREFIX + "G009001"]],
                            ["party", "party.name"])
    assert len(ident) == 1 and ident[0]["party."]["name"] == "陈伟"
    party = rpc.search_read("party.party", [["id", "=", ident[0]["party"]]],
                            ["contact_mechanisms.value", "addresses.city", "categories.name"])[0]
    assert {c["value"] for c in party["contact_mechanisms."]} >= {"chen.wei@example.com"}
    assert any(c["value"].replace(" ", "") == "+8613800138000" for c in party["contact_mechanisms."])
    assert party["addresses."][0]["city"] == "上海"
    assert [c["name"] for c in party["categories."]] == ["hub:segment:vip"]
    # pushing again (e.g. the outbox result was lost in a crash) finds the party instead of creating a twin
    assert creator.push([item])[0].status == "ok"
    assert len(rpc.search("party.identifier", [["code", "=", GOLDEN_ID_PREFIX + "G009001"]])) == 1

    # "new:<golden id>" targets work too, and several creates in one batch stay apart
    items = [OutboxItem(10 + k, "tryton", "customers", f"new:G00905{k}", f"G00905{k}",
                        {"golden_id": f"G00905{k}", "display_name": f"Wang Fang {k}"}, 0) for k in range(2)]
    assert [o.status for o in creator.push(items)] == ["ok", "ok"]
    for k in range(2):
        got = rpc.search_read("party.identifier", [["code", "=", f"{GOLDEN_ID_PREFIX}G00905{k}"]], ["party.name"])
        assert [g["party."]["name"] for g in got] == [f"Wang Fang {k}"]

    # Tryton refusing the data (an invalid phone number) is a rejection, not a retryable error
    bad = OutboxItem(4, "tryton", "customers", "", "G009002",
                     {"golden_id": "G009002", "display_name": "Bad Phone", "phones": ["12"]}, 0)
    out = creator.push([bad])
    assert out[0].status == "rejected" and out[0].reason.startswith("UserError")


def test_hash_view_ignores_hub_fields_and_bookkeeping():
    base = {"id": 1, "name": "陳偉", "write_date": "2026-01-01T00:00:00",
            "identifiers": [{"id": 1, "type": None, "code": "LEGACY-1"}],
            "categories": [{"id": 3, "name": "Retail"}]}
    pushed = {**base, "write_date": "2026-02-02T00:00:00",
              "identifiers": [*base["identifiers"], {"id": 9, "type": None, "code": GOLDEN_ID_PREFIX + "G1"}],
              "categories": [*base["categories"], {"id": 7, "name": "hub:segment:vip"}]}
    assert payload_hash(hash_view("customers", base)) == payload_hash(hash_view("customers", pushed))
    renamed = {**base, "name": "陈伟"}
    assert payload_hash(hash_view("customers", base)) != payload_hash(hash_view("customers", renamed))


# ------------------------------------------------------------------------------------------------- protocol
def test_expired_session_logs_in_again(tryton):
    conn = connector(tryton)
    assert conn.rpc.search("party.party", [], limit=1)
    assert conn.rpc.logins == 1
    # end the session on the server behind the connector's back
    r = requests.post(conn.rpc.rpc_url, json={"id": 1, "method": "common.db.logout", "params": []},
                      headers={"Authorization": conn.rpc._auth}, timeout=10)
    assert r.status_code == 200
    r = requests.post(conn.rpc.rpc_url, json={"id": 2, "method": "model.party.party.search",
                                              "params": [[], 0, 1, None, {}]},
                      headers={"Authorization": conn.rpc._auth}, timeout=10)
    assert r.status_code == 401  # the old token is really dead
    assert conn.rpc.search("party.party", [], limit=1)
    assert conn.rpc.logins == 2


def test_wrong_password_is_one_clear_refusal_without_the_password(tryton, proxy_factory, sqlite_store, caplog):
    caplog.set_level(logging.DEBUG)
    # a throwaway user, so the login throttle never locks out the real test user
    rpc = tryton.rpc()
    rpc.create("res.user", [{"name": "Hub reader", "login": "hub-reader", "password": "right-pass-4711"}])
    proxy = proxy_factory({})
    bad = TrytonConnector(proxy.url, tryton.database, "hub-reader", "wrong-pass-0815")
    bad.system = "erp_tryton"
    with pytest.raises(TrytonAuthError) as info:
        run_pull(bad, sqlite_store, "customers")
    assert isinstance(info.value, SourceAuthError)
    host = proxy.url.split("//", 1)[1]
    assert str(info.value) == (f"erp_tryton: Tryton refused the login of user 'hub-reader' to database "
                               f"'{tryton.database}' at {host} (wrong user name or password)")
    assert proxy.count == 1  # one login, no retry storm (each failure lengthens Tryton's login throttle)
    assert "wrong-pass-0815" not in str(info.value) and "wrong-pass-0815" not in caplog.text
    assert info.value.__cause__ is None


def test_unreachable_tryton_and_unknown_database_fail_at_once_and_clearly(tryton, sqlite_store):
    port = harness.free_port()  # nothing listens there
    down = TrytonConnector(f"http://127.0.0.1:{port}", tryton.database, "admin", "pw-not-printed")
    with pytest.raises(SourceUnavailable) as info:
        run_pull(down, sqlite_store, "customers")
    assert str(info.value).startswith(
        f"tryton: cannot reach 127.0.0.1:{port} (connection refused) — gave up after 2 attempts")
    assert "pw-not-printed" not in str(info.value)
    nodb = TrytonConnector(tryton.url, "no_such_db", tryton.username, tryton.password)
    with pytest.raises(ConnectorError, match="has no Tryton database 'no_such_db'"):
        nodb.rpc.search("party.party", [])


def test_gzip_quirk_body_is_decoded(tryton):
    """trytond labels a large plain body gzip when the client did not ask for gzip; decode_body copes."""
    login = requests.post(f"{tryton.url}/{tryton.database}/rpc/", json={
        "id": 1, "method": "common.db.login", "params": [tryton.username, {"password": tryton.password}, "en"]},
        timeout=10).json()["result"]
    auth = "Session " + base64.b64encode(f"{tryton.username}:{login[0]}:{login[1]}".encode()).decode()
    for accept in ("identity", "gzip"):
        resp = requests.post(f"{tryton.url}/{tryton.database}/rpc/", stream=True, timeout=30,
                             headers={"Authorization": auth, "Accept-Encoding": accept},
                             json={"id": 2, "method": "model.party.party.search_read",
                                   "params": [[], 0, 40, None, ["name", "write_date"], {}]})
        assert resp.headers.get("Content-Encoding") == "gzip"  # labelled gzip either way
        rows = decode_body(resp)["result"]
        assert len(rows) == 40 and all("name" in r for r in rows)


# ------------------------------------------------------------------------------------------------- faults
class FaultyProxy:
    """A real HTTP proxy in front of trytond that injects faults on chosen request numbers:
    'status:<code>' answers that status, 'truncate' sends half the body under the full Content-Length.
    ``stall=(method, n)``: the n-th call of that JSON-RPC method is carried out by trytond, then its answer
    is held back (``stalled`` is set) — the caller can be killed not knowing it was applied. ``methods``
    counts the calls per method."""

    def __init__(self, upstream: str, faults: dict[int, str], stall: tuple[str, int] | None = None):
        import http.server
        import threading
        from collections import Counter

        self.faults = dict(faults)
        self.count = 0
        self.hit: list[str] = []
        self.methods: Counter[str] = Counter()
        self.stalled = threading.Event()
        self.released = threading.Event()  # close() ends a held-back answer at once
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # keep test output quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.count += 1
                method = json.loads(body or b"{}").get("method", "")
                proxy.methods[method] += 1
                fault = proxy.faults.pop(proxy.count, None)
                if fault and fault.startswith("status:"):
                    proxy.hit.append(fault)
                    self.send_response(int(fault.split(":")[1]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                up = requests.post(upstream + self.path, data=body, headers=headers, stream=True, timeout=60)
                raw = up.raw.read(decode_content=False)
                self.send_response(up.status_code)
                for k, v in up.headers.items():
                    if k.lower() in ("content-type", "content-encoding", "www-authenticate"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                if fault == "truncate":
                    proxy.hit.append(fault)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(raw[: len(raw) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if stall and (method, proxy.methods[method]) == stall:
                    proxy.stalled.set()
                    proxy.released.wait(120)  # the call was carried out; its answer never comes in time
                self.end_headers()
                self.wfile.write(raw)

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy_factory(tryton):
    made: list[FaultyProxy] = []

    def make(faults: dict[int, str], stall: tuple[str, int] | None = None) -> FaultyProxy:
        p = FaultyProxy(tryton.url, faults, stall)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def test_pull_survives_5xx_and_truncated_bodies(tryton, rpc, sqlite_store, proxy_factory):
    # requests 1-2 are login + preferences; faults hit the high-water queries and the data pages
    proxy = proxy_factory({3: "status:503", 5: "status:502", 12: "truncate", 13: "status:504", 14: "truncate"})
    conn = TrytonConnector(proxy.url, tryton.database, tryton.username, tryton.password, page_size=9)
    st = run_pull(conn, sqlite_store, "customers")
    assert sorted(proxy.hit) == sorted(["status:503", "status:502", "truncate", "status:504", "truncate"])
    expected = server_ids(rpc, "customers")
    assert sqlite_store.landed_ids("tryton", "customers") == expected
    assert st.new == len(expected) and st.changed == 0


def test_failed_push_write_is_an_error_and_succeeds_next_run(tryton, rpc, sqlite_store, proxy_factory):
    party = tryton.seed.parties[30]
    sqlite_store.enqueue_push("tryton", "customers", str(party), "G000930",
                              {"golden_id": "G000930", "segment": "churn_risk"})
    # 1 login, 2 preferences, 3 read parties, 4 = the identifier create: answered 503
    proxy = proxy_factory({4: "status:503"})
    conn = TrytonConnector(proxy.url, tryton.database, tryton.username, tryton.password)
    first = run_push(conn, sqlite_store)
    assert (first.ok, first.error) == (0, 1) and proxy.hit == ["status:503"]
    assert len(sqlite_store.pending_pushes("tryton")) == 1  # kept for the next run
    second = run_push(conn, sqlite_store)
    assert (second.ok, second.error) == (1, 0)
    idents, cats, _ = _hub_state(rpc, party)
    assert idents == [GOLDEN_ID_PREFIX + "G000930"] and cats == ["hub:segment:churn_risk"]
    assert sqlite_store.pending_pushes("tryton") == []


def test_batched_push_writes_parties_in_a_few_calls(tryton, rpc, sqlite_store, proxy_factory):
    """Eight parties in mixed states: one read, then one call each for identifier creates, rewrites and
    deletes and one multi-record party write; a party already in its desired state is not written."""
    parties = tryton.seed.parties[32:40]
    done, stale, doubled = parties[:3]
    rpc.call("model.party.identifier.create", [{"party": done, "type": None, "code": GOLDEN_ID_PREFIX + "G000932"},
                                               {"party": stale, "type": None, "code": GOLDEN_ID_PREFIX + "GOLD"}]
             + [{"party": doubled, "type": None, "code": GOLDEN_ID_PREFIX + "G000934"}] * 2)
    conn = connector(tryton)
    conn.push([OutboxItem(1, "tryton", "customers", str(done), "G000932",
                          {"golden_id": "G000932", "segment": "batch_a", "value_tier": "gold"}, 0)])
    untouched = _hub_state(rpc, done)

    rows = [(str(p), f"G{900 + k + 32:06d}", {"golden_id": f"G{900 + k + 32:06d}",
                                              "segment": "batch_a" if k % 2 == 0 else "batch_b",
                                              "value_tier": "gold"}) for k, p in enumerate(parties)]
    sqlite_store.enqueue_pushes("tryton", "customers", rows)
    proxy = proxy_factory({})
    via_proxy = TrytonConnector(proxy.url, tryton.database, tryton.username, tryton.password)
    stats = run_push(via_proxy, sqlite_store)
    assert (stats.ok, stats.error, stats.batches) == (8, 0, 1)
    # login, preferences, read, create idents, rewrite, delete, search + create of category batch_b, write,
    # then the read-back of the timestamps of the hub's own writes (identifiers, parties)
    assert proxy.count <= 11, proxy.count
    assert _hub_state(rpc, done) == untouched  # nothing to do: not written, write_date unchanged
    for k, party in enumerate(parties):
        idents, cats, _ = _hub_state(rpc, party)
        assert idents == [GOLDEN_ID_PREFIX + f"G{900 + k + 32:06d}"], (k, idents)
        assert cats == ["hub:segment:" + ("batch_a" if k % 2 == 0 else "batch_b"), "hub:value_tier:gold"]


PUSHER = """
import sys
from hub.connectors.base import run_push
from hub.connectors.tryton import TrytonConnector
from hub.store import Store
store_url, url, database, user, password = sys.argv[1:6]
run_push(TrytonConnector(url, database, user, password, timeout=(5.0, 600.0)), Store(store_url), "tryton",
         batch_size=5, run_id="run-killed")
"""


def test_push_killed_mid_run_is_finished_without_writing_anything_twice(tryton, rpc, sqlite_store, proxy_factory):
    """A real pusher process is killed after Tryton carried out its second batch (identifiers created,
    categories written) but before the hub recorded it. The next run reads those parties, finds them in
    their desired state and records them without a single write; it writes only the batch never sent."""
    parties = [*tryton.seed.parties[2:10], *tryton.seed.parties[14:20]]
    rows = [(str(p), f"G{700 + k:06d}", {"golden_id": f"G{700 + k:06d}", "segment": "resumed",
                                         "value_tier": "silver"}) for k, p in enumerate(parties)]
    sqlite_store.enqueue_pushes("tryton", "customers", rows)
    proxy = proxy_factory({}, stall=("model.party.party.write", 2))
    proc = subprocess.Popen([sys.executable, "-c", PUSHER, sqlite_store.url, proxy.url, tryton.database,
                             tryton.username, tryton.password], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proxy.stalled.wait(120), proc.communicate(timeout=5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    second = parties[5:10]
    before = {p: _hub_state(rpc, p) for p in second}
    assert all(idents and cats for idents, cats, _ in before.values())  # carried out by Tryton...
    with sqlite_store.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(push_outbox.c.status, sa.func.count())
                                     .group_by(push_outbox.c.status)).all())
    assert statuses == {"ok": 5, "sending": 5, "pending": 4}  # ...not recorded by the hub

    counting = proxy_factory({})
    resumed = run_push(TrytonConnector(counting.url, tryton.database, tryton.username, tryton.password),
                       sqlite_store, "tryton", run_id="run-resumed")
    assert (resumed.reconciled, resumed.sent, resumed.ok) == (5, 4, 9)
    assert {p: _hub_state(rpc, p) for p in second} == before  # not written again: write dates unchanged
    writes = {m: n for m, n in counting.methods.items() if m.endswith((".create", ".write", ".delete"))}
    assert writes == {"model.party.identifier.create": 1, "model.party.party.write": 1}  # the last batch only
    for k, party in enumerate(parties):
        idents, cats, _ = _hub_state(rpc, party)
        assert idents == [GOLDEN_ID_PREFIX + f"G{700 + k:06d}"] and cats == [
            "hub:segment:resumed", "hub:value_tier:silver"]
    with sqlite_store.engine.connect() as conn:
        per_row = Counter(r[0] for r in conn.execute(sa.select(push_result.c.outbox_id)))
    assert len(per_row) == 14 and set(per_row.values()) == {1}
    assert run_push(connector(tryton), sqlite_store, "tryton").sent == 0


def test_create_in_doubt_is_found_by_its_golden_id_not_created_twice(tryton, rpc, sqlite_store):
    """A create sent by a pusher that died before recording it: the golden id it carries is its idempotency
    key, so the next run finds the party and records the row without a second create."""
    creator = connector(tryton, create_missing_parties=True)
    payload = {"golden_id": "G009301", "display_name": "周杰", "segment": "new", "value_tier": "bronze"}
    sqlite_store.enqueue_pushes("tryton", "customers", [("", "G009301", payload)], cause="create")
    [row] = sqlite_store.claim_pushes("tryton", "otherhost:1:dead", 10)  # claimed elsewhere, then lost
    assert creator.push([row])[0].status == "ok"  # the create went through...
    with sqlite_store.begin() as conn:  # ...and the claim's lease ran out without a result
        conn.execute(push_outbox.update().where(push_outbox.c.id == row.id).values(claimed_at=datetime(2000, 1, 1)))
    stats = run_push(creator, sqlite_store, "tryton")
    assert (stats.reconciled, stats.sent, stats.ok) == (1, 0, 1)
    assert len(rpc.search("party.identifier", [["code", "=", GOLDEN_ID_PREFIX + "G009301"]])) == 1


def test_landed_payloads_map_through_the_tryton_mapping(tryton):
    """Contract with hub/mappings/tryton.yaml: what this connector lands maps without quarantine."""
    from hub.mappings import load_mapping

    mapper = load_mapping("tryton")
    ctx = mapper.context("tryton")
    conn = connector(tryton)
    for entity in conn.entities:
        mapped = 0
        for page in conn.pages(entity, None):
            for rec in page.records:
                outcome = mapper.map(entity, rec.source_id, rec.payload, ctx)
                assert outcome.reasons == [], (entity, rec.source_id, outcome.reasons)
                mapped += len(outcome.records)
        assert mapped > 0, entity
    # a Chinese mobile in the seed's "13800015838" form comes out as E.164 (party 0's 13800000000 is a dummy
    # number: no phone at all)
    landed = {r.source_id: r for p in conn.pages("customers", None) for r in p.records}
    wang = landed[str(tryton.seed.parties[2])]
    out = mapper.map("customers", wang.source_id, wang.payload, ctx).records[0].record
    assert any(ph["e164"] == "+8613800015838" for ph in out["phones"])
    first = landed[str(tryton.seed.parties[0])]
    outcome = mapper.map("customers", first.source_id, first.payload, ctx)
    assert not outcome.records[0].record["phones"] and "phone.placeholder" in str(outcome.records[0].quality_flags)
