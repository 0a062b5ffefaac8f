"""build_golden runs survivorship on several processes (forked workers) for a large build: the stored result
is the one process's, row for row — golden records, lineage, their insertion order, xref and id history — for a
first build, an incremental one and a rules change; and quality flags do not veto a value staging kept."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from test_golden_support import cust, stage, synthetic_customers, unstage

import hub.golden.build as build
from hub.golden import build_golden, match_and_cluster, unpack_lineage
from hub.golden.config import load_survivorship
from hub.golden.survivorship import Survivor, staged_member
from hub.store import Store, golden_customer, golden_id_history, xref


def _state(store: Store) -> dict[str, list]:
    """The golden tables with build times replaced by the build's number (in order of the builds); golden
    records in insertion order on SQLite (rowid), by golden id elsewhere (PostgreSQL's heap order moves rows)."""
    with store.engine.connect() as conn:
        times = sorted({t for (t,) in conn.execute(sa.select(xref.c.valid_from))}
                       | {t for (t,) in conn.execute(sa.select(golden_customer.c.updated_at))})
        no = {t: i for i, t in enumerate(times)}

        def norm(v: object) -> object:
            return no.get(v, v) if isinstance(v, datetime) else v

        goldens = []
        q = sa.select(golden_customer)  # on SQLite in rowid order: the order the rows were inserted
        if store.dialect != "sqlite":
            q = q.order_by(golden_customer.c.golden_id)
        for row in conn.execute(q):
            d = dict(row._mapping)
            d["lineage"] = unpack_lineage(d["lineage"])
            for entry in d["lineage"].values():
                entry["decided_at"] = no.get(datetime.fromisoformat(entry["decided_at"]))
            goldens.append({k: norm(v) for k, v in d.items()})
        return {
            "golden": goldens,
            "xref": [tuple(norm(v) for v in r) for r in conn.execute(sa.select(xref).order_by(xref.c.id))],
            "history": [tuple(norm(v) for v in r)
                        for r in conn.execute(sa.select(golden_id_history).order_by(golden_id_history.c.id))],
        }


def _run(store: Store, workers: int) -> list[dict[str, list]]:
    people = synthetic_customers(1500)
    stage(store, people, at=datetime(2026, 1, 1))
    match_and_cluster(store, {"engine": "fixed"}, mode="full")
    stats = build_golden(store, workers=workers)
    assert stats.mode == "full" and stats.golden_written > 1200
    out = [_state(store)]
    # merges, splits, deletions and attribute changes, then an incremental build
    changed = [p.model_copy(update={"emails": [f"new{i}@example.org"]}) for i, p in enumerate(people[:400:7])]
    changed += [p.model_copy(update={"phones": people[i + 1].phones}) for i, p in enumerate(people[400:800:9])]
    changed += [p.model_copy(update={"gender": "female", "source_updated_at": datetime(2026, 1, 2)})
                for p in people[800:1800:4]]
    stage(store, changed, at=datetime(2026, 1, 2))
    unstage(store, [p.record_key for p in people[1800:2000:3]])
    match_and_cluster(store, {"engine": "fixed"}, mode="incremental")
    stats = build_golden(store, workers=workers)
    assert stats.mode == "incremental" and stats.golden_written > 50 and stats.merged and stats.splits
    out.append(_state(store))
    # a rules change rewrites every golden (update path, decision times carried over)
    stats = build_golden(store, {"quality": {"full_sources": 2}}, workers=workers)
    assert stats.mode == "full" and stats.golden_written > 1200
    out.append(_state(store))
    return out


@pytest.fixture
def small_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    # several rounds (each written in golden id order while the next runs) and parallel builds of test size
    monkeypatch.setattr(build, "_ROUND", 400)
    monkeypatch.setattr(build, "_PARALLEL_MIN", 500)


def test_parallel_build_stores_what_one_process_stores(tmp_path, small_rounds: None) -> None:
    runs = {}
    for workers in (1, 2, 3):
        store = Store(f"sqlite:///{tmp_path}/w{workers}.db")
        runs[workers] = _run(store, workers)
        store.engine.dispose()
    assert runs[2] == runs[1]
    assert runs[3] == runs[1]


@pytest.mark.parametrize("share", ["none", "all"])
def test_a_lead_taking_no_share_or_a_whole_one_stores_what_one_process_stores(tmp_path, small_rounds: None,
                                                                           monkeypatch, share: str) -> None:
    # this process's share of each round after the first follows the last round's times (lead_share): at its
    # bounds it survives no cluster at all (it only writes and loads), or as many as a worker
    runs = {}
    for workers in (1, 2):
        if workers == 2:
            monkeypatch.setattr(build, "lead_share", lambda n, work, extra, **_: 0.0 if share == "none" else 1.0 / n)
        store = Store(f"sqlite:///{tmp_path}/{share}{workers}.db")
        runs[workers] = _run(store, workers)
        store.engine.dispose()
    assert runs[2] == runs[1]


def test_parallel_build_on_postgresql_stores_what_one_process_stores(small_rounds: None) -> None:
    """The workers inherit the parent's PostgreSQL connection (a socket) and must leave it alone: only this
    process reads and writes."""
    from conftest import fresh_postgres_database

    runs = {}
    for workers in (1, 2):
        with fresh_postgres_database() as url:
            store = Store(url)
            runs[workers] = _run(store, workers)
            store.dispose()
    assert runs[2] == runs[1]


def test_quality_flags_do_not_veto_a_value_staging_kept() -> None:
    """Staging leaves an invalid value out and flags it as "<field>:<code>"; the value a member still gives is
    validated on its own, whatever the record's flags say (flags name no value)."""
    sv = Survivor(load_survivorship(None))
    rec = cust("erp", "1", "Li Anna", phone="+8613800000001", email="anna@example.com").model_dump(mode="json")
    for flags in ((), ("phones:phone.invalid", "emails:email.invalid"), ("phone.invalid", "email.invalid_format")):
        golden = sv.survive_undated("G1", [staged_member("erp:1", "erp", rec, flags, datetime(2026, 1, 1))])
        assert golden.record["primary_phone"] == "+8613800000001", flags
        assert golden.record["primary_email"] == "anna@example.com", flags


def test_a_round_is_shared_by_records_and_a_slower_worker_gets_less() -> None:
    """Survivorship's time grows with a cluster's records: a round's shares are cut by records (a share of the
    clusters left the worker the round's small clusters and this process waiting), and the next round's share
    follows what a record took this process and a worker each."""
    from hub.dedupe.parallel import lead_share

    sizes = {f"c{i}": 3 if i < 10 else 1 for i in range(40)}  # the large clusters come first, as ids order them
    part = [(c, f"G{i}") for i, c in enumerate(sizes)]
    lead, worker = build._split(part, 2, own=20.0, weight=lambda item: sizes[item[0]])
    assert sum(sizes[c] for c, _ in lead) == 21 and len(lead) == 7  # 20 records asked: 7 clusters of three
    assert [c for c, _ in lead + worker] == list(sizes)  # every cluster once, in order
    assert build._split(part, 2, own=0.0, weight=lambda item: sizes[item[0]])[0] == []
    three = build._split(part, 3, own=10.0, weight=lambda item: sizes[item[0]])
    assert [sum(sizes[c] for c, _ in s) for s in three] == [12, 23, 25]  # cut at 10, 35 records
    # equal rates: the share that ends with the worker while also spending 1 s on other work
    assert lead_share(2, 10.0, 1.0) == pytest.approx(0.45)
    assert lead_share(2, 10.0, 1.0, worker_s=10.0) == pytest.approx(0.45)
    # a worker 20 % slower: this process takes more, and still ends with it (1 + share * 10 = (1 - share) * 12)
    share = lead_share(2, 10.0, 1.0, worker_s=12.0)
    assert share > 0.45 and 1 + share * 10 == pytest.approx((1 - share) * 12)
    assert lead_share(2, 10.0, 0.0, worker_s=12.0) == pytest.approx(12 / 22)
