"""Read throughput of the Tryton connector vs raw JSON-RPC search_read, on a real trytond (SQLite backend).

    .venv/bin/python bench/bench_tryton.py --parties 5000          # seeded db cached for reruns

Both sides read the same parties with the same fields (addresses, contact mechanisms, identifiers,
categories inlined) in pages of ``--page-size`` with keyset paging on id:

* raw: plain ``requests`` + ``search_read`` + ``response.json()``;
* connector: ``TrytonConnector.pages('customers', None)`` (typed decoding, nesting, JSON-able payloads,
  echo-suppressed hashing);
* connector + store: ``run_pull`` into a fresh SQLite hub store (what a sync costs end to end).

Seeding uses the fastest path measured in shared/reference/tryton.md (batched JSON-RPC ``create`` with nested
children); the seeded database is snapshotted under .hub/cache/tryton/ so reruns skip it.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import tryton_harness as harness  # noqa: E402

from hub.connectors.base import run_pull  # noqa: E402
from hub.connectors.tryton import ENTITIES, TrytonConnector  # noqa: E402
from hub.store import Store  # noqa: E402


def raw_read(server: harness.TrytonServer, fields: list[str], page_size: int) -> tuple[int, float, int]:
    """Plain requests, one session, keyset pages. Returns (parties, seconds, bytes)."""
    s = requests.Session()
    s.headers["Accept-Encoding"] = "gzip"
    url = f"{server.url}/{server.database}/rpc/"
    uid, token = s.post(url, json={"id": 1, "method": "common.db.login",
                                   "params": [server.username, {"password": server.password}, "en"]}
                        ).json()["result"][:2]
    s.headers["Authorization"] = "Session " + base64.b64encode(
        f"{server.username}:{uid}:{token}".encode()).decode()
    ctx = {"company": 1, "language": "en", "active_test": False}
    n = nbytes = 0
    last = 0
    t0 = time.perf_counter()
    while True:
        r = s.post(url, json={"id": 2, "method": "model.party.party.search_read",
                              "params": [[["id", ">", last]], 0, page_size, [["id", "ASC"]], fields, ctx]})
        rows = r.json()["result"]
        nbytes += len(r.content)
        n += len(rows)
        if rows:
            last = rows[-1]["id"]
        if len(rows) < page_size:
            break
    return n, time.perf_counter() - t0, nbytes


def connector_read(server: harness.TrytonServer, page_size: int) -> tuple[int, float]:
    conn = TrytonConnector(server.url, server.database, server.username, server.password, page_size=page_size)
    conn.rpc.login()  # like raw: the login (argon2) is not part of the read
    t0 = time.perf_counter()
    n = sum(len(p.records) for p in conn.pages("customers", None))
    return n, time.perf_counter() - t0


def store_pull(server: harness.TrytonServer, page_size: int) -> tuple[int, float, float]:
    """Full pull into a fresh hub store, then a no-change incremental sync (overlap 0: the bare window
    cost). Returns (parties, full seconds, incremental seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/hub.db")
        kw = {"page_size": page_size, "overlap": timedelta(0)}
        conn = TrytonConnector(server.url, server.database, server.username, server.password, **kw)
        conn.rpc.login()
        stats = run_pull(conn, store, "customers")
        again = run_pull(conn, store, "customers")
        assert again.new == again.changed == 0
        store.dispose()
        return stats.records, stats.seconds, again.seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parties", type=int, default=5000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tryton.json")
    args = ap.parse_args(argv)

    try:
        import trytond  # noqa: F401
    except ImportError:
        print("trytond is not installed; nothing to benchmark", file=sys.stderr)
        return 2
    with harness.bench_server(args.parties) as (server, seed_seconds):
        rpc = server.rpc()
        if seed_seconds:
            print(f"seeded up to {args.parties} parties in {seed_seconds:.1f}s")
        total = len(rpc.search("party.party", [], ))
        fields = ENTITIES["customers"].fields
        raw, conn, pulled, incr = [], [], [], []
        for i in range(args.repeat):
            n, sec, nbytes = raw_read(server, fields, args.page_size)
            assert n == total, (n, total)
            raw.append(n / sec)
            n, sec = connector_read(server, args.page_size)
            assert n == total, (n, total)
            conn.append(n / sec)
            n, sec, inc_sec = store_pull(server, args.page_size)
            assert n == total, (n, total)
            pulled.append(n / sec)
            incr.append(inc_sec)
            print(f"run {i + 1}: raw {raw[-1]:,.0f}/s  connector {conn[-1]:,.0f}/s  "
                  f"connector+store {pulled[-1]:,.0f}/s  no-change sync {incr[-1]:.2f}s  "
                  f"({nbytes / 1e6:.1f} MB JSON)")

    result = {
        "parties": total, "page_size": args.page_size, "repeat": args.repeat,
        "raw_parties_per_s": round(statistics.median(raw)),
        "connector_parties_per_s": round(statistics.median(conn)),
        "connector_with_store_parties_per_s": round(statistics.median(pulled)),
        "connector_vs_raw": round(statistics.median(conn) / statistics.median(raw), 3),
        "no_change_incremental_sync_s": round(statistics.median(incr), 3),
        "runs": {"raw": [round(x) for x in raw], "connector": [round(x) for x in conn],
                 "connector_with_store": [round(x) for x in pulled]},
        "seed_seconds": round(seed_seconds, 1) if seed_seconds else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
