"""Push planning: what each target system should hold, queued in the outbox (diff-only via the store).

For every configured target and every current xref row of that target's source, the desired state of that
source record is ``{golden_id, segment, value_tier, lifecycle}`` from the customer 360 view. A call-center
target instead gets the PBX caller directory: one row per golden E.164 phone (target_id = the number) with
``display_name, golden_id, value_tier, segment``. ``store.enqueue_pushes`` drops rows the target already holds.

Consent (one rule, ``hub.consent``: per channel the most recent explicit statement wins, as on the golden
record and in the 360 view): a target that is a marketing channel (``consent_channel``: the shop's e-mail
campaigns, WeChat tags, the call center's phone line) gets segment, tier and lifecycle only when the customer's
consent for that channel allows it — otherwise they are cleared there, so a withdrawal reaches the target.
A target with a place for consent (``consent_fields``: shop customer meta, ERP categories, the PBX directory)
is also told the consent itself, per channel, so an opt-in after an opt-out reaches it too.

A record that left the hub (deactivated at its source, quarantined, …) while the target still holds the
hub's fields for it gets ``{"action": "withdraw"}``: the golden id, segment and consent the hub wrote there are
removed. A record deleted at its source has nothing left to withdraw: the hub forgets what it pushed there.

``create_missing: true`` on a target (the ERP): a golden customer with orders elsewhere but no record in that
system gets an outbox row with an empty target_id and a create payload. ``enqueue_pushes`` keys rows by
target_id, so these rows are de-duplicated here by golden id instead (one live create per golden customer,
never a second one once a create succeeded).

What the hub wrote is verified: connectors report the hub's fields as each pulled record carries them
(``landing.hub_state``), and a push records what the target holds once it is applied (``push_state.held_hash``).
A record whose pulled hub fields differ from what the hub wrote there (a golden id or segment removed or
changed by someone else, or lost by the target) is queued again with cause ``drift``, although its desired
state did not change; the plan and the report count these. An incremental plan checks only the records that can
have drifted since the last plan (``Store.drifted_records(since=...)``): those whose hub fields a pull saw change
(``landing.held_at``), those a push wrote, and those with an outbox row waiting or refused.

Configuration (the ``push`` section)::

    push:
      targets: [erp, webshop, social, callcenter]
      marketing_consent: opt_in        # or not_opted_out (unknown consent counts as granted)
      erp: {create_missing: true}                  # consent_fields: true is the default for an ERP
      webshop: {consent_channel: email}            # + consent_fields: default for kind woocommerce
      social: {consent_channel: social}            # default for a target named social / kind wechat
      callcenter: {mode: directory, consent_channel: phone}   # default for kind asterisk_cdr
      tryton: {source: tryton, entity: customers}  # source = the xref source name; entity = outbox entity
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from hub import c360_summary
from hub.c360_summary import profile_phones
from hub.consent import CONSENT_FIELDS, consent_fields, marketing_allowed
from hub.privacy.tombstones import GONE
from hub.store import (
    WRITABLE_ENTITIES,
    JsonPaths,
    Store,
    chunked,
    customer_360,
    customer_360_phone,
    gc_paused,
    golden_customer,
    jsonable,
    landing,
    newest_xref_change,
    not_among,
    payload_hash,
    push_outbox,
    push_state,
    read_cursor,
    select_in,
    source_tombstone,
    write_cursor,
    xref,
)

MARKETING_FIELDS = ("segment", "value_tier", "lifecycle")
DIRECTORY_CONSENT = ("consent_phone", "consent_sms")  # the consent a PBX directory entry carries
_TIER_RANK = {"platinum": 4, "gold": 3, "silver": 2, "bronze": 1, "none": 0}
# Which channel a kind of target markets on, and whether it has a place to hold consent itself.
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "woocommerce": {"consent_channel": "email", "consent_fields": True},  # shop e-mail campaigns; meta
    "wechat": {"consent_channel": "social"},  # the follow itself is the consent; tags are marketing
    "asterisk_cdr": {"mode": "directory", "consent_channel": "phone", "consent_fields": True},
    "sql_erp": {"consent_fields": True},  # the system of record: categories, no marketing channel
    "tryton": {"consent_fields": True},
}
# the same for the sandbox's target names when the push section does not give kinds
_NAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "webshop": _KIND_DEFAULTS["woocommerce"],
    "social": _KIND_DEFAULTS["wechat"],
    "callcenter": _KIND_DEFAULTS["asterisk_cdr"],
    "erp": _KIND_DEFAULTS["sql_erp"],
    "tryton": _KIND_DEFAULTS["tryton"],
}
_TARGET_KEYS = {"source", "entity", "mode", "consent_channel", "consent_fields", "create_missing", "kind",
                "enabled"}


@dataclass(frozen=True)
class TargetConfig:
    name: str
    source: str
    entity: str = "customers"
    mode: str = "records"  # records | directory
    consent_channel: str | None = None  # email | sms | phone | social | post
    consent_fields: bool = False  # the target holds consent per channel (consent_email = yes | no | None)
    create_missing: bool = False


def target_configs(push_cfg: Mapping[str, Any] | None) -> list[TargetConfig]:
    """Parse the push section: ``targets`` (list of names, or mapping name -> options) + ``<name>:`` options."""
    cfg = dict(push_cfg or {})
    targets = cfg.get("targets", ["erp", "webshop", "social", "callcenter"])
    named: dict[str, dict[str, Any]] = (
        {str(k): dict(v or {}) for k, v in targets.items()} if isinstance(targets, Mapping)
        else {str(t): {} for t in targets}
    )
    out = []
    for name, opts in named.items():
        extra = cfg.get(name)
        opts = {**(dict(extra) if isinstance(extra, Mapping) else {}), **opts}
        bad = set(opts) - _TARGET_KEYS
        if bad:
            raise ValueError(f"push.{name}: unknown option(s) {sorted(bad)} (allowed: {sorted(_TARGET_KEYS)})")
        if opts.get("enabled", True) is False:
            continue
        merged = {**_NAME_DEFAULTS.get(name, {}), **_KIND_DEFAULTS.get(str(opts.get("kind")), {}), **opts}
        mode = merged.get("mode", "records")
        if mode not in ("records", "directory"):
            raise ValueError(f"push.{name}.mode must be records or directory, not {mode!r}")
        out.append(TargetConfig(
            name=name,
            source=str(merged.get("source", name)),
            entity=str(merged.get("entity", "directory" if mode == "directory" else "customers")),
            mode=mode,
            consent_channel=merged.get("consent_channel"),
            consent_fields=bool(merged.get("consent_fields", False)),
            create_missing=bool(merged.get("create_missing", False)),
        ))
    return out


# --------------------------------------------------------------------------------------------------------------
# Pure functions: desired states


def desired_state(golden_id: str, view: Mapping[str, Any] | None, consent_channel: str | None = None,
                  policy: str = "opt_in", with_consent: bool = False) -> tuple[dict[str, Any], bool]:
    """(payload, withheld): the golden id, the consent per channel when the target holds it, plus segment /
    tier / lifecycle unless the consent of the target's channel withholds them."""
    payload: dict[str, Any] = {"golden_id": golden_id}
    if view is None:
        return payload, False
    if with_consent:
        payload.update(consent_fields(view.get("consent")))
    if not marketing_allowed(view.get("consent"), consent_channel, policy):
        return payload, True
    for name in MARKETING_FIELDS:
        payload[name] = view.get(name)
    return payload, False


def display_name(golden_id: str, profile: Mapping[str, Any]) -> str:
    return profile.get("full_name") or profile.get("company") or golden_id


def directory_entries(views: Mapping[str, Mapping[str, Any]], consent_channel: str | None = None,
                      policy: str = "opt_in", with_consent: bool = False,
                      owners: Mapping[str, list[str]] | None = None
                      ) -> tuple[list[tuple[str, str, dict]], int, int]:
    """The PBX caller directory: one entry per E.164 phone of a golden customer.

    A number held by several golden customers (a shared household or office line) is shown as the customer
    with most orders, then highest tier, then lowest golden id — deterministic, so the entry does not flap.
    Segment and tier are shown only when the owner's consent of ``consent_channel`` allows it.
    ``owners``: phone -> the golden customers holding it, for the numbers to list (every holder's view in
    ``views``); else every number of ``views``. Returns (entries, ambiguous_numbers, consent_withheld).
    """
    if owners is None:
        owners = defaultdict(list)
        for gid, view in views.items():
            for phone in profile_phones(view.get("profile") or {}):
                owners[phone].append(gid)
    entries = []
    ambiguous = withheld = 0
    for phone in sorted(owners):
        gids = owners[phone]
        if len(gids) > 1:
            ambiguous += 1
        gid = min(gids, key=lambda g: (-int(views[g].get("orders_count") or 0),
                                       -_TIER_RANK.get(views[g].get("value_tier") or "none", 0), g))
        view = views[gid]
        entry: dict[str, Any] = {"display_name": display_name(gid, view.get("profile") or {}), "golden_id": gid}
        if marketing_allowed(view.get("consent"), consent_channel, policy):
            entry.update({"value_tier": view.get("value_tier"), "segment": view.get("segment")})
        else:
            withheld += 1
        if with_consent:  # what an agent needs before calling back: may this number get calls / texts
            entry.update({k: v for k, v in consent_fields(view.get("consent")).items() if k in DIRECTORY_CONSENT})
        entries.append((phone, gid, entry))
    return entries, ambiguous, withheld


def create_payload(golden_id: str, view: Mapping[str, Any]) -> dict[str, Any]:
    """What a target needs to create the customer: name, contact points, address, and the hub fields."""
    profile = view.get("profile") or {}
    address = profile.get("address") or next(iter(profile.get("addresses") or []), None)
    return {
        "golden_id": golden_id,
        "display_name": display_name(golden_id, profile),
        "phones": profile_phones(profile),
        "emails": list(profile.get("emails") or []),
        "address": address,
        **{name: view.get(name) for name in MARKETING_FIELDS},
        **consent_fields(view.get("consent")),
    }


# --------------------------------------------------------------------------------------------------------------
# Stats


@dataclass
class TargetPlan:
    target: str
    entity: str
    candidates: int = 0
    queued: int = 0
    consent_withheld: int = 0
    without_360: int = 0
    ambiguous_phones: int = 0
    removed: int = 0
    withdrawn: int = 0  # records that left the hub: the hub's fields are taken off them
    creates_candidates: int = 0
    creates_queued: int = 0
    drift: int = 0  # records whose hub fields a pull saw differ from what the hub wrote: queued again

    @property
    def unchanged(self) -> int:
        return self.candidates - self.queued


@dataclass
class PushPlanStats:
    targets: dict[str, TargetPlan] = field(default_factory=dict)
    queued: int = 0
    creates_queued: int = 0
    consent_withheld: int = 0
    drift: int = 0
    full: bool = True  # every golden customer planned (else only those changed since the last plan)
    golden_planned: int = 0  # golden customers whose desired states were worked out
    seconds: float = 0.0

    def markdown(self) -> str:
        scope = "every golden customer" if self.full else f"{self.golden_planned} changed golden customers"
        lines = [
            f"**Push plan** — {self.queued} rows queued ({self.creates_queued} creates, {self.drift} drift "
            f"repairs) in {self.seconds:.1f}s, planned for {scope}",
            "",
            "| target | entity | desired | queued | unchanged | consent withheld | creates queued | notes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for t in self.targets.values():
            notes = []
            if t.without_360:
                notes.append(f"{t.without_360} without 360 view")
            if t.ambiguous_phones:
                notes.append(f"{t.ambiguous_phones} shared numbers")
            if t.removed:
                notes.append(f"{t.removed} numbers removed")
            if t.drift:
                notes.append(f"{t.drift} records drifted (changed or lost in the target): re-pushed")
            if t.withdrawn:
                notes.append(f"{t.withdrawn} records withdrawn")
            lines.append(f"| {t.target} | {t.entity} | {t.candidates} | {t.queued} | {t.unchanged} | "
                         f"{t.consent_withheld} | {t.creates_queued}/{t.creates_candidates} | {'; '.join(notes)} |")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Store I/O


def _load_views(conn: sa.Connection, gids: Iterable[str] | None = None, between: tuple[str, str] | None = None
                ) -> dict[str, dict[str, Any]]:
    """360 summaries of active golden customers (of ``gids`` only, when given; of the golden ids from
    ``between[0]`` to ``between[1]``, when given).

    Only the profile fields the directory needs are read (JSON paths): decoding 100k full profiles with their
    lineage would dominate the run. Create payloads read full profiles for their few candidates.
    """
    views: dict[str, dict[str, Any]] = {}
    fields = JsonPaths(customer_360.c.record, [
        ("segment", "string"), ("value_tier", "string"), ("lifecycle", "string"), ("orders_count", "integer"),
        ("consent", "json"), (("profile", "full_name"), "string"), (("profile", "company"), "string"),
        (("profile", "primary_phone"), "string"), (("profile", "phones"), "json")], conn.dialect.name)
    q = (sa.select(customer_360.c.golden_id, *fields.columns)
         .join(golden_customer, golden_customer.c.golden_id == customer_360.c.golden_id)
         .where(golden_customer.c.status == "active"))
    if between is not None:
        q = q.where(customer_360.c.golden_id.between(*between))
    parts = [q] if gids is None else [q.where(customer_360.c.golden_id.in_(part))
                                      for part in chunked(sorted(gids), 500)]
    for part in parts:
        for gid, *values in conn.execute(part):
            segment, tier, life, orders, consent, name, company, primary, phones = fields.values(values)
            profile = {"full_name": name, "company": company, "primary_phone": primary, "phones": phones or []}
            views[gid] = {"segment": segment, "value_tier": tier, "lifecycle": life, "orders_count": orders or 0,
                          "consent": consent or {}, "profile": profile}
    return views


def _phone_holders(conn: sa.Connection, *, gids: Iterable[str] = (), phones: Iterable[str] = ()
                   ) -> dict[str, list[str]]:
    """E.164 phone -> the active golden customers whose 360 profile holds it, for the numbers ``gids`` hold and
    the numbers ``phones`` (the kept phone rows of hub/c360_summary.py, refreshed by ``plan_pushes``)."""
    p, gc = customer_360_phone.c, golden_customer.c
    # active holders only, by EXISTS: the phone rows asked for are read first (by number or golden id) and each
    # holder's status looked up. As a join SQLite read every active golden customer first and looked each up
    # among the numbers asked for (20k people: 2.9 s per 500 numbers, 140 s of a first plan's 145; at 1M hours)
    active = sa.exists().where(gc.golden_id == p.golden_id, gc.status == "active")
    q = sa.select(p.phone, p.golden_id).where(active)
    return _owners([*select_in(conn, q, p.golden_id, gids), *select_in(conn, q, p.phone, phones)])


def _shared_phones(conn: sa.Connection) -> dict[str, list[str]]:
    """The numbers the kept phone rows list for more than one golden customer, with their active holders: a
    full plan's other holders of a chunk's numbers. A view's numbers are its phone rows, so a number with one
    row has no other holder. One read where ``_phone_holders`` of every number took IN lists of 500 that each
    looked every holder's status up (1M people on PostgreSQL: ~290 s of the stage's 368, waiting on reads)."""
    p, gc = customer_360_phone.c, golden_customer.c
    shared = sa.select(p.phone).group_by(p.phone).having(sa.func.count() > 1)
    active = sa.exists().where(gc.golden_id == p.golden_id, gc.status == "active")
    return _owners(conn.execute(sa.select(p.phone, p.golden_id).where(p.phone.in_(shared), active)
                                .order_by(p.phone, p.golden_id)))


def _owners(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    owners: dict[str, list[str]] = defaultdict(list)
    for phone, gid in rows:
        if gid not in owners[phone]:
            owners[phone].append(gid)
    return owners


PLAN_ENTITY = "_push_plan"  # sync_state row: the config and change marks of the last plan
# golden customers whose desired states are worked out at a time: a plan holds their views and outbox rows, not
# every customer's (a full plan of a million customers held ~4 GB of them at once)
PLAN_CHUNK = 20_000


def _plan_marks(conn: sa.Connection) -> dict[str, str | None]:
    """The newest change times of what decides a desired state: the 360 views, the cross-references and the
    target records landed (taken before anything is read)."""
    def iso(value: Any) -> str | None:
        if value is None:
            return None
        return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).isoformat()

    vf, vt = newest_xref_change(conn)
    return {
        "c360": iso(conn.execute(sa.select(sa.func.max(customer_360.c.updated_at))).scalar()),
        "golden": iso(conn.execute(sa.select(sa.func.max(golden_customer.c.updated_at))).scalar()),
        "xref": max((x for x in (iso(vf), iso(vt)) if x), default=None),
        # per entity: one step down the (entity, first_landed_at) index each, where an IN list scanned it all
        "landing": iso(max((at for entity in WRITABLE_ENTITIES if (at := conn.execute(
            sa.select(sa.func.max(landing.c.first_landed_at)).where(landing.c.entity == entity)).scalar())
            is not None), default=None)),
        # the drift check's (Store.drifted_records): a pull's newest sight of changed hub fields, the newest push
        # state; one step down each time-led index
        "drift": [iso(conn.execute(sa.select(sa.func.max(landing.c.held_at))).scalar()),
                  iso(conn.execute(sa.select(sa.func.max(push_state.c.pushed_at))).scalar())],
    }


def _changes(conn: sa.Connection, marks: Mapping[str, str | None], sources: Iterable[str]
             ) -> tuple[set[str], dict[str, set[str]]]:
    """What changed since the marks of the last plan: golden ids (view rewritten, golden record changed, a
    cross-reference opened or closed) and target records per source (landed new, linked or unlinked)."""
    gids: set[str] = set()
    records: dict[str, set[str]] = defaultdict(set)

    def at(name: str) -> datetime | None:
        return datetime.fromisoformat(marks[name]) if marks.get(name) else None

    if at("c360") is not None:
        gids.update(conn.execute(sa.select(customer_360.c.golden_id)
                                 .where(customer_360.c.updated_at > at("c360"))).scalars())
    if at("golden") is not None:
        gids.update(conn.execute(sa.select(golden_customer.c.golden_id)
                                 .where(golden_customer.c.updated_at > at("golden"))).scalars())
    if at("xref") is not None:
        for source, sid, gid in conn.execute(sa.select(xref.c.source, xref.c.source_id, xref.c.golden_id).where(
                sa.or_(xref.c.valid_from > at("xref"), xref.c.valid_to > at("xref")))):
            gids.add(gid)
            records[source].add(sid)
    if at("landing") is not None:
        for source, sid in conn.execute(sa.select(landing.c.source, landing.c.source_id).where(
                landing.c.source.in_(sorted(sources)), landing.c.entity.in_(WRITABLE_ENTITIES),
                landing.c.first_landed_at > at("landing"))):
            records[source].add(sid)
    return gids, records


def _full_profiles(store: Store, golden_ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for start in range(0, len(golden_ids), 500):
            chunk = golden_ids[start:start + 500]
            out.update(conn.execute(
                sa.select(customer_360.c.golden_id, customer_360.c.record["profile"])
                .where(customer_360.c.golden_id.in_(chunk))).all())
    return out


@gc_paused()  # a bulk pass: no cycles among its many small containers (see hub.store.gc_paused)
def plan_pushes(store: Store, push_cfg: Mapping[str, Any] | None, *, force: bool = False) -> PushPlanStats:
    """Queue the desired state of every target record; returns counts per target.

    Incremental: only the golden customers and target records that changed since the last plan (its marks in
    sync_state: 360 views rewritten, golden records changed, cross-references opened or closed, target
    records landed; records a pull saw drift on) get their desired states worked out again — everything else
    is what the last plan queued and the targets confirmed, so the outbox comes out as a full plan would
    leave it (enqueue_pushes is diff-only and idempotent). The caller directory re-resolves the numbers
    those golden customers hold or held. A changed push configuration, ``force`` or a store planned by an
    older hub plans everyone."""
    started = time.monotonic()
    targets = target_configs(push_cfg)
    policy = str((push_cfg or {}).get("marketing_consent", "opt_in"))
    if policy not in ("opt_in", "not_opted_out"):
        raise ValueError(f"push.marketing_consent must be opt_in or not_opted_out, not {policy!r}")
    stats = PushPlanStats()
    config_key = payload_hash(jsonable(dict(push_cfg or {})))
    wanted_sources = {t.source for t in targets}

    if any(t.mode == "directory" for t in targets):
        c360_summary.refresh(store)  # the numbers each golden customer holds: from the views rewritten since
    with store.engine.connect() as conn:
        marks = _plan_marks(conn)
        saved = read_cursor(conn, "hub", PLAN_ENTITY)
        full = force or not saved or saved.get("config") != config_key or not saved.get("marks")
        changed_gids, changed_records = (set(), {}) if full else _changes(conn, saved["marks"], wanted_sources)
        # an incremental plan checks the records that can have drifted since the last one's drift marks (a plan
        # before those were kept: all of them)
        since = None
        if not full and saved["marks"].get("drift"):
            held, pushed = (datetime.fromisoformat(m) if m else None for m in saved["marks"]["drift"])
            since = (held, pushed)
        drifted = {tc.name: store.drifted_records(tc.name, tc.entity, tc.source, since=since)
                   for tc in targets if tc.mode == "records"}
        directory = [tc for tc in targets if tc.mode == "directory"]
        phones: set[str] | None = None
        unheld: set[str] | None = None  # an incremental plan's numbers no active golden customer holds
        if full:
            # every active golden customer, in golden-id order (each chunk is one range of them)
            scope = list(conn.execute(sa.select(golden_customer.c.golden_id)
                                      .where(golden_customer.c.status == "active")
                                      .order_by(golden_customer.c.golden_id)).scalars())
        else:
            # the records to plan: those of a changed golden customer, changed themselves, or drifted
            for tc in targets:
                if tc.mode == "records":
                    changed_records.setdefault(tc.source, set()).update(drifted[tc.name])
            changed_records = {src: ids for src, ids in changed_records.items() if src in wanted_sources}
            needed = set(changed_gids) | {gid for _, _, gid in _open_links(conn, wanted_sources,
                                                                             records=changed_records)}
            if directory:
                # the numbers a changed golden customer holds now or held when the hub last wrote them, and
                # every active holder of those numbers (the kept phone rows: not every view's profile). The
                # numbers queued for them count too: one whose push has not gone out (the target down) names
                # its holder in the outbox only, and it is among the numbers checked for removal below
                phones = set(_phone_holders(conn, gids=changed_gids))
                for tc in directory:
                    phones |= {tid for (tid,) in select_in(conn, sa.select(push_state.c.target_id).where(
                        push_state.c.target == tc.name, push_state.c.entity == tc.entity),
                        push_state.c.golden_id, changed_gids)}
                    phones |= {tid for (tid,) in select_in(conn, sa.select(push_outbox.c.target_id).where(
                        push_outbox.c.target == tc.name, push_outbox.c.entity == tc.entity,
                        push_outbox.c.target_id != "", push_outbox.c.status != "superseded"),
                        push_outbox.c.golden_id, changed_gids)}
                holders = _phone_holders(conn, phones=phones)
                needed |= {gid for gids in holders.values() for gid in gids}
                # the only numbers that can have lost their last holder since the last plan
                unheld = phones - holders.keys()
            scope = sorted(needed)
    stats.full = full
    stats.golden_planned = 0
    plans = {tc.name: TargetPlan(tc.name, tc.entity) for tc in targets}
    stats.targets.update(plans)
    # the source records linked to an active golden customer (a full plan's withdrawals: every other record
    # the hub wrote to is withdrawn)
    linked: dict[str, set[str]] = defaultdict(set)
    shared = None
    if full and directory:
        with store.engine.connect() as conn:
            shared = _shared_phones(conn)
    for at in range(0, len(scope), PLAN_CHUNK):
        chunk = scope[at:at + PLAN_CHUNK]
        lo, hi = chunk[0], chunk[-1]
        with store.engine.connect() as conn:
            if full:
                # one range of golden ids (one index scan each, not IN lists): the scope is every active golden
                # customer, so the range holds no other active one
                views = _load_views(conn, between=(lo, hi))
                rows = _open_links(conn, wanted_sources, between=(lo, hi))
            else:
                views = _load_views(conn, chunk)
                rows = _open_links(conn, wanted_sources, gids=chunk)
            stats.golden_planned += len(views) if full else len(chunk)
            if directory:  # the chunk's numbers and their holders: the same for every directory target
                owners, extra = _directory_owners(conn, views, lo, phones, shared)
                every = {**views, **(_load_views(conn, extra) if extra else {})}
                # a holder the kept phone rows name but whose view is gone (merged or erased since) holds nothing
                owners = {phone: kept for phone, gids in owners.items() if (kept := [g for g in gids if g in every])}
            for tc in directory:
                plan = plans[tc.name]
                items, ambiguous, withheld = directory_entries(every, tc.consent_channel, policy, tc.consent_fields,
                                                               owners=owners)
                plan.ambiguous_phones += ambiguous
                plan.consent_withheld += withheld
                plan.candidates += len(items)
                plan.queued += store.enqueue_pushes(tc.name, tc.entity, items)
        links: dict[str, list[tuple[str, str]]] = defaultdict(list)
        present: dict[str, set[str]] = defaultdict(set)  # the chunk's golden customers with a record in the source
        for source, source_id, gid in sorted(rows):
            present[source].add(gid)
            if full:
                linked[source].add(source_id)
            # an incremental plan: the records of a changed golden customer, or changed or drifted themselves
            if full or gid in changed_gids or source_id in changed_records.get(source, ()):
                links[source].append((source_id, gid))
        del rows
        for tc in targets:
            plan = plans[tc.name]
            if tc.mode == "records":
                items = []
                for source_id, gid in links.get(tc.source, ()):
                    view = views.get(gid)
                    if view is None:  # an active golden customer (every linked one is) without a 360 view
                        plan.without_360 += 1
                    payload, withheld = desired_state(gid, view, tc.consent_channel, policy, tc.consent_fields)
                    plan.consent_withheld += withheld
                    items.append((source_id, gid, payload))
                # what the hub wrote is verified: a pull that saw a target record lose or change the hub's
                # fields since the hub wrote them makes the record go out again, though its desired state is
                # unchanged
                plan.drift += len(drifted[tc.name] & {source_id for source_id, _, _ in items})
                plan.candidates += len(items)
                plan.queued += store.enqueue_pushes(tc.name, tc.entity, items, force=drifted[tc.name])
            if tc.create_missing:
                wanted = [gid for gid, view in sorted(views.items())
                          if gid not in present.get(tc.source, ()) and int(view.get("orders_count") or 0) > 0]
                profiles = _full_profiles(store, wanted)
                creates = [(gid, _without_consent(create_payload(gid, {**views[gid],
                                                                       "profile": profiles.get(gid) or {}}),
                                                  tc.consent_fields)) for gid in wanted]
                plan.creates_candidates += len(creates)
                plan.creates_queued += enqueue_creates(store, tc.name, tc.entity, creates)
        del views, links, present
    for tc in targets:
        plan = plans[tc.name]
        if tc.mode == "directory":
            # numbers no active golden customer holds any more (the kept phone rows, refreshed above)
            removals = _directory_removals(store, tc, unheld)
            plan.removed = len(removals)
            plan.candidates += len(removals)
            plan.queued += store.enqueue_pushes(tc.name, tc.entity, removals, cause="remove")
        else:
            # records that left the hub: what it wrote on them is taken off (cause 'remove')
            withdrawals = _record_withdrawals(store, tc, linked.get(tc.source, set()) if full else None,
                                              None if full else (changed_records.get(tc.source, set()), changed_gids))
            plan.withdrawn = len(withdrawals)
            plan.candidates += len(withdrawals)
            plan.queued += store.enqueue_pushes(tc.name, tc.entity, withdrawals, cause="remove")
        stats.queued += plan.queued + plan.creates_queued
        stats.creates_queued += plan.creates_queued
        stats.consent_withheld += plan.consent_withheld
        stats.drift += plan.drift
    with store.begin() as conn:
        write_cursor(conn, "hub", PLAN_ENTITY, {"config": config_key, "marks": marks})
    stats.seconds = time.monotonic() - started
    return stats


def _open_links(conn: sa.Connection, sources: Iterable[str], *, between: tuple[str, str] | None = None,
                gids: Iterable[str] = (), records: Mapping[str, Iterable[str]] | None = None
                ) -> list[tuple[str, str, str]]:
    """(source, source id, golden id) of the open cross-references of ``sources`` to an active golden customer
    whose record the source itself holds — a landing record of an entity the hub writes back to (customer
    records the mapping derived from other payloads, e.g. guest checkouts in web-shop orders, have no target
    record). Those of the golden ids from ``between[0]`` to ``between[1]``, of ``gids``, or of the ``records``
    (source -> source ids)."""
    x, lnd = xref.c, landing.c
    held = sa.exists().where(lnd.source == x.source, lnd.source_id == x.source_id,
                             lnd.entity.in_(WRITABLE_ENTITIES))
    q = (sa.select(x.source, x.source_id, x.golden_id)
         .join(golden_customer, golden_customer.c.golden_id == x.golden_id)
         .where(x.valid_to.is_(None), x.source.in_(sorted(sources)), golden_customer.c.status == "active", held))
    if between is not None:
        return [tuple(r) for r in conn.execute(q.where(x.golden_id.between(*between)))]
    if records is not None:  # by record key (``source:source_id``, indexed), the way a record is looked up
        keys = [f"{source}:{sid}" for source, ids in records.items() for sid in ids]
        return [tuple(r) for r in select_in(conn, q, x.record_key, keys)]
    return [tuple(r) for r in select_in(conn, q, x.golden_id, gids)]


def _directory_owners(conn: sa.Connection, views: Mapping[str, Mapping[str, Any]], lo: str,
                      planned: set[str] | None, shared: Mapping[str, list[str]] | None = None
                      ) -> tuple[dict[str, list[str]], set[str]]:
    """The numbers a chunk of golden customers (``views``, ids from ``lo`` on) lists in the directory, with
    every active holder of each; and the holders outside the chunk, whose views the choice of owner needs.

    A number is listed with the chunk of its first holder (in golden-id order), so a number shared across
    chunks is planned once. ``planned``: only these numbers (an incremental plan), else all the chunk holds.
    Holders come from the chunk's own profiles and the kept phone rows (every other active holder; ``shared``:
    those of every number held more than once, read once for a full plan)."""
    held: dict[str, list[str]] = defaultdict(list)
    for gid, view in views.items():
        for phone in profile_phones(view.get("profile") or {}):
            if planned is None or phone in planned:
                held[phone].append(gid)
    owners: dict[str, list[str]] = {}
    others = _phone_holders(conn, phones=held) if shared is None else shared
    for phone, gids in held.items():
        every = sorted(set(gids) | set(others.get(phone, ())))
        if every[0] >= lo:
            owners[phone] = every
    return owners, {gid for gids in owners.values() for gid in gids if gid not in views}


WITHDRAW: dict[str, Any] = {"action": "withdraw"}


def _record_withdrawals(store: Store, tc: TargetConfig, linked: set[str] | None,
                        changed: tuple[set[str], set[str]] | None = None) -> list[tuple[str, str, dict]]:
    """Target records the hub wrote to (push_state) that no longer belong to any golden customer: withdraw
    what the hub wrote, unless the source deleted the record (then only forget the push state). ``linked``:
    the source's records linked to an active golden customer (None: looked up for the records in question).
    ``changed`` (target ids, golden ids): only those records, or records the hub wrote for those golden
    customers, are looked at (an incremental plan: any other orphan was one at the last plan already)."""
    withdrawn = payload_hash(WITHDRAW)
    ps = push_state.c
    of_target = sa.select(ps.target_id, ps.golden_id, ps.payload_hash).where(ps.target == tc.name,
                                                                              ps.entity == tc.entity)
    with store.begin() as conn:
        if changed is None:  # every push state of the target, streamed: only the unlinked ones are kept
            rows = [row for row in conn.execution_options(yield_per=10_000).execute(of_target)
                    if row[0] not in linked]
        else:  # the database picks the changed ones: the target's every push state never reaches Python
            rows = [row for part in chunked(sorted(changed[0]), 500)
                    for row in conn.execute(of_target.where(ps.target_id.in_(part)))]
            rows += [row for part in chunked(sorted(changed[1]), 500)
                     for row in conn.execute(of_target.where(ps.golden_id.in_(part)))]
        if linked is None:
            linked = {sid for _, sid, _ in _open_links(conn, [tc.source], records={tc.source: {t for t, _, _ in rows}})}
        orphans = {tid: (gid, h) for tid, gid, h in rows if tid not in linked and h != withdrawn
                   and (changed is None or tid in changed[0] or gid in changed[1])}
        gone: set[str] = set()
        for part in chunked(sorted(orphans), 500):
            gone.update(conn.execute(
                sa.select(source_tombstone.c.source_id).where(
                    source_tombstone.c.source == tc.source, source_tombstone.c.entity.in_(WRITABLE_ENTITIES),
                    source_tombstone.c.kind.in_(sorted(GONE)), source_tombstone.c.source_id.in_(part))).scalars())
        for part in chunked(sorted(gone), 500):
            conn.execute(push_state.delete().where(push_state.c.target == tc.name, push_state.c.entity == tc.entity,
                                                   push_state.c.target_id.in_(part)))
    return [(tid, gid, dict(WITHDRAW)) for tid, (gid, _) in sorted(orphans.items()) if tid not in gone]


def _without_consent(payload: dict[str, Any], keep: bool) -> dict[str, Any]:
    return payload if keep else {k: v for k, v in payload.items() if k not in CONSENT_FIELDS}


def _directory_removals(store: Store, tc: TargetConfig, unheld: set[str] | None = None
                        ) -> list[tuple[str, str, dict]]:
    """Numbers the PBX directory holds (pushed before) that no active golden customer has any more (the kept
    phone rows, refreshed by ``plan_pushes``): remove them. ``unheld``: those numbers, known already (an
    incremental plan's: of the numbers its changed golden customers hold or were pushed for, the ones without
    an active holder); None: every number the directory holds, checked against every held one."""
    ps, p, gc = push_state.c, customer_360_phone.c, golden_customer.c
    pushed = sa.select(ps.target_id, ps.golden_id, ps.payload_hash).where(ps.target == tc.name,
                                                                       ps.entity == tc.entity)
    with store.engine.connect() as conn:
        if unheld is None:
            held = sa.select(p.phone).join(golden_customer, gc.golden_id == p.golden_id).where(gc.status == "active")
            # the database leaves out every number an active golden customer holds
            rows = conn.execute(pushed.where(not_among(ps.target_id, held, store.engine.dialect.name))
                                .order_by(ps.target_id)).all()
        else:  # by number (the anti join listed every held number for each IN list)
            rows = sorted(select_in(conn, pushed, ps.target_id, unheld), key=itemgetter(0))
    out = []
    for tid, gid, h in rows:
        payload = {"golden_id": gid, "lifecycle": "deleted"}
        if h != payload_hash(payload):  # not yet removed
            out.append((tid, gid, payload))
    return out


def enqueue_creates(store: Store, target: str, entity: str, creates: Iterable[tuple[str, dict]]) -> int:
    """Queue create rows (empty target_id), one live row per golden id.

    Skipped when the golden customer already has a create row with this payload (any status but superseded)
    or a create that succeeded ('ok': the new record arrives with the next pull and gets an xref). A pending
    create with an older payload is superseded by the new one.
    """
    creates = list(creates)
    if not creates:
        return 0
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.begin() as conn:
        # the create rows of these golden customers only (ix_outbox_golden): a plan queues creates a chunk
        # of golden customers at a time, and reading every create row of the target each time made a full plan's
        # reads grow with the square of the population
        existing: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for oid, gid, h, status in select_in(
            conn, sa.select(push_outbox.c.id, push_outbox.c.golden_id, push_outbox.c.payload_hash, push_outbox.c.status)
            .where(push_outbox.c.target == target, push_outbox.c.entity == entity, push_outbox.c.target_id == "",
                   push_outbox.c.status != "superseded"), push_outbox.c.golden_id, (gid for gid, _ in creates)
        ):
            existing[gid].append((oid, h, status))
        inserts, supersede = [], []
        for gid, payload in creates:
            h = payload_hash(payload)
            rows = existing.get(gid, [])
            if any(status == "ok" or old_h == h for _, old_h, status in rows):
                continue
            supersede += [oid for oid, _, status in rows if status in ("pending", "error")]
            inserts.append({"target": target, "entity": entity, "target_id": "", "golden_id": gid,
                            "payload": jsonable(payload), "payload_hash": h, "status": "pending", "attempts": 0,
                            "created_at": now, "updated_at": now, "cause": "create"})
        for start in range(0, len(supersede), 500):
            conn.execute(push_outbox.update().where(push_outbox.c.id.in_(supersede[start:start + 500]))
                         .values(status="superseded", updated_at=now))
        if inserts:
            conn.execute(push_outbox.insert(), inserts)
    return len(inserts)
