"""Every connector against the real sandbox servers (WooCommerce + WeChat HTTP servers, the ERP database, the
CDR drop folder) with fault injection: after recovery every source record is landed exactly once (checked
against the server's own data), a no-change sync lands and pushes nothing, a push is not seen as a change
on the next pull, a failed push row is retried next run, and a kill between two pages resumes cleanly."""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from test_connectors_base import DieAfter  # shared kill-between-pages wrapper

from hub.connectors.base import make_session, run_pull, run_push, run_sweep
from hub.connectors.cdr import AsteriskCdrConnector
from hub.connectors.sql_erp import SqlErpConnector, load_tables
from hub.connectors.wechat import QuotaExceeded, WeChatConnector
from hub.connectors.woocommerce import WooCommerceConnector
from hub.sandbox import Endpoints, SandboxWorld
from hub.store import OutboxItem, Store, source_tombstone


@pytest.fixture()
def world(tmp_path: Path) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path / "world", customers=300, seed=7)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/hub.db")
    yield s
    s.dispose()


def woo(ep: Endpoints, per_page: int = 20) -> WooCommerceConnector:
    # short backoffs and timeouts: the faults fire fast, the test should not sleep for minutes
    session = make_session(timeout=(2.0, 1.0), auth=requests.auth.HTTPBasicAuth(ep.webshop_key, ep.webshop_secret))
    return WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret, per_page=per_page,
                                session=session, body_retry_wait=0.01)


def wechat(ep: Endpoints) -> WeChatConnector:
    return WeChatConnector(ep.wechat_url, ep.wechat_appid, ep.wechat_secret, quota_wait=0.02,
                           quota_wait_max=0.1, body_retry_wait=0.01, timeout=(2.0, 1.0))


# -- WooCommerce -----------------------------------------------------------------------------------------------


def test_woocommerce_pull_with_faults_kill_resume_and_no_change(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        conn = woo(ep)
        shop_customers = {str(i) for i, c in world.shop.customers.items() if c["role"] == "customer"}
        shop_orders = {str(i) for i in world.shop.orders}
        world.faults = ("webshop:429@2:retry_after=1; webshop:503@4-6; webshop:truncate@8; "
                        "webshop:slow@10:delay=2; webshop:drop@12; webshop:502@14")
        with pytest.raises(KeyboardInterrupt):
            run_pull(DieAfter(conn, 3), store, "customers")
        assert len(store.landed_ids("webshop", "customers")) == 60
        s1 = run_pull(conn, store, "customers")
        s2 = run_pull(conn, store, "orders")
        fired = {kind for _, kind, _ in world.fault_controller.fired}
        assert fired == {"429", "503", "truncate", "slow", "drop", "502"}
        assert s1.new == len(shop_customers) - 60 and s1.changed == 0
        assert store.landed_ids("webshop", "customers") == shop_customers
        assert store.landed_ids("webshop", "orders") == shop_orders and s2.new == len(shop_orders)
        world.faults = None
        again = [run_pull(conn, store, e) for e in conn.entities]
        assert all((s.new, s.changed) == (0, 0) for s in again)

        # incremental: the world changes; the next pull finds exactly those changes
        before = copy.deepcopy(world.shop.customers)
        stats = world.mutate(fraction=0.1, seed=3)
        edited = {i for i, cust in world.shop.customers.items() if before.get(i) != cust}
        c = run_pull(conn, store, "customers")
        o = run_pull(conn, store, "orders")
        assert o.new == stats["webshop_new_orders"] and o.changed == 0
        assert c.changed == len(edited) > 0 and c.new == 0
        assert store.landed_ids("webshop", "orders") == {str(i) for i in world.shop.orders}


def test_woocommerce_pull_from_start_is_the_id_sweep_a_resumed_one_is_not(world: SandboxWorld, store: Store) -> None:
    """A customer pull read from its first page to its last saw every id the shop holds: the sweep after it
    takes them and sends no id-only request; a pull that resumed a sweep left half done did not, and the sweep
    asks the shop (``_fields=id``). Either way the customers deleted at the shop are found, and only they."""
    with world.serve() as ep:
        conn = woo(ep)
        asked: list[str] = []
        conn.session.hooks["response"].append(lambda resp, *a, **k: asked.append(resp.request.url))

        def id_requests() -> int:
            return sum("_fields=id" in url for url in asked)

        with pytest.raises(KeyboardInterrupt):
            run_pull(DieAfter(conn, 3), store, "customers")
        resumed = run_pull(conn, store, "customers")
        assert resumed.present is None  # pages 4.. only
        first = run_sweep(conn, store, "customers", pulled=resumed)
        assert id_requests() > 0 and (first.present, first.deleted) == (len(store.landed_ids("webshop", "customers")), 0)

        gone = sorted(i for i, c in world.shop.customers.items() if c["role"] == "customer")[5:7]
        for i in gone:  # deleted in the shop's admin (the REST API's own delete)
            assert conn.session.delete(f"{conn.api}/customers/{i}", params={"force": "true"}).status_code == 200
        asked.clear()
        whole = run_pull(conn, store, "customers")
        assert whole.present is not None and whole.present.present == conn.present_ids("customers").present
        asked.clear()
        swept = run_sweep(conn, store, "customers", pulled=whole)
        assert id_requests() == 0 and asked == []  # the pull's ids, nothing asked again
        assert (swept.deleted, swept.present) == (2, len(whole.present.present))
        with store.engine.connect() as db:
            tombstoned = set(db.execute(sa.select(source_tombstone.c.source_id, source_tombstone.c.kind)
                                        .where(source_tombstone.c.source == "webshop")).all())
        assert tombstoned == {(str(i), "deleted") for i in gone}

        orders = run_pull(conn, store, "orders")  # incremental by date: never an id sweep
        assert orders.present is None


def test_woocommerce_push_meta_echo_free_and_retry(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        conn = woo(ep)
        run_pull(conn, store, "customers")
        ids = sorted(world.shop.customers)[:4]
        store.enqueue_pushes("webshop", "customer", [
            *[(str(i), f"G{i:06d}", {"golden_id": f"G{i:06d}", "segment": "vip", "value_tier": "gold"}) for i in ids],
            ("999999", "G999999", {"golden_id": "G999999"}),
        ])
        world.faults = "webshop:503@1-200"  # the shop is down: every row errors and stays pending
        down = run_push(conn, store)
        assert down.error == 5 and len(store.pending_pushes("webshop")) == 5
        world.faults = None
        up = run_push(conn, store)
        assert (up.ok, up.rejected, up.error) == (4, 1, 0)
        meta = {m["key"]: m["value"] for m in world.shop.customers[ids[0]]["meta_data"]}
        assert meta["hub_golden_id"] == f"G{ids[0]:06d}" and meta["hub_segment"] == "vip"
        assert meta["hub_value_tier"] == "gold"
        assert run_push(conn, store).sent == 0
        echo = run_pull(conn, store, "customers")
        assert (echo.new, echo.changed) == (0, 0)
        # a real edit in the shop is still a change
        world.shop.customers[ids[1]]["billing"]["phone"] = "+86 138-0013-8000"
        assert run_pull(conn, store, "customers").changed == 1


def test_woocommerce_push_is_batched_with_per_item_errors(world: SandboxWorld, store: Store) -> None:
    """250 rows go in 3 requests of <= 100 (POST /customers/batch); an unknown customer fails alone."""
    with world.serve() as ep:
        conn = woo(ep)
        ids = sorted(world.shop.customers)
        ids += [ids[-1] + n for n in range(1, 251 - len(ids))]  # more customers sign up in the shop
        for i in ids:
            world.shop.customers.setdefault(i, {**copy.deepcopy(world.shop.customers[ids[0]]), "id": i})
        world.shop.version += 1
        run_pull(conn, store, "customers")
        rows = [(str(i), f"G{i:06d}", {"golden_id": f"G{i:06d}", "segment": "vip", "value_tier": "gold"})
                for i in ids]
        store.enqueue_pushes("webshop", "customer", [*rows[:120], ("999999", "G999999", {"golden_id": "G999999"}),
                                                     *rows[120:], ("guest-7", "G7", {"golden_id": "G7"})])
        world.shop.updates.clear()
        calls = world.fault_controller.calls.get("webshop", 0)
        stats = run_push(conn, store)
        assert world.fault_controller.calls["webshop"] - calls == 3  # 251 shop ids: 100 + 100 + 51
        assert (stats.ok, stats.rejected, stats.error, stats.batches) == (250, 2, 0, 3), stats
        assert stats.reasons == {"customer not found": 1, "target_id is not a customer id": 1}
        assert set(world.shop.updates.values()) == {1} and len(world.shop.updates) == 250
        for i in (ids[0], ids[150], ids[-1]):
            meta = {m["key"]: m["value"] for m in world.shop.customers[i]["meta_data"]}
            assert (meta["hub_golden_id"], meta["hub_segment"]) == (f"G{i:06d}", "vip")
        assert run_push(conn, store).sent == 0
        echo = run_pull(conn, store, "customers")
        assert (echo.new, echo.changed) == (0, 0)

        # the shop refuses one whole request (5xx after retries): those rows stay pending, the rest go out
        store.enqueue_pushes("webshop", "customer", [(str(i), f"G{i:06d}", {"golden_id": f"G{i:06d}"})
                                                     for i in ids[:150]])
        world.faults = "webshop:503@1-8:path=/batch"
        down = woo(ep)
        down.body_retry_wait = 0.001
        stats = run_push(down, store)
        assert (stats.ok, stats.error) == (0, 100)  # the run stops after the first failed request
        world.faults = None
        assert (run_push(conn, store).ok, len(store.pending_pushes("webshop"))) == (150, 0)


# -- WeChat ----------------------------------------------------------------------------------------------------


def test_wechat_pull_with_vendor_faults_token_expiry_and_resume(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        conn = wechat(ep)
        followers = set(world.wechat.followers())
        world.wechat.batch_limit = 50  # this account refuses 100 per batchget (40032): fall back to 50
        world.faults = "wechat:45011@3; wechat:40001@5; wechat:500@7; wechat:truncate@9; wechat:42001@11"
        with pytest.raises(KeyboardInterrupt):
            run_pull(DieAfter(conn, 1), store, "followers")
        assert 0 < len(store.landed_ids("wechat", "followers")) < len(followers)
        s = run_pull(conn, store, "followers")
        assert store.landed_ids("wechat", "followers") == followers and s.changed == 0
        assert conn.batch_size == 50
        assert conn.token_fetches >= 2  # refreshed after 40001/42001
        world.faults = None
        world.wechat.advance_clock(7300)  # every token expired
        again = run_pull(conn, store, "followers")
        assert (again.new, again.changed) == (0, 0)

        # a daily quota that does not lift: the run stops with the progress kept
        world.faults = "wechat:45009@1-1000"
        with pytest.raises(QuotaExceeded):
            run_pull(conn, store, "followers")
        world.faults = None


def test_wechat_push_tags_echo_free_and_segment_move(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        conn = wechat(ep)
        run_pull(conn, store, "followers")
        openids = world.wechat.followers()[:3]
        gone = world.wechat.followers()[3]
        world.wechat.users[gone]["subscribe"] = 0  # unfollowed since the last pull
        store.enqueue_pushes("wechat", "follower", [
            *[(o, f"G{n}", {"golden_id": f"G{n}", "segment": "vip", "value_tier": "金牌"}) for n, o in enumerate(openids)],
            (gone, "G9", {"golden_id": "G9", "segment": "vip"}),
        ])
        world.faults = "wechat:45011@2; wechat:40001@4"
        p = run_push(conn, store)
        assert (p.ok, p.rejected, p.error) == (3, 1, 0)
        tags = {name: tid for tid, name in world.wechat.tags.items()}
        assert {"hub:seg:vip", "hub:tier:金牌"} <= set(tags)
        for o in openids:
            assert {tags["hub:seg:vip"], tags["hub:tier:金牌"]} <= set(world.wechat.users[o]["tagid_list"])
        echo = run_pull(conn, store, "followers")
        assert (echo.new, echo.changed) == (0, 0)
        store.enqueue_pushes("wechat", "follower", [(openids[0], "G0", {"golden_id": "G0", "segment": "lapsed"})])
        assert run_push(conn, store).ok == 1
        tl = set(world.wechat.users[openids[0]]["tagid_list"])
        tags = {name: tid for tid, name in world.wechat.tags.items()}
        assert tags["hub:seg:lapsed"] in tl and tags["hub:seg:vip"] not in tl and tags["hub:tier:金牌"] not in tl
        assert run_push(conn, store).sent == 0


def test_wechat_push_sends_only_tag_changes_in_batches(world: SandboxWorld, store: Store) -> None:
    """Current tags are read first (batchget) where the hub knows nothing: followers already in their tags cost
    no tagging call, a follower is untagged only from the hub tag it holds, and members go 50 to a call."""
    with world.serve() as ep:
        conn = wechat(ep)
        followers = world.wechat.followers()[:120]
        rows = [(o, f"G{n}", {"golden_id": f"G{n}", "segment": "vip"}) for n, o in enumerate(followers)]
        store.enqueue_pushes("wechat", "follower", rows)
        assert run_push(conn, store).ok == 120
        # 20 move to "lapsed", 100 stay "vip" (re-sent unchanged, e.g. after a lost result)
        store.enqueue_pushes("wechat", "follower", [(o, g, {**p, "segment": "lapsed"}) for o, g, p in rows[:20]])
        again = [OutboxItem(10_000 + n, "wechat", "follower", o, g, p, 0) for n, (o, g, p) in enumerate(rows[20:])]
        before = dict(world.fault_controller.calls)
        assert {o.status for o in conn.push(again)} == {"ok"}
        # tags/get + one batchget of 100; no tagging call at all
        assert world.fault_controller.calls["wechat"] - before["wechat"] == 2
        before = dict(world.fault_controller.calls)
        assert run_push(conn, store).ok == 20
        # tags/get, tags/create (lapsed), batchuntagging (vip), batchtagging (lapsed): no batchget, the hub
        # knows what it pushed to them
        assert world.fault_controller.calls["wechat"] - before["wechat"] == 4
        tags = {name: tid for tid, name in world.wechat.tags.items()}
        moved = [set(world.wechat.users[o]["tagid_list"]) for o in followers[:20]]
        assert all(tags["hub:seg:lapsed"] in t and tags["hub:seg:vip"] not in t for t in moved)
        assert all(tags["hub:seg:vip"] in world.wechat.users[o]["tagid_list"] for o in followers[20:])



def test_wechat_push_of_pulled_followers_reads_nothing_back(world: SandboxWorld, store: Store) -> None:
    """After a pull the hub knows every follower's hub tags: a push sends tagging calls only (no batchget), a
    follower who left since is refused by halving the 50-member call (not 50 single calls), a follower whose
    hub tags changed behind the hub's back is put right by the next pull and push, and a withdrawal still
    reads what the follower holds."""
    with world.serve() as ep:
        conn = wechat(ep)
        run_pull(conn, store, "followers")
        followers = world.wechat.followers()[:120]
        gone = followers[7]
        world.wechat.users[gone]["subscribe"] = 0  # left since the pull
        store.enqueue_pushes("wechat", "follower", [(o, f"G{n}", {"golden_id": f"G{n}", "segment": "vip"})
                                                    for n, o in enumerate(followers)])
        before = dict(world.fault_controller.calls)
        p = run_push(conn, store)
        assert (p.ok, p.rejected, p.error) == (119, 1, 0)
        # tags/get, tags/create, 3 batchtagging (50, 50, 20); the first refused and halved down to the leaver
        # (25+25, 13+12, 7+6, 4+3, 2+2, 1+1: 12 calls), no batchget
        assert world.fault_controller.calls["wechat"] - before["wechat"] == 2 + 3 + 12
        tags = {name: tid for tid, name in world.wechat.tags.items()}
        assert all(tags["hub:seg:vip"] in world.wechat.users[o]["tagid_list"] for o in followers if o != gone)
        assert tags["hub:seg:vip"] not in world.wechat.users[gone]["tagid_list"]
        # someone tags a follower "lapsed" by hand: the next pull sees two segments, the drift is queued again
        # by the push plan; a push with that knowledge untags the one that is not wanted
        lapsed = conn.call("tags/create", {"tag": {"name": "hub:seg:lapsed"}})["tag"]["id"]
        world.wechat.users[followers[0]]["tagid_list"].append(lapsed)
        run_pull(conn, store, "followers")
        store.enqueue_pushes("wechat", "follower", [(followers[0], "G0", {"golden_id": "G0", "segment": "vip"})],
                             force=[followers[0]])
        assert run_push(conn, store).ok == 1
        held = set(world.wechat.users[followers[0]]["tagid_list"])
        assert tags["hub:seg:vip"] in held and lapsed not in held
        # a withdrawal reads the follower first (batchget) and takes the hub tags off
        store.enqueue_pushes("wechat", "follower", [(followers[1], "G1", {"golden_id": "G1", "action": "withdraw"})])
        before = dict(world.fault_controller.calls)
        assert run_push(conn, store).ok == 1
        assert world.fault_controller.calls["wechat"] - before["wechat"] == 3  # tags/get, batchget, batchuntagging
        assert tags["hub:seg:vip"] not in world.wechat.users[followers[1]]["tagid_list"]

# -- ERP database and CDR folder of the same world ---------------------------------------------------------------


def test_sql_erp_against_sandbox_world(world: SandboxWorld, store: Store) -> None:
    conn = SqlErpConnector(world.erp_url, load_tables("sandbox"), page_size=50)
    engine = sa.create_engine(world.erp_url)

    def ids(table: str) -> set[str]:
        with engine.connect() as c:
            return {str(i) for i in c.execute(sa.text(f"SELECT id FROM {table}")).scalars()}

    for entity, table in (("customers", "party_party"), ("orders", "sale_sale"), ("shipments", "stock_shipment_out")):
        run_pull(conn, store, entity)
        assert store.landed_ids("erp", entity) == ids(table)
    assert all(run_pull(conn, store, e).new + run_pull(conn, store, e).changed == 0 for e in conn.entities)
    stats = world.mutate(fraction=0.1, seed=5)
    c = run_pull(conn, store, "customers")
    o = run_pull(conn, store, "orders")
    assert 0 < c.changed <= stats["erp_updates"] and c.new == 0
    assert o.new == stats["erp_new_sales"]
    assert store.landed_ids("erp", "orders") == ids("sale_sale")
    run_pull(conn, store, "shipments")
    assert store.landed_ids("erp", "shipments") == ids("stock_shipment_out")
    engine.dispose()
    conn.close()


def test_cdr_against_sandbox_world(world: SandboxWorld, store: Store) -> None:
    conn = AsteriskCdrConnector(world.cdr.dir)

    def uniqueids() -> set[str]:
        out: set[str] = set()
        for f in world.cdr.dir.glob("Master.csv*"):
            with open(f, newline="", encoding="utf-8") as fh:
                out |= {row[16] for row in csv.reader(fh)}
        return out

    run_pull(conn, store, "calls")
    assert store.landed_ids("callcenter", "calls") == uniqueids()
    world.mutate(fraction=0.1, seed=9)
    world.cdr.rotate("numbered")
    world.mutate(fraction=0.1, seed=10)
    s = run_pull(conn, store, "calls")
    assert s.changed == 0 and store.landed_ids("callcenter", "calls") == uniqueids()
    assert run_pull(conn, store, "calls").new == 0


def test_wechat_resume_after_cursor_openid_unfollowed(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        world.wechat.page_size = 40  # several user/get pages, so the cursor holds a next_openid
        conn = wechat(ep)
        with pytest.raises(KeyboardInterrupt):
            run_pull(DieAfter(conn, 2), store, "followers")
        token = store.get_cursor("wechat", "followers")["next_openid"]
        assert token
        world.wechat.users[token]["subscribe"] = 0  # that follower leaves: WeChat answers 40003 for it
        run_pull(conn, store, "followers")
        assert set(world.wechat.followers()) <= store.landed_ids("wechat", "followers")
        assert store.get_cursor("wechat", "followers") == {"complete": True}
