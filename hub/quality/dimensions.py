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
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.quality.codes import bare_code, describe
from hub.quality.completeness import (
    COMPLETENESS_FIELDS,
    GOLDEN_KEYS_READ,
    PROFILE_FIELDS,
    CompletenessTally,
    customer_profile,
    profile_bits,
    profile_of_bits,
)
from hub.quality.config import DIMENSIONS, QualityConfig
from hub.quality.golden_facts import COMPARED_KEYS, FactsTally, golden_facts
from hub.store import (
    JsonPaths,
    Store,
    as_text,
    canonical_json,
    gc_paused,
    golden_customer,
    json_value,
    match_pair,
    on_psycopg2,
    parse_dt,
    quarantine,
    read_cursor,
    review_decision,
    select_in,
    staged_record,
    sync_state,
    table_fingerprint,
    update_from_values,
    xref,
    xref_marks,
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


# -- what a record holds -----------------------------------------------------------------------------------------


def _fields_present(profile: tuple[bool, ...]) -> dict[str, bool]:
    held = dict(zip(PROFILE_FIELDS, profile, strict=True))
    company = held.pop("company")
    held["name"] = held["name"] or company
    return held


def fields_present(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which completeness fields a staged customer record (JSON) holds."""
    return _fields_present(customer_profile(rec))


def is_invalid_flag(code: str) -> bool:
    return bare_code(code).endswith(INVALID_SUFFIXES)


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
                     derived: Mapping[str, tuple[str, ...]] | None = None,
                     only: Collection[str] | None = None) -> dict[str, Any]:
    """Every dimension with its overall score/status/verdict and a score/status per source.

    ``derived``: per source, id prefixes of customer records derived from transactions (``derived_prefixes``);
    they count everywhere except as a source's own duplicates. ``only``: the dimensions wanted (the checks a run
    selected: materialising the golden layer alone runs the consistency check alone), the others left out of the
    result. When the kept scores are stale and ``only`` leaves out a record-level dimension, only the wanted ones
    are scored and nothing is kept: the report (and a run of every check) scores them all and keeps them.
    """
    cfg = cfg or QualityConfig()
    derived = derived or {}
    now = now or _now()
    wanted = [name for name in DIMENSIONS if only is None or name in only]
    with store.engine.connect() as conn:
        arrived: dict[str, datetime] = {}
        for source, entity, at in conn.execute(sa.select(sync_state.c.source, sync_state.c.entity,
                                                         sync_state.c.updated_at)):
            at = parse_dt(at)
            if entity.startswith("_") or at is None:  # internal markers (staging's mapping fingerprint)
                continue
            arrived[source] = max(at, arrived.get(source, at))
        fingerprint = _inputs(conn, cfg, derived)
        saved = read_cursor(conn, "hub", CACHE_ENTITY)
    if saved and saved.get("fingerprint") == fingerprint:
        out = dict(saved["dimensions"])
    elif set(RECORD_LEVEL) <= set(wanted):
        out = _score_records(store, cfg, derived)
        store.save_cursor("hub", CACHE_ENTITY, {"fingerprint": fingerprint, "dimensions": out})
    elif set(RECORD_LEVEL) & set(wanted):
        out = _score_records(store, cfg, derived, only=frozenset(wanted))
    else:  # timeliness alone (the freshness checks of a run that only pulls)
        out = {}
    out["timeliness"] = _timeliness(cfg, arrived, now)
    out = {name: out[name] for name in wanted}
    for name in wanted:
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


RECORD_LEVEL = tuple(name for name in DIMENSIONS if name != "timeliness")  # scored from the store's records

# The record-level dimensions read every staged customer, flag list, link and golden record: at a million
# customers minutes of work that only changes when those tables do. They are kept with a fingerprint of their
# inputs (counts and newest change times, the configuration), so a sync that changed nothing — and the report
# after the quality check in the same sync — reuses them; timeliness is always computed afresh.
CACHE_ENTITY = "_quality_dimensions"


REPORT_COMPLETENESS = "_report_completeness"  # kept with the dimensions, not one of them
# [source, flag list as stored, records] of every staged record with flags: the report's flag table counts the
# same lists (at a million people a read of all 6.6 GB of staged records, once here is enough)
REPORT_FLAG_LISTS = "_report_flag_lists"


def kept_for_report(store: Store, cfg: QualityConfig | None = None,
                    derived: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Any] | None:
    """What the last scoring kept for the report — its completeness tally (``REPORT_COMPLETENESS``) and the
    staged records' flag lists (``REPORT_FLAG_LISTS``: [source, flag list as stored, records]) — when nothing
    it read changed since (the same fingerprint as the dimensions: staged records, golden records, …); else
    None."""
    cfg = cfg or QualityConfig()
    with store.engine.connect() as conn:
        saved = read_cursor(conn, "hub", CACHE_ENTITY)
        if not saved or saved.get("fingerprint") != _inputs(conn, cfg, derived or {}):
            return None
    return saved.get("dimensions")


def _inputs(conn: sa.Connection, cfg: QualityConfig, derived: Mapping[str, tuple[str, ...]]) -> str:
    sr, q, gc, mp, rd = staged_record.c, quarantine.c, golden_customer.c, match_pair.c, review_decision.c
    return table_fingerprint(
        conn,
        sa.select(sa.func.count(), sa.func.max(sr.staged_at)),
        sa.select(sa.func.count(), sa.func.max(q.quarantined_at)),
        *xref_marks(),
        sa.select(sa.func.count(), sa.func.max(gc.updated_at)),
        sa.select(sa.func.count()).where(gc.status == "active"),
        sa.select(sa.func.count(), sa.func.max(mp.scored_at)),
        sa.select(sa.func.count()).where(mp.band == "review"),
        sa.select(sa.func.count(), sa.func.max(rd.decided_at)),
        extra=(cfg.model_dump_json(), canonical_json({k: list(v) for k, v in derived.items()})),
    )


# a staged record's quality_flags text when it has none (``has_flags``), read as text or as bytes (``as_text``)
NO_FLAGS = ("[]", b"[]")


def has_flags() -> Any:
    """Staged records holding at least one quality flag: the store writes an empty list as ``[]`` (a record
    written otherwise is read, never miscounted)."""
    return sa.cast(staged_record.c.quality_flags, sa.Text) != "[]"


# below this many customer records (open cross-references) one process reads everything: forking and a second
# connection cost more
PARALLEL_MIN = 20_000


@gc_paused()
def _score_records(store: Store, cfg: QualityConfig, derived: Mapping[str, tuple[str, ...]],
                   only: frozenset[str] | None = None) -> dict[str, Any]:
    """Every dimension but timeliness, without statuses (JSON-ready: it is kept in sync_state); ``only``: just
    these dimensions (nothing for the report), reading only what they need.

    Staged customers are counted by the fields they hold from the profiles staging keeps, and golden customers by
    the quality facts the golden build keeps (``hub.quality.golden_facts``), both in SQL from an index; no record's
    JSON is read (but once for a record or golden record kept without them). The staged customers are counted in
    a forked worker with its own connection while this process reads the links, the flags, the quarantine, the
    golden customers' facts and the review queue."""
    from hub.dedupe.parallel import fork_map, worker_count

    if only is None or "consistency" in only:
        # before any worker starts: the staged customers' pass may fill profiles in a write transaction of its
        # own meanwhile (SQLite: one writer at a time)
        with store.begin() as conn:
            _fill_golden_facts(conn)
    golden_of: dict[str, str] = {}
    if only is None or "uniqueness" in only:  # duplicates inside a source and the review queue's suspects
        with store.engine.connect() as conn:
            golden_of = dict(conn.execute(
                sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))).all())
    workers = 1 if store.in_memory or len(golden_of) < PARALLEL_MIN else min(worker_count(0), 2)
    parent = os.getpid()

    def staged(_: Any) -> Counter:
        if os.getpid() == parent:
            return _staged_customers(store)
        with store.own_copy() as own:  # a child: its own connection
            return _staged_customers(own)

    rest, profiles = fork_map(lambda f: f(None), [lambda _: _the_rest(store, only), staged],
                              workers, lead=lambda f: f(None), collect=False)
    (staged_all, flag_lists, invalid, invalid_codes, held_q, facts, active, queued, decisions) = rest
    customers: Counter[str] = Counter()
    present: dict[str, Counter[str]] = defaultdict(Counter)
    tally = CompletenessTally()  # the report's completeness, from the same pass
    for (source, profile), n in profiles.items():
        customers[source] += n
        held = dict(zip(PROFILE_FIELDS, profile, strict=True))
        tally.add_customer_counts(source, n, {f: n * held[f] for f in COMPLETENESS_FIELDS})
        for name, has in _fields_present(profile).items():
            present[source][name] += n * has
    if facts.golden:
        tally.add_golden_counts(facts.golden, facts.present)

    sources = sorted(set(staged_all) | set(held_q))
    scored = {
        "completeness": lambda: _completeness(cfg, customers, present),
        "validity": lambda: _validity(cfg, sources, staged_all, invalid, held_q, invalid_codes),
        "uniqueness": lambda: _uniqueness(cfg, customers, queued, golden_of, active, derived),
        "consistency": lambda: _consistency(cfg, customers, facts),
        "accuracy": lambda: _accuracy(cfg, decisions),
    }
    out: dict[str, Any] = {name: score() for name, score in scored.items() if only is None or name in only}
    if only is None:
        out[REPORT_COMPLETENESS] = tally.figures()
        out[REPORT_FLAG_LISTS] = [[source, _text(text), n] for (source, text), n in flag_lists.items()]
    return json.loads(json.dumps(out, default=str))  # as it comes back from sync_state (key order kept)


def _staged_customers(store: Store) -> Counter[tuple[str, tuple[bool, ...]]]:
    """Per (source, which fields it holds) the number of staged customer records.

    Records are counted by the profile staging keeps with each (``staged_record.quality_profile``), in SQL: the
    JSON of every staged customer was decoded here on every sync. A record without one (staged by an older
    version, or written by something else than staging) is read once and its profile kept (``_fill_profiles``)."""
    sr = staged_record.c
    profiles: Counter[tuple[str, tuple[bool, ...]]] = Counter()
    count = (sa.select(sr.source, sr.quality_profile, sa.func.count())
             .where(sr.entity == "customers").group_by(sr.source, sr.quality_profile))
    with store.begin() as conn:
        counted = conn.execute(count).all()  # from ix_staged_profile alone
        if any(bits is None for _, bits, _ in counted):
            _fill_profiles(conn)
            counted = conn.execute(count).all()
        for source, bits, n in counted:
            profiles[source, profile_of_bits(bits)] += n
    return profiles


PROFILE_FILL_CHUNK = 5000  # records without a kept profile read (and written back) at a time


def _fill_profiles(conn: sa.Connection) -> int:
    """Keep the profile of every staged customer record that has none (``customer_profile`` of its JSON, as
    staging computes it), in key order and chunks (a store staged by an older version: every record, once).
    Returns how many were filled."""
    sr = staged_record.c
    record = as_text(sr.record, conn.dialect.name)
    filled, last = 0, ""
    while True:
        rows = conn.execute(
            sa.select(sr.record_key, record)
            .where(sr.entity == "customers", sr.quality_profile.is_(None), sr.record_key > last)
            .order_by(sr.record_key).limit(PROFILE_FILL_CHUNK)
        ).all()
        if not rows:
            return filled
        fills = [(key, profile_bits(customer_profile(json_value(text) or {}))) for key, text in rows]
        if on_psycopg2(conn):  # one statement per chunk (an executemany sends a statement per row)
            update_from_values(conn, "UPDATE staged_record SET quality_profile = v.bits FROM (VALUES {rows}) AS v "
                                     "(record_key, bits) WHERE staged_record.entity = 'customers' "
                                     "AND staged_record.record_key = v.record_key", fills, page_size=len(fills))
        else:
            conn.execute(
                staged_record.update().where(sr.entity == "customers", sr.record_key == sa.bindparam("b_key"))
                .values(quality_profile=sa.bindparam("b_bits")),
                [{"b_key": key, "b_bits": bits} for key, bits in fills],
            )
        filled += len(rows)
        last = rows[-1][0]


def _golden_facts(conn: sa.Connection) -> FactsTally:
    """The figures of the active golden customers, from the quality facts the golden build keeps with each
    (counted per distinct text from ``ix_golden_facts``; ``_fill_golden_facts`` first)."""
    gc = golden_customer.c
    counted = conn.execute(sa.select(gc.quality_facts, sa.func.count()).where(gc.status == "active")
                           .group_by(gc.quality_facts)).all()
    tally = FactsTally()
    for text, n in sorted(counted, key=lambda r: str(r[0])):
        if text is None:
            raise RuntimeError("active golden customers without quality facts: fill them first")
        tally.add(text, n)
    return tally


GOLDEN_FILL_CHUNK = 2000  # golden customers without kept facts read (and written back) at a time


def _fill_golden_facts(conn: sa.Connection) -> int:
    """Keep the quality facts of every active golden customer that has none (built by an older version, or
    written by something else than the golden build), worked out from its record and its records' staged JSON
    (the paths ``golden_facts`` reads) as the golden build works them out, in id order and chunks (none: one
    look at ``ix_golden_facts``). Returns how many were filled."""
    gc, x, sr = golden_customer.c, xref.c, staged_record.c
    dialect = conn.dialect.name
    golden_keys: tuple[Any, ...] = (*GOLDEN_KEYS_READ, "national_id", "name_key")
    golden_paths = JsonPaths(gc.record, [(k, "json") for k in golden_keys], dialect)
    member_paths = JsonPaths(sr.record, [(k, "json") for k in COMPARED_KEYS], dialect)
    memo: dict[str, list[str]] = {}
    filled, last = 0, ""
    while True:
        rows = conn.execute(
            sa.select(gc.golden_id, *golden_paths.columns)
            .where(gc.status == "active", gc.quality_facts.is_(None), gc.golden_id > last)
            .order_by(gc.golden_id).limit(GOLDEN_FILL_CHUNK)
        ).all()
        if not rows:
            return filled
        gids = [r[0] for r in rows]
        members: dict[str, list[str]] = defaultdict(list)
        for key, gid in select_in(conn, sa.select(x.record_key, x.golden_id).where(x.valid_to.is_(None)),
                                  x.golden_id, gids):
            members[gid].append(key)
        staged: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, source, *cols in select_in(
                conn, sa.select(sr.record_key, sr.source, *member_paths.columns).where(sr.entity == "customers"),
                sr.record_key, [k for gid in gids for k in members[gid]]):
            name_key, own_key, birth, nid = member_paths.values(cols)
            staged[key] = (source, {"name": {"name_key": name_key}, "name_key": own_key, "birth_date": birth,
                                    "national_id": nid})
        fills = []
        for gid, *cols in rows:
            golden = dict(zip(golden_keys, golden_paths.values(cols), strict=True))
            # in record key order, as the golden build reads a cluster's records
            mine = [staged[k] for k in sorted(members[gid]) if k in staged]
            fills.append({"b_gid": gid, "b_facts": golden_facts(golden, mine, memo)})
        conn.execute(golden_customer.update().where(gc.golden_id == sa.bindparam("b_gid"))
                     .values(quality_facts=sa.bindparam("b_facts")), fills)
        filled += len(rows)
        last = gids[-1]


def _the_rest(store: Store, only: frozenset[str] | None = None) -> tuple:
    """What the dimensions read besides the staged customers: records and flag lists per source (all entities),
    the quarantine, the active golden customers' quality facts, the review queue and the steward decisions.
    ``only``: what these dimensions read (the rest left empty)."""
    def wants(*names: str) -> bool:
        return only is None or any(n in only for n in names)

    facts = FactsTally()
    active = 0
    queued: list[tuple] = []
    decisions: list[tuple] = []
    with store.engine.connect() as conn:
        staged_all, flag_lists, invalid, invalid_codes, held_q = _flags_and_quarantine(conn) \
            if wants("validity") else (Counter(), Counter(), Counter(), defaultdict(Counter), Counter())
        if wants("consistency"):  # (and the report's completeness of the golden records, with every dimension)
            facts = _golden_facts(conn)
        if wants("uniqueness"):
            active = conn.execute(sa.select(sa.func.count()).select_from(golden_customer)
                                  .where(golden_customer.c.status == "active")).scalar_one()
            decided = sa.exists().where(review_decision.c.left_key == match_pair.c.left_key,
                                        review_decision.c.right_key == match_pair.c.right_key)
            queued = [tuple(r) for r in conn.execute(sa.select(match_pair.c.left_key, match_pair.c.right_key)
                                                     .where(match_pair.c.band == "review", ~decided))]
        if wants("accuracy"):
            decisions = [tuple(r) for r in conn.execute(
                sa.select(review_decision.c.left_key, review_decision.c.right_key, review_decision.c.decision,
                          match_pair.c.match_probability)
                .join(match_pair, sa.and_(match_pair.c.left_key == review_decision.c.left_key,
                                          match_pair.c.right_key == review_decision.c.right_key)))]
    return staged_all, flag_lists, invalid, invalid_codes, held_q, facts, active, queued, decisions


def _flags_and_quarantine(conn: sa.Connection) -> tuple[Counter[str], Counter[tuple[str, Any]], Counter[str],
                                                        dict[str, Counter[str]], Counter[str]]:
    """Records and flag lists per source (all entities), the invalid records and their codes per source, the
    quarantined records per source."""
    staged_all: Counter[str] = Counter()
    flag_lists: Counter[tuple[str, Any]] = Counter()
    invalid: Counter[str] = Counter()
    invalid_codes: dict[str, Counter[str]] = defaultdict(Counter)
    held_q: Counter[str] = Counter()
    # every record counts (all entities), by source and flag list in SQL; each distinct list is decoded once, in
    # the order of (source, list text): the top codes' ties fall the same way on every backend
    flags = as_text(staged_record.c.quality_flags, conn.dialect.name)
    grouped = conn.execute(sa.select(staged_record.c.source, flags, sa.func.count())
                           .group_by(staged_record.c.source, flags)).all()
    for source, text, n in sorted(grouped, key=lambda r: (r[0], _text(r[1]))):
        staged_all[source] += n
        if text not in NO_FLAGS:
            flag_lists[source, text] += n
    for (source, text), n in flag_lists.items():
        bad = [f for f in json_value(text) or [] if is_invalid_flag(str(f))]
        if bad:
            invalid[source] += n
            codes = Counter(bare_code(str(f)) for f in bad)  # first-met order, as record by record
            invalid_codes[source].update({c: k * n for c, k in codes.items()})
    for source, reasons in conn.execute(sa.select(quarantine.c.source, quarantine.c.reasons)):
        held_q[source] += 1
        invalid_codes[source].update(bare_code(str(r)) for r in (reasons or [])[:1])
    return staged_all, flag_lists, invalid, invalid_codes, held_q


def _text(value: str | bytes | memoryview) -> str:
    """A JSON column read as its text (``as_text``: bytes on SQLite) as a str."""
    return value if isinstance(value, str) else bytes(value).decode("utf-8", "surrogatepass")


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


def _uniqueness(cfg: QualityConfig, customers: Counter[str], queued: list[Any], golden_of: dict[str, str],
                active: int,
                derived: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    def own(key: str) -> str | None:
        source, _, sid = key.partition(":")
        return None if derived.get(source) and sid.startswith(derived[source]) else source

    accounts: Counter[str] = Counter()
    held: set[tuple[str, str]] = set()  # (golden id, source) for every golden customer holding a record of it
    for key, gid in golden_of.items():
        source = own(key)
        if source is not None:
            accounts[source] += 1
            held.add((gid, source))
    # in a golden customer the first record of a source is the original, the others its duplicates
    dupes = accounts - Counter(source for _, source in held)
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


def _consistency(cfg: QualityConfig, customers: Counter[str], facts: FactsTally) -> dict[str, Any]:
    per = {source: {"score": _pct(facts.checked[source] - facts.conflicting[source], facts.checked[source]),
                    "records_checked": facts.checked[source], "conflicting_records": facts.conflicting[source]}
           for source in sorted(customers)}
    multi = facts.several
    return {"score": _pct(multi - facts.with_conflicts, multi), "sources": per, "golden_with_several_records": multi,
            "golden_with_conflicts": facts.with_conflicts, "conflicts_by_field": dict(sorted(facts.kinds.items()))}


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
