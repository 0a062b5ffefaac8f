"""Incremental matching == full rebuild (membership, golden ids, match pairs) over several rounds of changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import hub.golden.matching
from hub.golden import build_golden, golden_membership, match_and_cluster
from hub.golden.synthetic import mutate, stage_records, synthetic_records, unstage_records
from hub.golden.tables import match_block, match_record
from hub.store import Store, match_pair, staged_record

EXACT = {"engine": "fixed", "full_rebuild_share": 1.0}


def pairs(store: Store) -> set[tuple]:
    with store.engine.connect() as conn:
        return {(r.left_key, r.right_key, r.band, round(r.match_weight, 6)) for r in conn.execute(sa.select(match_pair))}


def matched(store: Store) -> dict[str, tuple]:
    """match_record as a full rebuild writes it: digest (content and candidate partners) and cluster label."""
    with store.engine.connect() as conn:
        return {k: (h, c) for k, h, c in conn.execute(
            sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key))}


def blocks(store: Store) -> set[tuple]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(match_block.c.block_key, match_block.c.record_key)).tuples())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_equals_full_rebuild_over_rounds(sqlite_store: Store, seed: int) -> None:
    equal_over_rounds(sqlite_store, seed)


def test_incremental_equals_full_rebuild_comparing_candidates_a_few_records_at_a_time(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """This run's candidate pairs are compared with the last run's a range of records at a time (131,072 of
    them): ranges of 37 records, so that records come and go at the ranges' edges."""
    monkeypatch.setattr(hub.golden.matching, "CANDIDATE_RECORDS", 37)
    equal_over_rounds(sqlite_store, 4)


def equal_over_rounds(store: Store, seed: int) -> None:
    records = list(synthetic_records(600, seed=seed))
    stage_records(store, records)
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    for rnd in range(3):
        upserts, deletes = mutate(records, 0.04, seed=seed * 10 + rnd)
        stage_records(store, upserts)
        unstage_records(store, deletes)
        ms = match_and_cluster(store, EXACT)
        assert ms.mode == "incremental" and 0 < ms.records_rematched < len(records) / 2
        gs = build_golden(store)
        assert gs.mode == "incremental"
        inc_members, inc_pairs, inc_blocks = golden_membership(store), pairs(store), blocks(store)
        inc_matched = matched(store)
        match_and_cluster(store, EXACT, mode="full")
        gs_full = build_golden(store, mode="full")
        assert pairs(store) == inc_pairs
        assert matched(store) == inc_matched  # every digest up to date, also of records that only moved
        assert blocks(store) == inc_blocks
        assert golden_membership(store) == inc_members  # same clusters AND same golden ids
        assert gs_full.golden_written == 0 and gs_full.minted == 0 and gs_full.records_moved == 0
        # keep the model of "the source" in step for the next round
        by_key = {f"{r['source']}:{r['source_id']}": r for r in records}
        for r in upserts:
            by_key[f"{r['source']}:{r['source_id']}"] = r
        for k in deletes:
            by_key.pop(k, None)
        records = list(by_key.values())


def test_block_cap_crossing_is_handled_incrementally(sqlite_store: Store) -> None:
    """A shared value that grows past block_cap stops linking - also for records that did not change."""
    store = sqlite_store
    records = list(synthetic_records(200, seed=5))
    stage_records(store, records)
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    # six more people start using one household's landline: the block now exceeds the cap of 6
    landline = next(p["e164"] for r in records for p in r["phones"] if p["kind"] == "fixed")
    extra = []
    for r in records[100:106]:
        if r["source"] == "erp":
            extra.append({**r, "phones": r["phones"] + [{"e164": landline, "kind": "fixed", "extension": None,
                                                         "raw": None}]})
    stage_records(store, extra)
    match_and_cluster(store, EXACT)
    build_golden(store)
    inc, inc_pairs = golden_membership(store), pairs(store)
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store, mode="full")
    assert golden_membership(store) == inc and pairs(store) == inc_pairs


def test_incremental_with_nothing_to_do_is_cheap(sqlite_store: Store) -> None:
    store = sqlite_store
    stage_records(store, synthetic_records(300))
    match_and_cluster(store, EXACT)  # first run is a full one
    build_golden(store)
    ms = match_and_cluster(store, EXACT)
    gs = build_golden(store)
    assert (ms.mode, ms.records_rematched, ms.records_new_or_changed) == ("incremental", 0, 0)
    assert gs.clusters_affected == 0 and gs.golden_written == 0
    with store.engine.connect() as conn:
        n_staged = conn.execute(sa.select(sa.func.count()).select_from(staged_record)).scalar_one()
        n_matched = conn.execute(sa.select(sa.func.count()).select_from(match_record)).scalar_one()
    assert n_staged == n_matched


def test_too_large_change_falls_back_to_full(sqlite_store: Store) -> None:
    store = sqlite_store
    records = list(synthetic_records(200))
    stage_records(store, records)
    match_and_cluster(store, EXACT)
    upserts, deletes = mutate(records, 0.6)
    stage_records(store, upserts)
    unstage_records(store, deletes)
    ms = match_and_cluster(store, {**EXACT, "full_rebuild_share": 0.2})
    assert ms.mode == "full" and "too large" in (ms.fallback_reason or "")


def test_an_incremental_run_reads_the_pairs_inside_its_records_through_the_primary_key(sqlite_store: Store) -> None:
    """Re-clustering a few records reads their stored match pairs by left key: through the primary key, never
    through (band, scored_at) — that read every match pair once per 1,000 keys (3 s at 300k people)."""
    from query_plans import plan_of, statements_of

    store = sqlite_store
    records = list(synthetic_records(600, seed=4))
    stage_records(store, records)
    match_and_cluster(store, EXACT, mode="full")
    upserts, _ = mutate(records, 0.04, seed=41)
    stage_records(store, upserts)
    seen = statements_of(store, lambda: match_and_cluster(store, EXACT))
    reads = [(s, p) for s, p in seen if "FROM match_pair" in s and "left_key IN" in s]
    assert reads, "the run re-clustered no subset: nothing read by key"
    for statement, params in reads:
        plan = " ".join(plan_of(store, statement, params))
        assert "ix_match_pair_band" not in plan and "sqlite_autoindex_match_pair_1 (left_key=?)" in plan, plan
