"""The hub as Dagster assets. This module only wires stages; every stage's logic lives in its own module.

Flow (groups in brackets):
  raw_<source> [pull] → staged_records [standardise] → match_pairs [match] → golden_customers [golden]
  (+ steward_review_queue) → customer_360 [serve] → push_outbox [push] → push_<target> [push]
  → data_quality_report [report]

Stages persist in the hub store (see hub/store.py) rather than passing frames between assets, so every step
is incremental across runs and the store can be PostgreSQL in production.
"""


import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from hub.config import HubConfig, SourceConfig

KIND_LABEL = {
    "sql_erp": "sql",
    "tryton": "tryton",
    "woocommerce": "woocommerce",
    "wechat": "wechat",
    "asterisk_cdr": "asterisk",
}


def stats_metadata(stats: Any) -> dict[str, Any]:
    """Numbers of a stage's stats dataclass as plottable metadata, plus its markdown summary."""
    meta: dict[str, Any] = {}
    names = [f.name for f in dataclasses.fields(stats)] if dataclasses.is_dataclass(stats) else []
    names += [n for n, v in vars(type(stats)).items() if isinstance(v, property)]
    for name in names:
        value = getattr(stats, name)
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


def build_pull_asset(name: str, src: SourceConfig) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{name}",
        group_name="pull",
        kinds={KIND_LABEL[src.kind]},
        required_resource_keys={"store", f"source_{name}"},
        description=(
            f"Raw {src.kind} payloads of source `{name}` landed in the hub store (landing table). Pulls are "
            "incremental from the stored cursor; each page and its cursor commit together, so an interrupted "
            "pull resumes where it stopped. Unchanged records (same payload hash) are not re-landed."
        ),
    )
    def _pull(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from hub.connectors.base import run_pull

        store = context.resources.store.store()
        connector = getattr(context.resources, f"source_{name}").connector()
        results = [run_pull(connector, store, entity) for entity in connector.entities]
        landed = store.landing_counts()
        total = sum(n for (s, _), n in landed.items() if s == name)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": total,
                "new": sum(r.new for r in results),
                "changed": sum(r.changed for r in results),
                "unchanged": sum(r.unchanged for r in results),
                "pages": sum(r.pages for r in results),
                "seconds": round(sum(r.seconds for r in results), 2),
                "summary": dg.MetadataValue.md(pull_table(results)),
            }
        )

    return _pull


def build_push_asset(target: str, src: SourceConfig) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"push_{target}",
        group_name="push",
        kinds={KIND_LABEL[src.kind]},
        deps=["push_outbox"],
        required_resource_keys={"store", f"source_{target}"},
        description=(
            f"Writes golden ids and segments back to `{target}`: sends the pending outbox rows of this target "
            "(diff-only — only records whose desired state changed) and logs every row's result "
            "(ok / rejected + reason / error). Errored rows stay pending and are retried next run; an ok row "
            "is never sent twice."
        ),
    )
    def _push(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        from hub.connectors.base import run_push

        store = context.resources.store.store()
        connector = getattr(context.resources, f"source_{target}").connector()
        stats = run_push(connector, store, target)
        reasons = "\n".join(f"| {r} | {n} |" for r, n in sorted(stats.reasons.items(), key=lambda x: -x[1])[:10])
        table = (
            "| sent | ok | rejected | error | batches |\n|---|---|---|---|---|\n"
            f"| {stats.sent} | {stats.ok} | {stats.rejected} | {stats.error} | {stats.batches} |"
        )
        if reasons:
            table += "\n\n| reason | rows |\n|---|---|\n" + reasons
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": stats.sent,
                "sent": stats.sent,
                "ok": stats.ok,
                "rejected": stats.rejected,
                "error": stats.error,
                "seconds": round(stats.seconds, 2),
                "summary": dg.MetadataValue.md(table),
            }
        )

    return _push


def build_stage_asset(
    name: str, group: str, deps: list[Any], description: str, run: Callable[[Any], Any]
) -> dg.AssetsDefinition:
    """An asset for one store-to-store stage: ``run(store)`` returns the stage's stats (counts + markdown)."""

    @dg.asset(name=name, group_name=group, kinds={"python"}, deps=deps, description=description)
    def _stage(context: dg.AssetExecutionContext, store: dg.ResourceParam[Any]) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=stats_metadata(run(store.store())))

    return _stage


# Each stage's entry point, imported when the asset runs (keeps loading the definitions light).


def _stage_records(config: HubConfig) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.mappings import load_mappings
        from hub.staging import stage_pending

        return stage_pending(store, load_mappings(), config.sources)

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

        return build_360(store, config.segments)

    return run


def _push_plan(config: HubConfig, targets: list[str]) -> Callable[[Any], Any]:
    def run(store: Any) -> Any:
        from hub.push_plan import plan_pushes

        return plan_pushes(store, {**config.push, "targets": targets})

    return run


def build_assets(config: HubConfig) -> list[Any]:
    sources = config.enabled_sources
    pull_assets = [build_pull_asset(name, src) for name, src in sources.items()]
    targets = [t for t in config.push.get("targets", list(sources)) if t in sources and sources[t].push]
    push_assets = [build_push_asset(t, sources[t]) for t in targets]

    staged_records = build_stage_asset(
        "staged_records", "standardise", [a.key for a in pull_assets],
        "Canonical customer, order, shipment and interaction records: every landed payload that changed "
        "since it was last staged is mapped with its source's declarative mapping (hub/mappings) and "
        "standardised (names incl. Chinese script/pinyin, E.164 phones, e-mails, dates, addresses, ids). "
        "Records failing a required rule go to quarantine with reason codes; nothing is dropped.",
        _stage_records(config),
    )
    match_pairs = build_stage_asset(
        "match_pairs", "match", [staged_records],
        "Scored candidate pairs of customer records (Fellegi–Sunter match weights, unsupervised), with "
        "per-field comparison levels and weights as explanation, banded into match / review / non-match. "
        "Incremental: only new and changed records are matched against the existing golden members.",
        _match(config),
    )
    golden_customers = build_stage_asset(
        "golden_customers", "golden", [match_pairs],
        "Golden customer records with persistent golden ids, survivorship per field (hub.yaml) and "
        "field-level lineage; the xref maps every source record to its golden id over time, and every "
        "merge / split / retirement is in the golden-id history.",
        _golden(config),
    )
    steward_review_queue = build_stage_asset(
        "steward_review_queue", "golden", [match_pairs],
        "The steward review queue: pairs in the review band awaiting a decision "
        "(`hub review list`, `hub review decide PAIR match|no-match`). Decisions always win over the "
        "model on later runs.",
        _review_queue,
    )
    customer_360 = build_stage_asset(
        "customer_360", "serve", [golden_customers],
        "The 360° view per golden customer: profile with lineage, orders and shipments from every system, "
        "calls matched by E.164 phone, social follows, RFM scores, value tier, lifecycle stage, segment "
        "and merged consent. Only changed rows are rewritten.",
        _customer_360(config),
    )
    push_outbox = build_stage_asset(
        "push_outbox", "push", [customer_360],
        "The push outbox: for every target system, the desired golden id / segment / value tier per "
        "target record. Diff-only — a row is queued only when the target does not already hold it.",
        _push_plan(config, targets),
    )

    @dg.asset(
        group_name="report",
        kinds={"html"},
        deps=[*(a.key for a in push_assets), steward_review_queue],
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

        path = Path(config.report.get("path", ".hub/reports/data_quality.html"))
        stats = write_report(store.store(), path, run=run_info(context), quality=config.quality,
                             derived=derived_prefixes(config.enabled_sources))
        return dg.MaterializeResult(metadata=report_metadata(stats, path))

    return [*pull_assets, staged_records, match_pairs, golden_customers, steward_review_queue, customer_360,
            push_outbox, *push_assets, data_quality_report]


def build_check(
    name: str, asset: str, blocking: bool, description: str, run: Callable[[Any], Any]
) -> dg.AssetChecksDefinition:
    """A check whose logic is ``run(store) -> hub.checks.CheckOutcome``; blocking checks fail with ERROR."""

    @dg.asset_check(name=name, asset=asset, blocking=blocking, description=description)
    def _check(store: dg.ResourceParam[Any]) -> dg.AssetCheckResult:
        outcome = run(store.store())
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
            metadata={**outcome.metadata, "summary": dg.MetadataValue.md(outcome.markdown())},
        )

    return _check


def build_checks(config: HubConfig) -> list[dg.AssetChecksDefinition]:
    from hub import checks

    may_create = frozenset(
        name for name, opts in config.push.items() if isinstance(opts, dict) and opts.get("create_missing")
    )
    return [
        build_check(
            "golden_customers_consistent", "golden_customers", True,
            "Blocks every push when the golden layer is inconsistent: each staged customer record must map to "
            "exactly one active golden id in the xref, and no golden record may contain records with two "
            "different valid national ids.",
            checks.golden_consistency,
        ),
        build_check(
            "quarantine_rate_acceptable", "staged_records", False,
            "Warns when more than 10 % of a source's customer records went to quarantine in this store.",
            lambda store: checks.quarantine_rate(store, max_rate=0.10),
        ),
        build_check(
            "push_outbox_targets_known", "push_outbox", True,
            "Blocks the push when an outbox row targets no record and the target may not create one.",
            lambda store: checks.outbox_targets(store, may_create),
        ),
    ]
