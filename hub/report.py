"""The data-quality report operations teams read: one self-contained HTML file plus a JSON twin.

``write_report(store, out_path)`` gathers the figures from the store (``collect_figures``, bulk queries only),
compares them with the previous run's JSON twin when it exists (trend), and renders the HTML (``render_html``:
Jinja2 with autoescaping, inline CSS, no external assets). Personal data never appears in clear: quarantine
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

from hub.store import (
    Store,
    canonical_json,
    customer_360,
    golden_customer,
    golden_id_history,
    jsonable,
    landing,
    match_pair,
    push_outbox,
    push_result,
    quarantine,
    review_decision,
    staged_record,
    xref,
)

DEFAULT_REPORT_PATH = Path(".hub") / "reports" / "data_quality.html"
COMPLETENESS_FIELDS = ("name", "email", "phone", "birth_date", "address")
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
    """Source ids are shown, unless the source uses a phone number or e-mail as the id."""
    if _EMAIL_RE.fullmatch(value.strip()):
        return mask_email(value.strip())
    if re.fullmatch(r"\+?[\d\s\-()]{7,}", value.strip()):
        return mask_phone(value)
    # ids with other characters (CDR uniqueid '1700000000.123', openids) are not contact data
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), value)


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


def pct(part: int | float, whole: int | float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _has_name(rec: Mapping[str, Any]) -> bool:
    name = rec.get("name") or {}
    return bool(rec.get("full_name") or rec.get("given_name") or rec.get("family_name")
                or (isinstance(name, Mapping) and name.get("display")))


def _has_address(addresses: Iterable[Any]) -> bool:
    return any(isinstance(a, Mapping) and (a.get("street") or a.get("city") or a.get("postal_code"))
               for a in addresses or [])


def customer_completeness(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the report's fields a staged CustomerRecord (JSON) has."""
    return {
        "name": _has_name(rec),
        "email": bool(rec.get("emails")),
        "phone": bool(rec.get("phones")),
        "birth_date": bool(rec.get("birth_date")),
        "address": _has_address(rec.get("addresses") or []),
    }


def golden_completeness(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the report's fields a GoldenCustomer (JSON) has."""
    return {
        "name": _has_name(rec),
        "email": bool(rec.get("primary_email") or rec.get("emails")),
        "phone": bool(rec.get("primary_phone") or rec.get("phones")),
        "birth_date": bool(rec.get("birth_date")),
        "address": _has_address([rec.get("address"), *(rec.get("addresses") or [])]),
    }


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


def collect_figures(store: Store) -> dict[str, Any]:
    """Every figure of the report, JSON-ready (this is the JSON twin, less trend and run summary)."""
    with store.engine.connect() as conn:
        fig: dict[str, Any] = {}
        fig["landing"] = [
            {"source": s, "entity": e, "records": n, "last_landed_at": _when(last)}
            for s, e, n, last in conn.execute(
                sa.select(landing.c.source, landing.c.entity, sa.func.count(), sa.func.max(landing.c.landed_at))
                .group_by(landing.c.source, landing.c.entity).order_by(landing.c.source, landing.c.entity))
        ]
        fig.update(_staging_figures(conn))
        fig["completeness"] = _completeness(conn)
        fig["matching"] = _matching(conn)
        scores = [float(s) for (s,) in conn.execute(
            sa.select(golden_customer.c.quality_score)
            .where(golden_customer.c.status == "active", golden_customer.c.quality_score.is_not(None)))]
        fig["golden_quality"] = quality_histogram(scores)
        fig["customer_360"] = _c360(conn)
        fig["push"] = _push(conn)
    fig["headline"] = _headline(fig)
    return fig


def _staging_figures(conn: sa.Connection) -> dict[str, Any]:
    # per LANDING entity (what the source sent): one landed row feeds one or more canonical records (a follower
    # is a customer and an interaction), so rates over canonical entities would not add up
    processed: dict[tuple[str, str], int] = {
        (s, e): n for s, e, n in conn.execute(
            sa.select(landing.c.source, landing.c.entity, sa.func.count())
            .where(landing.c.staged_hash.is_not(None))
            .group_by(landing.c.source, landing.c.entity))
    }
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
    flags: Counter[tuple[str, str]] = Counter()
    for source, fl in conn.execute(
        sa.select(staged_record.c.source, staged_record.c.quality_flags).execution_options(yield_per=5000)
    ):
        for code in fl or []:
            flags[(source, str(code))] += 1
    return {
        "staging": rows,
        "quarantine_reasons": [{"reason": scrub_text(r["reason"]), "count": r["count"]} for r in _top(reasons)],
        "quarantine_sample": sample,
        "quality_flags": [{"source": s, "code": c, "count": n}
                          for (s, c), n in sorted(flags.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))],
    }


def _completeness(conn: sa.Connection) -> dict[str, Any]:
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for source, rec in conn.execute(
        sa.select(staged_record.c.source, staged_record.c.record)
        .where(staged_record.c.entity == "customers").execution_options(yield_per=5000)
    ):
        totals[source] += 1
        for name, present in customer_completeness(rec or {}).items():
            per_source[source][name] += present
    out: dict[str, Any] = {"sources": {}, "golden": None}
    for source in sorted(totals):
        out["sources"][source] = {"records": totals[source],
                                  **{f: pct(per_source[source][f], totals[source]) for f in COMPLETENESS_FIELDS}}
    golden = Counter()
    n = 0
    for (rec,) in conn.execute(
        sa.select(golden_customer.c.record).where(golden_customer.c.status == "active")
        .execution_options(yield_per=5000)
    ):
        n += 1
        for name, present in golden_completeness(rec or {}).items():
            golden[name] += present
    if n:
        out["golden"] = {"records": n, **{f: pct(golden[f], n) for f in COMPLETENESS_FIELDS}}
    return out


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
    return {
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
    rec = customer_360.c.record
    out: dict[str, Any] = {}
    for name in ("segment", "value_tier", "lifecycle"):
        col = rec[name].as_string()
        out[name] = {str(k) if k is not None else "-": int(v) for k, v in conn.execute(
            sa.select(col, sa.func.count()).group_by(col).order_by(sa.func.count().desc()))}
    out["customers"] = sum(out["segment"].values())
    consent: dict[str, dict[str, int]] = {}
    for channel in ("email", "sms", "phone", "social"):
        col = rec[("consent", channel)].as_boolean()
        counts = {k: int(v) for k, v in conn.execute(sa.select(col, sa.func.count()).group_by(col))}
        consent[channel] = {"opted_in": counts.get(True, 0), "opted_out": counts.get(False, 0),
                            "unknown": counts.get(None, 0)}
    out["consent"] = consent
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
             **{s: results[t].get(s, 0) for s in ("ok", "rejected", "error")}}
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
# Rendering


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Data-quality report — customer data hub</title>
<style>
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",Roboto,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#243b53;color:#fff;padding:16px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#bcccdc;font-size:13px}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #d9e2ec;border-radius:6px;margin:18px 0;padding:14px 18px}
h2{font-size:17px;margin:0 0 10px;color:#243b53} h3{font-size:14px;margin:14px 0 6px;color:#486581}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{border-bottom:1px solid #e4e7eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f4f8;color:#334e68;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.kpis{display:flex;flex-wrap:wrap;gap:10px}
.kpi{border:1px solid #d9e2ec;border-radius:6px;padding:8px 14px;min-width:120px;background:#f8fafc}
.kpi b{display:block;font-size:20px;color:#102a43} .kpi span{font-size:12px;color:#627d98}
.bar{display:inline-block;height:10px;background:#4098d7;border-radius:2px;vertical-align:middle}
.bad{color:#ab091e;font-weight:600} .good{color:#18794e} .muted{color:#829ab1} p.muted{font-size:12px}
code{font-size:12px;background:#f0f4f8;padding:1px 4px;border-radius:3px}
</style>
</head>
<body>
<header>
<h1>Data-quality report — customer data hub</h1>
<p>Generated {{ f.generated_at }} UTC{% if f.previous_generated_at %} · compared with the report of {{ f.previous_generated_at }}{% endif %}</p>
</header>
<main>
{% macro num(v) %}{% if v is none %}<span class="muted">–</span>{% elif v is number %}{{ "{:,}".format(v) if v is integer else v }}{% else %}{{ v }}{% endif %}{% endmacro %}
{% macro bar(v, top) %}<span class="bar" style="width:{{ (120 * v / top)|round(0, 'floor')|int if top else 0 }}px"></span>{% endmacro %}
{% macro dist(id, rows, label) %}{% set top = rows.values()|max if rows else 0 %}
<table id="{{ id }}"><tr><th>{{ label }}</th><th class="num">count</th><th></th></tr>
{% for k, v in rows.items() %}<tr><td>{{ k }}</td><td class="num">{{ num(v) }}</td><td>{{ bar(v, top) }}</td></tr>{% endfor %}
</table>{% endmacro %}

<section id="summary"><h2>Summary</h2>
<div class="kpis">
{% for key, label in [("landed_records","landed records"),("staged_records","staged records"),("quarantined_records","quarantined"),("quarantine_rate_pct","quarantine rate %"),("golden_customers","golden customers"),("steward_queue","steward queue"),("golden_quality_mean","mean golden quality"),("push_rejected","push rejections")] %}
<div class="kpi" id="kpi-{{ key }}"><b>{{ num(f.headline[key]) }}</b><span>{{ label }}</span></div>
{% endfor %}
</div>
{% if f.run_summary %}<h3>Run</h3><table id="run-summary">
{% for k, v in f.run_summary.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>{% endif %}
</section>

{% if f.trend %}<section id="trend"><h2>Trend vs previous report</h2>
<table id="trend-table"><tr><th>figure</th><th class="num">previous</th><th class="num">current</th><th class="num">change</th></tr>
{% for r in f.trend %}<tr><td>{{ r.figure }}</td><td class="num">{{ num(r.previous) }}</td><td class="num">{{ num(r.current) }}</td>
<td class="num">{% if r.delta is none %}<span class="muted">–</span>{% elif r.delta > 0 %}+{{ r.delta }}{% else %}{{ r.delta }}{% endif %}</td></tr>{% endfor %}
</table></section>{% endif %}

<section id="landing"><h2>Landing per source and entity</h2>
{% if f.landing %}<table id="landing-table"><tr><th>source</th><th>entity</th><th class="num">records</th><th>last landed (UTC)</th></tr>
{% for r in f.landing %}<tr><td>{{ r.source }}</td><td>{{ r.entity }}</td><td class="num">{{ num(r.records) }}</td><td>{{ r.last_landed_at or "" }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">Nothing landed yet.</p>{% endif %}
</section>

<section id="staging"><h2>Staged vs quarantined</h2>
{% if f.staging %}<table id="staging-table"><tr><th>source</th><th>entity</th><th class="num">staged</th><th class="num">quarantined</th><th class="num">quarantine %</th><th>top reasons</th></tr>
{% for r in f.staging %}<tr><td>{{ r.source }}</td><td>{{ r.entity }}</td><td class="num">{{ num(r.staged) }}</td><td class="num">{{ num(r.quarantined) }}</td>
<td class="num{% if r.quarantine_rate >= 5 %} bad{% endif %}">{{ r.quarantine_rate }}</td>
<td>{% for x in r.top_reasons %}<code>{{ x.reason }}</code> {{ x.count }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">Nothing staged yet.</p>{% endif %}
{% if f.quarantine_reasons %}<h3>Top quarantine reasons</h3>
<table id="quarantine-reasons"><tr><th>reason code</th><th class="num">records</th></tr>
{% for r in f.quarantine_reasons %}<tr><td><code>{{ r.reason }}</code></td><td class="num">{{ num(r.count) }}</td></tr>{% endfor %}</table>
<h3>Latest quarantined records (sample of {{ f.quarantine_sample|length }}, personal data masked)</h3>
<table id="quarantine-sample"><tr><th>source</th><th>entity</th><th>source id</th><th>reasons</th><th>quarantined (UTC)</th></tr>
{% for r in f.quarantine_sample %}<tr><td>{{ r.source }}</td><td>{{ r.entity }}</td><td>{{ r.source_id }}</td><td>{% for c in r.reasons %}<code>{{ c }}</code> {% endfor %}</td><td>{{ r.quarantined_at }}</td></tr>{% endfor %}
</table>{% endif %}
</section>

<section id="quality-flags"><h2>Field quality flags (values nulled or fixed while standardising)</h2>
{% if f.quality_flags %}<table id="quality-flags-table"><tr><th>source</th><th>flag code</th><th class="num">records</th></tr>
{% for r in f.quality_flags %}<tr><td>{{ r.source }}</td><td><code>{{ r.code }}</code></td><td class="num">{{ num(r.count) }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">No quality flags.</p>{% endif %}
</section>

<section id="completeness"><h2>Field completeness (% of customer records with a value)</h2>
{% set c = f.completeness %}
{% if c.sources or c.golden %}<table id="completeness-table"><tr><th>records of</th><th class="num">records</th>{% for fld in fields %}<th class="num">{{ fld }}</th>{% endfor %}</tr>
{% for s, r in c.sources.items() %}<tr><td>{{ s }}</td><td class="num">{{ num(r.records) }}</td>{% for fld in fields %}<td class="num">{{ r[fld] }}</td>{% endfor %}</tr>{% endfor %}
{% if c.golden %}<tr><td><b>golden</b></td><td class="num">{{ num(c.golden.records) }}</td>{% for fld in fields %}<td class="num"><b>{{ c.golden[fld] }}</b></td>{% endfor %}</tr>{% endif %}
</table>{% else %}<p class="muted">No customer records yet.</p>{% endif %}
</section>

<section id="matching"><h2>Matching and golden customers</h2>
{% set m = f.matching %}
<div class="kpis">
<div class="kpi" id="kpi-golden-active"><b>{{ num(m.golden_active) }}</b><span>active golden customers</span></div>
<div class="kpi"><b>{{ num(m.golden_retired) }}</b><span>retired golden ids</span></div>
<div class="kpi"><b>{{ num(m.records_linked) }}</b><span>linked source records</span></div>
<div class="kpi"><b>{{ m.consolidation_rate }}</b><span>consolidation %</span></div>
<div class="kpi" id="kpi-steward-queue"><b>{{ num(m.steward_queue) }}</b><span>pairs awaiting a steward</span></div>
</div>
<h3>Scored pairs per band</h3>{{ dist("pairs-by-band", m.pairs_by_band, "band") }}
<h3>Source records per golden customer</h3>{{ dist("records-per-golden", m.records_per_golden, "records") }}
<h3>Golden id events</h3>{% if m.history_events %}{{ dist("history-events", m.history_events, "event") }}{% else %}<p class="muted">No events.</p>{% endif %}
{% if m.review_decisions %}<h3>Steward decisions</h3>{{ dist("review-decisions", m.review_decisions, "decision") }}{% endif %}
</section>

<section id="golden-quality"><h2>Golden record quality score</h2>
{% set q = f.golden_quality %}
{% if q.count %}<p>{{ num(q.count) }} scored golden records · mean {{ q.mean }} · median {{ q.median }} · min {{ q.min }} · max {{ q.max }}</p>
{% set top = q.histogram|map(attribute="count")|max %}
<table id="quality-histogram"><tr><th>score</th><th class="num">golden records</th><th></th></tr>
{% for b in q.histogram %}<tr><td>{{ b.bucket }}</td><td class="num">{{ num(b.count) }}</td><td>{{ bar(b.count, top) }}</td></tr>{% endfor %}
</table>{% else %}<p class="muted">No scored golden records.</p>{% endif %}
</section>

{% if f.customer_360.customers %}<section id="customer-360"><h2>Customer 360 segments</h2>
<h3>Segment</h3>{{ dist("c360-segment", f.customer_360.segment, "segment") }}
<h3>Value tier</h3>{{ dist("c360-value-tier", f.customer_360.value_tier, "value tier") }}
<h3>Lifecycle</h3>{{ dist("c360-lifecycle", f.customer_360.lifecycle, "lifecycle") }}
<h3>Marketing consent (merged: an opt-out anywhere wins)</h3>
<table id="c360-consent"><tr><th>channel</th><th class="num">opted in</th><th class="num">opted out</th><th class="num">unknown</th></tr>
{% for ch, c in f.customer_360.consent.items() %}<tr><td>{{ ch }}</td><td class="num">{{ num(c.opted_in) }}</td><td class="num">{{ num(c.opted_out) }}</td><td class="num">{{ num(c.unknown) }}</td></tr>{% endfor %}
</table>
</section>{% endif %}

<section id="push"><h2>Push-back results per target</h2>
{% if f.push.targets %}<table id="push-table"><tr><th>target</th><th class="num">ok</th><th class="num">rejected</th><th class="num">error</th><th class="num">pending now</th><th class="num">in error now</th></tr>
{% for t in f.push.targets %}<tr><td>{{ t.target }}</td><td class="num good">{{ num(t.ok) }}</td><td class="num{% if t.rejected %} bad{% endif %}">{{ num(t.rejected) }}</td><td class="num{% if t.error %} bad{% endif %}">{{ num(t.error) }}</td><td class="num">{{ num(t.outbox_pending) }}</td><td class="num">{{ num(t.outbox_error) }}</td></tr>{% endfor %}
</table>
<p class="muted">ok / rejected / error count every attempt logged in push_result; pending and in error are outbox rows still to send.</p>
{% for t, reasons in f.push.top_reasons.items() %}<h3>Top rejection and error reasons — {{ t }}</h3>
<table class="push-reasons" data-target="{{ t }}"><tr><th>reason</th><th class="num">rows</th></tr>
{% for r in reasons %}<tr><td>{{ r.reason }}</td><td class="num">{{ num(r.count) }}</td></tr>{% endfor %}</table>{% endfor %}
{% else %}<p class="muted">Nothing pushed yet.</p>{% endif %}
</section>
</main>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(figures: Mapping[str, Any]) -> str:
    """The report page for a figures dict (as written to the JSON twin)."""
    return _ENV.from_string(_TEMPLATE).render(f=figures, fields=COMPLETENESS_FIELDS)


# --------------------------------------------------------------------------------------------------------------
# Entry point


@dataclass
class ReportStats:
    path: str
    json_path: str
    landed_records: int = 0
    staged_records: int = 0
    quarantined_records: int = 0
    golden_customers: int = 0
    steward_queue: int = 0
    push_rejected: int = 0
    trend_rows: int = 0
    html_bytes: int = 0
    headline: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"**Data-quality report** written to `{self.path}` (+ JSON twin)", "",
                 "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {'–' if v is None else v} |" for k, v in self.headline.items()]
        if self.trend_rows:
            lines += ["", f"Compared with the previous report ({self.trend_rows} figures)."]
        return "\n".join(lines)


def write_report(store: Store, out_path: str | Path = DEFAULT_REPORT_PATH,
                 run_summary: dict | None = None) -> ReportStats:
    """Write the HTML report and its JSON twin (same name, ``.json``); trend vs the previous twin if any."""
    out = Path(out_path)
    json_path = out.with_suffix(".json")
    previous = None
    if json_path.exists():
        try:
            previous = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None  # an unreadable previous twin only costs the trend

    figures = collect_figures(store)
    figures["generated_at"] = datetime.now(UTC).replace(tzinfo=None, microsecond=0).isoformat()
    figures["run_summary"] = {str(k): scrub_text(v if isinstance(v, str) else canonical_json(v))
                              for k, v in (run_summary or {}).items()}
    figures["previous_generated_at"] = (previous or {}).get("generated_at")
    figures["trend"] = trend(figures["headline"], previous)

    html = render_html(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, html)
    _atomic_write(json_path, json.dumps(jsonable(figures), ensure_ascii=False, indent=1, sort_keys=True))
    h = figures["headline"]
    return ReportStats(
        path=str(out), json_path=str(json_path),
        landed_records=h["landed_records"], staged_records=h["staged_records"],
        quarantined_records=h["quarantined_records"], golden_customers=h["golden_customers"],
        steward_queue=h["steward_queue"], push_rejected=h["push_rejected"],
        trend_rows=len(figures["trend"]), html_bytes=len(html.encode("utf-8")), headline=dict(h),
    )


def _atomic_write(path: Path, text: str) -> None:
    # readers (a browser, the next run's trend) see the old or the new file, never half of one
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
