"""A full match run derives the engine's input from staged JSON in forked workers and writes the pairs'
explanations as JSON text: the stored state is the one a single process gives, on SQLite and PostgreSQL, for odd
staged values too (a value holding the cache's unit separator, a number where a string is expected)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.golden import match_and_cluster
from hub.golden import matching as golden_matching
from hub.golden.synthetic import stage_records, synthetic_records
from hub.golden.tables import match_record
from hub.store import Store, json_text, match_pair, payload_hash

pytest.importorskip("hub.dedupe")


def _odd(records: list[dict], kind: str) -> list[dict]:
    """Copies of a few records with the separator in a street, or a number as given name and company."""
    out = []
    for k, rec in enumerate(records[:6]):
        odd = json.loads(json.dumps(rec))
        odd["source_id"] = f"odd{k}"
        if kind == "number":
            odd["given_name"] = 1000 + k
            odd["company"] = 7
        else:
            odd["addresses"] = [dict(a, street=(a.get("street") or "x") + "\x1f9") for a in odd.get("addresses") or []
                                ] or [{"street": "x\x1f9", "city": "Berlin", "country": "DE"}]
        out.append(odd)
    return out


def _state(store: Store) -> tuple[list, list]:
    with store.engine.connect() as conn:
        pairs = conn.execute(sa.select(
            match_pair.c.left_key, match_pair.c.right_key, match_pair.c.match_weight, match_pair.c.match_probability,
            match_pair.c.band, sa.cast(match_pair.c.explanation, sa.Text), match_pair.c.explanation)
            .order_by(match_pair.c.left_key, match_pair.c.right_key)).all()
        records = conn.execute(sa.select(
            match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
            match_record.c.input_hash, match_record.c.engine_row).order_by(match_record.c.record_key)).all()
    return [tuple(p) for p in pairs], [tuple(r) for r in records]


@pytest.mark.parametrize("kind", ["separator", "number"])
def test_a_full_run_derived_in_workers_stores_what_one_process_stores(any_store: Store, monkeypatch, kind: str
                                                                     ) -> None:
    """The workers scan ranges of record keys cut in Python's order on their own connections: every record is
    derived once whatever the database's collation (MariaDB's ignores case)."""
    store = any_store
    records = list(synthetic_records(400, seed=11))
    stage_records(store, records + _odd(records, kind))
    match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
    one = _state(store)
    monkeypatch.setattr(golden_matching, "DERIVE_PARALLEL_MIN", 50)  # three workers' shares of ~560 records
    match_and_cluster(store, {"engine": "dedupe", "workers": 3}, mode="full")
    forked = _state(store)
    assert forked == one
    pairs, rows = one
    assert pairs and len([r for r in rows if r[0].split(":")[1].startswith("odd")]) == 6
    if kind == "separator":  # its engine row is cached as JSON
        assert any(r[4].startswith("[") and "\\u001f9" in r[4] for r in rows)
    # the explanation text is the one the store writes for its value
    assert all(text == json_text(value) for *_, text, value in pairs)
    assert all(abs(value["prior"]["weight"] + sum(v["weight"] for k, v in value.items() if k != "prior") - w) < 0.02
               for _, _, w, _, _, _, value in pairs)


class _Reads(dict):
    """A staged record that notes the fields read from it."""

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.read: set[str] = set()

    def get(self, key, default=None):  # noqa: ANN001, ANN201
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):  # noqa: ANN001, ANN204
        self.read.add(key)
        return super().__getitem__(key)


def test_engine_row_reads_only_the_fields_a_full_run_reads_of_staged_json() -> None:
    # a full run reads only ENGINE_FIELDS of each staged record (SQLite): a field engine_row reads beyond them
    # would be missing there
    for rec in list(synthetic_records(60, seed=5)):
        seen = _Reads(rec)
        full = golden_matching.engine_row("k", seen)
        assert seen.read <= set(golden_matching.ENGINE_FIELDS), seen.read - set(golden_matching.ENGINE_FIELDS)
        assert golden_matching.engine_row("k", {f: rec.get(f) for f in golden_matching.ENGINE_FIELDS}) == full


def _keep_engine_rows_alone(store: Store) -> None:
    """Cut the texts staging kept down to the phone count and the engine row, as staging kept them before it
    kept the engine's standardised values too."""
    width = 1 + len(golden_matching.ENGINE_COLUMNS) - 1
    sr = golden_matching.staged_record.c
    with store.begin() as conn:
        texts = conn.execute(sa.select(sr.record_key, sr.engine_row).where(sr.engine_row.is_not(None))).all()
        assert texts and all(len(golden_matching._unpack(t)) > width for _, t in texts)
        conn.execute(golden_matching.staged_record.update().where(sr.record_key == sa.bindparam("k"))
                     .values(engine_row=sa.bindparam("t")),
                     [{"k": k, "t": golden_matching._pack(golden_matching._unpack(t)[:width])} for k, t in texts])


@pytest.mark.parametrize("kept", ["standardised", "rows", None], ids=["staging-kept-standardised",
                                                                       "staging-kept-rows", "from-json"])
def test_derived_rows_are_those_of_the_whole_staged_json(store: Store, kept: str | None) -> None:
    # odd records: a NaN (SQLite 3.42+ would read it as null: the whole record is read), a number where a string
    # is expected, an escaped separator, a missing field; each derived row equals engine_row of the whole JSON,
    # read off the row staging kept with the record or derived from its JSON, and so do staging's verdicts on
    # the rows' phone numbers (validated ones first, then the ones it could not validate); where staging kept
    # the engine's standardised values, the kept text is the engine row and those values
    records = list(synthetic_records(120, seed=3))
    for k, rec in enumerate(records[:40]):  # unverified numbers, some also a validated number of the record
        rec["unverified_phones"] = ["(021) 5555 0123"] + ([rec["phones"][0]["e164"]] if rec["phones"] and k % 2
                                                          else [])
    odd = _odd(records, "number") + _odd(records, "separator")
    for k, rec in enumerate(odd[:3]):
        if k == 0 and store.dialect == "sqlite":  # the other databases refuse NaN in JSON
            rec["given_name"] = float("nan")
        rec.pop("gender", None)
    for k, rec in enumerate(odd):
        rec["source_id"] = f"odd{k}"
    stage_records(store, records + odd, engine_rows=kept is not None)
    if kept == "rows":
        _keep_engine_rows_alone(store)
    with store.engine.connect() as conn:
        sr = golden_matching.staged_record.c
        got = conn.execute(sa.select(sr.record_key, sa.cast(sr.record, sa.Text)).where(sr.entity == "customers")).all()
        held = conn.execute(sa.select(sa.func.count()).where(sr.engine_row.is_not(None))).scalar_one()
        keys = sorted(k for k, _ in got)
        text = dict(got)
        derived, phones, whole = golden_matching._derive_rows(conn, keys, len(keys), workers=1)
    # the six odd records with a number have no kept row (a value that is no string): derived from their JSON
    assert held == (len(keys) - 6 if kept else 0)
    want, _ = golden_matching._engine_rows([(k, text[k]) for k in keys])
    assert len(derived) == len(whole) == len(keys) > 120
    width = len(golden_matching.ENGINE_COLUMNS) - 1
    assert sum(w is not None for w in whole) == (held if kept == "standardised" else 0)
    for row, kept_text, wanted in zip(derived, whole, want, strict=True):
        if kept_text is None:
            assert row == wanted
        else:
            assert row is None and golden_matching._unpack(kept_text)[:width] == golden_matching._unpack(wanted)
    # the verdicts on the numbers of the rows the engine standardises
    rows = [r for r, w in zip(want, whole, strict=True) if w is None]
    _, verdicts = golden_matching._engine_rows([(k, text[k]) for k, w in zip(keys, whole, strict=True) if w is None])
    in_rows = {p for row in rows for j in golden_matching._PHONE_SLOTS
               if (p := golden_matching._unpack(row)[j] if isinstance(row, str) else row[j])}
    # a number judged valid anywhere is keyed as valid (_staged_phone_keys asks that first)
    def judged(v: golden_matching._PhoneVerdicts) -> dict[str, str]:
        return {p: "valid" if p in v.valid else "unverified" if p in v.unverified else "" for p in in_rows}

    assert judged(phones) == judged(verdicts)
    assert {"valid", "unverified"} <= set(judged(phones).values()) or kept == "standardised"


def test_a_kept_row_of_a_record_changed_behind_stagings_back_is_not_used(store: Store) -> None:
    """A kept engine row is valid for the record hash it was made from: a record rewritten without it (with its
    hash) is derived from its JSON."""
    records = list(synthetic_records(30, seed=4))
    stage_records(store, records)
    sr = golden_matching.staged_record.c
    key = f"{records[0]['source']}:{records[0]['source_id']}"
    changed = dict(records[0], full_name="Zhang Xiaoming", given_name="Xiaoming", family_name="Zhang")
    with store.begin() as conn:
        conn.execute(golden_matching.staged_record.update().where(sr.record_key == key)
                     .values(record=changed, record_hash=payload_hash(changed)))
    with store.engine.connect() as conn:
        keys = sorted(conn.execute(sa.select(sr.record_key)).scalars())
        derived, _, whole = golden_matching._derive_rows(conn, keys, len(keys), workers=1)
    i = keys.index(key)
    assert whole[i] is None and sum(w is not None for w in whole) == len(keys) - 1
    row = golden_matching._unpack(derived[i])
    assert row[1:4] == ["Zhang Xiaoming", "Xiaoming", "Zhang"]


def test_a_population_prepared_in_a_child_of_its_own_stores_what_one_prepared_here_stores(any_store: Store,
                                                                                         monkeypatch) -> None:
    # from POPULATION_APART_MIN staged customers the population is prepared in a forked child on a connection
    # of its own and sent back through a file (Store.run_apart); below it, in the stage's process
    store = any_store
    records = list(synthetic_records(400, seed=12))
    stage_records(store, records + _odd(records, "separator"))
    states = []
    for apart in (False, True):
        monkeypatch.setattr(golden_matching, "POPULATION_APART_MIN", 0 if apart else 10**9)
        match_and_cluster(store, {"engine": "dedupe", "workers": 2}, mode="full")
        states.append(_state(store))
        stage_records(store, [dict(r, emails=["moved@example.org"]) for r in records[:5]])
        match_and_cluster(store, {"engine": "dedupe", "workers": 2}, mode="incremental")  # from the cache
        states.append(_state(store))
        stage_records(store, records[:5])  # back as they were
    assert states[2] == states[0] and states[3] == states[1] and states[1] != states[0]


@pytest.mark.parametrize("kept", [True, False], ids=["standardised-by-staging", "standardised-by-the-match"])
def test_staged_phones_read_off_give_the_keys_standardising_them_gives(store: Store, monkeypatch, tmp_path,
                                                                       kept: bool) -> None:
    # the engine reads the keys of the E.164 numbers staging gave off them, and keys the numbers it could not
    # validate without asking the standardiser again (standardise_records / prepare_records(staged_phones=,
    # unverified_phones=)), where staging keeps the standardised rows and where a full run standardises: the
    # stored state is the one standardising every phone again gives, for dummies and odd numbers too
    from hub.dedupe import prepare as engine_prepare

    records = list(synthetic_records(300, seed=8))
    odd = [json.loads(json.dumps(r)) for r in records[:6]]
    # a dummy, valid numbers, and numbers no standardiser gives (invalid, one with the trunk 0)
    numbers = ["+8613800000000", "+8613812345678", "+12025550123", "+8699912345", "+4930123456", "+86012345678"]
    # numbers staging could not validate, as written: a placeholder text, a dummy, too short, a NANP number of no
    # area, a Chinese number of no range (with its country code, without the plus), a valid one with an extension
    unverified = [["n/a", "(700) 656-8893"], ["+86 138 1234 5678", "000-0000000"], ["12345"],
                  ["8615426964707", "+1 957 555 9836"], ["021-1234"], ["138 0013 8000 ext 12"]]
    for k, (rec, e164) in enumerate(zip(odd, numbers, strict=True)):
        rec["source_id"] = f"phone{k}"
        rec["phones"] = [{"e164": e164, "kind": "mobile", "extension": None, "raw": None}]
        rec["unverified_phones"] = unverified[k]
    # the same numbers held by records of their own (no staged number beside them): matched on them
    for k, texts in enumerate(unverified):
        twin = json.loads(json.dumps(records[10 + k]))
        twin.update(source_id=f"twin{k}", phones=[], unverified_phones=texts)
        odd.append(twin)
    seen = tmp_path / "read_off.txt"  # the population is prepared in a forked child: it writes what it read off
    real = engine_prepare._staged_phone_keys

    def counted(values: list[str], staged: set[str], unverified: set[str]) -> list[str | None]:
        got = real(values, staged, unverified)
        with seen.open("a") as f:
            f.writelines(f"{v}\n" for v, g in zip(values, got, strict=True) if g is not None)
        return got

    monkeypatch.setattr(engine_prepare, "_staged_phone_keys", counted)
    stage_records(store, records + odd, engine_rows=kept)
    match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
    read_off = _state(store)
    calls = seen.read_text().split()
    # read off, not standardised (the unverified ones as the engine's phone column holds them: _phone_pre)
    assert {"+8613812345678", "+12025550123", "+4930123456", "7006568893", "8615426964707", "+19575559836",
            "n/a"} <= set(calls)
    monkeypatch.setattr(engine_prepare, "_staged_phone_keys", lambda values, staged, unverified: [None] * len(values))
    stage_records(store, records + odd, engine_rows=kept)  # staged again: standardised without reading off
    match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
    assert _state(store) == read_off


def test_cache_rows_held_compressed_in_slices_are_stored_as_derived(tmp_path, monkeypatch) -> None:
    # between preparing and writing, the population's cache rows are held zlib-compressed in slices of
    # PACK_CHUNK records: with slices of 7, rows cut at every slice boundary (Chinese names, a value holding the
    # unit separator, a row cached as JSON) are stored exactly as with one slice
    records = list(synthetic_records(300, seed=5))
    han = json.loads(json.dumps(records[0]))
    han.update(source_id="han", full_name="陳偉", given_name="偉", family_name="陳")
    states = []
    for chunk in (golden_matching.PACK_CHUNK, 7):
        monkeypatch.setattr(golden_matching, "PACK_CHUNK", chunk)
        store = Store(f"sqlite:///{tmp_path}/slices{chunk}.db")
        stage_records(store, records + _odd(records, "separator") + [han])
        match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
        states.append(_state(store))
        store.dispose()
    assert states[1] == states[0]
    rows = {r[0].split(":")[1]: r[4] for r in states[0][1]}
    assert "陳偉" in rows["han"] and sum(1 for t in rows.values() if t.startswith("[")) >= 1


def test_rows_staging_keeps_match_as_the_staged_json_does(tmp_path: Path, monkeypatch) -> None:
    """`hub import` keeps each customer's engine row and the engine's standardised values of it with its record;
    a full match of that store (which standardises nothing) stores exactly what a match of the same store with
    the engine rows alone (as a store staged before the values were kept) and without them (rows derived from
    the JSON, as a store staged before 0032) does."""
    from hub.dedupe import prepare as engine_prepare
    from hub.dedupe.synthetic import customers

    path = tmp_path / "customers.csv"
    frame = customers(400, seed=5).drop(columns=["entity_id"])
    frame.loc[::17, "phone"] = "not a phone"  # numbers staging cannot validate are handed over as written
    frame.to_csv(path, index=False)
    db = tmp_path / "hub.db"
    proc = subprocess.run([str(Path(sys.executable).parent / "hub"), "import", str(path), "--source", "crm",
                           "--mapping", "customer_file"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{db}"})
    assert proc.returncode == 0, proc.stderr
    shutil.copy(db, tmp_path / "rows.db")
    shutil.copy(db, tmp_path / "without.db")
    states = []
    for name, keep in (("hub.db", "standardised"), ("rows.db", "rows"), ("without.db", None)):
        store = Store(f"sqlite:///{tmp_path / name}")
        try:
            sr = golden_matching.staged_record.c
            if keep == "rows":
                _keep_engine_rows_alone(store)
            with store.begin() as conn:
                if keep is None:
                    conn.execute(golden_matching.staged_record.update().values(engine_input=None, engine_row=None))
                held = conn.execute(sa.select(sa.func.count()).where(sr.engine_row.is_not(None))).scalar_one()
            assert held == (len(frame) if keep else 0)
            with monkeypatch.context() as m:
                if keep == "standardised":  # nothing is standardised again: no name parsed, no date read
                    def refused() -> Any:
                        def standardise(*values: str) -> str:
                            raise AssertionError(f"standardised again: {values}")

                        return standardise

                    m.setattr(engine_prepare, "_person_name_fn", refused)
                    m.setattr(engine_prepare, "_date_fn", refused)
                match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
            states.append(_state(store))
        finally:
            store.dispose()
    assert states[0] == states[1] == states[2] and states[0][0]


def test_cache_rows_joined_by_arrow_are_the_rows_one_at_a_time() -> None:
    """A full run joins each derived record's engine row and standardised values with Arrow: the texts
    ``_pack_more`` gives a row at a time, or nothing (then a row at a time) where Arrow would differ."""
    import pandas as pd

    rows = [golden_matching._pack(["crm", "陈伟", "", "Wei 𠮷"]), golden_matching._pack(["shop", "", "x", ""])]
    values = pd.DataFrame({"a": ["chen", ""], "b": ["wei", "ana müller"]})
    joined = golden_matching._packed_more(rows, values)
    assert joined == [golden_matching._pack_more(r, v) for r, v in zip(rows, values.values.tolist(), strict=True)]
    assert golden_matching._unpack(joined[0]) == ["crm", "陈伟", "", "Wei 𠮷", "chen", "wei"]
    for odd_rows, odd_values in (
            (rows, pd.DataFrame({"a": ["chen", "x\x1fy"], "b": ["", ""]})),  # a value holds the separator
            (rows, pd.DataFrame({"a": ["chen", None], "b": ["", ""]})),  # a value that is no string
            (rows, pd.DataFrame({"a": ["chen", "\ud800"], "b": ["", ""]}, dtype=object)),  # a lone surrogate
            ([rows[0], golden_matching._pack(["a\x1fb", "c"])], values)):  # a row stored as JSON
        assert golden_matching._packed_more(odd_rows, odd_values) is None


def test_a_long_value_is_kept_and_cached_whole_on_every_backend(any_store: Store) -> None:
    """An engine row longer than MariaDB's TEXT (64 KB: a pasted document in a name field) is kept by staging
    and cached by the match stage whole, as on the other databases."""
    records = list(synthetic_records(20, seed=6))
    long_name = "Chen " + "Wei" * 30_000
    records[0] = dict(records[0], full_name=long_name)
    stage_records(any_store, records)
    match_and_cluster(any_store, {"engine": "dedupe", "workers": 1}, mode="full")
    key = f"{records[0]['source']}:{records[0]['source_id']}"
    with any_store.engine.connect() as conn:
        kept = conn.execute(sa.select(golden_matching.staged_record.c.engine_row)
                            .where(golden_matching.staged_record.c.record_key == key)).scalar_one()
        cached = conn.execute(sa.select(match_record.c.engine_row).where(match_record.c.record_key == key)
                              ).scalar_one()
    assert long_name in golden_matching._unpack(kept) and long_name in golden_matching._unpack(cached)
