"""Dagster definitions of the hub: assets, checks, resources, the full_sync job, its schedule and the
call-center drop-folder sensor. Loaded by `dagster dev` / `dg` through `[tool.dagster] module_name`."""


import os
from pathlib import Path
from typing import Any

from hub.store import gc_paused

# Loading the definitions leaves ~0.5M objects alive for the life of the process (Dagster's, pandas' and the hub's
# modules, the assets and checks): the cyclic collector walked them ~800 times during this import, again at every
# full collection of the run and several times at interpreter exit (~1 s CPU of each `dagster` command). Paused
# while they are made, then frozen out of later collections (the few thousand cyclic leftovers of the imports stay).
with gc_paused(freeze=True):
    import dagster as dg

    from hub.assets import (
        PUSH_STEP,
        QUALITY_CHECKS_OP,
        RETRAIN_TAG,
        build_assets,
        build_checks,
        build_erasure_job,
        push_targets,
    )
    from hub.config import load_config
    from hub.resources import HubStoreResource, build_resources
    from hub.sync_lock import SYNC_RUN_TAG

    config = load_config()

    all_assets = build_assets(config)
    all_checks = build_checks(config)

# Runs of these jobs write the hub store: the instance's run queue starts one at a time (hub/instance.py), and
# the store's own lock (hub/sync_lock.py) keeps out runs started elsewhere.
SYNC_TAGS = {SYNC_RUN_TAG: "true"}

full_sync = dg.define_asset_job(
    "full_sync",
    selection=dg.AssetSelection.all(),
    tags=SYNC_TAGS,
    description="Pull every source, standardise, match, build golden records and the 360 view, push back, "
    "write the data-quality report.",
)

# `hub sync --dry-run` from the UI: the same assets, the push step previews instead of sending
full_sync_dry_run = dg.define_asset_job(
    "full_sync_dry_run",
    selection=dg.AssetSelection.all(),
    tags=SYNC_TAGS,
    config={"ops": {PUSH_STEP: {"config": {"dry_run": True}}}} if push_targets(config) else None,
    description="The full sync without writing to any system: pulls, golden records and the outbox as usual; "
    "the push step shows per target what it would create / update / remove (masked samples) and leaves the outbox "
    "pending, so the next full_sync sends exactly those rows.",
)

erase_person = build_erasure_job(config)

# both schedules follow hub.yaml `schedule.running`
schedule_status = dg.DefaultScheduleStatus.RUNNING if config.schedule.running else dg.DefaultScheduleStatus.STOPPED

full_sync_schedule = dg.ScheduleDefinition(
    name="full_sync_nightly",
    job=full_sync,
    cron_schedule=config.schedule.cron,
    execution_timezone=config.schedule.timezone,
    description="The nightly full sync (cron from hub.yaml `schedule.cron`). Switch it on in the UI "
    "(Automation) or set `schedule.running: true` in hub.yaml.",
    default_status=schedule_status,
)

# the weekly refit of the matching model, then everything downstream of it (re-scored, re-clustered, pushed)
match_model_weekly = dg.ScheduleDefinition(
    name="match_model_weekly",
    job=dg.define_asset_job(
        "retrain_match_model",
        selection=dg.AssetSelection.assets("match_model").downstream()
        # the quality checks: those of the golden layer and every quality dimension
        | dg.AssetSelection.checks(*(k for c in all_checks if c.node_def.name == QUALITY_CHECKS_OP
                                     for k in c.check_keys)),
        tags={**SYNC_TAGS, RETRAIN_TAG: "force"},
        description="Refit the matching model on all staged customers and re-match with it.",
    ),
    cron_schedule=config.matching.retrain_cron,
    execution_timezone=config.schedule.timezone,
    description="The weekly refit of the matching model (hub.yaml `matching.retrain_cron`; drift is reported in "
    "the match_model asset's metadata). Runs when the full-sync schedule runs.",
    default_status=schedule_status,
)


def _cdr_signature(folder: Path) -> str:
    parts = []
    for p in sorted(folder.glob("Master.csv*")):
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}:{int(st.st_mtime)}")
    return "|".join(parts)


_cdr_sources = {n: s for n, s in config.enabled_sources.items() if s.kind == "asterisk_cdr"}

# The call center's own job: its pull and everything downstream of it (staging … push, report), not the
# other sources' pulls.
call_center_sync = dg.define_asset_job(
    "call_center_sync",
    selection=dg.AssetSelection.assets(*(f"raw_{n}" for n in _cdr_sources)).downstream()
    # the quality checks: those of the golden layer and every quality dimension
    | dg.AssetSelection.checks(*(k for c in all_checks if c.node_def.name == QUALITY_CHECKS_OP
                                 for k in c.check_keys)),
    tags=SYNC_TAGS,
    description="The call center's CDR pull and what depends on it (matching, golden records, 360 view, "
    "push, report); started by the drop-folder sensor.",
) if _cdr_sources else None


def _holds_call_center_data(store: Any) -> bool:
    return any(n for (source, _), n in store.landing_counts().items() if source in _cdr_sources)


@dg.sensor(
    job_name="call_center_sync",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts the call center's sync when the call center drops new CDR data (Master.csv grows or "
    "rotates). Its first look at a store that already holds call-center data only notes the folder as it is.",
)
def cdr_drop_folder_sensor(context: dg.SensorEvaluationContext, store: HubStoreResource
                           ) -> dg.SensorResult | dg.SkipReason:
    folders = [os.environ.get(s.dir_env or "", "") for s in _cdr_sources.values()]
    folders = [Path(f) for f in folders if f]
    if not folders:
        return dg.SkipReason("no call-center drop folder configured (set the dir_env variable in hub.yaml)")
    signature = "||".join(_cdr_signature(f) for f in folders if f.is_dir())
    if not signature or signature == context.cursor:
        return dg.SkipReason("no new CDR data")
    if context.cursor is None:
        hub_store = store.store()
        try:
            synced = _holds_call_center_data(hub_store)
        finally:
            hub_store.dispose()
        if synced:  # e.g. `hub ui` opened on a synced demo: no surprise run, the next drop starts one
            return dg.SensorResult(skip_reason="first look: the store already holds call-center data; "
                                   "noted the drop folder as it is", cursor=signature)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=signature[-200:], tags={"hub/trigger": "cdr_drop"})],
        cursor=signature,
    )


defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[j for j in (full_sync, full_sync_dry_run, call_center_sync, erase_person) if j is not None],
    schedules=[full_sync_schedule, match_model_weekly],
    sensors=[cdr_drop_folder_sensor] if call_center_sync is not None else [],
    resources=build_resources(config),
    # every step in the run's own process: no process start-up and code import per step (a no-op sync from the
    # UI took minutes that way), and one store resource — one sync lock — for the whole run
    executor=dg.in_process_executor,
)
