"""SqlErpConnector on the sandbox ERP schema, on SQLite, PostgreSQL and MariaDB (scratch database per test):
incremental pulls incl. child-only changes and late commits inside the overlap window, kill/resume, push of
golden id + segments with echo suppression."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_connectors_base import DieAfter  # shared kill-between-pages wrapper

from hub.connectors.base import run_pull, run_push
from hub.connectors.sql_erp import SqlErpConnector, load_tables
from hub.sandbox import erp
from hub.store import Store, json_text, payload_hash

T0 = datetime(2024, 5, 6, 10, 0, 0)
NAMES = ["陳偉", "陈伟", "Chen Wei", "WEI CHEN", "王芳", "Bob Smith", "Robert Smith", "李娜", "John Smith", "张伟"]


def seed_rows() -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {t: [] for t in erp.TABLE_ORDER}
    for i, name in enumerate(NAMES, 1):
        t = T0 + timedelta(minutes=i)
        rows["party_party"].append({"id": i, "code": f"P{i:04d}", "name": name, "active": True,
                                    "create_date": t, "write_date": t if i % 2 else None})
        rows["party_address"].append({"id": i, "party": i, "street": f"{i} 人民路", "postal_code": "200000",
                                      "city": "上海", "subdivision_name": "上海市", "country_code": "CN",
                                      "active": True, "create_date": t, "write_date": None})
        rows["party_contact_mechanism"].append({"id": i, "party": i, "type": "mobile",
                                                "value": f"+86 138-0013-{8000 + i}", "active": True,
                                                "create_date": t, "write_date": t})
        rows["sale_sale"].append({"id": i, "party": i, "number": f"SO{i:06d}", "sale_date": t.date(),
                                  "state": "confirmed", "currency": "CNY", "total_amount": Decimal("99.50"),
                                  "shipment_address": i, "create_date": t, "write_date": None})
        rows["sale_line"].append({"id": i, "sale": i, "product": 1, "quantity": 2.0,
                                  "unit_price": Decimal("49.75"), "description": "茶叶 Tea",
                                  "create_date": t, "write_date": None})
        rows["stock_shipment_out"].append({"id": i, "number": f"WH/OUT/{i:06d}", "customer": i,
                                           "delivery_address": i, "carrier": "SF Express",
                                           "reference": f"SF{i:010d}", "state": "done", "planned_date": t.date(),
                                           "effective_date": t.date(), "origin_sale": i, "create_date": t,
                                           "write_date": t})
    rows["party_identifier"].append({"id": 1, "party": 1, "type": "cn_ric", "code": "11010519491231002X",
                                     "create_date": T0, "write_date": None})
    rows["product_product"].append({"id": 1, "code": "TEA", "name": "Tea", "list_price": Decimal("49.75"),
                                    "create_date": T0, "write_date": None})
    return rows


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def erp_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = erp.sqlite_url(tmp_path / "erp.db")
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_database_url")
    else:
        url = request.getfixturevalue("mariadb_database_url")
    erp.create_erp(url, seed_rows())
    if request.param == "mariadb":
        # whole seconds, as Tryton's schema has them; the DDL would otherwise depend on whether Dagster's
        # storage (which compiles every DateTime as DATETIME(6) on MySQL) was imported first
        set_timestamp_precision(url, 0)
    yield url


def set_timestamp_precision(url: str, fsp: int) -> None:
    """Every create_date / write_date of the sandbox ERP on MariaDB as DATETIME(fsp)."""
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for name in erp.TABLE_ORDER:
            c.exec_driver_sql(f"ALTER TABLE {name} MODIFY create_date DATETIME({fsp}) NOT NULL "
                              f"DEFAULT CURRENT_TIMESTAMP({fsp}), MODIFY write_date DATETIME({fsp}) NULL")
    engine.dispose()


@pytest.fixture()
def hub_store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path}/hub.db")
    yield s
    s.dispose()


def exec_sql(url: str, stmt: sa.Executable) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(stmt)
    engine.dispose()


def test_incremental_pull_children_overlap_and_echo_free_push(erp_url: str, hub_store: Store) -> None:
    conn = SqlErpConnector(erp_url, load_tables("sandbox"), page_size=4)
    try:
        first = {e: run_pull(conn, hub_store, e) for e in conn.entities}
        for entity in conn.entities:
            assert hub_store.landed_ids("erp", entity) == {str(i) for i in range(1, 11)}
            assert first[entity].new == 10
        cursor = hub_store.get_cursor("erp", "customers")
        assert cursor["phase"] == "done" and cursor["watermark"]

        # the payload carries the children, JSON-able (dates ISO, decimals as strings), Chinese intact
        landed = _payload(hub_store, "customers", "1")
        assert landed["name"] == "陳偉" and landed["contact_mechanisms"][0]["value"] == "+86 138-0013-8001"
        assert landed["identifiers"][0]["type"] == "cn_ric"
        order = _payload(hub_store, "orders", "2")
        assert order["total_amount"] == "99.50" and order["lines"][0]["description"] == "茶叶 Tea"

        again = {e: run_pull(conn, hub_store, e) for e in conn.entities}
        assert all((s.new, s.changed) == (0, 0) for s in again.values())

        now = erp.erp_now().replace(microsecond=0)
        # a rename bumps the party; a new phone only touches the child table (Tryton does not bump the party)
        exec_sql(erp_url, erp.party_party.update().where(erp.party_party.c.id == 3)
                 .values(name="Chen Wei (VIP)", write_date=now))
        exec_sql(erp_url, erp.party_contact_mechanism.insert().values(
            party=7, type="phone", value="0086 21 5555 0000", active=True, create_date=now))
        # committed late: its timestamp is older than our watermark but inside the overlap window
        wm = datetime.fromisoformat(hub_store.get_cursor("erp", "customers")["watermark"])
        exec_sql(erp_url, erp.party_party.insert().values(
            id=11, code="P0011", name="刘洋", active=True, create_date=wm - timedelta(seconds=30)))
        exec_sql(erp_url, erp.sale_sale.insert().values(
            id=11, party=2, number="SO000011", state="draft", currency="CNY", create_date=now))
        s = run_pull(conn, hub_store, "customers")
        assert (s.new, s.changed) == (1, 2)
        assert _payload(hub_store, "customers", "7")["contact_mechanisms"][-1]["value"] == "0086 21 5555 0000"
        assert run_pull(conn, hub_store, "orders").new == 1

        # push golden id + segment + value tier; the next pull must not see our own write as a change
        hub_store.enqueue_pushes("erp", "customer", [
            ("1", "G000001", {"golden_id": "G000001", "segment": "vip", "value_tier": "gold"}),
            ("2", "G000002", {"golden_id": "G000002", "segment": "regular"}),
            ("999", "G000999", {"golden_id": "G000999"}),
        ])
        p = run_push(conn, hub_store)
        assert (p.ok, p.rejected, p.error) == (2, 1, 0)
        assert _hub_state(erp_url, 1) == ("G000001", {"hub:segment:vip", "hub:value_tier:gold"})
        assert _hub_state(erp_url, 2) == ("G000002", {"hub:segment:regular"})
        echo = run_pull(conn, hub_store, "customers")
        assert (echo.new, echo.changed) == (0, 0) and echo.unchanged >= 2

        # a segment change moves the party between hub categories; other categories are left alone
        hub_store.enqueue_pushes("erp", "customer", [
            ("1", "G000001", {"golden_id": "G000001", "segment": "lapsed", "value_tier": "gold"})])
        assert run_push(conn, hub_store).ok == 1
        assert _hub_state(erp_url, 1) == ("G000001", {"hub:segment:lapsed", "hub:value_tier:gold"})
        assert run_push(conn, hub_store).sent == 0
        assert run_pull(conn, hub_store, "customers").changed == 0
    finally:
        conn.close()


def _payload(store: Store, entity: str, source_id: str) -> dict:
    from hub.store import landing

    with store.engine.connect() as c:
        return c.execute(sa.select(landing.c.payload).where(
            landing.c.source == "erp", landing.c.entity == entity, landing.c.source_id == source_id)).scalar_one()


def _hub_state(url: str, party: int) -> tuple[str | None, set[str]]:
    engine = sa.create_engine(url)
    with engine.connect() as c:
        gid = c.execute(sa.select(erp.party_identifier.c.code).where(
            erp.party_identifier.c.party == party, erp.party_identifier.c.type == "hub_golden_id")).scalar()
        cats = set(c.execute(sa.select(erp.party_category.c.name).join(
            erp.party_party_category_rel, erp.party_party_category_rel.c.category == erp.party_category.c.id)
            .where(erp.party_party_category_rel.c.party == party)).scalars())
    engine.dispose()
    return gid, cats


def test_pulled_records_take_the_exact_orjson_path(erp_url: str) -> None:
    """Reflected column names are quoted_name (a str subclass): the records must still be keyed by exact str,
    so landing_record writes them with orjson (payload_text set), byte for byte what json.dumps writes."""
    conn = SqlErpConnector(erp_url, load_tables("sandbox"), page_size=4)
    try:
        for entity in conn.entities:
            records = [r for page in conn.pages(entity, None) for r in page.records]
            assert records, entity
            for rec in records:
                assert rec.payload_text is not None, entity
                assert rec.payload_text == json_text(rec.payload)
                if entity == "shipments":  # no child rows: the hash view is the payload less hash_exclude
                    assert rec.payload_hash == payload_hash(_view(conn, rec.payload))
                keys = [k for k in rec.payload] + [k for v in rec.payload.values() if isinstance(v, list)
                                                   for kid in v for k in kid]
                assert {type(k) for k in keys} == {str}, entity
    finally:
        conn.close()


def test_a_float_orjson_writes_otherwise_takes_json_dumps(tmp_path: Path) -> None:
    """A page whose values orjson would write differently (1e-05: json.dumps' exponent form) is encoded by
    json.dumps: the same text and hash as every record of the page has without the fast path."""
    rows = seed_rows()
    rows["sale_line"][3]["quantity"] = 1e-05
    url = erp.sqlite_url(tmp_path / "erp.db")
    erp.create_erp(url, rows)
    conn = SqlErpConnector(url, load_tables("sandbox"), page_size=4)
    try:
        records = [r for page in conn.pages("orders", None) for r in page.records]
        assert len(records) == 10
        for rec in records:
            assert (rec.payload_text or json_text(rec.payload)) == json_text(rec.payload)
            view = {**_view(conn, rec.payload), "lines": [_view(conn, k) for k in rec.payload["lines"]]}
            assert rec.payload_hash == payload_hash(view)
        assert "1e-05" in json_text(next(r.payload for r in records if r.source_id == "4"))
    finally:
        conn.close()


def _view(conn: SqlErpConnector, payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k not in conn.hash_exclude}


def test_kill_between_pages_resumes_exactly_once(tmp_path: Path, hub_store: Store) -> None:
    url = erp.sqlite_url(tmp_path / "erp.db")
    erp.create_erp(url, seed_rows())
    conn = SqlErpConnector(url, load_tables("sandbox"), page_size=3)
    with pytest.raises(KeyboardInterrupt):
        run_pull(DieAfter(conn, 2), hub_store, "customers")
    assert len(hub_store.landed_ids("erp", "customers")) == 6
    s = run_pull(conn, hub_store, "customers")
    assert (s.new, s.changed, s.unchanged) == (4, 0, 0)
    assert hub_store.landed_ids("erp", "customers") == {str(i) for i in range(1, 11)}
    conn.close()


def test_own_company_and_employee_parties_are_not_customers(tmp_path: Path, hub_store: Store) -> None:
    url = erp.sqlite_url(tmp_path / "erp.db")
    erp.create_erp(url, seed_rows())
    exec_sql(url, sa.text("CREATE TABLE company_company (id INTEGER PRIMARY KEY, party INTEGER)"))
    exec_sql(url, sa.text("CREATE TABLE company_employee (id INTEGER PRIMARY KEY, party INTEGER)"))
    exec_sql(url, sa.text("INSERT INTO company_company VALUES (1, 3)"))
    exec_sql(url, sa.text("INSERT INTO company_employee VALUES (1, 7), (2, NULL)"))
    mapping = copy.deepcopy(load_tables("sandbox"))
    mapping["entities"]["customers"]["exclude_keys_in"] = [{"table": "company_company", "column": "party"},
                                                           {"table": "company_employee", "column": "party"}]
    conn = SqlErpConnector(url, mapping, page_size=4)
    assert run_pull(conn, hub_store, "customers").new == 8
    assert hub_store.landed_ids("erp", "customers") == {str(i) for i in range(1, 11)} - {"3", "7"}
    # a child change of an excluded party does not bring it in either
    exec_sql(url, erp.party_contact_mechanism.update().where(erp.party_contact_mechanism.c.party == 3).values(
        value="+86 139 0000 1111", write_date=datetime(2030, 1, 1)))
    assert run_pull(conn, hub_store, "customers").new == 0
    conn.close()


def test_full_sweep_without_updated_at_column(tmp_path: Path, hub_store: Store) -> None:
    url = erp.sqlite_url(tmp_path / "erp.db")
    erp.create_erp(url, seed_rows())
    mapping = copy.deepcopy(load_tables("sandbox"))
    mapping["entities"]["shipments"].pop("updated_at")
    conn = SqlErpConnector(url, mapping, page_size=4)
    assert run_pull(conn, hub_store, "shipments").new == 10
    assert hub_store.get_cursor("erp", "shipments")["complete"] is True
    # a change without any timestamp bump is still found by the hash diff of the next sweep
    exec_sql(url, erp.stock_shipment_out.update().where(erp.stock_shipment_out.c.id == 4).values(state="cancelled"))
    s = run_pull(conn, hub_store, "shipments")
    assert (s.new, s.changed, s.unchanged) == (0, 1, 9)
    conn.close()


_REFUSE_PARTY_5 = {
    "sqlite": ["CREATE TRIGGER refuse_locked BEFORE INSERT ON party_identifier WHEN NEW.party = 5 "
               "BEGIN SELECT RAISE(ABORT, 'party 5 is locked'); END"],
    "postgresql": ["CREATE FUNCTION refuse_locked() RETURNS trigger AS $$ BEGIN IF NEW.party = 5 THEN "
                   "RAISE EXCEPTION 'party 5 is locked'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER refuse_locked BEFORE INSERT ON party_identifier FOR EACH ROW "
                   "EXECUTE FUNCTION refuse_locked()"],
    "mysql": ["CREATE TRIGGER refuse_locked BEFORE INSERT ON party_identifier FOR EACH ROW "
              "BEGIN IF NEW.party = 5 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'party 5 is locked'; "
              "END IF; END"],
}


def test_batched_push_repairs_duplicates_and_isolates_a_refused_row(erp_url: str, hub_store: Store) -> None:
    """One transaction for the whole batch; an ERP refusing one party (a trigger here) fails that row alone;
    a party that got two hub identifiers (two overlapping syncs) is left with exactly one."""
    engine = sa.create_engine(erp_url)
    with engine.begin() as c:
        for stmt in _REFUSE_PARTY_5[engine.dialect.name]:
            c.exec_driver_sql(stmt)
        c.execute(erp.party_identifier.insert(), [
            {"party": 3, "type": "hub_golden_id", "code": "G000003", "create_date": T0},
            {"party": 3, "type": "hub_golden_id", "code": "G000003", "create_date": T0}])
    engine.dispose()
    conn = SqlErpConnector(erp_url, load_tables("sandbox"))
    try:
        rows = [(str(i), f"G{i:06d}", {"golden_id": f"G{i:06d}", "segment": "vip" if i % 2 else "regular",
                                       "value_tier": "gold"}) for i in range(1, 11)]
        hub_store.enqueue_pushes("erp", "customer", rows)
        stats = run_push(conn, hub_store)
        assert (stats.ok, stats.error, stats.batches) == (9, 1, 1)
        assert [r for r in stats.reasons if r.startswith("database error")]
        for i in (1, 2, 3, 10):
            segment = "hub:segment:vip" if i % 2 else "hub:segment:regular"
            assert _hub_state(erp_url, i) == (f"G{i:06d}", {segment, "hub:value_tier:gold"})
        assert _hub_state(erp_url, 5) == (None, set())  # the refused row wrote nothing
        engine = sa.create_engine(erp_url)
        with engine.connect() as c:
            per_party = dict(c.execute(sa.select(erp.party_identifier.c.party, sa.func.count())
                                       .where(erp.party_identifier.c.type == "hub_golden_id")
                                       .group_by(erp.party_identifier.c.party)).all())
            categories = c.execute(sa.select(sa.func.count()).select_from(erp.party_category)
                                   .where(erp.party_category.c.name.like("hub:%"))).scalar()
        engine.dispose()
        assert per_party == {i: 1 for i in range(1, 11) if i != 5}
        assert categories == 3  # hub:segment:vip, hub:segment:regular, hub:value_tier:gold — created once
        assert len(hub_store.pending_pushes("erp")) == 1  # the refused row waits for the next run
    finally:
        conn.close()


def test_own_writes_are_not_read_again_but_changes_after_or_hidden_by_them_are(erp_url: str,
                                                                               hub_store: Store) -> None:
    """A push stamps the parties it writes; the next pull leaves exactly those rows out of its window (the
    hub's echo), yet reads a change made after the push and a change the push's stamp hid."""
    _own_writes_scenario(erp_url, hub_store)


def test_own_writes_on_mariadb_timestamps_with_fractional_seconds(mariadb_database_url: str,
                                                                  hub_store: Store) -> None:
    """The same on an ERP whose MariaDB columns keep microseconds (DATETIME(6): a modern schema, or any
    table created while Dagster's storage was imported). The timestamps must be compared as dates: as text,
    '…:24.000000' is not the stamp '…:24' and the hub read its own writes back (11 records, not 2)."""
    erp.create_erp(mariadb_database_url, seed_rows())
    set_timestamp_precision(mariadb_database_url, 6)
    _own_writes_scenario(mariadb_database_url, hub_store)


def _own_writes_scenario(erp_url: str, hub_store: Store) -> None:
    mapping = copy.deepcopy(load_tables("sandbox"))
    mapping["overlap_seconds"] = 5  # the window re-reads 5 s before the watermark, not the sandbox's 3 h
    conn = SqlErpConnector(erp_url, mapping, page_size=4)
    try:
        run_pull(conn, hub_store, "customers")
        # move the watermark to now: the seed rows (2024) fall outside the next window
        now = erp.erp_now().replace(microsecond=0)
        exec_sql(erp_url, erp.party_party.update().where(erp.party_party.c.id == 9).values(
            name="John Smith Jr", write_date=now - timedelta(seconds=60)))
        assert run_pull(conn, hub_store, "customers").changed == 1
        # someone renames party 4 after that pull; the hub's push below touches it before any pull saw it
        exec_sql(erp_url, erp.party_party.update().where(erp.party_party.c.id == 4).values(
            name="Wei Chen Ltd", write_date=now - timedelta(seconds=30)))
        hub_store.enqueue_pushes("erp", "customer", [
            (str(i), f"G{i:06d}", {"golden_id": f"G{i:06d}", "segment": "vip"}) for i in (1, 2, 3, 4, 5)])
        assert run_push(conn, hub_store).ok == 5
        own = hub_store.get_cursor("erp", "customers")["own"]
        assert own["stamps"] and own["reread"] == [4]

        echo = run_pull(conn, hub_store, "customers")
        # parties 1, 2, 3, 5 were written by the hub only: not read; party 4 is read for the change it hid
        # (and party 9, the row at the watermark, as every window starts at or before it)
        assert (echo.records, echo.changed) == (2, 1)
        assert _payload(hub_store, "customers", "4")["name"] == "Wei Chen Ltd"
        assert hub_store.get_cursor("erp", "customers")["own"]["reread"] == []
        assert run_pull(conn, hub_store, "customers").records == 0

        # changes after the push carry a later date: read, on the party and through a child row
        later = max(datetime.fromisoformat(s) for s in own["stamps"]) + timedelta(seconds=2)
        exec_sql(erp_url, erp.party_party.update().where(erp.party_party.c.id == 1).values(
            name="陳偉 (VIP)", write_date=later))
        exec_sql(erp_url, erp.party_contact_mechanism.insert().values(
            party=2, type="phone", value="+86 138 0013 9999", active=True, create_date=later))
        after = run_pull(conn, hub_store, "customers")
        assert after.changed == 2
        assert _payload(hub_store, "customers", "1")["name"] == "陳偉 (VIP)"
        assert _payload(hub_store, "customers", "2")["contact_mechanisms"][-1]["value"] == "+86 138 0013 9999"
        # the hub's fields the push wrote are known without a re-read (push_state / landing hub_state)
        assert _hub_state(erp_url, 3) == ("G000003", {"hub:segment:vip"})
    finally:
        conn.close()


class _EditAfterPage:
    """Wraps a connector: ``edit()`` runs in the ERP after the first page was handed over (a user at work)."""

    def __init__(self, inner: SqlErpConnector, edit: Any) -> None:
        self.inner, self.edit = inner, edit
        self.system, self.entities = inner.system, inner.entities

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Any]:
        for n, page in enumerate(self.inner.pages(entity, cursor)):
            yield page
            if n == 0:
                self.edit()


def test_first_load_reads_in_key_order_and_a_row_edited_behind_it_is_read_next_run(erp_url: str,
                                                                                   hub_store: Store) -> None:
    """The first pull pages by primary key (ordering by the updated-at expression, which has no index in an
    ERP we do not own, sorted the whole table for every page); a party edited after its page was read is read
    again by the next pull, as the watermark stops at the first pull's start."""
    conn = SqlErpConnector(erp_url, load_tables("sandbox"), page_size=3)
    statements: list[str] = []
    sa.event.listen(conn.engine, "before_cursor_execute",
                    lambda c, cur, stmt, *a: statements.append(" ".join(stmt.split())))
    try:
        edited = erp.party_party.update().where(erp.party_party.c.id == 2).values(
            name="Chen Wei (edited)", write_date=erp.erp_now().replace(microsecond=0))
        first = run_pull(_EditAfterPage(conn, lambda: exec_sql(erp_url, edited)), hub_store, "customers")
        assert first.new == 10
        pages = [s for s in statements if s.startswith("SELECT party_party.id") and "LIMIT" in s.upper()]
        assert len(pages) == 4 and not any("ORDER BY coalesce" in s for s in pages)
        assert _payload(hub_store, "customers", "2")["name"] == "陈伟"  # as read before the edit
        again = run_pull(conn, hub_store, "customers")
        assert (again.new, again.changed) == (0, 1)
        assert _payload(hub_store, "customers", "2")["name"] == "Chen Wei (edited)"
    finally:
        conn.close()
