"""One sync at a time per store: the store's sync lock, overlapping syncs end consistent, a killed sync frees
the store and its run is closed, the Dagster instance's run queue and storage.

Syncs run as separate `hub sync` processes
against one small sandbox world served by the test, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from hub.demo import sandbox_env
from hub.store import Store, push_result, xref
from hub.sync_lock import SyncBusy, SyncLock, current_holder, hold, read_holder

HUB = str(Path(sys.executable).parent / "hub")


# -- the lock itself, on both backends ---------------------------------------------------------------------------


def test_a_second_holder_is_refused_or_waits_and_the_holder_is_named(store: Store) -> None:
    first = SyncLock(store, "run-a", job="full_sync").acquire()
    try:
        holder = current_holder(store)
        assert holder is not None and holder.run_id == "run-a" and holder.pid == os.getpid()
        other = Store(store.url)
        with pytest.raises(SyncBusy) as busy:
            SyncLock(other, "run-b").acquire(wait=False)
        assert "run-a" in str(busy.value) and f"{holder.started_at:%Y-%m-%d %H:%M:%S}" in str(busy.value)
        # the same run re-enters (a caller that took the lock before starting the run does not wait for itself)
        with hold(store, "run-a"):
            pass
        assert current_holder(store) is not None
    finally:
        first.release()
    assert current_holder(store) is None and read_holder(store) is None
    said: list[str] = []
    with hold(other, "run-b", say=said.append):
        assert current_holder(store).run_id == "run-b"
    assert not said  # it was free: nothing to wait for
    other.dispose()


HOLDER = """
import sys, time
from hub.store import Store
from hub.sync_lock import SyncLock
SyncLock(Store(sys.argv[1]), sys.argv[2]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_waiting_sync_says_whom_it_waits_for_and_gets_the_lock_when_the_holder_dies(store: Store) -> None:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, store.url, "run-killed"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        said: list[str] = []
        waiter = SyncLock(store, "run-next")
        import threading

        t = threading.Thread(target=lambda: waiter.acquire(say=said.append, poll=0.2))
        t.start()
        deadline = time.monotonic() + 30
        while not said and time.monotonic() < deadline:
            time.sleep(0.1)
        assert said and "waiting for sync run-killed started at" in said[0], said
        assert t.is_alive()  # still waiting
        os.kill(proc.pid, signal.SIGKILL)  # the holder dies without releasing: the OS / database frees the lock
        t.join(30)
        assert not t.is_alive() and waiter.held
        assert waiter.stale is not None and waiter.stale.run_id == "run-killed"
        assert current_holder(store).run_id == "run-next"
        waiter.release()
    finally:
        proc.kill()
        proc.wait()


# -- whole syncs against one store -------------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Any]:
    from hub.sandbox import SandboxWorld

    w = SandboxWorld.create_or_load(tmp_path / "sandbox", customers=120, seed=7)
    with w.serve() as ep:
        w.env = sandbox_env(ep)
        yield w


@pytest.fixture
def world(sandbox: Any) -> dict[str, str]:
    return sandbox.env


def _start(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUB_") and k != "DAGSTER_HOME"}
    return subprocess.Popen([HUB, "sync", *args], cwd=cwd, env={**clean, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err


def _run_id(output: str) -> str:
    """The run's short id from the summary line "hub sync — run 1a2b3c4d succeeded"."""
    return re.search(r"hub sync — run (\w{8})", output).group(1)


def _wait_for_holder(store: Store, proc: subprocess.Popen, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        holder = current_holder(store)
        if holder is not None:
            return holder.run_id
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no sync took the store's lock:\n{proc.communicate()[1][-3000:]}")


def _assert_consistent(store: Store) -> None:
    """Every source record has exactly one current golden id; no outbox row was pushed ok twice."""
    with store.engine.connect() as conn:
        current = Counter(r for (r,) in conn.execute(sa.select(xref.c.record_key).where(xref.c.valid_to.is_(None))))
        oks = Counter(o for (o,) in conn.execute(sa.select(push_result.c.outbox_id)
                                                 .where(push_result.c.status == "ok")))
    assert current and max(current.values()) == 1, [k for k, n in current.items() if n > 1][:5]
    assert oks and max(oks.values()) == 1, [k for k, n in oks.items() if n > 1][:5]


def _overlapping_syncs(tmp_path: Path, env: dict[str, str], store_url: str) -> list[str]:
    """Two `hub sync` started at the same moment on one store: both end 0, one waited for the other saying
    so, the store holds one sync's result."""
    procs = [_start(tmp_path, env), _start(tmp_path, env)]
    results = [_finish(p) for p in procs]
    assert [code for code, _ in results] == [0, 0], "\n\n".join(out[-3000:] for _, out in results)
    outs = [out for _, out in results]
    waited = [out for out in outs if "waiting for sync" in out]
    assert len(waited) == 1, outs  # the second one waited for the first, saying so
    first = _run_id(next(o for o in outs if o not in waited))
    assert re.search(rf"hub sync: waiting for sync {first}[\w-]+ started at \d{{4}}-\d\d-\d\d", waited[0])
    store = Store(store_url)
    try:
        _assert_consistent(store)
        with store.engine.connect() as conn:
            pushers = {r[:8] for (r,) in conn.execute(sa.select(push_result.c.run_id).distinct())}
        assert pushers == {first}  # the second sync found everything done: it sent nothing
        assert current_holder(store) is None
    finally:
        store.dispose()
    return [_run_id(o) for o in outs]


def test_two_syncs_started_together_on_sqlite(tmp_path: Path, sandbox: Any) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {**sandbox.env, "HUB_DATABASE_URL": url, "HUB_DAGSTER_POSTGRES_URL": ""}
    _overlapping_syncs(tmp_path, env, url)

    # with --no-wait the second one exits 3 naming the holder; the first finishes. (A slow shop keeps the
    # first one busy long enough for the second to start: a sync of an unchanged world takes seconds.)
    store = Store(url)
    sandbox.faults = "webshop:slow@1-2:delay=8"
    first = _start(tmp_path, env)
    holder = _wait_for_holder(store, first)
    code, err = _finish(_start(tmp_path, env, "--no-wait"))
    assert code == 3 and f"sync {holder} started at" in err and "not waiting" in err, err
    assert _finish(first)[0] == 0
    _assert_consistent(store)

    # a sync killed while it holds the store: the next one takes over and closes the dead run in Dagster
    sandbox.faults = "webshop:slow@1-2:delay=8"
    killed = _start(tmp_path, env)
    victim = _wait_for_holder(store, killed)
    instance = dg.DagsterInstance.from_config(str(tmp_path / ".hub" / "dagster"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # killed mid-run, once its run has started
        run = instance.get_run_by_id(victim)
        if run is not None and run.status == dg.DagsterRunStatus.STARTED:
            break
        time.sleep(0.2)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    code, err = _finish(_start(tmp_path, env))
    assert code == 0, err[-3000:]
    assert f"the previous holder, sync {victim} started at" in err and "ended without releasing" in err
    try:
        run = instance.get_run_by_id(victim)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    finally:
        instance.dispose()
    _assert_consistent(store)
    store.dispose()


@pytest.mark.postgres
def test_two_syncs_started_together_on_postgresql_with_dagster_on_postgresql(
    tmp_path: Path, world: dict[str, str], postgres_database_url: str,
) -> None:
    from conftest import fresh_postgres_database

    with fresh_postgres_database() as dagster_url:
        env = {**world, "HUB_DATABASE_URL": postgres_database_url, "HUB_DAGSTER_POSTGRES_URL": dagster_url}
        run_ids = _overlapping_syncs(tmp_path, env, postgres_database_url)
        # Dagster's runs are in PostgreSQL: the instance folder names the variable, never the URL
        yaml_text = (tmp_path / ".hub" / "dagster" / "dagster.yaml").read_text(encoding="utf-8")
        assert "HUB_DAGSTER_POSTGRES_URL" in yaml_text and dagster_url.split("@")[-1] not in yaml_text
        engine = sa.create_engine(dagster_url)
        try:
            with engine.connect() as conn:
                stored = {r for (r,) in conn.execute(sa.text("SELECT run_id FROM runs"))}
        finally:
            engine.dispose()
        assert {r[:8] for r in stored} >= set(run_ids)


# -- the Dagster instance the hub writes -------------------------------------------------------------------------


def test_the_instance_queues_one_sync_at_a_time_and_monitors_runs(tmp_path: Path, monkeypatch) -> None:
    from hub.instance import MARKER, prepare_dagster_home

    monkeypatch.delenv("HUB_DAGSTER_POSTGRES_URL", raising=False)
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")  # an older hub's file
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # restored after the test
    assert prepare_dagster_home(tmp_path, home) == home.resolve()
    assert (home / "dagster.yaml").read_text(encoding="utf-8").startswith(MARKER)
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        queue = instance.get_concurrency_config().run_queue_config
        assert {"key": "hub/sync", "limit": 1} in queue.tag_concurrency_limits
        assert instance.run_monitoring_enabled
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.event_log_storage).__name__ == "KeptSqliteEventLogStorage"
    finally:
        instance.dispose()
    # a file the operator wrote (no marker) is left alone
    own = "telemetry:\n  enabled: true\n# mine\n"
    (home / "dagster.yaml").write_text(own, encoding="utf-8")
    prepare_dagster_home(tmp_path, home)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == own


def test_the_instance_keeps_its_event_log_engines_and_every_event_is_read_back(tmp_path: Path, monkeypatch) -> None:
    """The hub's SQLite event log keeps one engine per file instead of one per event: runs through it are
    recorded as Dagster records them (every event, the asset's materializations), another instance on the same
    files (the UI's process) reads them while the writer's connections stay open, and a wipe starts over."""
    from hub.instance import prepare_dagster_home

    monkeypatch.delenv("HUB_DAGSTER_POSTGRES_URL", raising=False)
    home = tmp_path / "dagster"
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # restored after the test
    prepare_dagster_home(tmp_path, home)

    @dg.asset
    def counted(context) -> None:  # noqa: ANN001 (Dagster reads the annotation; a string would not do)
        context.log.info("one log line, one event")
        context.add_output_metadata({"rows": 3})

    job = dg.Definitions(assets=[counted], jobs=[dg.define_asset_job("j", selection=[counted])]).resolve_job_def("j")
    writer = dg.DagsterInstance.from_config(str(home))
    reader = dg.DagsterInstance.from_config(str(home))
    try:
        runs = [job.execute_in_process(instance=writer).run_id for _ in range(6)]  # more runs than files kept
        engines = writer.event_log_storage._engines
        assert 1 < len(engines) <= type(writer.event_log_storage).KEEP
        for run_id in runs:
            written = writer.all_logs(run_id)
            assert [e.message for e in reader.all_logs(run_id)] == [e.message for e in written]
            assert any(e.message == "one log line, one event" for e in written)
            assert reader.get_run_by_id(run_id).is_success
        latest = reader.get_latest_materialization_event(dg.AssetKey("counted"))
        assert latest is not None and latest.run_id == runs[-1]
        assert latest.asset_materialization.metadata["rows"].value == 3

        # a run in progress, watched by another process's instance (the UI's live run view): Dagster's watchdog
        # reacts to the run's .db file, which a kept connection in WAL mode only changes at a checkpoint
        from dagster._core.events.log import EventLogEntry

        run_id = "5" * 8 + "-0000-4000-8000-" + "0" * 12
        seen: list[str] = []

        def event(text: str) -> EventLogEntry:
            return EventLogEntry(error_info=None, level=20, user_message=text, run_id=run_id, timestamp=time.time())

        writer.event_log_storage.store_event(event("started"))
        reader.event_log_storage.watch(run_id, None, lambda entry, _cursor: seen.append(entry.user_message))
        time.sleep(0.5)
        for k in range(3):
            writer.event_log_storage.store_event(event(f"step {k}"))
            time.sleep(0.3)
        deadline = time.monotonic() + 10
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen == ["started", "step 0", "step 1", "step 2"]
        writer.wipe()
        assert writer.get_latest_materialization_event(dg.AssetKey("counted")) is None
        run_id = job.execute_in_process(instance=writer).run_id
        assert reader.get_latest_materialization_event(dg.AssetKey("counted")).run_id == run_id
    finally:
        writer.dispose()
        reader.dispose()
