"""`hub push log` and the dry-run preview, on a store filled by real pushes to the sandbox shop and a CDR
caller directory: one line per row, filters, formats, personal data masked, the outbox left untouched."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from hub.connectors.base import run_pull, run_push
from hub.connectors.cdr import AsteriskCdrConnector
from hub.connectors.woocommerce import WooCommerceConnector
from hub.push_preview import preview, preview_text
from hub.sandbox import SandboxWorld
from hub.store import Store, push_outbox

HUB = str(Path(sys.executable).parent / "hub")
PHONE = "+8613800138000"


def _log(cwd: Path, store: Store, *args: str) -> str:
    proc = subprocess.run([HUB, "push", "log", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HUB_DATABASE_URL": store.url})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _statuses(store: Store) -> dict[int, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(push_outbox.c.id, push_outbox.c.status)).all())


def test_push_log_and_dry_run_preview(tmp_path: Path, sqlite_store: Store) -> None:
    store = sqlite_store  # the log is plain SQL; claims and recording are tested on PostgreSQL elsewhere
    world = SandboxWorld.create_or_load(tmp_path / "world", customers=120, seed=3)
    with world.serve() as ep:
        shop = WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret)
        run_pull(shop, store, "customers")
        ids = sorted(world.shop.customers)[:12]
        store.enqueue_pushes("webshop", "customers", [
            *[(str(i), f"G{i:09d}", {"golden_id": f"G{i:09d}", "segment": "vip", "value_tier": "gold"})
              for i in ids],
            ("999999", "G000999999", {"golden_id": "G000999999"})])
        assert run_push(shop, store, "webshop", run_id="run-one").ok == 12
        directory = AsteriskCdrConnector(tmp_path / "cdr", system="callcenter")
        (tmp_path / "cdr").mkdir()
        store.enqueue_pushes("callcenter", "directory", [(PHONE, "G000000001", {
            "display_name": "陈伟", "golden_id": "G000000001", "value_tier": "gold", "segment": "vip"})])
        assert run_push(directory, store, "callcenter", run_id="run-one").ok == 1

        # the next desired states: 7 segment moves in the shop, the directory number removed, one create
        store.enqueue_pushes("webshop", "customers", [
            (str(i), f"G{i:09d}", {"golden_id": f"G{i:09d}", "segment": "lapsed", "value_tier": "gold"})
            for i in ids[:7]])
        store.enqueue_pushes("callcenter", "directory", [(PHONE, "G000000001", {"golden_id": "G000000001",
                                                                                "lifecycle": "deleted"})],
                             cause="remove")
        store.enqueue_pushes("erp", "customers", [("", "G000000077", {
            "golden_id": "G000000077", "display_name": "Anna Schmidt", "phones": ["+4915112345678"],
            "emails": ["anna@example.de"], "address": {"street": "Hauptstr. 1", "city": "Berlin"}})],
            cause="create")
        before = _statuses(store)

        previews = [preview(store, t) for t in ("webshop", "callcenter", "erp", "social")]
        assert _statuses(store) == before  # a dry run only reads the outbox: the rows stay pending
        shop_p, dir_p, erp_p, social_p = previews
        assert (shop_p.create, shop_p.update, shop_p.remove) == (0, 7, 0)
        assert len(shop_p.samples["update"]) == 5  # five samples at most
        assert shop_p.samples["update"][0] == (str(ids[0]), {"segment": ["vip", "lapsed"]})
        assert (dir_p.remove, erp_p.create, social_p.rows) == (1, 1, 0)
        text = preview_text(previews)
        assert "webshop      would create 0, update 7, remove 0" in text
        assert f"update {ids[0]}: segment: vip → lapsed" in text
        assert ("remove 138****8000: display_name: 陈* → —; golden_id: G000000001 → —; segment: vip → —; "
                "value_tier: gold → —") in text
        assert "create (new): " in text and "display_name: — → A*** S******" in text
        assert "+4915112345678" not in text and "anna@example.de" not in text and "陈伟" not in text
        assert "a***@example.de" in text and "Hauptstr" not in text and "Berlin" in text

    table = _log(tmp_path, store).splitlines()
    assert table[0].split() == ["time", "run_id", "target", "record", "status", "attempt", "cause", "changes",
                                "reason"]
    assert len(table) == 1 + 14  # 12 ok + 1 rejected (shop) + 1 ok (directory): one line per row
    assert "138****8000" in "\n".join(table) and PHONE not in "\n".join(table) and "陈伟" not in "\n".join(table)
    rejected = [line for line in table if " rejected " in line]
    assert len(rejected) == 1 and "999999" in rejected[0] and "customer not found" in rejected[0]

    rows = list(csv.DictReader(io.StringIO(_log(tmp_path, store, "--target", "webshop", "--format", "csv",
                                                "--status", "ok", "--limit", "5"))))
    assert len(rows) == 5 and {r["status"] for r in rows} == {"ok"} and {r["run_id"] for r in rows} == {"run-one"}
    assert rows[0]["changes"] == f"golden_id: — → G{ids[-1]:09d}; segment: — → vip; value_tier: — → gold"
    assert rows[0]["attempt"] == "1" and rows[0]["cause"] == "change"

    pending = json.loads(_log(tmp_path, store, "--status", "pending", "--format", "json"))
    assert len(pending) == 9 and {p["status"] for p in pending} == {"pending"}
    assert {p["cause"] for p in pending} == {"change", "remove", "create"}
    create = next(p for p in pending if p["cause"] == "create")
    assert create["record"] == "(new)" and create["changes"]["phones"] == [None, "151****5678"]
