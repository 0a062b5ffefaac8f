"""Dagster's own instance for the hub: ``$DAGSTER_HOME/dagster.yaml`` (default ``.hub/dagster``).

What the hub's instance needs beyond Dagster's defaults:
  - one sync at a time: the run queue starts one run tagged ``hub/sync`` (full_sync, call_center_sync) at a
    time, so the UI, the schedule and the sensor queue behind each other instead of colliding (the store's own
    lock, hub/sync_lock.py, also covers runs started outside this instance);
  - run monitoring: a run whose process was killed is marked failed instead of staying STARTED for ever
    (needs the daemon, which ``hub ui`` / ``dagster dev`` run);
  - on request, runs, events and schedules in PostgreSQL (dagster-postgres) instead of SQLite files: set
    ``HUB_DAGSTER_POSTGRES_URL`` (e.g. ``postgresql+psycopg2://dagster:secret@db/dagster``). The file names
    the variable, never its value.

The file is rewritten whenever the hub starts Dagster, as long as its first line is the hub's marker; delete
that line to keep a hand-written ``dagster.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from hub.sync_lock import SYNC_RUN_TAG

POSTGRES_ENV = "HUB_DAGSTER_POSTGRES_URL"
MARKER = "# Written by the customer data hub (hub/instance.py); delete this line to keep your own settings."
# what `hub demo` wrote before the hub managed the file: safe to replace
_OLD_DEFAULT = "telemetry:\n  enabled: false\n"


def instance_settings(postgres: bool) -> dict:
    """The dagster.yaml settings of the hub's instance (``postgres``: storage through dagster-postgres)."""
    settings: dict = {
        "telemetry": {"enabled": False},
        "concurrency": {"runs": {"tag_concurrency_limits": [{"key": SYNC_RUN_TAG, "limit": 1}]}},
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 180,
            "cancel_timeout_seconds": 180,
            "max_resume_run_attempts": 0,  # the default run launcher cannot resume a run: fail it
            "poll_interval_seconds": 60,
        },
    }
    if postgres:
        settings["storage"] = {"postgres": {"postgres_url": {"env": POSTGRES_ENV}}}
    return settings


def instance_yaml(postgres: bool) -> str:
    return MARKER + "\n" + yaml.safe_dump(instance_settings(postgres), sort_keys=False)


def postgres_url() -> str | None:
    """``HUB_DAGSTER_POSTGRES_URL`` with an explicit driver: SQLAlchemy 2.1 reads a bare ``postgresql://``
    as psycopg 3, which the hub does not install (it ships psycopg2)."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        return None
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def prepare_dagster_home(home: Path = Path(".hub"), dagster_home: Path | None = None) -> Path:
    """Create the instance folder (``dagster_home``, default ``home/dagster``), write its dagster.yaml and point
    this process (and the processes it starts) at it through ``DAGSTER_HOME``."""
    dagster_home = Path(dagster_home or home / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    url = postgres_url()
    if url is not None:
        os.environ[POSTGRES_ENV] = url
    cfg = dagster_home / "dagster.yaml"
    current = cfg.read_text(encoding="utf-8") if cfg.exists() else None
    if current is None or current == _OLD_DEFAULT or current.startswith(MARKER):
        wanted = instance_yaml(postgres=url is not None)
        if current != wanted:
            cfg.write_text(wanted, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    _create_storage(dagster_home)
    return dagster_home


def _create_storage(dagster_home: Path) -> None:
    """Create the instance's storage once, one process at a time: two syncs started together in a new folder
    would otherwise both create Dagster's SQLite schema and leave it with two Alembic heads (unusable)."""
    import fcntl

    import dagster as dg

    fd = os.open(dagster_home / ".storage.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        dg.DagsterInstance.from_config(str(dagster_home)).dispose()
    finally:
        os.close(fd)
