"""The Tryton connector against a real trytond on the PostgreSQL backend (the machine's PostgreSQL :5432).

The SQLite-backed suite (test_connectors_tryton.py) covers the protocol in depth; this one checks the parts
where the backend shows through: timestamps (PG's transaction clock), real booleans, x2many domains in the
change window, and the push → pull echo suppression. Skips without PostgreSQL / psycopg 3 (fails under
HUB_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
import tryton_harness as harness

from hub.connectors.base import run_pull, run_push
from hub.connectors.tryton import GOLDEN_ID_PREFIX, TrytonConnector
from hub.store import Store, landing

pytestmark = [pytest.mark.tryton, pytest.mark.postgres]

MODELS = {"customers": "party.party", "orders": "sale.sale", "shipments": "stock.shipment.out"}


@pytest.fixture(scope="module")
def tryton_pg() -> Iterator[harness.TrytonServer]:
    with harness.running_server(parties=30, sales=20, backend="postgresql") as server:
        yield server


def _conn(server: harness.TrytonServer, **kw) -> TrytonConnector:
    return TrytonConnector(server.url, server.database, server.username, server.password, **kw)


def _payload(store: Store, entity: str, sid: int) -> dict:
    with store.engine.connect() as c:
        p = c.execute(sa.select(landing.c.payload).where(
            landing.c.source == "tryton", landing.c.entity == entity, landing.c.source_id == str(sid))).scalar_one()
    return p if isinstance(p, dict) else json.loads(p)


def test_pg_full_then_incremental_then_push_without_echo(tryton_pg, sqlite_store):
    rpc = tryton_pg.rpc()
    rpc.context["active_test"] = False
    for entity, model in MODELS.items():
        st = run_pull(_conn(tryton_pg, page_size=8), sqlite_store, entity)
        expected = {str(i) for i in rpc.search(model, [])}
        if entity == "customers":  # the ERP's own company party is not a customer
            expected -= {str(r["party"]) for r in rpc.search_read("company.company", [], ["party"])}
        assert sqlite_store.landed_ids("tryton", entity) == expected and st.new == len(expected), entity
    p0 = tryton_pg.seed.parties[0]
    assert _payload(sqlite_store, "customers", p0)["active"] is True  # a real bool on PG as on SQLite

    renamed, phoned = tryton_pg.seed.parties[3], tryton_pg.seed.parties[4]
    rpc.write("party.party", [renamed], {"name": "WEI CHEN (pg)"})
    rpc.create("party.contact_mechanism", [{"party": phoned, "type": "email", "value": "wei.chen@example.com"}])
    st = run_pull(_conn(tryton_pg, overlap=timedelta(0)), sqlite_store, "customers")
    assert (st.new, st.changed) == (0, 2)
    assert _payload(sqlite_store, "customers", renamed)["name"] == "WEI CHEN (pg)"

    sqlite_store.enqueue_push("tryton", "customers", str(p0), "G000042",
                              {"golden_id": "G000042", "segment": "vip", "value_tier": "silver"})
    push = run_push(_conn(tryton_pg), sqlite_store)
    assert push.ok == 1
    got = rpc.search_read("party.party", [["id", "=", p0]], ["identifiers.code", "categories.name"])[0]
    assert GOLDEN_ID_PREFIX + "G000042" in [i["code"] for i in got["identifiers."]]
    assert {"hub:segment:vip", "hub:value_tier:silver"} <= {c["name"] for c in got["categories."]}
    again = run_pull(_conn(tryton_pg), sqlite_store, "customers")
    assert (again.new, again.changed) == (0, 0)
