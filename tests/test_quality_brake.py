"""The merge/split brake before any push: it stops a first sync that folds distinct parties together without
evidence, a later run that merges or splits too many golden customers, holds until a person releases it, and
lets consolidations that identifiers support go through."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from hub.checks import brake_outcome
from hub.quality import QualityConfig
from hub.quality import brake as brake_mod
from hub.quality.identifiers import DIGEST_SIZE, identifier_digests
from hub.store import Store, golden_customer, match_run, staged_record, xref

T = datetime(2026, 3, 1)


def _stage(conn, key: str, rec: dict) -> None:
    source, sid = key.split(":")
    conn.execute(staged_record.insert().values(entity="customers", record_key=key, source=source, source_id=sid,
                                               record={"source": source, "source_id": sid, **rec},
                                               quality_flags=[], record_hash=key, staged_at=T))


def _golden_run(conn, at: datetime) -> None:
    conn.execute(match_run.insert().values(kind="golden", mode="full", started_at=at, finished_at=at))


def _assign(conn, groups: dict[str, list[str]], at: datetime) -> None:
    """Golden membership from ``at`` on: records that move close their open xref row."""
    for gid, keys in groups.items():
        if conn.execute(sa.select(golden_customer.c.golden_id).where(golden_customer.c.golden_id == gid)).first() \
                is None:
            conn.execute(golden_customer.insert().values(golden_id=gid, status="active", record={},
                                                         created_at=at, updated_at=at))
        for key in keys:
            open_gid = conn.execute(sa.select(xref.c.golden_id).where(xref.c.record_key == key,
                                                                       xref.c.valid_to.is_(None))).scalar()
            if open_gid == gid:
                continue
            conn.execute(xref.update().where(xref.c.record_key == key, xref.c.valid_to.is_(None))
                         .values(valid_to=at))
            source, sid = key.split(":")
            conn.execute(xref.insert().values(record_key=key, source=source, source_id=sid, golden_id=gid,
                                              valid_from=at))


def erp_first_sync_like_the_real_one(store: Store, parties: int = 300, names: int = 12) -> None:
    """Distinct parties with few distinct names and a placeholder e-mail, folded into a handful of golden ids."""
    with store.begin() as conn:
        for i in range(parties):
            _stage(conn, f"erp:{i}", {"full_name": f"Party {i % names}",
                                      "name": {"display": f"Party {i % names}", "name_key": f"party {i % names}"},
                                      "emails": ["noreply@company.example"],
                                      "phones": [{"e164": f"+86138{i:08d}"}]})
        # 85 % consolidated by name into one golden customer per name; the rest stand alone
        cut = int(parties * 0.85)
        groups = {f"G{i % names}": [] for i in range(names)}
        for i in range(cut):
            groups[f"G{i % names}"].append(f"erp:{i}")
        for i in range(cut, parties):
            groups[f"S{i}"] = [f"erp:{i}"]
        _assign(conn, groups, T)
        _golden_run(conn, T)


def test_a_first_sync_that_folds_distinct_parties_together_stops_and_waits(store: Store) -> None:
    erp_first_sync_like_the_real_one(store)
    outcome = brake_outcome(store, QualityConfig())
    assert not outcome.passed
    text = outcome.markdown()
    assert "255 records were consolidated" in text and "share no e-mail, phone" in text
    assert "hub quality release" in outcome.metadata["release"]
    assert outcome.metadata["unsupported_share"] == 1.0  # the placeholder e-mail is not evidence
    largest = brake_mod.current(store).figures["largest_unsupported"]
    assert largest[0]["records"] == largest[0]["unsupported"] > 20 and largest[0]["sources"] == ["erp"]
    # it holds on the next run, with nothing new, until a person decides
    assert not brake_outcome(store, QualityConfig()).passed
    assert brake_mod.current(store) is not None
    assert brake_mod.release(store, by="anna", note="parties of one group") == 1
    assert brake_outcome(store, QualityConfig()).passed
    assert brake_mod.current(store) is None


def test_consolidations_an_identifier_supports_go_through(store: Store) -> None:
    with store.begin() as conn:
        groups = {}
        for i in range(100):
            # the same person in the ERP and the shop: same e-mail, different name spellings
            _stage(conn, f"erp:{i}", {"full_name": "x", "emails": [f"p{i}@mail.example"]})
            _stage(conn, f"webshop:{i}", {"full_name": "y", "emails": [f"P{i}@mail.example "]})
            groups[f"G{i}"] = [f"erp:{i}", f"webshop:{i}"]
        _assign(conn, groups, T)
        _golden_run(conn, T)
    outcome = brake_outcome(store, QualityConfig())
    assert outcome.passed, outcome.markdown()
    assert outcome.metadata["records_consolidated"] == 200 and outcome.metadata["unsupported_share"] == 0.0


def test_a_later_run_that_merges_too_many_golden_customers_stops(store: Store) -> None:
    with store.begin() as conn:
        for i in range(200):
            _stage(conn, f"erp:{i}", {"full_name": "x", "emails": [f"p{i}@mail.example"]})
        _assign(conn, {f"G{i}": [f"erp:{i}"] for i in range(200)}, T)
        _golden_run(conn, T)
    assert brake_outcome(store, QualityConfig()).passed  # the accepted state
    later = datetime.utcnow() + timedelta(seconds=1)
    with store.begin() as conn:
        # a new model folds 60 customers pairwise into 30: 60 of 200 accepted golden customers change
        _assign(conn, {f"G{2 * i}": [f"erp:{2 * i}", f"erp:{2 * i + 1}"] for i in range(30)}, later)
        _golden_run(conn, later)
    outcome = brake_outcome(store, QualityConfig())
    assert not outcome.passed
    assert outcome.metadata["golden_customers_merged_or_split"] == 60
    assert "60 of 200 golden customers (30.0%) were merged" in outcome.markdown()
    # switched off in hub.yaml: the operator's explicit choice
    off = QualityConfig.model_validate({"brake": {"enabled": False}})
    assert brake_outcome(store, off).passed


def test_a_new_source_folded_into_existing_customers_without_evidence_stops(store: Store) -> None:
    """The first sync of a source on a hub that already runs: its records join existing golden customers."""
    with store.begin() as conn:
        for i in range(120):
            _stage(conn, f"webshop:{i}", {"full_name": "x", "emails": [f"p{i}@mail.example"]})
        _assign(conn, {f"G{i}": [f"webshop:{i}"] for i in range(120)}, T)
        _golden_run(conn, T)
    assert brake_outcome(store, QualityConfig()).passed  # the hub as it runs today
    later = datetime.utcnow() + timedelta(seconds=1)
    with store.begin() as conn:
        # a new ERP: 100 parties, each folded into an existing customer; 20 share its e-mail, 80 share nothing
        for i in range(100):
            _stage(conn, f"erp:{i}", {"full_name": "y", "emails": [f"p{i}@mail.example"] if i < 20 else []})
        _assign(conn, {f"G{i}": [f"webshop:{i}", f"erp:{i}"] for i in range(100)}, later)
        _golden_run(conn, later)
    outcome = brake_outcome(store, QualityConfig())
    assert not outcome.passed
    # no golden customer was merged or split: only the consolidation measure sees it
    assert outcome.metadata["golden_customers_merged_or_split"] == 0
    assert outcome.metadata["records_consolidated_unsupported"] == 160  # 80 ERP records and their partners
    assert "erp: 100 of its 100 records" in outcome.markdown()


def test_identifier_holders_are_counted_from_the_hashes_staging_keeps_and_from_records_kept_without(
        any_store: Store) -> None:
    """An identifier is rare by its holders over every staged customer, whether a record's identifier hashes
    were kept by staging or are worked out from a record kept without them (an older store): those are kept by
    the first pass, and the next one reads the kept hashes only and judges the same."""
    with any_store.begin() as conn:
        groups = {}
        for i in range(100):
            low, high = {"full_name": "x"}, {"full_name": "y"}
            if i < 40:  # one e-mail per person: supported
                low["emails"] = high["emails"] = [f"p{i}@mail.example"]
            elif 40 <= i < 45:  # a number held by 11 records: not rare
                low["phones"] = high["phones"] = [{"e164": "+8613800000001"}]
            elif i == 45:
                low["phones"] = [{"e164": "+8613800000001"}]
            elif 50 <= i < 55:  # a number held by 10 records: rare at the limit of 10
                low["phones"] = high["phones"] = [{"e164": "+8613800000002"}]
            _stage(conn, f"erp:{i:03d}", low)
            _stage(conn, f"erp:{i + 100:03d}", high)
            groups[f"G{i}"] = [f"erp:{i:03d}", f"erp:{i + 100:03d}"]
        _assign(conn, groups, T)
        _golden_run(conn, T)
        # the upper half as staging writes it: hashes kept with the record
        for key, rec in conn.execute(sa.select(staged_record.c.record_key, staged_record.c.record)
                                     .where(staged_record.c.record_key >= "erp:100")).all():
            conn.execute(staged_record.update().where(staged_record.c.record_key == key)
                         .values(identifier_hashes=identifier_digests(rec)))
    cfg = QualityConfig()
    with any_store.engine.connect() as conn:
        first = brake_mod.measure(conn, cfg, None)
    with any_store.engine.connect() as conn:
        kept = dict(conn.execute(sa.select(staged_record.c.record_key, staged_record.c.identifier_hashes)).all())
        records = dict(conn.execute(sa.select(staged_record.c.record_key, staged_record.c.record)).all())
    assert {k: bytes(v) for k, v in kept.items()} == {k: identifier_digests(r) for k, r in records.items()}
    assert len(kept["erp:000"]) == DIGEST_SIZE and kept["erp:099"] == b""  # an e-mail; no identifier at all

    reads: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        if "staged_record" in statement:
            reads.append(statement)

    sa.event.listen(any_store.engine, "before_cursor_execute", note)
    try:
        with any_store.engine.connect() as conn:
            again = brake_mod.measure(conn, cfg, None)
    finally:
        sa.event.remove(any_store.engine, "before_cursor_execute", note)
    assert again == first
    assert reads and not any("UPDATE" in r for r in reads)  # nothing left to work out and keep
    assert first["records_consolidated"] == 200
    assert first["records_consolidated_unsupported"] == 200 - 80 - 10


def test_support_is_judged_as_record_by_record_on_random_golden_customers(store: Store) -> None:
    """The brake weighs evidence over every record at once (numpy): on random golden customers of one to four
    records, identifiers drawn from a small pool (some held by more records than the limit, some written twice
    in one record), every figure equals the plain rule worked out record by record: a newly consolidated record is
    supported when one of its rare identifiers is held by another record of its golden customer."""
    import random
    from collections import Counter

    from hub.quality.identifiers import strong_keys

    rng = random.Random(16)
    pool = [f"p{i}@mail.example" for i in range(90)]
    records: dict[str, dict] = {}
    groups: dict[str, list[str]] = {}
    with store.begin() as conn:
        n = 0
        for g in range(400):
            keys = []
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                key = f"{rng.choice(('erp', 'webshop'))}:{n:04d}"
                n += 1
                rec = {"full_name": "x", "emails": rng.sample(pool, rng.choice((0, 1, 1, 2)))}
                if rec["emails"] and rng.random() < 0.2:
                    rec["emails"].append(rec["emails"][0].upper())  # one identifier written twice in one record
                _stage(conn, key, rec)
                records[key] = rec
                keys.append(key)
            groups[f"G{g:03d}"] = keys
        _assign(conn, groups, T)
        _golden_run(conn, T)
    limit = QualityConfig().brake.shared_value_limit
    holders = Counter(x for rec in records.values() for x in strong_keys(rec))
    consolidated: Counter[str] = Counter()
    unsupported: Counter[str] = Counter()
    for keys in groups.values():
        if len(keys) < 2:
            continue
        rare = {k: {x for x in strong_keys(records[k]) if holders[x] <= limit} for k in keys}
        in_golden = Counter(x for xs in rare.values() for x in xs)
        for k in keys:
            consolidated[k.partition(":")[0]] += 1
            if not any(in_golden[x] > 1 for x in rare[k]):
                unsupported[k.partition(":")[0]] += 1
    with store.engine.connect() as conn:
        figures = brake_mod.measure(conn, QualityConfig(), None)
    assert 0 < figures["records_consolidated_unsupported"] < figures["records_consolidated"]
    assert figures["records_consolidated"] == sum(consolidated.values())
    assert figures["records_consolidated_unsupported"] == sum(unsupported.values())
    for source in ("erp", "webshop"):
        assert figures["sources"][source]["unsupported"] == unsupported[source]
    assert max(holders.values()) > limit  # some identifiers are too common to count
