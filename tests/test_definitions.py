"""The Dagster definitions load, validate with Dagster's own CLI, and every asset is operator-ready."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from hub.definitions import all_checks, defs

EXPECTED = {
    "raw_erp": "pull",
    "raw_webshop": "pull",
    "raw_social": "pull",
    "raw_callcenter": "pull",
    "staged_records": "standardise",
    "match_pairs": "match",
    "golden_customers": "golden",
    "steward_review_queue": "golden",
    "customer_360": "serve",
    "push_outbox": "push",
    "push_erp": "push",
    "push_webshop": "push",
    "push_social": "push",
    "push_callcenter": "push",
    "data_quality_report": "report",
}


def test_every_asset_has_its_group_and_a_description() -> None:
    graph = defs.resolve_asset_graph()
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert EXPECTED.keys() <= specs.keys()
    for key, group in EXPECTED.items():
        assert specs[key].group_name == group, key
        assert specs[key].description and len(specs[key].description) > 40, key
    # the flow: push needs the outbox, the outbox needs the 360 view, … down to the pulls
    assert dg.AssetKey("push_outbox") in graph.get(dg.AssetKey("push_webshop")).parent_keys
    assert dg.AssetKey("golden_customers") in graph.get(dg.AssetKey("customer_360")).parent_keys


def test_a_blocking_check_guards_every_push() -> None:
    checks = {spec.key.name: spec for c in all_checks for spec in c.check_specs}
    assert {"golden_customers_consistent", "push_outbox_targets_known", "quarantine_rate_acceptable"} <= set(checks)
    assert checks["golden_customers_consistent"].blocking
    assert checks["golden_customers_consistent"].asset_key == dg.AssetKey("golden_customers")
    assert all(spec.description for spec in checks.values())


def test_job_schedule_and_cdr_sensor_resolve() -> None:
    job = defs.resolve_job_def("full_sync")
    assert len(job.asset_layer.executable_asset_keys) >= len(EXPECTED)
    assert defs.resolve_schedule_def("full_sync_nightly").job_name == "full_sync"
    assert defs.resolve_sensor_def("cdr_drop_folder_sensor")


def test_secrets_are_environment_references() -> None:
    # EnvVar fields stay references until run time: the UI shows the variable's name, never the value
    woo = defs.resources["source_webshop"]
    assert isinstance(woo.consumer_secret, dg.EnvVar) and woo.consumer_secret == "HUB_WEBSHOP_SECRET"
    social = defs.resources["source_social"]
    assert isinstance(social.secret, dg.EnvVar)


def test_cdr_sensor_skips_without_a_folder_and_fires_on_new_data(tmp_path: Path, monkeypatch) -> None:
    sensor = defs.resolve_sensor_def("cdr_drop_folder_sensor")
    monkeypatch.delenv("HUB_CDR_DIR", raising=False)
    with dg.build_sensor_context() as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)
    monkeypatch.setenv("HUB_CDR_DIR", str(tmp_path))
    (tmp_path / "Master.csv").write_text('"","100","200","default"\n', encoding="utf-8")
    with dg.build_sensor_context() as ctx:
        result = sensor(ctx)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
    with dg.build_sensor_context(cursor=result.cursor) as ctx:
        assert isinstance(sensor(ctx), dg.SkipReason)  # nothing new since


def test_dagster_cli_validates_the_definitions() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "hub.definitions"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "DAGSTER_HOME": ""},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
