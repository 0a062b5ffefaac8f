"""Survivorship: one golden customer from a cluster of standardised source records (pure, data in/out).

Every golden value carries a ``FieldLineage``: the record, source system and rule that won it. Rule strings
(documented in README.md): ``<strategy>`` when the main strategy decided, ``<strategy>/<tie_breaker>`` when a
tie-breaker decided, ``<strategy>/record_key`` for the final deterministic tie-break, ``single_value`` when
every candidate agreed, ``follow:<field>`` when the value came with the record that won another field.
Consent is merged by the hub's one consent rule (``hub.consent``: per channel the latest explicit statement
wins), its lineage rule is ``latest_statement``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hub import consent as consent_rule
from hub.golden.config import MULTI_FIELDS, SINGLE_FIELDS, FieldRule, SurvivorshipConfig
from hub.models import Address, CustomerRecord, FieldLineage, GoldenCustomer


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


@dataclass(frozen=True)
class _Cand:
    value: Any
    norm: Any  # equality key: two candidates with the same norm are the same golden value
    member: Member
    pos: int  # position inside the source record's list (multi-valued fields keep source order)


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
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    if isinstance(v, Address):
        return not (v.street or v.district or v.city or v.region or v.postal_code or v.country)
    return False


def _addr_fill(a: Address) -> int:
    return sum(1 for v in (a.street, a.district, a.city, a.region, a.postal_code, a.country) if v)


def _address_norm(a: Address) -> Any:
    if a.key:
        return a.key
    return tuple((v or "").strip().casefold() for v in (a.street, a.district, a.city, a.region, a.postal_code,
                                                         a.country))


def _norm(fieldname: str, v: Any) -> Any:
    if isinstance(v, str):
        # names/companies that differ only by case or spacing are the same value
        return " ".join(v.split()).casefold()
    if isinstance(v, Address):
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
    if _is_empty(value):
        return False
    flags = member.quality_flags if member else ()
    base = fieldname.split(".")[0].rstrip("s")  # emails -> email, phones -> phone
    if any(f.startswith(f"{base}.invalid") for f in flags):
        return False
    if fieldname in ("emails", "primary_email"):
        return _valid_email(value)
    if fieldname in ("phones", "primary_phone"):
        return _valid_phone(value)
    if fieldname == "national_id":
        # the standardiser sets the id type only after the checksum/format check passed
        # ("other": an identifier of an undeclared kind, kept unchecked)
        return member is None or member.record.national_id_type not in (None, "other")
    if fieldname == "birth_date":
        d = value if isinstance(value, date) else date.fromisoformat(str(value))
        return date(1900, 1, 1) <= d <= datetime.now(UTC).date()
    if fieldname in ("addresses", "address"):
        a = value if isinstance(value, Address) else Address.model_validate(value)
        return bool(a.country and (a.city or a.postal_code))
    if fieldname == "gender":
        return value in ("female", "male", "other")
    if isinstance(value, str):
        return any(ch.isalpha() for ch in value)  # names/company: at least one letter in any script
    return True


def _candidates(fieldname: str, members: Sequence[Member], rule: FieldRule) -> list[_Cand]:
    out: list[_Cand] = []
    for m in members:
        r = m.record
        if fieldname == "emails":
            values: list[Any] = list(r.emails)
        elif fieldname == "phones":
            values = [p.e164 for p in r.phones]
        elif fieldname == "addresses":
            values = list(r.addresses)
        else:
            values = [_SINGLE_GETTERS[fieldname](r)]
        for pos, v in enumerate(values):
            if rule.ignore_empty and _is_empty(v):
                continue
            if rule.validated_only and not is_validated(fieldname, v, m):
                continue
            out.append(_Cand(v, None if _is_empty(v) else _norm(fieldname, v), m, pos))
    return out


# -- ranking ----------------------------------------------------------------------------------------------------


def _completeness(v: Any) -> float:
    if v is None:
        return 0.0
    if isinstance(v, Address):
        return float(_addr_fill(v)) + (len(v.street or "") / 1000.0)
    if isinstance(v, str):
        return float(len(v.strip()))
    return 1.0


def _strategy_key(
    strategy: str, c: _Cand, rule: FieldRule, cfg: SurvivorshipConfig, votes: dict[Any, float]
) -> tuple:
    if strategy == "source_priority":
        return (cfg.priority_rank(rule, c.member.source),)
    if strategy == "most_recent":
        ts = c.member.updated_at
        return (1, 0.0) if ts is None else (0, -ts.replace(tzinfo=UTC).timestamp())
    if strategy == "most_complete":
        return (-_completeness(c.value),)
    if strategy == "most_frequent":
        return (-round(votes.get(c.norm, 0.0), 9),)
    raise ValueError(f"unknown survivorship strategy {strategy!r}")


def _rank(
    fieldname: str, cands: list[_Cand], rule: FieldRule, cfg: SurvivorshipConfig
) -> list[tuple[tuple, _Cand]]:
    """Candidates sorted best first, each with its full sort key (strategy, tie-breakers, record key)."""
    if len(cands) <= 1:  # most fields of most clusters: nothing to rank
        return [((), c) for c in cands]
    votes: dict[Any, float] = {}
    seen: set[tuple[Any, str]] = set()
    for c in cands:
        if (c.norm, c.member.record_key) in seen:  # one vote per record
            continue
        seen.add((c.norm, c.member.record_key))
        votes[c.norm] = votes.get(c.norm, 0.0) + (cfg.trust(c.member.source) if rule.weighted else 1.0)
    chain = [rule.strategy] + [t for t in rule.tie_breakers if t != rule.strategy]
    keyed = [
        (tuple(_strategy_key(s, c, rule, cfg, votes) for s in chain) + ((c.member.record_key, c.pos),), c)
        for c in cands
    ]
    keyed.sort(key=lambda kc: kc[0])
    return keyed


def _rule_label(rule: FieldRule, ranked: list[tuple[tuple, _Cand]]) -> str:
    """Which step of the rule separated the winner from the best different value."""
    winner_key, winner = ranked[0]
    for key, c in ranked[1:]:
        if c.norm != winner.norm:
            chain = [rule.strategy] + [t for t in rule.tie_breakers if t != rule.strategy]
            for i, step in enumerate(chain):
                if key[i] != winner_key[i]:
                    return rule.strategy if i == 0 else f"{rule.strategy}/{step}"
            # same rank on every step: the order inside one record, else the record key decided
            return "source_order" if c.member.record_key == winner.member.record_key else f"{rule.strategy}/record_key"
    return "single_value"


def _lineage(c: _Cand, rule: str, decided_at: datetime) -> FieldLineage:
    # trusted values from validated records: skip pydantic validation (hot path, ~15 values per golden)
    return FieldLineage.model_construct(
        record_key=c.member.record_key,
        source=c.member.source,
        rule=rule,
        source_updated_at=c.member.record.source_updated_at,
        decided_at=decided_at,
    )


@dataclass
class _Picked:
    value: Any
    winner: _Cand | None
    rule: str


def _pick_single(
    fieldname: str, members: Sequence[Member], cfg: SurvivorshipConfig, picked: dict[str, _Picked]
) -> _Picked:
    if fieldname in picked:
        return picked[fieldname]
    rule = cfg.rule(fieldname)
    if rule.follow:
        lead = _pick_single(rule.follow, members, cfg, picked)
        if lead.winner is not None:
            v = _SINGLE_GETTERS[fieldname](lead.winner.member.record)
            ok = not (rule.ignore_empty and _is_empty(v)) and not (
                rule.validated_only and not is_validated(fieldname, v, lead.winner.member)
            )
            if ok:
                c = _Cand(v, _norm(fieldname, v), lead.winner.member, 0)
                picked[fieldname] = _Picked(v, c, f"follow:{rule.follow}")
                return picked[fieldname]
        # the leading record has nothing usable here: rank this field on its own (default strategy)
        rule = rule.model_copy(update={"follow": None})
    ranked = _rank(fieldname, _candidates(fieldname, members, rule), rule, cfg)
    if not ranked:
        result = _Picked(None, None, rule.strategy)
    else:
        winner = ranked[0][1]
        result = _Picked(winner.value, winner, _rule_label(rule, ranked))
    picked[fieldname] = result
    return result


def _pick_multi(fieldname: str, members: Sequence[Member], cfg: SurvivorshipConfig) -> list[tuple[_Cand, str]]:
    rule = cfg.rule(fieldname)
    ranked = _rank(fieldname, _candidates(fieldname, members, rule), rule, cfg)
    out: list[tuple[_Cand, str]] = []
    seen: set[Any] = set()
    for i, (_, c) in enumerate(ranked):
        if c.norm in seen or c.norm is None:
            continue
        seen.add(c.norm)
        # the label says why this value outranks the next distinct one (primary: why it is primary)
        out.append((c, _rule_label(rule, ranked[i:])))
        if rule.max_values and len(out) >= rule.max_values:
            break
    return out


# -- quality ----------------------------------------------------------------------------------------------------

_QUALITY_FIELDS = ("full_name", "primary_email", "primary_phone", "birth_date", "address", "gender", "national_id")


def quality_score(golden: GoldenCustomer, validated: dict[str, bool], cfg: SurvivorshipConfig) -> float:
    """Completeness of the key fields, share of them validated, and number of source systems, in [0, 1]."""
    filled = [f for f in _QUALITY_FIELDS if not _is_empty(getattr(golden, f))]
    completeness = len(filled) / len(_QUALITY_FIELDS)
    valid_share = (sum(1 for f in filled if validated.get(f)) / len(filled)) if filled else 0.0
    sources = min(1.0, len(golden.sources) / cfg.quality.full_sources)
    w = cfg.quality.weights
    total = sum(w.values()) or 1.0
    score = (
        w.get("completeness", 0) * completeness + w.get("validated", 0) * valid_share + w.get("sources", 0) * sources
    ) / total
    return round(score, 4)


# -- the golden record ------------------------------------------------------------------------------------------


def survive(
    golden_id: str,
    members: Iterable[Member],
    cfg: SurvivorshipConfig,
    decided_at: datetime | None = None,
) -> GoldenCustomer:
    """Apply the survivorship rules to one cluster. Deterministic for the same members and rules."""
    decided_at = decided_at or datetime.now(UTC).replace(tzinfo=None)
    ms = sorted(members, key=lambda m: m.record_key)
    if not ms:
        raise ValueError("a golden record needs at least one member")
    picked: dict[str, _Picked] = {}
    lineage: dict[str, FieldLineage] = {}
    values: dict[str, Any] = {}
    validated: dict[str, bool] = {}
    for f in SINGLE_FIELDS:
        p = _pick_single(f, ms, cfg, picked)
        values[f] = p.value
        if p.winner is not None and not _is_empty(p.value):
            lineage[f] = _lineage(p.winner, p.rule, decided_at)
            validated[f] = is_validated(f, p.value, p.winner.member)

    multi: dict[str, list[tuple[_Cand, str]]] = {f: _pick_multi(f, ms, cfg) for f in MULTI_FIELDS}
    for f, items in multi.items():
        for i, (c, rule) in enumerate(items):
            lineage[f"{f}[{i}]"] = _lineage(c, rule, decided_at)
    primary = {"emails": "primary_email", "phones": "primary_phone", "addresses": "address"}
    for f, pf in primary.items():
        if multi[f]:
            c, rule = multi[f][0]
            lineage[pf] = _lineage(c, rule, decided_at)
            validated[pf] = is_validated(f, c.value, c.member)

    winners = consent_rule.latest(
        s for m in ms for s in consent_rule.statements(m.record_key, m.source, m.record.consent, m.updated_at))
    for channel, st in winners.items():
        lineage[f"consent.{channel}"] = FieldLineage.model_construct(
            record_key=st.record_key, source=st.source, rule=consent_rule.RULE, source_updated_at=st.at,
            decided_at=decided_at)

    addresses = [c.value for c, _ in multi["addresses"]]
    golden = GoldenCustomer(
        golden_id=golden_id,
        full_name=values["full_name"],
        given_name=values["given_name"],
        family_name=values["family_name"],
        name_key=values["name_key"],
        company=values["company"],
        primary_email=multi["emails"][0][0].value if multi["emails"] else None,
        emails=[c.value for c, _ in multi["emails"]],
        primary_phone=multi["phones"][0][0].value if multi["phones"] else None,
        phones=[c.value for c, _ in multi["phones"]],
        birth_date=values["birth_date"],
        gender=values["gender"],
        national_id=values["national_id"],
        address=addresses[0] if addresses else None,
        addresses=addresses,
        consent=consent_rule.consent_of(winners),
        sources=sorted({m.source for m in ms}),
        record_keys=[m.record_key for m in ms],
        lineage=lineage,
    )
    golden.quality_score = quality_score(golden, validated, cfg)
    return golden
