"""Survivorship: one golden customer from a cluster of standardised source records (pure, data in/out).

Every golden value carries a ``FieldLineage``: the record, source system and rule that won it. Rule strings
(documented in README.md): ``<strategy>`` when the main strategy decided, ``<strategy>/<tie_breaker>`` when a
tie-breaker decided, ``<strategy>/record_key`` for the final deterministic tie-break, ``single_value`` when
every candidate agreed, ``follow:<field>`` when the value came with the record that won another field.
Consent is merged by the hub's one consent rule (``hub.consent``: per channel the latest explicit statement
wins), its lineage rule is ``latest_statement``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, get_args

from pydantic import TypeAdapter

from hub import consent as consent_rule
from hub.golden.config import MULTI_FIELDS, SINGLE_FIELDS, FieldRule, SurvivorshipConfig
from hub.models import Address, Consent, CustomerRecord, GoldenCustomer

_ADDRESS_KEYS = tuple(Address.model_fields)
_ADDRESS_KINDS = frozenset(get_args(Address.model_fields["kind"].annotation))


@dataclass(frozen=True)
class Member:
    """One staged customer record of a cluster."""

    record_key: str
    source: str
    record: CustomerRecord
    staged_at: datetime | None = None
    quality_flags: tuple[str, ...] = ()

    @property
    def updated_at(self) -> datetime | None:
        ts = self.record.source_updated_at or self.staged_at
        if ts is not None and ts.tzinfo is not None:
            ts = ts.astimezone(UTC).replace(tzinfo=None)  # compare naive UTC across sources
        return ts


_UNSET = object()

# Members share few distinct timestamps and birth dates (a source stamps a batch with one time; people share
# birthdays): what is parsed or encoded from them is cached per distinct value, up to _MEMO_SIZE values each.
# The keys are the staged strings (two aware datetimes of one instant are equal but encode differently) and
# naive datetimes.
_MEMO_SIZE = 1 << 16


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _recent(ts: datetime) -> tuple[int, float]:
    """The most_recent rank key of a naive UTC time (later first)."""
    return (0, -ts.replace(tzinfo=UTC).timestamp())


class MemberFacts:
    """What the rules read of one member, derived once: its values per field, rank keys, validation inputs."""

    __slots__ = ("key", "source", "updated_at", "recent", "updated_json", "values", "flags", "national_id_type",
                 "consent", "plain")

    def __init__(self, key: str, source: str, values: dict[str, list[Any]], source_updated_at: datetime | None,
                 staged_at: datetime | None, flags: Sequence[str], national_id_type: str | None,
                 consent: Any, updated_json: str | None | object = _UNSET) -> None:
        self.key, self.source, self.values = key, source, values
        # every value this member can give a golden record is a str or None (addresses, dates and consent are
        # typed): its golden JSON then holds no float but the quality score (see Survived.plain)
        plain = True
        for f in _PLAIN_FIELDS:  # a loop, not all() over a generator: this runs for every member
            for v in values[f]:
                if v is not None and type(v) is not str:
                    plain = False
        self.plain = plain
        ts = source_updated_at or staged_at
        if ts is not None and ts.tzinfo is not None:
            ts = ts.astimezone(UTC).replace(tzinfo=None)  # compare naive UTC across sources
        self.updated_at = ts
        self.recent = (1, 0.0) if ts is None else _recent(ts)
        self.updated_json = _dt_json(source_updated_at) if updated_json is _UNSET else updated_json
        self.flags, self.national_id_type, self.consent = tuple(flags or ()), national_id_type, consent

    def statements(self) -> list[consent_rule.Statement]:
        return consent_rule.statements(self.key, self.source, self.consent, self.updated_at)


_PLAIN_FIELDS = ("full_name", "given_name", "family_name", "name_key", "company", "gender", "national_id", "emails",
                 "phones")


def _facts_of_member(m: Member) -> MemberFacts:
    r = m.record
    values: dict[str, list[Any]] = {f: [get(r)] for f, get in _SINGLE_GETTERS.items()}
    values["emails"] = list(r.emails)
    values["phones"] = [p.e164 for p in r.phones]
    values["addresses"] = list(r.addresses)
    return MemberFacts(m.record_key, m.source, values, r.source_updated_at, m.staged_at, m.quality_flags,
                  r.national_id_type, r.consent)


def staged_member(record_key: str, source: str, record: dict[str, Any], quality_flags: Sequence[str] | None,
                  staged_at: datetime | None) -> MemberFacts:
    """A cluster member straight from a staged customer record's JSON (what ``CustomerRecord`` would read of
    it, without validating the whole record: values that are compared or written are parsed as the model
    parses them)."""
    name = record.get("name")
    full = record.get("full_name") or (name.get("display") if name else None)
    bd = record.get("birth_date")
    values: dict[str, list[Any]] = {
        "full_name": [full],
        "given_name": [record.get("given_name")],
        "family_name": [record.get("family_name")],
        "name_key": [name.get("name_key") if name else None],
        "company": [record.get("company")],
        "birth_date": [None if bd is None else _birth_date(bd) if type(bd) is str
                       else _DATE.validate_python(bd)],
        "gender": [record.get("gender")],
        "national_id": [record.get("national_id")],
        "emails": list(record.get("emails") or ()),
        "phones": [p["e164"] for p in record.get("phones") or ()],
        "addresses": [_staged_address(a) for a in record.get("addresses") or ()],
    }
    consent = record.get("consent")
    if consent and any(v is not None and not isinstance(v, bool) for v in consent.values()):
        consent = Consent.model_validate(consent).model_dump()  # lax values ("yes", 1) as the model reads them
    su = record.get("source_updated_at")
    if type(su) is str:
        ts, ts_json = _parsed_time(su)
        return MemberFacts(record_key, source, values, ts, staged_at, quality_flags or (),
                           record.get("national_id_type"), consent, ts_json)
    return MemberFacts(record_key, source, values, None if su is None else _DATETIME.validate_python(su), staged_at,
                  quality_flags or (), record.get("national_id_type"), consent)


class StagedAddress:
    """An address of a staged record as ``Address`` reads it, without validating it again: made only of a dict
    of exactly ``Address.model_dump(mode="json")``'s shape (staging writes them so), whose JSON it then is
    (``as_json``). Validating each member's addresses and dumping the winners again was ~10 % of a first
    build's survivorship (100k people)."""

    __slots__ = (*_ADDRESS_KEYS, "as_json")

    def __init__(self, staged: dict[str, Any]) -> None:
        for name, value in staged.items():  # the keys are _ADDRESS_KEYS (``_staged_address`` checked them)
            setattr(self, name, value)
        self.as_json = staged


_ADDRESS_TYPES = (Address, StagedAddress)


def _staged_address(staged: Any) -> Address | StagedAddress:
    """A staged address: a ``StagedAddress`` when it is in the model's own JSON shape (its fields in order, each
    a string or null, a known kind), else as the model validates it."""
    if type(staged) is dict and tuple(staged) == _ADDRESS_KEYS and staged["kind"] in _ADDRESS_KINDS:
        for v in staged.values():
            if v is not None and type(v) is not str:
                return Address.model_validate(staged)
        return StagedAddress(staged)
    return Address.model_validate(staged)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _birth_date(text: str) -> date:
    """A staged birth date as the model reads it."""
    return _DATE.validate_python(text)


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _parsed_time(text: str) -> tuple[datetime | None, str | None]:
    """A staged timestamp as the model reads it, and that time as the lineage writes it."""
    ts = _DATETIME.validate_python(text)
    return ts, _dt_json(ts)


# a candidate value of one field: (value, norm, member, position inside the member's list); two candidates with
# the same norm are the same golden value. The norm of an empty value is None; a non-empty one's is _LAZY until
# _rank compares candidates (most fields of most clusters have a single candidate, whose norm nobody reads).
_Cand = tuple[Any, Any, MemberFacts, int]
_LAZY = object()


# -- value access, normalisation, validation --------------------------------------------------------------------


def _name_key(r: CustomerRecord) -> str | None:
    return r.name.name_key if r.name else None


_SINGLE_GETTERS: dict[str, Callable[[CustomerRecord], Any]] = {
    "full_name": lambda r: r.full_name or (r.name.display if r.name else None),
    "given_name": lambda r: r.given_name,
    "family_name": lambda r: r.family_name,
    "name_key": _name_key,
    "company": lambda r: r.company,
    "birth_date": lambda r: r.birth_date,
    "gender": lambda r: r.gender,
    "national_id": lambda r: r.national_id,
}


def _is_empty(v: Any) -> bool:
    if type(v) is str:  # the common case first: called for every candidate value of every field
        return not v.strip()
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, _ADDRESS_TYPES):
        return not (v.street or v.district or v.city or v.region or v.postal_code or v.country)
    return False


def _addr_fill(a: Address | StagedAddress) -> int:
    return sum(1 for v in (a.street, a.district, a.city, a.region, a.postal_code, a.country) if v)


def _address_norm(a: Address | StagedAddress) -> Any:
    if a.key:
        return a.key
    return tuple((v or "").strip().casefold() for v in (a.street, a.district, a.city, a.region, a.postal_code,
                                                         a.country))


def _norm(fieldname: str, v: Any) -> Any:
    if isinstance(v, str):
        # names/companies that differ only by case or spacing are the same value
        return " ".join(v.split()).casefold()
    if isinstance(v, _ADDRESS_TYPES):
        return _address_norm(v)
    return v


# Staged values already went through hub.standardise (invalid phones/e-mails are nulled and flagged there),
# so validation here is a cheap format re-check plus the record's quality flags, not a second standardiser.
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
_E164_RE = re.compile(r"\+[1-9]\d{6,14}")


def _valid_email(v: str) -> bool:
    return _EMAIL_RE.fullmatch(v) is not None


def _valid_phone(v: str) -> bool:
    return _E164_RE.fullmatch(v) is not None


def is_validated(fieldname: str, value: Any, member: Member | None = None) -> bool:
    """Did ``value`` pass validation? (the basis of ``validated_only`` and the quality score)."""
    if member is None:
        return _validated(fieldname, value, None, False)
    return _validated(fieldname, value, member.record.national_id_type, True)


# Validation reads the value itself, not the record's quality flags: staging flags a value it could not validate
# as "<field>:<code>" (phones:phone.invalid) and leaves that value out (or sets it aside: unverified_phones,
# unverified_postal_code), so a flag never names a value a member still gives. A flag says nothing about the
# record's other values of that field either: its other phones were validated on their own.
def _validated(fieldname: str, value: Any, national_id_type: str | None, of_member: bool) -> bool:
    if (not value.strip()) if type(value) is str else _is_empty(value):  # the common case without a call
        return False
    if fieldname in ("emails", "primary_email"):
        return _valid_email(value)
    if fieldname in ("phones", "primary_phone"):
        return _valid_phone(value)
    if fieldname == "national_id":
        # the standardiser sets the id type only after the checksum/format check passed
        # ("other": an identifier of an undeclared kind, kept unchecked)
        return not of_member or national_id_type not in (None, "other")
    if fieldname == "birth_date":
        d = value if isinstance(value, date) else date.fromisoformat(str(value))
        return date(1900, 1, 1) <= d <= datetime.now(UTC).date()
    if fieldname in ("addresses", "address"):
        a = value if isinstance(value, _ADDRESS_TYPES) else Address.model_validate(value)
        return bool(a.country and (a.city or a.postal_code))
    if fieldname == "gender":
        return value in ("female", "male", "other")
    if isinstance(value, str):
        return any(ch.isalpha() for ch in value)  # names/company: at least one letter in any script
    return True


def _valid_of(fieldname: str, value: Any, mf: MemberFacts) -> bool:
    return _validated(fieldname, value, mf.national_id_type, True)


def _candidates(plan: _FieldPlan, facts: Sequence[MemberFacts]) -> list[_Cand]:
    out: list[_Cand] = []
    name, ignore_empty, validated_only = plan.name, plan.ignore_empty, plan.validated_only
    for mf in facts:
        for pos, v in enumerate(mf.values[name]):
            # _is_empty inlined for its common cases: this runs for every value of every member
            empty = (not v.strip()) if type(v) is str else (v is None or _is_empty(v))
            if empty and ignore_empty:
                continue
            if validated_only and not _validated(name, v, mf.national_id_type, True):
                continue
            out.append((v, None if empty else _LAZY, mf, pos))
    return out


# -- ranking ----------------------------------------------------------------------------------------------------


def _completeness(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, _ADDRESS_TYPES):
        return float(_addr_fill(v)) + (len(v.street or "") / 1000.0)
    if isinstance(v, str):
        return float(len(v.strip()))
    return 1.0


class _FieldPlan:
    """One field's rule, compiled once per build: strategy chain, rule labels, source ranks."""

    __slots__ = ("name", "rule", "chain", "labels", "key_label", "ignore_empty", "validated_only", "weighted",
                 "follow", "follow_label", "max_values", "ranks", "votes", "cfg")

    def __init__(self, name: str, rule: FieldRule, cfg: SurvivorshipConfig) -> None:
        self.name, self.rule, self.cfg = name, rule, cfg
        self.chain = [rule.strategy] + [t for t in rule.tie_breakers if t != rule.strategy]
        for s in self.chain:
            if s not in _STRATEGIES:
                raise ValueError(f"unknown survivorship strategy {s!r}")
        self.labels = [rule.strategy if i == 0 else f"{rule.strategy}/{s}" for i, s in enumerate(self.chain)]
        self.key_label = f"{rule.strategy}/record_key"
        self.ignore_empty, self.validated_only = rule.ignore_empty, rule.validated_only
        self.weighted, self.follow, self.max_values = rule.weighted, rule.follow, rule.max_values
        self.follow_label = f"follow:{rule.follow}"
        self.votes = "most_frequent" in self.chain
        self.ranks: dict[str, tuple[int]] = {}

    def rank_of(self, source: str) -> tuple[int]:
        r = self.ranks.get(source)
        if r is None:
            r = self.ranks[source] = (self.cfg.priority_rank(self.rule, source),)
        return r


_STRATEGIES = ("source_priority", "most_recent", "most_complete", "most_frequent")


def _rank(plan: _FieldPlan, cands: list[_Cand]) -> list[tuple[tuple, _Cand]]:
    """Candidates sorted best first, each with its full sort key (strategy, tie-breakers, record key)."""
    if len(cands) <= 1:  # most fields of most clusters: nothing to rank
        return [((), c) for c in cands]
    name = plan.name
    cands = [c if c[1] is None else (c[0], _norm(name, c[0]), c[2], c[3]) for c in cands]
    votes: dict[Any, float] = {}
    if plan.votes:
        seen: set[tuple[Any, str]] = set()
        cfg = plan.cfg
        for c in cands:
            vk = (c[1], c[2].key)
            if vk in seen:  # one vote per record
                continue
            seen.add(vk)
            votes[c[1]] = votes.get(c[1], 0.0) + (cfg.trust(c[2].source) if plan.weighted else 1.0)
    keyed = []
    chain = plan.chain
    for c in cands:
        mf = c[2]
        parts: list[tuple] = []
        for s in chain:
            if s == "source_priority":
                r = plan.ranks.get(mf.source)
                parts.append(r if r is not None else plan.rank_of(mf.source))
            elif s == "most_recent":
                parts.append(mf.recent)
            elif s == "most_complete":
                parts.append((-_completeness(c[0]),))
            else:
                parts.append((-round(votes.get(c[1], 0.0), 9),))
        parts.append((mf.key, c[3]))
        keyed.append((tuple(parts), c))
    keyed.sort(key=_first)
    return keyed


def _first(kc: tuple[tuple, _Cand]) -> tuple:
    return kc[0]


def _rule_label(plan: _FieldPlan, ranked: list[tuple[tuple, _Cand]], start: int = 0) -> str:
    """Which step of the rule separated the winner (``ranked[start]``) from the best different value after it."""
    winner_key, winner = ranked[start]
    for i in range(start + 1, len(ranked)):
        key, c = ranked[i]
        if c[1] != winner[1]:
            for k, label in enumerate(plan.labels):
                if key[k] != winner_key[k]:
                    return label
            # same rank on every step: the order inside one record, else the record key decided
            return "source_order" if c[2].key == winner[2].key else plan.key_label
    return "single_value"


def _pick_single(plan: _FieldPlan, plans: dict[str, _FieldPlan], facts: Sequence[MemberFacts],
                 picked: dict[str, tuple[Any, _Cand | None, str]]) -> tuple[Any, _Cand | None, str]:
    """(value, winning candidate, rule label) of one single-valued field."""
    name = plan.name
    if name in picked:
        return picked[name]
    if plan.follow:
        lead = _pick_single(plans[plan.follow], plans, facts, picked)
        if lead[1] is not None:
            mf = lead[1][2]
            v = mf.values[name][0]
            ok = not (plan.ignore_empty and _is_empty(v)) and not (
                plan.validated_only and not _valid_of(name, v, mf)
            )
            if ok:
                picked[name] = (v, (v, _norm(name, v), mf, 0), f"follow:{plan.follow}")
                return picked[name]
        # the leading record has nothing usable here: rank this field on its own (its strategy, no follow)
    cands = _candidates(plan, facts)
    if len(cands) == 1:  # one candidate: it wins, nothing separated it from another value
        result: tuple[Any, _Cand | None, str] = (cands[0][0], cands[0], "single_value")
        picked[name] = result
        return result
    ranked = _rank(plan, cands)
    if not ranked:
        result = (None, None, plan.rule.strategy)
    else:
        winner = ranked[0][1]
        result = (winner[0], winner, _rule_label(plan, ranked))
    picked[name] = result
    return result


def _pick_alone(plan: _FieldPlan, plans: dict[str, _FieldPlan], mf: MemberFacts,
                picked: dict[str, tuple[Any, bool, str]]) -> tuple[Any, bool, str]:
    """``_pick_single`` for a cluster of one member whose single fields hold one value each: (value, whether
    a candidate won, rule label). The value passes the field's filters or nothing wins; a follow field takes it
    when the field it follows has a winner (the same member)."""
    name = plan.name
    got = picked.get(name)
    if got is not None:
        return got
    v = mf.values[name][0]
    ok = not (plan.ignore_empty and _is_empty(v)) and not (plan.validated_only and not _valid_of(name, v, mf))
    if ok and plan.follow and _pick_alone(plans[plan.follow], plans, mf, picked)[1]:
        got = (v, True, plan.follow_label)
    elif ok:
        got = (v, True, "single_value")
    else:
        got = (None, False, plan.rule.strategy)
    picked[name] = got
    return got


def _pick_multi_alone(plan: _FieldPlan, mf: MemberFacts) -> list[tuple[_Cand, str]]:
    """``_pick_multi`` for a cluster of one member: its one value wins if it is not empty and passes the
    field's validation; several values are ranked as ``_pick_multi`` ranks them."""
    vals = mf.values[plan.name]
    if len(vals) > 1:
        return _pick_multi(plan, (mf,))
    if not vals:
        return []
    v = vals[0]
    # an empty value is never kept (with ignore_empty: false it is a candidate, but not a value to keep)
    if _is_empty(v) or (plan.validated_only and not _valid_of(plan.name, v, mf)):
        return []
    return [((v, _LAZY, mf, 0), "single_value")]


_ITEM_FIELDS: dict[tuple[str, int], str] = {}


def _item_field(name: str, i: int) -> str:
    """The lineage key of value ``i`` of a multi-valued field (``emails[0]``), built once per field and index."""
    got = _ITEM_FIELDS.get((name, i))
    if got is None:
        got = _ITEM_FIELDS[(name, i)] = f"{name}[{i}]"
    return got


def _pick_multi(plan: _FieldPlan, facts: Sequence[MemberFacts]) -> list[tuple[_Cand, str]]:
    cands = _candidates(plan, facts)
    if len(cands) <= 1:  # what the loop below gives for one candidate (max_values is never below 1)
        return [(c, "single_value") for c in cands if c[1] is not None]
    ranked = _rank(plan, cands)
    out: list[tuple[_Cand, str]] = []
    seen: set[Any] = set()
    for i, (_, c) in enumerate(ranked):
        if c[1] in seen or c[1] is None:
            continue
        seen.add(c[1])
        # the label says why this value outranks the next distinct one (primary: why it is primary)
        out.append((c, _rule_label(plan, ranked, i)))
        if plan.max_values and len(out) >= plan.max_values:
            break
    return out


# -- quality ----------------------------------------------------------------------------------------------------

_QUALITY_FIELDS = ("full_name", "primary_email", "primary_phone", "birth_date", "address", "gender", "national_id")


class _QualityWeights:
    """``cfg.quality`` read once per build (the score is worked out for every golden record)."""

    __slots__ = ("completeness", "validated", "sources", "total", "full_sources")

    def __init__(self, cfg: SurvivorshipConfig) -> None:
        w = cfg.quality.weights
        self.completeness, self.validated = w.get("completeness", 0), w.get("validated", 0)
        self.sources = w.get("sources", 0)
        self.total = sum(w.values()) or 1.0
        self.full_sources = cfg.quality.full_sources


def _quality(values: dict[str, Any], n_sources: int, validated: dict[str, bool], w: _QualityWeights) -> float:
    """Completeness of the key fields, share of them validated, and number of source systems, in [0, 1]."""
    filled = 0
    valid = 0
    for f in _QUALITY_FIELDS:
        v = values[f]
        if not ((not v.strip()) if type(v) is str else _is_empty(v)):
            filled += 1
            if validated.get(f):
                valid += 1
    completeness = filled / len(_QUALITY_FIELDS)
    valid_share = valid / filled if filled else 0.0
    sources = min(1.0, n_sources / w.full_sources)
    score = (w.completeness * completeness + w.validated * valid_share + w.sources * sources) / w.total
    return round(score, 4)


# -- the golden record ------------------------------------------------------------------------------------------

_DATETIME = TypeAdapter(datetime | None)
_DATE = TypeAdapter(date)


def _dt_json(ts: datetime | None) -> str | None:
    """A timestamp as the models write it to JSON (pydantic's format: what FieldLineage.model_dump gives)."""
    return None if ts is None else _DATETIME.dump_python(ts, mode="json")


def _json(v: Any) -> Any:
    if type(v) is StagedAddress:
        return dict(v.as_json)
    if isinstance(v, Address):
        return v.model_dump(mode="json")
    if isinstance(v, date):
        return v.isoformat()
    return v


@dataclass(frozen=True)
class Survived:
    """One golden customer as stored: ``record`` (GoldenCustomer's JSON without lineage), ``lineage`` (field ->
    FieldLineage JSON) and the quality score (also inside ``record``)."""

    record: dict[str, Any]
    lineage: dict[str, dict[str, Any]]
    quality_score: float
    # no float in record or lineage but the quality score (rounded to 4 places, so it prints the same in every
    # JSON encoder): build_golden may then encode it with orjson, which writes other floats differently
    plain: bool = False

    def golden(self) -> GoldenCustomer:
        return GoldenCustomer.model_validate({**self.record, "lineage": self.lineage})


class Survivor:
    """The survivorship rules compiled once; ``survive`` applies them to one cluster at a time."""

    def __init__(self, cfg: SurvivorshipConfig) -> None:
        self.cfg = cfg
        self.plans = {f: _FieldPlan(f, cfg.rule(f), cfg) for f in (*SINGLE_FIELDS, *MULTI_FIELDS)}
        self._weights = _QualityWeights(cfg)
        self._decided: tuple[datetime, str | None] | None = None

    def _decided_json(self, decided_at: datetime) -> str | None:
        if self._decided is None or self._decided[0] is not decided_at:
            self._decided = (decided_at, _dt_json(decided_at))
        return self._decided[1]

    def survive(self, golden_id: str, members: Iterable[Member | MemberFacts], decided_at: datetime | None = None) -> Survived:
        """Apply the rules to one cluster. Deterministic for the same members and rules."""
        decided_at = decided_at or datetime.now(UTC).replace(tzinfo=None)
        survived = self.survive_undated(golden_id, members)
        self.stamp_decided(survived.lineage, decided_at)
        return survived

    def stamp_decided(self, lineage: dict[str, dict[str, Any]], decided_at: datetime) -> None:
        """Add the decision time to every lineage entry of ``survive_undated``, as the entries' last key."""
        decided = self._decided_json(decided_at)
        for entry in lineage.values():
            entry["decided_at"] = decided

    def survive_undated(self, golden_id: str, members: Iterable[Member | MemberFacts]) -> Survived:
        """``survive`` with lineage entries that have no ``decided_at`` yet (add it with ``Survivor.stamp_decided``):
        what the golden hash covers, so build_golden hashes them as they are instead of copying every entry
        without its decision time."""
        facts = sorted((m if isinstance(m, MemberFacts) else _facts_of_member(m) for m in members), key=_facts_key)
        if not facts:
            raise ValueError("a golden record needs at least one member")
        plans = self.plans

        # lineage entries are written inline, {"record_key", "source", "rule", "source_updated_at"} in this order
        # (not a helper: 750k calls in a first build of 100k records)
        lineage: dict[str, dict[str, Any]] = {}
        values: dict[str, Any] = {}
        validated: dict[str, bool] = {}
        # a one-record cluster (most of them) takes the short path of every rule below (its single fields
        # hold one value each, as every staged record's do)
        alone = facts[0] if len(facts) == 1 and all(len(facts[0].values[f]) == 1 for f in SINGLE_FIELDS) else None
        if alone is not None:
            # a one-record cluster (most of them): each single field's value is that record's, if it passes
            # the field's filters — what _pick_single gives for it, without candidates and ranking
            one: dict[str, tuple[Any, bool, str]] = {}
            for f in SINGLE_FIELDS:
                value, won, rule = _pick_alone(plans[f], plans, alone, one)
                values[f] = value
                if won and not ((not value.strip()) if type(value) is str else _is_empty(value)):
                    lineage[f] = {"record_key": alone.key, "source": alone.source, "rule": rule,
                                  "source_updated_at": alone.updated_json}
                    if f in _QUALITY_FIELDS:
                        # a validated_only field's winner passed that very check to win
                        validated[f] = True if plans[f].validated_only else _valid_of(f, value, alone)
        else:
            picked: dict[str, tuple[Any, _Cand | None, str]] = {}
            for f in SINGLE_FIELDS:
                value, winner, rule = _pick_single(plans[f], plans, facts, picked)
                values[f] = value
                if winner is not None and not ((not value.strip()) if type(value) is str else _is_empty(value)):
                    mf = winner[2]
                    lineage[f] = {"record_key": mf.key, "source": mf.source, "rule": rule,
                                  "source_updated_at": mf.updated_json}
                    if f in _QUALITY_FIELDS:
                        validated[f] = True if plans[f].validated_only else _valid_of(f, value, winner[2])

        if alone is not None:
            multi = {f: _pick_multi_alone(plans[f], alone) for f in MULTI_FIELDS}
        else:
            multi = {f: _pick_multi(plans[f], facts) for f in MULTI_FIELDS}
        for f, items in multi.items():
            for i, (c, rule) in enumerate(items):
                mf = c[2]
                lineage[_item_field(f, i)] = {"record_key": mf.key, "source": mf.source, "rule": rule,
                                              "source_updated_at": mf.updated_json}
        for f, pf in _PRIMARY.items():
            if multi[f]:
                c, rule = multi[f][0]
                mf = c[2]
                lineage[pf] = {"record_key": mf.key, "source": mf.source, "rule": rule,
                               "source_updated_at": mf.updated_json}
                validated[pf] = True if plans[f].validated_only else _valid_of(f, c[0], c[2])
                values[pf] = c[0]
            else:
                values[pf] = None

        if alone is not None:
            # one record states at most once per channel: each of its statements wins its channel
            winners = {st.channel: st for st in alone.statements()}
        else:
            winners = consent_rule.latest(st for mf in facts for st in mf.statements())
        at_json: dict[datetime | None, str | None] = {}  # a member's statements share one time: encode it once
        for channel, st in winners.items():
            if st.at not in at_json:
                at_json[st.at] = _dt_json(st.at)
            lineage[f"consent.{channel}"] = {"record_key": st.record_key, "source": st.source,
                                             "rule": consent_rule.RULE, "source_updated_at": at_json[st.at]}

        sources = sorted({mf.source for mf in facts})
        score = _quality(values, len(sources), validated, self._weights)
        addresses = [_json(c[0]) for c, _ in multi["addresses"]]
        record = {
            "golden_id": golden_id,
            "full_name": values["full_name"],
            "given_name": values["given_name"],
            "family_name": values["family_name"],
            "name_key": values["name_key"],
            "company": values["company"],
            "primary_email": values["primary_email"],
            "emails": [c[0] for c, _ in multi["emails"]],
            "primary_phone": values["primary_phone"],
            "phones": [c[0] for c, _ in multi["phones"]],
            "birth_date": _json(values["birth_date"]),
            "gender": values["gender"],
            "national_id": values["national_id"],
            "address": addresses[0] if addresses else None,
            "addresses": addresses,
            "consent": {c: (winners[c].value if c in winners else None) for c in consent_rule.CHANNELS},
            "sources": sources,
            "record_keys": [mf.key for mf in facts],
            "quality_score": score,
        }
        return Survived(record, lineage, score, all(mf.plain for mf in facts))


_PRIMARY = {"emails": "primary_email", "phones": "primary_phone", "addresses": "address"}


def _facts_key(m: MemberFacts) -> str:
    return m.key


def survive(
    golden_id: str,
    members: Iterable[Member],
    cfg: SurvivorshipConfig,
    decided_at: datetime | None = None,
) -> GoldenCustomer:
    """Apply the survivorship rules to one cluster. Deterministic for the same members and rules."""
    return Survivor(cfg).survive(golden_id, members, decided_at).golden()
