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

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from hub.standardise.identifiers import cn_id_check_char
from hub.store import Store, xref

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
