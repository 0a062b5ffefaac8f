"""The incremental link of the 360 build equals a full one: after random changes (orders staged again or anew,
calls, shipments, social events, customer records moving between golden ids, golden phones / e-mails changing,
golden ids retired, records deleted) an incremental build leaves exactly the views, links, ranks and figures
a forced full rebuild of the same store leaves."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from test_customer360_data import (
    AS_OF,
    T0,
    golden,
    insert_golden,
    insert_staged,
    insert_xref,
    order,
    staged_row,
)

import hub.customer360 as c360
from hub.customer360 import C360Stats, build_360
from hub.models import Interaction, Shipment
from hub.store import (
    Store,
    customer_360,
    customer_360_link,
    customer_360_rank,
    golden_customer,
    payload_hash,
    staged_record,
    xref,
)

PHONES = [f"+86139000000{i:02d}" for i in range(14)]
# in any case and beyond ASCII: owners are found by the lower-cased address (Python's lower, not SQLite's)
EMAILS = [f"p{i}@example.cn" for i in range(10)] + ["Mixed.Case@Example.CN", "mixed.case@example.cn",
                                                    "ZOË.ÜNAL@EXÄMPLE.CN", "zoë.ünal@exämple.cn"]
_STAT_FIELDS = ("golden_customers", "orders_linked", "orders_unlinked", "guest_orders_linked", "duplicate_orders",
                "shipments_linked", "calls_linked", "social_linked", "invalid", "value_tiers", "lifecycles",
                "segments")


class World:
    """A small random hub whose changes are stamped after the last build's marks (as the stages stamp them)."""

    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng
        self.clock = T0
        self.n_gold = 12
        self.n_cust = 18
        self.seq = 0
        goldens = []
        for g in range(self.n_gold):
            keys = [f"shop:{c}" for c in range(self.n_cust) if c % self.n_gold == g]
            goldens.append(golden(self.gid(g), f"P{g}", keys or [f"shop:x{g}"], phones=self.some(PHONES, 2),
                                  emails=self.some(EMAILS, 1)))
        insert_golden(store, goldens)
        insert_xref(store, [(f"shop:{c}", self.gid(c % self.n_gold)) for c in range(self.n_cust)], landed=False)
        for _ in range(40):
            self.new_order(at=T0)
        for _ in range(12):
            self.new_shipment(at=T0)
        for _ in range(20):
            self.new_interaction(at=T0)

    @staticmethod
    def gid(g: int) -> str:
        return f"G{g:09d}"

    def some(self, pool: list[str], k: int) -> list[str]:
        return self.rng.sample(pool, self.rng.randint(0, k))

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    def sid(self) -> str:
        self.seq += 1
        return str(self.seq)

    def stage(self, rows: list[dict[str, Any]], at: datetime) -> None:
        keys = [(r["entity"], r["record_key"]) for r in rows]
        with self.store.begin() as conn:
            for entity, rk in keys:
                conn.execute(staged_record.delete().where(staged_record.c.entity == entity,
                                                          staged_record.c.record_key == rk))
        insert_staged(self.store, [{**r, "staged_at": at} for r in rows])

    def keys(self, entity: str) -> list[str]:
        with self.store.engine.connect() as conn:
            return sorted(conn.execute(sa.select(staged_record.c.record_key)
                                       .where(staged_record.c.entity == entity)).scalars())

    def order_row(self, sid: str) -> dict[str, Any]:
        rng = self.rng
        at = AS_OF - timedelta(days=rng.randint(1, 500))
        number = rng.choice([None, f"N{rng.randint(0, 30)}"])
        kind = rng.random()
        if kind < 0.55:  # a customer's order
            c = str(rng.randint(0, self.n_cust + 2))  # a few customers never matched
            rec = order("shop", sid, c, str(rng.randint(1, 900)), at, number=number,
                        status=rng.choice(["completed", "completed", "cancelled"]))
            return staged_row("orders", rec, f"shop:{c}")
        rec = order("shop", sid, "", str(rng.randint(1, 900)), at, number=number)  # a guest checkout
        rec = rec.model_copy(update={"customer_source_id": None,
                                     "billing_phone": rng.choice([None, *PHONES]),
                                     "billing_email": rng.choice([None, *EMAILS, EMAILS[0].upper() + " "])})
        return staged_row("orders", rec)

    def new_order(self, at: datetime | None = None) -> None:
        self.stage([self.order_row(f"o{self.sid()}")], at or self.tick())

    def new_shipment(self, at: datetime | None = None) -> None:
        rng = self.rng
        orders = self.keys("orders")
        sid = f"s{self.sid()}"
        if orders and rng.random() < 0.6:  # linked through its order only
            rec = Shipment(source="shop", source_id=sid, order_source_id=rng.choice(orders).split(":", 1)[1],
                           status=rng.choice(["shipped", "delivered"]), shipped_at=AS_OF - timedelta(days=3))
            row = staged_row("shipments", rec)
        else:
            c = str(rng.randint(0, self.n_cust))
            rec = Shipment(source="shop", source_id=sid, customer_source_id=c, status="packed",
                           updated_at=AS_OF - timedelta(days=1))
            row = staged_row("shipments", rec, f"shop:{c}")
        self.stage([row], at or self.tick())

    def new_interaction(self, at: datetime | None = None) -> None:
        rng = self.rng
        sid = f"i{self.sid()}"
        if rng.random() < 0.7:
            rec = Interaction(source="cc", source_id=sid, kind="call", phone=rng.choice(PHONES),
                              occurred_at=AS_OF - timedelta(days=rng.randint(0, 60)))
            row = staged_row("interactions", rec)
        else:
            c = str(rng.randint(0, self.n_cust))
            rec = Interaction(source="shop", source_id=sid, kind="social_follow", customer_source_id=c,
                              occurred_at=AS_OF - timedelta(days=2))
            row = staged_row("interactions", rec, f"shop:{c}")
        self.stage([row], at or self.tick())

    def rekind_interaction(self) -> None:
        """An interaction staged again as another kind (a call that was a social event, or the other way round):
        the calls and social events counted follow it."""
        rng = self.rng
        keys = self.keys("interactions")
        if not keys:
            return
        rk = rng.choice(keys)
        source, sid = rk.split(":", 1)
        with self.store.engine.connect() as conn:
            kind = conn.execute(sa.select(staged_record.c.record["kind"].as_string()).where(
                staged_record.c.entity == "interactions", staged_record.c.record_key == rk)).scalar()
        c = str(rng.randint(0, self.n_cust))
        rec = Interaction(source=source, source_id=sid, kind="social_message" if kind == "call" else "call",
                          phone=rng.choice(PHONES), customer_source_id=c if kind == "call" else None,
                          occurred_at=AS_OF - timedelta(days=rng.randint(0, 60)))
        self.stage([staged_row("interactions", rec, f"{source}:{c}" if kind == "call" else None)], self.tick())

    def restage_order(self) -> None:
        orders = self.keys("orders")
        if orders:
            self.stage([self.order_row(self.rng.choice(orders).split(":", 1)[1])], self.tick())

    def move_customer(self) -> None:
        """A customer record leaves its golden id for another (the xref closed and a new one opened)."""
        at = self.tick()
        c = f"shop:{self.rng.randint(0, self.n_cust - 1)}"
        to = self.gid(self.rng.randrange(self.n_gold))
        with self.store.begin() as conn:
            conn.execute(xref.update().where(xref.c.record_key == c, xref.c.valid_to.is_(None)).values(valid_to=at))
            conn.execute(xref.insert().values(record_key=c, source="shop", source_id=c.split(":", 1)[1],
                                              golden_id=to, valid_from=at, valid_to=None))

    def change_contacts(self) -> None:
        """A golden customer's phones / e-mails change (a phone dropped, gained, shared with another one)."""
        at = self.tick()
        g = self.gid(self.rng.randrange(self.n_gold))
        with self.store.begin() as conn:
            rec = conn.execute(sa.select(golden_customer.c.record).where(golden_customer.c.golden_id == g)).scalar()
            if rec is None:
                return
            phones, emails = self.some(PHONES, 3), self.some(EMAILS, 2)
            rec = {**rec, "phones": phones, "primary_phone": phones[0] if phones else None, "emails": emails,
                   "primary_email": emails[0] if emails else None}
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == g).values(
                record=rec, record_hash=payload_hash(rec), updated_at=at))

    def retire(self) -> None:
        """A golden id merged into another: retired, its customer records' xrefs move to the survivor."""
        at = self.tick()
        g, into = (self.gid(i) for i in self.rng.sample(range(self.n_gold), 2))
        with self.store.begin() as conn:
            if conn.execute(sa.select(golden_customer.c.status).where(
                    golden_customer.c.golden_id == into)).scalar() != "active":
                return
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == g, golden_customer.c.status
                                                        == "active").values(status="retired", merged_into=into,
                                                                            updated_at=at))
            keys = list(conn.execute(sa.select(xref.c.record_key).where(xref.c.golden_id == g,
                                                                         xref.c.valid_to.is_(None))).scalars())
            conn.execute(xref.update().where(xref.c.golden_id == g, xref.c.valid_to.is_(None)).values(valid_to=at))
            for k in keys:
                conn.execute(xref.insert().values(record_key=k, source="shop", source_id=k.split(":", 1)[1],
                                                  golden_id=into, valid_from=at, valid_to=None))

    def toggle_status(self) -> None:
        """A golden id deactivated with its cross-references left open, or active again (its customer records'
        orders, shipments and social events follow it out and back); now and then without a new updated_at
        (the view notices the status all the same)."""
        at = self.tick() if self.rng.random() < 0.5 else T0
        g = self.gid(self.rng.randrange(self.n_gold))
        with self.store.begin() as conn:
            status = conn.execute(sa.select(golden_customer.c.status).where(golden_customer.c.golden_id == g)
                                  ).scalar()
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == g).values(
                status="inactive" if status == "active" else "active", merged_into=None, updated_at=at))

    def new_golden(self) -> None:
        """A new golden customer (a split): a customer record moves to it, it may share a phone."""
        at = self.tick()
        g = self.gid(self.n_gold)
        self.n_gold += 1
        c = f"shop:{self.rng.randint(0, self.n_cust - 1)}"
        rec = golden(g, f"P{g}", [c], phones=self.some(PHONES, 2), emails=self.some(EMAILS, 1))
        insert_golden(self.store, [rec])
        with self.store.begin() as conn:
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == g).values(
                created_at=at, updated_at=at))
            conn.execute(xref.update().where(xref.c.record_key == c, xref.c.valid_to.is_(None)).values(valid_to=at))
            conn.execute(xref.insert().values(record_key=c, source="shop", source_id=c.split(":", 1)[1],
                                              golden_id=g, valid_from=at, valid_to=None))

    def delete_record(self) -> None:
        """A source deleted an order / shipment / call: its staged record is gone (nothing else stamped)."""
        entity = self.rng.choice(["orders", "orders", "shipments", "interactions"])
        keys = self.keys(entity)
        if keys:
            with self.store.begin() as conn:
                conn.execute(staged_record.delete().where(staged_record.c.entity == entity,
                                                          staged_record.c.record_key == self.rng.choice(keys)))

    def change(self, n: int) -> None:
        moves = [self.new_order, self.new_order, self.restage_order, self.restage_order, self.new_shipment,
                 self.new_interaction, self.new_interaction, self.move_customer, self.change_contacts,
                 self.change_contacts, self.retire, self.toggle_status, self.new_golden, self.delete_record,
                 self.rekind_interaction]
        for _ in range(n):
            self.rng.choice(moves)()


def snapshot(store: Store, stats: C360Stats) -> dict[str, Any]:
    with store.engine.connect() as conn:
        views = {gid: ({k: v for k, v in rec.items() if k != "computed_at"}, h) for gid, rec, h in conn.execute(
            sa.select(customer_360.c.golden_id, customer_360.c.record, customer_360.c.record_hash))}
        links = sorted(tuple(r) for r in conn.execute(sa.select(customer_360_link)))
        ranks = sorted(tuple(r) for r in conn.execute(sa.select(customer_360_rank)))
    return {"views": views, "links": links, "ranks": ranks, "stats": {f: getattr(stats, f) for f in _STAT_FIELDS}}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_incremental_build_equals_a_full_rebuild(store: Store, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    full_links = []
    link_all = c360._link_all
    monkeypatch.setattr(c360, "_link_all", lambda *a: full_links.append(1) or link_all(*a))
    world = World(store, random.Random(seed))
    build_360(store, {}, as_of=AS_OF)
    rounds = 10
    for round_ in range(rounds):
        world.change(world.rng.randint(1, 6))
        incremental = build_360(store, {}, as_of=AS_OF)
        got = snapshot(store, incremental)
        full = build_360(store, {}, as_of=AS_OF, force=True)
        want = snapshot(store, full)
        for part in ("links", "stats", "ranks", "views"):
            assert got[part] == want[part], (seed, round_, part)
        assert full.inserted == full.updated == 0, (seed, round_)
    # the first build and every forced one link everything; the incremental builds relinked what changed
    assert len(full_links) <= 1 + rounds + rounds // 4, len(full_links)


def test_a_build_that_finds_nothing_changed_reports_the_last_figures(store: Store) -> None:
    # a no-op sync's 360 step is skipped; its metadata (plotted by Dagster) must not drop to zero
    World(store, random.Random(5))
    first = build_360(store, {}, as_of=AS_OF)
    again = build_360(store, {}, as_of=AS_OF)
    assert again.skipped and not first.skipped
    assert first.orders_linked > 0 and first.calls_linked > 0
    assert {f: getattr(again, f) for f in _STAT_FIELDS} == {f: getattr(first, f) for f in _STAT_FIELDS}
    assert (again.inserted, again.updated, again.removed) == (0, 0, 0)


def test_owners_of_phones_and_emails_are_found_whatever_case_and_script(store: Store) -> None:
    # the owners the incremental relink asks for: found by the lower-cased address, non-ASCII included (SQLite
    # lowers ASCII only), in golden id order
    insert_golden(store, [
        golden("G1", "A", ["shop:1"], phones=["+8613900000001"], emails=["Zoë.Ünal@Exämple.CN"]),
        golden("G2", "B", ["shop:2"], phones=["+8613900000002", "+8613900000001"], emails=["Mixed@Example.CN"]),
        golden("G3", "C", ["shop:3"], phones=["+8613900000003"], emails=["other@example.cn"]),
    ])
    with store.begin() as conn:
        phones, emails = c360._owner_maps(conn, {"+8613900000001", "+8613900000003", "+8613999999999"},
                                          {"zoë.ünal@exämple.cn", "mixed@example.cn"})
    assert dict(phones) == {"+8613900000001": ["G1", "G2"], "+8613900000003": ["G3"]}
    assert dict(emails) == {"zoë.ünal@exämple.cn": ["G1"], "mixed@example.cn": ["G2"]}
