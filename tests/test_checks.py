"""The checks that guard every push: they pass on a consistent golden layer and fail, naming the problem,
on an inconsistent one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import event

from hub.checks import golden_consistency, golden_ids_unique, outbox_targets, quarantine_rate
from hub.store import Store, golden_customer, staged_record, xref

T = datetime(2026, 1, 1)


@pytest.fixture
def store(any_store: Store) -> Store:
    """The checks' SQL on every backend (EXCEPT, JSON paths and NOT EXISTS differ)."""
    return any_store


def _staged(store: Store, key: str, national_id: str | None = None, id_type: str | None = None) -> None:
    source, sid = key.split(":")
    rec = {"source": source, "source_id": sid, "national_id": national_id, "national_id_type": id_type}
    with store.begin() as conn:
        conn.execute(staged_record.insert().values(entity="customers", record_key=key, source=source,
                                                   source_id=sid, record=rec, quality_flags=[],
                                                   record_hash=key, staged_at=T))


def _golden(store: Store, gid: str, keys: list[str], status: str = "active") -> None:
    with store.begin() as conn:
        conn.execute(golden_customer.insert().values(golden_id=gid, status=status, record={}, created_at=T,
                                                     updated_at=T))
        for key in keys:
            source, sid = key.split(":")
            conn.execute(xref.insert().values(record_key=key, source=source, source_id=sid, golden_id=gid,
                                              valid_from=T))


def test_consistent_golden_layer_passes(store: Store) -> None:
    _staged(store, "erp:1", "11010519491231002X")
    _staged(store, "webshop:7", "11010519491231002X")
    _golden(store, "G1", ["erp:1", "webshop:7"])
    assert golden_consistency(store).passed


def test_unmapped_records_and_national_id_conflicts_fail(store: Store) -> None:
    _staged(store, "erp:1", "11010519491231002X")
    _staged(store, "webshop:7", "440524188001010014")
    _staged(store, "social:o1")
    _golden(store, "G1", ["erp:1", "webshop:7"])
    outcome = golden_consistency(store)
    assert not outcome.passed
    assert outcome.metadata["unmapped_records"] == 1
    assert outcome.metadata["national_id_conflicts"] == 1
    assert "two different national ids" in outcome.markdown()


def test_unverified_identifiers_one_typo_apart_are_no_conflict(store: Store) -> None:
    # ids of an undeclared kind are kept unchecked for matching (a typo links, as in hub dedupe): only validated
    # ids that differ say two people were folded together
    _staged(store, "crm:1", "1804974", "other")
    _staged(store, "crm:2", "1804947", "other")
    _golden(store, "G1", ["crm:1", "crm:2"])
    assert golden_consistency(store).passed


def test_xref_to_a_retired_golden_id_fails(store: Store) -> None:
    _staged(store, "erp:1")
    _golden(store, "G1", ["erp:1"], status="retired")
    assert golden_consistency(store).metadata["dangling_xref_golden_ids"] == 1


def test_dangling_golden_ids_are_counted_once_each_retired_or_missing(store: Store) -> None:
    for key in ("erp:1", "erp:2", "erp:3", "erp:4"):
        _staged(store, key)
    _golden(store, "G1", ["erp:1", "erp:2"], status="retired")  # two links, one dangling id
    _golden(store, "G2", ["erp:3"])
    with store.begin() as conn:  # a link to an id no golden customer has
        conn.execute(xref.insert().values(record_key="erp:4", source="erp", source_id="4", golden_id="G0",
                                          valid_from=T))
    outcome = golden_consistency(store)
    assert not outcome.passed
    assert outcome.metadata["dangling_xref_golden_ids"] == 2
    assert "2 xref rows point at retired or missing golden ids (e.g. G0)" in outcome.markdown()


def test_dangling_ids_are_checked_off_the_status_index(sqlite_store: Store) -> None:
    """The active golden ids are read off ix_golden_status (status, golden_id) alone: a status looked up per
    link read each golden row (4 KB apiece; at a million customers most of the check's minute, cold)."""
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if "golden_customer" in statement and "xref" in statement:
            statements.append((statement, parameters))

    event.listen(sqlite_store.engine, "before_cursor_execute", seen)
    try:
        golden_consistency(sqlite_store)
    finally:
        event.remove(sqlite_store.engine, "before_cursor_execute", seen)
    assert statements
    with sqlite_store.engine.connect() as conn:
        for statement, parameters in statements:
            plan = " | ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
            assert "COVERING INDEX ix_golden_status" in plan, plan
            assert "sqlite_autoindex_golden_customer" not in plan, plan


def test_creates_only_where_configured(store: Store) -> None:
    store.enqueue_push("webshop", "customers", "", "G1", {"create": {}})
    assert not outbox_targets(store, frozenset()).passed
    assert outbox_targets(store, frozenset({"webshop"})).passed


def test_quarantine_rate_per_source(store: Store) -> None:
    assert quarantine_rate(store).passed  # empty store: nothing to warn about


def test_golden_ids_unique_follows_retired_ids_to_an_active_customer(store: Store) -> None:
    _golden(store, "G1", ["erp:1"])
    _golden(store, "G2", ["erp:2"])
    assert golden_ids_unique(store).passed
    with store.begin() as conn:  # G3 -> G4 -> G1 (active): resolvable; G5 -> G6 -> G5: a cycle
        conn.execute(golden_customer.insert(), [
            {"golden_id": g, "status": "retired", "merged_into": m, "record": None, "created_at": T, "updated_at": T}
            for g, m in (("G3", "G4"), ("G4", "G1"), ("G5", "G6"), ("G6", "G5"))])
        # erp:2 is linked to G1 as well, while its G2 link is still open
        conn.execute(xref.insert().values(record_key="erp:2", source="erp", source_id="2", golden_id="G1",
                                          valid_from=T))
    out = golden_ids_unique(store)
    assert not out.passed
    assert out.metadata == {"records_with_several_golden_ids": 1, "retired_ids_unresolvable": 2, "retired_ids": 4}
