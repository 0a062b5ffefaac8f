"""One-member clusters take survivorship's short path (no candidates, no ranking): it must give what the
general rules give for the same member, field by field, under rules that exercise every filter."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from hub.golden import load_survivorship
from hub.golden.config import MULTI_FIELDS, SINGLE_FIELDS
from hub.golden.survivorship import (
    MemberFacts,
    Survivor,
    _pick_alone,
    _pick_multi,
    _pick_multi_alone,
    _pick_single,
    staged_member,
)

ADDRESS = {"kind": "billing", "street": "1 Garden Rd", "district": None, "city": "Berlin", "region": None,
           "postal_code": "10115", "country": "DE", "key": None}
BLANK_ADDRESS = {"kind": "billing", "street": None, "district": None, "city": None, "region": None,
                 "postal_code": None, "country": None, "key": None}
NO_COUNTRY = {**ADDRESS, "country": None}

# values per field: usable, empty (None / blank) and invalid where the field validates
SINGLE_VALUES = {
    "full_name": ["Anna Li", "  ", None, "123"],
    "given_name": ["Anna", "", None],
    "family_name": ["Li", None],
    "company": ["ACME", " ", None],
    "birth_date": ["1980-05-01", "1850-01-01", None],
    "gender": ["female", "unknown", None],
    "national_id": ["110101198005010011", "", None],
}
MULTI_VALUES = {
    "emails": [[], ["anna@example.com"], ["not-an-email"], [" "], ["A@example.com", "a@example.com", "b@ex.org"]],
    "phones": [[], ["+8613800138000"], ["+86123"], ["+8613800138000", "+862150000000"]],
    "addresses": [[], [ADDRESS], [BLANK_ADDRESS], [NO_COUNTRY], [NO_COUNTRY, ADDRESS]],
}

RULES = [
    None,  # the shipped rules
    {"fields": {f: {"strategy": "most_complete", "ignore_empty": False, "tie_breakers": ["most_recent"]}
                for f in ("full_name", "company", "emails", "addresses")}},
    {"fields": {**{f: {"strategy": "source_priority", "validated_only": True} for f in SINGLE_FIELDS},
                "given_name": {"follow": "full_name", "validated_only": True},
                "family_name": {"follow": "given_name", "ignore_empty": False},
                "phones": {"strategy": "most_frequent", "weighted": True, "max_values": 1},
                "addresses": {"strategy": "most_recent", "ignore_empty": False,
                              "tie_breakers": ["most_complete"]}}},
]


def members() -> list[MemberFacts]:
    out = []
    singles = list(SINGLE_VALUES.items())
    for n, combo in enumerate(itertools.islice(itertools.product(*(v for _, v in singles)), 0, None, 7)):
        rec = {f: v for (f, _), v in zip(singles, combo, strict=True)}
        rec["name"] = {"display": rec["full_name"], "name_key": "li anna"} if n % 3 else None
        rec["national_id_type"] = "cn_resident" if n % 2 else None
        for f, options in MULTI_VALUES.items():
            vals = options[n % len(options)]
            rec[f] = [{"e164": p, "kind": "mobile"} for p in vals] if f == "phones" else vals
        rec["consent"] = {"email": n % 4 == 0, "sms": None, "phone": "yes" if n % 5 == 0 else None}
        rec["source_updated_at"] = None if n % 6 == 0 else "2025-06-01T10:00:00+02:00"
        flags = ["email.invalid_format"] if n % 11 == 0 else []
        out.append(staged_member(f"erp:{n}", "erp", rec, flags, datetime(2026, 1, 2)))
    return out


@pytest.mark.parametrize("rules", RULES)
def test_one_member_short_path_matches_the_general_rules(rules: dict | None) -> None:
    cfg = load_survivorship(rules)
    plans = Survivor(cfg).plans
    ms = members()
    assert len(ms) > 50
    for mf in ms:
        short: dict = {}
        general: dict = {}
        for f in SINGLE_FIELDS:
            value, won, rule = _pick_alone(plans[f], plans, mf, short)
            g_value, g_winner, g_rule = _pick_single(plans[f], plans, [mf], general)
            assert (value, won, rule) == (g_value, g_winner is not None, g_rule), (f, mf.key)
        for f in MULTI_FIELDS:
            got = [(c[0], c[2].key, c[3], rule) for c, rule in _pick_multi_alone(plans[f], mf)]
            want = [(c[0], c[2].key, c[3], rule) for c, rule in _pick_multi(plans[f], [mf])]
            assert got == want, (f, mf.key)


def test_one_member_golden_is_the_same_alone_or_beside_an_empty_twin() -> None:
    """The whole record: a one-member cluster (short path) against the same member in the general path,
    forced by giving one single field two values (the general path ranks them; the first is the member's)."""
    sv = Survivor(load_survivorship(None))
    for mf in members()[:40]:
        alone = sv.survive_undated("G1", [mf])
        values = {f: list(v) for f, v in mf.values.items()}
        values["company"] = values["company"] + [None]  # two values: not the short path; None never wins
        twin = MemberFacts(mf.key, mf.source, values, None, mf.updated_at, mf.flags, mf.national_id_type,
                           mf.consent, mf.updated_json)
        general = sv.survive_undated("G1", [twin])
        assert (alone.record, alone.lineage, alone.quality_score) == (
            general.record, general.lineage, general.quality_score), mf.key
