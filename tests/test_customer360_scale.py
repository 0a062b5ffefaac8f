"""Bulk behaviour: the 360 build and the push plan issue the same number of SQL statements for 40 or 400
golden customers (no per-customer queries), and a few thousand customers build quickly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from query_plans import plan_of, statements_of
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
from hub.store import LandingRecord, Store, payload_hash


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
    return len(statements_of(store, fn, None))


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


def _views(store: Store) -> dict[str, str]:
    from hub.store import customer_360

    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record_hash)).all())


def test_incremental_360_builds_only_the_affected_and_equals_a_full_rebuild(store: Store) -> None:
    """After changes of every kind — a new order, an order moving to another customer, an order staged again
    with a new total, a retired golden id, a changed golden record, a new call, a new cross-reference, and a
    later as_of — the incremental build writes exactly what a full rebuild writes, while building only the
    customers concerned and those whose RFM rank moved."""
    from hub.store import golden_customer, staged_record, xref

    n = 300
    _seed(store, n)
    build_360(store, {}, as_of=AS_OF)
    t1, t2 = datetime(2026, 3, 1), datetime(2026, 4, 1)

    def stage(rows: list[dict], at: datetime) -> None:
        for r in rows:
            r["staged_at"] = at
        with store.begin() as conn:  # staging upserts by record key
            for r in rows:
                conn.execute(staged_record.delete().where(staged_record.c.entity == r["entity"],
                                                          staged_record.c.record_key == r["record_key"]))
        insert_staged(store, rows)

    stage([staged_row("orders", order("webshop", "x1", "5", "900", AS_OF - timedelta(days=3), number="X1"),
                      "webshop:5")], t1)
    assert build_360(store, {}, as_of=AS_OF).built < n // 3

    # the changes an incremental sync sees
    stage([staged_row("orders", order("webshop", "x2", "7", "25000", AS_OF - timedelta(days=1), number="X2"),
                      "webshop:7"),  # a big new order: customer 7 climbs the ranks, others move down
           # two customers buy for the first time: more buyers, every rank's percentile moves
           staged_row("orders", order("webshop", "x3", "16", "50", AS_OF - timedelta(days=2), number="X3"),
                      "webshop:16"),
           staged_row("orders", order("webshop", "x4", "20", "60", AS_OF - timedelta(days=3), number="X4"),
                      "webshop:20"),
           # an order moves from customer 10 to customer 12 (its customer key changed)
           staged_row("orders", order("webshop", "10-1", "12", "137", AS_OF - timedelta(days=40), number="N10-1"),
                      "webshop:12"),
           # an order staged again with another total
           staged_row("orders", order("webshop", "14-1", "14", "999", AS_OF - timedelta(days=44), number="N14-1"),
                      "webshop:14"),
           staged_row("interactions", Interaction(source="callcenter", source_id="c-new", kind="call",
                                                  phone="+8613800000020", occurred_at=datetime(2026, 10, 20)))], t2)
    with store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000011")
                     .values(status="retired", merged_into="G000000012", updated_at=t2))
        conn.execute(xref.update().where(xref.c.golden_id == "G000000011").values(valid_to=t2))
        conn.execute(xref.insert(), [{"record_key": "erp:11", "source": "erp", "source_id": "11",
                                      "golden_id": "G000000012", "valid_from": t2, "valid_to": None},
                                     {"record_key": "social:o14", "source": "social", "source_id": "o14",
                                      "golden_id": "G000000014", "valid_from": t2, "valid_to": None}])
        rec = conn.execute(sa.select(golden_customer.c.record)
                           .where(golden_customer.c.golden_id == "G000000016")).scalar_one()
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000016")
                     .values(record={**rec, "full_name": "客户16 (renamed)"}, updated_at=t2))
    later = AS_OF + timedelta(hours=5)  # the same day: recency moves only for some customers
    incremental = build_360(store, {}, as_of=later)
    assert not incremental.skipped and incremental.removed == 1
    assert incremental.built < n // 3, incremental.built
    assert incremental.built > 6  # the six changed customers and those whose RFM rank moved
    views = _views(store)
    full = build_360(store, {}, as_of=later, force=True)
    assert full.built == n - 1
    # the full rebuild finds nothing to write: the incremental build wrote the same views
    assert (full.inserted, full.updated, full.removed) == (0, 0, 0)
    assert _views(store) == views and len(views) == n - 1
    for name in ("golden_customers", "invalid", "duplicate_orders", "orders_linked", "calls_linked",
                 "value_tiers", "lifecycles", "segments"):
        assert getattr(incremental, name) == getattr(full, name), name


def _pending(store: Store) -> set[tuple]:
    from hub.store import push_outbox

    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(push_outbox.c.target, push_outbox.c.target_id, push_outbox.c.golden_id,
                                          push_outbox.c.payload_hash, push_outbox.c.cause)
                                .where(push_outbox.c.status == "pending")).all())


def test_incremental_push_plan_queues_what_a_full_plan_queues(tmp_path: Path) -> None:
    """After a sync whose pushes the targets confirmed, changes of every kind (a new order moves a customer's
    tier, a golden record's phone changes, a record moves to another golden customer, a golden id is retired,
    a new target record is linked) are planned from the changed golden customers and records only, and the
    outbox holds exactly the rows a full plan of the same store queues."""
    import shutil

    from hub.store import golden_customer, xref

    cfg = {"targets": ["erp", "webshop", "callcenter"], "erp": {"create_missing": True}}
    path = tmp_path / "hub.db"
    store = Store(f"sqlite:///{path}")
    n = 200
    _seed(store, n)
    build_360(store, {}, as_of=AS_OF)
    assert plan_pushes(store, cfg).full
    for target in ("erp", "webshop", "callcenter"):
        store.record_push_results([(i.id, "ok", None) for i in store.pending_pushes(target, limit=100_000)])
    assert not _pending(store)

    t2 = datetime(2026, 4, 1)
    order_row = staged_row("orders", order("webshop", "x2", "7", "25000", AS_OF - timedelta(days=1), number="X2"),
                           "webshop:7")
    order_row["staged_at"] = t2
    insert_staged(store, [order_row])
    with store.begin() as conn:
        rec = conn.execute(sa.select(golden_customer.c.record)
                           .where(golden_customer.c.golden_id == "G000000016")).scalar_one()
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000016").values(
            record={**rec, "phones": ["+8613900000016"], "primary_phone": "+8613900000016"}, updated_at=t2))
        conn.execute(xref.update().where(xref.c.record_key == "webshop:21").values(valid_to=t2))
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000030")
                     .values(status="retired", merged_into="G000000031", updated_at=t2))
        conn.execute(xref.update().where(xref.c.golden_id == "G000000030").values(valid_to=t2))
        conn.execute(xref.insert(), [
            {"record_key": "webshop:21", "source": "webshop", "source_id": "21", "golden_id": "G000000022",
             "valid_from": t2, "valid_to": None},
            *({"record_key": f"{s}:30", "source": s, "source_id": "30", "golden_id": "G000000031",
               "valid_from": t2, "valid_to": None} for s in ("erp", "webshop")),
            {"record_key": "erp:900", "source": "erp", "source_id": "900", "golden_id": "G000000040",
             "valid_from": t2, "valid_to": None}])
    store.land_page("erp", "customers", [LandingRecord("900", {"id": "900"}, payload_hash({"id": "900"}))], None)
    build_360(store, {}, as_of=AS_OF)
    store.dispose()
    shutil.copy(path, tmp_path / "copy.db")
    store, copy = Store(f"sqlite:///{path}"), Store(f"sqlite:///{tmp_path / 'copy.db'}")

    incremental = plan_pushes(store, cfg)
    full = plan_pushes(copy, cfg, force=True)
    assert not incremental.full and full.full
    assert incremental.golden_planned < n // 5 < full.golden_planned, incremental.golden_planned
    queued = _pending(store)
    assert queued == _pending(copy) and incremental.queued == full.queued == len(queued) > 0
    # each kind of change made it out: the tier (the ERP: the shop withholds it without e-mail consent), the directory's new and removed number, the moved record,
    # the retired id's records, the new record
    ids = {(t, tid) for t, tid, *_ in queued}
    assert {("erp", "7"), ("callcenter", "+8613900000016"), ("callcenter", "+8613800000016"),
            ("webshop", "21"), ("erp", "30"), ("erp", "900")} <= ids, ids
    store.dispose()
    copy.dispose()


def test_a_plan_in_chunks_queues_what_a_plan_in_one_chunk_queues(tmp_path: Path, monkeypatch) -> None:
    """A plan works out the desired states chunk by chunk of golden customers (memory: a million customers'
    views held at once were ~4 GB): planned in chunks of 7 golden customers, the outbox and every count come
    out as planned in one — a number shared by golden customers of different chunks is listed once, with the
    owner the whole directory would pick; records, creates and withdrawals of every chunk — in a full and
    then in an incremental plan."""
    import shutil

    import hub.push_plan
    from hub.store import golden_customer, xref

    cfg = {"targets": ["erp", "webshop", "callcenter"], "erp": {"create_missing": True}}
    path = tmp_path / "hub.db"
    store = Store(f"sqlite:///{path}")
    n = 60
    _seed(store, n)
    t1 = datetime(2026, 3, 1)
    with store.begin() as conn:
        # G…41 also holds G…3's number (chunks 0 and 5 of 7): G…3 has more orders and keeps the entry
        rec = conn.execute(sa.select(golden_customer.c.record)
                           .where(golden_customer.c.golden_id == "G000000041")).scalar_one()
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000041").values(
            record={**rec, "phones": ["+8613800000041", "+8613800000003"]}, updated_at=t1))
        # a golden customer with orders but no ERP party (a create), one of them in every few chunks
        conn.execute(xref.update().where(xref.c.source == "erp", xref.c.source_id.in_(["9", "23", "50"]))
                     .values(valid_to=t1))
    build_360(store, {}, as_of=AS_OF)
    store.dispose()
    shutil.copy(path, tmp_path / "one.db")
    chunked, one = Store(f"sqlite:///{path}"), Store(f"sqlite:///{tmp_path / 'one.db'}")

    def plan_both() -> tuple[object, object]:
        monkeypatch.setattr(hub.push_plan, "PLAN_CHUNK", 7)
        in_chunks = plan_pushes(chunked, cfg)
        monkeypatch.setattr(hub.push_plan, "PLAN_CHUNK", 1_000)
        return in_chunks, plan_pushes(one, cfg)

    in_chunks, in_one = plan_both()
    assert in_chunks.full and in_one.full and in_chunks.targets == in_one.targets
    assert (in_chunks.queued, in_chunks.golden_planned) == (in_one.queued, in_one.golden_planned)
    assert _pending(chunked) == _pending(one)
    assert in_one.targets["callcenter"].ambiguous_phones == 1 and in_one.targets["erp"].creates_queued > 0
    assert ("callcenter", "+8613800000003", "G000000003") in {row[:3] for row in _pending(one)}
    for s in (chunked, one):
        for target in ("erp", "webshop", "callcenter"):
            s.record_push_results([(i.id, "ok", None) for i in s.pending_pushes(target, limit=100_000)])

    # changes in several chunks: a record leaves (withdrawn), a golden record's number changes
    t2 = datetime(2026, 4, 1)
    for s in (chunked, one):
        with s.begin() as conn:
            conn.execute(xref.update().where(xref.c.record_key.in_(["webshop:12", "webshop:44"]))
                         .values(valid_to=t2))
            rec = conn.execute(sa.select(golden_customer.c.record)
                               .where(golden_customer.c.golden_id == "G000000030")).scalar_one()
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000030").values(
                record={**rec, "phones": ["+8613900000030"], "primary_phone": "+8613900000030"}, updated_at=t2))
        build_360(s, {}, as_of=AS_OF)
    in_chunks, in_one = plan_both()
    assert not in_chunks.full and not in_one.full and in_chunks.targets == in_one.targets
    assert (in_chunks.queued, in_chunks.golden_planned) == (in_one.queued, in_one.golden_planned)
    assert _pending(chunked) == _pending(one) and in_one.queued > 0
    assert in_one.targets["webshop"].withdrawn == 2
    chunked.dispose()
    one.dispose()


def test_guest_orders_are_counted_through_the_customer_key_index(tmp_path: Path) -> None:
    """The build's link statistics find guest orders (no customer key) through ix_staged_customer_key and
    keep the linked ones: counted from the links instead, every linked order was looked up (1M people: ~1.3M
    random reads of staged orders, minutes of the 360 stage)."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    _seed(store, 40)
    statements: list[tuple[str, object]] = []

    def seen(conn: object, cursor: object, statement: str, parameters: object, context: object, many: bool) -> None:
        if "customer_key IS NULL" in statement:
            statements.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", seen)
    try:
        stats = build_360(store, {}, as_of=AS_OF)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", seen)
    assert stats.guest_orders_linked == 0 and statements
    with store.engine.connect() as conn:
        for statement, parameters in statements:
            plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            staged = [p for p in plan if "staged_record" in p]
            assert staged and all("ix_staged_customer_key (entity=? AND customer_key=?)" in p for p in staged), plan
    store.dispose()


def test_no_build_reads_every_view(tmp_path: Path) -> None:
    """The views are the 360 build's output (4.5 GB at a million people): a build and the caller index's refresh
    read the views they rebuild, never all of them — finding the views of retired golden ids went through a DELETE
    that SQLite answered by reading every view, the caller index compared every view's record hash by reading
    the views, and the links changed since a mark were found through ix_xref_golden (a DISTINCT) instead of the
    two time indexes. Steps that read a whole index holding what they need are fine."""
    from hub.lookup.index import refresh_lookup_index

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    _seed(store, 40)
    build_360(store, {}, as_of=AS_OF)
    refresh_lookup_index(store)

    def later() -> None:
        build_360(store, {}, as_of=AS_OF + timedelta(days=1))  # a later day: everyone's recency changes
        assert refresh_lookup_index(store).mode == "incremental"

    plans = [step for statement, parameters in statements_of(store, later, ("SELECT", "DELETE", "UPDATE"))
             for step in plan_of(store, statement, parameters)]
    whole = [p for p in plans if p.startswith(("SCAN customer_360", "SCAN xref")) and "COVERING INDEX" not in p
             and not p.startswith(("SCAN customer_360_", "SCAN xref_"))]
    assert plans and not whole, whole
    store.dispose()


def test_an_incremental_plan_finds_what_was_written_for_changed_customers_by_index(tmp_path: Path) -> None:
    """An incremental push plan looks up the push states of the golden customers that changed through
    ix_push_state_golden (target, golden_id), not through every push state of the target per 500 ids."""
    from hub.store import golden_customer

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    _seed(store, 40)
    build_360(store, {}, as_of=AS_OF)
    cfg = {"targets": ["erp", "webshop", "callcenter"]}
    plan_pushes(store, cfg)
    with store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000003")
                     .values(updated_at=datetime(2030, 1, 1)))
    seen = statements_of(store, lambda: plan_pushes(store, cfg))
    reads = [(s, p) for s, p in seen if "FROM push_state" in s and "golden_id IN" in s]
    assert reads, "the plan looked up no push state by golden id (was it incremental?)"
    for statement, params in reads:
        plan = " ".join(plan_of(store, statement, params))
        assert "ix_push_state_golden" in plan, plan
    store.dispose()


def test_the_drift_check_reads_the_landed_hub_state_from_an_index(tmp_path: Path) -> None:
    """The push plan compares every push state of a target with the hub state its last pull saw: the landing
    side comes from ix_landing_held (source, entity, source_id, hub_state_hash), not from each landed row."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    seen = statements_of(store, lambda: store.drifted_records("webshop", "customers", "webshop"))
    assert len(seen) == 1
    plan = " ".join(plan_of(store, *seen[0]))
    assert "COVERING INDEX ix_landing_held" in plan, plan
    store.dispose()


def test_ids_of_no_active_customer_are_found_without_a_scan_per_id(store: Store) -> None:
    """The 360 build finds the views and ranking rows of golden ids that are no longer active. On PostgreSQL a
    NOT IN (SELECT active ids) runs as a plain subplan — a scan of every active id per row — once the ids
    outgrow work_mem (300k people: a build stuck for minutes): there it asks with an anti join. On SQLite the
    NOT IN lists the active ids once (its NOT EXISTS would read each golden row)."""
    from hub.store import golden_customer

    _seed(store, 3000)
    build_360(store, {}, as_of=AS_OF)
    with store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000005")
                     .values(status="retired", merged_into="G000000006", updated_at=datetime(2030, 1, 1)))
    seen = statements_of(store, lambda: build_360(store, {}, as_of=AS_OF), kinds=("SELECT", "DELETE"))
    # the statements over views or ranking rows that test their golden id against the active ones
    asks = [(s, p) for s, p in seen if "golden_customer.status" in s and "NOT" in s
            and "golden_customer" not in s.split("WHERE")[0]]
    assert len(asks) >= 2, "the build never asked for ids that are not active"
    # and the caller directory's numbers no active golden customer holds (a full plan's: an incremental one
    # looks its few numbers up)
    cfg = {"targets": ["callcenter"]}
    held = [(s, p) for s, p in statements_of(store, lambda: plan_pushes(store, cfg))
            if "FROM push_state" in s and "customer_360_phone" in s]
    assert len(held) == 1
    asks += held
    if store.engine.dialect.name == "sqlite":  # the active ids listed once, never a golden row read per id
        for statement, params in asks:
            plan = " | ".join(plan_of(store, statement, params))
            assert "LIST SUBQUERY" in plan and "CORRELATED" not in plan, plan
    else:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("SET work_mem = '64kB'")  # 3,000 ids outgrow it, as 370k outgrow the default
            for statement, params in asks:
                plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement}", params))
                assert "NOT (SubPlan" not in plan and "Anti Join" in plan, plan
    assert "G000000005" not in _views(store)


def test_a_pulled_page_looks_its_records_up_in_an_index(tmp_path: Path) -> None:
    """Landing a page reads the payload and hub-state hashes of its records from ix_landing_held, not from the
    landed rows (payloads of kilobytes each, read for two hashes)."""
    from hub.connectors.base import landing_record

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    page = [landing_record(i, {"id": i, "name": f"N{i}"}, None, {"hub_golden_id": None}) for i in range(20)]
    store.land_page("webshop", "customers", page, {"page": 2})
    seen = [(s, p) for s, p in statements_of(store, lambda: store.land_page("webshop", "customers", page, {"page": 2}))
            if "FROM landing" in s]
    assert len(seen) == 1
    plan = " ".join(plan_of(store, *seen[0]))
    assert "COVERING INDEX ix_landing_held" in plan, plan
    store.dispose()


def test_an_incremental_drift_check_reads_what_changed_since_through_indexes(tmp_path: Path) -> None:
    """Since the last plan: the landing records a pull saw change (ix_landing_held_at), the push states written
    (ix_push_state_pushed), the outbox rows waiting or refused (ix_outbox_pending); then only those records are
    compared (ix_landing_held by key). No statement scans landing or push_state."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    at = datetime(2026, 1, 1)
    seen = statements_of(store, lambda: store.drifted_records("webshop", "customers", "webshop", since=(at, at)))
    plans = [" ".join(plan_of(store, *s)) for s in seen]
    assert any("ix_landing_held_at" in p for p in plans), plans
    assert any("ix_push_state_pushed" in p for p in plans), plans
    assert any("ix_outbox_pending" in p for p in plans), plans
    for p in plans:
        assert "SCAN landing" not in p and "SCAN push_state" not in p, p
    store.dispose()
