"""One sync at a time per hub store.

Two syncs writing one store collide in the match tables, the golden ids and the outbox, so every run that
writes the store holds the store's sync lock for its whole duration, however it was launched (``hub sync``,
the UI, the schedule, the sensor): the store resource takes it when a run starts and gives it back when the
run ends (``hub.resources.HubStoreResource``). A second sync waits, saying which sync it waits for, or — asked
not to wait — fails at once with ``SyncBusy`` naming the holder (``hub sync --no-wait`` exits 3).

The lock itself is one the operating system or the database releases when its holder dies, so a killed sync
never leaves the store locked:
  PostgreSQL  a session advisory lock (``pg_try_advisory_lock``) on a connection held for the run
  MySQL       ``GET_LOCK`` on a held connection (same semantics)
  SQLite      an exclusive ``flock`` on ``<database>.sync.lock`` beside the database file
Who holds it (run id, job, host, pid, since when) is written to the ``sync_lock`` table, so a waiting sync can
say whom it waits for. A holder row left behind by a killed sync is found by the next holder, which marks that
run failed in Dagster (it would otherwise stay STARTED for ever).

Entry points: ``hold(store, run_id, wait=..., say=...)`` (a context manager, e.g. around
``job.execute_in_process(run_id=run_id)``) or the run tag ``NO_WAIT_TAG`` read by the store resource. A lock
held by this process for the same run id is re-entered, so a caller that took it before starting the run
does not wait for itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.store import Store, sync_lock

log = logging.getLogger(__name__)

LOCK_NAME = "sync"
# run tag: "true" makes a run that finds the store busy fail at once instead of waiting
NO_WAIT_TAG = "hub/no_wait"
# run tag the Dagster instance's run queue limits to one run at a time (hub/instance.py)
SYNC_RUN_TAG = "hub/sync"
# PostgreSQL advisory-lock key: "hubsync" as a number (advisory locks are per database, so per store)
PG_LOCK_KEY = int.from_bytes(b"hubsync", "big")
POLL_SECONDS = 1.0
SAY_AGAIN_SECONDS = 300.0  # a long wait is repeated in the log every five minutes
_HOST = socket.gethostname()


@dataclass(frozen=True, slots=True)
class LockHolder:
    run_id: str
    job: str | None
    host: str
    pid: int
    started_at: datetime

    def describe(self) -> str:
        job = f"{self.job}, " if self.job else ""
        return (f"sync {self.run_id} started at {self.started_at:%Y-%m-%d %H:%M:%S} UTC "
                f"({job}pid {self.pid} on {self.host})")


class SyncBusy(RuntimeError):
    """Another sync holds the store and the caller asked not to wait."""

    def __init__(self, holder: LockHolder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "another sync (it is just starting)"
        super().__init__(f"the hub store is busy: {who} holds it; not waiting")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _lock_identity(url: str) -> str:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return f"sqlite:{Path(parsed.database).resolve()}"
    return parsed.render_as_string(hide_password=True)


class _FileLock:
    """flock on a file beside the SQLite database: the kernel drops it when the holding process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class _SessionLock:
    """A database session lock on a connection held open: the server drops it when the connection ends."""

    def __init__(self, engine: sa.Engine, take: str, give: str, params: dict[str, Any]) -> None:
        self.engine, self.take, self.give, self.params = engine, take, give, params
        self._conn: sa.Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            got = conn.execute(sa.text(self.take), self.params).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text(self.give), self.params)
                self._conn.commit()
            finally:
                self._conn.close()  # closing alone would release it too
                self._conn = None


class _NoLock:
    """An in-memory SQLite store lives in one process: there is nobody to exclude."""

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


def _mechanism(store: Store) -> Any:
    url = sa.engine.make_url(store.url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if not url.database or url.database == ":memory:":
            return _NoLock()
        return _FileLock(Path(f"{url.database}.sync.lock"))
    if backend == "postgresql":
        return _SessionLock(store.engine, "SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)",
                            {"key": PG_LOCK_KEY})
    if backend in ("mysql", "mariadb"):
        name = f"hub_sync_{url.database}"[:64]
        return _SessionLock(store.engine, "SELECT GET_LOCK(:name, 0)", "SELECT RELEASE_LOCK(:name)", {"name": name})
    raise ValueError(f"the hub store on {backend} has no sync lock (supported: SQLite, PostgreSQL, MySQL)")


def read_holder(store: Store) -> LockHolder | None:
    """The holder row as written by the last sync that took the lock (may be stale: see ``current_holder``)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(sync_lock).where(sync_lock.c.name == LOCK_NAME)).first()
    if row is None:
        return None
    return LockHolder(run_id=row.run_id, job=row.job, host=row.host, pid=row.pid, started_at=row.started_at)


# locks this process holds, by store: a run started by a caller that already holds the lock re-enters it
_HELD: dict[str, SyncLock] = {}
_HELD_GUARD = threading.Lock()


class SyncLock:
    """The sync lock of one store, for one run. ``acquire`` / ``release``, or use it as a context manager."""

    def __init__(self, store: Store, run_id: str, *, job: str | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.job = job
        self.identity = _lock_identity(store.url)
        self._mech: Any = None
        self._reentered = False
        self.waited_seconds = 0.0
        self.stale: LockHolder | None = None  # a holder that died holding the lock, found when we took it

    @property
    def held(self) -> bool:
        return self._mech is not None or self._reentered

    def acquire(self, *, wait: bool = True, say: Callable[[str], None] | None = None,
                instance: Any = None, poll: float = POLL_SECONDS) -> SyncLock:
        """Take the lock; wait for the holder (``say`` tells whom, once and then every five minutes) or, with
        ``wait=False``, raise ``SyncBusy``. ``instance``: the Dagster instance, to close a dead holder's run."""
        with _HELD_GUARD:
            mine = _HELD.get(self.identity)
            if mine is not None and mine.run_id == self.run_id:
                self._reentered = True
                return self
        mech = _mechanism(self.store)
        started = time.monotonic()
        said_at: float | None = None
        said_holder: LockHolder | None = None
        while not mech.try_acquire():
            holder = read_holder(self.store)
            if not wait:
                raise SyncBusy(holder)
            if holder is None or holder.run_id == self.run_id:  # the holder is writing its row: look again
                time.sleep(min(poll, 0.2))
                continue
            elapsed = time.monotonic() - started
            if holder != said_holder or said_at is None or elapsed - said_at >= SAY_AGAIN_SECONDS:
                message = f"waiting for {holder.describe()} to finish (one sync at a time per hub store)"
                (say or log.warning)(message)
                said_at, said_holder = elapsed, holder
            time.sleep(poll)
        self.waited_seconds = time.monotonic() - started
        self._mech = mech
        try:
            self.stale = self._write_holder()
        except BaseException:
            self._mech = None
            mech.release()
            raise
        with _HELD_GUARD:
            _HELD[self.identity] = self
        if self.stale is not None and self.stale.run_id != self.run_id:
            (say or log.warning)(f"the previous holder, {self.stale.describe()}, ended without releasing the "
                                 "store (killed?); the outbox claims it left are reconciled by the push step")
            if instance is not None:
                close_dead_run(instance, self.stale, by=self.run_id)
        return self

    def _write_holder(self) -> LockHolder | None:
        with self.store.begin() as conn:
            row = conn.execute(sa.select(sync_lock).where(sync_lock.c.name == LOCK_NAME)).first()
            conn.execute(sync_lock.delete().where(sync_lock.c.name == LOCK_NAME))
            conn.execute(sync_lock.insert().values(name=LOCK_NAME, run_id=self.run_id, job=self.job, host=_HOST,
                                                   pid=os.getpid(), started_at=_now()))
        if row is None:
            return None
        return LockHolder(run_id=row.run_id, job=row.job, host=row.host, pid=row.pid, started_at=row.started_at)

    def release(self) -> None:
        if self._reentered:
            self._reentered = False
            return
        if self._mech is None:
            return
        try:
            with self.store.begin() as conn:
                conn.execute(sync_lock.delete().where(sync_lock.c.name == LOCK_NAME,
                                                      sync_lock.c.run_id == self.run_id))
        except Exception as exc:  # noqa: BLE001 - the lock must go even when the store cannot be written
            log.warning("sync lock: could not clear the holder row (%s)", type(exc).__name__)
        finally:
            with _HELD_GUARD:
                if _HELD.get(self.identity) is self:
                    del _HELD[self.identity]
            mech, self._mech = self._mech, None
            mech.release()

    def __enter__(self) -> SyncLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextmanager
def hold(store: Store, run_id: str, *, job: str | None = None, wait: bool = True,
         say: Callable[[str], None] | None = None, instance: Any = None) -> Iterator[SyncLock]:
    """Hold the store's sync lock for ``run_id`` (raises ``SyncBusy`` when busy and ``wait`` is False).

    ``hub sync``: ``with hold(store, run_id, wait=not no_wait, say=...): job.execute_in_process(run_id=run_id)``
    — the run's store resource re-enters the lock instead of waiting for itself."""
    lock = SyncLock(store, run_id, job=job).acquire(wait=wait, say=say, instance=instance)
    try:
        yield lock
    finally:
        lock.release()


def current_holder(store: Store) -> LockHolder | None:
    """Who holds the store right now (None when nobody does: a row left by a dead holder does not count)."""
    with _HELD_GUARD:
        mine = _HELD.get(_lock_identity(store.url))
    if mine is not None:
        return read_holder(store)
    mech = _mechanism(store)
    if mech.try_acquire():
        mech.release()
        return None
    return read_holder(store)


def close_dead_run(instance: Any, holder: LockHolder, *, by: str) -> bool:
    """Mark the run of a holder that died holding the lock as failed in Dagster (it stays STARTED otherwise).
    Only a run this instance knows and does not show as finished."""
    if holder.host == _HOST and holder.pid != os.getpid() and _alive(holder.pid):
        return False  # its process lives on (it only failed to clear its row): the run may still finish
    run = instance.get_run_by_id(holder.run_id)
    if run is None or run.is_finished:
        return False
    instance.report_run_failed(run, message=f"its process (pid {holder.pid} on {holder.host}) ended without "
                                             f"finishing the run; found by sync {by}, which took over the store")
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refused(result: Any) -> str | None:
    """Why a run did not start its steps because the store was busy (``hub/no_wait`` run), else None: the
    ``SyncBusy`` message from the run's failure events (it names the holder's run id and start)."""
    for event in getattr(result, "all_events", []):
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            if error.cls_name == SyncBusy.__name__:
                return error.message.strip().split(": ", 1)[-1]
            error = error.cause
    return None
