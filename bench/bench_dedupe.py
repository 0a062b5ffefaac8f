"""Benchmark `hub dedupe` (CLI, subprocess) against Splink (DuckDB) on several labelled synthetic sets.

    python bench/bench_dedupe.py                                  # default plan (see DEFAULT_PLAN)
    python bench/bench_dedupe.py --sets febrl3,customers --sizes 5000
    python bench/bench_dedupe.py --plan customers:100000,1000000 sparse:100000 alt_febrl3:100k

Sets (ground truth in ``entity_id``, all from our own generators):

* ``febrl3``    hub.dedupe.synthetic.febrl_like(0.4*size originals, 0.6*size duplicates, max 5) — dedupe
* ``febrl4``    hub.dedupe.synthetic.febrl_like(size//2, link=True) — two-file linkage A/B (hub --link-only,
                Splink link_type="link_only" on two tables split on ``source``)
* ``customers`` hub.dedupe.synthetic.customers — single source, mixed scripts, households, namesakes
* ``sparse``    hub.dedupe.synthetic.sparse_multisource — ERP / shop / social / call-centre records
* ``alt_febrl3``, ``alt_febrl4``, ``alt_customers``, ``alt_sparse`` — the same four kinds from the
  independently written hub.dedupe.synthetic_alt (febrl_dedup, febrl_link, customers_single_source,
  sparse_multisource), offered only when that module (and the function) exists.

For each set and size: the data is generated once and cached in bench/out (file names carry set and size,
regenerated when the generator's source changes); both tools run in their own subprocess and the table
reports wall time, CPU time (user+sys, forked workers included), peak memory (the process high-water mark or
the summed PSS of its process tree, whichever is larger), the machine's 1-min load average at start/end of the run,
hub/splink wall-time ratio, and pairwise, exact-cluster and B-cubed precision / recall / F1.

hub: ``python -m hub.dedupe.cli INPUT --out OUT [--link-only]`` with default settings.

Splink (DuckDB backend) gets Chinese-aware cleaned input — pinyin names, E.164 phones, ISO dates, e-mail keys,
produced by the hub's own standardisation (hub.dedupe.prepare.prepare) in a separate, *untimed* subprocess —
and is configured as in its documentation (febrl3 / febrl4 / deduplicate_50k demos): comparison library,
blocking rules chosen with splink.blocking_analysis.count_comparisons_from_blocking_rules (counts in
``_splink_model`` and, measured at the run's own size, in dedupe.json), probability_two_random_records_match
from deterministic rules, u by random sampling, EM sessions blocked on different fields, predict at 0.5 and
cluster_pairwise_predictions_at_threshold(0.5). An extra row per set, "splink best threshold", re-clusters
the same predictions at the threshold among THRESHOLDS that maximises cluster F1 on the labels (the
label-picked figure; this sweep is not included in Splink's time).

DuckDB: temp_directory bench/out/duckdb_tmp, memory_limit $SPLINK_MEMORY_LIMIT (default 8GB), threads 2
($SPLINK_THREADS), preserve_insertion_order false. A run over the time or memory cap is stopped and reported
with its reason; no failure stops the script. Output: bench/out/dedupe.md (also printed) and dedupe.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from proc_figures import status_mb, tree_pss_mb

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DUCKDB_TMP = OUT / "duckdb_tmp"
sys.path.insert(0, str(ROOT))

THRESHOLDS = (0.5, 0.7, 0.9, 0.95, 0.99, 0.999)  # candidates for the label-picked Splink threshold

MAIN_SETS = ("febrl3", "febrl4", "customers", "sparse")
ALT_SETS = ("alt_febrl3", "alt_febrl4", "alt_customers", "alt_sparse")
ALT_FUNCTIONS = {"alt_febrl3": "febrl_dedup", "alt_febrl4": "febrl_link",
                 "alt_customers": "customers_single_source", "alt_sparse": "sparse_multisource"}
LINK_SETS = {"febrl4", "alt_febrl4"}
FEBRL_SETS = {"febrl3", "febrl4", "alt_febrl3", "alt_febrl4"}

DEFAULT_SIZES = (100_000, 1_000_000)
# Set -> sizes when neither --plan nor --sizes is given. The alt_* entries are used only when
# hub/dedupe/synthetic_alt.py provides the set's function. Edit here (or pass --plan) to change the run.
# With --sizes (as `make bench` passes "100000,1000000"), alt_* sets that were not named in --sets get only
# the sizes <= ALT_MAX_DEFAULT_SIZE.
ALT_MAX_DEFAULT_SIZE = 100_000
DEFAULT_PLAN: dict[str, tuple[int, ...]] = {
    # person-linkage sets at 100k; the customer sets (where Splink chains households and namesakes) also at 1M
    "febrl3": (100_000,),
    "febrl4": (100_000,),
    "customers": DEFAULT_SIZES,
    "sparse": DEFAULT_SIZES,
    "alt_febrl3": (100_000,),
    "alt_febrl4": (100_000,),
    "alt_customers": (100_000,),
    "alt_sparse": (100_000,),
}


# ---- sets ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paths:
    data: Path  # generated set incl. entity_id
    hub_input: Path  # the same without entity_id (what `hub dedupe` reads)
    splink_input: Path  # hub-standardised columns for Splink
    hub_out: Path
    splink_out: Path  # unique_id, cluster_id at 0.5
    splink_sweep: Path  # unique_id, one cluster column per threshold
    splink_side: Path  # worker's own timings / model facts
    clean_side: Path  # cleaning time, Splink blocking-rule counts


def paths(name: str, size: int) -> Paths:
    s = f"{name}_{size}"
    return Paths(OUT / f"dedupe_{s}.parquet", OUT / f"dedupe_input_{s}.parquet",
                 OUT / f"dedupe_splink_input_{s}.parquet", OUT / f"hub_clusters_{s}.csv",
                 OUT / f"splink_clusters_{s}.csv", OUT / f"splink_sweep_{s}.csv", OUT / f"splink_run_{s}.json",
                 OUT / f"splink_clean_{s}.json")


def _alt_module():
    """hub.dedupe.synthetic_alt, or None when absent or not importable (it may be mid-edit)."""
    if not (ROOT / "hub" / "dedupe" / "synthetic_alt.py").exists():
        return None
    try:
        from hub.dedupe import synthetic_alt
    except Exception as exc:  # noqa: BLE001 - a broken module must not stop the benchmark
        print(f"hub.dedupe.synthetic_alt not importable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return synthetic_alt


def _available(name: str) -> str:
    """'' when the set can be generated, else the reason it cannot."""
    if name in MAIN_SETS:
        return ""
    if name not in ALT_SETS:
        return f"unknown set {name!r}"
    mod = _alt_module()
    if mod is None:
        return "hub/dedupe/synthetic_alt.py missing or not importable"
    if not callable(getattr(mod, ALT_FUNCTIONS[name], None)):
        return f"hub.dedupe.synthetic_alt has no {ALT_FUNCTIONS[name]}()"
    return ""


def _generator_file(name: str) -> Path:
    return ROOT / "hub" / "dedupe" / ("synthetic_alt.py" if name.startswith("alt_") else "synthetic.py")


def _generator_hash(name: str) -> str:
    """Cache key: the generator module's source plus this script's recipe for the set."""
    import inspect

    recipe = (inspect.getsource(generate) + inspect.getsource(_people_sized)).encode()
    return hashlib.sha256(_generator_file(name).read_bytes() + recipe).hexdigest()[:16]


def _people_sized(fn, size: int, **kw) -> pd.DataFrame:
    """Call a people-count generator so that it yields about ``size`` records: calibrate records per person
    on a pilot, generate a little more, keep the first ``size`` rows (rows are shuffled by the generators)."""
    pilot = max(1, len(fn(2000, **kw))) / 2000
    n = max(10, math.ceil(size / pilot * 1.03))
    df = fn(n, **kw)
    while len(df) < size and n < 10 * size:
        n = math.ceil(n * 1.1)
        df = fn(n, **kw)
    return df.iloc[:size]


def _first_param(fn) -> str:
    import inspect

    params = list(inspect.signature(fn).parameters)
    return params[0] if params else ""


def generate(name: str, size: int) -> pd.DataFrame:
    from hub.dedupe import synthetic as syn

    if name == "febrl3":
        n_orig = int(0.4 * size)
        df = syn.febrl_like(n_orig, size - n_orig, 5)
    elif name == "febrl4":
        df = syn.febrl_like(size // 2, link=True)
    elif name == "customers":
        df = _people_sized(syn.customers, size, seed=size % 9973)
    elif name == "sparse":
        df = _people_sized(syn.sparse_multisource, size)
    else:
        why = _available(name)
        if why:
            raise RuntimeError(why)
        fn = getattr(_alt_module(), ALT_FUNCTIONS[name])
        if name == "alt_febrl4":
            df = fn(size // 2)
        elif "record" in _first_param(fn):
            df = fn(size).iloc[:size]
        else:
            df = _people_sized(fn, size)
    df = df.reset_index(drop=True).astype(str)
    for col in ("record_id", "entity_id"):
        if col not in df.columns:
            raise RuntimeError(f"generator for {name} gave no {col!r} column")
    if df["record_id"].duplicated().any():
        raise RuntimeError(f"generator for {name} gave duplicate record_id values")
    return df


def gen_worker(name: str, size: int) -> None:
    """Subprocess: generate and cache a set (keeps the generator's memory out of the driver process)."""
    p = paths(name, size)
    t = time.perf_counter()
    df = generate(name, size)
    df.to_parquet(p.data, index=False)
    df.drop(columns=["entity_id"]).to_parquet(p.hub_input, index=False)
    p.data.with_suffix(".gen").write_text(_generator_hash(name), encoding="ascii")
    print(f"generated {name}: {len(df)} records in {time.perf_counter() - t:.0f}s", file=sys.stderr)


def _cached(name: str, size: int) -> bool:
    p = paths(name, size)
    stamp = p.data.with_suffix(".gen")
    return (p.data.exists() and p.hub_input.exists() and stamp.exists()
            and stamp.read_text(encoding="ascii").strip() == _generator_hash(name))


# ---- Splink model per set --------------------------------------------------------------------------
def _splink_model(name: str) -> dict:
    """Comparisons, prediction blocking rules and training plan for a set, following Splink's demos
    (febrl3.ipynb, febrl4.ipynb, deduplicate_50k_synthetic.ipynb) with rules tightened for 100k-1M rows.

    Rules were chosen with splink.blocking_analysis.count_comparisons_from_blocking_rules (exact,
    record_sample_proportion=1.0) on 20,000-record sets — the machine is shared, so nothing larger was run
    while choosing. Cumulative comparisons over each rule list, measured at 20k -> extrapolated to 100k and
    1M (non-matching pairs x25 / x2500, true pairs x5 / x50), and the share of true pairs the rules reach:

        febrl3         33,047 -> ~0.42M at 100k, ~33M at 1M   blocking recall 0.985 (true pairs reached)
        febrl4         16,244 -> ~0.21M at 100k, ~16M at 1M   0.999
        customers      26,705 -> ~0.51M at 100k, ~47M at 1M   0.966
        sparse         45,866 -> ~0.9M  at 100k, ~87M at 1M   ~0.745 (social / call-centre: name + city only)
        alt_febrl3    122,388 -> ~2.6M  at 100k, ~245M at 1M  0.952 (real suburb/postcode skew; 100k by default)
        alt_febrl4     64,370 -> ~1.4M  at 100k, ~137M at 1M  0.997
        alt_customers  14,911 -> ~0.14M at 100k, ~9M at 1M    0.832
        alt_sparse     20,923 -> ~0.30M at 100k, ~25M at 1M   0.572

    Each run also records Splink's count at its own size in dedupe.json / dedupe.md. The demos' single-field
    rules (given_name, surname, postcode) and first_name+surname give 1e8+ pairs at 1M (Zipf names,
    namesakes) and were left out; dropping first_name+surname costs febrl3 0.3 points of blocking recall.
    """
    import splink.comparison_library as cl
    from splink import block_on

    if name in FEBRL_SETS:
        # FEBRL: names, YYYYMMDD birth date, soc. sec. id, street number + street, suburb, postcode.
        comparisons = [
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.LevenshteinAtThresholds("national_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.8]),
            # PostcodeComparison is for UK postcodes (sector/district/area regexes); these are 4-digit AU codes.
            # Suburb (city) left out as in the demos: "strongly correlated with postcode".
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        ]
        # counts: see the docstring
        blocking = [
            block_on("national_id"),
            "l.first_name = r.surname and l.surname = r.first_name",
            block_on("dob"),
            block_on("street_number", "address_1"),
            block_on("postcode", "street_number"),
            block_on("first_name", "postcode"),
            block_on("surname", "postcode"),
        ]
        deterministic = [
            block_on("national_id"),
            block_on("first_name", "surname", "dob"),
            "l.first_name = r.surname and l.surname = r.first_name and l.dob = r.dob",
        ]
        recall = 0.8 if name in LINK_SETS else 0.9  # as in the febrl4 / febrl3 demos
        em = [block_on("dob"), block_on("postcode")]
    else:
        # customers / multi-source: pinyin names from hub standardisation, e-mail keys, E.164 phones (TF:
        # shared landlines, switchboards), ids, street, city / postcode (TF), gender (households, spouses).
        comparisons = [
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            # TF: namesakes' look-alike addresses collapse to one e-mail key (maryjones@gmail.com)
            cl.EmailComparison("email").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("phone", [1, 2]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("national_id", [1, 2]),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.8]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            # no postcode comparison: here it follows from the city (one code per city), and the demos leave
            # out location columns "strongly correlated with postcode"; it remains a blocking key. (Mixed CN /
            # AU / US / UK codes would not suit PostcodeComparison's UK regexes anyway.)
            cl.ExactMatch("gender"),
        ]
        # counts: see the docstring
        # first_name+surname alone is quadratic in the namesake share (王伟, John Smith): only with city etc.
        blocking = [
            block_on("email"),
            block_on("phone"),
            block_on("national_id"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("first_name", "surname", "city"),
            block_on("first_name", "surname", "postcode"),
            block_on("first_name", "street"),
        ]
        if name in ("sparse", "alt_sparse"):
            # social / call-centre records hold little beyond a name and a city
            blocking.append(block_on("surname", "substr(first_name, 1, 1)", "city"))
        deterministic = [block_on("first_name", "surname", "dob"), block_on("email"), block_on("national_id")]
        recall = 0.7
        em = [block_on("dob"), block_on("phone"), block_on("first_name", "surname", "city")]
    return {"comparisons": comparisons, "blocking": blocking, "deterministic": deterministic, "recall": recall,
            "em": em}


def _duckdb_connection():
    import duckdb

    DUCKDB_TMP.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    # spill to a roomy place instead of failing (the earlier 1M run died on a temp-file write at 10.7 GB)
    con.execute(f"SET temp_directory='{DUCKDB_TMP}'")
    max_temp = os.environ.get("SPLINK_MAX_TEMP_SIZE") or f"{int(shutil.disk_usage(OUT).free * 0.8 / 2**30)}GB"
    con.execute(f"SET max_temp_directory_size='{max_temp}'")
    con.execute(f"SET memory_limit='{os.environ.get('SPLINK_MEMORY_LIMIT', '8GB')}'")
    con.execute(f"SET threads={int(os.environ.get('SPLINK_THREADS', '2'))}")
    con.execute("SET preserve_insertion_order=false")
    return con


def _splink_tables(db_api, df: pd.DataFrame, name: str) -> list:
    if name in LINK_SETS:
        return [db_api.register(df[df["source"] == s].drop(columns=["source"]).reset_index(drop=True),
                                dataset_display_name=f"source_{s}") for s in sorted(df["source"].unique())]
    return [db_api.register(df.drop(columns=["source"]), dataset_display_name=name)]


def clean_worker(name: str, size: int) -> None:
    """Subprocess, not timed as Splink's: hub standardisation -> Splink input columns; then Splink's
    blocking analysis of the chosen prediction rules at this size (recorded in dedupe.json)."""
    import numpy as np

    from hub.dedupe.prepare import prepare

    p = paths(name, size)
    t0 = time.perf_counter()
    raw = pd.read_parquet(p.hub_input)
    prep = prepare(raw)

    def col(k: str) -> np.ndarray:
        v = prep.key(k).values()
        return np.where(v == "", None, v)

    dob = prep.key("dob").values()
    street = prep.key("street").values()
    num_addr = [re.match(r"(\d+)\s+(.+)", s) for s in street]
    df = pd.DataFrame({
        "unique_id": prep.record_id,
        "source": raw["source"].astype(str).to_numpy() if "source" in raw.columns else "",
        "first_name": col("given"), "surname": col("family"),
        "dob": [f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 else None for d in dob],
        "email": col("email"), "phone": col("phone"), "national_id": col("national_id"),
        "street": col("street"),
        "street_number": [m.group(1) if m else None for m in num_addr],
        "address_1": [m.group(2) if m else (s or None) for m, s in zip(num_addr, street, strict=True)],
        "city": col("city"), "postcode": col("postcode"), "gender": col("gender"),
    })
    df.to_parquet(p.splink_input, index=False)
    clean_s = time.perf_counter() - t0
    print(f"splink input cleaned ({clean_s:.1f}s, not timed as Splink's)", file=sys.stderr)

    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    t1 = time.perf_counter()
    sample = 1.0 if len(df) <= 100_000 else 0.2
    db_api = DuckDBAPI(connection=_duckdb_connection())
    counts = count_comparisons_from_blocking_rules(
        _splink_tables(db_api, df, name), blocking_rules=_splink_model(name)["blocking"],
        link_type="link_only" if name in LINK_SETS else "dedupe_only", record_sample_proportion=sample)
    rules = [{"rule": c["blocking_rule"], "marginal": int(c["marginal_comparison_count"]),
              "cumulative": int(c["cumulative_comparison_count"])} for c in counts]
    p.clean_side.write_text(json.dumps({
        "clean_s": clean_s, "blocking_analysis_s": time.perf_counter() - t1, "record_sample_proportion": sample,
        "total_possible": int(counts[0]["total_possible_comparison_count"]) if counts else 0,
        "blocking_rules": rules}, indent=1), encoding="utf-8")


def _cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def splink_worker(name: str, size: int) -> None:
    """Subprocess timed as Splink: read the cleaned input, train, predict at 0.5, cluster at 0.5. Afterwards
    (reported separately, not in Splink's time) re-cluster at each of THRESHOLDS for the label-picked row."""
    from splink import DuckDBAPI, Linker, SettingsCreator

    p = paths(name, size)
    df = pd.read_parquet(p.splink_input)
    model = _splink_model(name)
    link = name in LINK_SETS
    settings = SettingsCreator(
        link_type="link_only" if link else "dedupe_only",
        comparisons=model["comparisons"],
        blocking_rules_to_generate_predictions=model["blocking"],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI(connection=_duckdb_connection())
    linker = Linker(_splink_tables(db_api, df, name), settings)
    linker.training.estimate_probability_two_random_records_match(model["deterministic"], recall=model["recall"])
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for rule in model["em"]:
        # max_pairs (Splink 5): hash-sample the records so EM sees ~1e7 pairs (postcode blocks at 1M: ~8e7)
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=1e7)
    pred = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, 0.5)
    clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]].to_csv(p.splink_out, index=False)
    side = {"main_done": True, "main_cpu_s": _cpu_s(), "main_peak_mb": status_mb("self", "VmHWM"),
            "prior": linker._settings_obj._probability_two_random_records_match,
            "predicted_pairs_at_0.5": int(
                db_api.duckdb_con.sql(f"select count(*) from {pred.physical_name}").fetchall()[0][0])}
    p.splink_side.write_text(json.dumps(side), encoding="utf-8")

    t = time.perf_counter()
    sweep = None
    for thr in THRESHOLDS:
        c = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, thr).as_pandas_dataframe()
        c = c[["unique_id", "cluster_id"]].rename(columns={"cluster_id": f"t{thr}"})
        sweep = c if sweep is None else sweep.merge(c, on="unique_id", how="outer")
    sweep.to_csv(p.splink_sweep, index=False)
    side["sweep_s"] = time.perf_counter() - t
    p.splink_side.write_text(json.dumps(side), encoding="utf-8")


# ---- running and measuring -------------------------------------------------------------------------
def _run(cmd: list[str], log: Path, mem_cap_mb: float, time_cap_s: float) -> dict:
    """Run a subprocess; return wall, cpu (user+sys, forked workers included) and peak memory (MB) of that
    process and the 1-min load average before and after. Peak memory is sampled every 0.2 s: the larger of
    the process's own high-water mark (VmHWM) and the summed PSS of its process tree (forked workers
    included). ``wait4``'s ru_maxrss is not used: Linux seeds a child's maxrss with the parent's RSS at fork,
    so a small run started by a big benchmark process would report the benchmark's size. A run that grows
    beyond ``mem_cap_mb`` or ``time_cap_s`` is stopped (the machine is shared) and reported as failed."""
    load0 = os.getloadavg()
    t = time.perf_counter()
    try:
        with open(log, "w", encoding="utf-8") as err_fh:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_fh, cwd=ROOT)
            killed = ""
            peak = 0.0
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, status_mb(proc.pid, "VmHWM"), tree_pss_mb(proc.pid))
                over_time = time.perf_counter() - t > time_cap_s
                if status_mb(proc.pid, "VmRSS") > mem_cap_mb or over_time:
                    proc.kill()
                    killed = "time" if over_time else "memory"
                    _, status, ru = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, tell Popen
    except OSError as exc:
        return {"wall_s": time.perf_counter() - t, "failed": f"could not run: {exc}", "load_start": load0[0],
                "load_end": os.getloadavg()[0]}
    wall = time.perf_counter() - t
    res = {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": peak, "failed": "",
           "load_start": load0[0], "load_end": os.getloadavg()[0]}
    if killed == "memory":
        res["failed"] = f"stopped: RSS above {mem_cap_mb / 1024:.1f} GB"
    elif killed == "time":
        res["failed"] = f"stopped: still running after {time_cap_s:.0f} s"
    elif proc.returncode != 0:
        res["failed"] = f"exit {proc.returncode}: {_last_error(log)}"
    return res


def _last_error(log: Path) -> str:
    lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").strip().splitlines() if ln.strip()]
    for ln in reversed(lines):  # the exception line rather than a trailing progress message
        if re.match(r"^[\w.]*(Error|Exception|Killed)\b", ln.strip()):
            return ln.strip()[:160]
    return lines[-1].strip()[:160] if lines else ""


def _truth(data: Path) -> pd.Series:
    t = pd.read_parquet(data, columns=["record_id", "entity_id"])
    return pd.Series(t["entity_id"].astype(str).to_numpy(), index=t["record_id"].astype(str).to_numpy())


def _metrics_of(c: pd.DataFrame, truth: pd.Series, id_col: str, cluster_col: str) -> dict:
    from hub.dedupe.evaluate import cluster_metrics

    c = c[c[id_col].isin(truth.index)]
    pred = pd.Series(c[cluster_col].astype(str).to_numpy(), index=c[id_col].astype(str).to_numpy())
    pred = pred[~pred.index.duplicated()]
    missing = truth.index.difference(pred.index)  # singletons a tool did not report
    pred = pd.concat([pred, pd.Series(["_single_" + m for m in missing], index=missing)])
    m = cluster_metrics(pred, truth)
    return {k: float(v) for k, v in m.items()}


def _metrics(csv: Path, truth: pd.Series, id_col: str, cluster_col: str = "cluster_id") -> dict:
    return _metrics_of(pd.read_csv(csv, dtype=str, keep_default_na=False), truth, id_col, cluster_col)


def _worker_cmd(mode: str, name: str, size: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), f"--{mode}-worker", name, str(size)]


def bench_one(name: str, size: int, args: argparse.Namespace, time_cap: float) -> tuple[list[dict], dict]:
    """All rows for one set/size; never raises."""
    base = {"set": name, "size": size}
    info: dict = {"set": name, "size": size}
    mem_cap = args.mem_cap_gb * 1024
    why = _available(name)
    if why:
        return [{**base, "tool": "-", "failed": why}], info
    p = paths(name, size)
    if not _cached(name, size):
        r = _run(_worker_cmd("gen", name, size), OUT / f"log_gen_{name}_{size}.txt", mem_cap, time_cap)
        if r["failed"]:
            return [{**base, "tool": "-", "failed": f"generating the set: {r['failed']}"}], info
        info["generate_s"] = r["wall_s"]
    try:
        truth = _truth(p.data)
    except Exception as exc:  # noqa: BLE001
        return [{**base, "tool": "-", "failed": f"reading the set: {exc}"}], info
    base["records"] = len(truth)
    info["records"], info["entities"] = len(truth), int(truth.nunique())
    rows = []

    cmd = [sys.executable, "-m", "hub.dedupe.cli", str(p.hub_input), "--out", str(p.hub_out)]
    if name in LINK_SETS:
        cmd.append("--link-only")
    p.hub_out.unlink(missing_ok=True)
    r = _run(cmd, OUT / f"log_hub_{name}_{size}.txt", mem_cap, time_cap)
    if not r["failed"]:
        try:
            r.update(_metrics(p.hub_out, truth, "record_id"))
        except Exception as exc:  # noqa: BLE001
            r["failed"] = f"evaluating: {type(exc).__name__}: {exc}"
    rows.append({**base, "tool": "hub dedupe", **r})
    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.skip_splink:
        return rows, info

    for f in (p.splink_input, p.splink_out, p.splink_sweep, p.splink_side, p.clean_side):
        f.unlink(missing_ok=True)
    r = _run(_worker_cmd("clean", name, size), OUT / f"log_splink_clean_{name}_{size}.txt", mem_cap, time_cap)
    if not r["failed"] and p.clean_side.exists():
        info["splink_clean"] = json.loads(p.clean_side.read_text(encoding="utf-8"))
    if r["failed"] and not p.splink_input.exists():
        rows.append({**base, "tool": "splink (duckdb)", "failed": f"cleaning input: {r['failed']}"})
        return rows, info
    if r["failed"]:
        info["splink_clean_failed"] = r["failed"]  # blocking analysis failed after the input was written
    info["splink_clean_wall_s"] = r["wall_s"]

    shutil.rmtree(DUCKDB_TMP, ignore_errors=True)
    r = _run(_worker_cmd("splink", name, size), OUT / f"log_splink_{name}_{size}.txt", mem_cap, time_cap)
    shutil.rmtree(DUCKDB_TMP, ignore_errors=True)
    side = json.loads(p.splink_side.read_text(encoding="utf-8")) if p.splink_side.exists() else {}
    info["splink_model"] = {k: v for k, v in side.items() if k in ("prior", "predicted_pairs_at_0.5", "sweep_s")}
    main = dict(r)
    if side.get("main_done"):
        # the label-picked sweep ran after the timed part: leave it out of Splink's figures
        main.update(failed="", cpu_s=side["main_cpu_s"], peak_mb=side["main_peak_mb"],
                    wall_s=r["wall_s"] - side.get("sweep_s", 0.0) if "sweep_s" in side else r["wall_s"])
        if "sweep_s" not in side:
            main["note"] = "wall includes part of the interrupted threshold sweep"
        try:
            main.update(_metrics(p.splink_out, truth, "unique_id"))
        except Exception as exc:  # noqa: BLE001
            main["failed"] = f"evaluating: {type(exc).__name__}: {exc}"
    rows.append({**base, "tool": "splink (duckdb)", "threshold": 0.5, **main})
    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    best: dict = {**base, "tool": "splink best threshold"}
    if p.splink_sweep.exists():
        try:
            sweep = pd.read_csv(p.splink_sweep, dtype=str, keep_default_na=False)
            per = {thr: _metrics_of(sweep, truth, "unique_id", f"t{thr}") for thr in THRESHOLDS}
            thr = max(THRESHOLDS, key=lambda t: per[t]["cluster_f1"])
            best.update(threshold=thr, failed="", **per[thr])
            info["splink_cluster_f1_by_threshold"] = {str(t): per[t]["cluster_f1"] for t in THRESHOLDS}
        except Exception as exc:  # noqa: BLE001
            best["failed"] = f"evaluating: {type(exc).__name__}: {exc}"
    else:
        best["failed"] = r["failed"] or "no threshold sweep written"
    rows.append(best)
    hub_wall, sp_wall = rows[0].get("wall_s"), main.get("wall_s")
    if not rows[0].get("failed") and not main.get("failed") and hub_wall and sp_wall:
        rows[0]["hub_over_splink_wall"] = hub_wall / sp_wall
    return rows, info


# ---- report ------------------------------------------------------------------------------------------
COLS = [("set", "set"), ("size", "size"), ("records", "records"), ("tool", "tool"), ("wall_s", "wall s"),
        ("cpu_s", "cpu s"), ("peak_mb", "peak MB"), ("load", "load 1m start/end"),
        ("hub_over_splink_wall", "hub/splink wall"), ("threshold", "threshold"),
        ("pairwise_precision", "pair P"), ("pairwise_recall", "pair R"), ("pairwise_f1", "pair F1"),
        ("cluster_precision", "cluster P"), ("cluster_recall", "cluster R"), ("cluster_f1", "cluster F1"),
        ("bcubed_precision", "B³ P"), ("bcubed_recall", "B³ R"), ("bcubed_f1", "B³ F1"), ("failed", "failed")]


def _fmt(c: str, r: dict) -> str:
    if c == "load":
        return f"{r['load_start']:.2f}/{r['load_end']:.2f}" if "load_start" in r else "-"
    v = r.get(c)
    if v is None or (c not in ("set", "size", "records", "tool", "failed", "threshold") and r.get("failed")):
        return "-" if c != "failed" else ""
    if c == "failed":
        return str(v).replace("|", "/")
    if c == "threshold":
        return f"{v:g}"
    if c == "hub_over_splink_wall":
        return f"{v:.2f}"
    if isinstance(v, float):
        return f"{v:.1f}" if c in ("wall_s", "cpu_s", "peak_mb") else f"{v:.4f}"
    return str(v)


def render(rows: list[dict], infos: list[dict], meta: dict) -> str:
    lines = ["| " + " | ".join(h for _, h in COLS) + " |", "|" + "---|" * len(COLS)]
    lines += ["| " + " | ".join(_fmt(c, r) for c, _ in COLS) + " |" for r in rows]
    notes = [
        f"# hub dedupe vs Splink — {meta['started']}", "",
        f"{meta['machine']}. hub: `python -m hub.dedupe.cli INPUT --out OUT [--link-only]`, default settings. "
        f"Splink {meta['splink']} / DuckDB {meta['duckdb']} (threads {meta['duckdb_threads']}, memory_limit "
        f"{meta['duckdb_memory_limit']}, temp bench/out/duckdb_tmp), configured as in its demos; predict and "
        "cluster at 0.5.",
        "",
        "**Splink's input cleaning (hub standardisation: pinyin names, E.164 phones, ISO dates, e-mail keys) is "
        "done beforehand in a separate process and is NOT included in Splink's wall/CPU/peak figures**; hub's "
        "figures include its own standardisation. *splink best threshold* re-clusters the same Splink "
        f"predictions at the threshold among {', '.join(map(str, THRESHOLDS))} with the best cluster F1 on the "
        "labels (label-picked, not available without ground truth; not timed). hub/splink wall < 1 means hub "
        "is faster. Load = 1-min load average at start/end of each run (2 shared cores).", "",
    ]
    extra = []
    for i in infos:
        sc = i.get("splink_clean")
        if not sc:
            continue
        rules = "; ".join(f"`{b['rule']}` {b['cumulative']:,}" for b in sc["blocking_rules"])
        extra.append(f"- {i['set']} {i['size']:,}: cleaning {sc['clean_s']:.1f} s (untimed); cumulative "
                     f"comparisons (record_sample_proportion {sc['record_sample_proportion']}): {rules}")
    if meta.get("skipped"):
        extra.append("- not run: " + "; ".join(meta["skipped"]))
    tail = ["", "Splink blocking (splink.blocking_analysis.count_comparisons_from_blocking_rules) and notes:", "",
            *extra] if extra else []
    return "\n".join(notes + lines + tail) + "\n"


def _parse_size(s: str) -> int:
    s = s.strip().lower().replace("_", "")
    mult = 1_000_000 if s.endswith("m") else 1000 if s.endswith("k") else 1
    return int(float(s.rstrip("mk")) * mult)


def build_plan(args: argparse.Namespace) -> tuple[list[tuple[str, int]], list[str]]:
    skipped: list[str] = []
    if args.plan:
        plan = []
        for tok in args.plan:
            name, _, sizes = tok.partition(":")
            if not sizes:
                raise SystemExit(f"--plan entry {tok!r}: expected SET:SIZE[,SIZE...]")
            plan += [(name.strip(), _parse_size(s)) for s in sizes.split(",") if s.strip()]
        return plan, skipped
    named = bool(args.sets)
    if named:
        names = [s.strip() for s in args.sets.split(",") if s.strip()]
    else:
        names = list(MAIN_SETS)
        if _alt_module() is not None:
            for a in ALT_SETS:
                why = _available(a)
                if why:
                    skipped.append(f"{a} ({why})")
                else:
                    names.append(a)
    if not args.sizes:
        return [(n, s) for n in names for s in DEFAULT_PLAN.get(n, DEFAULT_SIZES)], skipped
    sizes = [_parse_size(s) for s in args.sizes.split(",") if s.strip()]
    return [(n, s) for n in names for s in sizes
            if named or n not in ALT_SETS or s <= ALT_MAX_DEFAULT_SIZE], skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=f"sets: {', '.join(MAIN_SETS + ALT_SETS)}")
    ap.add_argument("--sets", help=f"comma-separated sets (default: {','.join(MAIN_SETS)}, plus the alt_* sets "
                    "when hub/dedupe/synthetic_alt.py provides them)")
    ap.add_argument("--sizes", help="comma-separated record counts (default: 100000,1000000 for the main sets, "
                    "100000 for alt_* — see DEFAULT_PLAN); alt_* sets not named in --sets get only sizes <= 100000")
    ap.add_argument("--plan", nargs="+", metavar="SET:SIZES",
                    help="explicit set -> sizes, e.g. customers:100000,1000000 sparse:100k alt_febrl3:100k "
                    "(overrides --sets/--sizes)")
    ap.add_argument("--skip-splink", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    ap.add_argument("--time-cap-s", type=float, help="stop a run longer than this (default 1800 s, 3600 s at "
                    ">= 1M records)")
    ap.add_argument("--mem-cap-gb", type=float, default=12.0,
                    help="stop a tool whose RSS exceeds this (the machine is shared); reported as failed")
    for mode in ("gen", "clean", "splink"):
        ap.add_argument(f"--{mode}-worker", nargs=2, metavar=("SET", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for mode, fn in (("gen", gen_worker), ("clean", clean_worker), ("splink", splink_worker)):
        w = getattr(args, f"{mode}_worker")
        if w:
            fn(w[0], int(w[1]))
            return 0

    plan, skipped = build_plan(args)
    if args.dry_run:
        print("\n".join(f"{n} {s}" for n, s in plan) + "".join(f"\nnot run: {x}" for x in skipped))
        return 0
    try:
        import duckdb
        import splink
        versions = (splink.__version__, duckdb.__version__)
    except ImportError:
        versions = ("not installed", "not installed")
    meta = {"started": time.strftime("%Y-%m-%d %H:%M"), "plan": [f"{n}:{s}" for n, s in plan],
            "machine": f"{platform.node()} — {os.cpu_count()} cores, "
                       f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, "
                       f"Python {platform.python_version()}",
            "splink": versions[0], "duckdb": versions[1], "duckdb_threads": int(os.environ.get("SPLINK_THREADS", "2")),
            "duckdb_memory_limit": os.environ.get("SPLINK_MEMORY_LIMIT", "8GB"), "thresholds": list(THRESHOLDS),
            "splink_cleaning_timed": False, "skipped": skipped}
    rows: list[dict] = []
    infos: list[dict] = []
    for name, size in plan:
        cap = args.time_cap_s or (3600.0 if size >= 1_000_000 else 1800.0)
        print(f"=== {name} {size}", file=sys.stderr, flush=True)
        try:
            r, info = bench_one(name, size, args, cap)
        except Exception as exc:  # noqa: BLE001 - report, keep going
            traceback.print_exc()
            r, info = [{"set": name, "size": size, "tool": "-", "failed": f"{type(exc).__name__}: {exc}"}], {}
        rows += r
        infos.append(info)
        md = render(rows, infos, meta)  # rewritten after every set, so a long run leaves partial results
        (OUT / "dedupe.md").write_text(md, encoding="utf-8")
        (OUT / "dedupe.json").write_text(json.dumps({"meta": meta, "rows": rows, "sets": infos}, indent=1,
                                                    default=str), encoding="utf-8")
    print(render(rows, infos, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
