"""Golden-record sync bench: full rebuild vs incremental sync after changing a share of the customers.

    python bench/bench_golden.py --people 100000 [--change 0.01] [--engine dedupe|fixed] [--db URL]

Measures, on a real store (SQLite file by default, any SQLAlchemy URL with --db):
  1. full run:        match_and_cluster(full) + build_golden(full) on N people (time, peak RSS)
  2. change:          `--change` of the staged customer records are updated / deleted / added
  3. incremental:     match_and_cluster(incremental) + build_golden(incremental)
  4. full rebuild:    match_and_cluster(full) + build_golden(full) on the same (changed) data
and checks that 3 and 4 give identical golden membership (and identical golden ids). The peer of the full run:
the engine as `hub dedupe` runs it (``deduplicate``, default settings) on the same staged records (their
engine rows), timed in the same process — the full run's ratio to it is issue 16's "match + golden ≤ 2× CLI".
Prints a markdown table and writes it to bench/out/golden.md. Staging time is not counted.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from hub.golden import build_golden, golden_membership, match_and_cluster
from hub.golden.matching import engine_frame
from hub.golden.synthetic import count_customers, mutate, stage_records, synthetic_records, unstage_records
from hub.store import Store, staged_record


def _cpu_s() -> float:
    """CPU seconds of this process and of the engine workers it forked (and waited for)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _hwm_mb() -> float:
    """Peak resident memory of this process since the last ``_reset_hwm`` (Linux VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _rss_mb()


def _reset_hwm() -> None:
    """Start a new peak-memory window (writing 5 to clear_refs resets VmHWM to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _sync(store: Store, matching: dict, mode: str) -> tuple[float, float, float, float, object, object]:
    """(match wall s, golden wall s, total wall s, total CPU s, MatchStats, GoldenStats)."""
    c0, t0 = _cpu_s(), time.perf_counter()
    ms = match_and_cluster(store, matching, mode=mode)
    t1 = time.perf_counter()
    gs = build_golden(store, None, mode=mode)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, t2 - t0, _cpu_s() - c0, ms, gs


def _cli_peer(store: Store) -> tuple[float, float]:
    """(wall s, CPU s) of the engine as `hub dedupe` runs it on the staged customers' engine rows (reading
    them from the store not counted: the CLI reads a file). The rows are read as a stream in key order, each
    staged record decoded and dropped in turn: decoding them all first held ~11 GB at 1M people, which was the
    harness's peak, not the engine's."""
    from hub.dedupe import deduplicate

    with store.engine.connect() as conn:
        frame = engine_frame(map(tuple, conn.execution_options(yield_per=10_000).execute(
            sa.select(staged_record.c.record_key, staged_record.c.record)
            .where(staged_record.c.entity == "customers").order_by(staged_record.c.record_key))))
    c0, t0 = _cpu_s(), time.perf_counter()
    deduplicate(frame)
    return time.perf_counter() - t0, _cpu_s() - c0


def _change(store: Store, url: str, people: int, share: float) -> tuple[int, int]:
    """Change ``share`` of the staged records (the same synthetic records generated again, seeded) in a forked
    child: the list of every record it needs would stay in this process's heap after it is freed (at 1M
    people ~6 GB) and count in the incremental run's peak. Returns (upserts, deletes)."""
    import json

    store.engine.dispose()  # no pooled connection is shared with the child
    with tempfile.NamedTemporaryFile("r", suffix=".json") as counts:
        pid = os.fork()
        if pid == 0:  # the child: stage the change, write the counts, leave without running exit handlers
            code = 1
            try:
                child = Store(url)
                upserts, deletes = mutate(list(synthetic_records(people)), share)
                stage_records(child, upserts)
                unstage_records(child, deletes)
                child.dispose()
                Path(counts.name).write_text(json.dumps([len(upserts), len(deletes)]))
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("the change step failed")
        n_upserts, n_deletes = json.loads(Path(counts.name).read_text())
    return n_upserts, n_deletes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000, help="synthetic people (records ≈ 1.5 x people)")
    ap.add_argument("--change", type=float, default=0.01, help="share of staged records changed before the sync")
    ap.add_argument("--engine", choices=("fixed", "dedupe"), default="dedupe")
    ap.add_argument("--db", default=None, help="store URL (default: a temporary SQLite file)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "golden.md"))
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="bench_golden_")
    url = args.db or f"sqlite:///{tmp.name}/hub.db"
    store = Store(url)
    matching = {"engine": args.engine}

    t = time.perf_counter()
    # streamed: the harness holding every synthetic record (~5 GB at 1M people) would hide the hub's own peak
    stage_records(store, synthetic_records(args.people))
    stage_s = time.perf_counter() - t
    n_records = count_customers(store)
    print(f"staged {n_records} records for {args.people} people in {stage_s:.1f}s", file=sys.stderr)

    peak: dict[str, float] = {}
    _reset_hwm()
    full_m, full_g, full_t, full_c, ms_full, gs_full = _sync(store, matching, "full")
    peak["full"] = _hwm_mb()
    print(f"full: {full_t:.1f}s, peak {peak['full']:.0f} MB", file=sys.stderr)
    _reset_hwm()
    cli_t, cli_c = _cli_peer(store)
    peak["cli"] = _hwm_mb()
    print(f"hub dedupe peer: {cli_t:.1f}s, peak {peak['cli']:.0f} MB", file=sys.stderr)

    n_upserts, n_deletes = _change(store, url, args.people, args.change)

    _reset_hwm()
    inc_m, inc_g, inc_t, inc_c, ms_inc, gs_inc = _sync(store, matching, "incremental")
    peak["incremental"] = _hwm_mb()
    print(f"incremental: {inc_t:.2f}s, peak {peak['incremental']:.0f} MB", file=sys.stderr)
    inc_members = golden_membership(store)

    _reset_hwm()
    re_m, re_g, re_t, re_c, ms_re, gs_re = _sync(store, matching, "full")
    peak["rebuild"] = _hwm_mb()
    print(f"full rebuild: {re_t:.1f}s, peak {peak['rebuild']:.0f} MB", file=sys.stderr)
    re_members = golden_membership(store)

    same_sets = set(inc_members.values()) == set(re_members.values())
    same_ids = inc_members == re_members
    diff = len(set(inc_members.values()) ^ set(re_members.values()))
    ratio_first = inc_t / full_t if full_t else float("nan")
    ratio_rebuild = inc_t / re_t if re_t else float("nan")
    cpu_first = inc_c / full_c if full_c else float("nan")
    cpu_rebuild = inc_c / re_c if re_c else float("nan")
    lines = [
        f"## Golden sync bench: {args.people:,} people, {n_records:,} staged records, matcher `{args.engine}`, "
        f"{store.dialect}",
        "",
        f"Changed {n_upserts + n_deletes:,} records ({args.change:.1%}: {n_upserts:,} upserts, "
        f"{n_deletes:,} deletes) between the full run and the sync.",
        "",
        "| run | match_and_cluster s | build_golden s | total wall s | total CPU s | records re-matched | "
        "golden written |",
        "|---|---|---|---|---|---|---|",
        f"| full (first, trains the engine) | {full_m:.2f} | {full_g:.2f} | {full_t:.2f} | {full_c:.2f} | "
        f"{ms_full.records_rematched:,} | {gs_full.golden_written:,} |",
        f"| incremental sync | {inc_m:.2f} | {inc_g:.2f} | {inc_t:.2f} | {inc_c:.2f} | "
        f"{ms_inc.records_rematched:,} | {gs_inc.golden_written:,} |",
        f"| full rebuild, same data | {re_m:.2f} | {re_g:.2f} | {re_t:.2f} | {re_c:.2f} | "
        f"{ms_re.records_rematched:,} | {gs_re.golden_written:,} |",
        f"| peer: `hub dedupe` engine on the records of the full run | {cli_t:.2f} | – | {cli_t:.2f} | "
        f"{cli_c:.2f} | {n_records:,} | – |",
        "",
        f"- full run / `hub dedupe` wall time: **{full_t / cli_t:.2f}×** (match only {full_m / cli_t:.2f}×; "
        f"full rebuild {re_t / cli_t:.2f}×; CPU {full_c / cli_c:.2f}×); target ≤ 2×",
        f"- incremental / full wall time: **{ratio_first:.1%}** vs first full run, **{ratio_rebuild:.1%}** vs full "
        f"rebuild (CPU: {cpu_first:.1%} / {cpu_rebuild:.1%}); target ≤ 10 %",
        f"- golden membership incremental == full rebuild: **{same_sets}** ({diff} differing clusters); "
        f"identical golden ids: {same_ids}",
        f"- sync events: {gs_inc.minted} minted, {gs_inc.merged} merged, {gs_inc.splits} splits, "
        f"{gs_inc.retired_empty} retired, {gs_inc.records_moved} records moved",
        f"- peak RSS of this process per run (VmHWM, reset before each): full {peak['full']:.0f} MB, `hub dedupe` "
        f"peer {peak['cli']:.0f} MB, incremental {peak['incremental']:.0f} MB, full rebuild {peak['rebuild']:.0f} MB "
        f"(forked engine workers not included); staging (not counted) {stage_s:.1f}s",
        f"- incremental timings (cumulative s): match {ms_inc.timings}, golden {gs_inc.timings}; match CPU "
        f"{ms_inc.cpu}; {ms_inc.records_new_or_changed:,} records changed, {ms_inc.records_dirty:,} dirty (content "
        f"or candidate partners), {ms_inc.pairs_scored:,} pairs scored",
        f"- full rebuild timings (cumulative s): match {ms_re.timings}, golden {gs_re.timings}; match CPU "
        f"{ms_re.cpu}; {ms_re.pairs_scored:,} pairs scored",
    ]
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    store.dispose()
    tmp.cleanup()
    return 0 if same_sets else 1


if __name__ == "__main__":
    raise SystemExit(main())
