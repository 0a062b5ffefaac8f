"""The customer 360 view: one row per active golden customer with everything the hub knows about them.

Inputs (read in bulk, a handful of queries whatever the size — no per-customer queries):
  golden_customer (active)   the profile (its field lineage stays on the golden record)
  xref (valid_to IS NULL)    source customer record -> golden id
  staged_record orders       linked through customer_key -> xref; the same order seen in two systems
                             (same order number) counts once
  staged_record shipments    linked through customer_key, or through their order
  staged_record interactions calls by E.164 phone; social events through customer_key

Consent is the golden record's: one rule merges it everywhere (``hub.consent``: per channel the most recent
explicit statement wins), so the view and the golden record never disagree and an opt-in after an opt-out
counts. Computations are pure functions (``score_rfm``, ``value_tier``, ``lifecycle_stage``, ``segment_for``,
``dedupe_orders``) separate from the store I/O in ``build_360``. Only rows whose record hash
changed are written (diff-only); the hash leaves out ``computed_at`` so an unchanged customer is not rewritten.

Revenue figures (frequency, monetary, first/last order, lifecycle) count orders whose status is not excluded
(cancelled / refunded / draft); ``orders_count`` and ``recent_orders`` show every distinct order.

Configuration (the ``segments`` section; every key optional, defaults shown)::

    segments:
      value_tiers:              # first tier whose minimums are ALL met; monetary in the base currency
        platinum: {min_monetary: 20000, min_frequency: 5}
        gold:     {min_monetary: 5000,  min_frequency: 3}
        silver:   {min_monetary: 1000,  min_frequency: 1}
        bronze:   {min_monetary: 0.01,  min_frequency: 1}
      lifecycle: {new_days: 90, at_risk_days: 180, lapsed_days: 365}
      rules:                    # first match names the segment; keys: lifecycle, value_tier (lists),
        - {segment: prospect, lifecycle: [prospect]}   # min_frequency, min_monetary, min_r/f/m_score
        - {segment: lapsed, lifecycle: [lapsed]}
        - {segment: at_risk, lifecycle: [at_risk]}
        - {segment: vip, value_tier: [platinum, gold]}
        - {segment: new, lifecycle: [new]}
        - {segment: loyal, min_frequency: 3}
        - {segment: regular}
      exclude_statuses: [cancelled, refunded, draft]
      currency_rates: {}        # e.g. {USD: 7.1, EUR: 7.7}: 1 unit = N base units
      recent_orders: 5
      social_sources: [social]  # sources whose customer records are social accounts
      link_guest_orders: true
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import ValidationError

from hub.models import Customer360, GoldenCustomer, Interaction, Order, Rfm, Shipment
from hub.store import (
    IN_LIST,
    JsonPaths,
    Store,
    bound_time,
    canonical_json,
    chunked,
    customer_360,
    customer_360_link,
    customer_360_rank,
    gc_paused,
    golden_customer,
    insert_rows,
    json_bytes,
    json_text,
    json_text_param,
    newest_xref_change,
    not_among,
    parse_dt,
    payload_hash,
    read_cursor,
    record_key,
    select_in,
    staged_record,
    table_fingerprint,
    write_cursor,
    xref,
    xref_marks,
)
from hub.view_json import Slow, list_writer, model_writer

log = logging.getLogger(__name__)

VALUE_TIERS = ("platinum", "gold", "silver", "bronze")
LIFECYCLES = ("prospect", "new", "active", "at_risk", "lapsed")
OPEN_SHIPMENT_STATUSES = frozenset({"draft", "waiting", "packed", "shipped"})
# how many open shipments and calls the view lists (the screen pop shows them while the phone rings)
SHOWN_OPEN_SHIPMENTS = 5
SHOWN_RECENT_CALLS = 5
_CHUNK = 1000

# --------------------------------------------------------------------------------------------------------------
# Configuration (the ``segments`` section of hub.yaml)

DEFAULT_VALUE_TIERS: dict[str, dict[str, float]] = {
    # first tier whose minimums are ALL met wins; monetary in the base currency (CNY in the demo)
    "platinum": {"min_monetary": 20000, "min_frequency": 5},
    "gold": {"min_monetary": 5000, "min_frequency": 3},
    "silver": {"min_monetary": 1000, "min_frequency": 1},
    "bronze": {"min_monetary": 0.01, "min_frequency": 1},
}
DEFAULT_LIFECYCLE = {"new_days": 90, "at_risk_days": 180, "lapsed_days": 365}
# ordered: the first rule whose conditions all hold names the segment
DEFAULT_SEGMENT_RULES: list[dict[str, Any]] = [
    {"segment": "prospect", "lifecycle": ["prospect"]},
    {"segment": "lapsed", "lifecycle": ["lapsed"]},
    {"segment": "at_risk", "lifecycle": ["at_risk"]},
    {"segment": "vip", "value_tier": ["platinum", "gold"]},
    {"segment": "new", "lifecycle": ["new"]},
    {"segment": "loyal", "min_frequency": 3},
    {"segment": "regular"},
]
_RULE_KEYS = {"segment", "lifecycle", "value_tier", "min_frequency", "min_monetary", "min_r_score",
              "min_f_score", "min_m_score"}


@dataclass(frozen=True)
class SegmentsConfig:
    value_tiers: dict[str, dict[str, float]] = field(default_factory=lambda: dict(DEFAULT_VALUE_TIERS))
    new_days: int = 90
    at_risk_days: int = 180
    lapsed_days: int = 365
    rules: list[dict[str, Any]] = field(default_factory=lambda: list(DEFAULT_SEGMENT_RULES))
    # orders in these statuses are kept in the history but earn no revenue / frequency
    exclude_statuses: frozenset[str] = frozenset({"cancelled", "refunded", "draft"})
    # optional conversion to one base currency: {"USD": 7.1} means 1 USD = 7.1 base units
    currency_rates: dict[str, Decimal] = field(default_factory=dict)
    recent_orders: int = 5
    social_sources: frozenset[str] = frozenset({"social"})
    # guest checkouts (no customer record) join the golden customer who alone holds their billing phone/email
    link_guest_orders: bool = True

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> SegmentsConfig:
        cfg = dict(cfg or {})
        tiers = cfg.get("value_tiers") or DEFAULT_VALUE_TIERS
        unknown = set(tiers) - set(VALUE_TIERS)
        if unknown:
            raise ValueError(f"segments.value_tiers: unknown tier(s) {sorted(unknown)}; use {VALUE_TIERS}")
        life = {**DEFAULT_LIFECYCLE, **(cfg.get("lifecycle") or {})}
        if not life["new_days"] > 0 or not life["at_risk_days"] < life["lapsed_days"]:
            raise ValueError("segments.lifecycle: need new_days > 0 and at_risk_days < lapsed_days")
        rules = cfg.get("rules") or DEFAULT_SEGMENT_RULES
        for rule in rules:
            bad = set(rule) - _RULE_KEYS
            if bad or "segment" not in rule:
                raise ValueError(f"segments.rules: bad rule {rule!r} (keys allowed: {sorted(_RULE_KEYS)})")
        return cls(
            value_tiers={t: dict(tiers[t]) for t in VALUE_TIERS if t in tiers},
            new_days=int(life["new_days"]),
            at_risk_days=int(life["at_risk_days"]),
            lapsed_days=int(life["lapsed_days"]),
            rules=[dict(r) for r in rules],
            exclude_statuses=frozenset(cfg.get("exclude_statuses") or cls.exclude_statuses),
            currency_rates={str(k).upper(): Decimal(str(v)) for k, v in (cfg.get("currency_rates") or {}).items()},
            recent_orders=int(cfg.get("recent_orders", 5)),
            social_sources=frozenset(cfg.get("social_sources") or cls.social_sources),
            link_guest_orders=bool(cfg.get("link_guest_orders", True)),
        )


# --------------------------------------------------------------------------------------------------------------
# Pure computations


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def order_number_key(number: Any) -> str | None:
    """Comparable order number: systems differ in case and padding ('wc-1001 ' vs 'WC-1001')."""
    if number is None:
        return None
    key = "".join(str(number).split()).upper()
    return key or None


def _order_sort_key(order: Mapping[str, Any]) -> tuple:
    upd = parse_dt(order.get("updated_at")) or parse_dt(order.get("ordered_at")) or datetime.min
    return (upd, str(order.get("source", "")), str(order.get("source_id", "")))


def dedupe_orders(orders: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """One customer's orders with the same order seen in several systems kept once.

    Orders are the same when their normalised order numbers are equal; the most recently updated copy wins
    (it carries the freshest status). Orders without a number are never merged. Returns (orders, duplicates).
    """
    by_number: dict[str, Mapping[str, Any]] = {}
    kept: list[Mapping[str, Any]] = []
    dupes = 0
    for order in orders:
        key = order_number_key(order.get("order_number"))
        if key is None:
            kept.append(order)
            continue
        prev = by_number.get(key)
        if prev is None:
            by_number[key] = order
        else:
            dupes += 1
            if _order_sort_key(order) > _order_sort_key(prev):
                by_number[key] = order
    return kept + list(by_number.values()), dupes


def quintile_scores(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """1..5 score by percentile rank across the population; ties share a score."""
    if not values:
        return []
    import pandas as pd  # here: hub.config imports this module for its settings, and pandas costs ~0.7 s

    s = pd.Series(values, dtype="float64")
    if not higher_is_better:
        s = -s
    pct = s.rank(method="average", pct=True)
    return [min(5, max(1, math.ceil(p * 5 - 1e-9))) for p in pct]


def rfm_scores(metrics: Sequence[tuple[int | None, int, Decimal]]) -> list[tuple[int | None, int | None, int | None]]:
    """(recency_days, frequency, monetary) per customer -> (r, f, m) quintile scores (see ``score_rfm``)."""
    buyers = [i for i, (_, f, _) in enumerate(metrics) if f > 0]
    dated = [i for i in buyers if metrics[i][0] is not None]
    f_scores = dict(zip(buyers, quintile_scores([metrics[i][1] for i in buyers]), strict=True))
    m_scores = dict(zip(buyers, quintile_scores([float(metrics[i][2]) for i in buyers]), strict=True))
    r_scores = dict(zip(dated, quintile_scores([metrics[i][0] for i in dated], higher_is_better=False),
                        strict=True))
    return [(r_scores.get(i), f_scores.get(i), m_scores.get(i)) for i in range(len(metrics))]


def score_rfm(metrics: Sequence[tuple[int | None, int, Decimal]]) -> list[Rfm]:
    """(recency_days, frequency, monetary) per customer -> Rfm with quintile scores.

    Only customers with at least one revenue order are scored (prospects have no RFM position); recency is
    scored among those whose last order date is known.
    """
    return [Rfm(recency_days=rec, frequency=freq, monetary=mon, r_score=r, f_score=f, m_score=m)
            for (rec, freq, mon), (r, f, m) in zip(metrics, rfm_scores(metrics), strict=True)]


def value_tier(monetary: Decimal, frequency: int, tiers: Mapping[str, Mapping[str, float]]) -> str:
    """Highest tier whose minimum monetary AND minimum frequency are both met, else 'none'."""
    for tier in VALUE_TIERS:
        rule = tiers.get(tier)
        if rule is None:
            continue
        if monetary >= Decimal(str(rule.get("min_monetary", 0))) and frequency >= int(rule.get("min_frequency", 0)):
            if frequency > 0 or monetary > 0:
                return tier
    return "none"


def lifecycle_stage(
    first_order_at: datetime | None,
    last_order_at: datetime | None,
    frequency: int,
    as_of: datetime,
    new_days: int = 90,
    at_risk_days: int = 180,
    lapsed_days: int = 365,
) -> str:
    if frequency <= 0:
        return "prospect"
    if last_order_at is not None:
        idle = (as_of - last_order_at).days
        if idle > lapsed_days:
            return "lapsed"
        if idle > at_risk_days:
            return "at_risk"
    if first_order_at is not None and (as_of - first_order_at).days < new_days:
        return "new"
    return "active"


def segment_for(rfm: Rfm, tier: str, lifecycle: str, rules: Sequence[Mapping[str, Any]]) -> str | None:
    """First rule whose conditions all hold (lists: membership; min_*: thresholds)."""
    for rule in rules:
        if "lifecycle" in rule and lifecycle not in rule["lifecycle"]:
            continue
        if "value_tier" in rule and tier not in rule["value_tier"]:
            continue
        if rfm.frequency < int(rule.get("min_frequency", 0)):
            continue
        if rfm.monetary < Decimal(str(rule.get("min_monetary", 0))):
            continue
        for name, score in (("min_r_score", rfm.r_score), ("min_f_score", rfm.f_score),
                            ("min_m_score", rfm.m_score)):
            if name in rule and (score is None or score < int(rule[name])):
                break
        else:
            return str(rule["segment"])
    return None


def guest_order_owner(order: Mapping[str, Any], phone_owners: Mapping[str, Sequence[str]],
                      email_owners: Mapping[str, Sequence[str]]) -> str | None:
    """The golden customer of a guest order: the only holder of its billing phone, else of its billing email.

    A number or address shared by several golden customers links nothing (no guessing on revenue).
    """
    phone = order.get("billing_phone")
    owners = phone_owners.get(phone) if phone else None
    if owners and len(set(owners)) == 1:
        return owners[0]
    email = (order.get("billing_email") or "").strip().lower()
    owners = email_owners.get(email) if email else None
    if owners and len(set(owners)) == 1:
        return owners[0]
    return None


def golden_phones(profile: Mapping[str, Any]) -> list[str]:
    phones = list(profile.get("phones") or [])
    primary = profile.get("primary_phone")
    if primary and primary not in phones:
        phones.insert(0, primary)
    return [p for p in phones if p]


# --------------------------------------------------------------------------------------------------------------
# Stats


@dataclass
class C360Stats:
    golden_customers: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    orders_linked: int = 0
    orders_unlinked: int = 0
    guest_orders_linked: int = 0
    duplicate_orders: int = 0
    shipments_linked: int = 0
    calls_linked: int = 0
    social_linked: int = 0
    invalid: int = 0  # golden records whose view failed validation (logged by golden id, skipped)
    skipped: bool = False  # nothing the view is built from changed since the last build: not rebuilt
    built: int = 0  # golden customers whose view was computed this run (all of them on a full build)
    value_tiers: dict[str, int] = field(default_factory=dict)
    lifecycles: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def markdown(self) -> str:
        if self.skipped:
            return (f"**Customer 360** — {self.golden_customers} golden customers: nothing it is built from "
                    f"changed since the last build, not rebuilt ({self.seconds:.1f}s)")
        lines = [
            f"**Customer 360** — {self.golden_customers} golden customers in {self.seconds:.1f}s",
            "",
            "| written | inserted | updated | unchanged | removed |",
            "|---|---|---|---|---|",
            f"| {self.inserted + self.updated} | {self.inserted} | {self.updated} | {self.unchanged} "
            f"| {self.removed} |",
            "",
            f"Orders linked {self.orders_linked} (guest checkouts by billing phone/email "
            f"{self.guest_orders_linked}; unlinked {self.orders_unlinked}; cross-system duplicates "
            f"{self.duplicate_orders}); shipments {self.shipments_linked}; calls {self.calls_linked}; "
            f"social events {self.social_linked}.",
        ]
        if self.invalid:
            lines += ["", f"**{self.invalid} golden records skipped: invalid (see the log for golden ids).**"]
        for title, dist in (("value tier", self.value_tiers), ("lifecycle", self.lifecycles),
                            ("segment", self.segments)):
            lines += ["", f"| {title} | customers |", "|---|---|"]
            lines += [f"| {k} | {v} |" for k, v in sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Store I/O


# The population is processed in chunks of golden ids: whole-population state is kept to what links records
# to golden customers and three numbers per customer for the RFM quintiles. Which orders, shipments and
# interactions belong to whom is persisted (customer_360_link); each chunk reads its customers' records through
# it. A full build works it out in one pass over every record's linking fields (record key -> golden id and
# phone / e-mail -> holders of the whole population) into a temporary table on the build's own connection,
# diffed into the persisted links; an incremental one relinks only the records whose owners can have changed
# (``_relink``: the owners of the keys, phones and e-mails those records name, no more). Measured at 20k
# people: the all-in-memory build held ~21 KB per customer.
_GID_CHUNK = 2000
_links_meta = sa.MetaData()
_links = sa.Table(
    "tmp_c360_owner", _links_meta,
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("record_key", sa.String(320), nullable=False),
    sa.Column("golden_id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    prefixes=["TEMPORARY"],
)
_LINK_COLS = ("entity", "record_key", "golden_id", "kind")  # kind: an interaction's, else ""
# the phones / e-mails an incremental relink asks about, for the database to search the population with (one
# scan in SQL instead of every row through Python)
_wanted = sa.Table(
    "tmp_c360_wanted", _links_meta,
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.String(320), nullable=False),
    prefixes=["TEMPORARY"],
)
_PROFILE_FIELDS = frozenset(GoldenCustomer.model_fields)


def _profile(gid: str, rec: Mapping[str, Any] | None, score: float | None) -> dict[str, Any]:
    # the field lineage stays on the golden record (golden_customer.lineage, `hub export golden`): copied into
    # every view it was ~40 % of the 360 table (1.9 of 4.9 KB a row at 20k people)
    profile = {k: v for k, v in (rec or {}).items() if k in _PROFILE_FIELDS and k != "lineage"}
    profile["golden_id"] = gid
    if score is not None and profile.get("quality_score") is None:
        profile["quality_score"] = score
    return profile


def _owner(customer_key: str | None, source: str, csid: Any, key_to_golden: Mapping[str, str]) -> str | None:
    if customer_key:
        gid = key_to_golden.get(customer_key)
        if gid:
            return gid
    if csid:
        return key_to_golden.get(record_key(source, str(csid)))
    return None


# The link rules, one record at a time: the full link feeds them every staged record, the incremental relink
# only the records whose link can have changed (``_relink``).


def order_link(source: str, ckey: str | None, csid: Any, phone: str | None, email: str | None,
               key_to_golden: Mapping[str, str], phone_owners: Mapping[str, Sequence[str]],
               email_owners: Mapping[str, Sequence[str]], link_guests: bool) -> str | None:
    """The golden customer of an order: through its customer record, else (a guest checkout) by billing
    phone / e-mail."""
    gid = _owner(ckey, source, csid, key_to_golden)
    if gid is None and link_guests and _is_guest(ckey, csid):
        gid = guest_order_owner({"billing_phone": phone, "billing_email": email}, phone_owners, email_owners)
    return gid


def shipment_link(source: str, ckey: str | None, csid: Any, order_sid: Any, key_to_golden: Mapping[str, str],
                  order_owner: Mapping[str, str]) -> str | None:
    """The golden customer of a shipment: through its customer record, else through its order."""
    gid = _owner(ckey, source, csid, key_to_golden)
    if gid is None and order_sid:
        gid = order_owner.get(record_key(source, str(order_sid)))
    return gid


def interaction_links(source: str, ckey: str | None, csid: Any, kind: str | None, phone: str | None,
                      key_to_golden: Mapping[str, str], phone_owners: Mapping[str, Sequence[str]]) -> list[str]:
    """The golden customers of an interaction: a call counts for every one who holds its phone (household,
    switchboard), a social event for the owner of its account."""
    if kind == "call":
        return list(dict.fromkeys(phone_owners.get(phone or "", ())))
    gid = _owner(ckey, source, csid, key_to_golden)
    return [gid] if gid is not None else []


def _is_guest(ckey: str | None, csid: Any) -> bool:
    return not ckey and not csid


def _is_regular(source: str, ckey: str | None, csid: Any) -> bool:
    """Whether the record's owner depends on its customer_key alone (staging sets customer_key to
    record_key(source, customer_source_id)); the incremental relink finds owned records by that indexed column."""
    return not csid or ckey == record_key(source, str(csid))


def _email_keys(emails: Iterable[str | None]) -> set[str]:
    return {e.lower() for e in emails if e}


def _active_gids(conn: sa.Connection) -> list[str]:
    gc = golden_customer.c
    return list(conn.execute(sa.select(gc.golden_id).where(gc.status == "active").order_by(gc.golden_id))
                .scalars())


def not_active(golden_id: Any, dialect: str) -> sa.ColumnElement[bool]:
    """``golden_id`` is no active golden customer's (``hub.store.not_among``: an anti join on PostgreSQL)."""
    gc = golden_customer.c
    return not_among(golden_id, sa.select(gc.golden_id).where(gc.status == "active"), dialect)


def _owner_maps(conn: sa.Connection, phones: set[str] | None = None, emails: set[str] | None = None
                ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """phone -> active golden ids holding it, e-mail (lower case) -> the same; every phone / e-mail of the
    golden layer when ``phones`` / ``emails`` are None, else only those asked for (no index on the golden
    JSON: one pass over the active golden records, keeping what is wanted; on SQLite the database finds the
    records that can hold one, and only those are read)."""
    gc = golden_customer.c
    fields = JsonPaths(gc.record, [("primary_phone", "string"), ("phones", "json"), ("primary_email", "string"),
                                   ("emails", "json")], conn.dialect.name)
    cols = (gc.golden_id, *fields.columns)
    if phones is not None and emails is not None and conn.dialect.name == "sqlite":
        holders = _sqlite_holders(conn, phones, emails)
        # in golden id order, as the scan gives them: an owner list's order is the same either way
        rows: Iterable[Any] = sorted(select_in(conn, sa.select(*cols).where(gc.status == "active"),
                                               gc.golden_id, sorted(holders)), key=lambda r: r[0])
    else:
        rows = _rows(conn, sa.select(*cols).where(gc.status == "active").order_by(gc.golden_id))
    phone_owners: dict[str, list[str]] = defaultdict(list)
    email_owners: dict[str, list[str]] = defaultdict(list)
    for gid, *values in rows:
        primary, gphones, email, gemails = fields.values(values)
        for phone in golden_phones({"primary_phone": primary, "phones": gphones}):
            if phones is None or phone in phones:
                phone_owners[phone].append(gid)
        for mail in _email_keys([email, *(gemails or [])]):
            if emails is None or mail in emails:
                email_owners[mail].append(gid)
    return phone_owners, email_owners


def _fill_wanted(conn: sa.Connection, values: Mapping[str, Iterable[str]]) -> None:
    """The temporary table of wanted values, ``kind`` -> values (replacing what it held)."""
    _wanted.create(conn, checkfirst=True)
    conn.execute(_wanted.delete())
    rows = [(kind, v) for kind, vs in values.items() for v in sorted(set(vs))]
    for part in chunked(rows, 5000):
        insert_rows(conn, _wanted, ("kind", "value"), part)


def _sqlite_holders(conn: sa.Connection, phones: set[str], emails: set[str]) -> set[str]:
    """Active golden ids whose record can hold one of ``phones`` / ``emails`` (a superset: the caller keeps
    the exact owners), found by SQLite in one scan, each record's JSON parsed once. An e-mail is compared in
    lower case, and a value with a character outside printable ASCII always counts (SQLite lowers ASCII only)."""
    _fill_wanted(conn, {"phone": phones, "email": emails})
    return set(conn.exec_driver_sql("""
        SELECT DISTINCT g.golden_id
        FROM (SELECT golden_id, json_extract(record, '$.primary_phone', '$.phones', '$.primary_email', '$.emails')
                     AS held
              FROM golden_customer WHERE status = 'active') g, json_tree(g.held) t
        WHERE t.type = 'text' AND (t.value IN (SELECT value FROM tmp_c360_wanted WHERE kind = 'phone')
                                   OR lower(t.value) IN (SELECT value FROM tmp_c360_wanted WHERE kind = 'email')
                                   OR t.value GLOB '*[^ -~]*')
    """).scalars())


def _key_owners(conn: sa.Connection, active: set[str], keys: Iterable[str] | None = None) -> dict[str, str]:
    """Customer record key -> active golden id through the open cross-references (all of them, or ``keys``)."""
    q = sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))
    if keys is None:
        rows: Iterable[Any] = conn.execute(q)
    else:
        rows = select_in(conn, q, xref.c.record_key, keys)
    return {rk: gid for rk, gid in rows if gid in active}


_LINKED = ("orders", "shipments", "interactions")


def _order_cols() -> list[Any]:
    sr = staged_record.c
    r = sr.record
    return [sr.record_key, sr.source, sr.customer_key, r["customer_source_id"].as_string(),
            r["billing_phone"].as_string(), r["billing_email"].as_string()]


def _shipment_cols() -> list[Any]:
    sr = staged_record.c
    r = sr.record
    return [sr.record_key, sr.source, sr.customer_key, r["customer_source_id"].as_string(),
            r["order_source_id"].as_string()]


def _interaction_cols() -> list[Any]:
    sr = staged_record.c
    r = sr.record
    return [sr.record_key, sr.source, sr.customer_key, r["customer_source_id"].as_string(), r["kind"].as_string(),
            r["phone"].as_string()]


_COLS = {"orders": _order_cols, "shipments": _shipment_cols, "interactions": _interaction_cols}


def _link_all(conn: sa.Connection, cfg: SegmentsConfig, active: set[str]) -> int:
    """The full link: every staged order / shipment / interaction's owners into the temporary owner table.
    Returns how many records are not regular (see ``_is_regular``): the next build relinks everything then."""
    sr = staged_record.c
    phone_owners, email_owners = _owner_maps(conn)
    k2g = _key_owners(conn, active)
    _links.drop(conn, checkfirst=True)
    _links.create(conn)
    batch: list[tuple[str, str, str, str]] = []
    irregular = 0

    def add(entity: str, rk: str, gid: str, kind: str = "") -> None:
        # tuples to the driver's executemany on SQLite (insert_rows): SQLAlchemy's per-row parameter
        # processing cost more than the insert
        batch.append((entity, rk, gid, kind))
        if len(batch) >= 5000:
            insert_rows(conn, _links, _LINK_COLS, batch)
            batch.clear()

    order_owner: dict[str, str] = {}  # only the orders shipments name
    wanted_orders: set[str] = set()
    for source, order_sid in _rows(conn,
        sa.select(sr.source, sr.record["order_source_id"].as_string()).where(sr.entity == "shipments")
    ):
        if order_sid:
            wanted_orders.add(record_key(source, str(order_sid)))
    for rk, source, ckey, csid, phone, email in _rows(conn, sa.select(*_order_cols()).where(sr.entity == "orders")):
        irregular += not _is_regular(source, ckey, csid)
        gid = order_link(source, ckey, csid, phone, email, k2g, phone_owners, email_owners, cfg.link_guest_orders)
        if gid is not None:
            if rk in wanted_orders:
                order_owner[rk] = gid
            add("orders", rk, gid)
    del wanted_orders
    for rk, source, ckey, csid, order_sid in _rows(conn,
            sa.select(*_shipment_cols()).where(sr.entity == "shipments")):
        irregular += not _is_regular(source, ckey, csid)
        gid = shipment_link(source, ckey, csid, order_sid, k2g, order_owner)
        if gid is not None:
            add("shipments", rk, gid)
    del order_owner
    for rk, source, ckey, csid, kind, phone in _rows(conn,
            sa.select(*_interaction_cols()).where(sr.entity == "interactions")):
        irregular += not _is_regular(source, ckey, csid)
        for gid in interaction_links(source, ckey, csid, kind, phone, k2g, phone_owners):
            add("interactions", rk, gid, kind or "")
    if batch:
        insert_rows(conn, _links, _LINK_COLS, batch)
    # indexed once filled: cheaper than keeping the index up to date row by row
    conn.execute(sa.text("CREATE INDEX ix_tmp_c360_owner ON tmp_c360_owner (entity, golden_id)"))
    conn.execute(sa.text("CREATE INDEX ix_tmp_c360_owner_key ON tmp_c360_owner (entity, record_key)"))
    return irregular


def _relink(conn: sa.Connection, cfg: SegmentsConfig, marks: Mapping[str, str | None], active: set[str]
            ) -> set[str] | None:
    """The incremental link: relink only the records whose owners can have changed since the last build
    (``marks``), starting from its persisted links, and write the difference to ``customer_360_link``.
    Returns the golden ids whose linked records changed (a record staged again, moved, linked anew, gone), or
    None when this build must link everything (``_link_all``): a mark missing, a record whose owner does not
    follow its customer_key, a changed golden customer whose phones / e-mails at the last build are unknown.

    A record's owners follow from its own fields (changed only when it was staged again), the open
    cross-reference of its customer record, and the phones / e-mails the active golden customers hold. So the
    records relinked are those (1) staged since the last build, (2) whose customer record's cross-reference
    opened or closed, or whose customer record belongs to a golden customer that changed (status included),
    (3) calls and guest orders whose phone or e-mail a changed golden customer holds or held at the last build
    (the profile in its view), (4) shipments whose order changed owner, and (5) the links of records no longer staged are deleted."""
    if not all(marks.get(k) for k in ("golden", "staged", "xref")):
        return None
    at_golden, at_staged, at_xref = (parse_dt(marks[k]) for k in ("golden", "staged", "xref"))
    gc, sr, lk, c3 = golden_customer.c, staged_record.c, customer_360_link.c, customer_360.c
    # the golden customers that changed, with the phones / e-mails they hold now and held at the last build
    changed: dict[str, tuple[str, set[str], set[str]]] = {}
    for gid, status, primary, phones, email, emails in _rows(conn,
            sa.select(gc.golden_id, gc.status, gc.record["primary_phone"].as_string(), gc.record["phones"],
                      gc.record["primary_email"].as_string(), gc.record["emails"]).where(gc.updated_at > at_golden)):
        changed[gid] = (status, set(golden_phones({"primary_phone": primary, "phones": phones})),
                        _email_keys([email, *(emails or [])]))
    # a status change the golden stage did not stamp: active at the last build (it has ranking figures) and
    # not now, or the other way round
    ranks = customer_360_rank.c
    gone_or_back = set(conn.execute(sa.select(ranks.golden_id).where(not_active(ranks.golden_id, conn.dialect.name))).scalars())
    gone_or_back.update(conn.execute(sa.select(gc.golden_id).where(
        gc.status == "active", ~sa.exists().where(ranks.golden_id == gc.golden_id))).scalars())
    for gid, status, primary, phones, email, emails in select_in(conn, sa.select(
            gc.golden_id, gc.status, gc.record["primary_phone"].as_string(), gc.record["phones"],
            gc.record["primary_email"].as_string(), gc.record["emails"]), gc.golden_id, gone_or_back - set(changed)):
        changed[gid] = (status, set(golden_phones({"primary_phone": primary, "phones": phones})),
                        _email_keys([email, *(emails or [])]))
    viewed: set[str] = set()
    for gid, view in select_in(conn, sa.select(c3.golden_id, c3.record), c3.golden_id, changed):
        profile = (view or {}).get("profile") or {}
        viewed.add(gid)
        changed[gid][1].update(golden_phones(profile))
        changed[gid][2].update(_email_keys([profile.get("primary_email"), *(profile.get("emails") or [])]))
    ranked = set(select_in(conn, sa.select(ranks.golden_id), ranks.golden_id, set(changed) - viewed))
    if ranked or any(status == "erased" and gid not in viewed for gid, (status, _, _) in changed.items()):
        # active at the last build without a view (invalid), or erased since (its view deleted): what it held
        # then is unknown
        return None
    phones_changed = {p for _, ps, _ in changed.values() for p in ps}
    emails_changed = {e for _, _, es in changed.values() for e in es}

    wanted: dict[str, set[str]] = {e: set() for e in _LINKED}
    restaged: dict[str, set[str]] = {e: set() for e in _LINKED}
    for entity, rk in _rows(conn, sa.select(sr.entity, sr.record_key).where(sr.entity.in_(_LINKED),
                                                                              sr.staged_at > at_staged)):
        restaged[entity].add(rk)
        wanted[entity].add(rk)
    # (2) owned through a customer record whose cross-reference opened / closed or whose golden id changed
    keys = set(conn.execute(sa.select(xref.c.record_key).where(
        sa.or_(xref.c.valid_from > at_xref, xref.c.valid_to > at_xref))).scalars())
    keys.update(rk for rk, in select_in(conn, sa.select(xref.c.record_key).where(xref.c.valid_to.is_(None)),
                                        xref.c.golden_id, changed))
    for entity, rk in select_in(conn, sa.select(sr.entity, sr.record_key).where(sr.entity.in_(_LINKED)),
                                sr.customer_key, keys):
        wanted[entity].add(rk)
    # (3) holding a phone / e-mail a changed golden customer holds or held (what its records are linked by)
    if phones_changed and conn.dialect.name == "sqlite":
        # the database compares every interaction's phone with the changed ones (one scan, no row to Python).
        # Not elsewhere: PostgreSQL has no statistics of a temporary table and ran the IN as a subplan per row
        # (100k people: minutes); MariaDB: the JSON value's and the table's collations may not compare
        _fill_wanted(conn, {"changed": phones_changed})
        phone = sr.record["phone"].as_string()
        wanted["interactions"].update(conn.execute(sa.select(sr.record_key).where(
            sr.entity == "interactions",
            phone.in_(sa.select(_wanted.c.value).where(_wanted.c.kind == "changed")))).scalars())
    elif phones_changed:
        for rk, phone in _rows(conn, sa.select(sr.record_key, sr.record["phone"].as_string())
                                      .where(sr.entity == "interactions")):
            if phone in phones_changed:
                wanted["interactions"].add(rk)
    if (phones_changed or emails_changed) and cfg.link_guest_orders:
        for rk, ckey, csid, phone, email in _rows(conn,
                sa.select(sr.record_key, sr.customer_key, sr.record["customer_source_id"].as_string(),
                          sr.record["billing_phone"].as_string(), sr.record["billing_email"].as_string())
                .where(sr.entity == "orders", sa.or_(sr.customer_key.is_(None), sr.customer_key == ""))):
            if _is_guest(ckey, csid) and (phone in phones_changed
                                          or (email or "").strip().lower() in emails_changed):
                wanted["orders"].add(rk)
    # (5) the links of records no longer staged
    gone = conn.execute(sa.select(lk.entity, lk.record_key, lk.golden_id).where(~sa.exists().where(
        sr.entity == lk.entity, sr.record_key == lk.record_key))).all()
    affected = {gid for _, _, gid in gone}
    gone_orders = {rk for entity, rk, _ in gone if entity == "orders"}
    for entity in _LINKED:
        for part in chunked(sorted({rk for e, rk, _ in gone if e == entity}), IN_LIST):
            conn.execute(customer_360_link.delete().where(lk.entity == entity, lk.record_key.in_(part)))

    def fetch(entity: str, rks: Iterable[str]) -> list[Any]:
        return list(select_in(conn, sa.select(*_COLS[entity]()).where(sr.entity == entity), sr.record_key, rks))

    def old_links(entity: str, rks: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
        out: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for rk, gid, kind in select_in(conn, sa.select(lk.record_key, lk.golden_id, lk.kind)
                                       .where(lk.entity == entity), lk.record_key, rks):
            out[rk].add((gid, kind))
        return out

    orders, ships, calls = fetch("orders", wanted["orders"]), fetch("shipments", wanted["shipments"]), \
        fetch("interactions", wanted["interactions"])
    if not all(_is_regular(row[1], row[2], row[3]) for row in (*orders, *ships, *calls)):
        return None
    # the owners of what these records name: customer records, phones, e-mails
    k2g = _key_owners(conn, active, {k for row in (*orders, *ships, *calls)
                                     for k in (row[2], record_key(row[1], str(row[3])) if row[3] else None) if k})
    need_phones = {row[4] for row in orders if row[4]} | {row[5] for row in calls if row[4] == "call" and row[5]}
    need_emails = _email_keys(row[5].strip() for row in orders if row[5])
    phone_owners, email_owners = (_owner_maps(conn, need_phones, need_emails) if need_phones or need_emails
                                  else ({}, {}))
    # per record its links as (golden id, kind): an interaction whose kind changed is linked anew
    new: dict[str, dict[str, set[tuple[str, str]]]] = {e: defaultdict(set) for e in _LINKED}
    for rk, source, ckey, csid, phone, email in orders:
        gid = order_link(source, ckey, csid, phone, email, k2g, phone_owners, email_owners, cfg.link_guest_orders)
        if gid is not None:
            new["orders"][rk].add((gid, ""))
    old = {"orders": old_links("orders", (row[0] for row in orders))}
    # (4) shipments through an order whose owner changed
    moved_orders = gone_orders | {row[0] for row in orders if old["orders"].get(row[0], set()) != new["orders"][row[0]]}
    if moved_orders:
        known = {row[0] for row in ships}
        extra = {rk for rk, source, order_sid in _rows(conn,
            sa.select(sr.record_key, sr.source, sr.record["order_source_id"].as_string())
            .where(sr.entity == "shipments"))
            if order_sid and rk not in known and record_key(source, str(order_sid)) in moved_orders}
        ships += fetch("shipments", extra)
        if not all(_is_regular(row[1], row[2], row[3]) for row in ships):
            return None
        k2g.update(_key_owners(conn, active, {k for row in ships for k in
                                              (row[2], record_key(row[1], str(row[3])) if row[3] else None) if k}))
    order_keys = {record_key(row[1], str(row[4])) for row in ships if row[4]}
    relinked = {row[0] for row in orders}
    order_owner = {rk: gid for rk, gid in select_in(
        conn, sa.select(lk.record_key, lk.golden_id).where(lk.entity == "orders"), lk.record_key,
        order_keys - relinked)}
    order_owner.update({rk: next(iter(links))[0] for rk, links in new["orders"].items()
                        if links and rk in order_keys})
    for rk, source, ckey, csid, order_sid in ships:
        gid = shipment_link(source, ckey, csid, order_sid, k2g, order_owner)
        if gid is not None:
            new["shipments"][rk].add((gid, ""))
    for rk, source, ckey, csid, kind, phone in calls:
        new["interactions"][rk].update((gid, kind or "") for gid in
                                       interaction_links(source, ckey, csid, kind, phone, k2g, phone_owners))
    old["shipments"] = old_links("shipments", (row[0] for row in ships))
    old["interactions"] = old_links("interactions", (row[0] for row in calls))
    # the difference written, and whose records it touched
    for entity, rows in (("orders", orders), ("shipments", ships), ("interactions", calls)):
        removed: list[tuple[str, str]] = []
        added: list[dict[str, str]] = []
        for row in rows:
            rk = row[0]
            before, after = old[entity].get(rk, set()), new[entity].get(rk, set())
            removed += [(rk, gid) for gid, _ in before - after]
            added += [{"entity": entity, "record_key": rk, "golden_id": gid, "kind": kind}
                      for gid, kind in after - before]
            affected |= {gid for gid, _ in before ^ after}
            if rk in restaged[entity]:
                affected |= {gid for gid, _ in after}
        if removed:
            conn.execute(customer_360_link.delete().where(
                lk.entity == entity, lk.record_key == sa.bindparam("b_rk"), lk.golden_id == sa.bindparam("b_gid")),
                [{"b_rk": rk, "b_gid": gid} for rk, gid in removed])
        if added:
            conn.execute(customer_360_link.insert(), added)
    return affected


def _link_stats(conn: sa.Connection, stats: C360Stats) -> None:
    """How many orders / shipments / calls / social events are linked, from the persisted links (what a full
    link counts, whichever way this build linked)."""
    lk, sr = customer_360_link.c, staged_record.c
    by_entity = {e: int(n) for e, n in conn.execute(sa.select(lk.entity, sa.func.count()).group_by(lk.entity))}
    stats.orders_linked = by_entity.get("orders", 0)
    stats.orders_unlinked = int(conn.execute(sa.select(sa.func.count()).where(sr.entity == "orders"))
                                .scalar_one()) - stats.orders_linked
    # guest orders (no customer key) are found through ix_staged_customer_key, each half of the OR on its own
    # (with the OR SQLite read every order), and kept when linked; from the links instead, every linked order
    # was looked up (1M people: ~1.3M random reads of staged orders)
    linked = sa.exists().where(lk.entity == sr.entity, lk.record_key == sr.record_key)
    guests = sa.union_all(*(sa.select(sr.customer_key, sr.record["customer_source_id"].as_string())
                            .where(sr.entity == "orders", no_key, linked)
                            for no_key in (sr.customer_key.is_(None), sr.customer_key == "")))
    stats.guest_orders_linked = sum(_is_guest(ckey, csid) for ckey, csid in _rows(conn, guests))
    stats.shipments_linked = by_entity.get("shipments", 0)
    # from the kind kept on the link (every link of a record no longer staged is gone already)
    stats.calls_linked, stats.social_linked = (int(n or 0) for n in conn.execute(
        sa.select(sa.func.count(sa.distinct(sa.case((lk.kind == "call", lk.record_key)))),
                  sa.func.sum(sa.case((lk.kind == "call", 0), else_=1)))
        .where(lk.entity == "interactions")).one())


def _order_figures(orders: Sequence[Mapping[str, Any]], cfg: SegmentsConfig, as_of: datetime
                   ) -> tuple[list[Mapping[str, Any]], int, tuple[int | None, int, Decimal], dict[str, Any]]:
    """One customer's orders -> (distinct orders, duplicates, (recency, frequency, monetary), aggregates)."""
    kept, dupes = dedupe_orders(orders)
    revenue = [o for o in kept if (o.get("status") or "") not in cfg.exclude_statuses]
    monetary = Decimal(0)
    currencies: Counter[str] = Counter()
    dates = []
    for o in revenue:
        total = to_decimal(o.get("total")) or Decimal(0)
        cur = (o.get("currency") or "").upper() or None
        if cur:
            currencies[cur] += 1
            total *= cfg.currency_rates.get(cur, Decimal(1))
        monetary += total
        dt = parse_dt(o.get("ordered_at"))
        if dt is not None:
            dates.append(dt)
    first_at, last_at = (min(dates), max(dates)) if dates else (None, None)
    recency = max(0, (as_of - last_at).days) if last_at is not None else None
    agg = {"first": first_at, "last": last_at, "currency": currencies.most_common(1)[0][0] if currencies else None}
    return kept, dupes, (recency, len(revenue), monetary), agg


INPUTS_ENTITY = "_customer_360_inputs"  # sync_state row: what the last build was built from
# figures of the whole 360 layer a build counts, kept with its inputs for a build that finds nothing changed
_KEPT_FIGURES = ("orders_linked", "orders_unlinked", "guest_orders_linked", "duplicate_orders", "shipments_linked",
                 "calls_linked", "social_linked", "invalid", "value_tiers", "lifecycles", "segments")
# bumped when what a view holds changes (2: the profile without its lineage), so the next build rewrites them
VIEW_VERSION = 2


def _inputs(conn: sa.Connection, cfg: SegmentsConfig, as_of: datetime) -> str:
    """A fingerprint of everything the view is built from: row counts and newest change times of the golden
    records, the links, the orders / shipments / interactions and the view itself, the configuration and the
    day (recency and lifecycle count days). Cheap: index lookups and counts, no record read."""
    gc, sr, c = golden_customer.c, staged_record.c, customer_360.c
    return table_fingerprint(
        conn,
        sa.select(sa.func.count(), sa.func.max(gc.updated_at)),
        sa.select(sa.func.count()).where(gc.status == "active"),
        *xref_marks(),
        *(sa.select(sa.func.count(), sa.func.max(sr.staged_at)).where(sr.entity == entity)
          for entity in ("orders", "shipments", "interactions")),
        sa.select(sa.func.count(), sa.func.max(c.updated_at)),
        extra=(VIEW_VERSION, canonical_json(asdict(cfg)), as_of.date().isoformat()),
    )


def _marks(conn: sa.Connection) -> dict[str, str | None]:
    """The newest change times of what decides who is affected (taken before anything is read: a change
    made while the build runs is at or after them, and the next build takes it)."""
    def iso(value: Any) -> str | None:
        dt = parse_dt(value)
        return dt.isoformat() if dt is not None else None

    gc, sr = golden_customer.c, staged_record.c
    return {
        "golden": iso(conn.execute(sa.select(sa.func.max(gc.updated_at))).scalar()),
        "staged": iso(conn.execute(sa.select(sa.func.max(sr.staged_at))
                                   .where(sr.entity.in_(["orders", "shipments", "interactions"]))).scalar()),
        "xref": iso(max((v for v in newest_xref_change(conn) if v is not None),
                        default=None, key=lambda v: parse_dt(v) or datetime.min)),
    }


def _affected(conn: sa.Connection, marks: Mapping[str, str | None]) -> set[str]:
    """Active golden ids whose view may differ from the last build: their golden record changed, one of their
    cross-references opened or closed, a record linked to them was staged again, or a record moved to or
    away from them (the links of this build against the last build's). Newer than the marks: the stages
    that write these tables run before this one under the sync lock, each stamping its rows with its own
    time, so nothing written after the last build carries the very instant of its newest."""
    sr, lk, tmp = staged_record.c, customer_360_link.c, _links.c
    out = _changed_inputs(conn, marks)
    if marks.get("staged"):
        out.update(conn.execute(
            sa.select(tmp.golden_id).distinct()
            .select_from(_links.join(staged_record, sa.and_(sr.entity == tmp.entity, sr.record_key == tmp.record_key)))
            .where(sr.staged_at > parse_dt(marks["staged"]))).scalars())
    same_tmp = sa.and_(tmp.entity == lk.entity, tmp.record_key == lk.record_key, tmp.golden_id == lk.golden_id,
                       tmp.kind == lk.kind)
    out.update(conn.execute(sa.select(tmp.golden_id).distinct().where(
        ~sa.exists().where(same_tmp))).scalars())  # a record linked anew
    out.update(conn.execute(sa.select(lk.golden_id).distinct().where(
        ~sa.exists(sa.select(tmp.entity).where(same_tmp)))).scalars())  # a record that left
    return out


def _changed_inputs(conn: sa.Connection, marks: Mapping[str, str | None]) -> set[str]:
    """Golden ids whose golden record changed or one of whose cross-references opened or closed since the
    marks, and active golden customers without ranking figures (new, or back from retired)."""
    gc = golden_customer.c
    out: set[str] = set()
    if marks.get("golden"):
        out.update(conn.execute(sa.select(gc.golden_id).where(gc.updated_at > parse_dt(marks["golden"]))).scalars())
    if marks.get("xref"):
        at = parse_dt(marks["xref"])
        # no DISTINCT (the set dedupes): with it SQLite read every cross-reference through ix_xref_golden
        # instead of the two time indexes (MULTI-INDEX OR)
        out.update(conn.execute(sa.select(xref.c.golden_id).where(
            sa.or_(xref.c.valid_from > at, xref.c.valid_to > at))).scalars())
    # an active golden customer without ranking figures (new, or back from retired)
    rk = customer_360_rank.c
    out.update(conn.execute(sa.select(gc.golden_id).where(
        gc.status == "active", ~sa.exists().where(rk.golden_id == gc.golden_id))).scalars())
    return out


def _save_links(conn: sa.Connection) -> None:
    """The persisted links become this build's (diff-only: rows that left deleted, new rows inserted)."""
    lk, tmp = customer_360_link.c, _links.c
    same = sa.and_(tmp.entity == lk.entity, tmp.record_key == lk.record_key, tmp.golden_id == lk.golden_id,
                   tmp.kind == lk.kind)  # a link whose interaction changed kind is replaced
    conn.execute(customer_360_link.delete().where(~sa.exists(sa.select(tmp.entity).where(same))))
    # inserted in (entity, golden_id, record_key) order, the order of two of the table's three B-trees (and of
    # the owner table's index): in the owners' order every insert landed on a random page of each (2M links:
    # 36.5 -> 17.7 s; a first build at 1M people inserts up to ~3.9M)
    conn.execute(customer_360_link.insert().from_select(
        list(_LINK_COLS),
        sa.select(tmp.entity, tmp.record_key, tmp.golden_id, tmp.kind).where(~sa.exists(sa.select(lk.entity).where(same)))
        .order_by(tmp.entity, tmp.golden_id, tmp.record_key)))


def _where_gids(column: Any, part: Sequence[str], contiguous: bool) -> Any:
    """A chunk of golden ids as SQL: a range when the chunk is a run of consecutive active ids (a full build),
    an IN list otherwise."""
    return sa.and_(column >= part[0], column <= part[-1]) if contiguous else column.in_(list(part))


def _chunk_records(conn: sa.Connection, entity: str, where: Any, *cols: Any) -> Any:
    """The chunk's (golden id, ...) rows of one staged entity, through this build's links (fetched at once:
    a chunk's)."""
    lk = customer_360_link.c
    return conn.execute(
        sa.select(lk.golden_id, *cols)
        .select_from(customer_360_link.join(staged_record, sa.and_(staged_record.c.entity == lk.entity,
                                                                   staged_record.c.record_key == lk.record_key)))
        .where(lk.entity == entity, where)
    ).all()


_FETCH = 5000


def _rows(conn: sa.Connection, stmt: Any) -> Iterator[Any]:
    """The rows of a population-wide query, fetched ``_FETCH`` at a time: iterating a result fetches row by
    row (SQLAlchemy's per-row fetch cost as much as the rows' own work); memory stays bounded."""
    for part in conn.execute(stmt).partitions(_FETCH):
        yield from part


def _chunk_orders(conn: sa.Connection, where: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for gid, rec in _chunk_records(conn, "orders", where, staged_record.c.record):
        out[gid].append(rec)
    for recs in out.values():
        recs.sort(key=_record_order)
    return out


def _record_order(rec: Mapping[str, Any]) -> tuple[str, str]:
    """One customer's records in record key order before anything is computed over them: ties (the most
    common currency, equal dates) then fall the same way whatever order the store returns the links in (which
    depends on the history of incremental builds)."""
    return (str(rec.get("source", "")), str(rec.get("source_id", "")))


_RANK_INSERT = ("golden_id", "first_order_at", "last_order_at", "frequency", "monetary", "duplicate_orders")
_RANK_VIEW = ("recency_days", "r_score", "f_score", "m_score", "lifecycle", "value_tier", "segment")


def _time_binder(conn: sa.Connection) -> Any:
    """A datetime as a row sent to the driver's executemany takes it (``insert_rows``; ``bound_time``, its
    processor made once)."""
    if conn.dialect.name != "sqlite":
        return lambda ts: ts
    process = sa.DateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process if process is not None else (lambda ts: ts)


def _update_ranks(conn: sa.Connection, rows: Sequence[tuple]) -> None:
    """The view's figures into the rank rows: ``rows`` of (``_RANK_VIEW`` ..., golden id). On SQLite straight
    to the driver's executemany (ints and text, nothing to convert), elsewhere through SQLAlchemy."""
    if not rows:
        return
    rk = customer_360_rank.c
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"UPDATE customer_360_rank SET {', '.join(f'{c} = ?' for c in _RANK_VIEW)} "
                             "WHERE golden_id = ?", list(rows))
        return
    stmt = (customer_360_rank.update().where(rk.golden_id == sa.bindparam("b_gid"))
            .values({c: sa.bindparam(f"b_{c}") for c in _RANK_VIEW}))
    conn.execute(stmt, [dict(zip((*(f"b_{c}" for c in _RANK_VIEW), "b_gid"), r, strict=True)) for r in rows])


def _rank_figures(conn: sa.Connection, cfg: SegmentsConfig, as_of: datetime, gids: Sequence[str],
                  chunk_size: int, contiguous: bool) -> None:
    """Pass 1: the ranking figures of ``gids`` from their orders, replacing their rank rows."""
    rk = customer_360_rank
    dt = _time_binder(conn)
    for start in range(0, len(gids), chunk_size):
        part = gids[start:start + chunk_size]
        orders = _chunk_orders(conn, _where_gids(customer_360_link.c.golden_id, part, contiguous))
        rows = []
        for gid in part:
            _, dupes, (_, freq, monetary), agg = _order_figures(orders.get(gid, ()), cfg, as_of)
            first, last = agg["first"], agg["last"]
            rows.append((gid, None if first is None else dt(first), None if last is None else dt(last), freq,
                         float(monetary), dupes))
        conn.execute(rk.delete().where(_where_gids(rk.c.golden_id, part, contiguous)))
        insert_rows(conn, rk, _RANK_INSERT, rows)


def _rerank(conn: sa.Connection, cfg: SegmentsConfig, as_of: datetime
            ) -> tuple[dict[str, tuple[int | None, int | None, int | None, int | None, str]], set[str]]:
    """The RFM quintiles, recency and lifecycle of every active golden customer from the rank rows (three
    figures and two dates each, no orders read): (golden id -> (recency, r, f, m, lifecycle), the golden ids
    whose figures differ from what their view was built with)."""
    rk = customer_360_rank.c
    rows = conn.execute(sa.select(rk.golden_id, rk.first_order_at, rk.last_order_at, rk.frequency, rk.monetary,
                                  rk.recency_days, rk.r_score, rk.f_score, rk.m_score, rk.lifecycle)
                        .order_by(rk.golden_id)).all()
    metrics = []
    lifes = []
    for _, first, last, freq, monetary, *_ in rows:
        first, last = parse_dt(first), parse_dt(last)
        metrics.append((max(0, (as_of - last).days) if last is not None else None, freq, monetary))
        lifes.append(lifecycle_stage(first, last, freq, as_of, cfg.new_days, cfg.at_risk_days, cfg.lapsed_days))
    scores = rfm_scores(metrics)
    figures: dict[str, tuple[int | None, int | None, int | None, int | None, str]] = {}
    moved: set[str] = set()
    for row, (recency, _, _), (r, f, m), life in zip(rows, metrics, scores, lifes, strict=True):
        figures[row[0]] = (recency, r, f, m, life)
        if (recency, r, f, m, life) != tuple(row[5:10]):
            moved.add(row[0])
    return figures, moved


@gc_paused()  # a bulk pass: no cycles among its many small containers (see hub.store.gc_paused)
def build_360(store: Store, segments_cfg: Mapping[str, Any] | None, as_of: datetime | None = None, *,
              chunk_size: int = _GID_CHUNK, force: bool = False) -> C360Stats:
    """Build the 360 view of every active golden customer; write only changed rows.

    Incremental: only the records whose owners can have changed are linked again (``_relink``), and only the
    golden customers whose inputs changed since the last build (their records' links, golden record or
    cross-references) are read and built again, plus those whose RFM scores, recency or lifecycle moved when the population was
    re-ranked (``_rerank``, over the stored figures). The result is the view a full rebuild writes (a changed
    configuration or view version, ``force`` or a store without the last build's state rebuilds everyone).
    Memory is bounded by the chunk, not the population (see ``_GID_CHUNK``); one transaction, so readers see
    the old view or the new one. When nothing the view is built from changed since the last build (a no-op
    sync), nothing is read or written.
    """
    started = time.monotonic()
    cfg = SegmentsConfig.from_dict(segments_cfg)
    as_of = parse_dt(as_of) or datetime.now(UTC).replace(tzinfo=None)
    stats = C360Stats()
    with store.engine.connect() as conn:
        before = _inputs(conn, cfg, as_of)
        saved = read_cursor(conn, "hub", INPUTS_ENTITY)
        if not force and saved and saved.get("fingerprint") == before:
            stats.skipped = True
            # the last build's figures hold (nothing they count changed): a no-op sync must not plot zeros
            for name, value in (saved.get("figures") or {}).items():
                if name in _KEPT_FIGURES:
                    setattr(stats, name, value)
            stats.golden_customers = stats.unchanged = conn.execute(
                sa.select(sa.func.count()).select_from(customer_360)).scalar_one()
            stats.seconds = time.monotonic() - started
            return stats
    now = datetime.now(UTC).replace(tzinfo=None)
    config_key = payload_hash([VIEW_VERSION, canonical_json(asdict(cfg))])
    with store.begin() as conn:
        marks = _marks(conn)
        gids = _active_gids(conn)
        full = force or not saved or saved.get("config") != config_key or not saved.get("marks")
        # the links: only what can have changed since the last build, else (a full build, or what the
        # incremental relink cannot follow) every record linked again and diffed against the last build's
        relinked = None if full or saved.get("irregular", 1) else _relink(conn, cfg, saved["marks"], set(gids))
        if relinked is None:
            irregular = _link_all(conn, cfg, set(gids))
            changed = None if full else _affected(conn, saved["marks"])
            _save_links(conn)
            _links.drop(conn, checkfirst=True)
        else:
            irregular = 0
            changed = relinked | _changed_inputs(conn, saved["marks"])
        conn.execute(customer_360_rank.delete().where(not_active(customer_360_rank.c.golden_id, conn.dialect.name)))
        affected = gids if changed is None else sorted(changed & set(gids))
        # pass 1: the ranking figures of the affected customers (everyone's, on a full build)
        _rank_figures(conn, cfg, as_of, affected, chunk_size, contiguous=full)
        # the RFM quintiles over the whole population's stored figures; whoever's moved is built again too
        figures, moved = _rerank(conn, cfg, as_of)
        rebuild = gids if full else sorted(moved | set(affected))
        stats.built = len(rebuild)
        # pass 2: the views, chunk by chunk, written diff-only
        gc = golden_customer.c
        # an interaction's fields (its JSON read once on PostgreSQL: ten paths parsed it ten times)
        call_fields = JsonPaths(staged_record.c.record, [
            ("kind", "string"), ("phone", "string"), ("occurred_at", "string"), ("customer_source_id", "string"),
            ("direction", "string"), ("duration_s", "integer"), ("billsec_s", "integer"), ("disposition", "string"),
            ("channel", "string")], conn.dialect.name)
        # the record as its text (``_record_text``), the time as the driver takes it (``bound_time``)
        upd = (customer_360.update().where(customer_360.c.golden_id == sa.bindparam("b_gid"))
               .values(record=json_text_param(conn, "record"), record_hash=sa.bindparam("record_hash"),
                       updated_at=sa.bindparam("updated_at")))
        ts = bound_time(conn, now)
        rk = customer_360_rank.c
        for start in range(0, len(rebuild), chunk_size):
            part = rebuild[start:start + chunk_size]
            gid_in = {col: _where_gids(col, part, full) for col in (gc.golden_id, xref.c.golden_id,
                                                                     customer_360_link.c.golden_id,
                                                                     customer_360.c.golden_id)}
            profiles = {gid: _profile(gid, rec, score) for gid, rec, score in conn.execute(
                sa.select(gc.golden_id, gc.record, gc.quality_score)
                .where(gc.status == "active", gid_in[gc.golden_id])).all()}
            social_accounts: dict[str, set[str]] = defaultdict(set)
            for rk_, gid in conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(
                    xref.c.valid_to.is_(None), gid_in[xref.c.golden_id])).all():
                if rk_.split(":", 1)[0] in cfg.social_sources:
                    social_accounts[gid].add(rk_)
            linked = gid_in[customer_360_link.c.golden_id]
            orders_by_golden = _chunk_orders(conn, linked)
            shipments_by_golden: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for gid, rec in _chunk_records(conn, "shipments", linked, staged_record.c.record):
                shipments_by_golden[gid].append(rec)
            calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
            follows: Counter[str] = Counter()
            for gid, ckey, source, sid, *values in _chunk_records(
                    conn, "interactions", linked, staged_record.c.customer_key, staged_record.c.source,
                    staged_record.c.source_id, *call_fields.columns):
                kind, phone, occurred, csid, direction, duration, billsec, disposition, channel = \
                    call_fields.values(values)
                if kind == "call":
                    calls[gid].append({"source": source, "source_id": sid, "kind": kind, "phone": phone,
                                       "occurred_at": parse_dt(occurred), "direction": direction,
                                       "duration_s": duration, "billsec_s": billsec, "disposition": disposition,
                                       "channel": channel})
                else:
                    social_accounts[gid].add(ckey or record_key(source, str(csid)))
                    if kind == "social_follow":
                        follows[gid] += 1
            for recs in (*shipments_by_golden.values(), *calls.values()):
                recs.sort(key=_record_order)
            existing = dict(conn.execute(sa.select(customer_360.c.golden_id, customer_360.c.record_hash)
                                         .where(gid_in[customer_360.c.golden_id])).all())
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            ranks: list[tuple] = []  # _RANK_VIEW, golden id
            for gid in part:
                profile = profiles.get(gid)
                if profile is None:  # retired between the two passes cannot happen in one transaction
                    continue
                kept, _, (_, freq, monetary), agg = _order_figures(orders_by_golden.get(gid, ()), cfg, as_of)
                recency, r_s, f_s, m_s, life = figures[gid]
                rfm = _RfmFigures(recency, freq, monetary, r_s, f_s, m_s)
                tier = value_tier(rfm.monetary, rfm.frequency, cfg.value_tiers)
                segment = segment_for(rfm, tier, life, cfg.rules)
                orders = sorted(kept, key=lambda o: parse_dt(o.get("ordered_at")) or datetime.min, reverse=True)
                ships = shipments_by_golden.get(gid, [])
                last_ship = max(ships, key=_shipment_sort_key) if ships else None
                open_ships = sorted((s for s in ships if s.get("status") in OPEN_SHIPMENT_STATUSES),
                                    key=_shipment_sort_key, reverse=True)
                gid_calls = sorted(calls.get(gid, ()), key=lambda c: c["occurred_at"] or datetime.min, reverse=True)
                call_dates = [c["occurred_at"] for c in gid_calls if c["occurred_at"] is not None]
                data = {
                    "golden_id": gid,
                    "profile": profile,
                    "orders_count": len(orders),
                    "total_spent": rfm.monetary,
                    "currency": agg["currency"],
                    "first_order_at": agg["first"],
                    "last_order_at": agg["last"],
                    "recent_orders": orders[: cfg.recent_orders],
                    "shipments_count": len(ships),
                    "open_shipments": len(open_ships),
                    "open_shipment_list": open_ships[:SHOWN_OPEN_SHIPMENTS],
                    "last_shipment_status": last_ship.get("status") if last_ship else None,
                    "calls_count": len(gid_calls),
                    "last_call_at": max(call_dates) if call_dates else None,
                    "recent_calls": [_call_view(c) for c in gid_calls[:SHOWN_RECENT_CALLS]],
                    "social_follows": follows.get(gid, 0),
                    "social_accounts": sorted(social_accounts.get(gid, ())),
                    "rfm": rfm,
                    "value_tier": tier,
                    "lifecycle": life,
                    "segment": segment,
                    "consent": profile.get("consent") or {},
                }
                try:
                    record, exact = view_record(data)
                except ValidationError as exc:
                    # one malformed golden record must not stop the view for everyone; fields only, never values
                    log.warning("360 for %s skipped: invalid fields %s", gid,
                                sorted({".".join(map(str, e["loc"])) for e in exc.errors()})[:10])
                    ranks.append((recency, r_s, f_s, m_s, life, None, None, gid))  # no value tier: invalid
                    continue
                ranks.append((recency, r_s, f_s, m_s, life, tier, segment or "-", gid))
                # the fast writer's floats are all written by orjson as json.dumps writes them: no walk
                h = hashlib.sha256(json_bytes(record, sort_keys=True, floatless=exact)).hexdigest()
                old = existing.get(gid)
                if old == h:
                    continue
                record["computed_at"] = now.isoformat()
                text = _record_text(record, exact)
                if old is None:
                    inserts.append((gid, text, h, ts))
                else:
                    updates.append({"b_gid": gid, "record": text, "record_hash": h, "updated_at": now})
            if inserts:
                insert_rows(conn, customer_360, ("golden_id", "record", "record_hash", "updated_at"), inserts)
            if updates:
                conn.execute(upd, updates)
            _update_ranks(conn, ranks)
            stats.inserted += len(inserts)
            stats.updated += len(updates)
        _link_stats(conn, stats)
        # a retired (merged away) golden id has no 360 view any more
        # found through the views' key index, then deleted by key: a DELETE with this condition read every view
        # (SQLite scans the table for a DELETE; at a million people 4.5 GB in every build)
        gone = conn.execute(sa.select(customer_360.c.golden_id)
                            .where(not_active(customer_360.c.golden_id, conn.dialect.name))).scalars().all()
        stats.removed = 0
        for part in chunked(gone, 500):
            stats.removed += conn.execute(customer_360.delete().where(customer_360.c.golden_id.in_(part))).rowcount
        # the figures of everyone (built now or before), as a full build counts them
        stats.duplicate_orders = int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(rk.duplicate_orders), 0)))
                                     .scalar_one())
        for col, dist in ((rk.value_tier, "value_tiers"), (rk.lifecycle, "lifecycles"), (rk.segment, "segments")):
            setattr(stats, dist, {k: int(n) for k, n in conn.execute(
                sa.select(col, sa.func.count()).where(rk.value_tier.is_not(None)).group_by(col))})
        stats.invalid = int(conn.execute(sa.select(sa.func.count()).where(rk.value_tier.is_(None))).scalar_one())
        write_cursor(conn, "hub", INPUTS_ENTITY, {"fingerprint": _inputs(conn, cfg, as_of), "config": config_key,
                                                  "marks": marks, "irregular": irregular,
                                                  "figures": {f: getattr(stats, f) for f in _KEPT_FIGURES}})
    stats.golden_customers = len(gids)
    stats.unchanged = len(gids) - stats.inserted - stats.updated - stats.invalid
    stats.seconds = time.monotonic() - started
    return stats


class _RfmFigures(NamedTuple):
    """The RFM figures of one view (what ``Rfm`` holds; ``segment_for`` reads them by name)."""

    recency_days: int | None
    frequency: int
    monetary: Decimal
    r_score: int | None
    f_score: int | None
    m_score: int | None


_VIEW_EXCLUDE: dict[str, Any] = {"computed_at": True, "profile": {"lineage"}}
# Customer360 validated and dumped (``_VIEW_EXCLUDE``) for a view in dump form: orders and shipments are staged
# records (``model_dump(mode="json")``), filtered to the model's fields as ``_order_view`` / ``_shipment_view`` do
_RFM_WRITER = model_writer(Rfm)
_VIEW_WRITER = model_writer(Customer360, exclude=("computed_at",), writers={
    "profile": model_writer(GoldenCustomer, exclude=("lineage",)),
    "recent_orders": list_writer(model_writer(Order, ignore_extra=True)),
    "open_shipment_list": list_writer(model_writer(Shipment, ignore_extra=True)),
    "rfm": lambda r: _RFM_WRITER(r._asdict()),
})


def view_record(data: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The stored record of one view: ``Customer360.model_validate(...).model_dump(mode="json")`` without its
    computation time and the profile's lineage. ``data`` as ``build_360`` assembles it (orders and shipments
    as staged, ``rfm`` as ``_RfmFigures``). Written directly where every value is in dump form already
    (``hub.view_json``; then True: its floats are written by orjson as by json.dumps), else validated by the
    model (False); ValidationError as the model raises it."""
    try:
        return _VIEW_WRITER(data), True
    except Slow:
        pass
    view = Customer360.model_validate({
        **data,
        "recent_orders": [_order_view(o) for o in data["recent_orders"]],
        "open_shipment_list": [_shipment_view(s) for s in data["open_shipment_list"]],
        "rfm": data["rfm"]._asdict(),
    })
    return view.model_dump(mode="json", exclude=_VIEW_EXCLUDE), False


def _record_text(record: Mapping[str, Any], exact: bool) -> str:
    """The text the store writes for a view's record (``json_text``), by orjson where the record came from the
    fast writer (its floats written as json.dumps writes them)."""
    return json_bytes(record, floatless=exact, errors="surrogatepass").decode("utf-8", "surrogatepass") \
        if exact else json_text(record)


_ORDER_FIELDS = set(Order.model_fields)
_SHIPMENT_FIELDS = set(Shipment.model_fields)
_CALL_FIELDS = set(Interaction.model_fields)


def _order_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k in _ORDER_FIELDS}


def _shipment_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k in _SHIPMENT_FIELDS}


def _call_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k in _CALL_FIELDS and v is not None}


def _shipment_sort_key(rec: Mapping[str, Any]) -> tuple:
    for name in ("delivered_at", "shipped_at", "updated_at", "planned_date"):
        dt = parse_dt(rec.get(name))
        if dt is not None:
            return (dt, str(rec.get("source_id", "")))
    return (datetime.min, str(rec.get("source_id", "")))
