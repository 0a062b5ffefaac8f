"""Bulk behaviour: the 360 build and the push plan issue the same number of SQL statements for 40 or 400
golden customers (no per-customer queries), and a few thousand customers build quickly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from test_customer360_data import (
    AS_OF,
    customer,
    golden,
    insert_golden,
    insert_staged,
    insert_xref,
    order,
    staged_row,
)

from hub.customer360 import build_360
from hub.models import Interaction
from hub.push_plan import plan_pushes
from hub.store import Store


def _seed(store: Store, n: int) -> None:
    goldens, links, rows = [], [], []
    for i in range(n):
        gid, phone = f"G{i:09d}", f"+86138{i:08d}"
        goldens.append(golden(gid, f"客户{i}", [f"erp:{i}", f"webshop:{i}"], phones=[phone]))
        links += [(f"erp:{i}", gid), (f"webshop:{i}", gid)]
        rows.append(staged_row("customers", customer("erp", str(i), f"客户{i}", [phone])))
        rows.append(staged_row("customers", customer("webshop", str(i), f"Kehu {i}", [phone])))
        for j in range(i % 4):
            rows.append(staged_row("orders", order("webshop", f"{i}-{j}", str(i), str(100 + 37 * j),
                                                   AS_OF - timedelta(days=30 * j + i % 400),
                                                   number=f"N{i}-{j}"), f"webshop:{i}"))
        if i % 3 == 0:
            rows.append(staged_row("interactions", Interaction(source="callcenter", source_id=f"c{i}", kind="call",
                                                               phone=phone, occurred_at=datetime(2026, 10, 1))))
    insert_golden(store, goldens)
    insert_xref(store, links)
    insert_staged(store, rows)


def _statements(store: Store, fn: Callable[[], object]) -> int:
    count = 0

    def _count(*_args: object) -> None:
        nonlocal count
        count += 1

    sa.event.listen(store.engine, "before_cursor_execute", _count)
    try:
        fn()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", _count)
    return count


def test_statement_count_does_not_grow_with_customers(tmp_path: Path) -> None:
    counts = []
    for n in (40, 400):
        store = Store(f"sqlite:///{tmp_path / f'h{n}.db'}")
        _seed(store, n)
        build = _statements(store, lambda s=store: build_360(s, {}, as_of=AS_OF))
        plan = _statements(store, lambda s=store: plan_pushes(s, {"targets": ["erp", "webshop", "callcenter"]}))
        counts.append((build, plan))
        store.dispose()
    assert counts[0] == counts[1], counts


def test_a_few_thousand_customers_build(tmp_path: Path) -> None:
    # how fast is a benchmark's question (bench/); the statement count above is what keeps it scaling
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    _seed(store, 3000)
    stats = build_360(store, {}, as_of=AS_OF)
    assert stats.golden_customers == 3000 and stats.inserted == 3000
    assert stats.calls_linked == 1000 and stats.orders_linked == 750 * (0 + 1 + 2 + 3)
    assert sum(stats.value_tiers.values()) == 3000 and stats.lifecycles["prospect"] == 750
    store.dispose()
