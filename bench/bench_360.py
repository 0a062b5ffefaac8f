"""The customer 360 stage alone (``hub.customer360.build_360``) on copies of a synced SQLite store: CPU seconds per
1,000 golden customers for a full and an incremental build, and the sha256 of the tables it writes.

Run from a checkout's root with its own python (it imports ``hub`` from the working directory, so one copy of
this script compares two checkouts on the same stores):

    .venv/bin/python bench/bench_360.py --full S1.db [--incr S2in.db] [--repeat 5] [--dump DIR] [--callgrind]
    .venv/bin/python bench/bench_360.py --make-incr S1.db S2.db S2in.db

``--full``: a store after a ``hub sync`` (``.hub/hub.db``); each run copies it, empties the 360 tables and
their cursor and builds every view (what a first sync does). ``--incr``: a store as the incremental sync's 360
stage finds it: the golden layer after a change, the 360 tables of the build before it. ``--make-incr S1 S2
OUT`` makes one: OUT is S2 (the store after a second sync, e.g. after ``python -m hub.sandbox mutate``) with the
360 tables and cursor of S1 (the store after the first sync). Only the 360 stage writes those, so OUT is what
the second sync's 360 stage started from.

Every run is its own process (CPU by ``time.process_time``: the build's Python and SQLite work; the machine's
load moves wall time, far less this). ``as_of`` is fixed per store (the last build's newest ``updated_at`` of
the view, or the store's modification time), so runs and checkouts compare. The dump: every customer_360 row
(golden id, stored record without ``computed_at``, record hash), customer_360_rank (all columns) and
customer_360_link, sorted, as text; its sha256 is printed (``--dump DIR`` keeps the text). ``--callgrind``
counts the build's instructions under valgrind (a process that builds minus one that stops before the build).

Measured (c360-speed against de7358b; sandbox worlds through ``hub sync``, then ``hub.sandbox mutate`` 1 % and a
second sync; load ~4 on 2 cores, so CPU medians move by ±15 %, instruction counts do not):

    20k people (24,025 golden)  full  11.74 -> 8.54 CPU s (median of 5) = 0.489 -> 0.356 s/1k goldens
                                incr   1.76 -> 1.86 CPU s (586 rebuilt; within noise)
     5k people  (5,844 golden)  full  14.21 -> 9.87 G instructions;  incr 2.395 -> 2.254 G (181 rebuilt)
    sha256 equal: 20k full b06c3c87..., incr f4bcff96...; 5k full d7ac2a4b..., incr f1246377...
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, os.getcwd())

import sqlalchemy as sa  # noqa: E402

TABLES_360 = ("customer_360", "customer_360_rank", "customer_360_link")
CURSOR = ("hub", "_customer_360_inputs")
_COMPUTED_AT = re.compile(r',?"computed_at":"[^"]*"')


def _as_of(db: Path) -> datetime:
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        v = conn.execute(sa.text("SELECT max(updated_at) FROM customer_360")).scalar()
    if v:
        return datetime.fromisoformat(str(v)).replace(microsecond=0)
    return datetime.fromtimestamp(int(db.stat().st_mtime))


def make_incr(before: Path, after: Path, out: Path) -> None:
    shutil.copyfile(after, out)
    eng = sa.create_engine(f"sqlite:///{out}")
    with eng.begin() as conn:
        conn.exec_driver_sql("ATTACH DATABASE ? AS b", (str(before),))
        for t in TABLES_360:
            conn.exec_driver_sql(f"DELETE FROM main.{t}")
            conn.exec_driver_sql(f"INSERT INTO main.{t} SELECT * FROM b.{t}")
        conn.exec_driver_sql("DELETE FROM main.sync_state WHERE source = ? AND entity = ?", CURSOR)
        conn.exec_driver_sql("INSERT INTO main.sync_state SELECT * FROM b.sync_state WHERE source = ? AND entity = ?",
                             CURSOR)
    with eng.connect() as conn:
        conn.exec_driver_sql("DETACH DATABASE b")
    print(f"{out}: {after.name} with the 360 tables and cursor of {before.name}")


def dump(db: Path) -> str:
    lines: list[str] = []
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        for gid, rec, h in conn.exec_driver_sql("SELECT golden_id, record, record_hash FROM customer_360 "
                                                "ORDER BY golden_id"):
            # the stored text itself (key order too), its computation time taken out
            lines.append("360\t" + "\t".join([gid, _COMPUTED_AT.sub("", rec), h]))
        for row in conn.exec_driver_sql("SELECT * FROM customer_360_rank ORDER BY golden_id"):
            lines.append("rank\t" + "\t".join(map(str, row)))
        for row in conn.exec_driver_sql("SELECT entity, record_key, golden_id FROM customer_360_link "
                                        "ORDER BY entity, record_key, golden_id"):
            lines.append("link\t" + "\t".join(row))
    return "\n".join(lines) + "\n"


def one(db: Path, mode: str, as_of: str, skip: bool = False) -> None:
    """One build in this process; prints its figures as JSON (``skip``: everything but the build, what a
    callgrind count takes off)."""
    import pandas  # noqa: F401 - the sync's matching stage imports it before the 360 stage (~0.7 s, not its own)

    from hub.config import load_config
    from hub.customer360 import build_360
    from hub.store import Store

    store = Store(f"sqlite:///{db}")
    if mode == "full":
        with store.begin() as conn:
            for t in TABLES_360:
                conn.exec_driver_sql(f"DELETE FROM {t}")
            conn.exec_driver_sql("DELETE FROM sync_state WHERE source = ? AND entity = ?", CURSOR)
    segments = load_config().segments.as_dict()  # HUB_CONFIG, else the shipped defaults
    t0, c0 = time.perf_counter(), time.process_time()
    if skip:
        store.dispose()
        print(json.dumps({}))
        return
    stats = build_360(store, segments, as_of=datetime.fromisoformat(as_of))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    store.dispose()
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "goldens": stats.golden_customers, "built": stats.built,
                      "inserted": stats.inserted, "updated": stats.updated, "skipped": stats.skipped}))


def instructions(db: Path, mode: str) -> dict:
    """Instructions executed by the build (valgrind's callgrind, robust to the machine's load): a process
    that builds minus one that does everything else (imports, store, configuration)."""
    as_of = _as_of(db).isoformat()
    counts = {}
    with tempfile.TemporaryDirectory(prefix="bench360-") as tmp:
        for variant in ("build", "skip"):
            copy = Path(tmp) / f"{mode}.db"
            shutil.copyfile(db, copy)
            err = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out",
                                  sys.executable, __file__, "_one", str(copy), mode, as_of,
                                  *(["skip"] if variant == "skip" else [])],
                                 check=True, capture_output=True, text=True).stderr
            counts[variant] = int(re.search(r"Collected : (\d+)", err).group(1))
    ir = counts["build"] - counts["skip"]
    print(f"{mode:12} callgrind: {ir / 1e9:.3f} G instructions in build_360", flush=True)
    return {"mode": mode, "store": str(db), "as_of": as_of, "instructions": ir}


def run(db: Path, mode: str, repeat: int, dump_dir: Path | None) -> dict:
    as_of = _as_of(db).isoformat()
    figures, digests = [], set()
    with tempfile.TemporaryDirectory(prefix="bench360-") as tmp:
        for i in range(repeat):
            copy = Path(tmp) / f"{mode}-{i}.db"
            shutil.copyfile(db, copy)
            out = subprocess.run([sys.executable, __file__, "_one", str(copy), mode, as_of], check=True,
                                 capture_output=True, text=True).stdout
            figures.append(json.loads(out.strip().splitlines()[-1]))
            text = dump(copy)
            digests.add(hashlib.sha256(text.encode()).hexdigest())
            if dump_dir is not None and i == 0:
                dump_dir.mkdir(parents=True, exist_ok=True)
                (dump_dir / f"{mode}.tsv").write_text(text, encoding="utf-8")
            copy.unlink()
    cpus = [f["cpu_s"] for f in figures]
    n = figures[0]["goldens"]
    res = {"mode": mode, "store": str(db), "as_of": as_of, "goldens": n, "built": figures[0]["built"],
           "written": figures[0]["inserted"] + figures[0]["updated"], "runs": len(cpus),
           "cpu_s_median": statistics.median(cpus), "cpu_s": [round(c, 2) for c in cpus],
           "cpu_s_per_1k_goldens": statistics.median(cpus) / n * 1000 if n else None,
           "wall_s_median": statistics.median(f["wall_s"] for f in figures), "sha256": sorted(digests)}
    print(f"{mode:12} goldens {n:,} built {res['built']:,} written {res['written']:,}: CPU {res['cpu_s_median']:.2f} s "
          f"median of {len(cpus)} {res['cpu_s']} = {res['cpu_s_per_1k_goldens']:.3f} s/1k goldens; "
          f"wall {res['wall_s_median']:.1f} s; sha256 {' '.join(digests)}" + (" (RUNS DIFFER)" if len(digests) > 1 else ""),
          flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_one":
        one(Path(argv[1]), argv[2], argv[3], skip=argv[4:5] == ["skip"])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", type=Path, help="a synced store: every view built from empty 360 tables")
    ap.add_argument("--incr", type=Path, help="a store as an incremental sync's 360 stage finds it (--make-incr)")
    ap.add_argument("--make-incr", nargs=3, type=Path, metavar=("S1", "S2", "OUT"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dump", type=Path, default=None, help="directory: keep the dumped tables (full.tsv, incr.tsv)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--callgrind", action="store_true", help="also count the build's instructions (valgrind; "
                    "~50x slower: a store of a few thousand people)")
    args = ap.parse_args(argv)
    if args.make_incr:
        make_incr(*args.make_incr)
    results = []
    if args.full:
        results.append(run(args.full, "full", args.repeat, args.dump))
    if args.incr:
        results.append(run(args.incr, "incr", args.repeat, args.dump))
    if args.callgrind:
        results += [instructions(db, mode) for db, mode in ((args.full, "full"), (args.incr, "incr")) if db]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
