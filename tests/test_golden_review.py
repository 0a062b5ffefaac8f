"""Steward review queue and decisions (API level; their effect on clustering is in test_golden_ids/engine)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_golden_support import cust, stage

from hub.golden import build_golden, decide, match_and_cluster, parse_pair, review_queue
from hub.store import Store, match_pair, review_decision

EXACT = {"engine": "fixed"}


def test_queue_lists_undecided_review_pairs_with_records(sqlite_store: Store) -> None:
    store = sqlite_store
    stage(store, [
        cust("erp", "3", "John Smith", phone="+12025550101"),
        cust("callcenter", "+12025550101", "Jim Smith", phone="+12025550101"),
        cust("erp", "4", "Mary Jones", phone="+12025550102"),
        cust("webshop", "4", "Ann Jones", phone="+12025550102"),
        cust("erp", "5", "Tom Lee", email="tom@example.com"),
        cust("webshop", "5", "Tom Lee", email="tom@example.com"),
    ])
    match_and_cluster(store, EXACT)
    build_golden(store)
    queue = review_queue(store, limit=10)
    assert {(i.left_key, i.right_key) for i in queue} == {("callcenter:+12025550101", "erp:3"),
                                                         ("erp:4", "webshop:4")}
    item = queue[0]
    assert item.left_record["source_id"] and item.right_record["source_id"]
    assert item.left_golden_id and item.left_golden_id != item.right_golden_id
    assert item.explanation["phone"]["level"] == "exact"
    assert parse_pair(item.pair) == (item.left_key, item.right_key)
    assert len(review_queue(store, limit=1)) == 1
    decide(store, item.right_key, item.left_key, "no-match", by="steward", note="different person")
    decide(store, item.left_key, item.right_key, "no-match", by="steward2")  # replaces, stored once
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(review_decision)).all()
    assert len(rows) == 1 and rows[0].decided_by == "steward2" and rows[0].left_key == item.left_key
    assert item.pair not in {i.pair for i in review_queue(store)}


def test_decide_rejects_bad_input(sqlite_store: Store) -> None:
    stage(sqlite_store, [cust("erp", "1", "A"), cust("erp", "2", "B")])
    with pytest.raises(ValueError):
        decide(sqlite_store, "erp:1", "erp:2", "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decide(sqlite_store, "erp:1", "erp:1", "match")
    with pytest.raises(KeyError):
        decide(sqlite_store, "erp:1", "erp:404", "match")
    with pytest.raises(ValueError):
        parse_pair("erp:1")
    assert parse_pair(" webshop:7 | erp:1 ") == ("erp:1", "webshop:7")


def test_review_list_evidence_adds_up_to_the_weight_shown(sqlite_store: Store, tmp_path) -> None:
    """`hub review list` shows each pair's match weight and its evidence: the prior of the pair's sources and
    every field's level and weight. They add up (the engine's explanation, stored with the prior)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from hub.golden.synthetic import stage_records, synthetic_records

    store = sqlite_store
    stage_records(store, synthetic_records(400, seed=3))
    match_and_cluster(store, {"engine": "dedupe"})
    build_golden(store)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(match_pair)).all()
    assert rows and any(r.band == "review" for r in rows)
    for r in rows:  # stored: prior + field weights == match weight
        assert "prior" in r.explanation
        total = sum(d["weight"] for d in r.explanation.values() if isinstance(d, dict))
        assert abs(total - r.match_weight) < 0.01, (total, r.match_weight)
    hub = str(Path(sys.executable).parent / "hub")
    proc = subprocess.run([hub, "review", "list", "--limit", "20"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HUB_DATABASE_URL": str(store.engine.url)})
    assert proc.returncode == 0, proc.stderr
    shown = re.findall(r"weight ([+-][\d.]+).*?\n(?:.*\n)*?\s+evidence\s+(.*)", proc.stdout)
    assert shown, proc.stdout
    for weight, evidence in shown:
        parts = dict(re.findall(r"(\w+)=[\w ]+?\(([+-][\d.]+)\)", evidence))
        assert "prior" in parts
        # each figure is printed to 0.1: the sum may be off by half a tenth per figure
        assert abs(sum(float(v) for v in parts.values()) - float(weight)) <= 0.05 * len(parts) + 0.01


def test_the_assets_summary_counts_every_pending_pair_and_reads_the_shown_ones(sqlite_store: Store) -> None:
    """The steward_review_queue asset: the count of every undecided pair, the records of the 25 it shows only
    (reading every pending pair with both records took 66 s at a million customers)."""
    from hub.golden import pending_reviews
    from hub.stewardship import SHOWN, review_queue_summary

    surnames = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Johnson", "Roberts",
                "Walker", "Wright", "Thompson", "White", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris",
                "Lewis", "Martin", "Jackson", "Clarke", "Clark", "Turner", "Hill", "Scott", "Cooper", "Morris"]
    stage(sqlite_store, [c for i, s in enumerate(surnames) for c in (
        cust("erp", str(i), f"John {s}", phone=f"+1202555{i:04d}"),
        cust("callcenter", f"+1202555{i:04d}", f"Jim {s}", phone=f"+1202555{i:04d}"))])
    match_and_cluster(sqlite_store, EXACT)
    build_golden(sqlite_store)
    queue = review_queue(sqlite_store, limit=None)
    assert len(queue) >= len(surnames) and pending_reviews(sqlite_store) == len(queue)  # Clark / Clarke too
    stats = review_queue_summary(sqlite_store)
    assert stats.pending == len(queue) and len(stats.items) == SHOWN
    assert [i.pair for i in stats.items] == [i.pair for i in queue[:SHOWN]]  # the most uncertain first
    assert f"…and {len(queue) - SHOWN} more" in stats.markdown()
    decide(sqlite_store, queue[0].left_key, queue[0].right_key, "match", by="steward")
    assert pending_reviews(sqlite_store) == review_queue_summary(sqlite_store).pending == len(queue) - 1
