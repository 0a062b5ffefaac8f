"""Issue 16: the pipeline's clusters against the sandbox's ground truth, and against `hub dedupe` on the same records.

`hub demo` (the whole Dagster graph against a fresh sandbox world, embedded SQLite store) clusters the world's
customer records; `hub export xref` gives its clusters; `hub dedupe` clusters the same staged customers written
as its input file (the golden stage's engine input). Both are scored on every customer record with a true person
(ERP parties, shop accounts, shop guest checkouts, WeChat followers) and on the identifiable ones only: a follower
whose nickname does not carry its person's whole name and whose remark holds none of their numbers holds nothing
the hub reads that could link it (hub.sandbox.identifiable_followers; hub.sandbox.score_against_truth scores).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

HUB = str(Path(sys.executable).parent / "hub")
PEOPLE = 1500
# Measured 2026-12-03 on this 1,500-person world (seed 42; 2,977 customer records with a person, 394 of them
# followers holding nothing the hub reads of their person): pairwise P 0.979 / R 0.755 / F1 0.852, identifiable
# records R 0.954 / F1 0.967, hub dedupe the same. The floors fail on a regression (a field lost in staging, a
# source left unscored), not on a hair. (Reading followers' names from the staff remark raised F1 to 0.869 but was
# taken back: its name-and-city merges tripped the merge/split brake of a sync without the web shop.)
FLOOR = {"pairwise_precision": 0.965, "pairwise_f1": 0.84}
IDENTIFIABLE_FLOOR = {"pairwise_recall": 0.93, "pairwise_f1": 0.955}


def _hub(cwd: Path, *args: str) -> str:
    proc = subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HUB_DATABASE_URL": ""})
    assert proc.returncode == 0, f"hub {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_sandbox_clusters_meet_the_floor_and_hub_dedupe(tmp_path: Path) -> None:
    from hub.golden.matching import engine_frame
    from hub.sandbox import score_against_truth
    from hub.store import Store, staged_record

    _hub(tmp_path, "demo", "--customers", str(PEOPLE))
    _hub(tmp_path, "export", "xref", "--out", "xref.csv")
    with (tmp_path / "xref.csv").open(encoding="utf-8", newline="") as fh:
        pipeline = {f"{r['source']}:{r['source_id']}": r["golden_id"] for r in csv.DictReader(fh) if not r["valid_to"]}

    # hub dedupe on the staged customers the golden stage matched, as its input file
    store = Store(f"sqlite:///{tmp_path / '.hub' / 'hub.db'}")
    with store.engine.connect() as conn:
        frame = engine_frame(conn.execute(sa.select(staged_record.c.record_key, staged_record.c.record)
                                          .where(staged_record.c.entity == "customers")))
    store.dispose()
    frame.to_csv(tmp_path / "staged.csv", index=False)
    _hub(tmp_path, "dedupe", "staged.csv", "--out", "clusters.csv")
    with (tmp_path / "clusters.csv").open(encoding="utf-8", newline="") as fh:
        cli = {r["record_id"]: r["cluster_id"] for r in csv.DictReader(fh)}

    world = tmp_path / ".hub" / "sandbox"
    q, q_cli = score_against_truth(pipeline, world), score_against_truth(cli, world)
    assert q["guest_records"] > 100  # shop guest checkouts are scored too
    assert q["records"] == q_cli["records"] > 1.8 * PEOPLE and q["identifiable_records"] < q["records"]
    assert q["pairwise_f1"] >= q_cli["pairwise_f1"] - 0.005, (q, q_cli)
    assert q["identifiable_pairwise_f1"] >= q_cli["identifiable_pairwise_f1"] - 0.005, (q, q_cli)
    assert all(q[k] >= floor for k, floor in FLOOR.items()), q
    assert all(q["identifiable_" + k] >= floor for k, floor in IDENTIFIABLE_FLOOR.items()), q
