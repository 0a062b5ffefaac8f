"""`hub sync`: the whole flow against the systems named in ``hub.yaml``, on the Dagster instance in
``DAGSTER_HOME`` (default ``.hub/dagster``), so every run shows in the UI next to scheduled and sensor runs.

It executes the same ``full_sync`` job the UI, the schedule and the sensor run, in this process; ``hub demo``
starts the sandbox and then calls ``sync`` too (one path). Options become run config of that job:

- ``--source NAME`` selects only those pull assets plus everything downstream of any pull (not the other pulls);
- ``--full`` sets ``full: true`` on the pull assets: the stored cursor is ignored and every record re-read;
- ``--dry-run`` sets ``dry_run: true`` on the push assets: they preview instead of sending and leave the
  outbox pending, so the next real sync sends exactly those rows (the UI job ``full_sync_dry_run`` does the same).

While the run goes, ``Progress`` follows the run's event log (what the UI shows) and writes one line per step
started / finished with its counts to stderr, and a bar for pulls whose total is known. Only counts and names of
steps: never a record's content. Exit codes: 0 every step succeeded, 1 some step failed (what was committed
stays), 2 configuration error (one message naming the key), 3 another sync holds the store (``--no-wait``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from hub.config import ConfigError, HubConfig, load_config
from hub.connectors.base import PROGRESS_RE, redact_text  # a URL's query string may hold a token

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
HUB_HOME = Path(".hub")  # the working folder's hub files: store, Dagster instance, reports, sandbox
JOB = "full_sync"

# per step, the metadata counts worth a progress line (never anything else of the metadata)
STEP_COUNTS: dict[str, tuple[str, ...]] = {
    "raw_": ("new", "changed", "unchanged", "deleted_at_source"),
    "push_": ("sent", "ok", "rejected", "error", "would_create", "would_update", "would_remove"),
    "staged_records": ("staged", "quarantined", "retired"),
    "golden_customers": ("active", "created", "merged", "split"),
}


@dataclass
class SyncPlan:
    """What one sync runs: the job's asset selection (None: all of it) and its run config."""

    sources: list[str]
    targets: list[str]
    selection: list[Any] | None
    run_config: dict[str, Any] = field(default_factory=dict)


def check_environment(config: HubConfig, sources: Iterable[str]) -> None:
    """Every ``*_env`` variable an enabled source names must be set: a missing one is a configuration error
    naming the variable and the key, raised before anything runs (never its value)."""
    for name in sources:
        src = config.sources[name]
        for key in ("url_env", "key_env", "secret_env", "user_env", "password_env", "database_env", "dir_env"):
            var = getattr(src, key)
            if var and not os.environ.get(var):
                raise ConfigError(f"sources.{name}.{key}: the environment variable {var} is not set")


def plan_sync(config: HubConfig, sources: Sequence[str] = (), *, full: bool = False, dry_run: bool = False,
              job: Any = None) -> SyncPlan:
    """The selection and run config for ``hub sync`` options (ConfigError on an unknown source)."""
    import dagster as dg

    enabled = list(config.enabled_sources)
    unknown = [s for s in sources if s not in enabled]
    if unknown:
        known = ", ".join(enabled) or "none"
        raise ConfigError(f"--source {unknown[0]}: no enabled source of that name in hub.yaml (sources: {known})")
    pulled = list(dict.fromkeys(sources)) or enabled
    targets = config.push_targets()
    selection = None
    if sources and job is not None:
        graph = job.asset_layer.asset_graph
        keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
        pulls = {dg.AssetKey(f"raw_{s}") for s in enabled}
        wanted = {dg.AssetKey(f"raw_{s}") for s in pulled}
        downstream = set().union(*(graph.get_downstream_asset_keys(k) if hasattr(graph, "get_downstream_asset_keys")
                                   else _downstream(graph, k) for k in pulls))
        selection = sorted((wanted | (downstream - pulls)) & keys, key=lambda k: k.to_user_string())
    ops: dict[str, Any] = {}
    from hub.assets import PULL_STEP, PUSH_STEP

    if full and pulled:
        ops[PULL_STEP] = {"config": {"full": True}}
    if dry_run and targets:
        ops[PUSH_STEP] = {"config": {"dry_run": True}}
    return SyncPlan(sources=pulled, targets=targets, selection=selection, run_config={"ops": ops} if ops else {})


def _downstream(graph: Any, key: Any) -> set[Any]:
    out: set[Any] = set()
    todo = [key]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def prepare_dagster_home(home: Path = HUB_HOME, dagster_home: Path | None = None) -> Path:
    """Dagster's instance folder (``dagster_home``, default ``home/dagster``) with the hub's dagster.yaml (run
    queue, run monitoring, storage: hub/instance.py); ``DAGSTER_HOME`` points at it."""
    from hub.instance import prepare_dagster_home as prepare

    return prepare(home, dagster_home)


def dagster_home() -> Path:
    """``DAGSTER_HOME`` when set, else ``.hub/dagster``; created with the hub's instance config if missing."""
    given = os.environ.get("DAGSTER_HOME")
    if given:
        return prepare_dagster_home(dagster_home=Path(given))
    return prepare_dagster_home()


# --------------------------------------------------------------------------------------------------------------
# Live progress


class Progress:
    """Listens to a run's events as the instance stores them (``add_event_listener``: called in the process
    that runs the steps, right after each event is written) and writes what happens to ``out`` (stderr): step
    started / finished with counts from its metadata, and a bar for pulls whose total is known. It never reads
    the event storage itself: a reader would, at DEBUG with managed SQLAlchemy loggers, log its own queries
    into the run it follows, for ever."""

    def __init__(self, instance: Any, run_id: str, out: TextIO = sys.stderr) -> None:
        self.instance, self.run_id, self.out = instance, run_id, out
        self._started: dict[str, float] = {}
        self._bars: dict[str, Any] = {}
        self._lock = threading.Lock()  # steps may run in threads: one line at a time

    def __enter__(self) -> Progress:
        self.instance.add_event_listener(self.run_id, self._on_event)
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def _on_event(self, entry: Any) -> None:
        try:
            with self._lock:
                self.show(entry)
        except Exception:  # noqa: BLE001 - progress is a courtesy: never let it break the run
            pass

    def write(self, line: str) -> None:
        if self._bars:
            from tqdm import tqdm

            tqdm.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def show(self, entry: Any) -> None:
        event = entry.dagster_event
        if event is None:  # a log line: only the pull progress lines are shown
            m = PROGRESS_RE.match(entry.user_message or "")
            if m:
                self._bar(m["step"], m["entity"], int(m["done"]), int(m["total"]) if m["total"] else None)
            return
        step, kind = event.step_key, event.event_type_value
        if kind == "STEP_START":
            self._started[step] = time.perf_counter()
            self.write(f"  ▶ {step} started")
        elif kind == "ASSET_MATERIALIZATION":
            mat = event.event_specific_data.materialization
            self._close_bars(mat.asset_key.to_user_string())
            meta = {k: v.value for k, v in mat.metadata.items()}
            if isinstance(meta.get("pull_failed"), str):  # a source isolated after its retries (hub.assets)
                kind, sep, text = meta["pull_failed"].partition(": ")
                shown = text if sep and kind.isidentifier() else meta["pull_failed"]
                self.write(f"  ✗ {mat.asset_key.to_user_string()} FAILED ({redact_text(shown)}; the other sources go "
                           f"on; details in the UI / event log of run {self.run_id[:8]})")
            counts = step_counts(mat.asset_key.to_user_string(), meta)
            if counts:
                self.write(f"    {mat.asset_key.to_user_string()}: {counts}")
        elif kind == "STEP_SUCCESS":
            took = time.perf_counter() - self._started.get(step, time.perf_counter())
            self.write(f"  ✓ {step} finished in {took:.1f} s")
        elif kind == "STEP_FAILURE":
            error = event.step_failure_data.error if event.step_failure_data else None
            what = failure_text(error)
            self._close_bars(step)
            self.write(f"  ✗ {step} FAILED ({what}; details in the UI / event log of run {self.run_id[:8]})")
        elif kind == "STEP_UP_FOR_RETRY":
            self.write(f"  ↻ {step} failed, retrying")
        elif kind == "STEP_SKIPPED":
            self.write(f"  – {step} skipped")
        elif kind == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            if not ev.passed:
                self.write(f"  ! check {ev.check_name} on {ev.asset_key.to_user_string()} did not pass")

    def _bar(self, step: str, entity: str, done: int, total: int | None) -> None:
        key = f"{step}/{entity}"
        if total is None:
            if key not in self._bars:
                self.write(f"    {key}: {done} records")
            return
        from tqdm import tqdm

        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = tqdm(total=total, desc=f"    {key}", unit=" rec", file=self.out,
                                         leave=True, dynamic_ncols=True, mininterval=0.5)
        bar.total = max(total, done)
        bar.update(done - bar.n)

    def _close_bars(self, step: str) -> None:
        for key in [k for k in self._bars if k.split("/")[0] == step]:
            self._bars.pop(key).close()


# errors written to be shown: the source, its host and what happened — never a secret, a URL query or a record
SHOWN_ERRORS = frozenset({"SourceUnavailable", "SourceAuthError", "TrytonAuthError"})


def failure_text(error: Any) -> str:
    """What a failed step's line says: a connector's own message for the errors above (the innermost cause:
    Dagster wraps it), else only the error's class name (other messages may quote personal data)."""
    if error is None:
        return "error"
    inner = error
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    if inner.cls_name in SHOWN_ERRORS:
        message = (inner.message or "").strip()
        kind, sep, text = message.partition(": ")  # "hub.connectors.base.SourceUnavailable: tryton: ..."
        return (text if sep and kind.endswith(inner.cls_name) else message) or inner.cls_name
    return error.cls_name


def step_counts(asset: str, meta: dict[str, Any]) -> str:
    """``new 12, changed 3, unchanged 980`` for the asset's count fields (numbers only)."""
    fields = next((v for k, v in STEP_COUNTS.items() if asset.startswith(k)), None)
    if fields is None:
        fields = ("dagster/row_count",)
    shown = [(f.replace("dagster/", "").replace("_", " "), meta[f]) for f in fields
             if isinstance(meta.get(f), int | float) and not isinstance(meta.get(f), bool)]
    return ", ".join(f"{name} {value}" for name, value in shown)


# --------------------------------------------------------------------------------------------------------------
# The sync


def run_job(plan: SyncPlan, *, trigger: str, progress: TextIO | None = sys.stderr, no_wait: bool = False) -> Any:
    """Execute ``full_sync`` (the plan's subset) in this process on the instance in ``DAGSTER_HOME``, holding
    the store's sync lock (hub/sync_lock.py) from before the run starts: a sync already running is waited for
    (said on ``progress``), or with ``no_wait`` ``SyncBusy`` is raised naming it."""
    import dagster as dg

    from hub.definitions import defs
    from hub.store import Store
    from hub.sync_lock import hold

    job = defs.resolve_job_def(JOB)
    # the progress lines say what happens and why a step failed; Dagster's own console log (stack traces)
    # only when asked: HUB_LOG_LEVEL=WARNING / DEBUG (everything, the hub's own logs included). The full event
    # log is in the instance (hub ui)
    level = os.environ.get("HUB_LOG_LEVEL", "CRITICAL" if progress is not None else "WARNING").upper()
    if level not in ("WARNING", "CRITICAL"):
        import logging

        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    run_config = {**plan.run_config, "loggers": {"console": {"config": {"log_level": level}}}}
    run_id = str(uuid.uuid4())
    store = Store()

    def say(message: str) -> None:
        print(f"{trigger}: {message}", file=progress or sys.stderr, flush=True)

    with dg.DagsterInstance.get() as instance, hold(store, run_id, job=JOB, wait=not no_wait, say=say,
                                                    instance=instance):
        follow = Progress(instance, run_id, progress) if progress is not None else None
        if follow is not None:
            follow.__enter__()
        try:
            return job.execute_in_process(instance=instance, raise_on_error=False, run_config=run_config,
                                          asset_selection=plan.selection, run_id=run_id,
                                          tags={"hub/trigger": trigger})
        finally:
            if follow is not None:
                follow.__exit__(None, None, None)
            store.dispose()


def sync(*, dry_run: bool = False, sources: Sequence[str] = (), full: bool = False, no_wait: bool = False,
         trigger: str = "hub sync", out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Run the whole flow once against the systems in hub.yaml; returns the exit code (see module doc).

    ``no_wait``: when another sync holds the store, exit 3 instead of waiting (the store lock decides)."""
    started = time.perf_counter()
    try:
        config = load_config()
        from hub.definitions import defs

        plan = plan_sync(config, sources, full=full, dry_run=dry_run, job=defs.resolve_job_def(JOB))
        check_environment(config, plan.sources + [t for t in plan.targets if t in config.enabled_sources])
    except ConfigError as exc:
        print(f"{trigger}: configuration error: {exc}", file=err)
        return EXIT_CONFIG
    dagster_home()
    what = ", ".join(plan.sources)
    print(f"{trigger}: pulling {what}{' (full re-read)' if full else ''}"
          f"{' — dry run, nothing is sent' if dry_run else ''}; Dagster instance {os.environ['DAGSTER_HOME']}",
          file=err, flush=True)
    from hub.sync_lock import SyncBusy

    try:
        result = run_job(plan, trigger=trigger, progress=err, no_wait=no_wait)
    except SyncBusy as busy:
        print(f"{trigger}: {busy} (--no-wait)", file=err)
        return EXIT_LOCKED
    text = summarise(result, title=trigger)
    if dry_run:
        text += "\n\n" + dry_run_text(plan.targets, config)
    print(text, file=out)
    print(f"\nfinished in {time.perf_counter() - started:.1f} s", file=out)
    # a source isolated after its retries leaves a run whose steps all succeeded: still partial (exit 1)
    return EXIT_OK if result.success and not run_partial(result) else EXIT_FAILED


def _materializations(result: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def summarise(result: Any, store_url: str | None = None, title: str = "hub demo") -> str:
    """The end summary of a sync (``hub sync`` / ``hub demo``): counts per stage, never a record's content."""
    from hub.store import Store, golden_customer, golden_id_history, quarantine

    mats = _materializations(result)
    lines = [f"{title} — run {result.run_id[:8]} {'succeeded' if result.success else 'FAILED'}", ""]
    lines.append("Pulled (new / changed / unchanged):")
    for key, meta in sorted(mats.items()):
        if key.startswith("raw_"):
            lines.append(
                f"  {key[4:]:<12} {meta.get('new', 0):>7} / {meta.get('changed', 0):>5} / "
                f"{meta.get('unchanged', 0):>7}" + ("   FAILED (see below)" if meta.get("pull_failed") else "")
            )
    store = Store(store_url)
    from hub.source_health import failing

    isolated = failing(store)
    with store.engine.connect() as conn:
        reasons: Counter[str] = Counter()
        held = 0
        for (codes,) in conn.execute(sa.select(quarantine.c.reasons)):
            held += 1
            reasons.update(codes or [])
        active = conn.execute(
            sa.select(sa.func.count()).select_from(golden_customer).where(golden_customer.c.status == "active")
        ).scalar_one()
        merges = conn.execute(
            sa.select(sa.func.count()).select_from(golden_id_history).where(golden_id_history.c.event == "merged")
        ).scalar_one()
    store.dispose()
    staged = mats.get("staged_records", {})
    lines.append("")
    lines.append(
        f"Staged: {staged.get('staged', staged.get('dagster/row_count', 0))} this run; "
        f"quarantined in store: {held}"
        + (f" (top reasons: {', '.join(f'{r} ×{n}' for r, n in reasons.most_common(3))})" if reasons else "")
    )
    suppressed = staged.get("suppressed", 0) + sum(m.get("suppressed", 0) for k, m in mats.items()
                                                   if k.startswith("raw_"))
    deleted = sum(m.get("deleted_at_source", 0) + m.get("deactivated_at_source", 0) for k, m in mats.items()
                  if k.startswith("raw_"))
    lines.append(f"Privacy: {deleted} records deleted or deactivated at their sources this run "
                 f"(retired: {staged.get('retired', 0)}); {suppressed} records of erased people suppressed")
    golden_meta = mats.get("golden_customers", {})
    lines.append(
        f"Golden customers: {active} active; merges this run: {golden_meta.get('merged', 0)}; "
        f"merges ever: {merges}"
    )
    from hub.quality.summary import brake_lines, explain_golden

    explained_store = Store(store_url)
    lines.extend(f"  {line}" for line in explain_golden(explained_store))
    stopped = brake_lines(explained_store)
    explained_store.dispose()
    lines.append("Pushed (sent: ok / rejected / error):")
    for key, meta in sorted(mats.items()):
        if key.startswith("push_") and key != "push_outbox" and meta.get("dry_run"):
            lines.append(f"  {key[5:]:<12} {0:>6}: dry run — would create {meta.get('would_create', 0)}, "
                         f"update {meta.get('would_update', 0)}, remove {meta.get('would_remove', 0)}")
        elif key.startswith("push_") and key != "push_outbox":
            lines.append(
                f"  {key[5:]:<12} {meta.get('sent', 0):>6}: {meta.get('ok', 0)} / {meta.get('rejected', 0)} / "
                f"{meta.get('error', 0)}"
            )
    report = mats.get("data_quality_report", {}).get("report")
    if report is None:  # a blocking check stopped the run: the report was written when it stopped
        from hub.config import load_config

        report = Path(load_config().report.path).resolve()
    lines.append(f"Data-quality report: {report}")
    lines.extend(stopped)
    for source, failure in isolated.items():
        lines.append(f"FAILED source {source}: {failure.describe()}")
    failed = [
        e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ]
    if failed:
        lines.append(f"FAILED steps: {', '.join(failed)}")
    return "\n".join(lines)


def run_partial(result: Any, store_url: str | None = None) -> bool:
    """The run finished, but a source failed its pull in it (isolated: the rest went on) — exit 1."""
    from hub.source_health import failed_in_run
    from hub.store import Store

    store = Store(store_url)
    try:
        return bool(failed_in_run(store, result.run_id))
    finally:
        store.dispose()


def dry_run_text(targets: Sequence[str], config: HubConfig) -> str:
    """Per target: rows a real sync would create / update / remove, with masked samples."""
    from hub.push_plan import target_configs
    from hub.push_preview import preview, preview_text
    from hub.store import Store

    sources = {t.name: t.source for t in target_configs(config.push_plan_config())}
    store = Store()
    try:
        return preview_text(preview(store, t, sources.get(t, t)) for t in targets)
    finally:
        store.dispose()
