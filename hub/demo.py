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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.sync import HUB_HOME


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


def demo(customers: int = 2000, reset_first: bool = False) -> int:
    """Start the sandbox world, then run exactly what `hub sync` runs against it (packaged hub.yaml)."""
    from hub.sync import prepare_dagster_home, sync

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
    """Is hub.yaml the demo world? A file whose sources read only the sandbox's variables (the packaged default
    does) while none of them is set is. A hub.yaml naming real systems is not: the sandbox must not answer in
    their place; nor is the default once its variables are set (a sandbox served on its own, `python -m
    hub.sandbox serve DIR`, and its variables exported): a second sandbox would replace them."""
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
    from hub.sync import dagster_home, prepare_dagster_home

    if sandbox:
        prepare_dagster_home()
    else:  # real systems: the instance `hub sync` uses
        dagster_home()
    with running_sandbox(customers) if sandbox else nullcontext():
        cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "hub.definitions",
               "-h", "127.0.0.1", "-p", str(port)]

        def _reset_signals() -> None:  # `dagster dev` ignores SIGTERM when started with inherited SIG_IGN
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.setsid()

        proc = subprocess.Popen(cmd, preexec_fn=_reset_signals)  # noqa: PLW1509 - needed, see dagster.md
        print(f"Dagster UI: http://127.0.0.1:{port}  (Ctrl-C stops it and the sandbox)", flush=True)
        threading.Thread(target=_dismiss_welcome_dialog, args=(port, proc), daemon=True).start()

        def _on_term(_signum: int, _frame: Any) -> None:  # `kill` stops the UI like Ctrl-C does
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _on_term)
        try:
            while True:  # short waits: a SIGTERM the kernel hands to a sandbox server thread must wake this thread
                try:
                    return proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
        except KeyboardInterrupt:
            _stop_group(proc)
            return 0


def _stop_group(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to `dagster dev`'s process group, then SIGKILL to whatever is left of it after ``grace`` seconds:
    a code server that missed the SIGTERM (one starting up) otherwise lives on until its heartbeat times out
    (45 s, seen), and `dagster dev` may exit before its children do."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
