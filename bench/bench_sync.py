"""End-to-end sync bench: the sandbox world through the hub's full sync, then a 1 % change and the incremental sync.

    python bench/bench_sync.py --people 1000000 [--backends sqlite,postgres] [--rate 20] [--workdir DIR]
                               [--stop-at HH:MM] [--no-cli]

What runs, each in its own process so that the figures are the hub's alone:
  1. the sandbox world is generated once (``python -m hub.sandbox create``; time and peak RSS reported apart)
     and copied per backend (the sync's pushes change the systems);
  2. per backend, the sandbox serves its copy (``python -m hub.sandbox serve``, its own process) and the hub runs
     the ``full_sync`` job in process — the path ``hub demo`` and ``hub sync`` take — on a fresh store (SQLite file
     or a fresh PostgreSQL database). A sampler thread in the hub's process records CPU time (the process and its
     forked workers) and the process tree's resident memory (RSS; forked workers by PSS) every 0.5 s; Dagster's step events cut that
     into stages: wall time, CPU time, peak memory and records/s per stage (asset or check);
  3. the store's size on disk per table (SQLite ``dbstat``, PostgreSQL ``pg_total_relation_size``);
  4. the pipeline's clusters (open xref rows) against the sandbox's ground truth: pairwise and exact-cluster F1;
  5. the world is changed (``hub.sandbox mutate --fraction``: 1 % of every system's customers), served again, and
     the incremental sync measured the same way.

The web shop and WeChat are paged HTTP APIs: the hub's client rate (hub.yaml ``requests_per_second``, shipped
default 20/s) is what a real sync pays for them; ``--rate`` sets it for both and the table says what was set.
Writes markdown to bench/out/sync.md and the raw figures to bench/out/sync.json, rewritten every 30 s while a
sync runs (the running stage marked "running", cut at that moment). ``--stop-at HH:MM`` (UTC) stops a sync
still running then: the table keeps the stages that finished and the one that was running; nothing runs
after it. At 1M people expect the world to take ~7 min and ~16 GB to generate (409 s on 2026-12-07; ~35 min
on earlier machines), the sandbox ~12.6 GB and ~2 min to start (it holds the shop's JSON state in memory) and
``hub.sandbox mutate`` ~20 GB: the harness, not the hub. The full sync took 4,405 s and the incremental one
861 s there (SQLite, 20 requests/s). The sampler reads every process's smaps_rollup from a thread of the hub's
process: at 1M ~12 % of a core during staging (py-spy), counted in the hub's CPU.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from proc_figures import children, cpu_s, read_mb, status_mb, tree_memory_mb

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


class Sampler(threading.Thread):
    """Samples (time, CPU s of the process tree, memory MB of the process tree, MB the disk read for the
    process tree) every ``every`` seconds. Disk reads of forked workers count while they live (what a worker
    reads after the last sample before it exits is lost): at a million people the store is larger than the page
    cache and a stage's disk reads tell an I/O-bound stage from a CPU-bound one.

    Memory is what the tree holds in RAM: the sum of every process's PSS (a page shared by k processes counts
    1/k in each), so the main process's pages that forked workers share are counted once, not once in the main
    process's resident size and again in the workers'. The sampler runs in the measured process, so its own
    cost counts: with no worker alive the main process's resident size comes from ``statm`` (cheap, and then
    equal to its PSS but for shared libraries); PSS (``smaps_rollup`` walks the page tables: ~20 ms for a 600 MB
    process) only while workers live."""

    def __init__(self, every: float = 0.5):
        super().__init__(daemon=True, name="bench-sampler")
        self.every = every
        self.samples: list[tuple[float, float, float, float]] = []
        self._gone_read = 0.0  # disk reads of workers that exited, as last sampled
        self._kid_read: dict[int, float] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        me = os.getpid()
        kids = children(me)
        # a live child's own waited-for children count with it: a stage runs in a forked child that forks
        # its workers (their CPU reaches this process's cutime only when the stage's child is reaped)
        cpu = cpu_s(me, waited=True) + sum(cpu_s(k, waited=True) for k in kids)
        mem = tree_memory_mb(me, kids)
        now_read = {k: read_mb(k) for k in kids}
        self._gone_read += sum(v for k, v in self._kid_read.items() if k not in now_read)
        self._kid_read = now_read
        read = read_mb(me) + self._gone_read + sum(now_read.values())
        self.samples.append((time.time(), cpu, mem, read))

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()


# ---------------------------------------------------------------------------------------------- the hub's process
def _row_count(meta: dict[str, Any]) -> int | None:
    # the records the step went through: landed (pulls), read from landing (staging), the matched population,
    # records of the clusters rebuilt (golden), golden customers (360, lookup, report), pushed (pushes)
    for key in ("dagster/row_count", "records_in", "records_total", "records", "records_affected",
                "golden_customers", "sent", "customers"):
        v = meta.get(key)
        if isinstance(v, int | float):
            return int(v)
    return None


def _steps(instance: Any, run_id: str, samples: list[tuple[float, float, float, float]],
           now: float | None = None) -> list[dict[str, Any]]:
    """Per-step figures from the run's event log cut against the sampler's samples; a step still running
    (no end event yet) is cut at ``now`` and has status "running"."""
    steps: dict[str, dict[str, Any]] = {}
    for rec in instance.all_logs(run_id):
        ev = rec.dagster_event
        if ev is None or ev.step_key is None:
            continue
        s = steps.setdefault(ev.step_key, {"step": ev.step_key})
        if ev.event_type_value == "STEP_START":
            s["start"] = rec.timestamp
        elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            s["end"] = rec.timestamp
            s["status"] = ev.event_type_value.removeprefix("STEP_").lower()
        elif ev.event_type_value == "ASSET_MATERIALIZATION":
            mat = ev.event_specific_data.materialization
            meta = {k: v.value for k, v in mat.metadata.items()}
            n = _row_count(meta)
            if n is not None:  # a step of several assets (the pulls, the pushes): their records add up
                s["records"] = s.get("records", 0) + n
            if isinstance(meta.get("seconds"), int | float):  # each asset's own time inside a shared step
                s.setdefault("assets", {})[mat.asset_key.to_user_string()] = meta["seconds"]
    if not samples:
        return []
    for s in steps.values():
        if "start" not in s:
            continue
        if "end" not in s:
            if now is None:
                continue
            s["end"], s["status"] = now, "running"
        inside = [x for x in samples if s["start"] <= x[0] <= s["end"]]
        before = [x for x in samples if x[0] <= s["start"]][-1:] or samples[:1]
        after = [x for x in samples if x[0] >= s["end"]][:1] or samples[-1:]
        s["wall_s"] = s["end"] - s["start"]
        s["cpu_s"] = max(0.0, after[0][1] - before[0][1])
        s["peak_mb"] = max([x[2] for x in inside] + [before[0][2], after[0][2]])
        s["read_mb"] = max(0.0, after[0][3] - before[0][3])
    return sorted((s for s in steps.values() if "start" in s), key=lambda s: s["start"])


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    tmp.replace(path)


def child_sync(out: Path) -> int:
    """Run the full_sync job in this process (as `hub demo` does) and write per-step figures to ``out``.

    While the run goes on, the figures of the steps so far (the running one cut at the moment of writing) are
    written to ``out`` every 20 s, so a run stopped at a time limit still leaves its per-stage figures."""
    import dagster as dg

    from hub.config import load_config
    from hub.definitions import defs
    from hub.sync import JOB, plan_sync, run_job

    with dg.DagsterInstance.get() as instance:
        known = {r.run_id for r in instance.get_runs()}
    sampler = Sampler()
    sampler.sample()
    sampler.start()
    t0 = time.time()
    done = threading.Event()

    def write_partial(inst: Any) -> None:
        run_id = next((r.run_id for r in inst.get_runs(limit=5) if r.run_id not in known), None)
        if run_id is None:
            return
        samples = list(sampler.samples)
        now = time.time()
        _write_json(out, {"success": False, "partial": True, "wall_s": now - t0,
                          "cpu_s": samples[-1][1] - samples[0][1], "peak_mb": max(x[2] for x in samples),
                          "read_mb": samples[-1][3] - samples[0][3],
                          "main_hwm_mb": status_mb("self", "VmHWM"),
                          "steps": _steps(inst, run_id, samples, now), "run_id": run_id})

    def partial() -> None:
        with dg.DagsterInstance.get() as inst:
            while not done.wait(20.0):
                try:
                    write_partial(inst)
                except Exception as exc:  # a figure missed now is written at the next tick
                    print(f"bench: partial figures not written ({type(exc).__name__})", file=sys.stderr, flush=True)

    def stopped(signum: int, frame: Any) -> None:  # the time limit: the figures so far, then exit at once
        done.set()
        sampler.sample()
        with dg.DagsterInstance.get() as inst:
            write_partial(inst)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stopped)
    writer = threading.Thread(target=partial, daemon=True, name="bench-partial")
    writer.start()
    result = run_job(plan_sync(load_config(), job=defs.resolve_job_def(JOB)), trigger="bench", progress=sys.stderr)
    done.set()
    writer.join()
    sampler.stop()
    t1 = time.time()
    samples = sampler.samples
    with dg.DagsterInstance.get() as instance:
        ordered = _steps(instance, result.run_id, samples)
    doc = {"success": result.success, "wall_s": t1 - t0, "cpu_s": samples[-1][1] - samples[0][1],
           "read_mb": samples[-1][3] - samples[0][3],
           "peak_mb": max(x[2] for x in samples), "main_hwm_mb": status_mb("self", "VmHWM"),
           "steps": ordered, "run_id": result.run_id}
    _write_json(out, doc)
    return 0 if result.success else 1


# ---------------------------------------------------------------------------------------------- orchestration
def _timed(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
           stdout: Any = None, deadline: float | None = None,
           tick: Any = None) -> tuple[int, float, float, float]:
    """Run ``cmd``; (exit code, wall s, CPU s, peak RSS MB) from wait4. Past ``deadline`` (time.time()) the
    process is stopped (SIGTERM, SIGKILL 60 s later) and its exit code is negative; ``tick()`` every 30 s."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout)
    stopped_at = None
    last_tick = time.time()
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.time()
        if deadline is not None and now >= deadline:
            if stopped_at is None:
                print(f"bench: time limit reached, stopping {Path(cmd[1]).name if len(cmd) > 1 else cmd[0]}",
                      file=sys.stderr, flush=True)
                proc.send_signal(signal.SIGTERM)
                stopped_at = now
            elif now - stopped_at > 60:
                proc.kill()
        if tick is not None and now - last_tick >= 30:
            last_tick = now
            tick()
        time.sleep(0.5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0


class Sandbox:
    """``python -m hub.sandbox serve DIR`` in its own process; the endpoints it prints become the hub's env."""

    def __init__(self, world: Path):
        self.world = world
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}

    save = True  # False: stop without writing the world's state (nothing runs after it)

    def __enter__(self) -> Sandbox:
        t = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "hub.sandbox", "serve", str(self.world)],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("HUB_"):
                k, v = line.strip().split("=", 1)
                self.env[k] = v
                if k == "HUB_CDR_DIR":
                    break
        if "HUB_CDR_DIR" not in self.env:
            raise RuntimeError("sandbox did not start")
        self.start_s = time.perf_counter() - t
        return self

    def rss_mb(self) -> float:
        assert self.proc is not None
        return status_mb(self.proc.pid, "VmRSS")

    def __exit__(self, *exc: Any) -> None:
        assert self.proc is not None
        if self.save:
            self.proc.send_signal(signal.SIGTERM)  # saves the world's state
            self.proc.wait(timeout=3600)
        else:
            self.proc.kill()
            self.proc.wait()


def _config(path: Path, rate: float, report: Path) -> Path:
    import yaml

    cfg = yaml.safe_load((ROOT / "hub" / "hub.default.yaml").read_text(encoding="utf-8"))
    for src in cfg["sources"].values():
        if "requests_per_second" in src:
            src["requests_per_second"] = rate
    cfg["report"]["path"] = str(report)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def table_sizes(url: str) -> dict[str, int]:
    """Bytes on disk per table, indexes (and TOAST) included."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            if eng.dialect.name == "sqlite":
                owner = dict(conn.execute(sa.text("SELECT name, tbl_name FROM sqlite_master")).all())
                out: dict[str, int] = {}
                for name, size in conn.execute(sa.text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
                    table = owner.get(name, name)
                    out[table] = out.get(table, 0) + int(size)
                return out
            return {t: int(n) for t, n in conn.execute(sa.text(
                "SELECT relname, pg_total_relation_size(relid) FROM pg_catalog.pg_statio_user_tables"))}
    finally:
        eng.dispose()


def quarantined_customers(url: str) -> set[str]:
    """Record keys of the customer rows staging quarantined: the pipeline never matches them."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        keys = {f"{src}:{sid}" for src, sid in conn.execute(sa.text(
            "SELECT source, source_id FROM quarantine WHERE entity = 'customers'"))}
    eng.dispose()
    return keys


def score_clusters(pred: dict[str, str], world: Path, lost: set[str] | None = None) -> dict[str, float]:
    """``pred`` (record key -> cluster) against the ground truth: hub.sandbox.score_against_truth, with the
    quarantined records counted as lost."""
    from hub.sandbox import score_against_truth

    return score_against_truth(pred, world, lost or ())


def cluster_quality(url: str, world: Path) -> dict[str, float]:
    """The pipeline's clusters (open xref rows) against the sandbox's ground truth."""
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.connect() as conn:
        pred = {rk: gid for rk, gid in conn.execute(sa.text(
            "SELECT record_key, golden_id FROM xref WHERE valid_to IS NULL"))}
    eng.dispose()
    return score_clusters(pred, world, quarantined_customers(url))


def cli_quality(url: str, world: Path) -> dict[str, float]:
    """`hub dedupe`'s engine (deduplicate, default workers) on the staged customers the pipeline matched."""
    import sqlalchemy as sa

    from hub.dedupe import deduplicate
    from hub.golden.matching import engine_frame
    from hub.store import Store, staged_record

    # the same engine input the golden stage builds from staging's output (engine_frame), all of it at once
    store = Store(url)
    with store.engine.connect() as conn:
        frame = engine_frame(conn.execute(
            sa.select(staged_record.c.record_key, staged_record.c.record)
            .where(staged_record.c.entity == "customers")
        ))
    store.dispose()
    t = time.perf_counter()
    res = deduplicate(frame)
    wall = time.perf_counter() - t
    pred = dict(zip(res.clusters["record_id"], res.clusters["cluster_id"], strict=True))
    return {"wall_s": wall, **score_clusters(pred, world, quarantined_customers(url))}


def _fresh_pg() -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"bench_sync_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, name


def _drop_pg(name: str) -> None:
    import sqlalchemy as sa

    eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def run_backend(backend: str, base_world: Path, work: Path, rate: float, change: float, cli: bool,
                deadline: float | None = None, publish: Any = None) -> dict:
    """Full then incremental sync of ``backend`` on a copy of the world. ``deadline`` (time.time()): a sync
    still running then is stopped and its per-stage figures so far are kept (the incremental run is then
    left out); ``publish(doc)`` is called whenever new figures are in ``doc`` (partial ones every 30 s)."""
    publish = publish or (lambda doc: None)
    home = work / backend
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    world = home / "world"
    t = time.perf_counter()
    shutil.copytree(base_world, world)
    # the world names its ERP by URL: a copy must use its own ERP file, or pushes and the 1 % change would
    # write into the base world the next backend starts from
    meta_path = world / "world.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    # (any SQLite ERP when the world holds its own erp.sqlite: a workdir copied elsewhere still names the old path)
    if meta.get("erp_url", "").startswith("sqlite:") and (
            meta["erp_url"].endswith(str((base_world / "erp.sqlite").resolve())) or (world / "erp.sqlite").exists()):
        meta["erp_url"] = f"sqlite:///{(world / 'erp.sqlite').resolve()}"
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
    copy_s = time.perf_counter() - t
    pg_name = None
    if backend == "postgres":
        url, pg_name = _fresh_pg()
    else:
        url = f"sqlite:///{home / 'hub.db'}"
    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {**os.environ, "HUB_DATABASE_URL": url, "DAGSTER_HOME": str(home / "dagster"),
           "HUB_CONFIG": str(_config(home / "hub.yaml", rate, home / "reports" / "data_quality.html"))}
    doc: dict[str, Any] = {"backend": backend, "url": url.split("@")[-1], "world_copy_s": copy_s, "runs": []}
    if pg_name:
        doc["pg_database"] = pg_name
    for label in ("full", "incremental"):
        if label == "incremental":
            code, wall, cpu, rss = _timed([sys.executable, "-m", "hub.sandbox", "mutate", str(world),
                                           "--fraction", str(change)], cwd=ROOT, stdout=subprocess.DEVNULL)
            doc["mutate"] = {"exit": code, "wall_s": wall, "cpu_s": cpu, "peak_mb": rss}
        with Sandbox(world) as sb:
            out = home / f"{label}.json"
            out.unlink(missing_ok=True)
            load_before = _load()
            base = {"label": label, "load_before": load_before, "sandbox_start_s": sb.start_s,
                    "sandbox_rss_mb": sb.rss_mb()}
            loads: list[float] = []

            def tick(sb: Sandbox = sb, out: Path = out, base: dict = base, loads: list = loads) -> None:
                loads.append(os.getloadavg()[0])
                base["sandbox_rss_mb"] = max(base["sandbox_rss_mb"], sb.rss_mb())
                if out.exists():
                    try:
                        run = {**json.loads(out.read_text(encoding="utf-8")), **base, "exit": None,
                               "load_after": _load(), "load_1min_median": sorted(loads)[len(loads) // 2]}
                    except ValueError:
                        return
                    publish({**doc, "runs": [*doc["runs"], run]})

            code, wall, cpu, rss = _timed([sys.executable, __file__, "_sync", str(out)],
                                          env={**env, **sb.env}, cwd=home, deadline=deadline, tick=tick)
            load_after = _load()
            timed_out = deadline is not None and time.time() >= deadline
            sb.save = not timed_out
        run = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"steps": []}
        run.update({**base, "exit": code, "process_wall_s": wall, "process_cpu_s": cpu, "process_maxrss_mb": rss,
                    "load_after": load_after, "timed_out": timed_out})
        if loads:
            run["load_1min_median"] = sorted(loads)[len(loads) // 2]
        doc["runs"].append(run)
        publish(doc)
        run["table_bytes"] = table_sizes(url)
        try:
            run["quality"] = cluster_quality(url, world)
        except Exception as exc:  # a run stopped before golden_customers has no clusters to score
            run["quality"] = {"error": type(exc).__name__}
        if cli and label == "full" and not timed_out and "error" not in run["quality"]:
            # on the staged records the full sync just matched (the change below restages some)
            doc["cli"] = cli_quality(url, world)
        publish(doc)
        print(f"[{backend}] {label}: exit {code}, {wall:.0f} s wall, {cpu:.0f} s CPU, "
              f"peak {run.get('peak_mb', 0):,.0f} MB, load {load_before} -> {load_after}"
              f"{' (stopped at the time limit)' if timed_out else ''}", file=sys.stderr, flush=True)
        if timed_out:
            break
    return doc


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def markdown(meta: dict, docs: list[dict]) -> str:
    lines = [f"## End-to-end sync: {meta['people']:,} people — {meta['records']}", "",
             f"World generated in {meta['gen_wall_s']:.0f} s ({meta['gen_cpu_s']:.0f} s CPU, peak "
             f"{meta['gen_peak_mb']:,.0f} MB); web shop and WeChat clients at {meta['rate']:g} requests/s "
             f"(hub.yaml requests_per_second); change between the runs: {meta['change']:.0%} of every system's "
             f"customers; load average (1/5/15 min) before the bench {meta['load_start']}."
             + (f" Time limit per sync: stopped at {meta['stop_at']}." if meta.get("stop_at") else ""), ""]
    for doc in docs:
        full = next((r for r in doc["runs"] if r["label"] == "full"), None)
        for run in doc["runs"]:
            state = ("RUNNING (figures so far)" if run.get("exit") is None
                     else "STOPPED at the time limit" if run.get("timed_out") else f"exit {run['exit']}")
            lines += [f"### {doc['backend']}: {run['label']} sync — {state}, "
                      f"**{run.get('wall_s', run.get('process_wall_s', 0)):.0f} s** wall, "
                      f"{run.get('cpu_s', 0):.0f} s CPU, peak memory of the hub's process tree (sum of PSS) "
                      f"**{run.get('peak_mb', 0):,.0f} MB** (main process high-water {run.get('main_hwm_mb', 0):,.0f} "
                      f"MB); load {run['load_before']} → {run.get('load_after', '')}"
                      + (f", 1-min load median during the run {run['load_1min_median']:.1f}"
                         if run.get("load_1min_median") is not None else "")
                      + f"; the sandbox (its own process, not counted above) started in "
                      f"{run.get('sandbox_start_s', 0):.0f} s and held up to {run.get('sandbox_rss_mb', 0):,.0f} MB",
                      ""]
            if run["label"] == "incremental" and full and full.get("wall_s") and run.get("exit") is not None:
                lines += [f"Incremental / full wall time: **{run.get('wall_s', 0) / full['wall_s']:.1%}** "
                          "(target ≤ 10 %).", ""]
            lines += ["| stage | wall s | CPU s | peak MB | disk read MB | records | records/s |",
                      "|---|---|---|---|---|---|---|"]
            for s in run["steps"]:
                n = s.get("records")
                rps = f"{n / s['wall_s']:,.0f}" if n and s.get("wall_s") else ""
                lines.append(f"| {s['step']}{'' if s.get('status') == 'success' else ' (' + str(s.get('status')) + ')'}"
                             f" | {s.get('wall_s', 0):.1f} | {s.get('cpu_s', 0):.1f} | {s.get('peak_mb', 0):,.0f} | "
                             f"{s.get('read_mb', 0):,.0f} | {'' if n is None else f'{n:,}'} | {rps} |")
            shared = [(s["step"], s["assets"]) for s in run["steps"] if len(s.get("assets", {})) > 1]
            if shared:  # the sources and targets of one step run side by side: each one's own seconds
                lines += ["", "Side by side in one step (each asset's own seconds): " + "; ".join(
                    f"{step}: " + ", ".join(f"{a} {v:.1f}" for a, v in sorted(parts.items()))
                    for step, parts in shared) + "."]
            mg = sum(s.get("wall_s", 0) for s in run["steps"] if s["step"] in ("match_pairs", "golden_customers"))
            q = run.get("quality")
            if q and "error" not in q:
                lines += ["", f"Matching + golden: **{mg:.0f} s** (target ≤ 300 s). Cluster quality against the "
                          f"sandbox's ground truth: pairwise F1 **{q.get('pairwise_f1', 0):.4f}** ({q.get('records', 0):,} "
                          f"customer records with a person: {q.get('guest_records', 0):,} shop guest checkouts, "
                          f"{q.get('quarantined_records', 0):,} quarantined ones counted as unlinked).", ""]
                rows = [("pipeline (open xref rows)", q)]
                if run["label"] == "full" and doc.get("cli"):
                    rows.append(("`hub dedupe` (deduplicate) on the same staged customers", doc["cli"]))
                lines += quality_table(rows) + [""]
            else:
                lines += [""]
            if run.get("table_bytes"):
                sizes = sorted(run["table_bytes"].items(), key=lambda kv: -kv[1])
                lines += [f"Store on disk: **{_mb(sum(run['table_bytes'].values()))} MB** — " + ", ".join(
                    f"{t} {_mb(b)}" for t, b in sizes if b >= 1e5) + " (MB, indexes included).", ""]
        if doc.get("cli"):
            lines += [f"`hub dedupe`'s engine on the full sync's staged customers took {doc['cli']['wall_s']:.0f} s.",
                      ""]
    return "\n".join(lines)


def quality_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Pairwise P/R/F1 and exact-cluster F1 on every customer record with a true person (the quarantined ones
    as clusters of their own), then on the identifiable ones (followers holding nothing of their person left
    out)."""
    out = ["| clusters | records | pairwise P | R | F1 | cluster F1 | identifiable records | P | R | F1 | cluster F1 |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, q in rows:
        out.append(f"| {name} | {q['records']:,} | {q['pairwise_precision']:.4f} | {q['pairwise_recall']:.4f} | "
                   f"**{q['pairwise_f1']:.4f}** | {q['cluster_f1']:.4f} | {q['identifiable_records']:,} | "
                   f"{q['identifiable_pairwise_precision']:.4f} | {q['identifiable_pairwise_recall']:.4f} | "
                   f"**{q['identifiable_pairwise_f1']:.4f}** | {q['identifiable_cluster_f1']:.4f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sync"]:
        return child_sync(Path(argv[1]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--rate", type=float, default=20.0, help="web shop and WeChat client requests/s")
    ap.add_argument("--change", type=float, default=0.01)
    ap.add_argument("--workdir", type=Path, default=None, help="kept between runs: the world is generated once")
    ap.add_argument("--no-cli", action="store_true", help="skip hub dedupe on the same records")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sync.md")
    ap.add_argument("--stop-at", default=None, metavar="HH:MM",
                    help="UTC clock time: a sync still running then is stopped; its per-stage figures so far are "
                         "reported and nothing runs after it")
    args = ap.parse_args(argv)
    deadline = None
    if args.stop_at:
        import datetime as dt

        now = dt.datetime.now(dt.UTC)
        hh, mm = (int(x) for x in args.stop_at.split(":"))
        stop = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
        deadline = (stop if stop > now else stop + dt.timedelta(days=1)).timestamp()

    work = args.workdir or Path(f"/tmp/bench_sync_{args.people}")
    work.mkdir(parents=True, exist_ok=True)
    # one bench per workdir: a second one would run its syncs beside the first (both figures wrong) and share its
    # world copies; held until this process ends
    lock = (work / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another bench_sync is running in {work}: wait for it, or give --workdir another directory",
              file=sys.stderr)
        return 2
    base = work / "world"
    load_start = _load()
    if not (base / "world.json").exists():
        code, gen_wall, gen_cpu, gen_rss = _timed([sys.executable, "-m", "hub.sandbox", "create", str(base),
                                                   "--customers", str(args.people)], cwd=ROOT,
                                                  stdout=subprocess.DEVNULL)
        if code:
            return code
        (work / "gen.json").write_text(json.dumps([gen_wall, gen_cpu, gen_rss]), encoding="utf-8")
    gen_wall, gen_cpu, gen_rss = json.loads((work / "gen.json").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    with (base / "ground_truth.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            counts[row["entity"]] = counts.get(row["entity"], 0) + 1
    customers = counts.get("party", 0) + counts.get("customer", 0) + counts.get("follower", 0)
    others = counts.get("sale", 0) + counts.get("order", 0) + counts.get("shipment", 0) + counts.get("call", 0)
    meta = {"people": args.people, "rate": args.rate, "change": args.change, "load_start": load_start,
            "gen_wall_s": gen_wall, "gen_cpu_s": gen_cpu, "gen_peak_mb": gen_rss, "stop_at": args.stop_at,
            "records": f"{customers:,} customer records, {others:,} orders, shipments and calls"}
    docs: list[dict] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def publish(current: list[dict]) -> None:
        args.out.write_text(markdown(meta, current) + "\n", encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "backends": current}, indent=1),
                                                  encoding="utf-8")

    for backend in [b for b in args.backends.split(",") if b]:
        if deadline is not None and time.time() >= deadline:
            break
        doc = run_backend(backend, base, work, args.rate, args.change, cli=not args.no_cli, deadline=deadline,
                          publish=lambda d: publish([*docs, d]))
        docs.append(doc)
        publish(docs)
        if doc.get("pg_database"):
            _drop_pg(doc["pg_database"])
    print(markdown(meta, docs))
    return 0 if all(r["exit"] == 0 for d in docs for r in d["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
