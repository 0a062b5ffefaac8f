"""The staging stage end to end: a generated sandbox world pulled by the real connectors into a real store,
staged, and checked against the world's ground truth; incremental behaviour; the quarantine lifecycle on
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from hub.connectors.base import run_pull
from hub.connectors.cdr import parse_cdr_line
from hub.mappings import load_mappings, parse_mapping
from hub.models import CustomerRecord, Interaction, Order, Shipment
from hub.sandbox import SOURCES, SandboxWorld, load_ground_truth
from hub.staging import stage_all, stage_pending
from hub.store import LandingRecord, Store, landing, payload_hash, quarantine, staged_record

KNOWN_REASONS = {"required.name_missing", "required.contact_missing", "required.reachable_missing", "phone.invalid", "phone.possible",
                 "datetime.impossible", "payload.malformed", "required.customer_source_id_missing",
                 "required.occurred_at_missing", "required.phone_missing", "name.unparseable", "name.missing",
                 "required.ordered_at_missing"}


def _pull_all(world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        for conn in ep.connectors().values():
            for entity in conn.entities:
                run_pull(conn, store, entity)


@pytest.fixture(scope="module")
def mappings():
    return load_mappings()


@pytest.fixture(scope="module")
def staged_world(tmp_path_factory: pytest.TempPathFactory, mappings) -> Iterator[tuple[SandboxWorld, Store, object]]:
    d = tmp_path_factory.mktemp("staging")
    world = SandboxWorld.create_or_load(d / "world", customers=250, seed=11)
    store = Store(f"sqlite:///{d / 'hub.db'}")
    _pull_all(world, store)
    for (source, entity, sid), payload in MALFORMED.items():
        _land(store, source, entity, sid, payload)
    stats = stage_pending(store, mappings, SOURCES)
    yield world, store, stats
    store.dispose()


# malformed records shaped like each source's own, landed beside the generated world
MALFORMED: dict[tuple[str, str, str], dict] = {
    ("webshop", "customers", "900001"): {
        "id": 900001, "email": "no.name@example.com", "first_name": "", "last_name": "",
        "billing": {"first_name": "", "last_name": "", "phone": "13800138000", "country": "CN"}, "meta_data": []},
    ("erp", "customers", "900001"): {
        "id": 900001, "code": "900001", "name": "???", "active": True, "create_date": "2024-01-01T00:00:00",
        "write_date": None, "addresses": [], "identifiers": [], "categories": [],
        "contact_mechanisms": [{"id": 1, "party": 900001, "type": "mobile", "value": "999"}]},
    ("webshop", "orders", "900002"): {
        "id": 900002, "number": "900002", "status": "completed", "currency": "CNY", "total": "10.00",
        "customer_id": 0, "date_created": "2019-02-30T10:00:00", "line_items": []},
    ("callcenter", "calls", "h:bad"): parse_cdr_line('"only","three","columns"'),
}
EXPECTED_REASONS = {
    ("webshop", "customers", "900001"): ["required.name_missing"],
    ("erp", "customers", "900001"): ["required.name_missing", "name.unparseable"],
    ("webshop", "orders", "900002"): ["required.ordered_at_missing", "datetime.impossible"],
    ("callcenter", "calls", "h:bad"): ["payload.malformed"],
}


def _landing_rows(store: Store) -> list[tuple[str, str, str]]:
    with store.engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.select(landing.c.source, landing.c.entity, landing.c.source_id))]


def _staged(store: Store, entity: str | None = None) -> list[dict]:
    q = sa.select(staged_record)
    if entity:
        q = q.where(staged_record.c.entity == entity)
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(q)]


def _quarantined(store: Store) -> list[dict]:
    with store.engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.select(quarantine))]


def _load(v):  # JSON columns come back decoded on every backend, but be tolerant of text
    return json.loads(v) if isinstance(v, str) else v


def test_every_landed_row_is_staged_or_quarantined(staged_world) -> None:
    _, store, stats = staged_world
    rows = _landing_rows(store)
    staged_keys = {(r["source"], r["entity"], r["source_id"]) for r in _staged(store)}
    q_keys = {(q["source"], q["entity"], q["source_id"]) for q in _quarantined(store)}
    canonical = {"customers": ("customers",), "orders": ("orders",), "shipments": ("shipments",),
                 "followers": ("customers", "interactions"), "calls": ("interactions",)}  # (+ guest customers)
    for source, entity, sid in rows:
        in_q = (source, entity, sid) in q_keys
        staged = [(source, ce, sid) in staged_keys for ce in canonical[entity]]
        assert (in_q and not any(staged)) or (not in_q and all(staged)), (source, entity, sid)
    assert stats.records_in == len(rows) == stats.staged + stats.quarantined
    assert stats.unchanged == 0 and stats.quarantined == len(q_keys) > 0
    per_source = stats.per_source()
    assert set(per_source) == {"erp", "webshop", "social", "callcenter"}
    # a follower is a customer AND an interaction
    social_rows = sum(1 for s, _, _ in rows if s == "social")
    assert sum(1 for r in _staged(store) if r["source"] == "social") == 2 * (social_rows - per_source["social"]["quarantined"])


def test_quarantine_rows_carry_reason_codes_and_the_raw_payload(staged_world) -> None:
    _, store, stats = staged_world
    q = _quarantined(store)
    reasons = {code for row in q for code in _load(row["reasons"])}
    assert reasons <= KNOWN_REASONS, reasons - KNOWN_REASONS
    got = {(r["source"], r["entity"], r["source_id"]): _load(r["reasons"]) for r in q}
    for key, expected in EXPECTED_REASONS.items():
        assert got[key] == expected, key
    assert "phone.invalid" in reasons  # withheld caller ids in the generated CDR
    with store.engine.connect() as c:
        raw = {(r.source, r.entity, r.source_id): (r.payload, r.payload_hash) for r in c.execute(sa.select(landing))}
    for row in q:
        assert (_load(row["payload"]), row["payload_hash"]) == raw[(row["source"], row["entity"], row["source_id"])]
    md = stats.markdown()
    assert "| callcenter | calls |" in md and "`phone.invalid`" in md


def test_staged_values_match_the_ground_truth(staged_world) -> None:
    world, store, _ = staged_world
    people = {p.person_id: p for p in world.people()}
    truth = {(t.system, t.entity, t.source_id): t.person_id for t in load_ground_truth(world.dir)}
    system = {"erp": ("erp", "party"), "webshop": ("webshop", "customer")}
    names = phones = checked_names = checked_phones = 0
    for r in _staged(store, "customers"):
        if r["source"] not in ("erp", "webshop"):
            continue
        p = people.get(truth.get((*system[r["source"]], r["source_id"]), ""))
        if p is None:
            continue
        rec = _load(r["record"])
        assert rec["source"] == r["source"] and r["record_key"] == f"{r['source']}:{r['source_id']}"
        if p.culture == "cn" and rec.get("name"):
            checked_names += 1
            names += rec["name"]["name_key"] == " ".join(sorted([p.family_pinyin, p.given_pinyin]))
        own = set(p.mobiles) | ({p.landline} if p.landline else set())
        for ph in rec["phones"]:
            assert ph["e164"].startswith("+") and ph["e164"][1:].isdigit()
            checked_phones += 1
            phones += ph["e164"] in own
    assert checked_names > 50 and names / checked_names > 0.9, (names, checked_names)
    assert checked_phones > 100 and phones / checked_phones > 0.97, (phones, checked_phones)
    # WeChat followers: gender from `sex`, the openid as external id, consent from `subscribe`
    genders = checked = 0
    for r in _staged(store, "customers"):
        if r["source"] != "social":
            continue
        rec = _load(r["record"])
        assert rec["external_ids"]["wechat_openid"] == r["source_id"] and rec["consent"]["social"] is True
        p = people.get(truth.get(("wechat", "follower", r["source_id"]), ""))
        if p is not None and rec["gender"]:
            checked += 1
            genders += rec["gender"] == {"M": "male", "F": "female"}[p.gender]
    assert checked > 50 and genders == checked
    # calls are keyed by the caller's E.164 number
    calls = [r for r in _staged(store, "interactions") if r["source"] == "callcenter"]
    matched = known = 0
    for r in calls:
        rec = _load(r["record"])
        assert rec["kind"] == "call" and r["customer_key"] is None
        p = people.get(truth.get(("cdr", "call", r["source_id"]), ""))
        if p is not None:
            known += 1
            matched += rec["phone"] in set(p.mobiles) | {p.landline}
    assert known > 100 and matched / known > 0.97, (matched, known)


def test_orders_shipments_and_follows_point_at_their_customer(staged_world) -> None:
    _, store, _ = staged_world
    customers = {r["record_key"] for r in _staged(store, "customers")}
    q_keys = {f"{q['source']}:{q['source_id']}" for q in _quarantined(store) if q["entity"] == "customers"}
    for entity in ("orders", "shipments"):
        rows = _staged(store, entity)
        assert rows
        for r in rows:
            if r["customer_key"] is not None and ":guest-order-" not in r["customer_key"]:
                assert r["customer_key"] in customers | q_keys
    guest_orders = [r for r in _staged(store, "orders") if ":guest-order-" in (r["customer_key"] or "")]
    assert guest_orders and sum(r["customer_key"] in customers for r in guest_orders) > 0.8 * len(guest_orders)
    follows = [r for r in _staged(store, "interactions") if r["source"] == "social"]
    assert follows and all(r["customer_key"] == r["record_key"] for r in follows)


def test_restaging_unchanged_landing_does_nothing(staged_world, mappings) -> None:
    _, store, _ = staged_world
    before = {(r["entity"], r["record_key"]): (r["record_hash"], r["staged_at"]) for r in _staged(store)}
    q_before = {q["id"]: q["quarantined_at"] for q in _quarantined(store)}
    again = stage_pending(store, mappings, SOURCES)
    assert again.records_in == 0
    full = stage_all(store, mappings, SOURCES)
    assert full.records_in == len(_landing_rows(store))
    assert full.staged == 0 and full.released == 0
    assert full.unchanged + full.quarantined == full.records_in
    after = {(r["entity"], r["record_key"]): (r["record_hash"], r["staged_at"]) for r in _staged(store)}
    assert after == before  # nothing rewritten: downstream incremental matching sees no change
    assert {q["id"] for q in _quarantined(store)} == set(q_before)


def test_world_mutation_is_staged_incrementally(tmp_path: Path, mappings) -> None:
    world = SandboxWorld.create_or_load(tmp_path / "world", customers=120, seed=5)
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        _pull_all(world, store)
        first = stage_pending(store, mappings, SOURCES)
        world.mutate(fraction=0.1, seed=3)
        _pull_all(world, store)
        with store.engine.connect() as c:
            pending = c.execute(sa.select(sa.func.count()).select_from(landing).where(
                sa.or_(landing.c.staged_hash.is_(None), landing.c.staged_hash != landing.c.payload_hash))).scalar()
        assert 0 < pending < first.records_in / 2
        second = stage_pending(store, mappings, SOURCES)
        assert second.records_in == pending
        assert second.staged + second.unchanged + second.quarantined == pending
        assert stage_pending(store, mappings, SOURCES).records_in == 0
    finally:
        store.dispose()


def _profiles_are_those_of_the_records(store: Store) -> int:
    """Every staged customer's kept quality profile and identifier hashes are ``customer_profile`` and
    ``identifier_digests`` of its stored JSON; other entities keep neither. Returns how many distinct profiles
    the customers have."""
    from hub.quality.completeness import customer_profile, profile_bits
    from hub.quality.identifiers import identifier_digests

    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(staged_record.c.entity, staged_record.c.record,
                                      staged_record.c.quality_profile, staged_record.c.identifier_hashes)).all()
    customers = [(_load(rec), bits, hashes) for entity, rec, bits, hashes in rows if entity == "customers"]
    assert customers and len(customers) < len(rows)
    assert [bits for _, bits, _ in customers] == [profile_bits(customer_profile(rec)) for rec, _, _ in customers]
    assert [bytes(h) for _, _, h in customers] == [identifier_digests(rec) for rec, _, _ in customers]
    assert sum(len(h) > 0 for _, _, h in customers) > len(customers) / 2  # most hold an e-mail or a phone
    assert all(bits is None and hashes is None for entity, _, bits, hashes in rows if entity != "customers")
    return len({bits for _, bits, _ in customers})


def test_staged_customers_keep_the_quality_profile_and_identifiers_of_their_record_through_changes(
        store_url: str, tmp_path: Path, mappings) -> None:
    """Staging writes which fields a customer record holds (the quality dimensions count records by it) and its
    strong identifiers' hashes (the brake counts their holders) beside it, and rewrites both with the record:
    after a first stage and after a change of a third of the world, on SQLite and PostgreSQL (COPY)."""
    world = SandboxWorld.create_or_load(tmp_path / "world", customers=120, seed=5)
    store = Store(store_url)
    try:
        _pull_all(world, store)
        stage_pending(store, mappings, SOURCES)
        assert _profiles_are_those_of_the_records(store) > 3
        world.mutate(fraction=0.3, seed=3)
        _pull_all(world, store)
        assert stage_pending(store, mappings, SOURCES).staged > 0
        _profiles_are_those_of_the_records(store)
    finally:
        store.dispose()


def test_an_incremental_stage_reads_the_unstaged_rows_through_their_own_index(tmp_path: Path, mappings) -> None:
    """After a change, staging's page query reads ix_landing_unstaged (the partial index of rows never staged or
    changed since), not every landed row of the source: through (source, id) it fetched each row, payload and
    all, to compare its hashes (1M people: 14.5 GB read for 27k changed records)."""
    from query_plans import plan_of, statements_of

    world = SandboxWorld.create_or_load(tmp_path / "world", customers=120, seed=5)
    store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        _pull_all(world, store)
        stage_pending(store, mappings, SOURCES)
        world.mutate(fraction=0.1, seed=3)
        _pull_all(world, store)
        staged: list[int] = []
        pages = [(q, p) for q, p in statements_of(
            store, lambda: staged.append(stage_pending(store, mappings, SOURCES).staged))
            if "staged_hash IS NULL OR" in q]
        assert staged[0] > 0 and pages
        for statement, parameters in pages:
            plan = plan_of(store, statement, parameters)
            assert any("USING INDEX ix_landing_unstaged" in p for p in plan), plan
    finally:
        store.dispose()


def test_quality_dimensions_of_kept_profiles_are_those_of_the_records(staged_world) -> None:
    """The quality dimensions count staged customers by their kept profiles; a store staged before profiles were
    kept (every profile null) is read record by record once, its profiles filled in, to the same dimensions."""
    from hub.quality import QualityConfig, score_dimensions
    from hub.quality.dimensions import CACHE_ENTITY

    _, store, _ = staged_world
    now = datetime(2026, 12, 5)  # as the store's times are read: naive UTC
    kept = score_dimensions(store, QualityConfig(), now=now)
    with store.begin() as conn:
        conn.execute(staged_record.update().values(quality_profile=None))
    store.save_cursor("hub", CACHE_ENTITY, None)  # forget the kept scores: score again
    assert score_dimensions(store, QualityConfig(), now=now) == kept
    _profiles_are_those_of_the_records(store)  # filled in
    assert kept["completeness"]["sources"]["erp"]["records"] > 0


# -- the quarantine lifecycle, on SQLite and PostgreSQL ------------------------------------------------------


def _land(store: Store, source: str, entity: str, sid: str, payload: dict) -> None:
    store.land_page(source, entity, [LandingRecord(sid, payload, payload_hash(payload))], None)


GOOD = {"id": 7, "email": "wei.chen@example.com", "first_name": "偉", "last_name": "陳",
        "billing": {"phone": "13800138000", "country": "CN"}, "meta_data": []}


# text JSON encoders disagree on: quotes, backslashes, control characters (short and \u escapes), U+2028,
# astral characters, non-ASCII letters
AWKWARD_NAMES = ['Zoë "Q" O\\Brien', "Tab\tNew\nLine", "Ctrl\x01\x1fChar", "Line\u2028Sep Ann", "Emoji 😀 Lee",
                 "Ünïcödé Müller", "欧阳 娜娜"]


def test_staged_json_text_and_hashes_are_the_store_encoding(store: Store, mappings) -> None:
    """Whatever the write path (SQLite: rows straight to the driver; elsewhere SQLAlchemy) and the encoder
    (orjson where it is byte-equal), a staged record and its flags are stored as the store's JSON encoder writes
    them, ``record_hash`` is the SHA-256 of ``[record, quality_flags, customer_key]`` in that encoding, and
    ``staged_at`` is the store's timestamp: the fast paths pinned against the general one."""
    cfg = {"webshop": {"kind": "woocommerce"}}
    for i, name in enumerate(AWKWARD_NAMES, start=1):
        _land(store, "webshop", "customers", str(i), dict(
            GOOD, id=i, email=f"c{i}@example.com", first_name=name, last_name="",
            billing={"phone": "12345" if i % 2 else "13800138000", "country": "CN", "company": name}))
    order = {"id": 50, "number": "50", "status": "completed", "currency": "CNY", "total": "10.00",
             "customer_id": 1, "date_created_gmt": "2024-05-06T11:00:00",
             "line_items": [{"name": AWKWARD_NAMES[0], "quantity": 2, "price": 3, "total": "6.00", "sku": "ä\x02"}]}
    _land(store, "webshop", "orders", "50", order)
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    st = stage_pending(store, mappings, cfg)
    assert st.staged == len(AWKWARD_NAMES) + 1 and st.quarantined == 0
    rows = _staged(store)
    assert {r["customer_key"] for r in rows} == {None, "webshop:1"}
    assert any(_load(r["quality_flags"]) for r in rows)
    companies = {_load(r["record"]).get("company") or "" for r in rows}
    assert any('"' in c and "\\" in c and "ë" in c for c in companies)  # what the encoders must escape alike
    models = {"customers": CustomerRecord, "orders": Order}
    for r in rows:
        # the record as the general path makes it: the model's dump, in field order
        record = models[r["entity"]].model_validate(_load(r["record"])).model_dump(mode="json")
        flags = _load(r["quality_flags"])
        text = json.dumps([record, flags, r["customer_key"]], ensure_ascii=False, separators=(",", ":"))
        assert r["record_hash"] == hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        assert isinstance(r["staged_at"], datetime) and r["staged_at"] >= before
    if store.engine.dialect.name == "sqlite":  # the stored text itself, byte for byte
        with store.engine.connect() as c:
            for entity, rec_text, flags_text, ts_type in c.execute(sa.text(
                    "SELECT entity, record, quality_flags, typeof(staged_at) FROM staged_record")):
                again = models[entity].model_validate_json(rec_text).model_dump(mode="json")
                assert rec_text == json.dumps(again, ensure_ascii=False, separators=(",", ":"))
                assert flags_text == json.dumps(json.loads(flags_text), ensure_ascii=False, separators=(",", ":"))
                assert ts_type == "text"
    assert stage_all(store, mappings, cfg).unchanged == len(AWKWARD_NAMES) + 1  # the hashes match: nothing to write


def test_quarantine_lifecycle(store: Store, mappings) -> None:
    cfg = {"webshop": {"kind": "woocommerce"}}
    _land(store, "webshop", "customers", "7", GOOD)
    no_name = dict(GOOD, id=8, first_name="", last_name="")
    _land(store, "webshop", "customers", "8", no_name)
    st = stage_pending(store, mappings, cfg)
    assert (st.staged, st.quarantined) == (1, 1)
    assert st.top_reasons() == [("required.name_missing", 1)]
    (q,) = _quarantined(store)
    assert (q["source"], q["entity"], q["source_id"]) == ("webshop", "customers", "8")
    assert _load(q["payload"]) == no_name

    # fixed at the source: leaves quarantine when it stages cleanly
    _land(store, "webshop", "customers", "8", dict(no_name, first_name="Na", last_name="Li"))
    st = stage_pending(store, mappings, cfg)
    assert (st.staged, st.released, st.quarantined) == (1, 1, 0)
    assert _quarantined(store) == []

    # a bad optional field keeps the record: the field is nulled and flagged
    _land(store, "webshop", "customers", "7", dict(GOOD, billing={"phone": "12345", "country": "CN"}))
    stage_pending(store, mappings, cfg)
    rec = next(r for r in _staged(store) if r["record_key"] == "webshop:7")
    assert _load(rec["record"])["phones"] == [] and "phones:phone.invalid" in _load(rec["quality_flags"])

    # a staged record broken at the source moves to quarantine (its stale staged row goes)
    _land(store, "webshop", "customers", "7", dict(GOOD, email="", billing={"phone": "call me"}))
    st = stage_pending(store, mappings, cfg)
    assert st.quarantined == 1
    assert {r["record_key"] for r in _staged(store)} == {"webshop:8"}
    (q,) = _quarantined(store)
    assert _load(q["reasons"]) == ["required.contact_missing", "phone.invalid"]

    # an unknown source in landing is left alone, not lost: it stays pending
    _land(store, "legacy_crm", "customers", "1", {"x": 1})
    assert stage_pending(store, mappings, cfg).records_in == 0
    with store.engine.connect() as c:
        assert c.execute(sa.select(landing.c.staged_hash).where(landing.c.source == "legacy_crm")).scalar() is None


def test_chunked_staging_and_duplicate_keys_in_one_run(store: Store, mappings) -> None:
    """Chunks smaller than the data, on both backends; rows of several chunks, incl. changed ones."""
    cfg = {"webshop": {"kind": "woocommerce", "phone_region": "CN"}}
    recs = [LandingRecord(str(i), dict(GOOD, id=i, email=f"c{i}@example.com"),
                          payload_hash(dict(GOOD, id=i, email=f"c{i}@example.com"))) for i in range(1, 26)]
    store.land_page("webshop", "customers", recs, None)
    st = stage_pending(store, mappings, cfg, chunk_size=7)
    assert st.staged == 25 and len(_staged(store)) == 25
    changed = [LandingRecord(r.source_id, dict(r.payload, last_name="王"), payload_hash(dict(r.payload, last_name="王")))
               for r in recs[::5]]
    store.land_page("webshop", "customers", changed, None)
    st = stage_pending(store, mappings, cfg, chunk_size=2)
    assert st.records_in == 5 and st.staged == 5
    assert all(_load(r["record"])["family_name"] == "王" for r in _staged(store) if r["source_id"] in {"1", "6"})


def test_a_changed_mapping_restages_its_source_by_itself(sqlite_store: Store, mappings) -> None:
    store = sqlite_store
    for i in range(1, 4):
        _land(store, "webshop", "customers", str(i), dict(GOOD, id=i, billing={"phone": "030 1234567"}))
    first = stage_pending(store, mappings, {"webshop": {"kind": "woocommerce"}})
    assert first.staged == 3 and first.restaged_sources == []
    assert stage_pending(store, mappings, {"webshop": {"kind": "woocommerce"}}).records_in == 0
    # the source's phone region changes in hub.yaml: every row is re-read with the new setting
    de = stage_pending(store, mappings, {"webshop": {"kind": "woocommerce", "phone_region": "DE"}})
    assert de.restaged_sources == ["webshop"] and de.records_in == 3 and de.staged == 3
    assert {_load(r["record"])["phones"][0]["e164"] for r in _staged(store)} == {"+49301234567"}
    assert "fully re-staged: webshop" in de.markdown()
    # a changed declaration does the same; an unchanged one does not
    decl = yaml.safe_load((Path(__file__).parent.parent / "hub/mappings/woocommerce.yaml").read_text("utf-8"))
    decl["entities"]["customers"]["records"][0]["fields"]["language"] = "meta_data[key=lang].value"
    changed = {**mappings, "woocommerce": parse_mapping(decl)}
    cfg = {"webshop": {"kind": "woocommerce", "phone_region": "DE"}}
    again = stage_pending(store, changed, cfg)
    assert again.restaged_sources == ["webshop"] and again.unchanged == 3  # same output: nothing rewritten
    assert stage_pending(store, changed, cfg).records_in == 0


def test_staged_records_are_exactly_the_canonical_model_dumps(staged_world) -> None:
    """Staged records are canonical: validating and dumping them again changes nothing (every source)."""
    _, store, _ = staged_world
    models = {"customers": CustomerRecord, "orders": Order, "shipments": Shipment, "interactions": Interaction}
    rows = _staged(store)
    assert len(rows) > 1000
    for r in rows:
        rec = _load(r["record"])
        again = models[r["entity"]].model_validate(rec).model_dump(mode="json")
        assert json.dumps(again, ensure_ascii=False) == json.dumps(rec, ensure_ascii=False), r["record_key"]


def test_a_sql_erp_source_without_a_mapping_is_a_configuration_error() -> None:
    import pytest

    from hub.mappings import MappingError
    from hub.staging import resolve_sources

    with pytest.raises(MappingError, match="'crm_db'.*needs `mapping:`"):
        resolve_sources({"crm_db": {"kind": "sql_erp"}})


def _unstaged_copy(store: Store, dest: Path) -> Store:
    """A copy of ``store`` with its landing rows as pulled: nothing staged, nothing in quarantine."""
    import sqlite3

    src, dst = sqlite3.connect(store.engine.url.database), sqlite3.connect(dest)
    src.backup(dst)
    src.close()
    dst.close()
    copy = Store(f"sqlite:///{dest}")
    with copy.begin() as conn:
        conn.execute(staged_record.delete())
        conn.execute(quarantine.delete())
        conn.execute(landing.update().values(staged_hash=None))
    return copy


def _staged_tables(store: Store) -> tuple[list, list, list]:
    with store.engine.connect() as conn:
        return (
            conn.execute(sa.text("SELECT entity, record_key, source, source_id, customer_key, record, quality_flags,"
                                 " record_hash, typeof(staged_at) FROM staged_record ORDER BY 1, 2")).all(),
            conn.execute(sa.text("SELECT source, entity, source_id, reasons, detail, payload, payload_hash"
                                 " FROM quarantine ORDER BY 1, 2, 3")).all(),
            conn.execute(sa.text("SELECT id, staged_hash FROM landing ORDER BY id")).all(),
        )


def test_parallel_mapping_stages_byte_for_byte_what_one_process_stages(staged_world, mappings, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A large read is mapped by this process and forked workers; the staged tables must not differ by a byte
    (the JSON text of records and flags, hashes, quarantine reasons and payloads, staged hashes)."""
    import hub.staging as staging

    _, store, _ = staged_world
    serial = _unstaged_copy(store, tmp_path / "serial.db")
    forked = _unstaged_copy(store, tmp_path / "forked.db")
    one = stage_pending(serial, mappings, SOURCES, workers=1)
    splits: list[int] = []
    real_fork_map = staging.fork_map

    def counting(fn, parts, workers, **options):
        splits.append(len(parts))
        return real_fork_map(fn, parts, workers, **options)

    monkeypatch.setattr(staging, "PARALLEL_TASK_ROWS", 60)  # the world is small: force the forked path
    monkeypatch.setattr(staging, "fork_map", counting)
    two = stage_pending(forked, mappings, SOURCES, workers=3, chunk_size=70)
    assert splits and set(splits) == {3}
    assert (two.records_in, two.staged, two.quarantined) == (one.records_in, one.staged, one.quarantined)
    assert one.quarantined > 0
    assert _staged_tables(forked) == _staged_tables(serial)
    forks = len(splits)
    again = stage_all(forked, mappings, SOURCES, workers=3, chunk_size=70)  # nothing changed: nothing written
    assert again.unchanged + again.quarantined == again.records_in and again.staged == 0
    assert len(splits) == forks  # records staged before are mapped in this process (read_workers)
    serial.dispose()
    forked.dispose()


def test_a_failing_mapping_worker_stops_staging_with_no_record_value_in_the_error(
        staged_world, tmp_path: Path, mappings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked mapping worker that raises stops the stage with WorkerFailed; its text says where, never what
    (the exception's message quoted a payload here), and the rows it held stay unstaged for the next run."""
    import os

    import hub.staging as staging
    from hub.dedupe.parallel import WorkerFailed

    _, store, _ = staged_world
    forked = _unstaged_copy(store, tmp_path / "failing.db")
    parent = os.getpid()
    real_map_one = staging._map_one

    def map_one(mapper, rows, ctx):
        if os.getpid() != parent:  # a forked worker
            raise ValueError(f"cannot map {rows[0][3]}")  # the landing payload's JSON text
        return real_map_one(mapper, rows, ctx)

    monkeypatch.setattr(staging, "PARALLEL_TASK_ROWS", 60)
    monkeypatch.setattr(staging, "_map_one", map_one)
    with pytest.raises(WorkerFailed) as err:
        stage_pending(forked, mappings, SOURCES, workers=2, chunk_size=70)
    text = str(err.value)
    assert "ValueError" in text and "map_one" in text
    assert "{" not in text and "@" not in text  # no payload, no e-mail address
    monkeypatch.setattr(staging, "_map_one", real_map_one)
    stage_pending(forked, mappings, SOURCES, workers=1)  # the next run stages what the failure left
    serial = _unstaged_copy(store, tmp_path / "serial.db")
    stage_pending(serial, mappings, SOURCES, workers=1)
    assert _staged_tables(forked) == _staged_tables(serial)
    forked.dispose()
    serial.dispose()


def test_hub_yaml_staging_workers_reach_the_staged_records_asset(staged_world, mappings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``staging.workers`` in hub.yaml is what the staged_records asset maps with (forked workers), and the
    output is byte for byte what one process stages. Default 0 (one per core); nonsense is a config error."""
    import dagster as dg
    from pydantic import ValidationError

    import hub.staging as staging
    from hub.assets import build_assets
    from hub.config import HubConfig
    from hub.resources import HubStoreResource

    assert HubConfig.model_validate({"sources": SOURCES}).staging.workers == 0
    assert HubConfig.model_validate({"sources": SOURCES, "staging": None}).staging.workers == 0
    with pytest.raises(ValidationError, match="staging.workers"):
        HubConfig.model_validate({"sources": SOURCES, "staging": {"workers": -1}})

    _, store, _ = staged_world
    serial = _unstaged_copy(store, tmp_path / "serial.db")
    stage_pending(serial, mappings, SOURCES)
    forked = _unstaged_copy(store, tmp_path / "forked.db")
    used_file = tmp_path / "fork_map_workers.txt"  # the stage runs in a child process of its own (Store.run_apart)
    real_fork_map = staging.fork_map

    def counting(fn, parts, workers, **options):
        with used_file.open("a", encoding="utf-8") as out:
            out.write(f"{workers}\n")
        return real_fork_map(fn, parts, workers, **options)

    monkeypatch.setattr(staging, "PARALLEL_TASK_ROWS", 60)  # the world is small: force the forked path
    monkeypatch.setattr(staging, "fork_map", counting)
    config = HubConfig.model_validate({"sources": SOURCES, "staging": {"workers": 2}})
    (asset,) = [a for a in build_assets(config) if dg.AssetKey("staged_records") in a.keys]
    result = dg.materialize([asset], resources={
        "store": HubStoreResource(database_url=f"sqlite:///{tmp_path / 'forked.db'}")})
    assert result.success
    used = [int(x) for x in used_file.read_text(encoding="utf-8").split()]
    assert used and set(used) == {2}
    assert _staged_tables(forked) == _staged_tables(serial)
    serial.dispose()
    forked.dispose()


def test_a_read_is_mapped_by_several_processes_only_when_most_of_it_was_never_staged() -> None:
    """Forked mapping pays for a first stage (records to insert while the next read maps) and costs for a
    restage (unchanged output, nothing to write): the rows' staged_hash decides per read."""
    from hub.staging import read_workers

    fresh = [(i, "customers", str(i), "{}", "h", None) for i in range(10)]
    staged = [(i, "customers", str(i), "{}", "h", "h") for i in range(10)]
    assert read_workers(fresh, 2) == 2 and read_workers(fresh, 1) == 1
    assert read_workers(staged, 4) == 1
    assert read_workers(fresh[:5] + staged[:5], 2) == 2 and read_workers(fresh[:4] + staged[:6], 2) == 1


def test_a_first_stage_on_postgresql_keeps_the_statistics_of_the_table_it_fills(
        postgres_database_url: str, mappings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first stage fills staged_record from empty: PostgreSQL analyzes it as it grows (each time it has
    doubled since its last analysis), or every chunk's lookup of its record keys is planned for an empty table
    (100k people: each chunk read every staged customer). Counted as the ANALYZE statements the stage sends."""
    import hub.store

    monkeypatch.setattr(hub.store, "ANALYZE_AFTER_ROWS", 20)
    store = Store(postgres_database_url)
    analyzed: list[int] = []

    def count(conn, cursor, statement, *args) -> None:
        # a load autovacuum would vacuum but will not (it is off) is analyzed by VACUUM (ANALYZE)
        if statement.startswith(('ANALYZE "staged_record"', 'VACUUM (ANALYZE) "staged_record"')):
            with store.engine.connect() as other:  # rows staged (and committed) when it ran
                analyzed.append(other.execute(sa.select(sa.func.count()).select_from(staged_record)).scalar())

    try:
        recs = [LandingRecord(str(i), dict(GOOD, id=i, email=f"c{i}@example.com"),
                              payload_hash(dict(GOOD, id=i, email=f"c{i}@example.com"))) for i in range(1, 401)]
        store.land_page("webshop", "customers", recs, None)
        sa.event.listen(store.engine, "before_cursor_execute", count)
        st = stage_pending(store, mappings, {"webshop": {"kind": "woocommerce", "phone_region": "CN"}},
                           chunk_size=25)
        assert st.staged == 400 and len(_staged(store)) == 400
        # from empty: after the first chunk, then whenever the rows staged since reach those analyzed
        assert analyzed == [25, 50, 100, 200, 400], analyzed
    finally:
        store.dispose()


def test_a_stage_adding_an_entity_to_a_large_staged_table_keeps_its_postgresql_statistics(
        postgres_database_url: str, mappings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each source adds to staged_record's part of an entity (the ERP's customers after the call center's
    calls and few customers). PostgreSQL analyzes the table while that part grows, not only when the table
    doubled: planned for one row, each chunk's lookup of its record keys walked every staged customer (1M
    people: 443 ms a chunk). Seen here as the analyses of staged_record while a stage of customers runs."""
    import hub.store

    monkeypatch.setattr(hub.store, "ANALYZE_AFTER_ROWS", 50)
    store = Store(postgres_database_url)
    analyzed: list[str] = []

    def note(conn, cursor, statement: str, *args) -> None:  # noqa: ANN001
        # a load autovacuum would vacuum but will not (it is off) is analyzed by VACUUM (ANALYZE)
        if statement.startswith(('ANALYZE "staged_record"', 'VACUUM (ANALYZE) "staged_record"')):
            analyzed.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", note)
    try:
        orders = [{"id": i, "number": str(i), "status": "completed", "currency": "CNY", "total": "10.00",
                   "customer_id": 7, "date_created": "2024-02-03T10:00:00", "line_items": []} for i in range(3000)]
        store.land_page("webshop", "orders", [LandingRecord(str(o["id"]), o, payload_hash(o)) for o in orders], None)
        assert stage_pending(store, mappings, SOURCES, chunk_size=100).staged == 3000
        analyzed.clear()
        customers = [{**GOOD, "id": i, "email": f"c{i}@example.com"} for i in range(800)]
        store.land_page("webshop", "customers", [LandingRecord(str(c["id"]), c, payload_hash(c)) for c in customers],
                        None)
        assert stage_pending(store, mappings, SOURCES, chunk_size=100).staged == 800
        # while the 800 customers were written, in chunks of 100: after 100, 300 and 700 (the part doubled)
        assert len(analyzed) >= 3, analyzed
    finally:
        store.dispose()
