"""`python -m hub.sandbox serve DIR` prints variables another shell can export as they are."""

from __future__ import annotations

from pathlib import Path

from sandbox_process import served_sandbox, signal_another_thread


def test_serve_prints_paths_usable_from_any_folder(tmp_path: Path) -> None:
    # a relative world folder: the printed CDR folder must still be found from another working directory
    with served_sandbox("world", customers=50, cwd=tmp_path) as env:
        cdr = Path(env["HUB_CDR_DIR"])
        assert cdr.is_absolute() and cdr.is_dir(), env["HUB_CDR_DIR"]
        assert env["HUB_ERP_URL"].startswith("sqlite:////"), "the ERP database path is absolute too"


def test_sigterm_stops_serving_and_saves_the_state_every_time(tmp_path: Path) -> None:
    """SIGTERM ends `serve` as Ctrl-C does: the state is saved and the process exits at once. Its handler used to
    set an Event the main thread was waiting on; a signal arriving while that thread held the Event's lock hung
    the process for good (a bench's sandbox, unsaved); a signal the kernel handed to a server thread left the main
    thread asleep. Sent at once and after a while, to the process and to a server thread."""
    import signal
    import subprocess
    import sys
    import time

    for k in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "hub.sandbox", "serve", str(tmp_path / "world"),
                                 "--customers", "30"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("HUB_CDR_DIR"):
                break
        time.sleep(0.05 * (k % 3))
        if k < 3:
            proc.send_signal(signal.SIGTERM)
        else:  # the kernel may hand the process's signal to a server thread: it used to go unseen (CI hung here)
            signal_another_thread(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0 and "stopped; state saved" in out
