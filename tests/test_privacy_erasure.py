"""Erasure in the store: the Dagster job with config (the same code as `hub erase`), merged-away golden ids,
shared contact points, and suppression of an erased person in later pulls and staging."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from test_customer360_data import seed_demo

from hub.assets import build_erasure_job
from hub.config import load_config
from hub.resources import HubStoreResource
from hub.store import Store, erasure, golden_customer, golden_id_history, staged_record, suppression, xref


def _run(url: str, **request: object) -> dg.ExecuteInProcessResult:
    job = build_erasure_job(load_config())
    with dg.instance_for_test() as instance:
        return job.execute_in_process(
            run_config={"ops": {"erase_person_op": {"config": request}}},
            resources={"store": HubStoreResource(database_url=url)}, instance=instance, raise_on_error=False)


def test_erase_person_job_previews_then_erases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = Store(url)
    seed_demo(store)
    preview = _run(url, golden_id="G000000001")
    assert preview.success
    meta = preview.get_step_success_events()[0]  # the op succeeded with a plan, nothing erased
    assert meta and preview.output_for_node("erase_person_op") == {"erasure_id": None, "queued": 0}
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(golden_customer.c.status).where(
            golden_customer.c.golden_id == "G000000001")).scalar_one() == "active"

    done = _run(url, golden_id="G000000001", dry_run=False, reason="customer request")
    assert done.success and done.output_for_node("erase_person_op")["erasure_id"] == "E000000001"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(golden_customer.c.status, golden_customer.c.record).where(
            golden_customer.c.golden_id == "G000000001")).one() == ("erased", None)
        assert conn.execute(sa.select(sa.func.count()).select_from(xref).where(
            xref.c.golden_id == "G000000001")).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(staged_record).where(
            staged_record.c.record_key.in_(["erp:10", "webshop:501", "social:oWx1"]))).scalar_one() == 0
        # his orders went with him; Anna's did not
        orders = {k for (k,) in conn.execute(sa.select(staged_record.c.record_key)
                                             .where(staged_record.c.entity == "orders"))}
        assert "webshop:o10" in orders and not orders & {f"webshop:o{i}" for i in range(1, 7)}
        assert conn.execute(sa.select(golden_id_history.c.event).where(
            golden_id_history.c.golden_id == "G000000001")).scalars().all() == ["erased"]
        assert conn.execute(sa.select(erasure.c.status, erasure.c.reason)).one() == ("pushing", "customer request")
        assert conn.execute(sa.select(sa.func.count()).select_from(suppression)).scalar_one() > 0

    again = _run(url, golden_id="G000000001", dry_run=False)
    assert not again.success
    failure = again.get_step_failure_events()[0].event_specific_data.error
    assert "erased already" in (failure.message or "") or "erased already" in str(failure)
    store.dispose()


def test_retention_deletes_finished_erase_person_runs_whose_config_holds_the_selector(tmp_path: Path) -> None:
    from hub.assets import delete_erase_runs

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = Store(url)
    seed_demo(store)
    job = build_erasure_job(load_config())
    with dg.instance_for_test() as instance:
        job.execute_in_process(run_config={"ops": {"erase_person_op": {"config": {"phone": "+8613800138000"}}}},
                               resources={"store": HubStoreResource(database_url=url)}, instance=instance)
        assert len(instance.get_runs()) == 1
        assert delete_erase_runs(instance) == 1
        assert instance.get_runs() == []
    store.dispose()
