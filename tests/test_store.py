"""The hub store on SQLite, PostgreSQL and MariaDB: migrations, landing with cursors, outbox semantics, golden
ids. The store API's own tests also run on MariaDB (the sync lock supports MySQL/MariaDB stores); the pipeline's
tests run on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.store import (
    LandingRecord,
    Store,
    as_text,
    current_revision,
    json_text,
    landing,
    payload_hash,
    push_result,
    upgrade,
)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """conftest's store_url, with MariaDB as a third backend for the store API's tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.db'}"
    return request.getfixturevalue(f"{request.param.replace('postgresql', 'postgres')}_database_url")


def _rec(sid: str, body: dict) -> LandingRecord:
    return LandingRecord(sid, body, payload_hash(body))


def _head() -> str:
    # the newest migration, whoever added it: the chain must stay linear (one head)
    from alembic.script import ScriptDirectory

    from hub.store import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_schema_is_migrated_to_head_and_reopening_is_a_no_op(store: Store) -> None:
    assert current_revision(store.engine) == _head()
    again = Store(store.url)  # opening twice must not fail or re-run migrations
    assert current_revision(again.engine) == _head()
    again.dispose()


def test_an_older_store_is_upgraded_in_place_keeping_its_data(store_url: str) -> None:
    old = Store(store_url, migrate=False)
    upgrade(old.engine, "0001")
    with old.begin() as conn:  # written as the 0001 schema stores it (today's code knows newer columns)
        conn.exec_driver_sql(
            "INSERT INTO landing (source, entity, source_id, payload, payload_hash, first_landed_at, landed_at) "
            "VALUES ('erp', 'customers', '1', '{\"x\": 1}', 'h', '2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    old.dispose()
    new = Store(store_url)  # opening runs the remaining migrations
    assert current_revision(new.engine) == _head()
    assert new.landed_ids("erp", "customers") == {"1"}
    assert "ix_outbox_target_record" in {i["name"] for i in sa.inspect(new.engine).get_indexes("push_outbox")}
    new.dispose()


def test_land_page_counts_new_changed_unchanged_and_saves_cursor_atomically(store: Store) -> None:
    counts = store.land_page("webshop", "customers", [_rec("1", {"n": "a"}), _rec("2", {"n": "b"})], {"page": 1})
    assert counts == (2, 0, 0)
    assert store.get_cursor("webshop", "customers") == {"page": 1}
    counts = store.land_page("webshop", "customers", [_rec("1", {"n": "a"}), _rec("2", {"n": "B"})], {"page": 2})
    assert counts == (0, 1, 1)
    assert store.get_cursor("webshop", "customers") == {"page": 2}
    assert store.landed_ids("webshop", "customers") == {"1", "2"}
    with store.engine.connect() as conn:
        payloads = dict(conn.execute(sa.select(landing.c.source_id, landing.c.payload)).all())
    assert payloads["2"] == {"n": "B"}


def test_land_page_rolls_back_the_cursor_with_the_page(store: Store) -> None:
    store.land_page("erp", "customers", [_rec("1", {"x": 1})], {"after": 1})
    bad = LandingRecord("2", {"x": 2}, None)  # type: ignore[arg-type]  # NOT NULL hash -> insert fails
    try:
        store.land_page("erp", "customers", [bad], {"after": 2})
    except Exception:  # noqa: BLE001
        pass
    assert store.get_cursor("erp", "customers") == {"after": 1}
    assert store.landed_ids("erp", "customers") == {"1"}


def test_unicode_payloads_round_trip(store: Store) -> None:
    body = {"name": "陳偉", "phone": "＋86 138-0013-8000", "nested": {"list": [1, "二"]}}
    store.land_page("social", "followers", [_rec("o1", body)], None)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(landing.c.payload)).scalar_one() == body


def test_land_page_writes_hub_state_as_json_text_and_payload_hash_do(store: Store) -> None:
    """hub_state's stored text and hash are json_text / payload_hash's bytes whichever encoder writes them
    (orjson where exact; json.dumps for a float orjson writes otherwise, a long integer)."""
    states = {"1": {"golden_id": "G1", "segment": None, "z": ["二", "a"]}, "2": {"score": 1e-05, "big": 2**70},
              "3": {"n": 0.5, "b": True}}
    store.land_page("erp", "customers", [LandingRecord(sid, {"i": sid}, payload_hash({"i": sid}), st)
                                         for sid, st in states.items()], None)
    d = store.engine.dialect.name
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(landing.c.source_id, as_text(landing.c.hub_state, d),
                                      landing.c.hub_state_hash)).all()
    for sid, text, h in rows:
        assert h == payload_hash(states[sid])
        if d == "sqlite":  # other backends may store JSON text their own way
            assert bytes(text).decode() == json_text(states[sid])


def test_outbox_is_diff_only_and_idempotent(store: Store) -> None:
    payload = {"golden_id": "G1", "segment": "vip"}
    assert store.enqueue_push("webshop", "customers", "17", "G1", payload)
    assert not store.enqueue_push("webshop", "customers", "17", "G1", payload)  # already pending
    [item] = store.pending_pushes("webshop")
    store.record_push_result(item.id, "error", "HTTP 503")
    [retry] = store.pending_pushes("webshop")  # an error stays pending for the next run
    assert retry.id == item.id and retry.attempts == 1
    store.record_push_result(item.id, "ok")
    assert store.pending_pushes("webshop") == []
    assert not store.enqueue_push("webshop", "customers", "17", "G1", payload)  # target holds it already
    assert store.enqueue_push("webshop", "customers", "17", "G1", {**payload, "segment": "loyal"})
    with store.engine.connect() as conn:
        log = conn.execute(sa.select(push_result.c.status).order_by(push_result.c.id)).scalars().all()
    assert log == ["error", "ok"]


def test_newer_desired_state_supersedes_a_pending_one(store: Store) -> None:
    store.enqueue_push("erp", "customers", "5", "G5", {"golden_id": "G5", "segment": "new"})
    store.enqueue_push("erp", "customers", "5", "G5", {"golden_id": "G5", "segment": "active"})
    [item] = store.pending_pushes("erp")
    assert item.payload["segment"] == "active"


def test_golden_ids_are_never_reused(store: Store) -> None:
    with store.begin() as conn:
        first = store.mint_golden_ids(conn, 3)
    with store.begin() as conn:
        second = store.mint_golden_ids(conn, 2)
    assert len(set(first + second)) == 5
    assert first[0] == "G000000001" and second[0] == "G000000004"


def test_a_rejected_payload_is_not_offered_again_until_it_changes(store: Store) -> None:
    payload = {"golden_id": "G9"}
    store.enqueue_push("webshop", "customers", "guest-1", "G9", payload)
    [item] = store.pending_pushes("webshop")
    store.record_push_result(item.id, "rejected", "not a customer id")
    assert not store.enqueue_push("webshop", "customers", "guest-1", "G9", payload)
    assert store.enqueue_push("webshop", "customers", "guest-1", "G9", {"golden_id": "G10"})


def test_a_successful_create_does_not_claim_the_empty_target_id(store: Store) -> None:
    store.enqueue_push("erp", "customers", "", "G1", {"create": {"name": "A"}})
    [item] = store.pending_pushes("erp")
    store.record_push_result(item.id, "ok")
    assert store.enqueue_push("erp", "customers", "", "G2", {"create": {"name": "B"}})


def test_migrations_create_exactly_the_schema_the_code_declares(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.store import metadata

    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_the_schema_does_not_depend_on_dagster_being_imported(store_url: str) -> None:
    """Dagster's storage module compiles every Float and DateTime on MySQL its own way when imported (a `hub sync`
    imports it, a `hub import` may not): a store migrated with it loaded has the schema the code declares too,
    and keeps money and probabilities in doubles."""
    import dagster._core.storage.sql  # noqa: F401 - its @compiles hooks are the point
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.store import customer_360_rank, metadata

    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            if store.dialect == "mysql":
                kind = conn.execute(sa.text(
                    "SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND table_name = :t AND column_name = 'monetary'"), {"t": customer_360_rank.name}).scalar()
                assert kind == "double"
    finally:
        store.dispose()


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_outbox_rows_are_claimed_once_and_only_dead_claims_are_taken_over(store: Store) -> None:
    import socket
    from datetime import UTC, datetime, timedelta

    from hub.store import claim_token, push_outbox

    store.enqueue_pushes("shop", "customers", [(str(i), f"G{i}", {"golden_id": f"G{i}"}) for i in range(10)])
    a, b = claim_token(), claim_token()
    first, second = store.claim_pushes("shop", a, 4), store.claim_pushes("shop", b, 4)
    assert len(first) == len(second) == 4 and not {i.id for i in first} & {i.id for i in second}
    assert store.take_over_in_doubt("shop", b) == []  # a is alive (this process): its claims stand
    assert store.record_push_results([(first[0].id, "ok", None)], token=b) == 0  # not b's row
    assert store.record_push_results([(first[0].id, "ok", None)], token=a) == 1

    host = socket.gethostname()
    dead = f"{host}:{_dead_pid()}:0"
    elsewhere = "other-host:1:0"
    with store.begin() as conn:
        conn.execute(push_outbox.update().where(push_outbox.c.id == first[1].id).values(claimed_by=dead))
        conn.execute(push_outbox.update().where(push_outbox.c.id == first[2].id).values(claimed_by=elsewhere))
    assert [i.id for i in store.take_over_in_doubt("shop", b)] == [first[1].id]  # the dead process's row
    with store.begin() as conn:  # the other host's claim is taken over once its lease ran out
        conn.execute(push_outbox.update().where(push_outbox.c.id == first[2].id)
                     .values(claimed_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)))
    assert [i.id for i in store.take_over_in_doubt("shop", b)] == [first[2].id]
    rest = store.claim_pushes("shop", b, 100)
    assert len(rest) == 2 and store.claim_pushes("shop", a, 100) == []
    # an error keeps the row for the next run, not for another try by the same pusher
    store.record_push_results([(rest[0].id, "error", "timeout")], token=b)
    assert store.claim_pushes("shop", b, 100) == [] and len(store.claim_pushes("shop", a, 100)) == 1


def test_a_mysql_store_made_with_whole_second_times_and_floats_is_widened(mariadb_database_url: str) -> None:
    """A MySQL/MariaDB store created before DateTime compiled to DATETIME(6) (and Float to DOUBLE) is widened in
    place by migration 0014: its outbox claims come back (a claim is read by its exact claim time) and its
    doubles keep their precision; rows written before survive."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.store import alembic_config, claim_token, metadata

    url = mariadb_database_url
    old = Store(url)
    command.downgrade(alembic_config(old.engine), "0014")  # the migrations after 0014 were not written then
    narrowed = []
    with old.begin() as conn:
        columns = conn.execute(sa.text(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND data_type IN ('datetime', 'double')")).all()
        assert columns
        for table, column, kind, nullable in columns:  # as a store migrated before the change has them
            narrower = "DATETIME" if kind == "datetime" else "FLOAT"
            conn.exec_driver_sql(f"ALTER TABLE `{table}` MODIFY `{column}` {narrower} "
                                 f"{'NULL' if nullable == 'YES' else 'NOT NULL'}")
            narrowed.append((table, column))
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0013'")
    old.enqueue_pushes("shop", "customers", [("1", "G1", {"golden_id": "G1"})])
    assert old.claim_pushes("shop", claim_token(), 10) == []  # the bug: a whole-second claim time never matches
    old.dispose()

    store = Store(url)  # opening runs 0014
    try:
        assert current_revision(store.engine) == _head()
        with store.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            left = conn.execute(sa.text(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND ((data_type = 'datetime' AND datetime_precision < 6) OR data_type = 'float')")).scalar()
        assert left == 0 and len(narrowed) > 10
        with store.begin() as conn:  # the claim that came back empty is let go (as a dead pusher's would be)
            conn.exec_driver_sql("UPDATE push_outbox SET status = 'pending', claimed_by = NULL, claimed_at = NULL")
        claimed = store.claim_pushes("shop", claim_token(), 10)
        assert [c.golden_id for c in claimed] == ["G1"]
    finally:
        store.dispose()


def test_a_claim_on_sqlite_walks_only_the_waiting_rows_in_id_order(tmp_path: Path) -> None:
    """Claiming a batch reads the waiting rows of the target through its (target, status) index, already in id
    order: the OR form walked every row of the target (sent ones too) and sorted the waiting ones per claim,
    so a push of N rows cost N²/batch. The claims still take error rows of other pushers in id order."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.enqueue_pushes("shop", "customers", [(str(i), f"G{i:09d}", {"segment": "vip", "n": i}) for i in range(300)])
    plans: list[str] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def _plan(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if statement.startswith("UPDATE push_outbox") and "IN (SELECT" in statement and not executemany:
            plans.extend(r[-1] for r in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))

    first = store.claim_pushes("shop", "run-a", 100)
    store.record_push_results([(first[0].id, "error", "timeout")], token="run-a")
    store.record_push_results([(it.id, "ok", None) for it in first[1:]], token="run-a")
    second = store.claim_pushes("shop", "run-b", 100)
    assert [it.target_id for it in first] == [str(i) for i in range(100)]
    # run-b retries run-a's error row first (lowest id), then the next pending rows
    assert [it.target_id for it in second] == ["0", *(str(i) for i in range(100, 199))]
    assert plans and not any("TEMP B-TREE" in p or p.startswith("SCAN") for p in plans), plans
    assert any("ix_outbox_pending" in p for p in plans), plans


def test_holdings_give_the_last_payload_pushed_ok_to_each_record(store: Store) -> None:
    """What a pusher's batch is diffed against: per target record the last row pushed ok (later error and
    pending rows do not count), of the batch's entity only."""
    store.enqueue_pushes("shop", "customers", [("1", "G1", {"tier": "a"}), ("2", "G2", {"tier": "a"})])
    store.enqueue_pushes("shop", "followers", [("1", "G9", {"tag": "x"})])
    first = store.claim_pushes("shop", "run-a", 10)
    store.record_push_results([(it.id, "ok", None) for it in first], token="run-a")
    store.enqueue_pushes("shop", "customers", [("1", "G1", {"tier": "b"}), ("2", "G2", {"tier": "b"})])
    second = store.claim_pushes("shop", "run-b", 10)
    by_id = {it.target_id: it.id for it in second}
    store.record_push_results([(by_id["1"], "ok", None), (by_id["2"], "error", "timeout")], token="run-b")
    store.enqueue_pushes("shop", "customers", [("1", "G1", {"tier": "c"})])  # pending: not held yet
    _, last = store.holdings("shop", "shop", ["1", "2", "3"], {"customers"})
    assert last == {"1": ("G1", {"tier": "b"}), "2": ("G2", {"tier": "a"})}
    _, followers = store.holdings("shop", "shop", ["1"], {"followers"})
    assert followers == {"1": ("G9", {"tag": "x"})}


def test_holdings_search_a_batchs_records_by_target_entity_and_id(tmp_path: Path) -> None:
    """A batch's records are searched through ix_outbox_target_record: with the status in the query SQLite
    searched (target, status) and read every row pushed ok to the target per batch (a first sync's pushes
    grew with the square of the rows; 1M people: half the call center push's samples)."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    store.enqueue_pushes("shop", "customers", [(str(i), f"G{i:09d}", {"n": i}) for i in range(50)])
    store.record_push_results([(it.id, "ok", None) for it in store.claim_pushes("shop", "run-a", 50)],
                              token="run-a")
    plans: list[str] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def _plan(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if statement.startswith("SELECT") and "FROM push_outbox" in statement:
            plans.extend(r[-1] for r in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters))

    _, last = store.holdings("shop", "shop", ["3", "7"], {"customers"})
    assert set(last) == {"3", "7"}
    assert plans and all("ix_outbox_target_record (target=? AND entity=? AND target_id=?)" in p for p in plans), plans
    store.dispose()


def test_a_postgresql_claim_steps_over_rows_another_claimer_holds(postgres_database_url: str) -> None:
    """On PostgreSQL a claimer takes the next waiting rows while another transaction holds the first ones: the
    walks of ix_outbox_pending skip locked rows as they go (a claim that locked after the walk found only the
    other claimer's rows, skipped them all and claimed nothing while rows waited). Order and the retry of
    another pusher's error rows are as on SQLite."""
    from hub.store import push_outbox

    store = Store(postgres_database_url)
    try:
        store.enqueue_pushes("shop", "customers", [(str(i), f"G{i:09d}", {"n": i}) for i in range(300)])
        first = store.claim_pushes("shop", "run-a", 100)
        store.record_push_results([(first[0].id, "error", "timeout")], token="run-a")
        store.record_push_results([(it.id, "ok", None) for it in first[1:]], token="run-a")
        with store.engine.connect() as other:  # another claimer, mid-transaction, holding the next 50 rows
            held = other.execute(
                sa.select(push_outbox.c.id).where(push_outbox.c.status == "pending")
                .order_by(push_outbox.c.id).limit(50).with_for_update()
            ).scalars().all()
            second = store.claim_pushes("shop", "run-b", 100)
            other.rollback()
        third = store.claim_pushes("shop", "run-c", 100)
        assert [it.target_id for it in first] == [str(i) for i in range(100)]
        assert len(held) == 50 and not {it.id for it in second} & set(held)
        # run-b: run-a's error row first, then the waiting rows after the held ones
        assert [it.target_id for it in second] == ["0", *(str(i) for i in range(150, 249))]
        assert [it.target_id for it in third] == [*(str(i) for i in range(100, 150)), *map(str, range(249, 299))]
    finally:
        store.dispose()


def test_chunks_of_golden_ids_are_found_through_golden_id_indexes(tmp_path: Path) -> None:
    """"valid_to IS NULL AND golden_id IN / BETWEEN" (the golden build, the 360 build's chunks, the brake) search
    ix_xref_golden: ix_xref_valid_to holds closed links only (migration 0018). Holding the open ones too, it made
    SQLite read every open link per chunk of golden ids (the 360 build at 1M people: 1,500+ s). The "closed since
    a mark" queries it serves still use it."""
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        with store.engine.connect() as conn:
            def plan(sql: str) -> str:
                return " | ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))

            assert "ix_xref_golden" in plan(
                "SELECT record_key FROM xref WHERE valid_to IS NULL AND golden_id IN ('G1', 'G2', 'G3')")
            assert "ix_xref_golden" in plan(
                "SELECT record_key FROM xref WHERE valid_to IS NULL AND golden_id >= 'G1' AND golden_id <= 'G2'")
            since = plan("SELECT record_key FROM xref WHERE valid_from > '2026-01-01' OR valid_to > '2026-01-01'")
            assert "ix_xref_valid_to" in since and "ix_xref_valid_from" in since, since
            # the 360 build's chunks (migration 0019): by golden id, not every active golden / every link
            chunk = plan("SELECT golden_id, record FROM golden_customer WHERE status = 'active' "
                         "AND golden_id >= 'G1' AND golden_id <= 'G2'")
            assert "(status=? AND golden_id>? AND golden_id<?)" in chunk, chunk
            for where in ("l.golden_id >= 'G1' AND l.golden_id <= 'G2'", "l.golden_id IN ('G1', 'G2')"):
                links = plan("SELECT l.golden_id, s.record FROM customer_360_link l JOIN staged_record s ON "
                             f"s.entity = l.entity AND s.record_key = l.record_key WHERE l.entity = 'orders' AND {where}")
                assert "ix_customer_360_link_entity_golden (entity=? AND golden_id" in links, links
    finally:
        store.dispose()


def test_sqlite_connections_write_ahead_with_a_page_cache(tmp_path: Path) -> None:
    """Every connection of a SQLite store: WAL (the UI and exports read while a run writes), synchronous NORMAL
    and the store's page cache (the default 2 MB re-read and re-spilled pages of big tables row by row)."""
    from hub.store import SQLITE_CACHE_KIB

    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        for _ in range(2):  # a pooled connection and a second one opened beside it
            with store.engine.connect() as conn, store.engine.connect() as other:
                for c in (conn, other):
                    assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                    assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                    assert c.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
    finally:
        store.dispose()


def test_a_new_sqlite_store_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    """A new SQLite store is made with the store's page size (a golden customer's ~2.5 KB row filled a 4 KB
    page alone); a store made with SQLite's default pages keeps them (only VACUUM changes a page size) and is
    upgraded and written as before."""
    import sqlite3

    from hub.store import SQLITE_PAGE_SIZE

    new = Store(f"sqlite:///{tmp_path / 'new.db'}")
    old_path = tmp_path / "old.db"
    raw = sqlite3.connect(old_path)
    raw.execute("PRAGMA page_size=4096")
    raw.execute("CREATE TABLE made_before (x INTEGER)")  # a file written before the store opens it
    raw.commit()
    raw.close()
    old = Store(f"sqlite:///{old_path}")
    try:
        for store, size in ((new, SQLITE_PAGE_SIZE), (old, 4096)):
            store.land_page("crm", "customers", [_rec("1", {"name": "x"})], None)
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA page_size").scalar() == size
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.execute(sa.select(sa.func.count()).select_from(landing)).scalar_one() == 1
        assert SQLITE_PAGE_SIZE == 16_384
    finally:
        new.dispose()
        old.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_statistics_are_refreshed_after_a_bulk_pull(backend: str, request: pytest.FixtureRequest, tmp_path: Path
                                                    ) -> None:
    """A pull that landed many rows leaves PostgreSQL with the landing table's statistics (autovacuum may be
    off or behind: without them the page lookups scanned a whole source); on SQLite nothing is needed."""
    from hub.connectors.base import run_pull
    from hub.store import ANALYZE_AFTER_ROWS

    url = (f"sqlite:///{tmp_path / 'hub.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_database_url"))
    store = Store(url)

    class Bulk:  # a source handing over one page of many records
        system = "shop"
        entities = ("customers",)

        def pages(self, entity: str, cursor: dict | None) -> Any:
            from hub.connectors.base import Page, landing_record

            yield Page([landing_record(str(i), {"id": i}) for i in range(ANALYZE_AFTER_ROWS + 10)], {"done": True})

    try:
        stats = run_pull(Bulk(), store, "customers")
        assert stats.new == ANALYZE_AFTER_ROWS + 10
        if backend == "postgresql":
            with store.engine.connect() as conn:
                analyzed = conn.exec_driver_sql(
                    "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'landing'").scalar()
            assert analyzed is not None
    finally:
        store.dispose()


def test_statistics_are_refreshed_for_the_tables_a_stage_changed_much(postgres_database_url: str) -> None:
    """After a stage, PostgreSQL analyzes the tables changed by many rows since their last analysis (what
    autovacuum would do, were it on and in time), and leaves the others alone."""
    import time
    from datetime import datetime

    from hub.store import ANALYZE_AFTER_ROWS, quarantine, sync_state

    store = Store(postgres_database_url)
    try:
        with store.begin() as conn:
            conn.execute(quarantine.insert(), [
                {"source": "shop", "entity": "customers", "source_id": str(i), "reasons": ["x"], "detail": None,
                 "payload": {}, "payload_hash": "h", "quarantined_at": datetime(2026, 1, 1)}
                for i in range(ANALYZE_AFTER_ROWS + 100)])
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")

        def last(table: str) -> Any:
            with store.engine.connect() as conn:
                return conn.exec_driver_sql("SELECT n_mod_since_analyze, last_analyze FROM pg_stat_user_tables "
                                            f"WHERE relname = '{table}'").one()

        for _ in range(50):  # the statistics collector reports the inserts within a second or so
            if last("quarantine")[0] >= ANALYZE_AFTER_ROWS:
                break
            time.sleep(0.1)
        store.refresh_statistics()
        assert last("quarantine")[1] is not None
        assert last(sync_state.name)[1] is None  # barely changed: not analyzed
    finally:
        store.dispose()


def test_a_bulk_load_autovacuum_will_not_vacuum_is_vacuumed_and_a_table_of_dead_rows_only_analyzed(
        postgres_database_url: str) -> None:
    """With autovacuum off for a table, a stage's bulk load into it is vacuumed when the stage is done (its pages
    marked all-visible: counts read the index, not the rows); a table whose rows the stage also updated (dead
    rows everywhere) is analyzed, not vacuumed (removing them walks every index: the operator's vacuum)."""
    import time
    from datetime import datetime

    from hub.store import ANALYZE_AFTER_ROWS, quarantine, staged_record

    def staged(a: int, b: int) -> list[dict]:
        return [{"record_key": f"shop:{i}", "source": "shop", "entity": "customers", "source_id": str(i),
                 "record": {"n": i}, "quality_flags": [], "record_hash": "h", "staged_at": datetime(2026, 1, 1)}
                for i in range(a, b)]

    store = Store(postgres_database_url)

    def state(table: str) -> Any:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT n_ins_since_vacuum, n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables "
                f"WHERE relname = '{table}'").one()

    def settled(ok: Any) -> None:
        for _ in range(50):  # the statistics collector reports the writes within a second or so
            if ok():
                return
            time.sleep(0.1)

    try:
        n = ANALYZE_AFTER_ROWS + 100
        with store.begin() as conn:
            for table in (quarantine, staged_record):  # off for these tables, whatever the server's setting
                conn.exec_driver_sql(f"ALTER TABLE {table.name} SET (autovacuum_enabled = false)")
            conn.execute(quarantine.insert(), [
                {"source": "shop", "entity": "customers", "source_id": str(i), "reasons": ["x"], "detail": None,
                 "payload": {}, "payload_hash": "h", "quarantined_at": datetime(2026, 1, 1)} for i in range(n)])
            conn.execute(staged_record.insert(), staged(0, n))
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        settled(lambda: state("quarantine")[0] >= n and state("staged_record")[0] >= n)
        store.refresh_statistics(staged_record)  # a load: vacuumed
        first = state("staged_record")[2]
        assert first is not None
        with store.begin() as conn:  # a second load, and every earlier row updated: as many dead rows
            conn.execute(staged_record.update().values(record_hash="h2"))
            conn.execute(staged_record.insert(), staged(n, 2 * n))
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
        settled(lambda: state("staged_record")[1] >= n and state("staged_record")[0] >= n)
        store.refresh_statistics(quarantine, staged_record)
        q, s = state("quarantine"), state("staged_record")
        assert q[2] is not None and q[3] is not None  # the load: vacuumed and analyzed
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT relallvisible >= relpages AND relpages > 0 FROM pg_class WHERE relname = 'quarantine'"
            ).scalar()
        assert s[2] == first and s[3] is not None  # dead rows: analyzed, not vacuumed again
    finally:
        store.dispose()


def test_interaction_links_of_an_older_store_get_their_kind_on_upgrade(store_url: str) -> None:
    """Migration 0024 gives the persisted 360 links of interactions the kind of their staged record (the build
    counts linked calls and social events from the links); orders keep an empty kind."""
    from alembic import command

    from hub.customer360 import C360Stats, _link_stats
    from hub.store import alembic_config, customer_360_link, staged_record

    old = Store(store_url)
    command.downgrade(alembic_config(old.engine), "0023")
    staged = [("interactions", "cc:1", {"kind": "call", "phone": "+8613800138000"}),
              ("interactions", "wx:2", {"kind": "social_follow"}), ("orders", "shop:3", {"total": "1"})]
    with old.begin() as conn:
        for entity, rk, rec in staged:
            conn.execute(staged_record.insert().values(
                entity=entity, record_key=rk, source=rk.split(":")[0], source_id=rk.split(":")[1], record=rec,
                quality_flags=[], record_hash=payload_hash(rec), staged_at=sa.func.now()))
        # as the 0023 schema holds links (no kind column): a call linked to two golden customers
        for entity, rk, gid in [("interactions", "cc:1", "G1"), ("interactions", "cc:1", "G2"),
                                ("interactions", "wx:2", "G1"), ("orders", "shop:3", "G1")]:
            conn.execute(sa.text("INSERT INTO customer_360_link (entity, record_key, golden_id) "
                                 "VALUES (:e, :k, :g)"), {"e": entity, "k": rk, "g": gid})
    old.dispose()
    new = Store(store_url)  # opening runs 0024
    try:
        assert current_revision(new.engine) == _head()
        lk = customer_360_link.c
        with new.engine.connect() as conn:
            kinds = sorted(tuple(r) for r in conn.execute(sa.select(lk.record_key, lk.golden_id, lk.kind)))
            stats = C360Stats()
            _link_stats(conn, stats)
        assert kinds == [("cc:1", "G1", "call"), ("cc:1", "G2", "call"), ("shop:3", "G1", ""),
                         ("wx:2", "G1", "social_follow")]
        assert (stats.calls_linked, stats.social_linked, stats.orders_linked) == (1, 1, 1)
    finally:
        new.dispose()


def test_json_paths_read_the_same_values_on_every_backend(store_url: str) -> None:
    """JsonPaths reads a JSON column's paths in SQL, or on PostgreSQL from the text decoded once: the same
    values either way (strings and numbers as ``as_string`` gives them, integers, JSON values, nested and
    missing keys, null)."""
    from hub.store import JsonPaths, golden_customer

    store = Store(store_url)
    records = {"G1": {"name": "陈伟", "n": 3, "p": {"phones": ["+8613800138000"], "x": None},
                      "consent": {"email": "yes"}},
               "G2": {"name": None, "p": {}}}
    paths = [("name", "string"), ("n", "integer"), ("n", "string"),
             (("p", "phones"), "json"), (("p", "x"), "string"), (("p", "missing"), "json"), ("consent", "json"),
             ("missing", "string")]
    try:
        with store.begin() as conn:
            for gid, rec in records.items():
                conn.execute(golden_customer.insert().values(
                    golden_id=gid, status="active", record=rec, record_hash=payload_hash(rec),
                    created_at=sa.func.now(), updated_at=sa.func.now()))
        with store.engine.connect() as conn:
            fields = JsonPaths(golden_customer.c.record, paths, conn.dialect.name)
            # the document (PostgreSQL) or every path in one array (SQLite) in one column; MariaDB a column a path
            assert len(fields.columns) == (len(paths) if conn.dialect.name == "mysql" else 1)
            got = {gid: fields.values(values) for gid, *values in conn.execute(
                sa.select(golden_customer.c.golden_id, *fields.columns))}
        assert got["G1"] == ["陈伟", 3, "3", ["+8613800138000"], None, None, {"email": "yes"}, None]
        assert got["G2"] == [None] * len(paths)
    finally:
        store.dispose()


def _analyzed_tables(store: Store) -> list[str]:
    """The tables ``store`` asks PostgreSQL to ANALYZE from now on, in order (a list that grows)."""
    analyzed: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(("ANALYZE ", "VACUUM (ANALYZE) ")):  # a load autovacuum will not vacuum: both
            analyzed.append(statement.split('"')[1])

    sa.event.listen(store.engine, "before_cursor_execute", count)
    return analyzed


def test_the_store_keeps_postgresql_statistics_of_the_tables_its_bulk_writes_fill(
        postgres_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Landing pages, queued pushes, push states and results fill their tables from empty in a first sync,
    and the same run looks rows up in them: PostgreSQL analyzes each as it grows (whenever the rows written
    since its last analysis reach those it held then), or it plans those lookups for an empty table."""
    import hub.store
    from hub.store import claim_token

    monkeypatch.setattr(hub.store, "ANALYZE_AFTER_ROWS", 20)
    store = Store(postgres_database_url)
    analyzed = _analyzed_tables(store)

    try:
        for page in range(16):  # 400 records in pages of 25
            store.land_page("shop", "customers", [_rec(str(page * 25 + i), {"n": page * 25 + i})
                                                  for i in range(25)], {"page": page})
        for page in range(16):
            store.enqueue_pushes("shop", "customers", [(str(page * 25 + i), f"G{i}", {"n": page * 25 + i})
                                                       for i in range(25)])
        token = claim_token()
        while batch := store.claim_pushes("shop", token, 25):
            store.record_push_results([(item.id, "ok", None) for item in batch], token=token)
        # from empty: after 25 rows, then at 50, 100, 200 and 400
        for table in ("landing", "push_outbox", "push_state", "push_result"):
            assert analyzed.count(table) == 5, (table, analyzed)
    finally:
        store.dispose()


def test_bulk_inserts_store_the_same_values_through_copy_on_postgresql(postgres_database_url: str) -> None:
    """insert_rows sends PostgreSQL a COPY from 100 rows on: awkward text (tabs, newlines, backslashes, quotes,
    CJK, astral characters), NULLs, JSON text, floats, integers and times come back as the rows an INSERT of a
    few rows stores; a value COPY's writer does not know (an aware time) sends its rows as INSERTs."""
    from datetime import UTC, datetime, timedelta

    from hub.store import insert_rows, json_text, match_pair, staged_record

    store = Store(postgres_database_url)
    at = datetime(2026, 12, 5, 13, 0, 0, 123456)
    names = ("entity", "record_key", "source", "source_id", "customer_key", "record", "quality_flags",
             "record_hash", "staged_at")
    awkward = ['陈伟\t"Chen"\nWEI', "back\\slash \\N", "\r\n😀", "", "\\t literal"]

    def staged(prefix: str, n: int) -> list[tuple]:
        return [("customers", f"{prefix}{i}", "shop", f"{prefix}{i}", None if i % 2 else awkward[i % 5],
                 json_text({"name": awkward[i % 5], "n": i, "x": None}), "[]", awkward[i % 5],
                 at + timedelta(microseconds=i)) for i in range(n)]

    pairs = [(f"a{i}", f"b{i}", -12.5 + i / 3, 1 / (i + 3), "review", json_text({"f": {"w": 0.1 * i}}), at)
             for i in range(150)]
    try:
        with store.begin() as conn:
            insert_rows(conn, staged_record, names, staged("copy:", 150))  # COPY
            for part in range(0, 150, 50):  # INSERTs: below COPY_MIN_ROWS
                insert_rows(conn, staged_record, names, staged("insert:", 150)[part:part + 50])
            insert_rows(conn, match_pair, ("left_key", "right_key", "match_weight", "match_probability", "band",
                                           "explanation", "scored_at"), pairs)
            aware = [(e, "aware:" + k, s, sid, ck, rec, q, h, t.replace(tzinfo=UTC))
                     for e, k, s, sid, ck, rec, q, h, t in staged("", 120)]
            insert_rows(conn, staged_record, names, aware)  # not for COPY: INSERTs
        with store.engine.connect() as conn:
            got = {r.record_key: tuple(r)[2:] for r in conn.execute(sa.select(staged_record))}
            stored_pairs = [tuple(r) for r in conn.execute(sa.select(match_pair).order_by(match_pair.c.left_key))]
        assert len(got) == 420
        for i in range(150):
            assert got[f"copy:{i}"] == got[f"insert:{i}"][:1] + (f"copy:{i}",) + got[f"insert:{i}"][2:]
        # (source, source_id, customer_key, record, quality_flags, record_hash, staged_at)
        assert got["copy:7"][2] is None and got["copy:8"][2] == "" and got["copy:0"][5] == awkward[0]
        assert got["copy:1"][3]["name"] == awkward[1] and got["copy:1"][6] == at + timedelta(microseconds=1)
        assert got["aware:3"][6] == at + timedelta(microseconds=3)
        assert [(p[0], p[2], p[3], p[5]) for p in stored_pairs] == sorted(
            (p[0], p[2], p[3], {"f": {"w": 0.1 * int(p[0][1:])}}) for p in pairs)
    finally:
        store.dispose()


def test_what_a_push_wrote_is_noted_on_the_landing_records_it_tracks(store: Store) -> None:
    """record_push_results(held=, held_source=) puts each ok row's held view and its hash onto the source's
    landing record of that id (a writable entity, tracked: with a hub_state_hash); other records keep theirs.
    Many rows at once, as a push batch records them (on PostgreSQL one UPDATE ... FROM VALUES per page)."""
    from hub.store import claim_token

    old = {"golden_id": "G0"}
    records = [LandingRecord(str(i), {"i": i}, payload_hash({"i": i}), None if i == 3 else old) for i in range(40)]
    store.land_page("shop", "customers", records, None)
    store.land_page("shop", "orders", [LandingRecord("5", {"o": 5}, payload_hash({"o": 5}), old)], None)
    store.enqueue_pushes("shop", "customers", [(str(i), f"G{i}", {"golden_id": f"G{i}", "n": "陈伟's"})
                                               for i in range(30)])
    token = claim_token()
    batch = store.claim_pushes("shop", token, 100)
    held = {item.id: {**item.payload, "held": True} for item in batch}
    store.record_push_results([(item.id, "rejected" if item.target_id == "7" else "ok", None) for item in batch],
                              token=token, held=held, held_source="shop")
    with store.engine.connect() as conn:
        got = {(e, sid): (state, h) for e, sid, state, h in conn.execute(
            sa.select(landing.c.entity, landing.c.source_id, landing.c.hub_state, landing.c.hub_state_hash))}
    for i in range(40):
        state, h = got[("customers", str(i))]
        if i < 30 and i not in (3, 7):  # pushed ok, tracked
            want = {"golden_id": f"G{i}", "n": "陈伟's", "held": True}
            assert (state, h) == (want, payload_hash(want)), i
        elif i == 3:  # not tracked: no hub_state to compare a pull with
            assert (state, h) == (None, None)
        else:  # rejected, or not pushed
            assert (state, h) == (old, payload_hash(old)), i
    assert got[("orders", "5")] == (old, payload_hash(old))


def test_a_pull_into_a_new_part_of_a_large_landing_table_is_known_to_the_postgresql_planner(
        postgres_database_url: str) -> None:
    """A first sync lands one source's entity after another: the shop's customers arrive when the table already
    holds the ERP's rows, and the statistics know the shop's part as empty. PostgreSQL analyzes the table as
    that part grows (against the rows the planner expects it to hold), so it plans each page's lookup of ids
    for the rows there are: planned for one row, the lookup walked every shop customer landed so far (at 1M
    people the shop's pull fell from 10,000 to 1,500 records/s)."""
    store = Store(postgres_database_url)

    def expected_rows(source: str) -> float:
        with store.engine.connect() as conn:
            plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) SELECT 1 FROM landing WHERE source = %(s)s "
                                        "AND entity = 'customers'", {"s": source}).scalar()
        return plan[0]["Plan"]["Plan Rows"]

    try:
        for page in range(20):  # the ERP's customers: 20,000 rows, analyzed as they came
            store.land_page("erp", "customers", [_rec(str(page * 1000 + i), {"n": i}) for i in range(1000)],
                            {"page": page})
        assert expected_rows("erp") >= 10_000
        for page in range(8):  # the shop's first 8,000: far fewer than the table held at its last analysis
            store.land_page("shop", "customers", [_rec(str(page * 1000 + i), {"n": i}) for i in range(1000)],
                            {"page": page})
        assert expected_rows("shop") >= 4_000
    finally:
        store.dispose()


def test_each_push_target_is_a_part_of_the_push_tables_whose_postgresql_statistics_are_kept(
        postgres_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pushes run one target after another: the second target's rows are new to statistics that know the
    first target's, and its lookups by (target, entity, target id) were planned for one row. PostgreSQL
    analyzes the outbox and the push states while a target's part of them grows, not only when the tables
    doubled."""
    import hub.store
    from hub.store import claim_token

    monkeypatch.setattr(hub.store, "ANALYZE_AFTER_ROWS", 20)
    store = Store(postgres_database_url)
    analyzed = _analyzed_tables(store)

    def push(target: str, n: int) -> None:
        for page in range(n // 25):
            store.enqueue_pushes(target, "customers", [(str(page * 25 + i), f"G{i}", {"n": page * 25 + i})
                                                       for i in range(25)])
        token = claim_token()
        while batch := store.claim_pushes(target, token, 25):
            store.record_push_results([(item.id, "ok", None) for item in batch], token=token)

    try:
        push("erp", 800)
        analyzed.clear()
        push("shop", 200)  # a quarter of what the tables held: the table-wide rule would wait
        for table in ("push_outbox", "push_state"):
            assert analyzed.count(table) >= 2, (table, analyzed)
    finally:
        store.dispose()
