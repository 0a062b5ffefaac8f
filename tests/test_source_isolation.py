"""A failing source is isolated: through the full_sync job (in process, on a small sandbox world) with the
ERP's database unreachable, the other sources are pulled, matched and pushed, the ERP is not pushed to and
keeps its last good state, the run is partial (a failed ``pull_succeeded`` check; ``hub demo`` exits 1) and the
summary and the data-quality report name the source and the error — without its secrets. The sources are
pulled and the targets pushed side by side, so a slow or failing system holds up no other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from hub.demo import sandbox_env
from hub.store import Store, landing, push_outbox, push_result
from hub.sync import run_partial, summarise


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from hub.sandbox import SandboxWorld

    w = SandboxWorld.create_or_load(tmp_path / "sandbox", customers=120, seed=11)
    monkeypatch.chdir(tmp_path)  # the report and the store live under ./.hub
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    with w.serve() as ep:
        for k, v in sandbox_env(ep).items():
            monkeypatch.setenv(k, v)
        yield w


def _sync(instance: dg.DagsterInstance) -> Any:
    from hub.definitions import defs

    return defs.resolve_job_def("full_sync").execute_in_process(instance=instance, raise_on_error=False)


def _pushed_ok(store: Store, run_id: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(push_result.c.target, sa.func.count()).where(
            push_result.c.run_id == run_id, push_result.c.status == "ok").group_by(push_result.c.target)).all()
    return dict(rows)


def _erp_landing(store: Store) -> list[tuple]:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(landing.c.entity, landing.c.source_id, landing.c.payload_hash)
                            .where(landing.c.source == "erp").order_by(landing.c.entity, landing.c.source_id)).all()


def test_an_unreachable_source_is_isolated_and_the_others_flow_through(
    sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store()
    with dg.instance_for_test() as instance:
        first = _sync(instance)
        assert first.success and not run_partial(first)
        erp_before = _erp_landing(store)
        assert erp_before
        # each pull's row count is its own source's landed records, whatever the others landed
        with store.engine.connect() as conn:
            landed = dict(conn.execute(sa.select(landing.c.source, sa.func.count()).group_by(landing.c.source)).all())
        for source in ("erp", "webshop", "social", "callcenter"):
            mat = next(m for m in first.asset_materializations_for_node("pull_sources")
                       if m.asset_key == dg.AssetKey(f"raw_{source}"))
            assert mat.metadata["dagster/row_count"].value == landed[source] > 0

        sandbox.mutate(0.2, seed=3)  # every system changes: there is something to push everywhere
        secret_dir = tmp_path / "no-such-dir-s3cr3tpath"
        monkeypatch.setenv("HUB_ERP_URL", f"sqlite:///{secret_dir}/erp.sqlite")
        second = _sync(instance)
        assert second.success and run_partial(second)  # every step ran; the run is partial

        checks = {(e.asset_key.to_user_string(), e.check_name): e for e in second.get_asset_check_evaluations()}
        failed = checks[("raw_erp", "pull_succeeded")]
        assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
        assert "OperationalError" in failed.metadata["error"].value
        assert failed.metadata["attempts"].value == 2  # tried once more before the source was isolated
        assert all(checks[(f"raw_{s}", "pull_succeeded")].passed for s in ("webshop", "social", "callcenter"))

        # the others were pulled, matched and pushed; the ERP was not pushed to and kept what it had
        pushed = _pushed_ok(store, second.run_id)
        assert pushed.get("webshop", 0) > 0 and "erp" not in pushed, pushed
        assert _erp_landing(store) == erp_before
        mats = {e.asset_key.to_user_string(): e for e in second.get_asset_materialization_events()}
        assert "golden_customers" in mats and "customer_360" in mats and "data_quality_report" in mats
        skipped = mats["push_erp"].event_specific_data.materialization.metadata["skipped"].value
        assert "pull of erp failed" in skipped

        summary = summarise(second)
        assert "FAILED source erp: OperationalError" in summary
        twin = json.loads(Path(".hub/reports/data_quality.json").read_text(encoding="utf-8"))
        assert "OperationalError" in twin["run_failures"]["pull of erp"]
        html = Path(".hub/reports/data_quality.html").read_text(encoding="utf-8")
        assert "pull of erp" in html
        # the error text keeps no secret, path or query string of the source
        for text in (summary, json.dumps(twin["run_failures"]), failed.metadata["error"].value):
            assert "s3cr3t" not in text, text

        # the source is back: its pull succeeds, the rows that waited for it are pushed, the run is whole
        monkeypatch.setenv("HUB_ERP_URL", sandbox.erp_url)
        third = _sync(instance)
        assert third.success and not run_partial(third)
        assert _pushed_ok(store, third.run_id).get("erp", 0) > 0
        with store.engine.connect() as conn:
            waiting = conn.execute(sa.select(sa.func.count()).select_from(push_outbox).where(
                push_outbox.c.target == "erp", push_outbox.c.status.in_(("pending", "error")))).scalar_one()
        assert waiting == 0
        assert "FAILED source" not in summarise(third)
    store.dispose()


def test_hub_sync_with_the_shop_down_exits_1_pushes_the_others_and_names_the_shop(
    sandbox: Any, tmp_path: Path,
) -> None:
    """As the issue checks it: a sandbox server that does not answer during `hub sync`."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["HUB_WEBSHOP_URL"] = f"http://127.0.0.1:{port}"
    proc = subprocess.run([str(Path(sys.executable).parent / "hub"), "sync"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "FAILED source webshop: SourceUnavailable" in out and f"127.0.0.1:{port}" in out, out[-4000:]
    assert os.environ["HUB_WEBSHOP_SECRET"] not in out
    store = Store()
    try:
        with store.engine.connect() as conn:
            ok = dict(conn.execute(sa.select(push_result.c.target, sa.func.count())
                                   .where(push_result.c.status == "ok").group_by(push_result.c.target)).all())
    finally:
        store.dispose()
    assert ok.get("erp", 0) > 0 and ok.get("social", 0) > 0 and "webshop" not in ok, ok
    twin = json.loads((tmp_path / ".hub" / "reports" / "data_quality.json").read_text(encoding="utf-8"))
    assert "SourceUnavailable" in twin["run_failures"]["pull of webshop"]


def _first_and_last(store: Store, by: Any, at: Any, *where: Any) -> tuple[dict, dict]:
    """Per value of ``by``: the earliest and the latest ``at`` of the rows ``where``."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(by, sa.func.min(at), sa.func.max(at)).where(*where).group_by(by)).all()
    return {k: lo for k, lo, _ in rows}, {k: hi for k, _, hi in rows}


def test_sources_are_pulled_and_targets_pushed_at_once_so_a_slow_system_holds_up_no_other(sandbox: Any) -> None:
    """The pulls of one sync run side by side, and so do its pushes: WeChat answers its first call of the pull
    and its first tagging call of the push 6 s late (the call is carried out, the answer waits), and meanwhile the
    shop, the ERP and the call center are read and landed, then written — every row of theirs before WeChat's
    first. One after another, the shop would have waited for WeChat both times."""
    sandbox.faults = "wechat:stall@1:delay=6; wechat:stall@1:delay=6:path=batchtagging"
    with dg.instance_for_test() as instance:
        run = _sync(instance)
    assert run.success and not run_partial(run)
    assert [kind for _, kind, _ in sandbox.fault_controller.fired] == ["stall", "stall"]
    store = Store()
    try:
        landed_first, landed_last = _first_and_last(store, landing.c.source, landing.c.landed_at)
        pushed_first, pushed_last = _first_and_last(store, push_result.c.target, push_result.c.at,
                                                    push_result.c.run_id == run.run_id, push_result.c.status == "ok")
    finally:
        store.dispose()
    others = ("callcenter", "erp", "webshop")
    assert set(landed_first) == set(pushed_first) == {*others, "social"}, (landed_first, pushed_first)
    assert all(landed_last[s] < landed_first["social"] for s in others), (landed_first, landed_last)
    assert all(pushed_last[t] < pushed_first["social"] for t in others), (pushed_first, pushed_last)


def test_a_target_that_cannot_be_written_fails_the_push_step_alone_and_is_pushed_next_time(sandbox: Any) -> None:
    """The PBX directory cannot be written (a folder stands where its file goes): its push is tried three times
    and fails, naming the target and the error; the shop, the ERP and WeChat are pushed in the same step. Once
    the file can be written, the next sync sends the PBX what waited."""
    import os

    blocker = Path(os.environ["HUB_CDR_DIR"]) / "directory.csv"
    blocker.mkdir()
    with dg.instance_for_test() as instance:
        run = _sync(instance)
        assert not run.success
        failures = [e for e in run.all_events if e.event_type_value == "STEP_FAILURE"]
        assert [e.step_key for e in failures] == ["push_targets"]
        text = failures[0].step_failure_data.error.message
        assert "push failed: callcenter (IsADirectoryError" in text and "; 3 attempts)" in text, text
        pushed = {e.asset_key.to_user_string() for e in run.get_asset_materialization_events()}
        assert {"push_webshop", "push_erp", "push_social"} <= pushed and "push_callcenter" not in pushed
        store = Store()
        try:
            ok = _pushed_ok(store, run.run_id)
            assert ok.get("webshop", 0) > 0 and ok.get("erp", 0) > 0 and "callcenter" not in ok, ok
            blocker.rmdir()
            again = _sync(instance)
            assert again.success
            assert _pushed_ok(store, again.run_id).get("callcenter", 0) > 0
        finally:
            store.dispose()
