"""Pull a sandbox world into a fresh hub store and dump the landed rows (payload text, payload hash, hub_state
text and hash; sorted) with their sha256, or measure the pull's CPU seconds per 1,000 records per entity.

Run from a checkout's root with its own python (it imports ``hub`` from the working directory, so one copy of
this script compares two checkouts on the same world):

    .venv/bin/python bench/pull_identity.py --world W --systems erp,webshop,wechat,cdr --out landed.tsv
    .venv/bin/python bench/pull_identity.py --world W --systems erp --store postgresql+psycopg2://...:5432/test --out F
    .venv/bin/python bench/pull_identity.py --world W --systems erp --cpu 3

A missing world is generated with the sandbox's default size (2,000 people); for another size run
``SandboxWorld.create_or_load(W, customers=N)`` first. ``--store`` on PostgreSQL / MariaDB creates (and drops) a
database of its own on that server (dropped from a database named ``test``).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, os.getcwd())

import sqlalchemy as sa  # noqa: E402

from hub.connectors.base import run_pull  # noqa: E402
from hub.sandbox import SandboxWorld  # noqa: E402
from hub.store import Store, as_text, landing  # noqa: E402


def cpu() -> float:
    return time.process_time()


def connectors(ep, systems):
    out = []
    from hub.connectors.sql_erp import SqlErpConnector, load_tables
    if "erp" in systems:
        out.append(SqlErpConnector(ep.erp_url, load_tables("sandbox")))
    if "webshop" in systems:
        from hub.connectors.woocommerce import WooCommerceConnector
        out.append(WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret, per_page=100))
    if "wechat" in systems:
        from hub.connectors.wechat import WeChatConnector
        out.append(WeChatConnector(ep.wechat_url, ep.wechat_appid, ep.wechat_secret))
    if "cdr" in systems:
        from hub.connectors.cdr import AsteriskCdrConnector
        out.append(AsteriskCdrConnector(ep.cdr_dir))
    return out


def fresh_store(url: str | None, tmp: Path, tag: str) -> Store:
    if url is None:
        return Store(f"sqlite:///{tmp}/hub-{tag}.db")
    if url.startswith(("postgresql", "mysql")):
        base, _, _ = url.rpartition("/")
        name = f"pullid_{os.getpid()}_{tag}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
            c.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        return Store(f"{base}/{name}")
    return Store(url)


def drop_store(store: Store) -> None:
    url = store.engine.url
    store.dispose()
    if url.get_backend_name() in ("postgresql", "mysql"):
        admin = sa.create_engine(url.set(database="test"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {url.database}"))
        admin.dispose()


def dump(store: Store, out: Path) -> None:
    d = store.engine.dialect.name
    q = sa.select(landing.c.source, landing.c.entity, landing.c.source_id, as_text(landing.c.payload, d),
                  landing.c.payload_hash, as_text(landing.c.hub_state, d), landing.c.hub_state_hash)
    with store.engine.connect() as c:
        rows = [tuple(v.decode() if isinstance(v, bytes | memoryview) else v for v in
                      (bytes(x) if isinstance(x, memoryview) else x for x in r)) for r in c.execute(q)]
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    h = hashlib.sha256()
    per: dict[tuple, int] = {}
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            line = "\t".join("<NULL>" if v is None else str(v) for v in r) + "\n"
            fh.write(line)
            h.update(line.encode())
            per[(r[0], r[1])] = per.get((r[0], r[1]), 0) + 1
    print(f"dump {out}: {len(rows)} rows {dict(per)} sha256={h.hexdigest()}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", required=True)
    ap.add_argument("--store", default=None, help="hub store URL (default: a fresh SQLite file)")
    ap.add_argument("--systems", default="erp")
    ap.add_argument("--out")
    ap.add_argument("--cpu", type=int, default=0, help="repeats: CPU s/1k per entity, fresh store each")
    args = ap.parse_args()
    systems = set(args.systems.split(","))
    world = SandboxWorld.create_or_load(args.world)
    tmp = Path(tempfile.mkdtemp(prefix="pullid-"))
    # the ERP alone needs no HTTP servers (nor their world files loaded)
    serve = world.serve() if systems - {"erp"} else contextlib.nullcontext(types.SimpleNamespace(erp_url=world.erp_url))
    with serve as ep:
        if args.out:
            store = fresh_store(args.store, tmp, "dump")
            try:
                for conn in connectors(ep, systems):
                    for entity in conn.entities:
                        st = run_pull(conn, store, entity)
                        second = run_pull(conn, store, entity)
                        assert second.new == 0 and second.changed == 0, (conn.system, entity)
                        print(f"  {conn.system}/{entity}: {st.records} records", flush=True)
                dump(store, Path(args.out))
            finally:
                drop_store(store)
        if args.cpu:
            figs: dict[str, list[float]] = {}
            for i in range(args.cpu):
                store = fresh_store(args.store, tmp, f"cpu{i}")
                try:
                    for conn in connectors(ep, systems):
                        for entity in conn.entities:
                            c0 = cpu()
                            st = run_pull(conn, store, entity)
                            k = (cpu() - c0) / max(st.records, 1) * 1000
                            figs.setdefault(f"{conn.system}/{entity}", []).append(k)
                            print(f"  run {i} {conn.system}/{entity}: {st.records} rec {k:.4f} CPU s/1k", flush=True)
                finally:
                    drop_store(store)
            for name, v in figs.items():
                print(f"CPU {name}: median {statistics.median(v):.4f} s/1k  runs {[round(x, 4) for x in v]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
