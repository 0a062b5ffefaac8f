"""Synthetic staged customers for golden-record tests and the bench (no personal data: generated names).

People appear in the ERP, some also in the web shop (same e-mail, reversed name order, upper-case e-mail),
some in the call center (same phone), some on social (same e-mail, only a name). Households share a
landline. Records are ``CustomerRecord.model_dump(mode="json")``-shaped dicts, built directly for speed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from hub.quality.identifiers import identifier_digests
from hub.store import Store, payload_hash, staged_record

FAMILY = ["Chen", "Wang", "Li", "Zhang", "Liu", "Yang", "Huang", "Zhao", "Smith", "Müller", "Garcia", "Kim",
          "Nguyen", "Schmidt", "Rossi", "Tanaka"]
GIVEN = ["Wei", "Fang", "Min", "Jun", "Lei", "Yan", "Hui", "Jing", "Anna", "John", "Maria", "Peter", "Tom",
         "Laura", "Mei", "Hao", "Xin", "Lina"]
CITIES = [("Shanghai", "CN"), ("Beijing", "CN"), ("Shenzhen", "CN"), ("Berlin", "DE"), ("Austin", "US")]


def _record(source: str, sid: str, **kw: object) -> dict:
    rec = {
        "source": source, "source_id": sid, "full_name": None, "given_name": None, "family_name": None,
        "name": None, "company": None, "company_key": None, "emails": [], "email_keys": [], "phones": [],
        "birth_date": None, "gender": None, "national_id": None, "national_id_type": None, "addresses": [],
        "consent": {"email": None, "sms": None, "phone": None, "social": None}, "language": None,
        "source_created_at": None, "source_updated_at": None, "external_ids": {},
    }
    rec.update(kw)
    return rec


def _phone(e164: str, kind: str = "mobile") -> dict:
    return {"e164": e164, "kind": kind, "extension": None, "raw": None}


def person_records(i: int, rnd: random.Random, dup_rate: float = 0.3) -> list[dict]:
    """The source records of synthetic person ``i`` (deterministic for a given rng state)."""
    fam, giv = rnd.choice(FAMILY), rnd.choice(GIVEN)
    key = " ".join(sorted((fam.lower(), giv.lower())))
    mobile = f"+86138{i:08d}"
    email = f"{giv.lower()}.{fam.lower()}.{i}@example.com"
    city, country = rnd.choice(CITIES)
    addr = {"kind": "billing", "street": f"{i % 977} Garden Rd {i // 977}", "district": None, "city": city,
            "region": None, "postal_code": f"{100000 + i % 90000}", "country": country, "key": None}
    # birth dates spread like real ones (~24k distinct days), not a handful of repeating values
    dob = (date(1940, 1, 1) + timedelta(days=rnd.randrange(24_000))).isoformat()
    phones = [_phone(mobile)]
    if i % 10 < 5:  # households: five consecutive people share a landline
        phones.append(_phone(f"+86215{i // 10:07d}", "fixed"))
    out = [_record(
        "erp", f"E{i}", full_name=f"{giv} {fam}", given_name=giv, family_name=fam,
        name={"display": f"{giv} {fam}", "family": fam, "given": giv, "script": "latin", "han": None,
              "family_pinyin": None, "given_pinyin": None, "name_key": key, "given_canonical": None},
        emails=[email], email_keys=[email], phones=phones, birth_date=dob, addresses=[addr],
        consent={"email": True, "sms": None, "phone": None, "social": None},
        source_updated_at="2024-01-01T00:00:00",
    )]
    if rnd.random() < dup_rate:
        out.append(_record(
            "webshop", f"W{i}", full_name=f"{fam.upper()} {giv}", emails=[email.upper()], email_keys=[email],
            phones=[_phone(mobile)] if rnd.random() < 0.5 else [], addresses=[addr],
            consent={"email": False, "sms": None, "phone": None, "social": None},
            source_updated_at="2025-06-01T10:00:00",
        ))
    if rnd.random() < dup_rate / 2:
        out.append(_record("callcenter", mobile, phones=[_phone(mobile)]))
    if rnd.random() < dup_rate / 3:
        out.append(_record("social", f"o{i}", full_name=f"{giv} {fam}", emails=[email], email_keys=[email]))
    return out


def synthetic_records(n_people: int, seed: int = 7, dup_rate: float = 0.3) -> Iterator[dict]:
    rnd = random.Random(seed)
    for i in range(n_people):
        yield from person_records(i, rnd, dup_rate)


def stage_records(store: Store, records: Iterable[dict], at: datetime | None = None, batch: int = 5000,
                  engine_rows: bool = True) -> int:
    """Upsert staged customer rows the way the staging stage writes them; returns the number written.
    ``engine_rows=False``: without the engine rows staging keeps (as a store staged before 0032 holds them)."""
    from hub.golden.matching import staged_engine_rows
    at = at or datetime.now(UTC).replace(tzinfo=None)
    n = 0
    buf: list[dict] = []

    def flush() -> None:
        if engine_rows:
            kept = staged_engine_rows([(r["record_hash"], r["record"]) for r in buf])
            for r, (engine_input, engine_row) in zip(buf, kept, strict=True):
                r["engine_input"], r["engine_row"] = engine_input, engine_row
        keys = [r["record_key"] for r in buf]
        with store.begin() as conn:
            for i in range(0, len(keys), 500):
                conn.execute(staged_record.delete().where(
                    staged_record.c.entity == "customers", staged_record.c.record_key.in_(keys[i : i + 500])))
            conn.execute(staged_record.insert(), buf)
        buf.clear()

    for rec in records:
        key = f"{rec['source']}:{rec['source_id']}"
        record_hash = payload_hash(rec)
        buf.append({"entity": "customers", "record_key": key, "source": rec["source"], "source_id": rec["source_id"],
                    "customer_key": None, "record": rec, "quality_flags": [], "record_hash": record_hash,
                    "staged_at": at, "identifier_hashes": identifier_digests(rec), "engine_input": None,
                    "engine_row": None})
        n += 1
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    return n


def unstage_records(store: Store, keys: Iterable[str]) -> None:
    keys = list(keys)
    with store.begin() as conn:
        for i in range(0, len(keys), 500):
            conn.execute(staged_record.delete().where(
                staged_record.c.entity == "customers", staged_record.c.record_key.in_(keys[i : i + 500])))


def mutate(records: list[dict], share: float, seed: int = 11) -> tuple[list[dict], list[str]]:
    """Change ``share`` of the records: new e-mails (splits), borrowed phones (merges), deletions, new people.

    Returns (records to upsert, record keys to delete).
    """
    rnd = random.Random(seed)
    k = max(1, int(len(records) * share))
    picked = rnd.sample(range(len(records)), k)
    upserts: list[dict] = []
    deletes: list[str] = []
    for n, idx in enumerate(picked):
        rec = dict(records[idx])
        kind = n % 5
        if kind == 0:  # new e-mail address: may split a web shop record off its ERP customer
            rec["emails"] = [f"changed.{idx}@example.org"]
            rec["email_keys"] = [f"changed.{idx}@example.org"]
        elif kind == 1:  # picks up another customer's mobile: merge candidate
            other = records[rnd.randrange(len(records))]
            rec["phones"] = list(other["phones"][:1]) + list(rec["phones"])
            rec["full_name"] = other["full_name"]
            rec["name"] = other["name"]
        elif kind == 2:  # record deleted in the source
            deletes.append(f"{rec['source']}:{rec['source_id']}")
            continue
        elif kind == 3:  # plain attribute update (no membership change)
            rec["source_updated_at"] = "2026-01-01T00:00:00"
            rec["consent"] = {**rec["consent"], "email": False}
        else:  # a brand-new record in the web shop for this customer
            rec = {**rec, "source": "webshop", "source_id": f"N{idx}", "source_updated_at": "2026-02-01T00:00:00"}
        upserts.append(rec)
    return upserts, deletes


def count_customers(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(staged_record).where(
            staged_record.c.entity == "customers")).scalar_one()
