"""Steward review queue and decisions (API level; their effect on clustering is in test_golden_ids/engine)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_golden_support import cust, stage

from hub.golden import build_golden, decide, match_and_cluster, parse_pair, review_queue
from hub.store import Store, review_decision

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
