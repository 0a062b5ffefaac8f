"""The golden records' lineage is stored packed (each deciding record once, a field's decision time only where it
differs) and read back as the entries survivorship gave: through load_golden, after an incremental build that kept
some decision times, and in a store whose rows were written in the entries' form before migration 0031."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from test_golden_support import cust, stage

from hub.golden import (
    build_golden,
    golden_id_of,
    load_golden,
    match_and_cluster,
    pack_lineage,
    unpack_lineage,
)
from hub.models import Address
from hub.store import Store, golden_customer

T1, T2 = datetime(2026, 1, 2), datetime(2026, 3, 4)


def _entries(store: Store) -> dict[str, tuple[dict, dict, str]]:
    """golden_id -> (stored lineage, its entries, record_hash) of the active golden records."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.lineage,
                                      golden_customer.c.record_hash)
                            .where(golden_customer.c.status == "active")).all()
    return {g: (lin, unpack_lineage(lin), h) for g, lin, h in rows}


def _people(store: Store) -> None:
    home = Address(kind="billing", street="88 Nanjing Rd", city="Shanghai", postal_code="200001", country="CN")
    stage(store, [
        cust("erp", "1", "陈伟", phone="+8613800138000", email="chen.wei@corp.cn", addresses=[home],
             source_updated_at=T1),
        cust("webshop", "7", "Wei Chen", phone="+8613800138000", email="wei@shop.cn", source_updated_at=T2,
             consent={"email": True}),
        cust("erp", "2", "Ana Müller", email="ana@example.de"),
    ], at=T1)


def test_stored_lineage_unpacks_to_the_entries_and_load_golden_reads_them(any_store: Store) -> None:
    _people(any_store)
    match_and_cluster(any_store, {"engine": "fixed"}, mode="full")
    build_golden(any_store, mode="full")
    stored = _entries(any_store)
    assert len(stored) == 2
    chen = golden_id_of(any_store, "erp:1")
    packed, entries, _ = stored[chen]
    # two records decided the values: each stored once, not under every field
    assert sorted(r[0] for r in packed["records"]) == ["erp:1", "webshop:7"]
    assert set(entries) >= {"full_name", "primary_phone", "emails[0]", "emails[1]", "address", "consent.email"}
    assert entries["consent.email"]["record_key"] == "webshop:7"
    assert entries["consent.email"]["source_updated_at"].startswith("2026-03-04")
    assert len({e["decided_at"] for e in entries.values()}) == 1
    golden = load_golden(any_store, chen)
    assert golden is not None
    assert {f: lin.model_dump(mode="json") for f, lin in golden.lineage.items()} == entries
    assert len(json.dumps(packed)) < 0.6 * len(json.dumps(entries))


def test_an_incremental_build_keeps_unchanged_decision_times_in_the_packed_form(sqlite_store: Store) -> None:
    _people(sqlite_store)
    match_and_cluster(sqlite_store, {"engine": "fixed"}, mode="full")
    build_golden(sqlite_store, mode="full")
    chen = golden_id_of(sqlite_store, "erp:1")
    before = _entries(sqlite_store)[chen][1]
    # the shop record gets a new e-mail: that value is decided again, the others keep their time
    stage(sqlite_store, [cust("webshop", "7", "Wei Chen", phone="+8613800138000", email="wei.chen@shop.cn",
                              source_updated_at=T2, consent={"email": True})], at=T2)
    match_and_cluster(sqlite_store, {"engine": "fixed"})
    build_golden(sqlite_store)
    packed, after, _ = _entries(sqlite_store)[chen]
    assert after["full_name"]["decided_at"] == before["full_name"]["decided_at"]
    changed = [f for f in after if after[f]["decided_at"] != before[f]["decided_at"]]
    assert changed and all(f.startswith("emails") or f == "primary_email" for f in changed)
    # the times that differ from the record's are the ones stored with their field
    assert {f for f, v in packed["fields"].items() if len(v) == 3} == (
        {f for f in after if after[f]["decided_at"] != packed["decided_at"]})
    assert pack_lineage(after) == packed


def test_lineage_written_before_0031_is_packed_on_upgrade_without_changing_any_hash(any_store: Store) -> None:
    from alembic import command

    from hub.store import alembic_config

    _people(any_store)
    match_and_cluster(any_store, {"engine": "fixed"}, mode="full")
    build_golden(any_store, mode="full")
    now = _entries(any_store)
    command.downgrade(alembic_config(any_store.engine), "0030")
    with any_store.engine.connect() as conn:
        written = dict(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.lineage)).all())
    # as 0030's code wrote them: an entry per field
    assert written == {g: entries for g, (_, entries, _) in now.items()}
    any_store.dispose()
    again = Store(any_store.url)  # opening runs 0031
    try:
        assert _entries(again) == now
    finally:
        again.dispose()
