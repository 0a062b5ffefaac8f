"""Data-quality dimensions scored 0–100 per source and overall, read from the hub store in bulk.

| dimension | per source | overall |
|---|---|---|
| completeness | mean share of the source's customer records holding each expected field | record-weighted mean |
| validity | share of the source's records (all entities) staged without quarantine or an invalid-value flag | record-weighted mean |
| uniqueness | share of the source's customer records that have no duplicate *inside the same source* | the lower of: golden customers not waiting in the steward queue as a possible duplicate, and the record-weighted per-source score |
| consistency | share of the source's records that agree with their golden customer on name, birth date, national id | share of multi-record golden customers without a conflict |
| timeliness | 100 while the newest data from the source is younger than expected, then expected / age | the worst source |
| accuracy (proxy) | steward decisions on the source's pairs that agree with the model | all decisions |

Scores are rounded to one decimal; a dimension without data (no steward decisions yet) has score ``None`` and
status ``none``. ``score_dimensions(store, cfg)`` returns a JSON-ready dict; ``status_of`` applies the
thresholds of hub.yaml ``quality:``.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from rapidfuzz import fuzz

from hub.quality.codes import bare_code, describe
from hub.quality.completeness import CompletenessTally
from hub.quality.config import DIMENSIONS, QualityConfig
from hub.store import (
    Store,
    canonical_json,
    golden_customer,
    match_pair,
    quarantine,
    read_cursor,
    review_decision,
    staged_record,
    sync_state,
    table_fingerprint,
    xref,
)

STATUS_ORDER = {"red": 0, "amber": 1, "green": 2, "none": 3}
DIMENSION_LABELS = {
    "completeness": "Completeness",
    "validity": "Validity",
    "uniqueness": "Uniqueness",
    "consistency": "Consistency",
    "timeliness": "Timeliness",
    "accuracy": "Accuracy (steward agreement)",
}
MEASURES = {
    "completeness": "Share of customer records holding each expected field (name, e-mail, phone, birth date, "
                    "address — per source as configured), averaged over the fields.",
    "validity": "Share of the records a source sent that were staged without quarantine and without an "
                "invalid, impossible or unreadable value.",
    "uniqueness": "Per source: records with no duplicate inside the same source. Overall: the lower of that "
                  "(weighted by records) and the share of golden customers not waiting in the steward queue as "
                  "a possible duplicate of another.",
    "consistency": "Records that agree with their golden customer on name, birth date and national id. "
                   "Overall: golden customers with more than one record and no such conflict.",
    "timeliness": "Age of the newest data received from each source against its expected age "
                  "(hub.yaml quality.expected_age_hours): 100 while younger, then expected ÷ age. Overall: "
                  "the stalest source.",
    "accuracy": "Steward decisions that agree with the model (match probability above or below 50 %): a "
                "proxy for how often the matching is right where people looked.",
}
FIELD_LABELS = {"name": "name", "email": "e-mail", "phone": "phone", "birth_date": "birth date",
                "address": "address", "national_id": "national id", "gender": "gender"}
# flag suffixes that mean "the value was wrong" (left out or contradicted), not "fixed" or "informational"
INVALID_SUFFIXES = (".invalid", ".impossible", ".unparseable", ".checksum", ".possible", ".future", ".partial",
                    ".format", ".zero", "_mismatch")


def status_of(score: float | None, green: float, amber: float) -> str:
    if score is None:
        return "none"
    if score >= green:
        return "green"
    if score >= amber:
        return "amber"
    return "red"


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _as_dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


# -- what a record holds -----------------------------------------------------------------------------------------


def fields_present(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which completeness fields a staged customer record (JSON) holds."""
    name = rec.get("name") or {}
    return {
        "name": bool(rec.get("full_name") or rec.get("given_name") or rec.get("family_name") or rec.get("company")
                     or (isinstance(name, Mapping) and name.get("display"))),
        "email": bool(rec.get("emails")),
        "phone": bool(rec.get("phones")),
        "birth_date": bool(rec.get("birth_date")),
        "address": any(isinstance(a, Mapping) and (a.get("street") or a.get("city") or a.get("postal_code"))
                       for a in rec.get("addresses") or []),
        "national_id": bool(rec.get("national_id")),
        "gender": bool(rec.get("gender")),
    }


def is_invalid_flag(code: str) -> bool:
    return bare_code(code).endswith(INVALID_SUFFIXES)


_DIGITS = re.compile(r"[\d_\W]+", re.UNICODE)


def _name_tokens(rec: Mapping[str, Any]) -> list[str]:
    name = rec.get("name") or {}
    key = (name.get("name_key") if isinstance(name, Mapping) else None) or rec.get("name_key") or ""
    return [t for t in _DIGITS.sub(" ", str(key).lower()).split() if t]


def names_agree(a: list[str], b: list[str]) -> bool:
    """Romanised name keys of two records could name the same person (a missing name never conflicts).

    Lenient on purpose: a shared word (surname or given name), the same letters split differently
    ('xubinhai' / 'binhai xu') or a near spelling all agree; only clearly different names conflict.
    """
    if not a or not b or set(a) & set(b):
        return True
    joined_a, joined_b = "".join(a), "".join(b)
    if joined_a in ("".join(b), "".join(reversed(b))) or joined_b in ("".join(a), "".join(reversed(a))):
        return True
    return fuzz.token_sort_ratio(" ".join(a), " ".join(b)) >= 80


# -- the scores ----------------------------------------------------------------------------------------------------


def derived_prefixes(sources: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Per source, the id prefixes of customer records a mapping derives from transactions (a web shop's guest
    checkout becomes ``guest-order-<id>``): a guest who orders twice is not a duplicate the shop should fix."""
    from hub.mappings import load_mappings

    mappers = load_mappings()
    out: dict[str, tuple[str, ...]] = {}
    for name, src in sources.items():
        mapper = mappers.get(getattr(src, "mapping_name", None) or getattr(src, "kind", ""))
        if mapper is None:
            continue
        prefixes = {t.source_id_prefix for ts in mapper.targets.values() for t in ts
                    if t.entity == "customers" and t.source_id_prefix}
        if prefixes:
            out[name] = tuple(sorted(prefixes))
    return out


def score_dimensions(store: Store, cfg: QualityConfig | None = None, now: datetime | None = None,
                     derived: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Every dimension with its overall score/status/verdict and a score/status per source.

    ``derived``: per source, id prefixes of customer records derived from transactions (``derived_prefixes``);
    they count everywhere except as a source's own duplicates.
    """
    cfg = cfg or QualityConfig()
    derived = derived or {}
    now = now or _now()
    with store.engine.connect() as conn:
        arrived: dict[str, datetime] = {}
        for source, entity, at in conn.execute(sa.select(sync_state.c.source, sync_state.c.entity,
                                                         sync_state.c.updated_at)):
            at = _as_dt(at)
            if entity.startswith("_") or at is None:  # internal markers (staging's mapping fingerprint)
                continue
            arrived[source] = max(at, arrived.get(source, at))
        fingerprint = _inputs(conn, cfg, derived)
        saved = read_cursor(conn, "hub", CACHE_ENTITY)
    if saved and saved.get("fingerprint") == fingerprint:
        out = dict(saved["dimensions"])
    else:
        out = _score_records(store, cfg, derived)
        store.save_cursor("hub", CACHE_ENTITY, {"fingerprint": fingerprint, "dimensions": out})
    out["timeliness"] = _timeliness(cfg, arrived, now)
    out = {name: out[name] for name in DIMENSIONS}
    for name in DIMENSIONS:
        d = out[name]
        t = cfg.threshold(name)
        d["status"] = status_of(d["score"], t.green, t.amber)
        d["thresholds"] = {"green": t.green, "amber": t.amber}
        d["label"] = DIMENSION_LABELS[name]
        d["measure"] = MEASURES[name]
        for src, s in d["sources"].items():
            ts = cfg.threshold(name, src)
            s["status"] = status_of(s["score"], ts.green, ts.amber)
            s["thresholds"] = {"green": ts.green, "amber": ts.amber}
        d["verdict"] = _verdict(name, d)
    return out


# The record-level dimensions read every staged customer, flag list, link and golden record: at a million
# customers minutes of work that only changes when those tables do. They are kept with a fingerprint of their
# inputs (counts and newest change times, the configuration), so a sync that changed nothing — and the report
# after the quality check in the same sync — reuses them; timeliness is always computed afresh.
CACHE_ENTITY = "_quality_dimensions"


REPORT_COMPLETENESS = "_report_completeness"  # kept with the dimensions, not one of them


def kept_report_completeness(store: Store, cfg: QualityConfig | None = None,
                             derived: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any] | None:
    """The report's completeness figures as the last scoring tallied them, when nothing they were read from
    changed since (the same fingerprint as the dimensions: staged records, golden records, …); else None."""
    cfg = cfg or QualityConfig()
    with store.engine.connect() as conn:
        saved = read_cursor(conn, "hub", CACHE_ENTITY)
        if not saved or REPORT_COMPLETENESS not in (saved.get("dimensions") or {}):
            return None
        if saved.get("fingerprint") != _inputs(conn, cfg, derived or {}):
            return None
    return saved["dimensions"][REPORT_COMPLETENESS]


def _inputs(conn: sa.Connection, cfg: QualityConfig, derived: Mapping[str, tuple[str, ...]]) -> str:
    sr, q, gc, mp, rd = staged_record.c, quarantine.c, golden_customer.c, match_pair.c, review_decision.c
    return table_fingerprint(
        conn,
        sa.select(sa.func.count(), sa.func.max(sr.staged_at)),
        sa.select(sa.func.count(), sa.func.max(q.quarantined_at)),
        sa.select(sa.func.count(), sa.func.max(xref.c.id), sa.func.max(xref.c.valid_from),
                  sa.func.max(xref.c.valid_to)),
        sa.select(sa.func.count(), sa.func.max(gc.updated_at)),
        sa.select(sa.func.count()).where(gc.status == "active"),
        sa.select(sa.func.count(), sa.func.max(mp.scored_at)),
        sa.select(sa.func.count()).where(mp.band == "review"),
        sa.select(sa.func.count(), sa.func.max(rd.decided_at)),
        extra=(cfg.model_dump_json(), canonical_json({k: list(v) for k, v in derived.items()})),
    )


def has_flags() -> Any:
    """Staged records holding at least one quality flag: the store writes an empty list as ``[]`` (a record
    written otherwise is read, never miscounted)."""
    return sa.cast(staged_record.c.quality_flags, sa.Text) != "[]"


def _score_records(store: Store, cfg: QualityConfig, derived: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """Every dimension but timeliness, without statuses (JSON-ready: it is kept in sync_state)."""
    with store.engine.connect() as conn:
        golden_of: dict[str, str] = dict(conn.execute(
            sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))).all())
        members: dict[str, list[str]] = defaultdict(list)
        for key, gid in golden_of.items():
            members[gid].append(key)

        tally = CompletenessTally()  # the report's completeness, from the same pass
        customers: Counter[str] = Counter()
        present: dict[str, Counter[str]] = defaultdict(Counter)
        slim: dict[str, tuple[str, list[str], str | None, str | None]] = {}  # key -> source, name, birth, id
        for source, key, rec in conn.execute(
            sa.select(staged_record.c.source, staged_record.c.record_key, staged_record.c.record)
            .where(staged_record.c.entity == "customers").execution_options(yield_per=5000)
        ):
            rec = rec or {}
            tally.add_customer(source, rec)
            customers[source] += 1
            for name, has in fields_present(rec).items():
                present[source][name] += has
            gid = golden_of.get(key)
            if gid is not None and len(members[gid]) > 1:
                slim[key] = (source, _name_tokens(rec), rec.get("birth_date"), rec.get("national_id"))

        # every record counts; only those with a flag are read (most have none)
        staged_all: Counter[str] = Counter({source: int(n) for source, n in conn.execute(
            sa.select(staged_record.c.source, sa.func.count()).group_by(staged_record.c.source))})
        invalid: Counter[str] = Counter()
        invalid_codes: dict[str, Counter[str]] = defaultdict(Counter)
        for source, flags in conn.execute(
            sa.select(staged_record.c.source, staged_record.c.quality_flags).where(has_flags())
            .execution_options(yield_per=5000)
        ):
            bad = [f for f in flags or [] if is_invalid_flag(str(f))]
            if bad:
                invalid[source] += 1
                invalid_codes[source].update(bare_code(str(f)) for f in bad)
        held: Counter[str] = Counter()
        for source, reasons in conn.execute(sa.select(quarantine.c.source, quarantine.c.reasons)):
            held[source] += 1
            invalid_codes[source].update(bare_code(str(r)) for r in (reasons or [])[:1])

        golden_rows: dict[str, Any] = {}
        for gid, rec in conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                                     .where(golden_customer.c.status == "active")
                                     .execution_options(yield_per=5000)):
            tally.add_golden(rec)
            if len(members.get(gid, ())) > 1:
                golden_rows[gid] = rec or {}
        active = conn.execute(sa.select(sa.func.count()).select_from(golden_customer)
                              .where(golden_customer.c.status == "active")).scalar_one()

        decided = sa.exists().where(review_decision.c.left_key == match_pair.c.left_key,
                                    review_decision.c.right_key == match_pair.c.right_key)
        queued = conn.execute(sa.select(match_pair.c.left_key, match_pair.c.right_key)
                              .where(match_pair.c.band == "review", ~decided)).all()
        decisions = conn.execute(
            sa.select(review_decision.c.left_key, review_decision.c.right_key, review_decision.c.decision,
                      match_pair.c.match_probability)
            .join(match_pair, sa.and_(match_pair.c.left_key == review_decision.c.left_key,
                                      match_pair.c.right_key == review_decision.c.right_key))).all()

    sources = sorted(set(staged_all) | set(held))
    out: dict[str, Any] = {}
    out["completeness"] = _completeness(cfg, customers, present)
    out["validity"] = _validity(cfg, sources, staged_all, invalid, held, invalid_codes)
    out["uniqueness"] = _uniqueness(cfg, customers, members, queued, golden_of, active, derived)
    out["consistency"] = _consistency(cfg, customers, slim, golden_rows, golden_of)
    out["accuracy"] = _accuracy(cfg, decisions)
    out[REPORT_COMPLETENESS] = tally.figures()
    return json.loads(json.dumps(out, default=str))  # as it comes back from sync_state (key order kept)


def overall_status(dimensions: Mapping[str, Any]) -> str:
    """The worst status of any dimension or source that has data; 'none' when nothing could be scored."""
    statuses = [d["status"] for d in dimensions.values()]
    statuses += [s["status"] for d in dimensions.values() for s in d["sources"].values()]
    known = [s for s in statuses if s != "none"]
    return min(known, key=STATUS_ORDER.__getitem__) if known else "none"


def _weighted(scores: Mapping[str, float | None], weights: Mapping[str, int]) -> float | None:
    pairs = [(s, weights.get(src, 0)) for src, s in scores.items() if s is not None and weights.get(src, 0)]
    total = sum(w for _, w in pairs)
    return round(sum(s * w for s, w in pairs) / total, 1) if total else None


def _completeness(cfg: QualityConfig, customers: Counter[str], present: dict[str, Counter[str]]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for source, n in sorted(customers.items()):
        fields = cfg.fields_for(source)
        by_field = {f: _pct(present[source][f], n) for f in fields}
        scores = [v for v in by_field.values() if v is not None]
        per[source] = {"score": round(sum(scores) / len(scores), 1) if scores else None, "records": n,
                       "fields": by_field}
    return {"score": _weighted({s: p["score"] for s, p in per.items()}, customers), "sources": per}


def _validity(cfg: QualityConfig, sources: list[str], staged: Counter[str], invalid: Counter[str],
              held: Counter[str], codes: dict[str, Counter[str]]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    weights: dict[str, int] = {}
    for source in sources:
        total = staged[source] + held[source]
        if not total:
            continue
        weights[source] = total
        per[source] = {"score": _pct(total - invalid[source] - held[source], total), "records": total,
                       "quarantined": held[source], "invalid_values": invalid[source],
                       "top_codes": [{"code": c, "count": k, "label": describe(c).label}
                                     for c, k in codes[source].most_common(3)]}
    return {"score": _weighted({s: p["score"] for s, p in per.items()}, weights), "sources": per}


def _uniqueness(cfg: QualityConfig, customers: Counter[str], members: dict[str, list[str]],
                queued: list[Any], golden_of: dict[str, str], active: int,
                derived: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    def own(key: str) -> str | None:
        source, _, sid = key.partition(":")
        return None if derived.get(source) and sid.startswith(derived[source]) else source

    dupes: Counter[str] = Counter()
    for keys in members.values():
        per_source = Counter(s for s in map(own, keys) if s is not None)
        for source, n in per_source.items():
            if n > 1:
                dupes[source] += n - 1  # the first is the original, the others its duplicates
    accounts = Counter(s for s in map(own, golden_of) if s is not None)
    per = {source: {"score": _pct(accounts[source] - dupes[source], accounts[source]), "records": accounts[source],
                    "duplicates_within_source": dupes[source]}
           for source in sorted(customers)}
    suspects = {g for left, right in queued
                for g in (golden_of.get(left), golden_of.get(right))
                if g is not None and golden_of.get(left) != golden_of.get(right)}
    # overall: the worse of "no golden customer awaits review as a possible duplicate" and the record-weighted
    # share without duplicates inside their own source (a source full of copies must not read as green)
    queue_score = _pct(active - len(suspects), active)
    within = _weighted({s: p["score"] for s, p in per.items()}, accounts)
    scores = [x for x in (queue_score, within) if x is not None]
    return {"score": min(scores) if scores else None, "sources": per, "golden_customers": active,
            "possible_duplicates": len(suspects)}


def _consistency(cfg: QualityConfig, customers: Counter[str], slim: dict[str, tuple], golden_rows: dict[str, Any],
                 golden_of: dict[str, str]) -> dict[str, Any]:
    checked: Counter[str] = Counter()
    conflicting: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    bad_golden: set[str] = set()
    for key, (source, name, birth, nid) in slim.items():
        gid = golden_of[key]
        golden = golden_rows.get(gid)
        if golden is None:
            continue
        checked[source] += 1
        found = []
        if birth and golden.get("birth_date") and str(birth) != str(golden["birth_date"]):
            found.append("birth_date")
        if nid and golden.get("national_id") and nid != golden["national_id"]:
            found.append("national_id")
        if not names_agree(name, _name_tokens(golden)):
            found.append("name")
        if found:
            conflicting[source] += 1
            bad_golden.add(gid)
            kinds.update(found)
    per = {source: {"score": _pct(checked[source] - conflicting[source], checked[source]),
                    "records_checked": checked[source], "conflicting_records": conflicting[source]}
           for source in sorted(customers)}
    multi = len(golden_rows)
    return {"score": _pct(multi - len(bad_golden), multi), "sources": per, "golden_with_several_records": multi,
            "golden_with_conflicts": len(bad_golden), "conflicts_by_field": dict(kinds)}


def _timeliness(cfg: QualityConfig, arrived: dict[str, datetime], now: datetime) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for source, at in sorted(arrived.items()):
        age_h = max((now - at).total_seconds() / 3600, 0.0)
        expected = cfg.expected_age(source)
        score = 100.0 if age_h <= expected else round(100.0 * expected / age_h, 1)
        per[source] = {"score": score, "age_hours": round(age_h, 1), "expected_hours": expected,
                       "last_data_at": at.replace(microsecond=0).isoformat(sep=" ")}
    scores = [p["score"] for p in per.values()]
    return {"score": min(scores) if scores else None, "sources": per}


def _accuracy(cfg: QualityConfig, decisions: list[Any]) -> dict[str, Any]:
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    all_agree = 0
    for left, right, decision, prob in decisions:
        ok = (decision == "match") == (float(prob) >= 0.5)
        all_agree += ok
        for source in {left.partition(":")[0], right.partition(":")[0]}:
            total[source] += 1
            agree[source] += ok
    per = {s: {"score": _pct(agree[s], n), "decisions": n, "agreeing": agree[s]} for s, n in sorted(total.items())}
    return {"score": _pct(all_agree, len(decisions)), "sources": per, "decisions": len(decisions),
            "agreeing": all_agree}


# -- one line per dimension ------------------------------------------------------------------------------------------


def _worst_source(d: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    scored = [(s, v) for s, v in d["sources"].items() if v.get("score") is not None]
    if not scored:
        return None
    return min(scored, key=lambda sv: (STATUS_ORDER[sv[1]["status"]], sv[1]["score"]))


def _verdict(name: str, d: Mapping[str, Any]) -> str:
    if d["score"] is None:
        if name == "accuracy":
            return "No steward decisions yet: nothing to compare the model with (`hub review list`)."
        return "No data yet."
    worst = _worst_source(d)
    ok = d["status"] == "green" and (worst is None or worst[1]["status"] == "green")
    head = f"{d['score']:g} overall"
    if name == "completeness" and worst:
        src, v = worst
        fields = {f: p for f, p in v["fields"].items() if p is not None}
        low = min(fields, key=fields.get) if fields else None
        tail = f"{src} has {FIELD_LABELS.get(low, low)} in {fields[low]:g} % of its records" if low else src
        return f"{head}; {'all sources above threshold' if ok else 'weakest: ' + tail}."
    if name == "validity" and worst:
        src, v = worst
        if ok:
            return f"{head}; all sources above threshold."
        top = v["top_codes"][0]["label"].lower() if v["top_codes"] else "invalid values"
        return (f"{head}; {src}: {v['quarantined']:,} records in quarantine and {v['invalid_values']:,} with an "
                f"invalid value (mostly: {top}).")
    if name == "uniqueness":
        dup = sum(v["duplicates_within_source"] for v in d["sources"].values())
        tail = f"{d['possible_duplicates']:,} golden customers await a steward as possible duplicates"
        if worst and worst[1]["duplicates_within_source"]:
            tail += f"; {worst[0]} holds {worst[1]['duplicates_within_source']:,} duplicates of its own"
        return f"{head}; {tail}." if dup or d["possible_duplicates"] else f"{head}; no duplicates left."
    if name == "consistency":
        by = d["conflicts_by_field"]
        parts = [f"{n:,} {FIELD_LABELS.get(f, f)}" for f, n in sorted(by.items(), key=lambda kv: -kv[1])]
        return (f"{head}; {d['golden_with_conflicts']:,} of {d['golden_with_several_records']:,} golden customers "
                f"with several records hold conflicting values" + (f" ({', '.join(parts)})." if parts else "."))
    if name == "timeliness" and worst:
        src, v = worst
        if ok:
            return f"{head}; every source delivered within its expected age."
        return (f"{head}; newest data from {src} is {v['age_hours']:g} h old (expected within "
                f"{v['expected_hours']:g} h) — check that its sync runs.")
    if name == "accuracy":
        return (f"{head}; stewards agreed with the model on {d['agreeing']:,} of {d['decisions']:,} "
                f"decided pairs.")
    return head + "."
