"""Staging throughput on a pulled sandbox world: CPU and wall time per 1k landing rows, and a dump to diff.

    python bench/bench_staging.py --people 20000 [--runs 3] [--workdir DIR] [--profile] [--dump FILE]
                                  [--hub-root DIR] [--out FILE]

The sandbox world is generated once and pulled once by the real connectors into a SQLite store kept in the
work directory (``pulled.db``; neither is timed). Every run copies that store and times, in this process:
  first    ``stage_pending`` on the freshly pulled store: every landing row mapped and inserted (the stage
           of a first full sync);
  restage  ``stage_all`` right after: every row mapped again, all output unchanged, nothing but
           ``staged_hash`` written (a mapping or standardiser change on an unchanged world).
CPU time is ``os.times`` of the process and its waited-for children (user + system), so forked workers count.
Medians over ``--runs``. ``--profile`` runs one extra, un-timed first stage under cProfile and prints the top
functions. ``--dump FILE`` writes the staged tables of the last run (staged_record rows with their hashes,
quarantine rows with their reasons, landing staged hashes; time stamps and surrogate ids left out) as sorted
JSON lines, so two code versions can be diffed (``FILE.first``: the same after the first stage of that run); ``--hub-root DIR`` imports ``hub`` from another checkout (e.g.
an exported main) for that A/B, with the same world and the same pulled store.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import inspect
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent



def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def prepare(workdir: Path, people: int, seed: int) -> Path:
    """The world and its pulled store, made once per work directory (reused while they exist)."""
    from hub.connectors.base import run_pull
    from hub.sandbox import SandboxWorld
    from hub.store import Store

    pulled = workdir / "pulled.db"
    if pulled.exists():
        return pulled
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    world = SandboxWorld.create_or_load(workdir / "world", customers=people, seed=seed)
    print(f"world: {people:,} people in {time.perf_counter() - started:.0f} s", flush=True)
    partial = workdir / "pulled.db.partial"
    partial.unlink(missing_ok=True)
    store = Store(f"sqlite:///{partial}")
    started = time.perf_counter()
    with world.serve() as ep:
        for conn in ep.connectors().values():
            for entity in conn.entities:
                run_pull(conn, store, entity)
    store.dispose()
    partial.rename(pulled)
    print(f"pulled in {time.perf_counter() - started:.0f} s", flush=True)
    return pulled


def _fresh_store(pulled: Path, workdir: Path) -> Any:
    from hub.store import Store

    run_db = workdir / "run.db"
    for p in workdir.glob("run.db*"):
        p.unlink()
    shutil.copyfile(pulled, run_db)
    return Store(f"sqlite:///{run_db}")


def _kwargs(workers: int | None) -> dict[str, Any]:
    # a checkout whose staging has no ``workers`` (main before the parallel mapping) gets none
    from hub.staging import stage_pending

    return {} if workers is None or "workers" not in inspect.signature(stage_pending).parameters else {
        "workers": workers}


def timed_run(pulled: Path, workdir: Path, workers: int | None, dump_first: Path | None = None) -> dict[str, Any]:
    from hub.mappings import load_mappings
    from hub.sandbox import SOURCES
    from hub.staging import stage_all, stage_pending

    store = _fresh_store(pulled, workdir)
    mappings = load_mappings()
    out: dict[str, Any] = {}
    for phase, fn in (("first", stage_pending), ("restage", stage_all)):
        c0, w0 = _cpu(), time.perf_counter()
        stats = fn(store, mappings, SOURCES, **_kwargs(workers))
        out[phase] = {"cpu": _cpu() - c0, "wall": time.perf_counter() - w0, "rows": stats.records_in,
                      "staged": stats.staged, "unchanged": stats.unchanged, "quarantined": stats.quarantined}
        if phase == "first" and dump_first is not None:  # not timed: between the two phases
            out["first_dump"] = dump(workdir, dump_first)
    store.dispose()
    return out


def profile_run(pulled: Path, workdir: Path, top: int, workers: int | None) -> str:
    from hub.mappings import load_mappings
    from hub.sandbox import SOURCES
    from hub.staging import stage_pending

    store = _fresh_store(pulled, workdir)
    mappings = load_mappings()
    prof = cProfile.Profile()
    prof.enable()
    stage_pending(store, mappings, SOURCES, **_kwargs(workers))
    prof.disable()
    store.dispose()
    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats("tottime").print_stats(top)
    st.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def dump(workdir: Path, dest: Path) -> str:
    """The staged tables of run.db as sorted JSON lines; returns their SHA-256. Time stamps only by their
    storage type and length (they differ from run to run)."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{workdir / 'run.db'}")
    queries = {
        "staged_record": "SELECT entity, record_key, source, source_id, customer_key, record, quality_flags, "
                         "record_hash, typeof(record), typeof(quality_flags), typeof(staged_at), length(staged_at) FROM staged_record",
        "quarantine": "SELECT source, entity, source_id, reasons, detail, payload, payload_hash FROM quarantine",
        "landing": "SELECT source, entity, source_id, payload_hash, staged_hash FROM landing",
    }
    lines: list[str] = []
    with engine.connect() as conn:
        for table, sql in queries.items():
            lines += sorted(json.dumps([table, *r], ensure_ascii=False, default=str)
                            for r in conn.execute(sa.text(sql)))
    engine.dispose()
    text = "\n".join(lines) + "\n"
    dest.write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", help="world and pulled store, kept (default /tmp/bench_staging_<people>)")
    ap.add_argument("--profile", action="store_true", help="one more first stage under cProfile, top functions")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--dump", help="write the staged tables of the last run here (sorted JSON lines)")
    ap.add_argument("--workers", type=int, help="staging's workers (default: the hub's; 1 = one process)")
    ap.add_argument("--hub-root", help="import hub from this checkout instead of this one")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "staging.md"))
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.hub_root).resolve() if args.hub_root else ROOT))
    import hub

    code = Path(hub.__file__).resolve().parent.parent
    workdir = Path(args.workdir or f"/tmp/bench_staging_{args.people}")
    pulled = prepare(workdir, args.people, args.seed)
    # the world is generated with this checkout; a run with --hub-root stages it with the other one
    first_dump = Path(f"{args.dump}.first") if args.dump else None
    runs = [timed_run(pulled, workdir, args.workers, first_dump if i == args.runs - 1 else None)
            for i in range(args.runs)]
    lines = [f"# Staging, {args.people:,} people (sandbox seed {args.seed}), hub from {code}, workers "
             f"{'default' if args.workers is None else args.workers}", "",
             f"{runs[0]['first']['rows']:,} landing rows; medians of {args.runs} runs (CPU: process + waited-for "
             "children)", "",
             "| phase | CPU s | wall s | CPU s / 1k rows | rows/s (wall) | staged | unchanged | quarantined |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for phase in ("first", "restage"):
        cpu = statistics.median(r[phase]["cpu"] for r in runs)
        wall = statistics.median(r[phase]["wall"] for r in runs)
        r0 = runs[-1][phase]
        lines.append(f"| {phase} | {cpu:.2f} | {wall:.2f} | {1000 * cpu / max(r0['rows'], 1):.3f} | "
                     f"{r0['rows'] / wall:,.0f} | {r0['staged']:,} | {r0['unchanged']:,} | {r0['quarantined']:,} |")
    lines += ["", "runs (CPU s / wall s): " + "; ".join(
        f"first {r['first']['cpu']:.1f}/{r['first']['wall']:.1f}, restage {r['restage']['cpu']:.1f}/"
        f"{r['restage']['wall']:.1f}" for r in runs)]
    if args.dump:
        lines += ["", f"dump {first_dump} (after first): sha256 {runs[-1]['first_dump']}",
                  f"dump {args.dump} (after restage): sha256 {dump(workdir, Path(args.dump))}"]
    report = "\n".join(lines)
    print(report, flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n", encoding="utf-8")
    if args.profile:
        print(profile_run(pulled, workdir, args.top, args.workers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
