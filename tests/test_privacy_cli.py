"""Personal data through its whole life, as a user meets it: `hub demo` against the sandbox, records deleted,
deactivated and unfollowed at their sources, consent withdrawn and given again — checked in the hub store,
the exports and the sandbox systems themselves."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.sandbox import SandboxWorld, load_ground_truth
from hub.store import Store, customer_360, golden_customer, golden_id_history, xref

HUB = str(Path(sys.executable).parent / "hub")
ENV = {"HUB_DATABASE_URL": ""}


def hub(cwd: Path, *args: str, exit_code: int = 0) -> str:
    """Run the hub CLI; its stdout (or, for an expected refusal, its stderr)."""
    proc = subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **ENV})
    assert proc.returncode == exit_code, (
        f"hub {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc.stdout if exit_code == 0 else proc.stderr


def store_of(cwd: Path) -> Store:
    return Store(f"sqlite:///{cwd / '.hub' / 'hub.db'}")


def current_members(cwd: Path) -> dict[str, set[str]]:
    """golden id -> current record keys (open xref rows)."""
    store = store_of(cwd)
    out: dict[str, set[str]] = defaultdict(set)
    with store.engine.connect() as conn:
        for rk, gid in conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))):
            out[gid].add(rk)
    store.dispose()
    return out


def holders(cwd: Path, record_keys: set[str]) -> dict[str, list[str]]:
    """Where a current xref / golden / 360 row still holds any of ``record_keys``."""
    store = store_of(cwd)
    found: dict[str, list[str]] = defaultdict(list)
    with store.engine.connect() as conn:
        for rk, gid in conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))):
            if rk in record_keys:
                found["xref"].append(f"{rk}->{gid}")
        for gid, rec in conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                                     .where(golden_customer.c.status == "active")):
            found["golden"] += [f"{gid}:{k}" for k in (rec or {}).get("record_keys", []) if k in record_keys]
        for gid, rec in conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record)):
            keys = {*rec["profile"].get("record_keys", []), *rec.get("social_accounts", [])}
            found["360"] += [f"{gid}:{k}" for k in keys & record_keys]
    store.dispose()
    return {k: v for k, v in found.items() if v}


def person_records(world_dir: Path) -> dict[str, dict[str, list[str]]]:
    """person id -> {"erp": party ids, "webshop": customer ids, "social": openids} from the answer key."""
    system = {("erp", "party"): "erp", ("webshop", "customer"): "webshop", ("wechat", "follower"): "social"}
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for g in load_ground_truth(world_dir):
        if g.person_id and (g.system, g.entity) in system:
            out[g.person_id][system[(g.system, g.entity)]].append(g.source_id)
    return out


def erp_rows(world: SandboxWorld, sql: str, **params: Any) -> list[tuple]:
    eng = sa.create_engine(world.erp_url)
    try:
        with eng.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]
    finally:
        eng.dispose()


def shop_customer(world_dir: Path, customer_id: int) -> dict | None:
    doc = json.loads((world_dir / "webshop.json").read_text(encoding="utf-8"))
    return next((c for c in doc["customers"] if c["id"] == customer_id), None)


def hub_meta(customer: dict) -> dict[str, str]:
    return {m["key"]: m["value"] for m in customer["meta_data"] if str(m["key"]).startswith("hub_")}


def export_360(cwd: Path) -> dict[str, dict[str, str]]:
    hub(cwd, "export", "customer360", "--out", "c360.csv")
    with (cwd / "c360.csv").open(encoding="utf-8", newline="") as fh:
        return {row["golden_id"]: row for row in csv.DictReader(fh)}


def test_deletes_at_the_source_and_consent_changes_reach_the_hub_and_the_targets(tmp_path: Path) -> None:
    hub(tmp_path, "demo", "--customers", "120")
    world_dir = tmp_path / ".hub" / "sandbox"
    world = SandboxWorld.create_or_load(world_dir)
    members = current_members(tmp_path)
    golden_of = {rk: gid for gid, keys in members.items() for rk in keys}
    people = person_records(world_dir)
    with_documents = {r[0] for r in erp_rows(world, "SELECT party FROM sale_sale UNION SELECT customer FROM "
                                                    "stock_shipment_out")}

    # A: a golden customer made of exactly one ERP party (no documents) and one shop customer: both deleted
    a = next((gid, keys) for gid, keys in sorted(members.items())
             if sorted(k.split(":")[0] for k in keys) == ["erp", "webshop"]
             and int(next(k for k in keys if k.startswith("erp:")).split(":")[1]) not in with_documents)
    a_gid, a_keys = a
    a_party = int(next(k for k in a_keys if k.startswith("erp:")).split(":")[1])
    a_customer = int(next(k for k in a_keys if k.startswith("webshop:")).split(":")[1])
    # B: an ERP party the hub wrote its golden id onto, switched off by a clerk
    b_party = next(int(pid) for pid, in erp_rows(world, "SELECT party FROM party_identifier WHERE type = "
                                                       "'hub_golden_id' ORDER BY party")
                   if f"erp:{pid}" in golden_of and f"erp:{pid}" not in a_keys)
    # C: a WeChat follower who leaves
    c_openid = next(o for p in people.values() for o in p.get("social", []) if f"social:{o}" in golden_of)
    # D: a shop customer who opted in to e-mail marketing (their golden customer says yes), untouched above
    c360 = export_360(tmp_path)
    d_customer = next(
        c["id"] for c in json.loads((world_dir / "webshop.json").read_text("utf-8"))["customers"]
        if any(m["key"] == "marketing_consent" and m["value"] == "yes" for m in c["meta_data"])
        and c["id"] != a_customer and c360.get(golden_of.get(f"webshop:{c['id']}", ""), {}).get("consent_email")
        == "True")
    d_gid = golden_of[f"webshop:{d_customer}"]
    assert hub_meta(shop_customer(world_dir, d_customer))["hub_consent_email"] == "yes"

    world.delete_party(a_party)
    world.delete_shop_customer(a_customer)
    world.deactivate_party(b_party)
    world.unfollow(c_openid)
    world.set_marketing_consent(d_customer, False)
    hub(tmp_path, "demo")

    gone = {f"erp:{a_party}", f"webshop:{a_customer}", f"erp:{b_party}", f"social:{c_openid}"}
    assert holders(tmp_path, gone) == {}
    store = store_of(tmp_path)
    with store.engine.connect() as conn:
        status = conn.execute(sa.select(golden_customer.c.status).where(golden_customer.c.golden_id == a_gid)
                              ).scalar_one()
        history = conn.execute(sa.select(golden_id_history.c.event, golden_id_history.c.reason)
                               .where(golden_id_history.c.golden_id == a_gid)).all()
    store.dispose()
    assert status == "retired"
    retired = [reason for event, reason in history if event == "retired"]
    assert retired and "deleted at its source" in retired[0], history
    # what the hub wrote onto the deactivated party is withdrawn
    assert erp_rows(world, "SELECT code FROM party_identifier WHERE party = :p AND type = 'hub_golden_id'",
                    p=b_party) == []
    assert erp_rows(world, "SELECT c.name FROM party_party_category_rel r JOIN party_category c "
                           "ON c.id = r.category WHERE r.party = :p AND c.name LIKE 'hub:%'", p=b_party) == []
    # D opted out: the 360 view says so, the shop is told, and no segment goes to the e-mail channel
    view = export_360(tmp_path)[d_gid]
    assert view["consent_email"] == "False"
    meta = hub_meta(shop_customer(world_dir, d_customer))
    assert meta["hub_consent_email"] == "no" and meta["hub_segment"] == "" and meta["hub_value_tier"] == ""

    world.set_marketing_consent(d_customer, True)  # ... and in again, later: the latest statement wins
    hub(tmp_path, "demo")
    view = export_360(tmp_path)[d_gid]
    assert view["consent_email"] == "True"
    meta = hub_meta(shop_customer(world_dir, d_customer))
    assert meta["hub_consent_email"] == "yes" and meta["hub_segment"] == view["segment"] != ""


def dump_store(cwd: Path) -> str:
    """Every row of every table of the hub store, as text."""
    import sqlite3

    con = sqlite3.connect(cwd / ".hub" / "hub.db")
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(str(row) for t in tables for row in con.execute(f'SELECT * FROM "{t}"'))  # noqa: S608
    finally:
        con.close()


def spellings(phone: str) -> set[str]:
    import phonenumbers

    n = phonenumbers.parse(phone, None)
    return {phone, phone.lstrip("+"), str(n.national_number)}


def hub_fails(cwd: Path, *args: str) -> str:
    return hub(cwd, *args, exit_code=2)


def test_erase_a_person_from_the_hub_and_every_system(tmp_path: Path) -> None:
    import phonenumbers

    hub(tmp_path, "demo", "--customers", "120")
    world_dir = tmp_path / ".hub" / "sandbox"
    store = store_of(tmp_path)
    with store.engine.connect() as conn:
        goldens = dict(conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                                    .where(golden_customer.c.status == "active")).all())
    store.dispose()
    owners: dict[str, set[str]] = defaultdict(set)
    for gid, rec in goldens.items():
        for p in rec["phones"]:
            owners[p].add(gid)
    # someone in the shop, on WeChat and in the ERP, with a number and an address of their own
    gid, rec = next((g, r) for g, r in sorted(goldens.items())
                    if {"erp", "webshop", "social"} <= set(r["sources"]) and r["primary_phone"]
                    and len(owners[r["primary_phone"]]) == 1 and r["primary_email"])
    phone, email = rec["primary_phone"], rec["primary_email"]
    typed = phonenumbers.format_number(phonenumbers.parse(phone, None), phonenumbers.PhoneNumberFormat.NATIONAL)
    keys = set(rec["record_keys"])
    shop_ids = [int(k.split(":")[1]) for k in keys if k.startswith("webshop:") and k.split(":")[1].isdigit()]
    party_ids = [int(k.split(":")[1]) for k in keys if k.startswith("erp:")]
    openids = [k.split(":", 1)[1] for k in keys if k.startswith("social:")]
    assert shop_ids and party_ids and openids

    # bad input erases nothing and says why
    assert "not a phone number" in hub_fails(tmp_path, "erase", "--phone", "12")
    assert "no customer has" in hub_fails(tmp_path, "erase", "--phone", "+86 139 0000 0001")
    shared = next((p for p, gids in sorted(owners.items()) if len(gids) > 1), None)
    assert shared, "the sandbox world has households sharing a number"
    message = hub_fails(tmp_path, "erase", "--phone", shared)
    assert "golden customers have" in message and "--golden-id" in message
    assert shared not in message  # the number is not echoed back in clear
    preview = hub(tmp_path, "erase", "--phone", typed, "--dry-run")
    assert "dry run: nothing was erased" in preview and "staged_record" in preview and "webshop" in preview
    hub(tmp_path, "export", "golden", "--out", "g.csv")
    assert gid in (tmp_path / "g.csv").read_text("utf-8")  # the dry run changed nothing

    out = hub(tmp_path, "erase", "--phone", typed, "--reason", f"asked on the phone from {typed}")
    assert "erased as E" in out
    # the person calls again before the next sync: the new call must not bring the number back
    master = world_dir / "cdr" / "Master.csv"
    line = master.read_text("utf-8").splitlines()[0]
    fields = next(csv.reader([line]))
    national = str(phonenumbers.parse(phone, None).national_number)
    master.open("a", encoding="utf-8").write(
        line.replace(fields[1], national).replace(fields[16], "1799999999.77") + "\n")
    summary = hub(tmp_path, "demo")  # the erasure reaches every system; nothing of the person comes back
    assert re.search(r"Privacy: .* [1-9]\d* records of erased people suppressed", summary), summary

    dump = dump_store(tmp_path)
    for value in {*spellings(phone), email, email.upper(), *openids}:
        assert value not in dump, f"the hub store still holds {value}"
    for what in ("golden", "xref", "customer360"):
        hub(tmp_path, "export", what, "--out", f"{what}.csv")
        text = (tmp_path / f"{what}.csv").read_text("utf-8")
        assert gid not in text and email not in text and not spellings(phone) & set(text.replace(",", " ").split())
        assert not any(f"{k.split(':')[0]},{k.split(':', 1)[1]}," in text for k in keys), what
    # the systems no longer hold what the hub wrote: shop customers deleted, party anonymised, tags and number gone
    assert all(shop_customer(world_dir, i) is None for i in shop_ids)
    world = SandboxWorld.create_or_load(world_dir)
    for party in party_ids:
        assert erp_rows(world, "SELECT name, active FROM party_party WHERE id = :p", p=party) in ([("(erased)", 0)],
                                                                                                  [])
        assert erp_rows(world, "SELECT code FROM party_identifier WHERE party = :p", p=party) == []
        assert erp_rows(world, "SELECT value FROM party_contact_mechanism WHERE party = :p", p=party) == []
    users = {u["openid"]: u for u in json.loads((world_dir / "wechat.json").read_text("utf-8"))["users"]}
    hub_tags = {t["id"] for t in json.loads((world_dir / "wechat.json").read_text("utf-8"))["tags"]
                if t["name"].startswith("hub:")}
    assert all(not set(users[o]["tagid_list"]) & hub_tags for o in openids)
    assert not spellings(phone) & set((world_dir / "cdr" / "directory.csv").read_text("utf-8").replace(",", " ")
                                      .split())
    # the audit row is all that is left, and erasing again finds nobody
    store = store_of(tmp_path)
    with store.engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT status, selector, reason FROM erasure")).all()
    store.dispose()
    assert audit == [("done", "phone", "asked on the phone from [number]")]
    assert "erased already" in hub_fails(tmp_path, "erase", "--phone", typed)


HOLD_THE_STORE = """
import sys, time
from hub.store import Store
from hub.sync_lock import SyncLock
SyncLock(Store(sys.argv[1]), sys.argv[2], job="full_sync").acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_erase_waits_for_a_running_sync(tmp_path: Path) -> None:
    """`hub erase` edits golden records and the outbox: it takes the store's sync lock, so it neither runs in the
    middle of a sync nor lets one start in the middle of it; it says whom it waits for."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    Store(url).dispose()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "DAGSTER_HOME"},
           "HUB_DATABASE_URL": url}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_STORE, url, "run-nightly"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        erasing = subprocess.Popen([HUB, "erase", "--email", "ana.lima@mailbox.cn"], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = erasing.stderr.readline()  # an erasure that did not wait would end here with its answer
        assert "waiting for sync run-nightly" in first, first
        assert erasing.poll() is None
        holder.kill()  # the sync ends (here: dies); the erasure goes on
        holder.wait()
        _, err = erasing.communicate(timeout=120)
        assert erasing.returncode == 2 and "nothing erased" in err  # nobody with that address: exit 2
    finally:
        holder.kill()
        holder.wait()
    # a dry run only reads: it does not wait
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_STORE, url, "run-nightly"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        dry = subprocess.run([HUB, "erase", "--email", "ana.lima@mailbox.cn", "--dry-run"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert dry.returncode == 2 and "waiting" not in dry.stderr
    finally:
        holder.kill()
        holder.wait()
