"""The Dagster definitions load, validate with Dagster's own CLI, and every asset is operator-ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from hub.definitions import all_checks, defs
from hub.resources import HubStoreResource

EXPECTED = {
    "raw_erp": "1_pull",
    "raw_webshop": "1_pull",
    "raw_social": "1_pull",
    "raw_callcenter": "1_pull",
    "staged_records": "2_standardise",
    "match_model": "3_match",
    "match_pairs": "3_match",
    "golden_customers": "4_golden",
    "steward_review_queue": "4_golden",
    "customer_360": "5_serve",
    "caller_lookup_index": "5_serve",
    "push_outbox": "6_push",
    "push_erp": "6_push",
    "push_webshop": "6_push",
    "push_social": "6_push",
    "push_callcenter": "6_push",
    "data_quality_report": "7_report",
}


def test_every_asset_has_its_group_and_a_description() -> None:
    graph = defs.resolve_asset_graph()
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert EXPECTED.keys() <= specs.keys()
    for key, group in EXPECTED.items():
        assert specs[key].group_name == group, key
        assert specs[key].description and len(specs[key].description) > 40, key
    # group names sort as the data flows; owners and catalog tags everywhere; pii where personal data is
    assert sorted({specs[k].group_name for k in EXPECTED}) == [specs[k].group_name for k in
                                                               ("raw_erp", "staged_records", "match_pairs",
                                                                "golden_customers", "customer_360", "push_outbox",
                                                                "data_quality_report")]
    for key in EXPECTED:
        assert specs[key].owners and specs[key].tags["domain"] == "customer", key
    assert specs["golden_customers"].tags["pii"] == "true" and specs["data_quality_report"].tags["pii"] == "false"
    for key, col in (("golden_customers", "golden_id"), ("customer_360", "value_tier")):
        schema = specs[key].metadata["dagster/column_schema"]
        assert col in {c.name for c in schema.columns}, key
    assert specs["raw_erp"].freshness_policy is not None
    # the flow: push needs the outbox, the outbox needs the 360 view, … down to the pulls
    assert dg.AssetKey("push_outbox") in graph.get(dg.AssetKey("push_webshop")).parent_keys
    assert dg.AssetKey("golden_customers") in graph.get(dg.AssetKey("customer_360")).parent_keys
    assert dg.AssetKey("customer_360") in graph.get(dg.AssetKey("caller_lookup_index")).parent_keys


def test_a_blocking_check_guards_every_push() -> None:
    checks = {spec.key.name: spec for c in all_checks for spec in c.check_specs}
    assert {"golden_customers_consistent", "push_outbox_targets_known", "quarantine_rate_acceptable"} <= set(checks)
    assert checks["golden_customers_consistent"].blocking
    assert checks["golden_customers_consistent"].asset_key == dg.AssetKey("golden_customers")
    assert all(spec.description for spec in checks.values())


def test_a_check_for_every_dimension_per_source_and_the_blocking_brake() -> None:
    checks = {spec.key.name: spec for c in all_checks for spec in c.check_specs}
    assert len(checks) >= 12
    brake = checks["merge_split_brake"]
    assert brake.blocking and brake.asset_key == dg.AssetKey("golden_customers")
    assert "hub quality release" in brake.description
    for source in ("erp", "webshop", "social", "callcenter"):
        assert checks[f"freshness_{source}"].asset_key == dg.AssetKey(f"raw_{source}")
        assert f"validity_{source}" in checks
    # completeness and duplicates only where a source has customer records (the call center has calls)
    assert {"completeness_erp", "completeness_webshop", "completeness_social", "duplicates_erp"} <= set(checks)
    assert "completeness_callcenter" not in checks
    assert {"cross_source_consistency", "golden_ids_unique", "steward_agreement", "possible_duplicates"} <= set(checks)
    # every push waits for the brake: the pushes are downstream of the blocked asset
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("golden_customers") in graph.get(dg.AssetKey("customer_360")).parent_keys


def test_job_schedule_and_cdr_sensor_resolve() -> None:
    job = defs.resolve_job_def("full_sync")
    assert len(job.asset_layer.executable_asset_keys) >= len(EXPECTED)
    assert defs.resolve_schedule_def("full_sync_nightly").job_name == "full_sync"
    weekly = defs.resolve_schedule_def("match_model_weekly")
    assert weekly.job_name == "retrain_match_model" and weekly.cron_schedule == "0 3 * * 0"
    refit = defs.resolve_job_def("retrain_match_model")
    assert {dg.AssetKey("match_model"), dg.AssetKey("match_pairs"), dg.AssetKey("golden_customers")} <= set(
        refit.asset_layer.executable_asset_keys) and refit.tags.get("hub/retrain") == "force"
    graph = defs.resolve_asset_graph()
    assert dg.AssetKey("match_model") in graph.get(dg.AssetKey("match_pairs")).parent_keys
    assert defs.resolve_sensor_def("cdr_drop_folder_sensor")


def test_secrets_are_environment_references() -> None:
    # EnvVar fields stay references until run time: the UI shows the variable's name, never the value
    woo = defs.resources["source_webshop"]
    assert isinstance(woo.consumer_secret, dg.EnvVar) and woo.consumer_secret == "HUB_WEBSHOP_SECRET"
    social = defs.resources["source_social"]
    assert isinstance(social.secret, dg.EnvVar)


def test_cdr_sensor_skips_without_a_folder_and_fires_on_new_data(tmp_path: Path, monkeypatch) -> None:
    sensor = defs.resolve_sensor_def("cdr_drop_folder_sensor")
    store = {"store": HubStoreResource(database_url=f"sqlite:///{tmp_path / 'hub.db'}")}
    monkeypatch.delenv("HUB_CDR_DIR", raising=False)
    with dg.build_sensor_context(resources=store) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    monkeypatch.setenv("HUB_CDR_DIR", str(tmp_path))
    (tmp_path / "Master.csv").write_text('"","100","200","default"\n', encoding="utf-8")
    with dg.build_sensor_context(resources=store) as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    assert sensor.job_name == "call_center_sync"
    with dg.build_sensor_context(cursor=result.cursor, resources=store) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)  # nothing new since


def test_the_sensor_does_not_surprise_a_synced_store_and_runs_only_the_call_center_part(
    tmp_path: Path, monkeypatch,
) -> None:
    from hub.store import LandingRecord, Store

    sensor = defs.resolve_sensor_def("cdr_drop_folder_sensor")
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub_store = Store(url)
    hub_store.land_page("callcenter", "calls", [LandingRecord("1", {"src": "100"}, "h1")], {"files": {}})
    hub_store.dispose()
    monkeypatch.setenv("HUB_CDR_DIR", str(tmp_path))
    (tmp_path / "Master.csv").write_text('"","100","200","default"\n', encoding="utf-8")
    # `hub ui` opened on a synced store: the first look notes the folder, starts nothing
    with dg.build_sensor_context(resources={"store": HubStoreResource(database_url=url)}) as ctx:
        first = sensor(ctx)
    assert isinstance(first, dg.SensorResult) and not first.run_requests and first.cursor
    with (tmp_path / "Master.csv").open("a", encoding="utf-8") as fh:  # the call center drops new calls
        fh.write('"","101","200","default"\n' * 50)
    with dg.build_sensor_context(cursor=first.cursor, resources={"store": HubStoreResource(database_url=url)}) as ctx:
        later = sensor(ctx)
    assert len(later.run_requests) == 1

    # its job pulls the call center only, then everything downstream of it
    job = defs.resolve_job_def("call_center_sync")
    ops = {n.name for n in job.graph.node_defs}
    assert {"pull_sources", "staged_records", "golden_customers", "customer_360", "push_targets",
            "data_quality_report"} <= ops
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert "raw_callcenter" in selected and not selected & {"raw_erp", "raw_webshop", "raw_social"}
    assert "push_webshop" in selected


def test_sync_jobs_run_in_process_and_queue_one_at_a_time() -> None:
    for name in ("full_sync", "call_center_sync"):
        job = defs.resolve_job_def(name)
        assert job.executor_def.name == "in_process", name  # no process per step: UI runs as fast as the CLI
        assert job.tags.get("hub/sync") == "true", name  # the instance's run queue admits one at a time


def test_dagster_cli_validates_the_definitions() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "hub.definitions"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "DAGSTER_HOME": ""},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_a_run_opens_the_store_once_for_all_its_steps(tmp_path: Path, monkeypatch) -> None:
    """Every step of a run (stages and checks) gets the run's one store: the engine and the schema check
    (Alembic reads every revision file) once per run, not once per step."""
    import hub.store

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    hub.store.Store().dispose()  # an empty, migrated store
    checked: list[str] = []
    upgrade = hub.store.upgrade

    def counted_upgrade(engine: Any, *args: Any, **kwargs: Any) -> None:
        checked.append(engine.url.database)
        upgrade(engine, *args, **kwargs)

    monkeypatch.setattr(hub.store, "upgrade", counted_upgrade)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("match_pairs"), dg.AssetKey("golden_customers")])
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS}
    assert steps == {"match_pairs", "golden_customers", "quality_checks"}, steps
    assert checked == [str(tmp_path / "hub.db")], len(checked)


def test_loading_the_definitions_leaves_them_out_of_the_cyclic_collector() -> None:
    """Built with the collector paused, then frozen (the import, the run's full collections and the
    interpreter's exit no longer walk them); the collector is on again afterwards."""
    probe = ("import gc, hub.definitions; "
             "print(gc.isenabled(), gc.get_freeze_count(), len(gc.get_objects()))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    enabled, frozen, tracked = proc.stdout.split()
    assert enabled == "True"
    assert int(frozen) > 100_000 and int(frozen) > 10 * int(tracked), (frozen, tracked)


def test_a_stage_in_its_own_process_logs_into_the_runs_event_log(tmp_path: Path, monkeypatch) -> None:
    """The stages that hold every record run in a forked child of the run's process (``Store.run_apart``); what they
    log reaches the run's event log as before when the instance manages the hub's loggers (``python_logs``),
    sent by the run's process, not written by the child into Dagster's storage."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    job = defs.resolve_implicit_global_asset_job_def()
    overrides = {"python_logs": {"managed_python_loggers": ["hub"], "python_log_level": "INFO"}}
    with dg.instance_for_test(overrides=overrides) as instance:
        result = job.execute_in_process(instance=instance, asset_selection=[dg.AssetKey("match_pairs")])
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith("match_and_cluster") for m in messages), [m for m in messages if "match" in m][:5]
