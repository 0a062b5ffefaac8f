"""A match run with nothing changed since the last one (same staged customers, model, steward decisions and
settings) ends without matching, and the stored state is the one matching again would leave; any change runs."""

from __future__ import annotations

import sqlalchemy as sa

from hub.golden import match_and_cluster
from hub.golden.review import decide
from hub.golden.synthetic import stage_records, synthetic_records
from hub.golden.tables import match_model, match_record, match_run
from hub.store import Store, match_candidates, match_pair

CFG = {"engine": "dedupe", "workers": 1}


def _state(store: Store) -> list:
    with store.engine.connect() as conn:
        return [
            conn.execute(sa.select(match_pair.c.left_key, match_pair.c.right_key, match_pair.c.match_weight,
                                   match_pair.c.band, sa.cast(match_pair.c.explanation, sa.Text))
                         .order_by(match_pair.c.left_key, match_pair.c.right_key)).all(),
            conn.execute(sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
                                   match_record.c.changed_run, match_record.c.engine_row)
                         .order_by(match_record.c.record_key)).all(),
            conn.execute(sa.select(match_candidates.c.part, match_candidates.c.data)).all(),
            conn.execute(sa.select(match_model.c.id)).all(),
        ]


def _runs(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(match_run).where(match_run.c.kind == "match")
                            ).scalar_one()


def test_a_run_with_nothing_changed_ends_early_and_keeps_the_state(store: Store) -> None:
    records = list(synthetic_records(120, seed=5))
    stage_records(store, records)
    first = match_and_cluster(store, CFG)
    assert first.mode == "full" and not first.unchanged
    before = _state(store)

    again = match_and_cluster(store, CFG)
    assert again.unchanged and again.mode == "incremental"
    assert "prepare" not in again.timings  # the population was not read
    assert again.records_total == first.records_total and again.model == first.model
    assert _state(store) == before
    assert _runs(store) == 2  # recorded as a run: the next one compares with it
    assert match_and_cluster(store, CFG).unchanged  # and again

    # the match state changed outside a match run (a record's row deleted): it runs
    with store.begin() as conn:
        conn.execute(match_record.delete().where(match_record.c.record_key == before[1][0][0]))
    assert not match_and_cluster(store, CFG).unchanged
    assert match_and_cluster(store, CFG).unchanged

    # a full rebuild is asked for: it runs
    assert not match_and_cluster(store, CFG, mode="full").unchanged

    # a steward decision since: it runs (and after it, nothing changed again)
    pair = before[0][0]
    decide(store, pair[0], pair[1], "no-match", by="test")
    decided = match_and_cluster(store, CFG)
    assert not decided.unchanged and decided.mode == "incremental"
    assert match_and_cluster(store, CFG).unchanged

    # other settings: it runs
    assert not match_and_cluster(store, {**CFG, "full_rebuild_share": 0.9}).unchanged

    # a record staged again (changed content): it runs and re-matches it
    changed = dict(records[0], given_name="Zebediah")
    stage_records(store, [changed])
    after = match_and_cluster(store, {**CFG, "full_rebuild_share": 0.9})
    assert not after.unchanged and after.records_new_or_changed == 1


def test_an_upgraded_standardising_or_comparing_library_matches_again(store: Store, monkeypatch) -> None:
    """A new phonenumbers / pypinyin / rapidfuzz … can standardise or compare differently: the run is not skipped
    and the cached engine rows are derived again (the cache key is the engine signature)."""
    import hub.golden.matching as matching

    stage_records(store, list(synthetic_records(80, seed=7)))
    match_and_cluster(store, CFG)
    assert match_and_cluster(store, CFG).unchanged
    real = matching._version
    monkeypatch.setattr(matching, "_version", lambda p: "999.0" if p == "phonenumbers" else real(p))
    matching._engine_signature.cache_clear()
    try:
        upgraded = match_and_cluster(store, CFG)
        assert not upgraded.unchanged
        assert upgraded.records_new_or_changed == 0  # the same records, derived again under the new signature
        assert match_and_cluster(store, CFG).unchanged
    finally:
        monkeypatch.undo()
        matching._engine_signature.cache_clear()


def test_the_first_run_from_the_cache_sees_only_what_changed_and_matches_as_a_full_run(store: Store) -> None:
    """The engine rows a full run derived from staging are read back from the cache by the next run: split
    back into the same values (a record's source, names, keys), so one changed record is the only one new or
    changed, and the pairs and clusters are those of a full rebuild of the same records."""
    records = list(synthetic_records(150, seed=11))
    stage_records(store, records)
    first = match_and_cluster(store, CFG, mode="full")
    assert first.mode == "full"
    with store.engine.connect() as conn:
        params = conn.execute(sa.select(match_model.c.params)).scalar_one()
    sources = {r["source"] for r in records}
    # the per-source-pair priors are keyed by the records' own source names (read back from the packed rows)
    assert {tuple(k.split("|")) for k in params["group_prior"]} <= {(a, b) for a in sources for b in sources}

    stage_records(store, [dict(records[3], given_name="Zebediah")])
    after = match_and_cluster(store, {**CFG, "full_rebuild_share": 0.9})
    assert after.mode == "incremental" and after.records_new_or_changed == 1
    incremental = _state(store)[:2]

    rebuilt = match_and_cluster(store, CFG, mode="full")
    assert rebuilt.mode == "full"
    state = _state(store)
    assert state[0] == incremental[0]  # the same pairs, weights, bands and explanations
    assert [r[2] for r in state[1]] == [r[2] for r in incremental[1]]  # the same clusters
