"""Outbox safety with real processes against the real sandbox shop, on SQLite and PostgreSQL stores.

* Two pushers racing on one store send every row exactly once (rows are claimed atomically before sending).
* A pusher killed (SIGKILL) after the shop carried a batch out but before the hub recorded it leaves that
  batch in doubt; the next run asks the shop what it holds, records those rows as done without sending them
  again, and sends only the rest: every customer is written exactly once (counted by the shop itself).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.connectors.base import run_push
from hub.connectors.woocommerce import WooCommerceConnector
from hub.sandbox import Endpoints, SandboxWorld
from hub.store import Store, push_outbox, push_result

PUSHER = """
import sys, time
from pathlib import Path
from hub.connectors.base import run_push
from hub.connectors.woocommerce import WooCommerceConnector
from hub.store import Store
url, shop, key, secret, batch, go = sys.argv[1:7]
store = Store(url)
conn = WooCommerceConnector(shop, key, secret, timeout=(5.0, 120.0))
print("ready", flush=True)
while go and not Path(go).exists():
    time.sleep(0.01)
s = run_push(conn, store, "webshop", batch_size=int(batch), run_id=sys.argv[7])
print("done", s.sent, s.ok, s.rejected, s.error, s.reconciled, flush=True)
"""


@pytest.fixture()
def world(tmp_path: Path) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path / "world", customers=300, seed=7)


def _pusher(store: Store, ep: Endpoints, batch: int, go: Path | None, run_id: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", PUSHER, store.url, ep.webshop_url, ep.webshop_key, ep.webshop_secret, str(batch),
         str(go or ""), run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    return proc


def _queue(store: Store, world: SandboxWorld, n: int) -> list[int]:
    ids = sorted(world.shop.customers)[:n]
    store.enqueue_pushes("webshop", "customers", [
        (str(i), f"G{i:09d}", {"golden_id": f"G{i:09d}", "segment": "vip", "value_tier": "gold"}) for i in ids])
    return ids


def _results_per_row(store: Store) -> Counter[int]:
    with store.engine.connect() as conn:
        return Counter(r[0] for r in conn.execute(sa.select(push_result.c.outbox_id)))


def test_two_pushers_racing_send_each_row_once(world: SandboxWorld, store: Store, tmp_path: Path) -> None:
    with world.serve() as ep:
        ids = _queue(store, world, 150)
        world.shop.updates.clear()
        # each batch request takes 50 ms at the shop, so the two pushers are at work at the same time
        world.faults = "webshop:slow@1-1000:delay=0.05:path=/batch"
        go = tmp_path / "go"
        procs = [_pusher(store, ep, 10, go, f"run-{n}") for n in (1, 2)]
        go.touch()
        outs = [p.communicate(timeout=300) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        done = [line.split() for out, _ in outs for line in out.splitlines() if line.startswith("done")]
        oks = [int(d[2]) for d in done]
        assert sum(oks) == 150 and min(oks) > 0, done  # both took part, together they sent every row once
        assert world.shop.updates == Counter({("customers", i): 1 for i in ids})
        assert set(_results_per_row(store).values()) == {1}
        with store.engine.connect() as conn:
            runs = dict(conn.execute(sa.select(push_result.c.run_id, sa.func.count())
                                     .group_by(push_result.c.run_id)).all())
        assert runs == {f"run-{n}": ok for n, ok in zip((1, 2), oks, strict=True)}
        assert store.pending_pushes("webshop") == []


def test_push_killed_between_sending_and_recording_is_finished_not_repeated(
        world: SandboxWorld, store: Store) -> None:
    with world.serve() as ep:
        ids = _queue(store, world, 170)
        world.shop.updates.clear()
        # the second batch request is carried out by the shop, whose answer then takes a minute
        world.faults = "webshop:stall@2:delay=60:path=/batch"
        proc = _pusher(store, ep, 100, None, "run-killed")
        deadline = time.monotonic() + 60
        while not world.fault_controller.fired and time.monotonic() < deadline:
            time.sleep(0.02)
        assert world.fault_controller.fired, proc.communicate(timeout=5)
        time.sleep(0.2)  # the stalled request has been applied; the pusher waits for the answer
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert len(world.shop.updates) == 170  # both batches reached the shop...
        with store.engine.connect() as conn:
            statuses = Counter(r[0] for r in conn.execute(sa.select(push_outbox.c.status)))
        assert statuses == {"ok": 100, "sending": 70}  # ...the hub recorded only the first

        # the shop lost ten of those writes (restored from a backup): they are not held, so they are sent
        lost = ids[100:110]
        for i in lost:
            world.shop.customers[i]["meta_data"] = [m for m in world.shop.customers[i]["meta_data"]
                                                    if not m["key"].startswith("hub_")]
        world.faults = None
        conn = WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret)
        resumed = run_push(conn, store, "webshop", run_id="run-resumed")
        assert (resumed.reconciled, resumed.sent, resumed.ok) == (60, 10, 70)
        expected = Counter({("customers", i): 1 for i in ids})
        expected.update({("customers", i): 1 for i in lost})  # the lost write, then the one that stuck
        assert world.shop.updates == expected  # nothing the shop held was sent twice
        assert set(_results_per_row(store).values()) == {1}
        with store.engine.connect() as conn_:
            reasons = Counter(r[0] for r in conn_.execute(
                sa.select(push_result.c.reason).where(push_result.c.run_id == "run-resumed")))
        assert reasons == {"reconciled: the target already held it": 60, None: 10}
        for i in (ids[0], lost[0], ids[-1]):
            meta = {m["key"]: m["value"] for m in world.shop.customers[i]["meta_data"]}
            assert meta["hub_golden_id"] == f"G{i:09d}"
        # the hub knows what the shop holds: the same desired state queues nothing, another run sends nothing
        _queue(store, world, 170)
        assert store.pending_pushes("webshop") == []
        assert run_push(conn, store, "webshop").sent == 0
