"""SandboxWorld: deterministic generation, persistence (no regeneration), ERP schema, CDR files, mutate."""

from __future__ import annotations

import csv
import filecmp
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import phonenumbers
import pytest
import sqlalchemy as sa
from stdnum.cn import ric

from hub.sandbox import SandboxWorld, erp, ground_truth_map, load_ground_truth
from hub.sandbox.callcenter import CdrDropFolder, format_cdr_line
from hub.sandbox.noise import date_variant, homophone, phone_variant
from hub.sandbox.people import gb11643_check_char, generate_people


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path_factory.mktemp("world") / "w", customers=300, seed=42)


# ---------------------------------------------------------------- people
def test_people_deterministic() -> None:
    # speed is measured in bench/, not asserted here (wall time on a shared machine is noise)
    a = generate_people(2000, seed=42)
    b = generate_people(2000, seed=42)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    assert [p.to_dict() for p in generate_people(2000, seed=43)] != [p.to_dict() for p in a]


def test_people_mix() -> None:
    people = generate_people(2000, seed=1)
    share_cn = sum(p.culture == "cn" for p in people) / len(people)
    assert 0.65 < share_cn < 0.75
    households = Counter(p.household_id for p in people if p.household_id)
    assert households and all(2 <= n <= 4 for n in households.values())
    for hid in list(households)[:20]:
        members = [p for p in people if p.household_id == hid]
        assert len({p.landline for p in members}) == 1 and members[0].landline
        assert len({p.address.street for p in members}) == 1
    names = Counter(p.full_name for p in people)
    assert names["王伟"] + names["张伟"] + names["李娜"] + names["John Smith"] >= 5
    assert {p.address.country for p in people} == {"CN", "US", "GB", "DE"}
    assert any(p.nicknames for p in people)


def test_people_phones_and_ids_are_valid() -> None:
    people = generate_people(500, seed=2)
    for p in people:
        for num in p.mobiles + ([p.landline] if p.landline else []):
            assert phonenumbers.is_valid_number(phonenumbers.parse(num)), num
        if p.national_id:
            assert ric.is_valid(p.national_id)
            assert p.national_id[6:14] == f"{p.birth_date:%Y%m%d}"
            assert int(p.national_id[16]) % 2 == (1 if p.gender == "M" else 0)
    assert sum(bool(p.national_id) for p in people) > 100
    assert gb11643_check_char("11010519491231002") == "X"


def test_noise_renderings() -> None:
    import random

    rng = random.Random(0)
    forms = {phone_variant("+8613800138000", rng) for _ in range(400)}
    assert {"13800138000", "+8613800138000", "+86 138-0013-8000", "008613800138000", "１３８００１３８０００"} <= forms
    dates = {date_variant(date(1985, 3, 7), rng) for _ in range(300)}
    assert {"1985/3/7", "19850307", "1985年3月7日", "1985-03-07"} <= dates
    assert "07/03/1985" in {date_variant(date(1985, 3, 7), rng, "west") for _ in range(300)}
    assert {homophone("陈伟", rng) for _ in range(50)} >= {"陈玮", "陈炜", "晨伟"}
    assert homophone("Smith", rng) == "Smith"


# ---------------------------------------------------------------- create / load
def test_create_is_deterministic(tmp_path: Path) -> None:
    a = SandboxWorld.create_or_load(tmp_path / "a", customers=80, seed=7)
    b = SandboxWorld.create_or_load(tmp_path / "b", customers=80, seed=7)
    for f in ("webshop.json", "wechat.json", "people.json", "ground_truth.csv", "cdr/Master.csv"):
        assert filecmp.cmp(a.dir / f, b.dir / f, shallow=False), f

    def dump(w: SandboxWorld) -> dict:
        eng = sa.create_engine(w.erp_url)
        with eng.connect() as c:
            out = {t: c.execute(sa.select(erp.metadata.tables[t]).order_by(sa.text("id"))).all()
                   for t in erp.TABLE_ORDER}
        eng.dispose()
        return out

    assert dump(a) == dump(b)


def test_load_does_not_regenerate(tmp_path: Path) -> None:
    w = SandboxWorld.create_or_load(tmp_path / "w", customers=40, seed=3)
    eng = sa.create_engine(w.erp_url)
    with eng.begin() as c:
        c.execute(erp.party_identifier.insert().values(party=1, type="hub_golden_id", code="G-000001",
                                                       create_date=erp.erp_now()))
    eng.dispose()
    truth_before = (w.dir / "ground_truth.csv").read_bytes()
    again = SandboxWorld.create_or_load(tmp_path / "w", customers=999, seed=99)  # args ignored on load
    assert again.meta["customers"] == 40 and again.meta["seed"] == 3
    eng = sa.create_engine(again.erp_url)
    with eng.connect() as c:
        codes = c.execute(sa.select(erp.party_identifier.c.code).where(
            erp.party_identifier.c.type == "hub_golden_id")).scalars().all()
    eng.dispose()
    assert codes == ["G-000001"]
    assert (again.dir / "ground_truth.csv").read_bytes() == truth_before


# ---------------------------------------------------------------- ERP
def test_erp_schema_and_tryton_quirks(world: SandboxWorld) -> None:
    eng = sa.create_engine(world.erp_url)
    insp = sa.inspect(eng)
    cols = {t: {c["name"] for c in insp.get_columns(t)} for t in erp.TABLE_ORDER}
    assert {"id", "code", "name", "create_date", "write_date", "active"} <= cols["party_party"]
    assert {"party", "street", "postal_code", "city", "subdivision_name", "country_code"} <= cols["party_address"]
    assert {"party", "type", "value"} <= cols["party_contact_mechanism"]
    assert {"party", "type", "code"} <= cols["party_identifier"]
    assert {"party", "category"} <= cols["party_party_category_rel"]
    assert {"party", "number", "sale_date", "state", "currency", "total_amount"} <= cols["sale_sale"]
    assert {"sale", "product", "quantity", "unit_price", "description"} <= cols["sale_line"]
    assert {"customer", "delivery_address", "carrier", "reference", "state", "planned_date",
            "effective_date"} <= cols["stock_shipment_out"]
    with eng.connect() as c:
        types = set(c.execute(sa.select(erp.party_contact_mechanism.c.type).distinct()).scalars())
        assert types == {"mobile", "phone", "email"}
        null_addr = c.execute(sa.select(sa.func.count()).where(erp.party_address.c.write_date.is_(None))).scalar()
        assert null_addr > 0  # never-edited rows keep write_date NULL, as in Tryton
        states = set(c.execute(sa.select(erp.stock_shipment_out.c.state).distinct()).scalars())
        assert "done" in states
        done = c.execute(sa.select(erp.stock_shipment_out).where(erp.stock_shipment_out.c.state == "done")).first()
        assert done.reference and done.effective_date >= done.planned_date
        sale = c.execute(sa.select(erp.sale_sale).limit(1)).first()
        lines = c.execute(sa.select(erp.sale_line).where(erp.sale_line.c.sale == sale.id)).all()
        assert sum(round(line.unit_price * int(line.quantity), 2) for line in lines) == sale.total_amount
        ids = c.execute(sa.select(erp.party_identifier.c.code).where(erp.party_identifier.c.type == "cn_ric")).scalars()
        assert all(ric.is_valid(x.upper()) for x in ids)
    eng.dispose()


@pytest.mark.parametrize("backend", ["postgres_database_url", "mariadb_database_url"])
def test_erp_on_server_databases(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(backend)
    w = SandboxWorld.create_or_load(tmp_path / "w", customers=40, seed=4, erp_url=url)
    eng = sa.create_engine(url)
    with eng.begin() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(erp.party_party)).scalar()
        assert n == sum(1 for g in load_ground_truth(w.dir) if g.entity == "party")
        # sequences continue after the explicitly numbered rows
        new_id = c.execute(erp.party_party.insert().values(code="new", name="陈伟", create_date=erp.erp_now())
                           ).inserted_primary_key[0]
        assert new_id > n
        assert c.execute(sa.select(erp.party_party.c.name).where(erp.party_party.c.id == new_id)).scalar() == "陈伟"
    eng.dispose()
    stats = w.mutate(0.05, seed=1)
    assert stats["erp_updates"] + stats["erp_new_sales"] > 0


# ---------------------------------------------------------------- ground truth
def test_ground_truth_covers_every_record(world: SandboxWorld) -> None:
    truth = load_ground_truth(world.dir)
    by = Counter((g.system, g.entity) for g in truth)
    assert by[("webshop", "customer")] == len(world.shop.customers)
    assert by[("webshop", "order")] == len(world.shop.orders)
    assert by[("wechat", "follower")] == len(world.wechat.users)
    with (world.dir / "cdr" / "Master.csv").open(newline="", encoding="utf-8") as fh:
        assert by[("cdr", "call")] == sum(1 for _ in csv.reader(fh))
    unknown = [g for g in truth if g.system == "cdr" and not g.person_id]
    assert unknown, "unknown callers exist"
    m = ground_truth_map(world.dir, "customer")
    persons = Counter(m.values())
    assert any(n > 1 for n in persons.values()), "some people hold duplicate shop accounts"
    stats = world.stats()
    assert stats["webshop.customers"] == by[("webshop", "customer")]
    assert stats["erp.party_party"] == by[("erp", "party")] and stats["erp.sale_sale"] == by[("erp", "sale")]
    assert stats["erp.stock_shipment_out"] == by[("erp", "shipment")]
    accounts = {c["id"]: c["date_created_gmt"] for c in world.shop.customers.values()}
    assert all(o["date_created_gmt"] >= accounts[o["customer_id"]] for o in world.shop.orders.values()
               if o["customer_id"])
    full = ground_truth_map(world.dir)
    assert len(full) == len(truth)  # (system, entity, source_id) is unique
    assert full[("erp", "party", "1")] != "" and ("erp", "sale", "1") in full
    systems_per_person = Counter(g.person_id for g in {(g.system, g.person_id): g for g in truth}.values()
                                 if g.person_id)
    assert set(systems_per_person.values()) == {1, 2, 3, 4}


# ---------------------------------------------------------------- CDR
def test_cdr_format_variants(tmp_path: Path) -> None:
    row = {"accountcode": "", "src": "13800138000", "dst": "4000", "dcontext": "from-trunk",
           "clid": '"Alice Wang" <13800138000>', "channel": "PJSIP/trunk-1", "dstchannel": "",
           "lastapp": "Hangup", "lastdata": "", "start": datetime(2024, 5, 6, 11, 0), "answer": None,
           "end": datetime(2024, 5, 6, 11, 0, 12), "duration": 12, "billsec": 0, "disposition": "NO ANSWER",
           "amaflags": "DOCUMENTATION", "uniqueid": "1714993200.3", "userfield": "", "peeraccount": "",
           "linkedid": "1714993200.3", "sequence": 3}
    line = format_cdr_line(row, 18)
    assert line == ('"","13800138000","4000","from-trunk","""Alice Wang"" <13800138000>","PJSIP/trunk-1",'
                    '"","Hangup","","2024-05-06 11:00:00",,"2024-05-06 11:00:12",12,0,"NO ANSWER","DOCUMENTATION",'
                    '"1714993200.3",""')
    for n in (16, 18, 21):
        folder = CdrDropFolder(tmp_path / f"c{n}", columns=n)
        folder.append([row, {**row, "accountcode": "sales"}])
        rows = list(csv.reader((folder.master).open(newline="")))
        assert [len(r) for r in rows] == [n, n]
        assert rows[0][4] == '"Alice Wang" <13800138000>' and rows[0][10] == ""
        assert (folder.dir / "sales.csv").read_text().count("\n") == 1
    local = CdrDropFolder(tmp_path / "local", usegmtime=False)
    local.append([row])
    assert '"2024-05-06 19:00:00"' in local.master.read_text()


def test_cdr_rotation(tmp_path: Path) -> None:
    folder = CdrDropFolder(tmp_path / "cdr")
    row = {"start": datetime(2024, 1, 1), "end": datetime(2024, 1, 1, 0, 1), "duration": 60}
    folder.append([row])
    assert folder.rotate("numbered") == folder.dir / "Master.csv.1"
    folder.append([row, row])
    folder.rotate("numbered")
    assert (folder.dir / "Master.csv.2").read_text().count("\n") == 1
    assert (folder.dir / "Master.csv.1").read_text().count("\n") == 2
    assert not folder.master.exists()
    folder.append([row])
    assert folder.rotate("dated", today=date(2024, 5, 6)).name == "Master.csv-20240506"
    folder.append([row])
    assert folder.rotate("dated", today=date(2024, 5, 6)).name == "Master.csv-20240506.1"


# ---------------------------------------------------------------- mutate
def test_mutate_changes_every_system(tmp_path: Path) -> None:
    w = SandboxWorld.create_or_load(tmp_path / "w", customers=200, seed=8)
    calls_before = w.cdr.master.read_text(encoding="utf-8").count("\n")
    truth_before = len(load_ground_truth(w.dir))
    followers_before = len(w.wechat.users)
    chats_before = len(w.wechat.messages)
    modified_before = {i: c["date_modified_gmt"] for i, c in w.shop.customers.items()}
    orders_before = len(w.shop.orders)
    eng = sa.create_engine(w.erp_url)
    with eng.connect() as c:
        written_before = c.execute(sa.select(sa.func.count()).where(erp.party_address.c.write_date.is_not(None))
                                   ).scalar()
        sales_before = c.execute(sa.select(sa.func.count()).select_from(erp.sale_sale)).scalar()
        contacts_before = c.execute(sa.select(sa.func.count()).select_from(erp.party_contact_mechanism)).scalar()
    stats = w.mutate(fraction=0.05, seed=1)
    assert all(v >= 0 for v in stats.values()) and stats["cdr_new_calls"] > 0
    with eng.connect() as c:
        sales_after = c.execute(sa.select(sa.func.count()).select_from(erp.sale_sale)).scalar()
        contacts_after = c.execute(sa.select(sa.func.count()).select_from(erp.party_contact_mechanism)).scalar()
        moved = c.execute(sa.select(sa.func.count()).where(erp.party_address.c.write_date.is_not(None))
                          ).scalar() - written_before
    eng.dispose()
    assert (sales_after - sales_before) + (contacts_after - contacts_before) + moved == \
        stats["erp_updates"] + stats["erp_new_sales"]
    assert stats["erp_updates"] + stats["erp_new_sales"] > 0
    changed = [i for i, c in w.shop.customers.items() if c["date_modified_gmt"] != modified_before[i]]
    assert len(changed) == stats["webshop_updates"]
    assert len(w.shop.orders) == orders_before + stats["webshop_new_orders"]
    assert len(w.wechat.users) == followers_before + stats["wechat_new_followers"]
    assert len(w.wechat.messages) > chats_before and stats["wechat_new_chats"] > 0
    times = [m["time"] for m in w.wechat.messages]
    assert times == sorted(times)
    assert w.cdr.master.read_text(encoding="utf-8").count("\n") == calls_before + stats["cdr_new_calls"]
    truth = load_ground_truth(w.dir)
    assert len(truth) > truth_before
    new_ids = {g.source_id for g in truth[truth_before:]}
    assert {o for o in w.wechat.users if o not in {g.source_id for g in truth[:truth_before]}} <= new_ids
    # a reload sees the mutation, and a second mutate continues the id sequences
    again = SandboxWorld.create_or_load(w.dir)
    assert len(again.shop.orders) == len(w.shop.orders)
    again.mutate(fraction=0.05, seed=2)
    ids = [g.source_id for g in load_ground_truth(w.dir) if g.system == "webshop" and g.entity == "order"]
    assert len(ids) == len(set(ids))
    # the CDR file stays in hang-up order across appends, and nothing is dated in the future
    with again.cdr.master.open(newline="", encoding="utf-8") as fh:
        ends = [r[11] for r in csv.reader(fh)]
    assert ends == sorted(ends)
    now = erp.erp_now().isoformat(timespec="seconds")
    assert max(o["date_modified_gmt"] for o in again.shop.orders.values()) <= now
    assert max(c["date_modified_gmt"] for c in again.shop.customers.values()) <= now
