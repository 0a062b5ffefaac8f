"""Dagster definitions of the hub: assets, checks, resources, the full_sync job, its schedule and the
call-center drop-folder sensor. Loaded by `dagster dev` / `dg` through `[tool.dagster] module_name`."""


import os
from pathlib import Path

import dagster as dg

from hub.assets import build_assets, build_checks, build_erasure_job, push_targets
from hub.config import load_config
from hub.resources import build_resources

config = load_config()

all_assets = build_assets(config)
all_checks = build_checks(config)

full_sync = dg.define_asset_job(
    "full_sync",
    selection=dg.AssetSelection.all(),
    description="Pull every source, standardise, match, build golden records and the 360 view, push back, "
    "write the data-quality report.",
)

# `hub sync --dry-run` from the UI: the same assets, the push steps preview instead of sending
full_sync_dry_run = dg.define_asset_job(
    "full_sync_dry_run",
    selection=dg.AssetSelection.all(),
    config={"ops": {f"push_{t}": {"config": {"dry_run": True}} for t in push_targets(config)}},
    description="The full sync without writing to any system: pulls, golden records and the outbox as usual; "
    "each push step shows what it would create / update / remove (masked samples) and leaves the outbox "
    "pending, so the next full_sync sends exactly those rows.",
)

erase_person = build_erasure_job(config)

full_sync_schedule = dg.ScheduleDefinition(
    name="full_sync_nightly",
    job=full_sync,
    cron_schedule=config.schedule.cron,
    execution_timezone=config.schedule.timezone,
    description="The nightly full sync (cron from hub.yaml `schedule.cron`). Switch it on in the UI "
    "(Automation) or set `schedule.running: true` in hub.yaml.",
    default_status=(
        dg.DefaultScheduleStatus.RUNNING if config.schedule.running else dg.DefaultScheduleStatus.STOPPED
    ),
)


def _cdr_signature(folder: Path) -> str:
    parts = []
    for p in sorted(folder.glob("Master.csv*")):
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(parts)


_cdr_sources = {n: s for n, s in config.enabled_sources.items() if s.kind == "asterisk_cdr"}


@dg.sensor(
    job=full_sync,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a sync when the call center drops new CDR data (Master.csv grows or rotates).",
)
def cdr_drop_folder_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    folders = [os.environ.get(s.dir_env or "", "") for s in _cdr_sources.values()]
    folders = [Path(f) for f in folders if f]
    if not folders:
        return dg.SkipReason("no call-center drop folder configured (set the dir_env variable in hub.yaml)")
    signature = "||".join(_cdr_signature(f) for f in folders if f.is_dir())
    if not signature or signature == context.cursor:
        return dg.SkipReason("no new CDR data")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=signature[-200:], tags={"hub/trigger": "cdr_drop"})],
        cursor=signature,
    )


defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[full_sync, full_sync_dry_run, erase_person],
    schedules=[full_sync_schedule],
    sensors=[cdr_drop_folder_sensor],
    resources=build_resources(config),
)
