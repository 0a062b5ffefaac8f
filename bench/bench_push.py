"""Push throughput per target: one row per request / transaction vs the batched push, same script, same world.

    .venv/bin/python bench/bench_push.py --people 2000                 # sandbox world + a real trytond

For every target the same outbox is sent twice through ``run_push``: once with ``batch_size=1`` (one row per
``push`` call: one HTTP request, JSON-RPC round or transaction per row — how the web shop and SQL ERP
were pushed before batching) and once with the connector's own batch size (WooCommerce
``POST /customers/batch`` of 100, WeChat batch tagging of 50 after one ``batchget`` of the current tags,
multi-row SQL in one transaction, Tryton multi-record ``create`` / ``write``). HTTP targets run at the
rate the packaged hub.yaml sets (20 requests/s, ``--rate``); the row-by-row run is capped at
``--per-row-rows`` rows (it is slow by design) and quoted as rows/s. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from hub.connectors.base import run_push  # noqa: E402
from hub.store import Store  # noqa: E402

DEMO_SHOP_CUSTOMERS = 11_048  # the 20,000-person demo of issue #16: 551 s of pushes to the shop


def _rows(ids: list[str], run: int) -> list[tuple[str, str, dict]]:
    """A desired state per target record that differs from the previous run's (diff-only would skip it)."""
    return [(i, f"G{n:09d}", {"golden_id": f"G{n:09d}", "segment": f"bench{run % 3}",
                              "value_tier": ("gold", "silver")[(n + run) % 2], "lifecycle": "active"})
            for n, i in enumerate(ids, 1)]


def measure(name: str, make: Callable[[], Any], ids: list[str], calls: Callable[[], int], args: argparse.Namespace,
            store_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"target": name, "rows": len(ids)}
    run = 0
    for mode, batch, rows in (("per_row", 1, ids[: args.per_row_rows]), ("batched", None, ids)):
        rates, per_1000 = [], []
        for _ in range(args.repeat if mode == "batched" else 1):
            run += 1
            store = Store(f"sqlite:///{store_dir}/{name}-{run}.db")
            store.enqueue_pushes(name, "customers", _rows(rows, run))
            conn = make()
            before = calls()
            t0 = time.perf_counter()
            stats = run_push(conn, store, name, batch_size=batch)
            seconds = time.perf_counter() - t0
            assert stats.ok == len(rows), (name, mode, stats)
            rates.append(len(rows) / seconds)
            per_1000.append((calls() - before) * 1000 / len(rows))
            store.dispose()
            getattr(conn, "close", lambda: None)()
        out[mode] = {"rows": len(rows), "rows_per_s": round(statistics.median(rates), 1),
                     "requests_per_1000_rows": round(statistics.median(per_1000), 1),
                     "runs_rows_per_s": [round(r, 1) for r in rates]}
    out["speedup"] = round(out["batched"]["rows_per_s"] / out["per_row"]["rows_per_s"], 1)
    print(f"{name:<9} per row {out['per_row']['rows_per_s']:>8,.1f} rows/s "
          f"({out['per_row']['requests_per_1000_rows']:,.0f} req/1000)   batched "
          f"{out['batched']['rows_per_s']:>9,.1f} rows/s ({out['batched']['requests_per_1000_rows']:,.0f} req/1000)"
          f"   x{out['speedup']}", flush=True)
    return out


def sandbox_targets(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from hub.connectors.sql_erp import SqlErpConnector, load_tables
    from hub.connectors.wechat import WeChatConnector
    from hub.connectors.woocommerce import WooCommerceConnector
    from hub.sandbox import SandboxWorld

    world = SandboxWorld.create_or_load(tmp / "world", customers=args.people, seed=11)
    results = []
    with world.serve() as ep:
        shop_ids = [str(i) for i in sorted(world.shop.customers)]
        results.append(measure(
            "webshop", lambda: WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret,
                                                    requests_per_second=args.rate),
            shop_ids, lambda: world.fault_controller.calls.get("webshop", 0), args, tmp))
        results[-1]["projected_demo_push_s"] = {
            mode: round(DEMO_SHOP_CUSTOMERS / results[-1][mode]["rows_per_s"], 1) for mode in ("per_row", "batched")}
        followers = world.wechat.followers()
        results.append(measure(
            "social", lambda: WeChatConnector(ep.wechat_url, ep.wechat_appid, ep.wechat_secret,
                                              requests_per_second=args.rate),
            followers, lambda: world.fault_controller.calls.get("wechat", 0), args, tmp))
    import sqlalchemy as sa

    from hub.sandbox import erp as erp_mod

    engine = sa.create_engine(world.erp_url)
    with engine.connect() as c:
        parties = [str(r[0]) for r in c.execute(sa.select(erp_mod.party_party.c.id).order_by(erp_mod.party_party.c.id))]
    engine.dispose()
    statements = {"n": 0}

    def make_erp() -> SqlErpConnector:
        conn = SqlErpConnector(world.erp_url, load_tables("sandbox"))

        @sa.event.listens_for(conn.engine, "before_cursor_execute")
        def _count(*_a: Any) -> None:
            statements["n"] += 1

        return conn

    results.append(measure("erp", make_erp, parties, lambda: statements["n"], args, tmp))
    results[-1]["unit"] = "SQL statements"
    return results


def tryton_target(args: argparse.Namespace, tmp: Path) -> dict[str, Any] | None:
    try:
        import trytond  # noqa: F401
    except ImportError:
        print("trytond is not installed; Tryton skipped", file=sys.stderr)
        return None
    import tryton_harness as harness

    from hub.connectors.tryton import TrytonConnector

    with harness.bench_server(args.tryton_parties) as (server, _):
        rpc = server.rpc()
        ids = [str(i) for i in sorted(rpc.search("party.party", []))[: args.tryton_parties]]
        counter = {"n": 0}

        def make() -> TrytonConnector:
            conn = TrytonConnector(server.url, server.database, server.username, server.password)
            conn.rpc.login()  # the login (argon2) is not part of the push
            real = conn.rpc._call

            def counted(method: str, params: list, *, retry: bool) -> Any:
                counter["n"] += 1
                return real(method, params, retry=retry)

            conn.rpc._call = counted  # type: ignore[method-assign]
            return conn

        out = measure("tryton", make, ids, lambda: counter["n"], args, tmp)
        out["unit"] = "JSON-RPC calls"
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=2000, help="sandbox world size (shop ≈ 58 %% of people)")
    ap.add_argument("--tryton-parties", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s for the HTTP targets (hub.yaml default)")
    ap.add_argument("--per-row-rows", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-tryton", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "push.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-push-") as d:
        tmp = Path(d)
        results = sandbox_targets(args, tmp)
        if not args.skip_tryton:
            t = tryton_target(args, tmp)
            if t:
                results.append(t)
    doc = {"people": args.people, "rate_per_s": args.rate, "repeat": args.repeat, "targets": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
