"""Seed rows for the 360 / push-plan / report tests, written in the table shapes of hub/store.py.

The staged records are built from the canonical models (``Model.model_dump(mode="json")``), exactly what the
staging stage writes; golden records are ``GoldenCustomer`` dumps. No code of the staging or golden stages is
used, so these tests do not depend on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hub.golden import pack_lineage
from hub.models import (
    Consent,
    CustomerRecord,
    FieldLineage,
    GoldenCustomer,
    Interaction,
    Order,
    Phone,
    Shipment,
)
from hub.store import (
    LandingRecord,
    Store,
    golden_customer,
    golden_id_history,
    jsonable,
    payload_hash,
    staged_record,
    xref,
)

T0 = datetime(2026, 1, 1)
AS_OF = datetime(2026, 11, 1)


def staged_row(entity: str, model: Any, customer_key: str | None = None,
               flags: Sequence[str] = ()) -> dict[str, Any]:
    rec = model.model_dump(mode="json")
    return {
        "entity": entity,
        "record_key": f"{model.source}:{model.source_id}",
        "source": model.source,
        "source_id": model.source_id,
        "customer_key": customer_key,
        "record": rec,
        "quality_flags": list(flags),
        "record_hash": payload_hash(rec),
        "staged_at": T0,
    }


def insert_staged(store: Store, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        with store.begin() as conn:
            conn.execute(staged_record.insert(), rows)


def insert_golden(store: Store, goldens: Iterable[GoldenCustomer], status: str = "active") -> None:
    rows = []
    for g in goldens:
        rec = g.model_dump(mode="json")
        rows.append({
            "golden_id": g.golden_id, "status": status, "merged_into": None, "record": rec,
            "lineage": pack_lineage(rec["lineage"]), "quality_score": g.quality_score, "record_hash": payload_hash(rec),
            "created_at": T0, "updated_at": T0,
        })
    if rows:
        with store.begin() as conn:
            conn.execute(golden_customer.insert(), rows)


def insert_xref(store: Store, links: Iterable[tuple[str, str]], valid_to: datetime | None = None,
                landed: bool = True) -> None:
    """xref rows; ``landed`` also lands the source's own customer payload (what a pull would have done)."""
    rows = [{"record_key": rk, "source": rk.split(":", 1)[0], "source_id": rk.split(":", 1)[1],
             "golden_id": gid, "valid_from": T0, "valid_to": valid_to} for rk, gid in links]
    if rows:
        with store.begin() as conn:
            conn.execute(xref.insert(), rows)
    if rows and landed:
        by_source: dict[str, list[LandingRecord]] = {}
        for r in rows:
            body = {"id": r["source_id"]}
            by_source.setdefault(r["source"], []).append(LandingRecord(r["source_id"], body, payload_hash(body)))
        for source, records in by_source.items():
            store.land_page(source, "customers", records, None)


def insert_history(store: Store, events: Iterable[tuple[str, str, str | None]]) -> None:
    rows = [{"golden_id": g, "event": e, "related_golden_id": r, "record_key": None, "reason": "test",
             "at": T0} for g, e, r in events]
    with store.begin() as conn:
        conn.execute(golden_id_history.insert(), rows)


def customer(source: str, sid: str, name: str, phones: Sequence[str] = (), emails: Sequence[str] = (),
             consent: Consent | None = None, **kw: Any) -> CustomerRecord:
    return CustomerRecord(source=source, source_id=sid, full_name=name,
                          phones=[Phone(e164=p, kind="mobile") for p in phones], emails=list(emails),
                          consent=consent or Consent(), **kw)


def order(source: str, sid: str, customer_sid: str, total: str, at: datetime, number: str | None = None,
          status: str = "completed", currency: str = "CNY", updated: datetime | None = None) -> Order:
    return Order(source=source, source_id=sid, customer_source_id=customer_sid, order_number=number,
                 status=status, currency=currency, total=Decimal(total), ordered_at=at,
                 updated_at=updated or at)


def golden(gid: str, name: str, keys: Sequence[str], phones: Sequence[str] = (), emails: Sequence[str] = (),
           consent: Consent | None = None, quality: float = 0.9, **kw: Any) -> GoldenCustomer:
    return GoldenCustomer(
        golden_id=gid, full_name=name, phones=list(phones), primary_phone=phones[0] if phones else None,
        emails=list(emails), primary_email=emails[0] if emails else None, consent=consent or Consent(),
        sources=sorted({k.split(":")[0] for k in keys}), record_keys=list(keys), quality_score=quality,
        lineage={"full_name": FieldLineage(record_key=keys[0], source=keys[0].split(":")[0], rule="source_priority",
                                           decided_at=T0)},
        **kw,
    )


def seed_demo(store: Store) -> dict[str, Any]:
    """Three golden customers over four systems, the shapes the demo produces.

    G1 陈伟 — erp + webshop + social; the same order WC-1001 in webshop and ERP; big spender (platinum).
       Opted in to social marketing in the shop, out on WeChat later (the latest statement wins: out).
       Agreed to calls in the ERP. Calls from his mobile.
    G2 Anna Schmidt — webshop only, one small order 400 days ago (lapsed).
    G3 Li Na — erp only, no orders (prospect); shares no phone.
    G4 — retired (merged into G1): no 360 row.
    """
    p1 = "+8613800138000"
    insert_golden(store, [
        golden("G000000001", "陈伟", ["erp:10", "webshop:501", "social:oWx1"], phones=[p1],
               emails=["chen.wei@example.cn"], address=None,
               consent=Consent(email=True, social=False, phone=True)),
        golden("G000000002", "Anna Schmidt", ["webshop:502"], phones=["+4915112345678"],
               emails=["anna@example.de"], consent=Consent(email=True, social=True)),
        golden("G000000003", "李娜", ["erp:11"], phones=["+8613912345678"], quality=0.5),
    ])
    insert_golden(store, [golden("G000000004", "陳偉", ["erp:12"])], status="retired")
    insert_xref(store, [("erp:10", "G000000001"), ("webshop:501", "G000000001"), ("social:oWx1", "G000000001"),
                        ("webshop:502", "G000000002"), ("erp:11", "G000000003")])
    insert_xref(store, [("erp:12", "G000000004")], valid_to=T0)  # closed link: must be ignored
    insert_staged(store, [
        staged_row("customers", customer("erp", "10", "陈伟", [p1], consent=Consent(email=True, phone=True))),
        staged_row("customers", customer("webshop", "501", "Chen Wei", [p1], ["chen.wei@example.cn"],
                                         consent=Consent(email=True, social=True))),
        staged_row("customers", customer("social", "oWx1", "陈伟", consent=Consent(social=False))),
        staged_row("customers", customer("webshop", "502", "Anna Schmidt", ["+4915112345678"],
                                         consent=Consent(email=True, social=True)),
                   flags=["email.fixed"]),
        staged_row("customers", customer("erp", "11", "李娜", ["+8613912345678"]), flags=["birth_date.nulled"]),
    ])
    # G1: 6 orders in the shop, one of them (WC-1001) also booked in the ERP, plus a cancelled one
    orders = [staged_row("orders", order("webshop", f"o{i}", "501", "5000", datetime(2026, 1 + i, 5),
                                         number=f"WC-100{i}"), "webshop:501") for i in range(1, 7)]
    orders.append(staged_row("orders", order("erp", "SO7", "10", "5000.00", datetime(2026, 2, 5),
                                             number="wc-1001", updated=datetime(2026, 2, 9)), "erp:10"))
    orders.append(staged_row("orders", order("webshop", "o9", "501", "9999", datetime(2026, 10, 1),
                                             number="WC-1009", status="cancelled"), "webshop:501"))
    orders.append(staged_row("orders", order("webshop", "o10", "502", "120", datetime(2025, 9, 20),
                                             number="WC-2001"), "webshop:502"))
    orders.append(staged_row("orders", order("webshop", "o11", "999", "80", datetime(2026, 3, 1),
                                             number="WC-3001"), "webshop:999"))  # customer never matched
    insert_staged(store, orders)
    insert_staged(store, [
        staged_row("shipments", Shipment(source="erp", source_id="SH1", order_source_id="SO7", status="delivered",
                                         delivered_at=datetime(2026, 2, 12))),
        staged_row("shipments", Shipment(source="webshop", source_id="SH2", customer_source_id="501",
                                         status="shipped", shipped_at=datetime(2026, 6, 7)), "webshop:501"),
    ])
    insert_staged(store, [
        staged_row("interactions", Interaction(source="callcenter", source_id="c1", kind="call", phone=p1,
                                               occurred_at=datetime(2026, 9, 1, 10))),
        staged_row("interactions", Interaction(source="callcenter", source_id="c2", kind="call", phone=p1,
                                               occurred_at=datetime(2026, 10, 1, 10))),
        staged_row("interactions", Interaction(source="callcenter", source_id="c3", kind="call",
                                               phone="+8610000000000", occurred_at=datetime(2026, 10, 2))),
        staged_row("interactions", Interaction(source="social", source_id="f1", kind="social_follow",
                                               customer_source_id="oWx1", occurred_at=datetime(2026, 3, 3)),
                   "social:oWx1"),
    ])
    return {"phone_g1": p1}


def current_360(store: Store) -> dict[str, dict[str, Any]]:
    from hub.store import customer_360

    with store.engine.connect() as conn:
        return {gid: rec for gid, rec in conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record))}


__all__ = ["AS_OF", "T0", "current_360", "customer", "golden", "insert_golden", "insert_history",
           "insert_staged", "insert_xref", "jsonable", "order", "seed_demo", "staged_row"]
