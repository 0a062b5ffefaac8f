"""`hub demo` and `hub ui`: the whole pipeline against the built-in sandbox sources on the embedded store.

The sandbox world (people, ERP database, web shop, social account, CDR folder) persists under
``.hub/sandbox``, the store under ``.hub/hub.db`` and Dagster's instance under ``.hub/dagster``; a second
``hub demo`` is therefore an incremental sync of unchanged sources, and ``make ui`` shows the runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HUB_HOME = Path(".hub")


def sandbox_env(ep: Any) -> dict[str, str]:
    """Environment variables that point the packaged hub.yaml's sources at the running sandbox."""
    return {
        "HUB_ERP_URL": ep.erp_url,
        "HUB_WEBSHOP_URL": ep.webshop_url,
        "HUB_WEBSHOP_KEY": ep.webshop_key,
        "HUB_WEBSHOP_SECRET": ep.webshop_secret,
        "HUB_WECHAT_URL": ep.wechat_url,
        "HUB_WECHAT_APPID": ep.wechat_appid,
        "HUB_WECHAT_SECRET": ep.wechat_secret,
        "HUB_CDR_DIR": str(ep.cdr_dir),
    }


def prepare_dagster_home(home: Path = HUB_HOME, dagster_home: Path | None = None) -> Path:
    """Create Dagster's instance folder (``dagster_home``, default ``home/dagster``) with the hub's instance
    config if missing, and point ``DAGSTER_HOME`` at it."""
    dagster_home = (dagster_home or home / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    cfg = dagster_home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dagster_home


def reset(home: Path = HUB_HOME) -> None:
    for name in ("sandbox", "dagster", "reports"):
        shutil.rmtree(home / name, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        (home / f"hub.db{suffix}").unlink(missing_ok=True)


@contextmanager
def running_sandbox(customers: int, home: Path = HUB_HOME, seed: int = 42) -> Iterator[Any]:
    from hub.sandbox import SandboxWorld

    world = SandboxWorld.create_or_load(home / "sandbox", customers=customers, seed=seed)
    with world.serve() as ep:
        env = sandbox_env(ep)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield ep
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _materializations(result: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def summarise(result: Any, store_url: str | None = None, title: str = "hub demo") -> str:
    """The end summary of a sync (``hub sync`` / ``hub demo``): counts per stage, never a record's content."""
    from hub.store import Store, golden_customer, golden_id_history, quarantine

    mats = _materializations(result)
    lines = [f"{title} — run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}", ""]
    lines.append("Pulled (new / changed / unchanged):")
    for key, meta in sorted(mats.items()):
        if key.startswith("raw_"):
            lines.append(
                f"  {key[4:]:<12} {meta.get('new', 0):>7} / {meta.get('changed', 0):>5} / "
                f"{meta.get('unchanged', 0):>7}"
            )
    store = Store(store_url)
    with store.engine.connect() as conn:
        reasons: Counter[str] = Counter()
        held = 0
        for (codes,) in conn.execute(sa.select(quarantine.c.reasons)):
            held += 1
            reasons.update(codes or [])
        active = conn.execute(
            sa.select(sa.func.count()).select_from(golden_customer).where(golden_customer.c.status == "active")
        ).scalar_one()
        merges = conn.execute(
            sa.select(sa.func.count()).select_from(golden_id_history).where(golden_id_history.c.event == "merged")
        ).scalar_one()
    store.dispose()
    staged = mats.get("staged_records", {})
    lines.append("")
    lines.append(
        f"Staged: {staged.get('staged', staged.get('dagster/row_count', 0))} this run; "
        f"quarantined in store: {held}"
        + (f" (top reasons: {', '.join(f'{r} ×{n}' for r, n in reasons.most_common(3))})" if reasons else "")
    )
    suppressed = staged.get("suppressed", 0) + sum(m.get("suppressed", 0) for k, m in mats.items()
                                                   if k.startswith("raw_"))
    deleted = sum(m.get("deleted_at_source", 0) + m.get("deactivated_at_source", 0) for k, m in mats.items()
                  if k.startswith("raw_"))
    lines.append(f"Privacy: {deleted} records deleted or deactivated at their sources this run "
                 f"(retired: {staged.get('retired', 0)}); {suppressed} records of erased people suppressed")
    golden_meta = mats.get("golden_customers", {})
    lines.append(
        f"Golden customers: {active} active; merges this run: {golden_meta.get('merged', 0)}; "
        f"merges ever: {merges}"
    )
    from hub.quality.summary import brake_lines, explain_golden

    explained_store = Store(store_url)
    lines.extend(f"  {line}" for line in explain_golden(explained_store))
    stopped = brake_lines(explained_store)
    explained_store.dispose()
    lines.append("Pushed (sent: ok / rejected / error):")
    for key, meta in sorted(mats.items()):
        if key.startswith("push_") and key != "push_outbox" and meta.get("dry_run"):
            lines.append(f"  {key[5:]:<12} {0:>6}: dry run — would create {meta.get('would_create', 0)}, "
                         f"update {meta.get('would_update', 0)}, remove {meta.get('would_remove', 0)}")
        elif key.startswith("push_") and key != "push_outbox":
            lines.append(
                f"  {key[5:]:<12} {meta.get('sent', 0):>6}: {meta.get('ok', 0)} / {meta.get('rejected', 0)} / "
                f"{meta.get('error', 0)}"
            )
    report = mats.get("data_quality_report", {}).get("report")
    if report is None:  # a blocking check stopped the run: the report was written when it stopped
        from hub.config import load_config

        report = Path(load_config().report.path).resolve()
    lines.append(f"Data-quality report: {report}")
    lines.extend(stopped)
    failed = [
        e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ]
    if failed:
        lines.append(f"FAILED steps: {', '.join(failed)}")
    return "\n".join(lines)


def demo(customers: int = 2000, reset_first: bool = False) -> int:
    """Start the sandbox world, then run exactly what `hub sync` runs against it (packaged hub.yaml)."""
    from hub.sync import sync

    if reset_first:
        reset()
    HUB_HOME.mkdir(exist_ok=True)
    prepare_dagster_home()  # the demo's own instance, whatever DAGSTER_HOME says
    with running_sandbox(customers) as _ep:
        return sync(trigger="hub demo")


def _dismiss_welcome_dialog(port: int, proc: subprocess.Popen) -> None:
    """The UI's one-time "join the community" dialog covers the graph; mark it seen once the UI answers."""
    import requests

    for _ in range(120):
        if proc.poll() is not None:
            return
        try:
            requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=5)
            return
        except requests.RequestException:
            time.sleep(2)


def uses_sandbox(config_file: Path, config: Any) -> bool:
    """Is hub.yaml the demo world? The packaged default is; so is a file whose sources read only the sandbox's
    variables while none of them is set. A hub.yaml naming real systems is not: the sandbox must not answer
    in their place."""
    from hub.config import PACKAGED_DEFAULT

    if config_file.resolve() == PACKAGED_DEFAULT.resolve():
        return True
    sandbox_vars = {"HUB_ERP_URL", "HUB_WEBSHOP_URL", "HUB_WEBSHOP_KEY", "HUB_WEBSHOP_SECRET", "HUB_WECHAT_URL",
                    "HUB_WECHAT_APPID", "HUB_WECHAT_SECRET", "HUB_CDR_DIR"}
    named = {v for s in config.enabled_sources.values() for k, v in s if k.endswith("_env") and v}
    return bool(named) and named <= sandbox_vars and not any(os.environ.get(v) for v in named)


def ui(customers: int = 2000, port: int = 3000, sandbox: bool | None = None) -> int:
    """`dagster dev` on 127.0.0.1 against the instance `hub sync` / `hub demo` write; the sandbox runs beside
    it when asked (``sandbox``) or, by default, when hub.yaml is the demo world."""
    from contextlib import nullcontext

    from hub.config import config_path, load_config

    if sandbox is None:
        sandbox = uses_sandbox(config_path(), load_config())
    if sandbox:
        prepare_dagster_home()
    else:  # real systems: the instance `hub sync` uses
        from hub.sync import dagster_home

        dagster_home()
    with running_sandbox(customers) if sandbox else nullcontext():
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "hub.definitions",
               "-h", "127.0.0.1", "-p", str(port)]

        def _reset_signals() -> None:  # `dagster dev` ignores SIGTERM when started with inherited SIG_IGN
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setsid()

        proc = subprocess.Popen(cmd, preexec_fn=_reset_signals)  # noqa: PLW1509 - needed, see dagster.md
        print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops it and the sandbox)")
        threading.Thread(target=_dismiss_welcome_dialog, args=(port, proc), daemon=True).start()

        def _on_term(_signum: int, _frame: Any) -> None:  # `kill` stops the UI like Ctrl-C does
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _on_term)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            return 0
