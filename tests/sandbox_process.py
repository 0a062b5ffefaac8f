"""The sandbox as a user runs it: `python -m hub.sandbox serve DIR` in its own process, its printed variables read."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SANDBOX_VARIABLES = 8  # HUB_ERP_URL … HUB_CDR_DIR


@contextmanager
def served_sandbox(world: Path | str, customers: int = 200, cwd: Path | None = None) -> Iterator[dict[str, str]]:
    """Serve a sandbox world (created on first use) until the block ends; yields the HUB_* variables printed."""
    proc = subprocess.Popen([sys.executable, "-m", "hub.sandbox", "serve", str(world), "--customers", str(customers)],
                            cwd=cwd, stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("HUB_"):
                key, _, value = line.strip().partition("=")
                env[key] = value
            if "HUB_CDR_DIR" in env:
                break
        assert len(env) == SANDBOX_VARIABLES, env
        yield env
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


_TGKILL = {"x86_64": 234, "aarch64": 131}  # the syscall's number; Python has no tgkill


def signal_another_thread(pid: int, sig: int) -> None:
    """Send ``sig`` to a thread of ``pid`` other than its main one: what the kernel may do with a process-directed
    signal (a `kill`) whenever the main thread is not the one it picks. Linux only."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        if tid != pid and libc.syscall(_TGKILL[os.uname().machine], pid, tid, sig) == 0:
            return
    raise AssertionError(f"process {pid} has no other thread to signal")
