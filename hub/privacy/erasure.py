"""``hub erase``: the right to be forgotten (PIPL Art. 47, GDPR Art. 17) across the hub and every system.

1. **Find the person** (``find_person``) from a golden id, a phone number, an e-mail address or a source
   record: the golden record, every golden id merged into it, every source record that ever belonged to them
   (and did not move on to someone else), their orders, shipments, calls and messages, quarantined or not yet
   staged payloads carrying their contacts, and the records the hub knows or wrote in each target system.
   A phone or e-mail nobody has, or that two golden customers share, erases nothing: the message lists the
   candidates and the operator picks one with ``--golden-id``.
2. **Plan** (``ErasurePlan``): rows per hub table and records per system — what ``--dry-run`` prints.
3. **Erase** (``erase``), in one transaction: personal data deleted or anonymised in every table of
   ``hub.privacy.inventory.PERSONAL``; the golden ids stay as bare ids (status ``erased``) so they are never
   reused; the person's phones, e-mails, national ids and source keys go on the suppression list
   (``hub.privacy.suppression``) — contact points another customer shares are left off it; one non-personal
   audit row (``erasure``: id, time, reason, counts); and one outbox row per target record,
   ``{"action": "erase"}``, pushed by the ordinary push step (same outbox, same row-level log, retried until
   the target confirms): Tryton / the SQL ERP deactivate and anonymise the party (Tryton deletes it when it
   has no documents), WooCommerce deletes the customer, WeChat loses the hub's tags, the PBX directory loses
   the numbers.
4. **Finish** (``finish_erasures``, after each push): confirmed erasure rows lose their target ids too; when no
   row of an erasure is left to send, the erasure is ``done``.

Idempotent: erasing again finds nothing (the person is gone, their contacts are suppressed) and says so;
an erasure whose pushes are still pending is resumed by the next sync.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.privacy import suppression
from hub.privacy.inventory import PERSONAL
from hub.standardise import phone_e164, standardise_email
from hub.store import (
    IN_LIST,
    Store,
    chunked,
    customer_360,
    customer_360_link,
    customer_360_phone,
    customer_360_rank,
    customer_360_summary,
    customer_base_snapshot,
    erasure,
    golden_customer,
    golden_id_history,
    landing,
    lookup_key,
    lookup_record,
    match_block,
    match_model,
    match_pair,
    match_record,
    payload_hash,
    push_outbox,
    push_result,
    push_state,
    quarantine,
    review_decision,
    select_in,
    source_tombstone,
    staged_record,
    sync_state,
    xref,
)

SelectorKind = Literal["golden_id", "phone", "email", "record"]
ERASED = "erased"  # golden status, and what anonymised target ids / payload markers read


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ErasureInputError(ValueError):
    """The selector finds nobody, or more than one person: nothing was erased. The message says why."""


@dataclass(frozen=True)
class Selector:
    kind: SelectorKind
    value: str

    def shown(self) -> str:
        """The selector as a message may repeat it (contact data masked)."""
        if self.kind == "phone":
            digits = re.sub(r"\D", "", self.value)
            return f"phone ***{digits[-4:]}" if len(digits) > 4 else "phone ***"
        if self.kind == "email":
            local, _, domain = self.value.partition("@")
            return f"e-mail {local[:1]}***@{domain}"
        return f"{self.kind} {self.value}"


@dataclass
class Person:
    golden_ids: set[str] = field(default_factory=set)
    customer_keys: set[str] = field(default_factory=set)  # staged customer record keys
    staged: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # entity -> record keys
    landing_ids: set[int] = field(default_factory=set)
    landing_keys: set[tuple[str, str, str]] = field(default_factory=set)  # (source, entity, source_id)
    quarantine_ids: set[int] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    national_ids: set[str] = field(default_factory=set)
    shared: set[str] = field(default_factory=set)  # contacts another (active) customer holds too
    targets: dict[str, dict[str, set[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(set)))

    @property
    def record_keys(self) -> set[str]:
        return {k for keys in self.staged.values() for k in keys} | self.customer_keys

    def staged_pairs(self) -> dict[str, set[str]]:
        """Staged entity -> record keys (keys repeat across entities: ERP party 5 and sale 5 are both erp:5)."""
        out = {e: set(keys) for e, keys in self.staged.items()}
        out["customers"] = out.get("customers", set()) | self.customer_keys
        return out

    def unique(self, values: Iterable[str]) -> set[str]:
        return {v for v in values if v not in self.shared}


@dataclass
class ErasurePlan:
    selector: Selector
    person: Person
    hub: dict[str, int]  # table -> rows erased or anonymised
    systems: dict[str, int]  # target -> records told to erase

    def render(self) -> str:
        p = self.person
        lines = [f"Erasure of the person found by {self.selector.shown()}: {len(p.golden_ids)} golden id(s), "
                 f"{len(p.customer_keys)} customer record(s), "
                 f"{sum(len(v) for e, v in p.staged_pairs().items() if e != 'customers')} order / shipment / "
                 "call / message record(s)", "", "Hub store (rows erased or anonymised):"]
        lines += [f"  {t:<20} {n:>6}" for t, n in sorted(self.hub.items()) if n]
        lines += ["", "Systems (records told to erase):"]
        lines += [f"  {t:<20} {n:>6}" for t, n in sorted(self.systems.items())] or ["  (none)"]
        sup = len(p.unique(p.phones)) + len(p.unique(p.emails)) + len(p.unique(p.national_ids))
        lines += ["", f"Suppression list: {sup} contact point(s) and {len(p.landing_keys) + len(p.record_keys)} "
                      "source key(s), as salted hashes"]
        if p.shared:
            lines.append(f"  ({len(p.shared)} contact point(s) another customer shares stay off the list)")
        return "\n".join(lines)


@dataclass
class ErasureResult:
    erasure_id: str | None
    plan: ErasurePlan
    dry_run: bool
    queued: int = 0


# ------------------------------------------------------------------------------------------------ finding


def _selector_value(selector: Selector, region: str) -> str:
    if selector.kind == "phone":
        value = phone_e164(selector.value, region)
        if not value:
            raise ErasureInputError(f"{selector.shown()} is not a phone number the hub can read; nothing erased")
        return value
    if selector.kind == "email":
        value = standardise_email(selector.value).address
        if not value:
            raise ErasureInputError(f"{selector.shown()} is not an e-mail address; nothing erased")
        return value
    if selector.kind == "record" and ":" not in selector.value:
        raise ErasureInputError(f"a record is written SOURCE:ID (e.g. webshop:1042), not {selector.value!r}")
    return selector.value.strip()


def _describe(conn: Connection, gids: Iterable[str]) -> list[str]:
    lines = []
    for gid, rec in select_in(conn, sa.select(golden_customer.c.golden_id, golden_customer.c.record),
                              golden_customer.c.golden_id, gids):
        rec = rec or {}
        name = rec.get("full_name") or rec.get("company") or ""
        masked = " ".join(w[:1] + "*" * (len(w) - 1) for w in str(name).split()) or "(no name)"
        lines.append(f"  --golden-id {gid}   {masked}   {', '.join(rec.get('sources') or [])}   "
                     f"{len(rec.get('record_keys') or [])} record(s)")
    return lines


def _seed(conn: Connection, selector: Selector, value: str) -> tuple[set[str], set[str]]:
    """(golden ids, customer record keys without a golden id) the selector points at."""
    if selector.kind == "golden_id":
        row = conn.execute(sa.select(golden_customer.c.status, golden_customer.c.merged_into)
                           .where(golden_customer.c.golden_id == value)).first()
        if row is None:
            raise ErasureInputError(f"no golden customer {value}; nothing erased")
        if row.status == ERASED:
            raise ErasureInputError(f"golden customer {value} was erased already; nothing to do")
        gid, seen = value, set()
        while True:  # a merged-away id stands for the golden record it was merged into
            r = conn.execute(sa.select(golden_customer.c.status, golden_customer.c.merged_into)
                             .where(golden_customer.c.golden_id == gid)).first()
            if r is None or r.status != "retired" or not r.merged_into or gid in seen:
                break
            seen.add(gid)
            gid = r.merged_into
        return {gid, value}, set()
    if selector.kind == "record":
        gid = conn.execute(sa.select(xref.c.golden_id).where(xref.c.record_key == value)
                           .order_by(xref.c.valid_to.is_not(None), xref.c.id.desc()).limit(1)).scalar()
        if gid is not None:
            return {gid}, set()
        known = conn.execute(sa.select(sa.func.count()).select_from(staged_record)
                             .where(staged_record.c.record_key == value)).scalar_one()
        source, _, sid = value.partition(":")
        landed = conn.execute(sa.select(sa.func.count()).select_from(landing)
                              .where(landing.c.source == source, landing.c.source_id == sid)).scalar_one()
        if not known and not landed:
            raise ErasureInputError(f"no record {value} in the hub; nothing erased")
        return set(), {value}
    field_name = "phones" if selector.kind == "phone" else "emails"
    found = set()
    for gid, rec in conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                                 .where(golden_customer.c.status == "active")):
        values = [str(v).lower() if selector.kind == "email" else v for v in (rec or {}).get(field_name) or []]
        if value in values:
            found.add(gid)
    if not found:
        raise ErasureInputError(f"no customer has the {selector.shown()}; nothing erased")
    if len(found) > 1:
        raise ErasureInputError(
            f"{len(found)} golden customers have the {selector.shown()} (a shared number or address): nothing "
            "erased. Choose the person:\n" + "\n".join(_describe(conn, found)))
    return found, set()


def _expand(conn: Connection, person: Person) -> None:
    """Golden ids merged into the person's, and every record that ever belonged to them."""
    frontier = set(person.golden_ids)
    while frontier:
        more = {r[0] for r in select_in(conn, sa.select(golden_customer.c.golden_id), golden_customer.c.merged_into,
                                        frontier)} - person.golden_ids
        person.golden_ids |= more
        frontier = more
    history = list(select_in(conn, sa.select(xref.c.record_key, xref.c.golden_id, xref.c.valid_to),
                             xref.c.golden_id, person.golden_ids))
    keys = {rk for rk, _, _ in history}
    # a record that moved on to someone else (a split) is that person's now
    moved = {rk for rk, gid in select_in(conn, sa.select(xref.c.record_key, xref.c.golden_id)
                                         .where(xref.c.valid_to.is_(None)), xref.c.record_key, keys)
             if gid not in person.golden_ids}
    person.customer_keys |= keys - moved
    for (rec,) in select_in(conn, sa.select(golden_customer.c.record), golden_customer.c.golden_id, person.golden_ids):
        person.customer_keys |= set((rec or {}).get("record_keys") or []) - moved


def _contacts(conn: Connection, person: Person) -> None:
    for rk, rec in select_in(conn, sa.select(staged_record.c.record_key, staged_record.c.record)
                             .where(staged_record.c.entity == "customers"), staged_record.c.record_key,
                             person.customer_keys):
        person.staged["customers"].add(rk)
        rec = rec or {}
        person.phones |= {p.get("e164") for p in rec.get("phones") or [] if isinstance(p, dict) and p.get("e164")}
        person.emails |= {str(e).lower() for e in rec.get("emails") or [] if e}
        if rec.get("national_id"):
            person.national_ids.add(str(rec["national_id"]).upper())
    for (rec,) in select_in(conn, sa.select(golden_customer.c.record), golden_customer.c.golden_id, person.golden_ids):
        rec = rec or {}
        person.phones |= {p for p in rec.get("phones") or [] if p}
        person.emails |= {str(e).lower() for e in rec.get("emails") or [] if e}
        if rec.get("national_id"):
            person.national_ids.add(str(rec["national_id"]).upper())
    # a contact point another active customer holds too (household line, shared inbox) is theirs as well
    for gid, rec in conn.execute(sa.select(golden_customer.c.golden_id, golden_customer.c.record)
                                 .where(golden_customer.c.status == "active")):
        if gid in person.golden_ids:
            continue
        rec = rec or {}
        person.shared |= person.phones & set(rec.get("phones") or [])
        person.shared |= person.emails & {str(e).lower() for e in rec.get("emails") or []}
        if rec.get("national_id") and str(rec["national_id"]).upper() in person.national_ids:
            person.shared.add(str(rec["national_id"]).upper())


def _dependents(conn: Connection, person: Person) -> None:
    """Orders, shipments, calls and messages of the person."""
    rec = staged_record.c.record
    phones, emails = person.unique(person.phones), person.unique(person.emails)
    orders: set[str] = set()
    for rk, ckey, csid, source, bphone, bemail in conn.execute(
        sa.select(staged_record.c.record_key, staged_record.c.customer_key, rec["customer_source_id"].as_string(),
                  staged_record.c.source, rec["billing_phone"].as_string(), rec["billing_email"].as_string())
        .where(staged_record.c.entity == "orders")
    ):
        owner = ckey or (f"{source}:{csid}" if csid else None)
        guest = owner is None and (bphone in phones or (bemail or "").lower() in emails)
        if owner in person.customer_keys or guest:
            orders.add(rk)
    person.staged["orders"] |= orders
    for rk, ckey, csid, osid, source in conn.execute(
        sa.select(staged_record.c.record_key, staged_record.c.customer_key, rec["customer_source_id"].as_string(),
                  rec["order_source_id"].as_string(), staged_record.c.source)
        .where(staged_record.c.entity == "shipments")
    ):
        owner = ckey or (f"{source}:{csid}" if csid else None)
        if owner in person.customer_keys or (osid and f"{source}:{osid}" in orders):
            person.staged["shipments"].add(rk)
    for rk, ckey, csid, source, kind, phone in conn.execute(
        sa.select(staged_record.c.record_key, staged_record.c.customer_key, rec["customer_source_id"].as_string(),
                  staged_record.c.source, rec["kind"].as_string(), rec["phone"].as_string())
        .where(staged_record.c.entity == "interactions")
    ):
        owner = ckey or (f"{source}:{csid}" if csid else None)
        if owner in person.customer_keys or (kind == "call" and phone in phones):
            person.staged["interactions"].add(rk)


_PHONE_RE = re.compile(r"\+?\d[\d\s\-().]{5,}\d")
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _carries(payload: Any, person: Person, region: str) -> bool:
    """Does a raw payload (never staged: quarantined, pending, tombstoned) carry the person's contacts?"""
    text = json.dumps(payload, ensure_ascii=False)
    phones, emails, ids = person.unique(person.phones), person.unique(person.emails), person.unique(
        person.national_ids)
    if any(m.group(0).lower() in emails for m in _EMAIL_RE.finditer(text)):
        return True
    if any(i in text.upper() for i in ids):
        return True
    return any(phone_e164(m.group(0), region) in phones for m in _PHONE_RE.finditer(text))


def _landing(conn: Connection, person: Person, derived: Mapping[str, Mapping[str, list[tuple[str, str]]]],
             region: str) -> None:
    """Landing rows the person's staged records came from, plus raw payloads that carry their contacts."""
    wanted: set[tuple[str, str, str]] = set()
    for entity, keys in person.staged.items():
        for rk in keys:
            source, _, sid = rk.partition(":")
            for lentity, outputs in derived.get(source, {}).items():
                for staged_entity, prefix in outputs:
                    if staged_entity == entity and sid.startswith(prefix):
                        wanted.add((source, lentity, sid[len(prefix):]))
    for source in {s for s, _, _ in wanted}:
        for lentity in {e for s, e, _ in wanted if s == source}:
            sids = [sid for s, e, sid in wanted if s == source and e == lentity]
            for lid, sid in select_in(conn, sa.select(landing.c.id, landing.c.source_id)
                                      .where(landing.c.source == source, landing.c.entity == lentity),
                                      landing.c.source_id, sids):
                person.landing_ids.add(lid)
                person.landing_keys.add((source, lentity, sid))
    # never staged: quarantined, not staged yet, or retired by a tombstone
    tombstoned = sa.exists().where(source_tombstone.c.source == landing.c.source,
                                   source_tombstone.c.entity == landing.c.entity,
                                   source_tombstone.c.source_id == landing.c.source_id)
    for lid, source, lentity, sid, payload in conn.execute(
        sa.select(landing.c.id, landing.c.source, landing.c.entity, landing.c.source_id, landing.c.payload)
        .where(sa.or_(landing.c.staged_hash.is_(None), landing.c.staged_hash != landing.c.payload_hash,
                      tombstoned))
    ):
        if lid not in person.landing_ids and _carries(payload, person, region):
            person.landing_ids.add(lid)
            person.landing_keys.add((source, lentity, sid))
    for qid, source, lentity, sid, payload in conn.execute(
        sa.select(quarantine.c.id, quarantine.c.source, quarantine.c.entity, quarantine.c.source_id,
                  quarantine.c.payload)
    ):
        if (source, lentity, sid) in person.landing_keys or _carries(payload, person, region):
            person.quarantine_ids.add(qid)
            person.landing_keys.add((source, lentity, sid))
    for lid, source, lentity, sid in select_in(conn, sa.select(landing.c.id, landing.c.source, landing.c.entity,
                                                               landing.c.source_id), landing.c.source_id,
                                               {sid for _, _, sid in person.landing_keys}):
        if (source, lentity, sid) in person.landing_keys:
            person.landing_ids.add(lid)


def _targets(conn: Connection, person: Person, targets: list[Any]) -> None:
    """The records each target system holds for the person (what the hub knows of or wrote there)."""
    from hub.push_plan import WRITABLE_ENTITIES

    linked = {(s, sid) for s, e, sid in person.landing_keys if e in WRITABLE_ENTITIES}
    phones = person.unique(person.phones)
    for tc in targets:
        held = list(select_in(conn, sa.select(push_state.c.entity, push_state.c.target_id, push_state.c.golden_id)
                              .where(push_state.c.target == tc.name), push_state.c.golden_id, person.golden_ids))
        if tc.mode == "directory":
            held += select_in(conn, sa.select(push_state.c.entity, push_state.c.target_id, push_state.c.golden_id)
                              .where(push_state.c.target == tc.name), push_state.c.target_id, phones)
            for entity, tid, _ in held:
                if tid not in person.shared:
                    person.targets[tc.name][entity].add(tid)
            continue
        for entity, tid, _ in held:
            person.targets[tc.name][entity].add(tid)
        for source, sid in linked:
            if source == tc.source:
                person.targets[tc.name][tc.entity].add(sid)


def find_person(store: Store, selector: Selector, *, targets: list[Any], derived: Mapping[str, Any],
                region: str = "CN") -> Person:
    """Everything the hub holds of the person the selector names (raises ``ErasureInputError``)."""
    value = _selector_value(selector, region)
    person = Person()
    with store.engine.connect() as conn:
        if selector.kind in ("phone", "email"):
            sup = suppression.load(store, conn)
            if sup.listed(selector.kind, value):
                raise ErasureInputError(f"the {selector.shown()} belongs to a person erased already "
                                        "(it is on the suppression list); nothing to do")
        gids, keys = _seed(conn, selector, value)
        person.golden_ids, person.customer_keys = gids, keys
        _expand(conn, person)
        if selector.kind == "phone":
            person.phones.add(value)
        elif selector.kind == "email":
            person.emails.add(value)
        _contacts(conn, person)
        _dependents(conn, person)
        _landing(conn, person, derived, region)
        _targets(conn, person, targets)
    return person


# ------------------------------------------------------------------------------------------------ erasing


def _count(conn: Connection, table: sa.Table, *where: Any) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _keys_where(column: Any, keys: set[str]) -> Any:
    return column.in_(sorted(keys)) if keys else sa.false()


def plan_erasure(store: Store, selector: Selector, person: Person) -> ErasurePlan:
    gids = person.golden_ids
    hub: dict[str, int] = {}
    with store.engine.connect() as conn:
        def count_in(table: sa.Table, column: Any, values: Iterable[Any], *where: Any) -> int:
            return sum(_count(conn, table, column.in_(part), *where) for part in chunked(sorted(set(values)), IN_LIST))

        hub["landing"] = len(person.landing_ids)
        hub["quarantine"] = len(person.quarantine_ids)
        hub["staged_record"] = sum(count_in(staged_record, staged_record.c.record_key, ks,
                                            staged_record.c.entity == e) for e, ks in person.staged_pairs().items())
        hub["match_pair"] = len({tuple(r) for col in (match_pair.c.left_key, match_pair.c.right_key)
                                 for r in select_in(conn, sa.select(match_pair.c.left_key, match_pair.c.right_key),
                                                    col, person.customer_keys)})
        hub["match_block"] = count_in(match_block, match_block.c.record_key, person.customer_keys)
        hub["match_record"] = count_in(match_record, match_record.c.record_key, person.customer_keys)
        hub["review_decision"] = len({tuple(r) for col in (review_decision.c.left_key, review_decision.c.right_key)
                                      for r in select_in(conn, sa.select(review_decision.c.left_key,
                                                                         review_decision.c.right_key),
                                                         col, person.customer_keys)})
        hub["golden_customer"] = count_in(golden_customer, golden_customer.c.golden_id, gids)
        hub["golden_id_history"] = count_in(golden_id_history, golden_id_history.c.golden_id, gids) + count_in(
            golden_id_history, golden_id_history.c.record_key, person.customer_keys,
            golden_id_history.c.golden_id.not_in(sorted(gids) or [""]))
        hub["xref"] = len({r[0] for col, vals in ((xref.c.record_key, person.customer_keys),
                                                  (xref.c.golden_id, gids))
                           for r in select_in(conn, sa.select(xref.c.id), col, vals)})
        hub["customer_360"] = count_in(customer_360, customer_360.c.golden_id, gids)
        hub["customer_360_link"] = count_in(customer_360_link, customer_360_link.c.golden_id, gids)
        hub["customer_360_rank"] = count_in(customer_360_rank, customer_360_rank.c.golden_id, gids)
        hub["customer_360_summary"] = count_in(customer_360_summary, customer_360_summary.c.golden_id, gids)
        hub["customer_360_phone"] = count_in(customer_360_phone, customer_360_phone.c.golden_id, gids)
        outbox_ids = _outbox_rows(conn, person)
        hub["push_outbox"] = len(outbox_ids)
        hub["push_result"] = count_in(push_result, push_result.c.outbox_id, outbox_ids)
        hub["push_state"] = sum(count_in(push_state, push_state.c.target_id, ids, push_state.c.target == t,
                                         push_state.c.entity == e)
                                for t, by_entity in person.targets.items() for e, ids in by_entity.items())
        hub["source_tombstone"] = len(person.landing_keys & _tombstoned(conn, person))
        hub["match_model"] = 1 if _model_hits(conn, person) else 0
        hub["sync_state"] = len(_cursors_holding(conn, person))
        hub["customer_base_snapshot"] = count_in(customer_base_snapshot, customer_base_snapshot.c.golden_id, gids)
        hub["lookup_key"] = count_in(lookup_key, lookup_key.c.golden_id, gids)
        hub["lookup_record"] = count_in(lookup_record, lookup_record.c.golden_id, gids)
    systems = {t: sum(len(v) for v in by_entity.values()) for t, by_entity in person.targets.items()
               if any(by_entity.values())}
    assert set(hub) <= set(PERSONAL)
    return ErasurePlan(selector, person, hub, systems)


def _outbox_rows(conn: Connection, person: Person) -> set[int]:
    ids = {r[0] for r in select_in(conn, sa.select(push_outbox.c.id), push_outbox.c.golden_id, person.golden_ids)}
    for target, by_entity in person.targets.items():
        for entity, tids in by_entity.items():
            ids |= {r[0] for r in select_in(conn, sa.select(push_outbox.c.id).where(
                push_outbox.c.target == target, push_outbox.c.entity == entity), push_outbox.c.target_id, tids)}
    return ids


def _tombstoned(conn: Connection, person: Person) -> set[tuple[str, str, str]]:
    return {tuple(r) for r in select_in(conn, sa.select(source_tombstone.c.source, source_tombstone.c.entity,
                                                        source_tombstone.c.source_id),
                                        source_tombstone.c.source_id, {sid for _, _, sid in person.landing_keys})}


def _model_terms(person: Person) -> set[str]:
    """The spellings a matching model may key the person's values by (E.164, its digits, the national
    number, the e-mail address and its local part)."""
    import phonenumbers

    terms: set[str] = set()
    for phone in person.unique(person.phones):
        terms |= {phone, phone.lstrip("+")}
        try:
            terms.add(str(phonenumbers.parse(phone, None).national_number))
        except phonenumbers.NumberParseException:
            pass
    emails = person.unique(person.emails)
    return terms | emails | {e.partition("@")[0] for e in emails}


def _model_hits(conn: Connection, person: Person) -> list[tuple[int, dict]]:
    """Stored matching models whose term-frequency tables list one of the person's values, each with the
    parameters that no longer do (the engine keys its tables by value hash: ``MatchModel.forget``)."""
    from hub.dedupe import MatchModel

    terms = sorted(_model_terms(person))
    hits = []
    for mid, params in conn.execute(sa.select(match_model.c.id, match_model.c.params)):
        try:
            model = MatchModel.from_json(params or {})
        except (ValueError, KeyError, TypeError):  # a model of a format the engine no longer reads: retrained
            continue
        if model.forget(terms):
            hits.append((mid, model.to_json()))
    return hits


def _cursors_holding(conn: Connection, person: Person) -> list[tuple[str, str]]:
    ids = {sid for _, _, sid in person.landing_keys} | person.unique(person.phones)
    out = []
    for source, entity, cursor in conn.execute(sa.select(sync_state.c.source, sync_state.c.entity,
                                                         sync_state.c.cursor)):
        text = json.dumps(cursor, ensure_ascii=False) if cursor is not None else ""
        if any(f'"{i}"' in text for i in ids):
            out.append((source, entity))
    return out


def _next_erasure_id(conn: Connection) -> str:
    n = conn.execute(sa.select(sa.func.count()).select_from(erasure)).scalar_one()
    while True:
        n += 1
        eid = f"E{n:09d}"
        if not conn.execute(sa.select(erasure.c.erasure_id).where(erasure.c.erasure_id == eid)).first():
            return eid


def _scrub_reason(text: str | None) -> str | None:
    """The operator's reason is kept; a phone number or address typed into it is not."""
    if not text:
        return None
    text = _EMAIL_RE.sub("[e-mail]", text)
    return _PHONE_RE.sub(lambda m: "[number]" if len(re.sub(r"\D", "", m.group(0))) >= 7 else m.group(0), text)


def apply_erasure(store: Store, plan: ErasurePlan, reason: str | None) -> tuple[str, int]:
    """Erase the planned person in one transaction; returns (erasure id, erasure rows queued for the targets)."""
    p = plan.person
    ckeys, gids = p.customer_keys, p.golden_ids
    sup = suppression.load(store)
    if sup.salt is None:
        sup.salt = suppression.salt_for(store)
    now = _now()
    with store.begin() as conn:
        eid = _next_erasure_id(conn)

        def delete_in(table: sa.Table, column: Any, values: Iterable[Any], *where: Any) -> None:
            for part in chunked(sorted(set(values)), IN_LIST):
                conn.execute(table.delete().where(column.in_(part), *where))

        delete_in(landing, landing.c.id, p.landing_ids)
        delete_in(quarantine, quarantine.c.id, p.quarantine_ids)
        for entity, ks in p.staged_pairs().items():
            delete_in(staged_record, staged_record.c.record_key, ks, staged_record.c.entity == entity)
        for col in (match_pair.c.left_key, match_pair.c.right_key):
            delete_in(match_pair, col, ckeys)
        delete_in(match_block, match_block.c.record_key, ckeys)
        from hub.golden.matching import forget_records

        forget_records(conn, ckeys)  # the candidate set keeps fitting the remaining keys
        delete_in(match_record, match_record.c.record_key, ckeys)
        for col in (review_decision.c.left_key, review_decision.c.right_key):
            delete_in(review_decision, col, ckeys)
        delete_in(xref, xref.c.record_key, ckeys)
        delete_in(xref, xref.c.golden_id, gids)
        delete_in(customer_360, customer_360.c.golden_id, gids)
        delete_in(customer_360_link, customer_360_link.c.golden_id, gids)
        delete_in(customer_360_rank, customer_360_rank.c.golden_id, gids)
        delete_in(customer_360_summary, customer_360_summary.c.golden_id, gids)
        delete_in(customer_360_phone, customer_360_phone.c.golden_id, gids)
        delete_in(customer_base_snapshot, customer_base_snapshot.c.golden_id, gids)
        delete_in(golden_id_history, golden_id_history.c.golden_id, gids)
        for part in chunked(sorted(ckeys), IN_LIST):  # other ids' history naming the person's records
            conn.execute(golden_id_history.update().where(golden_id_history.c.record_key.in_(part))
                         .values(record_key=None, reason=f"record erased ({eid})"))
        for part in chunked(sorted(gids), IN_LIST):
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id.in_(part)).values(
                status=ERASED, merged_into=None, record=None, lineage=None, quality_score=None, record_hash=None,
                updated_at=now))
        if gids:
            conn.execute(golden_id_history.insert(), [
                {"golden_id": g, "event": ERASED, "related_golden_id": None, "record_key": None,
                 "reason": f"erasure {eid}", "at": now} for g in sorted(gids)])
        delete_in(source_tombstone, source_tombstone.c.source_id, {sid for _, _, sid in p.landing_keys})
        for mid, params in _model_hits(conn, p):
            conn.execute(match_model.update().where(match_model.c.id == mid).values(params=params))
        for source, entity in _cursors_holding(conn, p):
            conn.execute(sync_state.update().where(sync_state.c.source == source, sync_state.c.entity == entity)
                         .values(cursor=None, updated_at=now))
        # the outbox and the push log: earlier rows anonymised, live ones superseded
        old = _outbox_rows(conn, p)
        for part in chunked(sorted(old), IN_LIST):
            # a row being sent ('sending') is left to its pusher: its result is recorded, then finished here
            conn.execute(push_outbox.update().where(push_outbox.c.id.in_(part), push_outbox.c.status.in_(
                ("pending", "error"))).values(status="superseded", updated_at=now))
            conn.execute(push_outbox.update().where(push_outbox.c.id.in_(part)).values(
                target_id=ERASED, golden_id=eid, payload={ERASED: eid}, payload_hash=payload_hash({ERASED: eid}),
                last_reason=None))
            conn.execute(push_result.update().where(push_result.c.outbox_id.in_(part)).values(
                target_id=ERASED, reason=None, changes=None))
        rows = []
        for target, by_entity in sorted(p.targets.items()):
            for entity, tids in sorted(by_entity.items()):
                delete_in(push_state, push_state.c.target_id, tids, push_state.c.target == target,
                          push_state.c.entity == entity)
                payload = {"action": "erase", "erasure_id": eid}
                rows += [{"target": target, "entity": entity, "target_id": tid, "golden_id": eid,
                          "payload": payload, "payload_hash": payload_hash(payload), "status": "pending",
                          "attempts": 0, "created_at": now, "updated_at": now, "cause": "erase"}
                         for tid in sorted(tids)]
        if rows:
            conn.execute(push_outbox.insert(), rows)
        listed = [("phone", v) for v in p.unique(p.phones)] + [("email", v) for v in p.unique(p.emails)]
        listed += [("national_id", v) for v in p.unique(p.national_ids)]
        listed += [("landing", suppression.landing_key(*k)) for k in p.landing_keys]
        listed += [("record", suppression.record_value(e, k)) for e, ks in p.staged_pairs().items() for k in ks]
        added = suppression.add(conn, sup, listed, eid)
        conn.execute(erasure.insert().values(
            erasure_id=eid, status="pushing" if rows else "done", selector=plan.selector.kind,
            reason=_scrub_reason(reason), requested_at=now, finished_at=None if rows else now,
            counts={"hub": plan.hub, "systems": plan.systems, "suppressed": added}))
    return eid, len(rows)


def erase(store: Store, selector: Selector, *, targets: list[Any], derived: Mapping[str, Any], region: str = "CN",
          reason: str | None = None, dry_run: bool = False) -> ErasureResult:
    """Find, plan and (unless ``dry_run``) erase the person; raises ``ErasureInputError`` on bad input."""
    person = find_person(store, selector, targets=targets, derived=derived, region=region)
    plan = plan_erasure(store, selector, person)
    if dry_run:
        return ErasureResult(None, plan, True)
    eid, queued = apply_erasure(store, plan, reason)
    from hub.lookup import remove_from_lookup_index

    remove_from_lookup_index(store, person.golden_ids)  # caller lookups stop finding them now
    return ErasureResult(eid, plan, False, queued)


def finish_erasures(store: Store) -> int:
    """After a push: confirmed (or refused) erasure rows lose their target ids; an erasure with nothing left
    to send is done. Returns the erasures finished now."""
    now = _now()
    finished = 0
    with store.begin() as conn:
        open_ids = list(conn.execute(sa.select(erasure.c.erasure_id).where(erasure.c.status == "pushing"))
                        .scalars())
        for eid in open_ids:
            rows = conn.execute(sa.select(push_outbox.c.id, push_outbox.c.target, push_outbox.c.entity,
                                          push_outbox.c.target_id, push_outbox.c.status)
                                .where(push_outbox.c.golden_id == eid)).all()
            closed = [r for r in rows if r.status in ("ok", "rejected", "superseded") and r.target_id != ERASED]
            for r in closed:
                conn.execute(push_state.delete().where(push_state.c.target == r.target,
                                                       push_state.c.entity == r.entity,
                                                       push_state.c.target_id == r.target_id))
            for part in chunked([r.id for r in closed], IN_LIST):
                conn.execute(push_outbox.update().where(push_outbox.c.id.in_(part)).values(
                    target_id=ERASED, last_reason=None))
                conn.execute(push_result.update().where(push_result.c.outbox_id.in_(part)).values(
                    target_id=ERASED, reason=None, changes=None))
            if all(r.status in ("ok", "rejected", "superseded") for r in rows):
                conn.execute(erasure.update().where(erasure.c.erasure_id == eid).values(status="done",
                                                                                       finished_at=now))
                finished += 1
    return finished


def erasure_status(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(erasure).order_by(erasure.c.erasure_id))]


# ------------------------------------------------------------------------------------------------ wiring


def context_from_config(config: Any) -> dict[str, Any]:
    """What ``erase`` needs from hub.yaml: the push targets, each source's mapping (which staged records a
    landing row produces), the phone region for the selector."""
    from hub.push_plan import target_configs
    from hub.staging import derived_keys, resolve_sources

    sources = config.enabled_sources
    plan_cfg = getattr(config, "push_plan_config", None)
    if callable(plan_cfg):
        push_cfg = plan_cfg()
    else:  # the push section as a plain mapping: targets default to every source that takes pushes
        push = dict(config.push or {})
        push["targets"] = [t for t in push.get("targets", list(sources)) if t in sources and sources[t].push]
        push_cfg = push
    resolved = resolve_sources(config.sources, None, list(sources))
    std = config.standardise
    region = (std.get("phone_region") if isinstance(std, Mapping) else getattr(std, "phone_region", None))
    region = region or next((s.phone_region for s in sources.values() if getattr(s, "phone_region", None)), "CN")
    return {"targets": target_configs(push_cfg),
            "derived": {name: derived_keys(src.mapper) for name, src in resolved.items()},
            "region": region}
