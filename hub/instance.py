"""Dagster's own instance for the hub: ``$DAGSTER_HOME/dagster.yaml`` (default ``.hub/dagster``).

What the hub's instance needs beyond Dagster's defaults:
  - one sync at a time: the run queue starts one run tagged ``hub/sync`` (full_sync, call_center_sync) at a
    time, so the UI, the schedule and the sensor queue behind each other instead of colliding (the store's own
    lock, hub/sync_lock.py, also covers runs started outside this instance);
  - run monitoring: a run whose process was killed is marked failed instead of staying STARTED for ever
    (needs the daemon, which ``hub ui`` / ``dagster dev`` run);
  - events stored without a new database engine per event: Dagster's SQLite event log opened, used and disposed
    of an engine (and a connection, and SQLAlchemy's statement cache) for every event and committed each with a
    full sync to disk — ~4-10 ms an event, and a sync writes hundreds (``KeptSqliteEventLogStorage``, below);
  - on request, runs, events and schedules in PostgreSQL (dagster-postgres) instead of SQLite files: set
    ``HUB_DAGSTER_POSTGRES_URL`` (e.g. ``postgresql+psycopg2://dagster:secret@db/dagster``). The file names
    the variable, never its value.

The file is rewritten whenever the hub starts Dagster, as long as its first line is the hub's marker; delete
that line to keep a hand-written ``dagster.yaml``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
)

from hub.sync_lock import SYNC_RUN_TAG

POSTGRES_ENV = "HUB_DAGSTER_POSTGRES_URL"
MARKER = "# Written by the customer data hub (hub/instance.py); delete this line to keep your own settings."
# what `hub demo` wrote before the hub managed the file: safe to replace
_OLD_DEFAULT = "telemetry:\n  enabled: false\n"


class KeptSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (the same files, tables and readers) with one engine kept per database file.

    Dagster 1.13's ``SqliteEventLogStorage._connect`` creates an engine for every connection and disposes of it
    after one statement: per event a new engine, a new SQLite connection, SQLAlchemy's statement cache lost
    (every insert compiled again) and a commit that syncs the file to disk. Here the engine and its connection
    are kept, with ``synchronous=NORMAL`` (the files are in WAL mode, which Dagster sets: a commit survives a
    crash of the process; only an operating-system crash can lose the last events of the run history, never the
    hub's own data), and a run's file is checkpointed after each write, as closing the connection did, so that
    a watcher in another process (the UI's live run view) sees the event. A 40-asset run (287 events): 2.0-2.3 s
    with Dagster's storage, 0.9-1.3 s with this one, 0.9 s in memory.

    Connections are used under Dagster's own lock (one statement block at a time per storage), so one
    connection per file, shared by its threads, is safe. The most recent ``KEEP`` files stay open (the index
    and the runs being written)."""

    KEEP = 4

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> KeptSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = sa.create_engine(self.conn_string_for_shard(shard), poolclass=sa.pool.StaticPool,
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False})
        sa.event.listen(engine, "connect", _synchronous_normal)
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > self.KEEP:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock, self._engine(shard).connect() as conn:
            raw = conn.connection.dbapi_connection
            changes = raw.total_changes
            with conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME and raw.total_changes != changes:
                # what a watcher of this run sees: Dagster's watchdog (the UI's live run view, in another
                # process) reacts to changes of the run's .db file, and in WAL mode a commit only writes the
                # -wal file. Dagster's closing of the connection after every event checkpointed it there; a
                # kept connection checkpoints after each write instead (PASSIVE: never waits for readers).
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_all()  # the run files are deleted: no connection may write on into an unlinked file
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_all()


def _synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_storage(dagster_home: Path) -> dict:
    """Dagster's default SQLite layout under ``dagster_home`` (runs, event logs, schedules: the files an instance
    without a storage section uses, so earlier runs stay visible), with the kept-engine event log."""
    home = dagster_home.resolve()
    return {
        "run_storage": {"module": "dagster._core.storage.runs", "class": "SqliteRunStorage",
                        "config": {"base_dir": os.path.join(home, "history", "")}},
        "event_log_storage": {"module": "hub.instance", "class": "KeptSqliteEventLogStorage",
                              "config": {"base_dir": os.path.join(home, "history", "runs", "")}},
        "schedule_storage": {"module": "dagster._core.storage.schedules", "class": "SqliteScheduleStorage",
                             "config": {"base_dir": os.path.join(home, "schedules")}},
    }


def instance_settings(postgres: bool, dagster_home: Path | None = None) -> dict:
    """The dagster.yaml settings of the hub's instance (``postgres``: storage through dagster-postgres; else,
    with ``dagster_home``, SQLite files there with ``KeptSqliteEventLogStorage``)."""
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
    elif dagster_home is not None:
        settings.update(_sqlite_storage(dagster_home))
    return settings


def instance_yaml(postgres: bool, dagster_home: Path | None = None) -> str:
    return MARKER + "\n" + yaml.safe_dump(instance_settings(postgres, dagster_home), sort_keys=False)


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
        wanted = instance_yaml(postgres=url is not None, dagster_home=dagster_home)
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
