"""The quality facts the golden build keeps with each golden customer are the ones the quality dimensions work out
from the records (the path of a store built by an older version); they follow a record's change, and wrong ones
are mended without touching the golden records."""

from __future__ import annotations

import copy
from datetime import datetime

import sqlalchemy as sa

from hub.golden import build_golden, match_and_cluster
from hub.golden.synthetic import stage_records, synthetic_records
from hub.quality import QualityConfig, score_dimensions
from hub.quality.dimensions import CACHE_ENTITY
from hub.store import Store, golden_customer, review_decision, xref

EXACT = {"engine": "fixed", "full_rebuild_share": 1.0}


def synced(store: Store, records: list[dict]) -> None:
    """Stage ``records``, match them in full and build the golden layer."""
    stage_records(store, records)
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)


def facts(store: Store) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.quality_facts)
                                 .where(golden_customer.c.status == "active")).all())


def dimensions(store: Store) -> dict:
    store.save_cursor("hub", CACHE_ENTITY, None)  # score again, not the kept scores
    return score_dimensions(store, QualityConfig())


def worked_out_from_the_records(store: Store) -> dict[str, str | None]:
    """The facts the dimensions work out for golden customers kept without any, kept by them."""
    with store.begin() as conn:
        conn.execute(golden_customer.update().values(quality_facts=None))
    dimensions(store)
    return facts(store)


def test_the_golden_build_keeps_what_the_dimensions_work_out_from_the_records(any_store: Store) -> None:
    store = any_store
    records = list(synthetic_records(300, seed=5))
    # conflicts: the other systems' records of a person get another birth date than the ERP's, and every other
    # one another name (without a shared word); those still matched to the ERP's record conflict with it
    others = [r for r in records if r["source"] != "erp"]
    for i, r in enumerate(others):
        r["birth_date"] = "1901-02-03"
        if i % 2:
            r["name"] = {**(r.get("name") or {}), "name_key": "qqqq zzzz"}
    synced(store, records)

    built = facts(store)
    assert built and all(text is not None for text in built.values())
    scored = dimensions(store)
    c = scored["consistency"]
    assert c["golden_with_several_records"] > 0 and c["golden_with_conflicts"] > 0
    assert c["conflicts_by_field"].get("birth_date", 0) > 0
    assert worked_out_from_the_records(store) == built
    assert dimensions(store) == scored


def test_a_changed_record_reaches_the_facts_of_its_golden_customer(sqlite_store: Store) -> None:
    store = sqlite_store
    records = list(synthetic_records(200, seed=9))
    synced(store, records)
    # a golden customer of several records, kept together by a steward; one of them gets a birth date the golden
    # record does not take
    with store.engine.connect() as conn:
        links = conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))).all()
    by_golden: dict[str, list[str]] = {}
    for key, gid in links:
        by_golden.setdefault(gid, []).append(key)
    gid, keys = next((g, sorted(ks)) for g, ks in sorted(by_golden.items())
                     if len(ks) > 1 and any(k.startswith("erp:") for k in ks))
    # not the ERP's record: the ERP is trusted most, its birth date stays the golden one
    other = next(k for k in keys if not k.startswith("erp:"))
    target = next(r for r in records if f"{r['source']}:{r['source_id']}" == other)
    with store.begin() as conn:
        conn.execute(review_decision.insert().values(left_key=min(keys[0], other), right_key=max(keys[0], other),
                                                     decision="match", decided_by="steward",
                                                     decided_at=datetime(2026, 1, 1)))
    match_and_cluster(store, EXACT)
    build_golden(store)
    before = facts(store)[gid]
    changed = copy.deepcopy(target)
    changed["birth_date"] = "1902-03-04"
    stage_records(store, [changed])
    match_and_cluster(store, EXACT)
    build_golden(store)

    after = facts(store)
    assert after[gid] != before and '"birth_date":1' in after[gid]
    assert worked_out_from_the_records(store) == after


def test_facts_that_differ_from_the_records_are_mended_without_touching_the_golden_customers(
        sqlite_store: Store) -> None:
    """Facts kept wrong (written by hand, or by a version that worked them out otherwise) are rewritten by the
    next full build alone: the golden records, their hashes and times stay (nothing downstream sees a change)."""
    store = sqlite_store
    synced(store, list(synthetic_records(120, seed=3)))
    right = facts(store)

    def golden_rows() -> set[tuple]:
        with store.engine.connect() as conn:
            return set(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record_hash,
                                              golden_customer.c.updated_at)).all())

    rows = golden_rows()
    with store.begin() as conn:
        conn.execute(golden_customer.update().values(quality_facts='{"c":0}'))
    stats = build_golden(store, mode="full")
    assert facts(store) == right
    assert golden_rows() == rows and stats.golden_written == 0
