"""The hub as Dagster assets. This module only wires stages; every stage's logic lives in its own module.

Flow (groups in brackets):
  raw_<source> [pull] → staged_records [standardise] → match_pairs [match] → golden_customers [golden]
  (+ steward_review_queue) → customer_360 [serve] (+ caller_lookup_index [serve]) → push_outbox [push]
  → push_<target> [push] → data_quality_report [report]

Stages persist in the hub store (see hub/store.py) rather than passing frames between assets, so every step
is incremental across runs and the store can be PostgreSQL in production.
"""


import dataclasses
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from hub.config import HubConfig, SourceConfig

# group names sort in the UI as the data flows
GROUPS = {"pull": "1_pull", "standardise": "2_standardise", "match": "3_match", "golden": "4_golden",
          "serve": "5_serve", "push": "6_push", "report": "7_report", "privacy": "8_privacy"}
OWNERS = ["team:customer-data-hub"]


def asset_tags(pii: bool) -> dict[str, str]:
    """Catalog tags: every asset is customer-domain; ``pii`` marks those holding personal data."""
    return {"domain": "customer", "pii": "true" if pii else "false"}


def column_schema(model: Any, pii: frozenset[str], descriptions: dict[str, str] | None = None) -> dg.TableSchema:
    """A pydantic model's fields as the asset's column schema (kept in step with the model itself)."""
    cols = []
    for name, info in model.model_fields.items():
        kind = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        tags = {"pii": "true"} if name in pii else None
        cols.append(dg.TableColumn(name, kind, description=(descriptions or {}).get(name) or info.description,
                                   tags=tags))
    return dg.TableSchema(columns=cols)


KIND_LABEL = {
    "sql_erp": "sql",
    "tryton": "tryton",
    "woocommerce": "woocommerce",
    "wechat": "wechat",
    "asterisk_cdr": "asterisk",
}


# stage stats fields that are identifiers (a run counter), not measures
NOT_PLOTTED = frozenset({"run_id", "match_run", "upto_run"})


def stats_metadata(stats: Any) -> dict[str, Any]:
    """Numbers of a stage's stats dataclass as plottable metadata, plus its markdown summary."""
    meta: dict[str, Any] = {}
    names = [f.name for f in dataclasses.fields(stats)] if dataclasses.is_dataclass(stats) else []
    names += [n for n, v in vars(type(stats)).items() if isinstance(v, property)]
    for name in names:
        value = getattr(stats, name)
        if name in NOT_PLOTTED or name.endswith(("_id", "_bytes")):
            continue  # ids and byte counts are not quality figures: a chart of them misleads
        if isinstance(value, int | float) and not isinstance(value, bool):
            meta[name] = round(value, 4) if isinstance(value, float) else value
    markdown = getattr(stats, "markdown", None)
    if callable(markdown):
        meta["summary"] = dg.MetadataValue.md(markdown())
    return meta


def run_info(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Any:
    """The run a report describes: id, what started it (schedule, sensor, hub demo/sync, UI) and its start."""
    from datetime import UTC, datetime

    from hub.quality.history import RunInfo

    run = context.run
    tags = run.tags or {}
    trigger = (tags.get("hub/trigger") or
               (f"schedule {tags['dagster/schedule_name']}" if "dagster/schedule_name" in tags else None) or
               (f"sensor {tags['dagster/sensor_name']}" if "dagster/sensor_name" in tags else None) or "manual")
    record = context.instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record is not None else None
    return RunInfo(run_id=run.run_id, trigger=trigger,
                   started_at=datetime.fromtimestamp(started, UTC).replace(tzinfo=None) if started else None)


def run_steps(context: dg.AssetExecutionContext) -> set[str]:
    """The steps this run executes (the step keys it was launched with; all of its job's otherwise)."""
    steps = context.run.step_keys_to_execute
    if steps is None:
        return {node.name for node in context.job_def.nodes}
    return set(steps)


def derived_prefixes(sources: dict[str, SourceConfig]) -> dict[str, tuple[str, ...]]:
    from hub.quality.dimensions import derived_prefixes as prefixes

    return prefixes(sources)


def report_metadata(stats: Any, path: Path) -> dict[str, Any]:
    """Every quality score as a float Dagster plots over runs, the verdicts as markdown, the report's path."""
    meta: dict[str, Any] = {
        "overall_status": stats.status,
        "report": dg.MetadataValue.path(str(path.resolve())),
        "report_url": dg.MetadataValue.url(path.resolve().as_uri()),
        "summary": dg.MetadataValue.md(stats.markdown()),
    }
    for name, d in stats.dimensions.items():
        if d["score"] is not None:
            meta[f"score_{name}"] = float(d["score"])
        for source, v in d["sources"].items():
            if v.get("score") is not None:
                meta[f"score_{name}_{source}"] = float(v["score"])
    for key in ("golden_customers", "steward_queue", "quarantined_records", "push_rejected"):
        meta[key] = int(stats.headline.get(key) or 0)
    return meta


def pull_table(stats: list[Any]) -> str:
    lines = ["| entity | pages | records | new | changed | unchanged | records/s |", "|---|---|---|---|---|---|---|"]
    for s in stats:
        lines.append(
            f"| {s.entity} | {s.pages} | {s.records} | {s.new} | {s.changed} | {s.unchanged} | "
            f"{s.records_per_second:,.0f} |"
        )
    return "\n".join(lines)


class PullConfig(dg.Config):
    """Run config of a pull asset (``hub sync --full``, or the UI's launchpad)."""

    full: bool = False  # ignore the stored cursor: re-read every record (unchanged ones are not re-landed)


class PushConfig(dg.Config):
    """Run config of a push asset (``hub sync --dry-run``, or the UI job ``full_sync_dry_run``)."""

    dry_run: bool = False  # preview what would be sent; send nothing, the outbox stays pending


def pull_progress(context: dg.AssetExecutionContext, name: str, every: float = 1.0) -> Callable[[Any], None]:
    """A ``run_pull`` progress callback: at most one log line a second with counts only (``hub sync`` draws
    a bar from them, the UI shows them in the run's log). Each line is an event Dagster writes to its storage
    before the pull goes on (SQLite: a connection and a synced commit; 180 ms apiece seen on a loaded
    machine): the next line waits at least ten times as long as the last took, so they never cost the pull
    more than a tenth of its time."""
    import time

    from hub.connectors.base import progress_line

    last = [0.0]
    gap = [every]

    def report(stats: Any, total: int | None = None, final: bool = False) -> None:
        now = time.monotonic()
        if final or now - last[0] >= gap[0] or (total is not None and stats.records >= total):
            context.log.info(progress_line(f"raw_{name}", stats.entity, stats.records, total))
            last[0] = time.monotonic()
            gap[0] = max(every, 10 * (last[0] - now))

    return report


# Transient trouble (a dropped database connection, a locked SQLite file, a source down for a moment) is retried
# by Dagster: every stage is incremental and resumable, so running a step again is safe.
STEP_RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)
# a pull tries once more (connectors already retry each request with backoff), then isolates its source
PULL_RETRY = dg.RetryPolicy(max_retries=1, delay=5)
# resource fields that hold secrets: their values are taken out of any error text the hub keeps (a user name
# or a host stays: they say what went wrong)
SECRET_FIELDS = ("consumer_key", "consumer_secret", "appid", "secret", "password")


def _secrets(resource: Any) -> list[str]:
    from urllib.parse import urlsplit

    found = [v for f in SECRET_FIELDS if isinstance(v := getattr(resource, f, None), str) and v]
    for f in ("url", "base_url"):  # a password written into a database or API URL
        value = getattr(resource, f, None)
        if isinstance(value, str) and "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                found.append(password)
    return found


PULL_STEP = "pull_sources"  # the step (op) of every pull asset: its run config is PullConfig


def build_pull_assets(sources: dict[str, SourceConfig], expected_age_hours: dict[str, float]) -> dg.AssetsDefinition:
    """One asset per source (``raw_<source>``) with its ``pull_succeeded`` check, computed by one step that pulls
    the selected sources at once, a thread each: a pull waits on its system most of the time (HTTP pages at the
    system's rate limit, the ERP's database), and one after another the four waited in turn (1M people: 861 s
    of pulls for 417 s of the hub's CPU, PostgreSQL). ``expected_age_hours``: per source, the data age past
    which its freshness warns (fails past twice that; hub.yaml quality.expected_age_hours)."""
    from datetime import timedelta

    def spec(name: str, src: SourceConfig) -> dg.AssetSpec:
        age = timedelta(hours=expected_age_hours.get(name, 26.0))
        return dg.AssetSpec(
            f"raw_{name}", group_name=GROUPS["pull"], kinds={KIND_LABEL[src.kind]}, owners=OWNERS,
            tags=asset_tags(pii=True), freshness_policy=dg.FreshnessPolicy.time_window(fail_window=2 * age,
                                                                                     warn_window=age),
            description=(
                f"Raw {src.kind} payloads of source `{name}` landed in the hub store (landing table). Pulls are "
                "incremental from the stored cursor; each page and its cursor commit together, so an interrupted "
                "pull resumes where it stopped. Unchanged records (same payload hash) are not re-landed. Then an "
                "id-only sweep finds records the source deleted or deactivated (tombstones; staging retires them); "
                "a pull that read every record of an entity from its first page to its last is that sweep itself. "
                "A source that cannot be read is retried, then isolated (check `pull_succeeded`). Pulled at the "
                "same time as the other sources."))

    checks = [dg.AssetCheckSpec(
        "pull_succeeded", asset=f"raw_{name}",
        description=f"Fails (the run is partial) when `{name}` could not be read after its retries: the other "
                    "sources go on, this one is not pushed to and keeps its last good state; the error (redacted) "
                    "is in the check, the summary and the data-quality report.") for name in sources]

    @dg.multi_asset(specs=[spec(n, s) for n, s in sources.items()], check_specs=checks, name=PULL_STEP,
                    can_subset=True, required_resource_keys={"store", *(f"source_{n}" for n in sources)},
                    description="Pulls every selected source at once (a thread each), each retried on its own.")
    def pull_all(context: dg.AssetExecutionContext, config: PullConfig) -> Iterator[dg.MaterializeResult]:
        import queue
        from concurrent.futures import ThreadPoolExecutor, wait

        store = context.resources.store.store()
        chosen = [n for n in sources if dg.AssetKey(f"raw_{n}") in context.selected_asset_keys]
        lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        relay = types.SimpleNamespace(log=types.SimpleNamespace(info=lines.put, warning=lines.put))
        with ThreadPoolExecutor(max_workers=max(len(chosen), 1), thread_name_prefix="pull") as pool:
            futures = {n: pool.submit(pull_source, store, n, getattr(context.resources, f"source_{n}"), config.full,
                                      context.run_id, pull_progress(relay, n), lines.put) for n in chosen}
            pending = set(futures.values())
            while pending:  # the threads' progress and warnings go to the run's log from this thread only
                _, pending = wait(pending, timeout=0.5)
                _relay_lines(context, lines)
        _relay_lines(context, lines)
        results, broken = _settled(futures)
        for name, result in results.items():
            check = result.check_results[0]
            if not check.passed:
                context.log.error(f"source {name} isolated: {check.metadata['why'].value}")
            yield result
        if broken:  # not the source's read (that isolates it) but the hub's own bookkeeping: the step fails
            raise dg.Failure(description=f"pull failed: {'; '.join(broken)}")

    return pull_all


def _settled(futures: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The results of the threads that returned, by name, and "name (error)" of those that raised (the error
    without its text's personal data): one thread's error loses no other's result."""
    from hub.source_health import describe_error

    results: dict[str, Any] = {}
    broken: list[str] = []
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - reported after the others' results
            broken.append(f"{name} ({describe_error(exc)})")
    return results, broken


def _relay_lines(context: dg.AssetExecutionContext, lines: Any) -> None:
    """The pull threads' log lines so far, in the run's log: of progress lines only the newest of each source and
    entity (a line is an event Dagster stores before the next: four pulls' lines one by one could fall behind)."""
    import queue

    from hub.connectors.base import PROGRESS_RE

    progress: dict[tuple[str, str], str] = {}
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            break
        m = PROGRESS_RE.match(line)
        if m is not None:
            progress[m["step"], m["entity"]] = line
        else:
            context.log.warning(line)
    for line in progress.values():
        context.log.info(line)


def _attempted(run: Callable[[], Any], policy: dg.RetryPolicy, resource: Any, what: str, warn: Callable[[str], None],
               final: type[BaseException] | tuple[type[BaseException], ...] = ()) -> tuple[Any, str | None, int]:
    """``run()`` tried up to ``policy.max_retries`` times more, ``policy.delay`` seconds after the first failure
    (doubled after each further one with exponential backoff), not again after an error of a ``final`` type; a
    pull or push thread's own retries (Dagster retries whole steps). Returns (result, None, attempts), or (None,
    the last error without secrets or personal data, attempts); ``warn`` gets a line per retry."""
    import time

    from hub.source_health import describe_error

    attempt = 0
    while True:
        attempt += 1
        try:
            return run(), None, attempt
        except Exception as exc:  # noqa: BLE001 - retried, then reported without its text's personal data
            error = describe_error(exc, secrets=_secrets(resource))
            if attempt > policy.max_retries or isinstance(exc, final):
                return None, error, attempt
        wait = policy.delay * (2 ** (attempt - 1) if policy.backoff == dg.Backoff.EXPONENTIAL else 1)
        warn(f"{what} failed (attempt {attempt}): {error}; retrying in {wait} s")
        time.sleep(wait)


def pull_source(store: Any, name: str, resource: Any, full: bool, run_id: str, progress: Callable[..., None],
                warn: Callable[[str], None]) -> dg.MaterializeResult:
    """Pull one source (a thread of ``pull_sources``): every entity from its stored cursor (``full``: from the
    start), then the deletion sweeps. A read that fails is tried once more after ``PULL_RETRY.delay`` seconds
    (not wrong credentials: trying again only locks the account), then the source is isolated: its failure is
    recorded (``hub.source_health``) and its check fails; the other sources go on."""

    from hub import source_health
    from hub.connectors.base import SourceAuthError, run_pull, run_sweep

    def read() -> tuple[list[Any], list[Any]]:
        connector = resource.connector()
        results = [run_pull(connector, store, entity, full=full, progress=progress) for entity in connector.entities]
        return results, [s for s in (run_sweep(connector, store, r.entity, pulled=r) for r in results) if s]

    # whatever stops the read isolates this source (hub/source_health)
    done, error, attempt = _attempted(read, PULL_RETRY, resource, f"pull of {name}", warn, final=SourceAuthError)
    key = dg.AssetKey(f"raw_{name}")
    if done is None:
        failure = source_health.record_failure(store, name, error, run_id=run_id, attempts=attempt)
        return dg.MaterializeResult(
            asset_key=key,
            metadata={"pull_failed": error, "attempts": attempt, "new": 0, "changed": 0, "unchanged": 0},
            check_results=[dg.AssetCheckResult(
                asset_key=key, check_name="pull_succeeded", passed=False, severity=dg.AssetCheckSeverity.ERROR,
                metadata={"error": error, "attempts": attempt, "why": dg.MetadataValue.text(failure.describe())})],
        )
    results, sweeps = done
    source_health.record_ok(store, name, run_id=run_id, attempts=attempt)
    total = sum(store.landing_counts(name).values())
    summary = pull_table(results)
    if sweeps:
        summary += "\n\n| entity | present at source | newly deleted | newly deactivated | back |\n|---|---|---|---|---|\n"
        summary += "\n".join(f"| {s.entity} | {s.present} | {s.deleted} | {s.deactivated} | {s.revived} |"
                              for s in sweeps)
        refused_deletes = [s.refused for s in sweeps if s.refused]
        summary += "".join(f"\n\n**Deletes not applied:** {r}" for r in refused_deletes)
    return dg.MaterializeResult(
        asset_key=key,
        metadata={
            "dagster/row_count": total,
            "new": sum(r.new for r in results),
            "changed": sum(r.changed for r in results),
            "unchanged": sum(r.unchanged for r in results),
            "suppressed": sum(r.suppressed for r in results),
            "deleted_at_source": sum(s.deleted for s in sweeps),
            "deactivated_at_source": sum(s.deactivated for s in sweeps),
            "sweeps_refused": sum(1 for s in sweeps if s.refused),
            "pages": sum(r.pages for r in results),
            "seconds": round(sum(r.seconds for r in results) + sum(s.seconds for s in sweeps), 2),
            "summary": dg.MetadataValue.md(summary),
        },
        check_results=[dg.AssetCheckResult(asset_key=key, check_name="pull_succeeded", passed=True,
                                           metadata={"attempts": attempt})],
    )


# The targets' pushes run at once, one thread each: a push waits on its target most of the time (HTTP batches, the
# ERP's database, the PBX file), and one after another the four waited in turn (1M people: 828 s of pushes
# for 433 s of the hub's CPU). Each is retried on its own, as a step of its own was (``STEP_RETRY``).
PUSH_ATTEMPTS = STEP_RETRY.max_retries + 1
PUSH_STEP = "push_targets"  # the step (op) of every push asset: its run config is PushConfig


def build_push_assets(targets: dict[str, SourceConfig], written: dict[str, str | None]) -> dg.AssetsDefinition:
    """One asset per push target (``push_<target>``), computed by one step that pushes the selected targets
    concurrently. ``written``: per target, the source whose pulled records it writes (push config ``source:``,
    default the target's own name) — the preview's "before" comes from there."""
    specs = [dg.AssetSpec(
        f"push_{target}", group_name=GROUPS["push"], kinds={KIND_LABEL[src.kind]}, owners=OWNERS,
        tags=asset_tags(pii=False), deps=["push_outbox"],
        description=(
            f"Writes golden ids and segments back to `{target}`: sends the pending outbox rows of this target "
            "(diff-only — only records whose desired state changed) and logs every row's result "
            "(ok / rejected + reason / error). Errored rows stay pending and are retried next run; an ok row "
            "is never sent twice. Pushed at the same time as the other targets."
        )) for target, src in targets.items()]

    @dg.multi_asset(specs=specs, name=PUSH_STEP, can_subset=True,
                    required_resource_keys={"store", *(f"source_{t}" for t in targets)},
                    description="Pushes every selected target at once (a thread each), each retried on its own.")
    def push_all(context: dg.AssetExecutionContext, config: PushConfig) -> Iterator[dg.MaterializeResult]:
        from concurrent.futures import ThreadPoolExecutor

        from hub.privacy.erasure import finish_erasures

        store = context.resources.store.store()
        chosen = [t for t in targets if dg.AssetKey(f"push_{t}") in context.selected_asset_keys]
        resources = {t: getattr(context.resources, f"source_{t}") for t in chosen}
        with ThreadPoolExecutor(max_workers=max(len(chosen), 1), thread_name_prefix="push") as pool:
            futures = {t: pool.submit(push_target, store, t, written.get(t) or t, resources[t], config.dry_run,
                                      context.run_id) for t in chosen}
        outcomes, failed = _settled(futures)
        if not config.dry_run:
            finish_erasures(store)  # confirmed erasure rows lose their target ids
        for target, outcome in outcomes.items():
            for line in outcome.log:
                context.log.warning(line)
            if outcome.error is not None:
                failed.append(f"{target} ({outcome.error}; {PUSH_ATTEMPTS} attempts)")
                continue
            yield dg.MaterializeResult(asset_key=dg.AssetKey(f"push_{target}"), metadata=outcome.metadata)
        if failed:  # the other targets' results are recorded; the failed ones' rows stay pending for the next run
            raise dg.Failure(description=f"push failed: {'; '.join(failed)}")

    return push_all


@dataclasses.dataclass
class PushOutcome:
    """What one target's push gives the step: its asset's metadata, or the (redacted) error that stopped it, and
    the warnings to log (a thread does not write to the run's log itself)."""

    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    log: list[str] = dataclasses.field(default_factory=list)


def push_target(store: Any, target: str, source: str, resource: Any, dry_run: bool, run_id: str) -> PushOutcome:
    """Push one target (a thread of ``push_targets``): a dry run previews; a target whose pull failed is not
    written to; otherwise its waiting outbox rows are sent, retried up to ``PUSH_ATTEMPTS`` times (every
    attempt sends only what is still pending: a batch is never sent twice)."""
    from hub.connectors.base import run_push
    from hub.privacy.refs import safe_reason
    from hub.source_health import failing

    if dry_run:  # nothing reaches the target; the rows stay pending for the next real sync
        from hub.push_preview import preview

        plan = preview(store, target, source)
        return PushOutcome({"dry_run": True, "would_create": plan.create, "would_update": plan.update,
                            "would_remove": plan.remove, "sent": 0, "summary": dg.MetadataValue.md(plan.markdown())})
    failure = failing(store).get(target)
    if failure is not None:  # a system the hub cannot read is not written to: its rows wait in the outbox
        why = f"not pushed: the pull of {target} failed ({failure.error})"
        return PushOutcome({"skipped": why, "dagster/row_count": 0, "sent": 0, "ok": 0, "rejected": 0, "error": 0,
                            "reconciled": 0}, log=[f"push to {target} skipped — {why}"])
    outcome = PushOutcome()
    stats, outcome.error, _ = _attempted(lambda: run_push(resource.connector(), store, target, run_id=run_id),
                                         STEP_RETRY, resource, f"push to {target}", outcome.log.append)
    if stats is None:
        return outcome
    reasons = "\n".join(f"| {safe_reason(r)} | {n} |"
                        for r, n in sorted(stats.reasons.items(), key=lambda x: -x[1])[:10])
    table = (
        "| sent | ok | rejected | error | reconciled | batches |\n|---|---|---|---|---|---|\n"
        f"| {stats.sent} | {stats.ok} | {stats.rejected} | {stats.error} | {stats.reconciled} | {stats.batches} |"
    )
    if reasons:
        table += "\n\n| reason | rows |\n|---|---|\n" + reasons
    outcome.metadata = {
        "dagster/row_count": stats.sent, "sent": stats.sent, "ok": stats.ok, "rejected": stats.rejected,
        "error": stats.error, "reconciled": stats.reconciled, "seconds": round(stats.seconds, 2),
        "summary": dg.MetadataValue.md(table),
    }
    return outcome


RETRAIN_TAG = "hub/retrain"  # "force" on a run: the match_model asset refits whatever the model's age


def build_stage_asset(
    name: str, group: str, deps: list[Any], description: str, run: Callable[[Any], Any], pii: bool = True,
    schema: dg.TableSchema | None = None, own_process: bool = False,
) -> dg.AssetsDefinition:
    """An asset for one store-to-store stage: ``run(store)`` returns the stage's stats (counts + markdown).

    ``own_process``: the stage runs in a forked child with its own connection (``Store.run_apart``)."""
    metadata = {"dagster/column_schema": schema} if schema is not None else None

    @dg.asset(name=name, group_name=GROUPS[group], kinds={"python"}, deps=deps, description=description,
              owners=OWNERS, tags=asset_tags(pii), metadata=metadata, retry_policy=STEP_RETRY)
    def _stage(context: dg.AssetExecutionContext, store: dg.ResourceParam[Any]) -> dg.MaterializeResult:
        hub_store = store.store()
        stats = hub_store.run_apart(run) if own_process else run(hub_store)
        hub_store.refresh_statistics()  # PostgreSQL: the tables this stage changed much, for the stages after it
        return dg.MaterializeResult(metadata=stats_metadata(stats))

    return _stage


# Each stage's entry point, imported when the asset runs (keeps loading the definitions light).


def _stage_records(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.mappings import load_mappings
        from hub.staging import stage_pending

        return stage_pending(store, load_mappings(), config.sources, workers=config.staging.workers)

    return run


def _match(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.golden import match_and_cluster

        return match_and_cluster(store, config.matching, mode="incremental")

    return run


def _golden(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.golden import build_golden

        return build_golden(store, config.survivorship)

    return run


def _review_queue(store: Any) -> Any:
    from hub.stewardship import review_queue_summary

    return review_queue_summary(store)


def _customer_360(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.customer360 import build_360

        return build_360(store, config.segments.as_dict())

    return run


def _caller_lookup_index(store: Any) -> Any:
    from hub.lookup import refresh_lookup_index

    return refresh_lookup_index(store)


def _push_plan(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.push_plan import plan_pushes

        return plan_pushes(store, config.push_plan_config())

    return run


GOLDEN_PII = frozenset({"full_name", "given_name", "family_name", "name_key", "primary_email", "emails",
                        "primary_phone", "phones", "birth_date", "gender", "national_id", "address", "addresses"})


def golden_schema() -> dg.TableSchema:
    from hub.models import GoldenCustomer

    return column_schema(GoldenCustomer, GOLDEN_PII, {
        "golden_id": "Persistent id (G + 9 digits), never reused; retired ids resolve to their survivor",
        "quality_score": "0–1: completeness, validated values, number of sources",
        "lineage": "Per golden value: the source record, rule and time that decided it",
        "record_keys": "The source records (source:id) this golden customer consolidates"})


def customer_360_schema() -> dg.TableSchema:
    from hub.models import Customer360

    return column_schema(Customer360, frozenset({"profile"}), {
        "profile": "The golden customer record (personal data)",
        "rfm": "Recency (days), frequency, monetary with 1–5 quintile scores",
        "value_tier": "platinum / gold / silver / bronze / none (hub.yaml segments.value_tiers)",
        "lifecycle": "prospect / new / active / at_risk / lapsed",
        "consent": "Merged marketing consent per channel: an opt-out anywhere wins"})


def push_targets(config: HubConfig) -> list[str]:
    """The enabled sources that take a push (``HubConfig.push_targets``)."""
    return config.push_targets()


def build_assets(config: HubConfig) -> list[Any]:
    sources = config.enabled_sources
    pull_assets = (build_pull_assets(dict(sources), {n: config.quality.expected_age(n) for n in sources})
                   if sources else None)
    targets = push_targets(config)
    from hub.push_plan import target_configs

    written = {t.name: t.source for t in target_configs(config.push_plan_config())}
    push_assets = build_push_assets({t: sources[t] for t in targets}, written) if targets else None
    push_keys = list(push_assets.keys) if push_assets is not None else []

    staged_records = build_stage_asset(
        "staged_records", "standardise", list(pull_assets.keys) if pull_assets is not None else [],
        "Canonical customer, order, shipment and interaction records: every landed payload that changed "
        "since it was last staged is mapped with its source's declarative mapping (hub/mappings) and "
        "standardised (names incl. Chinese script/pinyin, E.164 phones, e-mails, dates, addresses, ids). "
        "Records failing a required rule go to quarantine with reason codes; nothing is dropped.",
        _stage_records(config),
        own_process=True,
    )
    @dg.asset(name="match_model", group_name=GROUPS["match"], kinds={"python"}, deps=[staged_records],
              owners=OWNERS, tags=asset_tags(pii=False),
              description="The matching model (u, m, term frequencies by value hash, priors per pair of sources), "
              "fitted on all staged customers when there is none, when it is older than hub.yaml "
              "`matching.retrain_days` (7) and on the weekly match_model_weekly schedule; a refit is compared "
              "with the model it replaces (weight, prior and match-rate shift; drift beyond `matching.drift` is "
              "reported). A new model makes the next match run re-score and re-cluster everything; golden ids "
              "of unchanged clusters stay.")
    def match_model(context: dg.AssetExecutionContext, store: dg.ResourceParam[Any]) -> dg.MaterializeResult:
        from hub.golden import train_model

        force = context.run.tags.get(RETRAIN_TAG) == "force"
        follows = "match_pairs" in run_steps(context)
        return dg.MaterializeResult(metadata=stats_metadata(
            train_model(store.store(), config.matching, force, matching_follows=follows)))

    match_pairs = build_stage_asset(
        "match_pairs", "match", [staged_records, match_model],
        "Scored candidate pairs of customer records (Fellegi–Sunter match weights, unsupervised), with "
        "per-field comparison levels and weights as explanation, banded into match / review / non-match. "
        "Incremental: only new and changed records are matched against the existing golden members.",
        _match(config),
        own_process=True,
    )
    golden_customers = build_stage_asset(
        "golden_customers", "golden", [match_pairs],
        "Golden customer records with persistent golden ids, survivorship per field (hub.yaml) and "
        "field-level lineage; the xref maps every source record to its golden id over time, and every "
        "merge / split / retirement is in the golden-id history.",
        _golden(config),
        schema=golden_schema(),
        own_process=True,
    )
    steward_review_queue = build_stage_asset(
        "steward_review_queue", "golden", [match_pairs],
        "The steward review queue: pairs in the review band awaiting a decision "
        "(`hub review list`, `hub review decide PAIR match|no-match`). Decisions always win over the "
        "model on later runs.",
        _review_queue,
        pii=False,
    )
    customer_360 = build_stage_asset(
        "customer_360", "serve", [golden_customers],
        "The 360° view per golden customer: profile (field lineage on the golden record), orders and shipments from every system, "
        "calls matched by E.164 phone, social follows, RFM scores, value tier, lifecycle stage, segment "
        "and consent (the golden record's: per channel the latest explicit statement wins). Only changed rows "
        "are rewritten.",
        _customer_360(config),
        schema=customer_360_schema(),
        own_process=True,
    )
    caller_lookup_index = build_stage_asset(
        "caller_lookup_index", "serve", [customer_360],
        "The caller-lookup index behind `hub serve`: hashed phone (E.164), e-mail and name(+city) keys -> golden "
        "id, derived from the 360 view with the matcher's standardisers. Incremental: only customers whose 360 "
        "row changed are re-keyed; merged, retired and erased golden ids leave the index.",
        _caller_lookup_index,
        pii=False,  # hashed keys and golden ids only
    )
    push_outbox = build_stage_asset(
        "push_outbox", "push", [customer_360],
        "The push outbox: for every target system, the desired golden id / segment / value tier per "
        "target record. Diff-only — a row is queued only when the target does not already hold it.",
        _push_plan(config),
        pii=False,
        own_process=True,
    )

    @dg.asset(
        group_name=GROUPS["privacy"],
        kinds={"python"},
        owners=OWNERS,
        tags=asset_tags(pii=False),
        deps=push_keys,
        retry_policy=STEP_RETRY,
        description=(
            "Retention, enforced every sync (hub.yaml `retention:`): landing and quarantine payloads older than "
            "their period are pruned (keys and hashes stay), old push results and finished outbox rows deleted, "
            "tombstones of deleted records dropped, finished erase_person runs (their config holds what the "
            "operator typed) deleted from Dagster's storage; counts the rows that can hold personal data per "
            "table."
        ),
    )
    def retention(context: dg.AssetExecutionContext, store: dg.ResourceParam[Any]) -> dg.MaterializeResult:
        from hub.privacy.retention import apply_retention

        stats = apply_retention(store.store(), config.retention)
        if config.retention.erase_person_runs:
            stats.erase_runs_deleted = delete_erase_runs(context.instance)
        meta = stats_metadata(stats)
        meta.update({f"rows_{t}": n for t, n in stats.personal_rows.items()})
        return dg.MaterializeResult(metadata=meta)

    @dg.asset(
        group_name=GROUPS["report"],
        kinds={"html"},
        owners=OWNERS,
        tags=asset_tags(pii=False),
        deps=[*push_keys, steward_review_queue, retention],
        retry_policy=STEP_RETRY,
        description=(
            "The data-quality report for operations: every quality dimension (completeness, validity, "
            "uniqueness, consistency, timeliness, steward agreement) scored 0–100 per source against the "
            "thresholds of hub.yaml `quality:`, the history of runs as charts, what this run changed, quarantine "
            "reasons and flags in plain words with a suggested action, matching, the customer base and push "
            "results — a self-contained HTML file (hub.yaml `report.path`) with a JSON twin."
        ),
    )
    def data_quality_report(context: dg.AssetExecutionContext, store: dg.ResourceParam[Any]) -> dg.MaterializeResult:
        from hub.report import write_report
        from hub.source_health import report_failures

        path = Path(config.report.path)
        hub_store = store.store()
        run = run_info(context)
        stats = hub_store.run_apart(lambda own: write_report(own, path, run=run, quality=config.quality,
                                                             derived=derived_prefixes(config.enabled_sources),
                                                             failures=report_failures(own)))
        return dg.MaterializeResult(metadata=report_metadata(stats, path))

    return [*([pull_assets] if pull_assets is not None else []), staged_records, match_model, match_pairs, golden_customers, steward_review_queue, customer_360,
            caller_lookup_index, push_outbox, *([push_assets] if push_assets is not None else []), retention,
            data_quality_report]


def delete_erase_runs(instance: dg.DagsterInstance) -> int:
    """Finished erase_person runs leave Dagster's run and event storage: their config is the selector."""
    done = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="erase_person", statuses=done))
    for run in runs:
        instance.delete_run(run.run_id)
    return len(runs)


class ErasureRequest(dg.Config):
    """Who to erase: exactly one of golden_id, phone, email, record (SOURCE:ID). Dagster keeps a run's config:
    prefer a golden id here (``hub export golden``) over a phone or e-mail address."""

    golden_id: str = ""
    phone: str = ""
    email: str = ""
    record: str = ""
    dry_run: bool = True  # the default run only shows what would be erased
    reason: str = ""


def build_erasure_job(hub_config: HubConfig) -> dg.JobDefinition:
    """``erase_person``: ``hub erase`` from the Dagster UI (Launchpad config). The erasure rows it queues are
    sent by the next full_sync's push step, like every other push."""

    @dg.op(name="erase_person_op", required_resource_keys={"store"}, tags={"kind": "privacy"})
    def erase_person(context: dg.OpExecutionContext, config: ErasureRequest) -> dg.Output[dict]:
        """Find every record of the person, erase their personal data from the hub, put them on the
        suppression list and queue the erasure for every target system (dry run by default)."""
        from hub.privacy.erasure import ErasureInputError, Selector, context_from_config, erase
        from hub.privacy.suppression import SuppressionError

        request = config
        given = [(k, v) for k, v in (("golden_id", request.golden_id), ("phone", request.phone),
                                     ("email", request.email), ("record", request.record)) if v]
        if len(given) != 1:
            raise dg.Failure("give exactly one of golden_id, phone, email, record")
        try:
            result = erase(context.resources.store.store(), Selector(*given[0]), reason=request.reason or None,
                           dry_run=request.dry_run, **context_from_config(hub_config))
        except (ErasureInputError, SuppressionError) as exc:
            raise dg.Failure(description=str(exc)) from None
        plan = result.plan
        return dg.Output(
            {"erasure_id": result.erasure_id, "queued": result.queued},
            metadata={"erasure_id": result.erasure_id or "(dry run)", "dry_run": result.dry_run,
                      "golden_ids": len(plan.person.golden_ids), "records": len(plan.person.record_keys),
                      "hub_rows": sum(plan.hub.values()), "system_records": sum(plan.systems.values()),
                      "queued_for_targets": result.queued, "plan": dg.MetadataValue.md(f"```\n{plan.render()}\n```")},
        )

    @dg.job(name="erase_person", description="Erase a person (right to be forgotten) from the hub and queue the "
            "erasure for every connected system; run it with dry_run: false after checking the preview.")
    def _job() -> None:
        erase_person()

    return _job


@dataclasses.dataclass(frozen=True)
class StoreCheck:
    """A check whose logic is ``run(store) -> hub.checks.CheckOutcome``; a blocking one fails with ERROR."""

    name: str
    asset: str
    blocking: bool
    description: str
    run: Callable[[Any], Any]


def _check_result(name: str, asset: str, outcome: Any, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    """A ``hub.checks.CheckOutcome`` as Dagster's result: its figures, why it failed and a summary."""
    why = {"why": dg.MetadataValue.text(" ".join(outcome.problems))} if outcome.problems else {}
    return dg.AssetCheckResult(
        check_name=name, asset_key=dg.AssetKey(asset), passed=outcome.passed, severity=severity,
        metadata={**why, **outcome.metadata, "summary": dg.MetadataValue.md(outcome.markdown())},
    )


def _store_check_result(check: StoreCheck, outcome: Any) -> dg.AssetCheckResult:
    severity = dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN
    return _check_result(check.name, check.asset, outcome, severity)


def build_check(check: StoreCheck, on_stop: Callable[[Any, Any, list[str]], None] | None = None
                ) -> dg.AssetChecksDefinition:
    """One ``StoreCheck`` as its own op; when a blocking one stops the run, ``on_stop(context, store,
    problems)`` says why (the report)."""

    @dg.asset_check(name=check.name, asset=check.asset, blocking=check.blocking, description=check.description)
    def _check(context: dg.AssetCheckExecutionContext, store: dg.ResourceParam[Any]) -> dg.AssetCheckResult:
        hub_store = store.store()
        # in a child: what a check reads leaves with it
        outcome = hub_store.run_apart(check.run)
        if check.blocking and not outcome.passed and on_stop is not None:
            on_stop(context, hub_store, outcome.problems)
        return _store_check_result(check, outcome)

    return _check


QUALITY_CHECKS_OP = "quality_checks"  # the op of the golden layer's blocking checks and the dimension checks


def build_quality_checks(config: HubConfig, golden: list[StoreCheck],
                         on_stop: Callable[[Any, Any, list[str]], None]) -> dg.AssetChecksDefinition:
    """The golden layer's blocking checks and every quality dimension per source (scored once per run), in one
    op, each its own check in the UI. They are independent and each is one process's work (the brake in
    Python, the consistency checks in the database, the dimensions in two processes): run side by side
    (``hub.checks.run_checks_apart``), not one after another with a core idle (100k people: 1.6 + 0.7 + 2.7 s
    in turn). When a blocking check fails, ``on_stop(context, store, problems)`` says why (the report) once,
    with every failing check's problems."""
    from hub import checks

    sources = list(config.enabled_sources)
    prefixes = derived_prefixes(config.enabled_sources)
    wanted = checks.dimension_checks(sources, customer_sources(config.enabled_sources))
    # every dimension waits for the golden layer and the review queue (uniqueness and consistency read them)
    after = ("golden_customers", "steward_review_queue")
    specs = [dg.AssetCheckSpec(c.name, asset=c.asset, blocking=c.blocking, description=c.description)
             for c in golden]
    specs += [dg.AssetCheckSpec(c.name, asset=c.asset, description=c.description,
                                additional_deps=[a for a in after if a != c.asset]) for c in wanted]

    # can_subset: `hub sync --source X` runs only X's pull, so the other sources' freshness checks stay out
    @dg.multi_asset_check(specs=specs, name=QUALITY_CHECKS_OP, can_subset=True,
                          description="The golden layer's blocking checks (merge/split brake, consistency, id "
                          "uniqueness: when one fails, no push runs and the report says why) and every quality "
                          "dimension per source (hub/quality/dimensions.py), run side by side.")
    def quality_checks(context: dg.AssetCheckExecutionContext, store: dg.ResourceParam[Any]) -> Any:
        from hub.checks import run_checks_apart
        from hub.quality import score_dimensions

        selected = context.selected_asset_check_keys

        def chosen(items: list[Any]) -> list[Any]:
            return [c for c in items if dg.AssetCheckKey(dg.AssetKey(c.asset), c.name) in selected]

        blocking, dimension = chosen(golden), chosen(wanted)
        # the dimensions of the selected checks only (materialising the golden layer alone selects one)
        only = {c.dimension for c in dimension}
        runs: list[Callable[[Any], Any]] = [c.run for c in blocking]
        # the dimensions' scoring second: the two longest (the brake, the dimensions) start first
        scoring = min(1, len(runs))
        if dimension:
            runs.insert(scoring, lambda own: score_dimensions(own, config.quality, derived=prefixes, only=only))
        hub_store = store.store()
        results = run_checks_apart(hub_store, runs)
        dims = results.pop(scoring) if dimension else None
        stopped = [p for c, o in zip(blocking, results, strict=True) if c.blocking and not o.passed
                   for p in o.problems]
        if stopped:
            on_stop(context, hub_store, stopped)
        for c, outcome in zip(blocking, results, strict=True):
            yield _store_check_result(c, outcome)
        for c in dimension:
            outcome, severity = checks.dimension_outcome(c, dims)
            yield _check_result(c.name, c.asset, outcome, dg.AssetCheckSeverity[severity])

    return quality_checks


def customer_sources(sources: dict[str, SourceConfig]) -> list[str]:
    """Sources whose mapping produces customer records (a call center only produces calls)."""
    from hub.mappings import load_mappings

    mappers = load_mappings()
    out = []
    for name, src in sources.items():
        mapper = mappers.get(src.mapping_name)
        if mapper is None or any(t.entity == "customers" for ts in mapper.targets.values() for t in ts):
            out.append(name)
    return out


def _report_stop(config: HubConfig) -> Callable[[Any, Any, list[str]], None]:
    """A blocking check stopped the run before the report asset: write the report now, saying why."""

    def stop(context: Any, store: Any, problems: list[str]) -> None:
        from hub.report import write_report
        from hub.source_health import report_failures

        path = Path(config.report.path)
        stats = write_report(store, path, run=run_info(context), quality=config.quality,
                             derived=derived_prefixes(config.enabled_sources), stopped=problems,
                             failures=report_failures(store))
        context.log.warning("pushes stopped; report written to %s", stats.path)

    return stop


def build_checks(config: HubConfig) -> list[dg.AssetChecksDefinition]:
    from hub import checks
    from hub.push_plan import target_configs

    may_create = frozenset(t.name for t in target_configs(config.push_plan_config()) if t.create_missing)
    stop = _report_stop(config)
    golden = [
        StoreCheck(
            "merge_split_brake", "golden_customers", True,
            "The brake before any push: stops the run and waits for a person when, since the last accepted "
            "sync, more golden customers were merged or split than hub.yaml quality.brake allows, or when "
            "records were consolidated without any agreeing e-mail, phone, national id or name + birth date "
            "(a first sync that folds distinct parties together). Release: `hub quality release --by NAME`.",
            lambda store: checks.brake_outcome(store, config.quality),
        ),
        StoreCheck(
            "golden_customers_consistent", "golden_customers", True,
            "Blocks every push when the golden layer is inconsistent: each staged customer record must map to "
            "exactly one active golden id in the xref, and no golden record may contain records with two "
            "different valid national ids.",
            checks.golden_consistency,
        ),
        StoreCheck(
            "golden_ids_unique", "golden_customers", True,
            "Golden-id uniqueness: a source record belongs to one golden id at a time, and every retired golden "
            "id leads to an active one (ids handed to other systems keep resolving).",
            checks.golden_ids_unique,
        ),
    ]
    outbox = StoreCheck(
        "push_outbox_targets_known", "push_outbox", True,
        "Blocks the push when an outbox row targets no record and the target may not create one.",
        lambda store: checks.outbox_targets(store, may_create),
    )
    return [
        build_quality_checks(config, golden, on_stop=stop),
        build_check(StoreCheck(
            "quarantine_rate_acceptable", "staged_records", False,
            "Warns when more than 10 % of a source's customer records went to quarantine in this store.",
            lambda store: checks.quarantine_rate(store, max_rate=0.10),
        )),
        build_check(outbox, on_stop=stop),
    ]
