"""The tryton mapping on real payloads: a real trytond (tests/tryton_harness.py), pulled by the Tryton
connector, staged. Skips without trytond (fails with HUB_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import tryton_harness as harness

from hub.connectors.base import run_pull
from hub.connectors.tryton import TrytonConnector
from hub.mappings import load_mappings
from hub.models import CustomerRecord, Order, Shipment
from hub.staging import stage_pending
from hub.store import Store, landing, quarantine, staged_record

pytestmark = pytest.mark.tryton

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, object, harness.TrytonServer]]:
    d: Path = tmp_path_factory.mktemp("tryton_staging")
    with harness.running_server(parties=24, sales=14) as server:
        store = Store(f"sqlite:///{d / 'hub.db'}")
        conn = TrytonConnector(server.url, server.database, server.username, server.password)
        for entity in ("customers", "orders", "shipments"):
            run_pull(conn, store, entity)
        stats = stage_pending(store, load_mappings(["tryton"]), {"tryton": {"kind": "tryton"}})
        try:
            yield store, stats, server
        finally:
            store.dispose()


def _rows(store: Store, table: sa.Table, **where: str) -> list[dict]:
    q = sa.select(table)
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]


def test_every_tryton_record_is_staged_or_quarantined(staged) -> None:
    store, stats, server = staged
    landed = _rows(store, landing)
    assert {r["entity"] for r in landed} == {"customers", "orders", "shipments"}
    assert stats.records_in == len(landed) == stats.staged + stats.quarantined
    q = {(r["entity"], r["source_id"]) for r in _rows(store, quarantine)}
    s = {(r["entity"], r["source_id"]) for r in _rows(store, staged_record)}
    assert {(r["entity"], r["source_id"]) for r in landed} == q | s and not q & s
    # the seed's customer parties all have a name and a contact: none of them is quarantined
    assert not {sid for e, sid in q if e == "customers"} & {str(p) for p in server.seed.parties}


def test_tryton_customers_orders_shipments_values(staged) -> None:
    store, _, server = staged
    customers = {r["source_id"]: CustomerRecord.model_validate(r["record"])
                 for r in _rows(store, staged_record, entity="customers")}
    seeded = [customers[str(p)] for p in server.seed.parties]
    assert all(c.name and c.name.name_key for c in seeded)
    phones = [p for c in seeded for p in c.phones]
    # party 0's mobile is the dummy 13800000000: staged as no phone (flagged), the others as E.164
    assert len(phones) == len(seeded) - 1 and all(E164.match(p.e164) for p in phones)
    assert not seeded[0].phones
    assert {p.e164[:5] for p in phones} <= {"+8613", "+1415"}
    assert all(c.addresses and c.addresses[0].country in ("CN", "US") for c in seeded)
    assert sum(1 for c in seeded if c.emails) >= len(seeded) * 3 // 4

    orders = _rows(store, staged_record, entity="orders")
    assert len(orders) == len(server.seed.sales)
    for r in orders:
        o = Order.model_validate(r["record"])
        assert r["customer_key"] == f"tryton:{o.customer_source_id}" and o.customer_source_id in customers
        assert o.status in ("draft", "pending", "processing", "completed", "cancelled")
        assert o.lines and o.total is not None and o.ordered_at is not None
    ships = _rows(store, staged_record, entity="shipments")
    assert ships and {Shipment.model_validate(r["record"]).status for r in ships} <= {
        "draft", "waiting", "packed", "shipped", "cancelled"}
    assert any(Shipment.model_validate(r["record"]).status == "shipped" for r in ships)
    assert all(r["customer_key"].removeprefix("tryton:") in customers for r in ships)
    order_ids = {r["source_id"] for r in orders}
    assert all(Shipment.model_validate(r["record"]).order_source_id in order_ids for r in ships)
