"""What the hub wrote is verified, end to end through `hub demo` (the whole Dagster flow against the sandbox).

After a first sync, someone else damages what the hub wrote: the shop loses the hub meta of customers (a
restore from an old backup), an ERP clerk overwrites golden-id identifiers, three ERP parties end up
with a second golden-id identifier (what two overlapping syncs used to leave behind), and a community manager
takes the hub's segment / tier tags off WeChat followers, and someone edits the PBX's caller directory
(deletes rows, types over golden ids) — a file no pull reads: the push checks it against what the hub wrote. The next sync pulls
those systems, sees the difference, pushes exactly those records again and the data-quality report counts
the drift; a third sync sends nothing.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from hub.connectors.wechat import HUB_TAG_PREFIX
from hub.sandbox import erp as erp_mod
from hub.sandbox.social import WeChatState
from hub.sandbox.webshop import WebShopState

HUB = str(Path(sys.executable).parent / "hub")


def _hub(cwd: Path, *args: str) -> str:
    proc = subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HUB_DATABASE_URL": ""})
    assert proc.returncode == 0, f"hub {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def _pushed(summary: str) -> dict[str, int]:
    section = summary.split("Pushed", 1)[1].split("Data-quality", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\w+)\s+(\d+):", section, re.M)}


def _report(cwd: Path) -> dict:
    return json.loads((cwd / ".hub" / "reports" / "data_quality.json").read_text(encoding="utf-8"))


def test_golden_ids_lost_or_changed_in_targets_are_seen_and_pushed_again(tmp_path: Path) -> None:
    _hub(tmp_path, "demo", "--customers", "200")
    world = tmp_path / ".hub" / "sandbox"

    shop = WebShopState.load(world / "webshop.json")
    holders = [c for c in shop.customers.values() if any(m["key"] == "hub_golden_id" for m in c["meta_data"])]
    lost = sorted(c["id"] for c in holders)[:60]
    for cid in lost:
        shop.customers[cid]["meta_data"] = [m for m in shop.customers[cid]["meta_data"]
                                            if not m["key"].startswith("hub_")]
    shop.save(world / "webshop.json")

    wechat = WeChatState.load(world / "wechat.json")
    hub_tags = {tid for tid, name in wechat.tags.items() if name.startswith(HUB_TAG_PREFIX)}
    tagged = sorted(o for o, u in wechat.users.items() if set(u.get("tagid_list", [])) & hub_tags)[:20]
    for openid in tagged:
        wechat.users[openid]["tagid_list"] = [t for t in wechat.users[openid]["tagid_list"] if t not in hub_tags]
    wechat.save(world / "wechat.json")

    directory = world / "cdr" / "directory.csv"
    with open(directory, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    gone, typo = {r["e164"] for r in rows[:5]}, {r["e164"] for r in rows[5:8]}
    kept = [{**r, "golden_id": "G-TYPO"} if r["e164"] in typo else r for r in rows if r["e164"] not in gone]
    with open(directory, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)

    engine = sa.create_engine(json.loads((world / "world.json").read_text())["erp_url"])
    ident = erp_mod.party_identifier
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        hub_rows = conn.execute(sa.select(ident.c.id, ident.c.party, ident.c.code)
                                .where(ident.c.type == "hub_golden_id").order_by(ident.c.party)).all()
        edited, doubled = hub_rows[:5], hub_rows[5:8]
        for row_id, _, _ in edited:  # a clerk types over the golden id (the row's write_date moves)
            conn.execute(ident.update().where(ident.c.id == row_id).values(code="G-TYPO", write_date=now))
        conn.execute(ident.insert(), [{"party": party, "type": "hub_golden_id", "code": code, "create_date": now}
                                      for _, party, code in doubled])

    second = _hub(tmp_path, "demo")
    pushed = _pushed(second)
    assert pushed == {"erp": 8, "webshop": 60, "social": 20, "callcenter": 8}, second
    drift = {t["target"]: (t["drift_found"], t["drift_repaired"]) for t in _report(tmp_path)["push"]["targets"]}
    assert drift == {"erp": (8, 8), "webshop": (60, 60), "social": (20, 20), "callcenter": (8, 8)}, drift
    assert _report(tmp_path)["headline"]["push_drift_found"] == 96
    with open(directory, newline="", encoding="utf-8") as fh:
        assert sorted((r["e164"], r["golden_id"]) for r in csv.DictReader(fh)) == sorted(
            (r["e164"], r["golden_id"]) for r in rows)  # the directory is whole again

    wechat = WeChatState.load(world / "wechat.json")
    assert all(set(wechat.users[o]["tagid_list"]) & hub_tags for o in tagged)  # the tags are back

    shop = WebShopState.load(world / "webshop.json")
    assert all(any(m["key"] == "hub_golden_id" and m["value"] for m in shop.customers[cid]["meta_data"])
               for cid in lost)
    with engine.connect() as conn:
        after = conn.execute(sa.select(ident.c.party, ident.c.code).where(ident.c.type == "hub_golden_id")).all()
    by_party: dict[int, list[str]] = {}
    for party, code in after:
        by_party.setdefault(party, []).append(code)
    assert all(len(codes) == 1 for codes in by_party.values())  # the doubled parties have one again
    assert {party: codes[0] for party, codes in by_party.items() if party in {p for _, p, _ in hub_rows[:8]}} == {
        party: code for _, party, code in hub_rows[:8]}
    engine.dispose()

    log = _hub(tmp_path, "push", "log", "--target", "webshop", "--limit", "60", "--format", "csv").splitlines()
    assert len(log) == 61 and all(",drift," in line and "golden_id: — → G" in line for line in log[1:]), log[:3]

    third = _hub(tmp_path, "demo")
    assert sum(_pushed(third).values()) == 0, third
