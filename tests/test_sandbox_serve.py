"""`python -m hub.sandbox serve DIR` prints variables another shell can export as they are."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def test_serve_prints_paths_usable_from_any_folder(tmp_path: Path) -> None:
    # a relative world folder: the printed CDR folder must still be found from another working directory
    proc = subprocess.Popen([sys.executable, "-m", "hub.sandbox", "serve", "world", "--customers", "50"],
                            cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    env: dict[str, str] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("HUB_"):
                key, _, value = line.strip().partition("=")
                env[key] = value
            if "HUB_CDR_DIR" in env:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    cdr = Path(env["HUB_CDR_DIR"])
    assert cdr.is_absolute() and cdr.is_dir(), env["HUB_CDR_DIR"]
    assert env["HUB_ERP_URL"].startswith("sqlite:////"), "the ERP database path is absolute too"
