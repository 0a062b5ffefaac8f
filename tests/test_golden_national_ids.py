"""Two people with different validated national ids never become one golden customer.

The shape of the 100k-person sync that stopped at the blocking ``golden_customers_consistent`` check: two
namesakes of one city (same family and given name) sharing one e-mail address, each with a checksummed
resident id — the ids differ in six of 18 characters (neighbouring districts, birth dates thirty years apart),
close enough that the engine's id comparison called them "similar", not "far" — and a shop record of one of
them (name, e-mail, phone, no id). The shared name and mailbox outweighed the different birth dates, the
shop record bridged the two, and one golden record held both ids. Run as a user runs it: the file imported
with ``hub import`` (customer_file mapping), the match and golden assets and their checks materialised from
the Dagster definitions; and ``hub dedupe`` on the same file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from hub.standardise.identifiers import cn_id_check_char
from hub.store import Store, match_pair, staged_record, xref

syn = pytest.importorskip("hub.dedupe.synthetic")


def _resident_id(division: str, birth: date, seq: int) -> str:
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + cn_id_check_char(body)


def _trap() -> pd.DataFrame:
    """The namesakes (T-A, T-B: different people) and T-A's shop record (T-C)."""
    mailbox = "zhangwei.bj@163.com"
    a_birth, b_birth = date(1962, 3, 15), date(1992, 7, 21)
    rows = [
        {"record_id": "T-A", "full_name": "张伟", "email": mailbox, "phone": "+86 139 1023 4567",
         "birth_date": a_birth.isoformat(), "gender": "M", "national_id": _resident_id("110105", a_birth, 123),
         "street": "朝阳路 12 号", "city": "北京", "country": "CN"},
        {"record_id": "T-B", "full_name": "张伟", "email": mailbox, "phone": "+86 137 8890 1234",
         "birth_date": b_birth.isoformat(), "gender": "M", "national_id": _resident_id("110106", b_birth, 123),
         "street": "建国路 99 号", "city": "北京", "country": "CN"},
        {"record_id": "T-C", "full_name": "张伟", "email": mailbox, "phone": "+86 139 1023 4567",
         "birth_date": "", "gender": "", "national_id": "", "street": "", "city": "北京", "country": "CN"},
    ]
    return pd.DataFrame(rows)


@pytest.fixture
def people_file(tmp_path: Path) -> Path:
    ids = _trap()["national_id"].tolist()
    assert sum(x != y for x, y in zip(ids[0], ids[1], strict=True)) == 6  # "similar" to the id comparison
    background = syn.customers(400, seed=8).astype(str).drop(columns=["source", "entity_id"])
    frame = pd.concat([background, _trap()], ignore_index=True).fillna("")
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def imported(people_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    from hub.cli import main

    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(people_file), "--source", "crm", "--mapping", "customer_file"]) == 0
    store = Store()
    try:
        yield store
    finally:
        store.dispose()


def test_namesakes_sharing_a_mailbox_with_two_ids_stay_two_golden_customers(imported: Store) -> None:
    from hub.definitions import defs

    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[dg.AssetKey(k) for k in ("match_model", "match_pairs", "golden_customers")])
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["golden_customers_consistent"].passed, checks["golden_customers_consistent"].metadata
    with imported.engine.connect() as conn:
        golden = dict(conn.execute(sa.select(xref.c.source_id, xref.c.golden_id).where(
            xref.c.source_id.in_(["T-A", "T-B", "T-C"]), xref.c.valid_to.is_(None))).all())
    assert golden["T-A"] != golden["T-B"]
    assert golden["T-C"] == golden["T-A"]  # the shop record still joins the person whose phone it holds


def test_hub_dedupe_keeps_the_namesakes_apart(people_file: Path, tmp_path: Path) -> None:
    from hub.dedupe.cli import main

    out = tmp_path / "clusters.csv"
    assert main([str(people_file), "--out", str(out), "--quiet"]) == 0
    cluster = pd.read_csv(out, dtype=str).set_index("record_id")["cluster_id"]
    assert cluster["T-A"] != cluster["T-B"]
    assert cluster["T-C"] == cluster["T-A"]


def test_an_id_that_fails_validation_is_still_match_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """A resident id with a region code that does not exist (a typo, or a made-up prefix) fails staging's
    validation: it is no golden record's id and never pushed, but two records holding it are evidence of one
    person to the pipeline as they are to `hub dedupe` (劉洋 / Yang LIU: names alike, nothing else shared)."""
    from hub.cli import main
    from hub.dedupe.cli import main as dedupe_main
    from hub.definitions import defs

    nid = _resident_id("403512", date(1960, 8, 4), 31)
    rows = [{"record_id": "U-A", "full_name": "劉洋", "national_id": nid, "city": "天津", "country": "CN"},
            {"record_id": "U-B", "full_name": "Yang LIU", "national_id": nid, "city": "tianjin", "country": "CN"}]
    background = syn.customers(400, seed=8).astype(str).drop(columns=["source", "entity_id"])
    path = tmp_path / "people.csv"
    pd.concat([background, pd.DataFrame(rows)], ignore_index=True).fillna("").to_csv(path, index=False)

    out = tmp_path / "clusters.csv"
    assert dedupe_main([str(path), "--out", str(out), "--quiet"]) == 0
    cluster = pd.read_csv(out, dtype=str).set_index("record_id")["cluster_id"]
    assert cluster["U-A"] == cluster["U-B"]

    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.chdir(tmp_path)
    assert main(["import", str(path), "--source", "crm", "--mapping", "customer_file"]) == 0
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[dg.AssetKey(k) for k in ("match_model", "match_pairs", "golden_customers")])
    assert result.success
    store = Store()
    try:
        with store.engine.connect() as conn:
            golden = dict(conn.execute(sa.select(xref.c.source_id, xref.c.golden_id).where(
                xref.c.source_id.in_(["U-A", "U-B"]), xref.c.valid_to.is_(None))).all())
            staged = [r[0] for r in conn.execute(sa.select(staged_record.c.record).where(
                staged_record.c.source_id.in_(["U-A", "U-B"])))]
            explanation = conn.execute(sa.select(match_pair.c.explanation).where(
                match_pair.c.left_key.in_(["crm:U-A", "crm:U-B"]),
                match_pair.c.right_key.in_(["crm:U-A", "crm:U-B"]))).scalar_one()
    finally:
        store.dispose()
    explanation = explanation if isinstance(explanation, dict) else json.loads(explanation)
    assert explanation["national_id"]["level"] == "exact", explanation
    assert golden["U-A"] == golden["U-B"]
    for rec in staged:
        rec = rec if isinstance(rec, dict) else json.loads(rec)
        assert rec["national_id"] is None and rec.get("unverified_national_id") == nid
