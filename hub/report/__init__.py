"""The data-quality report operations teams read: one self-contained HTML file plus a JSON twin.

``write_report(store, out_path, run=RunInfo(...))`` gathers the figures from the store (``collect_figures``,
bulk queries only), scores the quality dimensions (hub/quality/dimensions.py) against the thresholds of
hub.yaml ``quality:``, counts what this run changed (``run_figures``), adds the run to the history table
``quality_run`` and renders the HTML (``render_html``: Jinja2 template ``template.html.j2`` with autoescaping,
inline CSS and inline SVG charts from ``charts.py``, no external assets). Personal data never appears in clear: quarantine
samples show the source id and reason codes only, and anything in a free-text field or id that looks like a
phone number or e-mail address is masked (``138****8000``, ``c***@example.cn``).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import phonenumbers
import sqlalchemy as sa

from hub import c360_summary
from hub.consent import CHANNELS
from hub.privacy.figures import privacy_figures
from hub.privacy.refs import source_ref
from hub.quality import brake
from hub.quality.codes import describe
from hub.quality.completeness import (  # noqa: F401 - customer/golden_completeness: the report's API
    COMPLETENESS_FIELDS,
    CompletenessTally,
    customer_completeness,
    golden_completeness,
    pct,
)
from hub.quality.config import QualityConfig
from hub.quality.customer_base import customer_base
from hub.quality.dimensions import (
    REPORT_COMPLETENESS,
    REPORT_FLAG_LISTS,
    has_flags,
    kept_for_report,
    overall_status,
    score_dimensions,
)
from hub.quality.history import RunInfo, previous_finished_at, recent_runs, record_run
from hub.report.charts import count_chart, hbar_chart, score_chart
from hub.store import (
    Store,
    as_text,
    canonical_json,
    customer_360,
    customer_360_summary,
    golden_customer,
    golden_id_history,
    json_value,
    jsonable,
    landing,
    match_pair,
    match_run,
    push_outbox,
    push_result,
    quarantine,
    read_cursor,
    review_decision,
    staged_record,
    table_fingerprint,
    xref,
)

DEFAULT_REPORT_PATH = Path(".hub") / "reports" / "data_quality.html"
SAMPLE_SIZE = 25
TOP_REASONS = 10

# --------------------------------------------------------------------------------------------------------------
# Masking: what the report may show of personal data


def mask_phone(value: str) -> str:
    """'+8613800138000' -> '138****8000' (national number, first 3 and last 4 digits kept)."""
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+"):
        try:
            digits = str(phonenumbers.parse(value.strip(), None).national_number)
        except phonenumbers.NumberParseException:
            pass
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def mask_email(value: str) -> str:
    """'chen.wei@example.cn' -> 'c***@example.cn'."""
    local, _, domain = value.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_name(value: str) -> str:
    """'陈伟' -> '陈*', 'Anna Schmidt' -> 'A*** S*****': enough for a person who knows the customer."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in value.split())


_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# a run of 7+ digits, optionally with +, spaces, dashes, dots or brackets in between: a phone number
_PHONE_RE = re.compile(r"\+?\d(?:[\d\s\-().]{5,}\d)")


def scrub_text(text: str | None) -> str:
    """Mask e-mail addresses and phone numbers inside free text (push rejection reasons, ids)."""
    if not text:
        return ""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), str(text))

    def _phone(m: re.Match[str]) -> str:
        raw = m.group(0)
        return mask_phone(raw) if len(re.sub(r"\D", "", raw)) >= 7 else raw

    return _PHONE_RE.sub(_phone, text)


def mask_identifier(value: str) -> str:
    """Short numeric source ids are shown; a phone number or e-mail used as id is masked; anything else
    (openids, national ids, composite keys) only by its length (``hub.privacy.refs``)."""
    value = value.strip()
    if _EMAIL_RE.fullmatch(value):
        return mask_email(value)
    if re.fullmatch(r"\+?[\d\s\-()]{9,}", value):
        return mask_phone(value)
    return source_ref(value)


# --------------------------------------------------------------------------------------------------------------
# Pure helpers


def _when(value: Any) -> str | None:
    """Timestamps to the second, as people read them (SQLite may hand back strings)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.replace(microsecond=0).isoformat(sep=" ")


def size_bucket(n: int) -> str:
    return str(n) if n < 5 else "5+"


def quality_histogram(scores: list[float]) -> dict[str, Any]:
    """Summary + 10 buckets; the scale (0–1 or 0–100) is taken from the data."""
    if not scores:
        return {"count": 0, "mean": None, "median": None, "min": None, "max": None, "histogram": []}
    top = 1.0 if max(scores) <= 1.0 else 100.0
    width = top / 10
    counts = [0] * 10
    for s in scores:
        counts[min(9, max(0, int(s / width)))] += 1
    fmt = (lambda v: f"{v:.1f}") if top == 1.0 else (lambda v: f"{v:.0f}")
    return {
        "count": len(scores),
        "mean": round(statistics.fmean(scores), 3),
        "median": round(statistics.median(scores), 3),
        "min": round(min(scores), 3),
        "max": round(max(scores), 3),
        "histogram": [{"bucket": f"{fmt(i * width)}–{fmt((i + 1) * width)}", "count": c}
                      for i, c in enumerate(counts)],
    }


def _top(counter: Counter, n: int = TOP_REASONS) -> list[dict[str, Any]]:
    return [{"reason": k, "count": v} for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --------------------------------------------------------------------------------------------------------------
# Figures from the store


# Figures that read every record of a table are kept with a fingerprint of what they read (counts and newest
# change times): a sync that did not change those tables reuses them instead of reading a million records.
_KEPT = "_report_figures"


def _staged_inputs(entity: str | None = None) -> Any:
    sr = staged_record.c
    stmt = sa.select(sa.func.count(), sa.func.max(sr.staged_at))
    return stmt if entity is None else stmt.where(sr.entity == entity)


def collect_figures(store: Store, quality: QualityConfig | None = None,
                    derived: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Every figure of the report, JSON-ready (this is the JSON twin, less trend and run summary).

    ``quality`` / ``derived``: the settings the quality dimensions are scored with; when their last scoring
    (the sync's quality check) read the store as it is now, its completeness tally is taken as it is."""
    c360_summary.refresh(store)  # the 360 figures and the customer base read it: the views rewritten since
    gc = golden_customer.c
    golden_inputs = sa.select(sa.func.count(), sa.func.max(gc.updated_at),
                              sa.func.sum(sa.case((gc.status == "active", 1), else_=0)))
    checked: list[dict[str, Any]] = []

    def from_check() -> dict[str, Any]:
        """What the last quality check kept for the report (its completeness tally, the flag lists), if it read
        the store as it is now: asked once, and only when a figure is computed afresh (the check fingerprints
        several tables)."""
        if not checked:
            checked.append(kept_for_report(store, quality, derived) or {})
        return checked[0]

    with store.engine.connect() as conn:
        kept = read_cursor(conn, "hub", _KEPT) or {}
        fresh: dict[str, Any] = {}

        def reuse(name: str, fingerprint: str, compute: Any) -> Any:
            old = kept.get(name)
            if old and old.get("fingerprint") == fingerprint:
                fresh[name] = old
                return old["figures"]
            figures = json.loads(json.dumps(compute(), default=str))
            fresh[name] = {"fingerprint": fingerprint, "figures": figures}
            return figures

        fig: dict[str, Any] = {}
        # one read of the landing rows per report: rows, newest landing and rows staged per source and entity
        # give the landing table, the staging figures' fingerprint and their processed counts, and the privacy
        # section's row count (four reads of 5.5M landing rows before: ~190 s of two reports at 1M people)
        landed = conn.execute(
            sa.select(landing.c.source, landing.c.entity, sa.func.count(), sa.func.max(landing.c.landed_at),
                      sa.func.count(landing.c.staged_hash))
            .group_by(landing.c.source, landing.c.entity).order_by(landing.c.source, landing.c.entity)).all()
        fig["landing"] = [{"source": s, "entity": e, "records": n, "last_landed_at": _when(last)}
                          for s, e, n, last, _ in landed]
        processed = {(s, e): staged for s, e, _, _, staged in landed if staged}
        staged_rows, staged_at = conn.execute(_staged_inputs()).one()
        counted = {"landing": sum(n for _, _, n, _, _ in landed), "staged_record": staged_rows}
        newest = max((str(last) for *_, last, _ in landed if last is not None), default=None)
        fig.update(reuse("staging", table_fingerprint(
            conn, sa.select(sa.func.count(), sa.func.max(quarantine.c.quarantined_at), sa.func.max(quarantine.c.id)),
            extra=(counted["landing"], newest, sum(processed.values()), staged_rows, staged_at)),
            lambda: _staging_figures(conn, processed, from_check().get(REPORT_FLAG_LISTS))))
        fig["completeness"] = reuse("completeness", table_fingerprint(conn, _staged_inputs("customers"), golden_inputs),
                                    lambda: tallied if (tallied := from_check().get(REPORT_COMPLETENESS)) is not None
                                    else _completeness(conn))
        fig["matching"] = _matching(conn)
        scores = [float(s) for (s,) in conn.execute(
            sa.select(golden_customer.c.quality_score)
            .where(golden_customer.c.status == "active", golden_customer.c.quality_score.is_not(None)))]
        fig["golden_quality"] = quality_histogram(scores)
        c = customer_360.c
        fig["customer_360"] = reuse("customer_360", table_fingerprint(
            conn, sa.select(sa.func.count(), sa.func.max(c.updated_at))), lambda: _c360(conn))
        fig["push"] = _push(conn)
    if fresh != kept:
        store.save_cursor("hub", _KEPT, fresh)
    fig["privacy"] = privacy_figures(store, counted)
    fig["headline"] = _headline(fig)
    return fig


def _staging_figures(conn: sa.Connection, processed: Mapping[tuple[str, str], int],
                     flag_lists: list[tuple[str, str, int]] | None = None) -> dict[str, Any]:
    """``processed``: landing rows staged per (source, entity), as ``collect_figures`` counted them.
    ``flag_lists``: (source, flag list, records) as the quality check counted them, when it read the store as
    it is now (``kept_for_report``); else counted here."""
    # per LANDING entity (what the source sent): one landed row feeds one or more canonical records (a follower
    # is a customer and an interaction), so rates over canonical entities would not add up
    quarantined: dict[tuple[str, str], int] = {}
    reasons: Counter[str] = Counter()
    reasons_by_entity: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for source, entity, rs in conn.execute(
        sa.select(quarantine.c.source, quarantine.c.entity, quarantine.c.reasons)
    ):
        quarantined[(source, entity)] = quarantined.get((source, entity), 0) + 1
        for code in rs or []:
            reasons[str(code)] += 1
            reasons_by_entity[(source, entity)][str(code)] += 1
    staged = {k: max(n - quarantined.get(k, 0), 0) for k, n in processed.items()}
    rows = []
    for key in sorted(set(staged) | set(quarantined)):
        s, q = staged.get(key, 0), quarantined.get(key, 0)
        rows.append({"source": key[0], "entity": key[1], "staged": s, "quarantined": q,
                     "quarantine_rate": pct(q, s + q),
                     "top_reasons": [{"reason": scrub_text(r["reason"]), "count": r["count"]}
                                     for r in _top(reasons_by_entity.get(key, Counter()), 3)]})
    sample = [
        {"source": s, "entity": e, "source_id": mask_identifier(str(sid)),
         "reasons": [scrub_text(str(r)) for r in rs or []], "quarantined_at": _when(at)}
        for s, e, sid, rs, at in conn.execute(
            sa.select(quarantine.c.source, quarantine.c.entity, quarantine.c.source_id, quarantine.c.reasons,
                      quarantine.c.quarantined_at)
            .order_by(quarantine.c.quarantined_at.desc(), quarantine.c.id.desc()).limit(SAMPLE_SIZE))
    ]
    # counted by the database per distinct flag list, each list decoded once: record by record in Python this
    # was a quarter of the report at 1M people (py-spy)
    flags: Counter[tuple[str, str]] = Counter()
    listed = as_text(staged_record.c.quality_flags, conn.dialect.name)
    if flag_lists is None:
        flag_lists = conn.execute(sa.select(staged_record.c.source, listed, sa.func.count()).where(has_flags())
                                  .group_by(staged_record.c.source, listed)).all()
    for source, text, n in flag_lists:
        for code in json_value(text) or []:
            flags[(source, str(code))] += n
    return {
        "staging": rows,
        "quarantine_reasons": [{"reason": scrub_text(r["reason"]), "count": r["count"]} for r in _top(reasons)],
        "quarantine_sample": sample,
        "quality_flags": [{"source": s, "code": c, "count": n}
                          for (s, c), n in sorted(flags.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))],
    }


def _completeness(conn: sa.Connection) -> dict[str, Any]:
    tally = CompletenessTally()
    for source, rec in conn.execute(
        sa.select(staged_record.c.source, staged_record.c.record)
        .where(staged_record.c.entity == "customers").execution_options(yield_per=5000)
    ):
        tally.add_customer(source, rec)
    for (rec,) in conn.execute(
        sa.select(golden_customer.c.record).where(golden_customer.c.status == "active")
        .execution_options(yield_per=5000)
    ):
        tally.add_golden(rec)
    return tally.figures()


def _matching(conn: sa.Connection) -> dict[str, Any]:
    bands = dict(conn.execute(sa.select(match_pair.c.band, sa.func.count()).group_by(match_pair.c.band)).all())
    status = dict(conn.execute(
        sa.select(golden_customer.c.status, sa.func.count()).group_by(golden_customer.c.status)).all())
    sizes = Counter(size_bucket(n) for (n,) in conn.execute(
        sa.select(sa.func.count()).select_from(xref).where(xref.c.valid_to.is_(None)).group_by(xref.c.golden_id)))
    events = dict(conn.execute(
        sa.select(golden_id_history.c.event, sa.func.count()).group_by(golden_id_history.c.event)).all())
    decided = sa.exists().where(review_decision.c.left_key == match_pair.c.left_key,
                                review_decision.c.right_key == match_pair.c.right_key)
    queue = conn.execute(sa.select(sa.func.count()).select_from(match_pair)
                         .where(match_pair.c.band == "review", ~decided)).scalar_one()
    decisions = dict(conn.execute(sa.select(review_decision.c.decision, sa.func.count())
                                  .group_by(review_decision.c.decision)).all())
    linked = conn.execute(sa.select(sa.func.count()).select_from(xref)
                          .where(xref.c.valid_to.is_(None))).scalar_one()
    active = int(status.get("active", 0))
    last = conn.execute(sa.select(match_run.c.mode, match_run.c.matcher, match_run.c.finished_at, match_run.c.stats)
                        .where(match_run.c.kind == "match", match_run.c.finished_at.is_not(None))
                        .order_by(match_run.c.id.desc()).limit(1)).first()
    model = None
    if last is not None:
        st = last.stats or {}
        # whatever the engine reports about how it estimated its parameters (a fallback to conservative
        # parameters, too little data to fit) is shown as it comes: counts and words, never records
        notes = {k: v for k, v in st.items()
                 if any(w in k for w in ("fallback", "diagnos", "estimat", "warning", "note")) and v}
        model = {"mode": last.mode, "matcher": last.matcher, "finished_at": _when(last.finished_at),
                 "notes": {k: scrub_text(v if isinstance(v, str) else canonical_json(v)) for k, v in notes.items()}}
    return {
        "model": model,
        "pairs_by_band": {b: int(bands.get(b, 0)) for b in sorted({"match", "review", "non_match", *bands})},
        "golden_active": active,
        "golden_retired": int(status.get("retired", 0)),
        "records_linked": linked,
        "records_per_golden": {k: sizes.get(k, 0) for k in ("1", "2", "3", "4", "5+")},
        "consolidation_rate": pct(linked - active, linked) if linked else 0.0,
        "history_events": {str(k): int(v) for k, v in sorted(events.items())},
        "merges": int(events.get("merged", 0)),
        "splits": int(events.get("split", 0)),
        "steward_queue": int(queue),
        "review_decisions": {str(k): int(v) for k, v in sorted(decisions.items())},
    }


def _c360(conn: sa.Connection) -> dict[str, Any]:
    """Segment, value tier, lifecycle and consent distributions of the 360 view: one grouped read of its kept
    summary (hub/c360_summary.py, refreshed by ``collect_figures``), not of every view's JSON."""
    s = customer_360_summary.c
    names = ("segment", "value_tier", "lifecycle")
    cols = [s[name] for name in names] + [s[f"consent_{ch}"] for ch in CHANNELS]
    dists: dict[str, Counter[Any]] = {name: Counter() for name in names}
    consents: dict[str, Counter[Any]] = {ch: Counter() for ch in CHANNELS}
    for *values, n in conn.execute(sa.select(*cols, sa.func.count()).group_by(*cols)):
        for name, value in zip(names, values[:len(names)], strict=True):
            dists[name][str(value) if value is not None else "-"] += int(n)
        for ch, value in zip(CHANNELS, values[len(names):], strict=True):
            consents[ch][None if value is None else bool(value)] += int(n)
    out: dict[str, Any] = {name: dict(sorted(dists[name].items(), key=lambda kv: (-kv[1], kv[0])))
                           for name in names}
    out["customers"] = sum(out["segment"].values())
    out["consent"] = {ch: {"opted_in": c.get(True, 0), "opted_out": c.get(False, 0), "unknown": c.get(None, 0)}
                      for ch, c in consents.items()}
    return out


def _push(conn: sa.Connection) -> dict[str, Any]:
    outbox: dict[str, Counter[str]] = defaultdict(Counter)
    for target, status, n in conn.execute(
        sa.select(push_outbox.c.target, push_outbox.c.status, sa.func.count())
        .group_by(push_outbox.c.target, push_outbox.c.status)
    ):
        outbox[target][status] = int(n)
    results: dict[str, Counter[str]] = defaultdict(Counter)
    for target, status, n in conn.execute(
        sa.select(push_result.c.target, push_result.c.status, sa.func.count())
        .group_by(push_result.c.target, push_result.c.status)
    ):
        results[target][status] = int(n)
    # records queued again because a pull saw the target lose or change what the hub wrote (push_plan)
    drift: dict[str, Counter[str]] = defaultdict(Counter)
    for target, status, n in conn.execute(
        sa.select(push_outbox.c.target, push_outbox.c.status, sa.func.count())
        .where(push_outbox.c.cause == "drift").group_by(push_outbox.c.target, push_outbox.c.status)
    ):
        drift[target][status] = int(n)
    rejections: dict[str, Counter[str]] = defaultdict(Counter)
    for target, status, reason, n in conn.execute(
        sa.select(push_result.c.target, push_result.c.status, push_result.c.reason, sa.func.count())
        .where(push_result.c.status.in_(("rejected", "error")))
        .group_by(push_result.c.target, push_result.c.status, push_result.c.reason)
    ):
        rejections[target][f"{status}: {scrub_text(reason) or '(no reason)'}"] += int(n)
    targets = sorted(set(outbox) | set(results))
    return {
        "targets": [
            {"target": t,
             **{f"outbox_{s}": outbox[t].get(s, 0) for s in ("pending", "ok", "rejected", "error", "superseded")},
             **{s: results[t].get(s, 0) for s in ("ok", "rejected", "error")},
             "drift_found": sum(n for s, n in drift[t].items() if s != "superseded"),
             "drift_repaired": drift[t].get("ok", 0)}
            for t in targets
        ],
        "top_reasons": {t: _top(rejections[t], 5) for t in targets if rejections[t]},
    }


def _headline(fig: Mapping[str, Any]) -> dict[str, float | int | None]:
    """The flat figures compared run over run (the trend table)."""
    staged = sum(r["staged"] for r in fig["staging"])
    quarantined = sum(r["quarantined"] for r in fig["staging"])
    m = fig["matching"]
    head: dict[str, float | int | None] = {
        "landed_records": sum(r["records"] for r in fig["landing"]),
        "staged_records": staged,
        "quarantined_records": quarantined,
        "quarantine_rate_pct": pct(quarantined, staged + quarantined),
        "quality_flags": sum(r["count"] for r in fig["quality_flags"]),
        "golden_customers": m["golden_active"],
        "pairs_match": m["pairs_by_band"].get("match", 0),
        "pairs_review": m["pairs_by_band"].get("review", 0),
        "steward_queue": m["steward_queue"],
        "merges": m["merges"],
        "splits": m["splits"],
        "golden_quality_mean": fig["golden_quality"]["mean"],
    }
    golden = fig["completeness"].get("golden") or {}
    for f in COMPLETENESS_FIELDS:
        head[f"golden_{f}_pct"] = golden.get(f)
    for status in ("ok", "rejected", "error"):
        head[f"push_{status}"] = sum(t[status] for t in fig["push"]["targets"])
    head["push_pending"] = sum(t["outbox_pending"] + t["outbox_error"] for t in fig["push"]["targets"])
    head["push_drift_found"] = sum(t["drift_found"] for t in fig["push"]["targets"])
    return head


def trend(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Headline figures now vs the previous report; delta None when either side is missing."""
    if not previous:
        return []
    prev = previous.get("headline") or {}
    rows = []
    for key, now in current.items():
        before = prev.get(key)
        delta = round(now - before, 3) if isinstance(now, int | float) and isinstance(before, int | float) else None
        rows.append({"figure": key, "previous": before, "current": now, "delta": delta})
    return rows


# --------------------------------------------------------------------------------------------------------------
# This run: what happened since the run started (or since the previous report)


def run_figures(conn: sa.Connection, since: datetime | None) -> dict[str, Any]:
    """Counts of what changed in the store at or after ``since`` (everything when None)."""

    def after(col: Any) -> Any:
        return col >= since if since is not None else sa.true()

    def grouped(*cols: Any, where: Any) -> list[Any]:
        return conn.execute(sa.select(*cols, sa.func.count()).where(where).group_by(*cols)).all()

    landed: dict[str, dict[str, int]] = defaultdict(lambda: {"new": 0, "changed": 0})
    if since is None:  # the first report: everything in the store is new
        for source, n in grouped(landing.c.source, where=sa.true()):
            landed[source]["new"] += int(n)
    else:
        is_new = sa.case((landing.c.first_landed_at >= since, 1), else_=0)
        for source, new, n in conn.execute(sa.select(landing.c.source, is_new, sa.func.count())
                                           .where(after(landing.c.landed_at)).group_by(landing.c.source, is_new)):
            landed[source]["new" if new else "changed"] += int(n)
    staged = {s: int(n) for s, n in grouped(staged_record.c.source, where=after(staged_record.c.staged_at))}
    held = {s: int(n) for s, n in grouped(quarantine.c.source, where=after(quarantine.c.quarantined_at))}
    events = {str(e): int(n) for e, n in grouped(golden_id_history.c.event, where=after(golden_id_history.c.at))}
    bands = {str(b): int(n) for b, n in grouped(match_pair.c.band, where=after(match_pair.c.scored_at))}
    pushes: dict[str, dict[str, int]] = defaultdict(lambda: {"ok": 0, "rejected": 0, "error": 0})
    for target, status, n in grouped(push_result.c.target, push_result.c.status, where=after(push_result.c.at)):
        pushes[target][str(status)] = int(n)
    golden_new = conn.execute(sa.select(sa.func.count()).select_from(golden_customer)
                              .where(after(golden_customer.c.created_at))).scalar_one()
    golden_changed = conn.execute(sa.select(sa.func.count()).select_from(golden_customer).where(
        after(golden_customer.c.updated_at), golden_customer.c.status == "active",
        ~after(golden_customer.c.created_at) if since is not None else sa.false())).scalar_one()
    c360 = conn.execute(sa.select(sa.func.count()).select_from(customer_360)
                        .where(after(customer_360.c.updated_at))).scalar_one()
    decisions = conn.execute(sa.select(sa.func.count()).select_from(review_decision)
                             .where(after(review_decision.c.decided_at))).scalar_one()
    return {
        "since": _when(since),
        "landed": {s: dict(v) for s, v in sorted(landed.items())},
        "landed_new": sum(v["new"] for v in landed.values()),
        "landed_changed": sum(v["changed"] for v in landed.values()),
        "staged": sum(staged.values()), "staged_by_source": staged,
        "quarantined": sum(held.values()), "quarantined_by_source": held,
        "pairs_scored": bands,
        "golden_minted": events.get("minted", 0), "golden_merged": events.get("merged", 0),
        "golden_split": events.get("split", 0), "golden_retired": events.get("retired", 0),
        "records_moved": events.get("record_moved", 0),
        "golden_new": int(golden_new), "golden_changed": int(golden_changed),
        "customer_360_changed": int(c360), "steward_decisions": int(decisions),
        "pushed": {t: dict(v) for t, v in sorted(pushes.items())},
        "pushed_ok": sum(v["ok"] for v in pushes.values()),
        "pushed_rejected": sum(v["rejected"] for v in pushes.values()),
        "pushed_error": sum(v["error"] for v in pushes.values()),
    }


def what_changed(run: Mapping[str, Any]) -> list[str]:
    """This run's figures as sentences an operator reads first."""
    out = []
    if run["landed_new"] or run["landed_changed"]:
        per = ", ".join(f"{s} {v['new']:,} new / {v['changed']:,} changed" for s, v in run["landed"].items())
        out.append(f"Pulled {run['landed_new']:,} new and {run['landed_changed']:,} changed records ({per}).")
    else:
        out.append("Nothing new or changed in any source.")
    if run["quarantined"]:
        out.append(f"{run['quarantined']:,} records went to quarantine this run (see Staging for the reasons).")
    golden = []
    if run["golden_new"]:
        golden.append(f"{run['golden_new']:,} new golden customers")
    if run["golden_changed"]:
        golden.append(f"{run['golden_changed']:,} golden customers updated")
    if run["golden_merged"]:
        golden.append(f"{run['golden_merged']:,} merges")
    if run["golden_split"]:
        golden.append(f"{run['golden_split']:,} splits")
    if run["records_moved"]:
        golden.append(f"{run['records_moved']:,} records moved to another golden customer")
    out.append(("Golden customers: " + ", ".join(golden) + ".") if golden else "No golden customer changed.")
    if run["customer_360_changed"]:
        out.append(f"{run['customer_360_changed']:,} customer 360 rows recomputed.")
    pushed = run["pushed_ok"] + run["pushed_rejected"] + run["pushed_error"]
    if pushed:
        out.append(f"Pushed {pushed:,} changes: {run['pushed_ok']:,} accepted, {run['pushed_rejected']:,} "
                   f"rejected, {run['pushed_error']:,} failed (retried next run).")
    else:
        out.append("Nothing needed writing back to any system.")
    return out


def code_table(rows: Iterable[Mapping[str, Any]], key: str = "reason") -> list[dict[str, Any]]:
    """Adds plain-language label and suggested action to rows holding a reason or flag code."""
    out = []
    for r in rows:
        text = describe(str(r[key]))
        out.append({**r, "label": text.label, "action": text.action})
    return out


# --------------------------------------------------------------------------------------------------------------
# Rendering

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _charts(figures: Mapping[str, Any]) -> dict[str, str]:
    history = figures.get("history") or []
    labels = [(h.get("finished_at") or "")[5:16] for h in history]
    charts = {}
    for name, d in figures.get("dimensions", {}).items():
        scores = [((h.get("scores") or {}).get(name) or {}).get("score") for h in history]
        charts[name] = score_chart(f"chart-{name}", d["label"], labels, scores, d["thresholds"]["green"],
                                   d["thresholds"]["amber"])
    if history:
        def series(key: str) -> list[float]:
            return [float(((h.get("figures") or {}).get("run") or {}).get(key) or 0) for h in history]

        charts["volume"] = count_chart("chart-volume", "Records per run", labels, {
            "pulled new": series("landed_new"), "pulled changed": series("landed_changed"),
            "quarantined": series("quarantined")})
        charts["golden"] = count_chart("chart-golden", "Golden customers per run", labels, {
            "new": series("golden_new"), "updated": series("golden_changed"), "merges": series("golden_merged"),
            "splits": series("golden_split")})
        charts["push"] = count_chart("chart-push", "Write-backs per run", labels, {
            "accepted": series("pushed_ok"), "rejected": series("pushed_rejected"), "failed": series("pushed_error")})
    base = figures.get("customer_base")
    if base and base["customers"]:
        charts["pyramid"] = hbar_chart("chart-value-pyramid", "Value pyramid (customers per tier)",
                                       [(r["tier"], r["customers"]) for r in base["value_pyramid"]],
                                       colour="#f0b429", centered=True)
        charts["funnel"] = hbar_chart("chart-funnel", "From contact to regular customer",
                                      [(r["step"], r["customers"]) for r in base["funnel"]], colour="#3ebd93",
                                      centered=True)
        charts["lifecycle"] = hbar_chart("chart-lifecycle", "Lifecycle stage",
                                         list(base["lifecycle"].items()), colour="#2680c2")
    return charts


def render_html(figures: Mapping[str, Any]) -> str:
    """The report page for a figures dict (as written to the JSON twin)."""
    return _ENV.get_template("template.html.j2").render(f=figures, fields=COMPLETENESS_FIELDS,
                                                        charts=_charts(figures))


# --------------------------------------------------------------------------------------------------------------
# Entry point


@dataclass
class ReportStats:
    path: str
    json_path: str
    status: str = "none"
    landed_records: int = 0
    staged_records: int = 0
    quarantined_records: int = 0
    golden_customers: int = 0
    steward_queue: int = 0
    push_rejected: int = 0
    trend_rows: int = 0
    history_runs: int = 0
    dimensions: dict[str, Any] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"**Data quality: {self.status.upper()}** — report written to `{self.path}` (+ JSON twin)", ""]
        if self.stopped:
            lines += ["**Pushes stopped:**", *[f"- {r}" for r in self.stopped], ""]
        lines += [
                 "| dimension | score | status | verdict |", "|---|---|---|---|"]
        for d in self.dimensions.values():
            score = "–" if d["score"] is None else f"{d['score']:g}"
            lines.append(f"| {d['label']} | {score} | {d['status']} | {d['verdict']} |")
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {'–' if v is None else v} |" for k, v in self.headline.items()]
        return "\n".join(lines)


def write_report(store: Store, out_path: str | Path = DEFAULT_REPORT_PATH,
                 run_summary: dict | None = None, *, run: RunInfo | None = None,
                 quality: QualityConfig | None = None, derived: Mapping[str, tuple[str, ...]] | None = None,
                 record: bool = True, stopped: list[str] | None = None,
                 failures: dict[str, str] | None = None) -> ReportStats:
    """Write the HTML report and its JSON twin (same name, ``.json``) and add this run to the history.

    ``run`` names the run (id, trigger, start); "this run" counts what changed since its start, else since the
    previous report. ``record=False`` writes the page without adding a history row (a preview). ``stopped``:
    why a blocking check stopped the run before its pushes; ``failures``: what failed in this run
    (``{"pull of webshop": "ConnectionError: ..."}``), named at the top of the page.
    """
    out = Path(out_path)
    json_path = out.with_suffix(".json")
    quality = quality or QualityConfig()
    run = run or RunInfo(run_id="manual", trigger="manual")
    since = run.started_at or previous_finished_at(store)
    finished = datetime.now(UTC).replace(tzinfo=None)

    figures = collect_figures(store, quality, derived)
    with store.engine.connect() as conn:
        figures["run"] = run_figures(conn, since)
    dims = score_dimensions(store, quality, now=finished, derived=derived)
    status = overall_status(dims)
    figures["dimensions"] = dims
    figures["status"] = status
    figures["generated_at"] = finished.replace(microsecond=0).isoformat()
    figures["run_info"] = {"run_id": run.run_id, "trigger": run.trigger,
                           "started_at": _when(run.started_at), "finished_at": _when(finished),
                           "seconds": round((finished - run.started_at).total_seconds(), 1)
                           if run.started_at else None}
    figures["run_failures"] = {str(k): scrub_text(v) for k, v in (failures or {}).items()}
    figures["what_changed"] = [*(f"{k} failed: {v} — it kept its last good state."
                                 for k, v in figures["run_failures"].items()), *what_changed(figures["run"])]
    figures["run_summary"] = {str(k): scrub_text(v if isinstance(v, str) else canonical_json(v))
                              for k, v in (run_summary or {}).items()}
    figures["customer_base"] = customer_base(store, update_snapshot=record)
    held = brake.current(store)
    figures["brake"] = {"stopped": bool(stopped or held), "release_command": brake.RELEASE_COMMAND,
                        "largest": (held.figures.get("largest_unsupported") or []) if held else [],
                        "reasons": list(dict.fromkeys([*(held.reasons if held else []), *(stopped or [])]))}
    if figures["brake"]["stopped"]:
        status = figures["status"] = "red"  # nothing reached the other systems: the page says so first
    previous = recent_runs(store, 1)
    figures["previous_generated_at"] = previous[0]["finished_at"] if previous else None
    figures["trend"] = trend(figures["headline"], (previous[0]["figures"] if previous else None))
    figures["quarantine_reasons"] = code_table(figures["quarantine_reasons"])
    figures["quality_flags"] = code_table(figures["quality_flags"], key="code")
    scores = {name: {"score": d["score"], "status": d["status"],
                     "sources": {s: {"score": v["score"], "status": v["status"]} for s, v in d["sources"].items()}}
              for name, d in dims.items()}
    if record:
        record_run(store, run, finished, status, scores, {"headline": figures["headline"], "run": figures["run"]})
    figures["history"] = recent_runs(store, quality.history_runs)

    html = render_html(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, html)
    _atomic_write(json_path, json.dumps(jsonable(figures), ensure_ascii=False, indent=1, sort_keys=True))
    h = figures["headline"]
    return ReportStats(
        path=str(out), json_path=str(json_path), status=status,
        landed_records=h["landed_records"], staged_records=h["staged_records"],
        quarantined_records=h["quarantined_records"], golden_customers=h["golden_customers"],
        steward_queue=h["steward_queue"], push_rejected=h["push_rejected"],
        trend_rows=len(figures["trend"]), history_runs=len(figures["history"]), dimensions=dims, headline=dict(h),
        stopped=figures["brake"]["reasons"] if figures["brake"]["stopped"] else [],
    )


def _atomic_write(path: Path, text: str) -> None:
    # readers (a browser, the next run's trend) see the old or the new file, never half of one
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
