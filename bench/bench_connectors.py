"""Pull throughput per connector against the sandbox systems.

    .venv/bin/python bench/bench_connectors.py --records 100000
    .venv/bin/python bench/bench_connectors.py --records 20000 --world .hub/bench-world-20k --nagle

``--records`` is the number of generated people; each system sees a share of them (the table prints the
real record counts). Every entity is pulled twice into a fresh SQLite hub store: the first (initial) pull
lands everything, the second is the no-change sync (everything read again for full-sweep entities, nothing
landed). The table gives the first pull's CPU seconds per 1,000 records (this process's user + system time: the
figure wall time hides on a shared machine; the servers' CPU is theirs). The sandbox HTTP servers run in a child process (not sharing the GIL with the connector), with
TCP_NODELAY set on their handlers: the stdlib handler writes headers and body in two sends, so with Nagle
on (``--nagle``) Nagle + delayed ACK add ~40 ms to every request and the HTTP figures measure that instead.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.connectors.base import run_pull  # noqa: E402
from hub.connectors.cdr import AsteriskCdrConnector  # noqa: E402
from hub.connectors.sql_erp import SqlErpConnector, load_tables  # noqa: E402
from hub.connectors.wechat import WeChatConnector  # noqa: E402
from hub.connectors.woocommerce import WooCommerceConnector  # noqa: E402
from hub.sandbox import Endpoints, SandboxWorld  # noqa: E402
from hub.store import Store  # noqa: E402


def _serve(world_dir: Path, nodelay: bool, conn: Connection) -> None:
    if nodelay:
        from hub.sandbox._http import SandboxHandler

        SandboxHandler.disable_nagle_algorithm = True
    world = SandboxWorld.create_or_load(world_dir)
    with world.serve() as ep:
        conn.send(ep)
        conn.recv()  # block until the bench is done


@contextlib.contextmanager
def serve_elsewhere(world_dir: Path, nodelay: bool) -> Iterator[Endpoints]:
    """Run the sandbox HTTP servers in their own process: in-process servers would share the GIL with the
    connector under test and the figure would measure both."""
    ours, theirs = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=_serve, args=(world_dir, nodelay, theirs), daemon=True)
    proc.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        proc.join(timeout=60)
        if proc.is_alive():
            proc.terminate()


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="people in the generated world")
    ap.add_argument("--world", type=Path, help="world directory (reused if it exists); default: a temp dir")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--nagle", action="store_true",
                    help="leave Nagle on in the sandbox servers (adds ~40 ms per request, see above)")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench-connectors-")
    work = Path(tmp.name)
    world_dir = args.world or work / "world"
    t0 = time.perf_counter()
    SandboxWorld.create_or_load(world_dir, customers=args.records, seed=args.seed)  # generate once
    print(f"world: {args.records} people in {time.perf_counter() - t0:.1f}s ({world_dir})", flush=True)

    rows: list[tuple[str, str, int, float, float, float]] = []
    nodelay = not args.nagle
    with serve_elsewhere(world_dir, nodelay) as ep:
        connectors = [
            SqlErpConnector(ep.erp_url, load_tables("sandbox")),
            WooCommerceConnector(ep.webshop_url, ep.webshop_key, ep.webshop_secret, per_page=100),
            WeChatConnector(ep.wechat_url, ep.wechat_appid, ep.wechat_secret),
            AsteriskCdrConnector(ep.cdr_dir),
        ]
        for conn in connectors:
            store = Store(f"sqlite:///{work}/hub-{conn.system}.db")
            for entity in conn.entities:
                cpu0 = _cpu()
                first = run_pull(conn, store, entity)
                cpu_k = (_cpu() - cpu0) / max(first.records, 1) * 1000
                second = run_pull(conn, store, entity)
                assert second.new == 0 and second.changed == 0, "a no-change sync must land nothing"
                rows.append((conn.system, entity, first.new, first.records_per_second, cpu_k, second.seconds))
                print(f"  {conn.system}/{entity}: {first.new} records, {first.records_per_second:,.0f} rec/s, "
                      f"{cpu_k:.3f} CPU s/1k first pull, {second.seconds:.2f}s no-change sync", flush=True)
            store.dispose()

    print()
    print(f"| system | entity | records | first pull rec/s | first pull CPU s/1k | no-change sync s |"
          f"   (TCP_NODELAY={nodelay})")
    print("|---|---|---:|---:|---:|---:|")
    for system, entity, n, rps1, cpu_k, secs2 in rows:
        print(f"| {system} | {entity} | {n} | {rps1:,.0f} | {cpu_k:.3f} | {secs2:.2f} |")
    tmp.cleanup()  # hub stores, and the world unless --world kept it elsewhere
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
