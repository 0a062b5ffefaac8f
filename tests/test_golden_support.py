"""Helpers for the golden-record tests: put CustomerRecords into staged_record like the staging stage does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from hub.models import Address, CustomerRecord, Phone
from hub.store import Store, payload_hash, staged_record


def cust(source: str, sid: str, name: str | None = None, *, phone: str | None = None, email: str | None = None,
         **kw: object) -> CustomerRecord:
    phones = [Phone(e164=phone, kind="mobile")] if phone else []
    emails = [email] if email else []
    return CustomerRecord(source=source, source_id=sid, full_name=name, phones=phones, emails=emails, **kw)


def stage(store: Store, records: Iterable[CustomerRecord], at: datetime | None = None) -> None:
    """Upsert staged customer rows (record = model_dump(mode='json'), hash over it)."""
    at = at or datetime.now(UTC).replace(tzinfo=None)
    rows = []
    for r in records:
        rec = r.model_dump(mode="json")
        rows.append({"entity": "customers", "record_key": r.record_key, "source": r.source,
                     "source_id": r.source_id, "customer_key": None, "record": rec, "quality_flags": [],
                     "record_hash": payload_hash(rec), "staged_at": at})
    with store.begin() as conn:
        keys = [r["record_key"] for r in rows]
        for i in range(0, len(keys), 500):
            conn.execute(staged_record.delete().where(staged_record.c.entity == "customers",
                                                      staged_record.c.record_key.in_(keys[i:i + 500])))
        for i in range(0, len(rows), 5000):
            conn.execute(staged_record.insert(), rows[i:i + 5000])


def unstage(store: Store, keys: Iterable[str]) -> None:
    with store.begin() as conn:
        conn.execute(staged_record.delete().where(staged_record.c.record_key.in_(list(keys))))


def synthetic_customers(n: int, seed: int = 7, dup_rate: float = 0.3) -> list[CustomerRecord]:
    """n people, some with duplicates in other sources sharing a phone or e-mail (exact-key matchable)."""
    import random

    rnd = random.Random(seed)
    family = ["Chen", "Wang", "Li", "Zhang", "Liu", "Smith", "Müller", "Garcia", "Kim", "Nguyen"]
    given = ["Wei", "Fang", "Min", "Jun", "Anna", "John", "Maria", "Lei", "Yan", "Peter", "Hui", "Tom"]
    out: list[CustomerRecord] = []
    for i in range(n):
        fam, giv = rnd.choice(family), rnd.choice(given)
        phone = f"+861380{i:07d}"
        email = f"{giv.lower()}.{fam.lower()}{i}@example.com"
        city = rnd.choice(["Shanghai", "Beijing", "Berlin", "Austin"])
        addr = Address(kind="billing", street=f"{i} Main Rd", city=city, postal_code=f"{10000 + i % 9000}",
                       country="CN")
        out.append(cust("erp", f"E{i}", f"{giv} {fam}", phone=phone, email=email, given_name=giv, family_name=fam,
                        birth_date=f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}", addresses=[addr]))
        if rnd.random() < dup_rate:
            out.append(cust("webshop", f"W{i}", f"{fam} {giv}", email=email.upper(),
                            source_updated_at="2025-06-01T10:00:00"))
        if rnd.random() < dup_rate / 2:
            out.append(cust("callcenter", f"+861380{i:07d}", None, phone=phone))
    return out


def membership(store: Store) -> set[frozenset[str]]:
    from hub.golden import golden_membership

    return set(golden_membership(store).values())


def count(store: Store, table: sa.Table, *where: object) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
