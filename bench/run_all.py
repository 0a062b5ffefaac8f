"""`make bench`: every scale figure the issues ask for, one script after another, results in bench/out/.

Each benchmark is its own script (runnable alone with smaller sizes); this runner only sequences them with
the sizes the issues name and collects their markdown into bench/out/SUMMARY.md. Sizes can be reduced for a
quick look: `python bench/run_all.py --quick`. Expect the full run to take a long time on 2 cores.

The end-to-end sync (bench/bench_sync.py: the sandbox world through ``hub sync``'s full_sync job, then a 1 %
change and the incremental sync) is sized by environment variables, read by both the full and the quick list:
  BENCH_SYNC_PEOPLE    people in the sandbox world (full: 1,000,000; quick: 20,000)
  BENCH_SYNC_BACKENDS  stores, comma-separated (default sqlite,postgres)
  BENCH_SYNC_RATE      web shop and WeChat client requests/s (default 20: hub.yaml's shipped value)
  BENCH_SYNC_STOP_AT   HH:MM UTC: a sync still running then is stopped, its per-stage figures so far reported
  BENCH_SYNC_WORKDIR   where the world is generated once and kept (default /tmp/bench_sync_<people>)
e.g. ``BENCH_SYNC_PEOPLE=100000 BENCH_SYNC_BACKENDS=sqlite make bench`` or ``python bench/run_all.py --only sync``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def sync_bench(people: int) -> tuple[str, list[str]]:
    """The end-to-end sync entry: (title, command) from the BENCH_SYNC_* variables (module doc)."""
    env = os.environ
    people = int(env.get("BENCH_SYNC_PEOPLE", people))
    backends = env.get("BENCH_SYNC_BACKENDS", "sqlite,postgres")
    rate = env.get("BENCH_SYNC_RATE", "20")
    cmd = ["bench/bench_sync.py", "--people", str(people), "--backends", backends, "--rate", rate]
    if env.get("BENCH_SYNC_STOP_AT"):
        cmd += ["--stop-at", env["BENCH_SYNC_STOP_AT"]]
    if env.get("BENCH_SYNC_WORKDIR"):
        cmd += ["--workdir", env["BENCH_SYNC_WORKDIR"]]
    return (f"end-to-end sync, {people:,} people, {backends.replace(',', ' and ')}, {rate} requests/s, "
            "full then 1 % changed", cmd)


HELD_OUT = "febrl1,febrl2,febrl3,febrl4,alt_febrl3,alt_febrl4,alt_customers,alt_sparse"
FULL = [
    ("standardisation, 1,000,000 customer records", ["bench/bench_standardise.py", "--records", "1000000", "--workers", "2"]),
    ("staging of a pulled sandbox world, 100k people: first stage and full restage",
     ["bench/bench_staging.py", "--people", "100000"]),
    ("matching vs Splink, 100k and 1M records", ["bench/bench_dedupe.py"]),
    ("blocking recall of the matching engine, 100k records", ["bench/bench_blocking.py", "--size", "100000"]),
    ("golden incremental vs full, 1M people, 1 % changed", ["bench/bench_golden.py", "--people", "1000000", "--engine", "dedupe"]),
    ("connector pull throughput, 100k people", ["bench/bench_connectors.py", "--records", "100000"]),
    ("Tryton read throughput vs raw JSON-RPC", ["bench/bench_tryton.py", "--parties", "20000"]),
    ("push throughput per target, batched vs row by row, 20k people", ["bench/bench_push.py", "--people", "20000",
                                                                       "--tryton-parties", "5000"]),
    ("pipeline vs hub dedupe on one file (issue 16's check), ~100k synthetic customer records, 3 runs in turns",
     ["bench/bench_pipeline_vs_cli.py", "--generate", "67000", "--repeat", "3", "--out",
      "bench/out/pipeline_vs_cli.md"]),
    ("pipeline vs hub dedupe on sets made by nobody here: FEBRL 1-4, another generator's FEBRL-like, mixed-script "
     "and sparse multi-source customers", ["bench/bench_pipeline_vs_cli.py", "--sets", HELD_OUT,
                                           "--out", "bench/out/pipeline_vs_cli_heldout.md"]),
    ("caller lookup, 1M golden customers, SQLite and PostgreSQL, wrk at 200 req/s and saturation",
     ["bench/bench_lookup.py", "--customers", "1000000"]),
    ("caller lookup: the issue's check after hub demo", ["bench/bench_lookup.py", "--demo-check"]),
    sync_bench(1_000_000),
]
QUICK = [
    ("standardisation, 100k", ["bench/bench_standardise.py", "--records", "100000"]),
    ("staging of a pulled sandbox world, 10k people", ["bench/bench_staging.py", "--people", "10000"]),
    ("matching vs Splink, 20k", ["bench/bench_dedupe.py", "--sizes", "20000"]),
    ("blocking recall, 20k", ["bench/bench_blocking.py", "--size", "20000"]),
    ("golden incremental vs full, 20k people", ["bench/bench_golden.py", "--people", "20000", "--engine", "dedupe"]),
    ("connector pull throughput, 5k people", ["bench/bench_connectors.py", "--records", "5000"]),
    ("Tryton read throughput, 2k parties", ["bench/bench_tryton.py", "--parties", "2000"]),
    ("push throughput, 2k people", ["bench/bench_push.py", "--people", "2000", "--tryton-parties", "1000"]),
    ("pipeline vs hub dedupe on one file, ~7k synthetic customer records",
     ["bench/bench_pipeline_vs_cli.py", "--generate", "5000", "--out", "bench/out/pipeline_vs_cli.md"]),
    ("pipeline vs hub dedupe on FEBRL 1-4 and another generator's sets, 2k people where sized",
     ["bench/bench_pipeline_vs_cli.py", "--sets", HELD_OUT, "--size", "2000",
      "--out", "bench/out/pipeline_vs_cli_heldout.md"]),
    ("caller lookup, 20k golden customers", ["bench/bench_lookup.py", "--customers", "20000", "--seconds", "10"]),
    sync_bench(20_000),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, minutes instead of hours")
    ap.add_argument("--only", help="run only benchmarks whose title contains this text")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    summary = [f"# Benchmarks ({'quick' if args.quick else 'full'}) — {time.strftime('%Y-%m-%d %H:%M')}", ""]
    failures = 0
    for title, cmd in QUICK if args.quick else FULL:
        if args.only and args.only not in title:
            continue
        print(f"\n=== {title}: {' '.join(cmd)}", flush=True)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        print(proc.stdout[-6000:], flush=True)
        if proc.returncode != 0:
            failures += 1
            print(proc.stderr[-4000:], file=sys.stderr, flush=True)
        summary += [f"## {title}", f"`{' '.join(cmd)}` — exit {proc.returncode}, {seconds:.0f} s", "",
                    "```", proc.stdout[-6000:].strip(), "```", ""]
    (OUT / "SUMMARY.md").write_text("\n".join(summary), encoding="utf-8")
    print(f"\nsummary: {OUT / 'SUMMARY.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
