"""A sync with nothing to do against a real Tryton server: how long does it take?

    .venv/bin/python bench/bench_tryton_sync.py --parties 5000      # seeded db cached for reruns

A real trytond (tests/tryton_harness.py, SQLite backend) holding ``--parties`` parties, and a ``hub.yaml``
holding only a ``tryton`` source. The whole hub flow runs in its own process on a fresh store, the way a user
runs it: ``hub sync`` (on a checkout from before that command, the ``full_sync`` job in process as
``hub.demo.run_full_sync`` ran it — for before/after figures: ``PYTHONPATH=<old checkout>``):

0. one party is renamed first, as in any live ERP: the seeded parties are then older than the pull's overlap
   window (5 minutes before the last change), as they would be;
1. first sync: pulls every party, builds golden records, pushes golden ids back;
2. second sync: nothing changed in Tryton — the figure the issue asks for ("a run with nothing to do");
3. third sync after five parties were changed and three added;
4. fourth sync: nothing to do again.

Per run it reports wall time, the pull's new/changed/unchanged counts and the push's sent rows, and writes
bench/out/tryton_sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import tryton_harness as harness  # noqa: E402

HUB_YAML = """\
sources:
  tryton:
    kind: tryton
    url_env: HUB_TRYTON_URL
    database_env: HUB_TRYTON_DATABASE
    user_env: HUB_TRYTON_USER
    password_env: HUB_TRYTON_PASSWORD
push:
  targets: [tryton]
quality:
  brake:
    enabled: false
"""

# `hub sync`, or on an older checkout the full_sync job in process as hub.demo.run_full_sync ran it
_RUN_JOB = """
import sys
try:
    from hub.sync import sync
except ImportError:
    from hub.demo import prepare_dagster_home, run_full_sync
    prepare_dagster_home()
    sys.exit(0 if run_full_sync().success else 1)
sys.exit(sync())
"""


def sync_env(server: harness.TrytonServer, workdir: Path) -> dict[str, str]:
    return {**os.environ, "HUB_TRYTON_URL": server.url, "HUB_TRYTON_DATABASE": server.database,
            "HUB_TRYTON_USER": server.username, "HUB_TRYTON_PASSWORD": server.password,
            "HUB_CONFIG": str(workdir / "hub.yaml"), "HUB_DATABASE_URL": "",
            "DAGSTER_HOME": str(workdir / ".hub" / "dagster")}


def last_run_assets(workdir: Path) -> tuple[dict[str, dict], dict[str, float]]:
    """Asset -> metadata, and step -> seconds, of the newest run in the folder's Dagster instance."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(workdir / ".hub" / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        out = {}
        started: dict[str, float] = {}
        steps: dict[str, float] = {}
        for rec in instance.get_records_for_run(run.run_id).records:
            entry = rec.event_log_entry
            event = entry.dagster_event
            if event is None:
                continue
            if event.event_type_value == "STEP_START":
                started[event.step_key] = entry.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in started:
                steps[event.step_key] = round(entry.timestamp - started[event.step_key], 2)
            elif event.event_type_value == "ASSET_MATERIALIZATION":
                mat = event.event_specific_data.materialization
                out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        return out, steps


def run_sync(workdir: Path, env: dict[str, str]) -> dict:
    """One sync in its own process; returns wall seconds and, per asset, the run's metadata."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RUN_JOB], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=3600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sync failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    assets, steps = last_run_assets(workdir)
    return {"seconds": round(seconds, 2), "assets": assets, "steps": steps}


def figures(run: dict) -> dict:
    raw = run["assets"].get("raw_tryton", {})
    push = run["assets"].get("push_tryton", {})
    return {"seconds": run["seconds"], "pull_seconds": raw.get("seconds"), "new": raw.get("new"),
            "changed": raw.get("changed"), "unchanged": raw.get("unchanged"), "pushed": push.get("sent"),
            "push_seconds": push.get("seconds"),
            "slowest_steps": dict(sorted(run["steps"].items(), key=lambda kv: -kv[1])[:6])}


def change_parties(server: harness.TrytonServer, changed: int = 5, added: int = 3) -> None:
    rpc = server.rpc()
    ids = rpc.search("party.party", [["name", "like", "%#%"]], limit=changed + 1)[1:]
    for pid in ids:
        (name,) = [r["name"] for r in rpc.search_read("party.party", [["id", "=", pid]], ["name"])]
        rpc.write("party.party", [pid], {"name": name + " (renamed)"})
    harness.create_parties(rpc, added, start=900_000)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parties", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "tryton_sync.json")
    args = ap.parse_args(argv)
    try:
        import trytond  # noqa: F401
    except ImportError:
        print("trytond is not installed; nothing to benchmark", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-tryton-sync-"))
    try:
        with harness.bench_server(args.parties) as (server, _):
            total = len(server.rpc().search("party.party", []))
            (work / "hub.yaml").write_text(HUB_YAML, encoding="utf-8")
            env = sync_env(server, work)
            rpc = server.rpc()
            (pid,) = rpc.search("party.party", [["name", "like", "%#%"]], limit=1)
            rpc.write("party.party", [pid], {"name": f"Bench party {time.time():.0f}"})
            runs = {}
            runs["first"] = figures(run_sync(work, env))
            print("first sync:", runs["first"], flush=True)
            runs["nothing_to_do"] = figures(run_sync(work, env))
            print("sync with nothing to do:", runs["nothing_to_do"], flush=True)
            change_parties(server)
            runs["five_changed_three_added"] = figures(run_sync(work, env))
            print("5 changed + 3 added:", runs["five_changed_three_added"], flush=True)
            runs["nothing_to_do_again"] = figures(run_sync(work, env))
            print("nothing to do again:", runs["nothing_to_do_again"], flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"parties": total, **runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
