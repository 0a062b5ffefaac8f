"""Quality dimensions scored from a store whose every figure is known, and the report's history over runs."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from test_report import parse, seed_operations

from hub.quality import QualityConfig, score_dimensions
from hub.quality.config import DIMENSIONS
from hub.quality.golden_facts import names_agree
from hub.quality.history import RunInfo
from hub.report import write_report
from hub.store import (
    Store,
    golden_customer,
    match_pair,
    quarantine,
    review_decision,
    staged_record,
    sync_state,
    xref,
)

NOW = datetime(2026, 6, 1, 12, 0)


def _customer(conn, key: str, **rec) -> None:
    source, sid = key.split(":")
    flags = rec.pop("flags", [])
    conn.execute(staged_record.insert().values(
        entity="customers", record_key=key, source=source, source_id=sid, record={"source": source,
                                                                                  "source_id": sid, **rec},
        quality_flags=flags, record_hash=key, staged_at=NOW))


def _golden(conn, gid: str, keys: list[str], **rec) -> None:
    conn.execute(golden_customer.insert().values(golden_id=gid, status="active", record={"golden_id": gid, **rec},
                                                 created_at=NOW, updated_at=NOW))
    for key in keys:
        source, sid = key.split(":")
        conn.execute(xref.insert().values(record_key=key, source=source, source_id=sid, golden_id=gid,
                                          valid_from=NOW))


def _name(key: str) -> dict:
    return {"display": key, "name_key": key}


def seed(store: Store) -> None:
    with store.begin() as conn:
        # erp: 4 customers, two of them the same person inside the ERP (a duplicate the ERP should merge)
        _customer(conn, "erp:1", full_name="Chen Wei", name=_name("chen wei"), emails=["c@x.cn"],
                  phones=[{"e164": "+8613800138000"}], birth_date="1980-01-02")
        _customer(conn, "erp:2", full_name="Chen Wei", name=_name("chen wei"), emails=["c@x.cn"])
        _customer(conn, "erp:3", full_name="Li Na", name=_name("li na"), birth_date="1990-05-05",
                  flags=["phones:phone.invalid"])
        _customer(conn, "erp:4", full_name="Wang Fang", name=_name("fang wang"))
        # webshop: 2 customers; one is 陈伟 again, one is Li Na with ANOTHER birth date and another name
        _customer(conn, "webshop:7", full_name="陈伟", name=_name("chen wei"), emails=["c@x.cn"],
                  birth_date="1980-01-02")
        _customer(conn, "webshop:8", full_name="Zhang Min", name=_name("min zhang"), birth_date="1991-01-01")
        _customer(conn, "webshop:guest-order-5", full_name="Wang Fang", name=_name("fang wang"))
        _golden(conn, "G1", ["erp:1", "erp:2", "webshop:7"], name_key="chen wei", birth_date="1980-01-02")
        _golden(conn, "G2", ["erp:3", "webshop:8"], name_key="li na", birth_date="1990-05-05")
        _golden(conn, "G3", ["erp:4", "webshop:guest-order-5"], name_key="fang wang")
        conn.execute(quarantine.insert().values(source="webshop", entity="customers", source_id="9",
                                                reasons=["required.name_missing"], payload={}, payload_hash="q",
                                                quarantined_at=NOW))
        conn.execute(sync_state.insert(), [
            {"source": "erp", "entity": "customers", "cursor": None, "updated_at": NOW - timedelta(hours=2)},
            {"source": "webshop", "entity": "customers", "cursor": None, "updated_at": NOW - timedelta(hours=52)},
            {"source": "webshop", "entity": "_staging_mapping", "cursor": None, "updated_at": NOW}])
        pairs = [("erp:3", "webshop:8", 0.7, "review"), ("erp:4", "webshop:9", 0.2, "review"),
                 ("erp:1", "erp:4", 0.6, "review")]
        conn.execute(match_pair.insert(), [
            {"left_key": a, "right_key": b, "match_weight": 1.0, "match_probability": p, "band": band,
             "explanation": {}, "scored_at": NOW} for a, b, p, band in pairs])
        conn.execute(review_decision.insert(), [
            {"left_key": "erp:3", "right_key": "webshop:8", "decision": "no-match", "decided_by": "s",
             "decided_at": NOW},  # model said match (0.7): disagrees
            {"left_key": "erp:4", "right_key": "webshop:9", "decision": "no-match", "decided_by": "s",
             "decided_at": NOW}])  # model said no (0.2): agrees


def test_every_dimension_per_source_and_overall(store: Store) -> None:
    seed(store)
    cfg = QualityConfig.model_validate({"completeness_fields": ["name", "email", "birth_date"],
                                        "sources": {"webshop": {"expected_age_hours": 26}}})
    d = score_dimensions(store, cfg, now=NOW, derived={"webshop": ("guest-order-",)})
    assert set(d) == set(DIMENSIONS)
    comp = d["completeness"]["sources"]
    # erp: name 4/4, email 2/4, birth date 2/4 -> mean of 100, 50, 50
    assert comp["erp"]["fields"] == {"name": 100.0, "email": 50.0, "birth_date": 50.0}
    assert comp["erp"]["score"] == 66.7
    # validity: erp 1 of 4 with an invalid phone; webshop 3 staged + 1 quarantined -> 3 of 4
    assert d["validity"]["sources"]["erp"]["score"] == 75.0 and d["validity"]["sources"]["webshop"]["score"] == 75.0
    # uniqueness: erp:2 duplicates erp:1 inside the ERP; the webshop guest checkout is not a shop duplicate
    u = d["uniqueness"]
    assert u["sources"]["erp"]["duplicates_within_source"] == 1 and u["sources"]["erp"]["score"] == 75.0
    assert u["sources"]["webshop"]["duplicates_within_source"] == 0
    # the undecided review pair erp:1~erp:4 spans G1 and G3: two golden customers are possible duplicates
    assert u["possible_duplicates"] == 2 and u["score"] == 33.3  # lower than the sources' 75 and 100
    # consistency: webshop:8 (Zhang Min, 1991) sits in Li Na's golden record -> name and birth date conflict
    c = d["consistency"]
    assert c["golden_with_conflicts"] == 1 and c["golden_with_several_records"] == 3
    assert c["conflicts_by_field"] == {"birth_date": 1, "name": 1}
    assert c["sources"]["webshop"]["conflicting_records"] == 1 and c["sources"]["erp"]["score"] == 100.0
    # timeliness: webshop's newest data is 52 h old against 26 h expected -> 50, amber; overall the worst
    t = d["timeliness"]
    assert t["sources"]["erp"]["score"] == 100.0 and t["sources"]["webshop"]["score"] == 50.0
    assert t["score"] == 50.0 and t["sources"]["webshop"]["status"] == "amber"
    assert "webshop" in t["verdict"] and "52" in t["verdict"]
    # accuracy: one of two decisions agrees with the model
    assert d["accuracy"]["score"] == 50.0 and d["accuracy"]["status"] == "red"
    for dim in d.values():
        assert dim["status"] in ("green", "amber", "red", "none") and dim["verdict"]


def test_scores_are_reused_until_their_inputs_change(store: Store) -> None:
    seed(store)
    first = score_dimensions(store, QualityConfig(), now=NOW)
    # a second run over the same records reuses the kept scores; timeliness follows the clock
    again = score_dimensions(store, QualityConfig(), now=NOW + timedelta(hours=30))
    assert {k: v for k, v in again.items() if k != "timeliness"} == {
        k: v for k, v in first.items() if k != "timeliness"}
    assert again["timeliness"]["sources"]["erp"]["score"] < first["timeliness"]["sources"]["erp"]["score"]
    with store.begin() as conn:  # a newly quarantined record changes validity at once
        conn.execute(quarantine.insert().values(source="erp", entity="customers", source_id="99",
                                                reasons=["required.name_missing"], payload={}, payload_hash="q",
                                                quarantined_at=NOW))
    after = score_dimensions(store, QualityConfig(), now=NOW)
    assert after["validity"]["sources"]["erp"]["score"] < first["validity"]["sources"]["erp"]["score"]
    # another configuration is scored afresh
    cfg = QualityConfig.model_validate({"completeness_fields": ["name"]})
    assert score_dimensions(store, cfg, now=NOW)["completeness"]["sources"]["erp"]["fields"] == {"name": 100.0}


def test_names_agree_across_scripts_and_spellings() -> None:
    assert names_agree(["chen", "wei"], ["chen", "wei"])
    assert names_agree(["xubinhai"], ["binhai", "xu"])  # a screen name written together
    assert names_agree(["jonathon", "smith"], ["jonathan", "smyth"])
    assert not names_agree(["li", "na"], ["min", "zhang"])
    assert names_agree([], ["min", "zhang"])  # no name: nothing to disagree with


def test_two_runs_leave_two_runs_of_history_in_the_twin(store: Store, tmp_path: Path) -> None:
    seed_operations(store)
    out = tmp_path / "dq.html"
    run_id = "8d9f75d3-a7ae-4a82-83f8-b68fb5dc3628"
    write_report(store, out, run=RunInfo("first-run", "hub demo", datetime.utcnow() - timedelta(seconds=5)))
    stats = write_report(store, out, run=RunInfo(run_id, "schedule full_sync_nightly", datetime.utcnow()))
    twin = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert set(twin["dimensions"]) == set(DIMENSIONS)
    for name, dim in twin["dimensions"].items():
        assert "score" in dim and dim["status"] in ("green", "amber", "red", "none"), name
    assert [h["run_id"] for h in twin["history"]] == ["first-run", run_id]
    assert all(set(h["scores"]) == set(DIMENSIONS) for h in twin["history"])
    assert stats.history_runs == 2 and twin["status"] == stats.status
    html = out.read_text(encoding="utf-8")
    page = parse(html)
    assert run_id in html  # a run id is not a phone number: never masked
    assert {"toc", "verdict", "dimensions", "history", "this-run", "run-id"} <= page.ids
    assert {f"chart-{d}" for d in DIMENSIONS} | {"chart-volume", "chart-golden", "chart-push"} <= page.ids
    assert len(page.tables["history-table"]) == 3  # header + two runs
    # this run changed nothing in the store: its figures are zero beside the store's totals
    run_vs_store = {r[0]: r[1:] for r in page.tables["run-vs-store"][1:]}
    assert run_vs_store["records in quarantine"] == ["0", "3"]
    assert "Nothing new or changed in any source." in "".join(page.text)
    assert "took" in html and "schedule full_sync_nightly" in html
    assert twin["run_info"]["run_id"] == run_id and twin["run_info"]["seconds"] >= 0
    assert "run-failures" not in page.ids
    # a source that failed in the run is named at the top, with its error (personal data masked)
    write_report(store, out, run=RunInfo("third", "manual"), failures={"pull of webshop": "HTTP 503 for 13800138000"})
    page = parse(out.read_text(encoding="utf-8"))
    assert page.tables["run-failures-table"][1] == ["pull of webshop", "HTTP 503 for 138****8000"]


def test_flag_codes_count_every_record_and_ties_fall_the_same_whatever_order_records_are_stored_in(
        store: Store) -> None:
    # the same flag list on many records counts once per record; codes with equal counts are listed as the flag
    # lists first carry them in the order of the lists' texts (the database counts records per list): the same
    # on every backend and whichever record was stored first
    records = [*((f"erp:{i}", "A", ["phones:phone.invalid", "emails:email.format"]) for i in range(3)),
               ("erp:7", "B", ["national_id:national_id.checksum"]),
               ("erp:8", "C", ["birth_date:date.future", "names:name.fixed"]),
               ("erp:9", "D", ["birth_date:date.impossible"])]
    for order in (records, records[::-1]):
        with store.begin() as conn:
            conn.execute(staged_record.delete())
            for key, name, flags in order:
                _customer(conn, key, full_name=name, flags=flags)
        v = score_dimensions(store, QualityConfig(), now=NOW)["validity"]["sources"]["erp"]
        assert v["records"] == 6 and v["invalid_values"] == 6
        assert [c["code"] for c in v["top_codes"]] == ["phone.invalid", "email.format", "date.future"]
        assert [c["count"] for c in v["top_codes"]] == [3, 3, 1]


def test_the_golden_paths_the_quality_pass_reads_are_the_ones_golden_completeness_reads() -> None:
    """The dimensions read only ``GOLDEN_KEYS_READ`` of each golden record from the store: a key the function
    reads beyond them would always look absent."""
    from hub.quality.completeness import GOLDEN_KEYS_READ, golden_completeness

    read: set[str] = set()

    class Spy(dict):
        def get(self, key, default=None):
            read.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            read.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):
            read.add(key)
            return super().__contains__(key)

    golden_completeness(Spy())  # nothing held: every alternative of every field is read
    assert read == set(GOLDEN_KEYS_READ)


def test_the_dimensions_count_staged_customers_by_profile_from_the_index_alone(tmp_path: Path) -> None:
    """The count of staged customers per source and profile reads ix_staged_profile only (SQLite: a covering
    index), not the rows (a kilobyte of JSON each): the point of keeping the profile."""
    from query_plans import plan_of, statements_of

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with store.begin() as conn:
            _customer(conn, "erp:1", full_name="A", flags=[])
            _customer(conn, "shop:2", full_name="B", flags=[])
        counts = [(q, p) for q, p in statements_of(store, lambda: score_dimensions(store, QualityConfig(), now=NOW))
                  if "GROUP BY staged_record.source, staged_record.quality_profile" in q]
        assert counts
        for statement, parameters in counts:
            plan = plan_of(store, statement, parameters)
            assert any("COVERING INDEX ix_staged_profile" in p for p in plan), plan
    finally:
        store.dispose()


def test_a_forked_worker_reading_the_staged_customers_scores_what_one_process_scores(
        store: Store, monkeypatch, tmp_path: Path) -> None:
    """Large stores read the staged customers in a forked worker with its own connection, beside the rest: the
    dimensions must not depend on it (SQLite and PostgreSQL)."""
    from hub.quality import dimensions

    seed(store)
    cfg = QualityConfig.model_validate({"completeness_fields": ["name", "email", "birth_date"]})
    derived = {"webshop": ("guest-order-",)}
    monkeypatch.setattr(dimensions, "PARALLEL_MIN", 10**9)
    alone = score_dimensions(store, cfg, now=NOW, derived=derived)
    store.save_cursor("hub", dimensions.CACHE_ENTITY, None)  # forget the kept scores: score again
    readers = tmp_path / "readers"
    real = dimensions._staged_customers

    def recorded(*args):
        with readers.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return real(*args)

    monkeypatch.setattr(dimensions, "_staged_customers", recorded)
    monkeypatch.setattr(dimensions, "PARALLEL_MIN", 0)
    forked = score_dimensions(store, cfg, now=NOW, derived=derived)
    assert readers.read_text().split() != [str(os.getpid())]  # read by another process
    assert forked == alone
    assert forked["consistency"]["golden_with_conflicts"] == 1 and forked["uniqueness"]["possible_duplicates"] == 2


def test_the_dimensions_of_the_selected_checks_alone_score_as_in_the_whole(store: Store) -> None:
    """Materialising the golden layer alone runs its consistency check alone: only the wanted dimensions are
    scored (the same figures as in a scoring of all of them), and nothing is kept for the report."""
    from hub.quality import dimensions
    from hub.store import read_cursor

    def kept() -> dict | None:
        with store.engine.connect() as conn:
            return read_cursor(conn, "hub", dimensions.CACHE_ENTITY)

    seed(store)
    derived = {"webshop": ("guest-order-",)}
    for only in ({"consistency"}, {"uniqueness", "timeliness"}, {"validity"}, {"accuracy", "completeness"},
                 {"timeliness"}):
        part = score_dimensions(store, QualityConfig(), now=NOW, derived=derived, only=only)
        assert set(part) == only
        assert not kept()  # not kept: the report scores them all
    whole = score_dimensions(store, QualityConfig(), now=NOW, derived=derived)
    assert kept()
    for only in ({"consistency"}, {"uniqueness", "timeliness"}, {"validity"}, {"accuracy", "completeness"},
                 {"timeliness"}):
        store.save_cursor("hub", dimensions.CACHE_ENTITY, None)
        part = score_dimensions(store, QualityConfig(), now=NOW, derived=derived, only=only)
        assert part == {name: whole[name] for name in only}
    assert whole["consistency"]["golden_with_conflicts"] == 1 and whole["validity"]["score"] is not None
