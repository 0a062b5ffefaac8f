"""The incremental match run scores only the candidate pairs that were not candidates in the last run (or have a
changed end) and drops the pairs that left the set: pairs between two unchanged records that appear or go are
handled exactly as a full rebuild handles them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import sqlalchemy as sa

import hub.dedupe
from hub.golden import build_golden, golden_membership, match_and_cluster
from hub.golden.matching import _load_candidates
from hub.golden.synthetic import stage_records, synthetic_records, unstage_records
from hub.golden.tables import match_record
from hub.store import Store, match_candidates, match_pair, staged_record

EXACT = {"engine": "fixed", "full_rebuild_share": 1.0}


def pairs(store: Store) -> dict[tuple[str, str], tuple]:
    with store.engine.connect() as conn:
        return {(r.left_key, r.right_key): (r.band, round(r.match_weight, 6))
                for r in conn.execute(sa.select(match_pair))}


def candidates(store: Store) -> set[tuple[str, str, int]]:
    """The stored candidate set as (left key, right key, band)."""
    with store.engine.connect() as conn:
        keys = sorted(conn.execute(sa.select(match_record.c.record_key)).scalars())
        got = _load_candidates(conn, keys)
    assert got is not None
    return {(keys[a], keys[b], int(c)) for a, b, c in zip(got.left, got.right, got.band, strict=True)}


def staged_keys(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(staged_record.c.record_key)
                                   .where(staged_record.c.entity == "customers")).scalars())


@contextmanager
def without_candidate(monkeypatch: pytest.MonkeyPatch, store: Store, pair: tuple[str, str]) -> Iterator[None]:
    """The engine's blocking, minus one pair (as if a window or a capped block no longer held it)."""
    real = hub.dedupe.block

    def block(records, settings=None, **kw):  # type: ignore[no-untyped-def]
        cand = real(records, settings, **kw)
        keys = staged_keys(store)
        a, b = keys.index(pair[0]), keys.index(pair[1])
        keep = ~((cand.left == a) & (cand.right == b))
        return type(cand)(left=cand.left[keep], right=cand.right[keep], stats=cand.stats)

    with monkeypatch.context() as m:
        m.setattr(hub.dedupe, "block", block)
        yield


def a_match_pair(store: Store) -> tuple[str, str]:
    got = sorted(k for k, (band, _) in pairs(store).items() if band == "match")
    assert got
    return got[len(got) // 2]


def assert_equals_full_rebuild(store: Store) -> None:
    inc_pairs, inc_members, inc_cand = pairs(store), golden_membership(store), candidates(store)
    match_and_cluster(store, EXACT, mode="full")
    gs = build_golden(store, mode="full")
    assert pairs(store) == inc_pairs
    assert candidates(store) == inc_cand
    assert golden_membership(store) == inc_members
    assert gs.golden_written == 0 and gs.minted == 0 and gs.records_moved == 0


def test_a_match_pair_that_leaves_the_candidate_set_between_unchanged_records_is_dropped(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite and PostgreSQL (the packed set is a blob / bytea)."""
    stage_records(store, synthetic_records(300, seed=4))
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    pair = a_match_pair(store)
    with without_candidate(monkeypatch, store, pair):
        ms = match_and_cluster(store, EXACT)
        build_golden(store)
        assert ms.mode == "incremental" and ms.records_new_or_changed == 0 and ms.pairs_scored == 0
        assert pair not in pairs(store)
        assert not any((a, b) == pair for a, b, _ in candidates(store))
        assert ms.records_rematched >= 2  # the ends of the edge that went are re-clustered
        assert_equals_full_rebuild(store)


def test_a_new_candidate_pair_between_unchanged_records_is_scored(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = sqlite_store
    stage_records(store, synthetic_records(300, seed=6))
    match_and_cluster(store, EXACT, mode="full")
    pair = a_match_pair(store)
    with without_candidate(monkeypatch, store, pair):
        match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    assert pair not in pairs(store)
    ms = match_and_cluster(store, EXACT)  # blocking finds the pair again; neither end changed
    build_golden(store)
    assert ms.mode == "incremental" and ms.records_new_or_changed == 0 and ms.pairs_scored == 1
    assert pairs(store)[pair][0] == "match"
    assert_equals_full_rebuild(store)


def test_candidates_after_a_delete_and_a_cap_crossing_equal_a_full_rebuild(sqlite_store: Store) -> None:
    """A deleted record's pairs go; a shared value past its block cap drops pairs between unchanged records,
    and back under the cap brings them back (scored although neither end changed)."""
    store = sqlite_store
    records = list(synthetic_records(200, seed=5))
    stage_records(store, records)
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    landline = next(p["e164"] for r in records for p in r["phones"] if p["kind"] == "fixed")
    holders = sum(1 for r in records if any(p["e164"] == landline for p in r["phones"]))
    extra = [{**r, "phones": r["phones"] + [{"e164": landline, "kind": "fixed", "extension": None, "raw": None}]}
             for r in records[100:140] if r["source"] == "erp"][:7 - holders]  # one over the cap of 6
    stage_records(store, extra)
    assert match_and_cluster(store, EXACT).mode == "incremental"
    build_golden(store)
    assert_equals_full_rebuild(store)
    before = candidates(store)
    unstage_records(store, [f"{extra[0]['source']}:{extra[0]['source_id']}"])
    ms = match_and_cluster(store, EXACT)
    build_golden(store)
    assert ms.mode == "incremental" and ms.records_new_or_changed == 0
    after = candidates(store)
    new_between_unchanged = {(a, b) for a, b, _ in after} - {(a, b) for a, b, _ in before}
    assert new_between_unchanged and ms.pairs_scored == len(new_between_unchanged)
    assert_equals_full_rebuild(store)


def test_no_stored_candidate_set_runs_as_full(sqlite_store: Store) -> None:
    """A store matched before the candidate set was kept (or whose match_record rows changed outside a match run,
    as an erasure does) has no valid set: the run is a full one, and the next is incremental again."""
    store = sqlite_store
    stage_records(store, synthetic_records(150, seed=2))
    match_and_cluster(store, EXACT)
    with store.begin() as conn:
        conn.execute(match_candidates.delete())
    ms = match_and_cluster(store, EXACT)
    assert ms.mode == "full" and "candidate pairs" in (ms.fallback_reason or "")
    with store.begin() as conn:  # a record's match state erased: the stored indices point elsewhere now
        conn.execute(match_record.delete().where(match_record.c.record_key == staged_keys(store)[0]))
    ms = match_and_cluster(store, EXACT)
    assert ms.mode == "full" and "candidate pairs" in (ms.fallback_reason or "")
    ms = match_and_cluster(store, EXACT)
    assert ms.mode == "incremental" and ms.pairs_scored == 0


def test_the_stored_set_round_trips(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any pair order in, sorted out; split into several rows; refused against other keys."""
    import hub.golden.matching as matching
    from hub.golden.matching import _store_candidates

    monkeypatch.setattr(matching, "CAND_PART_BYTES", 97)

    keys = [f"k{i:03d}" for i in range(50)]
    rng = np.random.default_rng(3)
    code = np.unique(rng.integers(0, 50 * 50, 400))
    left, right = (code // 50).astype(np.int32), (code % 50).astype(np.int32)
    left, right = left[left < right], right[left < right]
    band = rng.integers(0, 3, len(left)).astype(np.int8)
    with store_conn(store) as conn:
        _store_candidates(conn, 1, keys, left[::-1], right[::-1], band[::-1])
        assert conn.execute(sa.select(sa.func.count()).select_from(match_candidates)).scalar_one() > 3
        got = _load_candidates(conn, keys)
        assert got is not None
        assert (got.left == left).all() and (got.right == right).all() and (got.band == band).all()
        assert _load_candidates(conn, keys[1:]) is None


@contextmanager
def store_conn(store: Store) -> Iterator[sa.Connection]:
    with store.begin() as conn:
        yield conn


def test_an_erasure_keeps_the_next_match_run_incremental_and_equal_to_a_full_rebuild(tmp_path) -> None:
    """Erasing a person (the erase_person job, as `hub erase` runs it) takes their records out of the stored
    candidate set: the next run stays incremental, re-clusters the erased records' partners and gives what a
    full rebuild gives. Without it every erasure made the next match run a full one."""
    import sqlite3

    import dagster as dg

    from hub.assets import build_erasure_job
    from hub.config import load_config
    from hub.resources import HubStoreResource
    from hub.store import xref

    path = tmp_path / "hub.db"
    url = f"sqlite:///{path}"
    store = Store(url)
    stage_records(store, synthetic_records(300, seed=9))
    match_and_cluster(store, EXACT, mode="full")
    build_golden(store)
    with store.engine.connect() as conn:  # a person with several records, some of them candidates of others
        gid = conn.execute(sa.select(xref.c.golden_id).where(xref.c.valid_to.is_(None)).group_by(xref.c.golden_id)
                           .order_by(sa.func.count().desc(), xref.c.golden_id).limit(1)).scalar_one()
    before = candidates(store)
    job = build_erasure_job(load_config())
    with dg.instance_for_test() as instance:
        done = job.execute_in_process(
            run_config={"ops": {"erase_person_op": {"config": {"golden_id": gid, "dry_run": False}}}},
            resources={"store": HubStoreResource(database_url=url)}, instance=instance)
    assert done.success
    after = candidates(store)  # refitted onto the remaining keys
    remaining = set(staged_keys(store))
    assert after == {p for p in before if p[0] in remaining and p[1] in remaining} and len(after) < len(before)
    store.dispose()
    with sqlite3.connect(path) as src, sqlite3.connect(tmp_path / "copy.db") as dst:
        src.backup(dst)  # the erasure's engine may still hold the newest pages in the WAL: not a file copy
    store, copy = Store(url), Store(f"sqlite:///{tmp_path / 'copy.db'}")

    ms = match_and_cluster(store, EXACT)
    assert ms.mode == "incremental", ms.fallback_reason
    assert ms.records_new_or_changed > 0  # the erased records' partners, marked changed
    build_golden(store)
    match_and_cluster(copy, EXACT, mode="full")
    build_golden(copy, mode="full")
    assert set(golden_membership(store).values()) == set(golden_membership(copy).values())
    assert pairs(store) == pairs(copy) and candidates(store) == candidates(copy)
    store.dispose()
    copy.dispose()
