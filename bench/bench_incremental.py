"""The sync's fixed-cost stages on one store: CPU time and a hash of what each produces, old code against new.

    python bench/bench_incremental.py prepare DIR [--people 20000] [--change 0.01]
    python bench/bench_incremental.py measure DIR [--repeat 3] [--stages dims,plan,report] [--profile]

``prepare`` generates a sandbox world (or reuses DIR/world), then runs the hub's ``full_sync`` job in process —
the full sync, then ``hub.sandbox mutate`` (a 1 % change) and the incremental sync — on a SQLite store in DIR.
Right before each of the three stages measured here runs in those syncs, the store is copied (SQLite backup)
to ``DIR/snap/<full|incremental>/<stage>.db`` with the stage's arguments (``<stage>.args``, pickled). Mind the
disk: six copies of the store (at 50k people DIR held 13-15 GB):

| stage | function | in the sync |
|---|---|---|
| dims | ``hub.quality.score_dimensions`` | the ``quality_dimensions`` asset check |
| plan | ``hub.push_plan.plan_pushes`` | the ``push_outbox`` asset |
| report | ``hub.report.write_report`` | the ``data_quality_report`` asset |

``measure`` runs each stage ``--repeat`` times, each on a fresh copy of its snapshot, with the clock frozen at
the snapshot's time (every ``datetime.now`` of the hub's modules), and prints per stage the median CPU seconds
(``time.process_time``: this process, SQLite included) and a sha256 of its output. ``--cold`` (root only): the
page cache is dropped right before the stage runs (after a first run on another copy has imported and warmed
everything it uses), and the median wall seconds and megabytes this process read from disk (``read_bytes``
of /proc/self/io, forked workers it waited for included: ``proc_figures.read_mb``) are printed too: what the
stage reads when the store is larger than memory (at a million people the store was 30 GB beside a 12.6 GB
sandbox on a 24 GB machine), and whether an incremental run reads in proportion to the change. The outputs
hashed:

* dims: the returned dimensions (canonical JSON);
* plan: the outbox and push state afterwards (every column but ids and times) and the returned counts;
* report: the JSON twin and the HTML page as written, then (after a slash) the same without the privacy
  section's row counts of the tables ``customer_360_summary`` and ``customer_360_phone`` (personal data the
  incremental report keeps per golden customer: newer code counts them there, older code has no such tables).

Whatever ``hub`` is imported is measured: run it with ``PYTHONPATH=<a checkout of the old code>`` to measure
that code on the same snapshots (a store migrated by newer code is opened without migrating). ``--profile``
writes a cProfile per stage (DIR/prof/<snapshot>_<stage>.prof) from one more run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime as _real_datetime
from pathlib import Path
from typing import Any

from proc_figures import read_mb

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("dims", "plan", "report")
NEW_TABLES = ("customer_360_summary", "customer_360_phone")


# ------------------------------------------------------------------------------------------------ prepare
def _backup(src_url: str, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    src = sqlite3.connect(src_url.removeprefix("sqlite:///"))
    out = sqlite3.connect(dst)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()


def child_sync(snap: Path) -> int:
    """The full_sync job in this process, the store copied before each measured stage."""
    import hub.push_plan
    import hub.quality
    import hub.report
    from hub.config import load_config
    from hub.definitions import defs
    from hub.sync import JOB, plan_sync, run_job

    url = os.environ["HUB_DATABASE_URL"]

    def hooked(module: Any, name: str, stage: str) -> None:
        original = getattr(module, name)

        def run(store: Any, *args: Any, **kwargs: Any) -> Any:
            if not (snap / f"{stage}.db").exists():  # the first call in the run (the report scores again)
                _backup(url, snap / f"{stage}.db")
                (snap / f"{stage}.args").write_bytes(pickle.dumps((args, kwargs, _real_datetime.now())))
            return original(store, *args, **kwargs)

        setattr(module, name, run)

    hooked(hub.quality, "score_dimensions", "dims")
    hooked(hub.push_plan, "plan_pushes", "plan")
    hooked(hub.report, "write_report", "report")
    result = run_job(plan_sync(load_config(), job=defs.resolve_job_def(JOB)), trigger="bench", progress=sys.stderr)
    return 0 if result.success else 1


def prepare(work: Path, people: int, change: float, rate: float, only: str | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_sync import Sandbox, _config

    world = work / "world"
    if not (world / "world.json").exists():
        subprocess.run([sys.executable, "-m", "hub.sandbox", "create", str(world), "--customers", str(people)],
                       cwd=ROOT, check=True)
    (work / "dagster").mkdir(parents=True, exist_ok=True)
    (work / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    url = f"sqlite:///{work / 'hub.db'}"
    env = {**os.environ, "HUB_DATABASE_URL": url, "DAGSTER_HOME": str(work / "dagster"),
           "HUB_CONFIG": str(_config(work / "hub.yaml", rate, work / "reports" / "data_quality.html"))}
    for label in ("full", "incremental") if only is None else (only,):
        if label == "incremental" and only is None:  # --only incremental: the world was changed already
            subprocess.run([sys.executable, "-m", "hub.sandbox", "mutate", str(world), "--fraction", str(change)],
                           cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(work / "snap" / label, ignore_errors=True)
        with Sandbox(world) as sb:
            t = time.perf_counter()
            code = subprocess.run([sys.executable, __file__, "_sync", str(work / "snap" / label)],
                                  env={**env, **sb.env}, cwd=work).returncode
            print(f"{label} sync: exit {code}, {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        if code:
            return code
    return 0


# ------------------------------------------------------------------------------------------------ measure
class _FrozenMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:  # a datetime from the database is still a datetime
        return isinstance(obj, _real_datetime)


def _frozen_datetime(at: _real_datetime) -> type:
    class Frozen(_real_datetime, metaclass=_FrozenMeta):
        @classmethod
        def now(cls, tz: Any = None) -> _real_datetime:
            return at if tz is None else at.replace(tzinfo=tz)

        @classmethod
        def utcnow(cls) -> _real_datetime:
            return at

    return Frozen


def _freeze(at: _real_datetime) -> None:
    frozen = _frozen_datetime(at)
    for name, mod in list(sys.modules.items()):
        if (name == "hub" or name.startswith("hub.")) and getattr(mod, "datetime", None) is _real_datetime:
            mod.datetime = frozen


def _sha(data: Any) -> str:
    text = data if isinstance(data, bytes) else json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(text).hexdigest()


def _outbox_rows(url: str) -> list[Any]:
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        outbox = con.execute(
            "SELECT target, entity, target_id, golden_id, payload_hash, status, attempts, cause FROM push_outbox "
            "ORDER BY target, entity, target_id, golden_id, payload_hash, status").fetchall()
        state = con.execute("SELECT * FROM push_state").fetchall()
        cols = [d[0] for d in con.execute("SELECT * FROM push_state LIMIT 0").description]
    finally:
        con.close()
    keep = [i for i, c in enumerate(cols) if not c.endswith("_at") and c != "id"]
    return [outbox, sorted(tuple(r[i] for i in keep) for r in state)]


def _open_store(url: str) -> Any:
    from hub.store import Store

    try:
        return Store(url)
    except Exception:  # a snapshot of newer code's store: its schema is read as it is
        return Store(url, migrate=False)


def run_stage(stage: str, db: Path, tmp: Path, profile: Path | None = None, cold: bool = False
              ) -> tuple[float, str, str]:
    """One run of ``stage`` on a copy of ``db``: (CPU s, output sha256, with ``cold`` "wall s/MB read")."""
    args, kwargs, at = pickle.loads(db.with_suffix(".args").read_bytes())
    work = tmp / f"{stage}.db"
    url = f"sqlite:///{work}"
    import hub.push_plan
    import hub.quality
    import hub.report

    _freeze(at)
    if stage == "report":
        out = tmp / "report" / "data_quality.html"
        shutil.rmtree(out.parent, ignore_errors=True)
        args = (out, *args[1:])
    fn = {"dims": hub.quality.score_dimensions, "plan": hub.push_plan.plan_pushes,
          "report": hub.report.write_report}[stage]
    if stage == "dims":
        kwargs = {**kwargs, "now": at}  # timeliness: the age of the data at the snapshot's time
    if cold:  # a first run on another copy: what the stage imports or loads once is not read from disk below
        warm = tmp / "warm" / f"{stage}.db"
        warm.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(db, warm)
        ws = _open_store(f"sqlite:///{warm}")
        fn(ws, *(((tmp / "warm" / "report.html"), *args[1:]) if stage == "report" else args), **kwargs)
        ws.dispose()
        shutil.rmtree(warm.parent)
    shutil.copyfile(db, work)
    store = _open_store(url)
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    if cold:
        subprocess.run(["sh", "-c", "sync && echo 3 > /proc/sys/vm/drop_caches"], check=True)
    read0, wall0 = read_mb(os.getpid()), time.perf_counter()
    t = time.process_time()
    result = fn(store, *args, **kwargs)
    cpu = time.process_time() - t
    io = f"{time.perf_counter() - wall0:.3f}/{read_mb(os.getpid()) - read0:.1f}" if cold else ""
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    store.dispose()
    if stage == "dims":
        digest = _sha(result)
    elif stage == "plan":
        counts = {name: {k: v for k, v in vars(p).items()} for name, p in result.targets.items()}
        digest = _sha([_outbox_rows(url), counts, result.queued, result.drift])
    else:
        page, twin = out.read_text(encoding="utf-8"), json.loads(out.with_suffix(".json").read_bytes())
        digest = _sha([_sha(out.with_suffix(".json").read_bytes()), _sha(page.encode())])
        # the same without the privacy section's rows of the two tables this change adds (customer_360_summary,
        # customer_360_phone: personal data, so counted there): what old and new code must agree on
        for table in NEW_TABLES:
            (twin.get("privacy") or {}).get("rows", {}).pop(table, None)
            page = re.sub(rf"<tr><td>{table}</td><td class=\"num\">[\d,]+</td></tr>", "", page)
        digest += "/" + _sha([_sha(twin), _sha(page.encode())])
    return cpu, digest, io


def measure(work: Path, repeat: int, stages: list[str], profile: bool, cold: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"hub": str(Path(__import__("hub").__file__).parent), "runs": {}}
    tmp = work / "tmp"
    for label in ("full", "incremental"):
        for stage in stages:
            db = work / "snap" / label / f"{stage}.db"
            if not db.exists():
                continue
            cpus, digests, walls, reads = [], set(), [], []
            for _ in range(repeat):
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                cpu, digest, io = _isolated(stage, db, tmp, cold=cold)
                cpus.append(cpu)
                digests.add(digest)
                if io:
                    walls.append(float(io.split("/")[0]))
                    reads.append(float(io.split("/")[1]))
            if profile:
                (work / "prof").mkdir(exist_ok=True)
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                _isolated(stage, db, tmp, work / "prof" / f"{label}_{stage}.prof")
            run = out["runs"][f"{label}/{stage}"] = {"cpu_s_median": round(statistics.median(cpus), 3),
                                                     "cpu_s": [round(c, 3) for c in cpus],
                                                     "sha256": sorted(digests)}
            cold_text = ""
            if walls:
                run.update(cold_wall_s_median=round(statistics.median(walls), 3),
                           cold_read_mb_median=round(statistics.median(reads), 1))
                cold_text = (f"  cold: wall {statistics.median(walls):7.3f} s, read {statistics.median(reads):7.1f} "
                             "MB")
            print(f"{label:12} {stage:7} CPU {statistics.median(cpus):7.3f} s (median of {repeat}: "
                  f"{', '.join(f'{c:.2f}' for c in cpus)}){cold_text}  "
                  f"{' | '.join('/'.join(p[:16] for p in d.split('/')) for d in sorted(digests))}", flush=True)
    return out


def _isolated(stage: str, db: Path, tmp: Path, profile: Path | None = None, cold: bool = False
              ) -> tuple[float, str, str]:
    """Each run in its own process: imports, caches and the frozen clock never carry over."""
    res = subprocess.run([sys.executable, __file__, "_stage", stage, str(db), str(tmp), str(profile or ""),
                          "cold" if cold else ""], capture_output=True, text=True, env=os.environ)
    if res.returncode:
        raise RuntimeError(f"{stage} on {db}: {res.stderr[-3000:]}")
    cpu, digest, *io = res.stdout.strip().splitlines()[-1].split()
    return float(cpu), digest, io[0] if io else ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_sync"]:
        return child_sync(Path(argv[1]))
    if argv[:1] == ["_stage"]:
        cpu, digest, io = run_stage(argv[1], Path(argv[2]), Path(argv[3]), Path(argv[4]) if argv[4] else None,
                                    cold=argv[5:6] == ["cold"])
        print(f"{cpu:.6f} {digest} {io}".rstrip())
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir", type=Path)
    p.add_argument("--people", type=int, default=20_000)
    p.add_argument("--change", type=float, default=0.01)
    p.add_argument("--rate", type=float, default=1000.0, help="web shop and WeChat client requests/s")
    p.add_argument("--only", choices=("full", "incremental"),
                   help="run that sync alone (incremental: again after a failed one, without a new change)")
    m = sub.add_parser("measure")
    m.add_argument("dir", type=Path)
    m.add_argument("--repeat", type=int, default=3)
    m.add_argument("--stages", default=",".join(STAGES))
    m.add_argument("--profile", action="store_true")
    m.add_argument("--json", type=Path, help="also write the figures here")
    m.add_argument("--cold", action="store_true",
                   help="drop the page cache before each run (root) and print wall s and MB read from disk")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        return prepare(args.dir.resolve(), args.people, args.change, args.rate, args.only)
    doc = measure(args.dir.resolve(), args.repeat, [s for s in args.stages.split(",") if s], args.profile,
                  args.cold)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
