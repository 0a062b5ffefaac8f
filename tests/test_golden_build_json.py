"""build_golden writes the golden JSON and hash with orjson where it gives the stdlib's bytes: the stored text
and record_hash must stay exactly what json.dumps gives, for ordinary records (non-ASCII names, control
characters) and for records whose values orjson would write or read differently (tiny floats, integers beyond
64 bits). On SQLite and PostgreSQL (a JSON column there takes the text through a cast)."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from test_golden_support import cust, stage

from hub.golden import build_golden, match_and_cluster, unpack_lineage
from hub.golden.build import golden_hash
from hub.store import Store, golden_customer, json_text, payload_hash, staged_record


def _stored(store: Store) -> dict[str, tuple[str, str, str]]:
    """golden_id -> (record text, lineage text, record_hash) as the database holds them."""
    rec_text = sa.cast(golden_customer.c.record, sa.Text)  # the stored text, not the driver's parsed value
    lin_text = sa.cast(golden_customer.c.lineage, sa.Text)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(golden_customer.c.golden_id, rec_text, lin_text, golden_customer.c.record_hash)
                            .where(golden_customer.c.status == "active")).all()
    return {g: (r, lin, h) for g, r, lin, h in rows}


def _assert_stdlib_bytes(stored: dict[str, tuple[str, str, str]]) -> None:
    for rec_text, lin_text, h in stored.values():
        rec, lin = json.loads(rec_text), json.loads(lin_text)
        assert rec_text == json_text(rec)
        assert lin_text == json_text(lin)
        assert h == golden_hash(rec, unpack_lineage(lin))


def test_golden_json_and_hash_are_the_stdlib_bytes(store: Store) -> None:
    stage(store, [
        cust("erp", "1", "陈伟 \u2028Zoë\x01", phone="+8613800138000", email="chen.wei@corp.cn"),
        cust("webshop", "7", "Wei \"Chen\"\\", phone="+8613800138000"),
        cust("erp", "2", "Ana Müller", email="ana@example.de"),
    ], at=datetime(2026, 1, 2))
    match_and_cluster(store, {"engine": "fixed"}, mode="full")
    build_golden(store, mode="full")
    stored = _stored(store)
    assert len(stored) == 2
    _assert_stdlib_bytes(stored)
    assert any("陈伟" in r for r, _, _ in stored.values())  # written as UTF-8, not \u escapes


def test_values_orjson_writes_or_reads_differently_keep_the_stdlib_form(store: Store) -> None:
    stage(store, [cust("erp", "1", "Ana Müller", email="ana@example.de")], at=datetime(2026, 1, 2))
    # a record staged by other means than the model: a float company and an integer national id beyond 64 bits
    with store.begin() as conn:
        raw = conn.execute(sa.select(staged_record.c.record)).scalar_one()
        raw = {**raw, "company": 1e-05, "national_id": 123456789012345678901234567, "national_id_type": "cn_resident"}
        conn.execute(staged_record.update().values(record=raw, record_hash=payload_hash(raw)))
    match_and_cluster(store, {"engine": "fixed"}, mode="full")
    build_golden(store, mode="full")
    stored = _stored(store)
    _assert_stdlib_bytes(stored)
    (rec_text, _, _), = stored.values()
    assert '"company":1e-05' in rec_text  # orjson writes 1e-5
    assert '"national_id":123456789012345678901234567' in rec_text  # orjson reads it as a float


def test_json_columns_read_back_as_json_loads_reads_them(store: Store) -> None:
    """The store reads JSON columns with orjson where it agrees with json.loads: long integers, NaN and infinite
    floats written by the store come back as the same objects (orjson alone reads the first as a float and
    rejects the others)."""
    stage(store, [cust("erp", "1", "Ana Müller", email="ana@example.de")], at=datetime(2026, 1, 2))
    with store.begin() as conn:
        raw = conn.execute(sa.select(staged_record.c.record)).scalar_one()
        odd = {**raw, "big": 123456789012345678901234567, "neg": -9223372036854775809, "u64": 18446744073709551615,
               "ratio": 1e-05, "many": [1.5, "陈伟", None, True]}
        conn.execute(staged_record.update().values(record=odd))
    with store.engine.connect() as conn:
        back = conn.execute(sa.select(staged_record.c.record)).scalar_one()
    assert back == odd
    assert type(back["big"]) is int and type(back["neg"]) is int


def test_payload_hash_is_the_sha256_of_the_canonical_stdlib_text() -> None:
    """Every stored hash (landing, staged, 360 view, push payload) is the sha256 of ``canonical_json``'s UTF-8
    bytes, whichever encoder writes them: values orjson writes like json.dumps and values it writes otherwise."""
    import hashlib
    from datetime import date
    from decimal import Decimal

    from hub.store import canonical_json

    values = [
        {"b": 1, "a": [True, None, "陈伟 \u2028Zoë\x01", {"z": 2, "y": "\"q\"\\"}], "c": 0.25, "d": -0.0},
        {"tiny": 1e-05, "huge": 1e17, "big": 123456789012345678901234567, "neg": -9223372036854775809},
        {"when": datetime(2026, 1, 2, 3, 4, 5), "day": date(2026, 1, 2), "amount": Decimal("12.50")},
        [1, 2.5, "x", (3, 4)], "plain", 42, None, {}, [],
        {"nan": float("nan"), "inf": float("inf")},
    ]
    for v in values:
        assert payload_hash(v) == hashlib.sha256(canonical_json(v).encode("utf-8")).hexdigest(), repr(v)
