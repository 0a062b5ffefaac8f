"""The report's completeness figures: which of five fields the staged customer records of each source and the
active golden records hold. Tallied in the same pass as the quality dimensions read those records
(hub/quality/dimensions.py), so the report does not read every record a second time."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

COMPLETENESS_FIELDS = ("name", "email", "phone", "birth_date", "address")


def pct(part: int | float, whole: int | float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _has_name(rec: Mapping[str, Any]) -> bool:
    # ``type is dict`` first: decoded JSON holds dicts, and the abstract-class check costs more than the rest
    name = rec.get("name") or {}
    return bool(rec.get("full_name") or rec.get("given_name") or rec.get("family_name")
                or ((type(name) is dict or isinstance(name, Mapping)) and name.get("display")))


def has_address(addresses: Iterable[Any]) -> bool:
    """Some address holds a street, a city or a postal code."""
    return any((type(a) is dict or isinstance(a, Mapping))
               and (a.get("street") or a.get("city") or a.get("postal_code")) for a in addresses or [])


# What a staged customer record holds, as one tuple (the quality pass counts records by it): the report's five
# fields (a name without the company) and what the completeness dimension also weighs.
PROFILE_FIELDS = ("name", "company", "email", "phone", "birth_date", "address", "national_id", "gender")
_REPORTED = tuple(PROFILE_FIELDS.index(f) for f in COMPLETENESS_FIELDS)


def customer_profile(rec: Mapping[str, Any]) -> tuple[bool, ...]:
    """Which of ``PROFILE_FIELDS`` a staged CustomerRecord (JSON) holds, in that order."""
    return (
        _has_name(rec),
        bool(rec.get("company")),
        bool(rec.get("emails")),
        bool(rec.get("phones")),
        bool(rec.get("birth_date")),
        has_address(rec.get("addresses") or []),
        bool(rec.get("national_id")),
        bool(rec.get("gender")),
    )


def profile_bits(profile: tuple[bool, ...]) -> int:
    """A ``customer_profile`` as the integer staging keeps in ``staged_record.quality_profile`` (bit i set: the
    record holds ``PROFILE_FIELDS[i]``)."""
    return sum(1 << i for i, held in enumerate(profile) if held)


def profile_of_bits(bits: int) -> tuple[bool, ...]:
    """The ``customer_profile`` kept as ``bits`` (``profile_bits``)."""
    return tuple(bool(bits >> i & 1) for i in range(len(PROFILE_FIELDS)))


def customer_completeness(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the report's fields a staged CustomerRecord (JSON) has."""
    profile = customer_profile(rec)
    return {f: profile[i] for f, i in zip(COMPLETENESS_FIELDS, _REPORTED, strict=True)}


# the keys of a golden record ``golden_completeness`` reads: the quality pass reads only these paths of each
# record from the store (tests/test_quality_dimensions.py checks the list against the function)
GOLDEN_KEYS_READ = ("full_name", "given_name", "family_name", "name", "primary_email", "emails", "primary_phone",
                    "phones", "birth_date", "address", "addresses")


def golden_completeness(rec: Mapping[str, Any]) -> dict[str, bool]:
    """Which of the report's fields a GoldenCustomer (JSON) has."""
    return {
        "name": _has_name(rec),
        "email": bool(rec.get("primary_email") or rec.get("emails")),
        "phone": bool(rec.get("primary_phone") or rec.get("phones")),
        "birth_date": bool(rec.get("birth_date")),
        "address": has_address([rec.get("address"), *(rec.get("addresses") or [])]),
    }


class CompletenessTally:
    """Counts records and present fields: staged customers per source, active golden records."""

    def __init__(self) -> None:
        self.per_source: dict[str, Counter[str]] = defaultdict(Counter)
        self.totals: Counter[str] = Counter()
        self.golden: Counter[str] = Counter()
        self.golden_records = 0

    def add_customer(self, source: str, rec: Mapping[str, Any] | None) -> None:
        self.totals[source] += 1
        for name, present in customer_completeness(rec or {}).items():
            self.per_source[source][name] += present

    def add_golden(self, rec: Mapping[str, Any] | None) -> None:
        self.golden_records += 1
        for name, present in golden_completeness(rec or {}).items():
            self.golden[name] += present

    def add_customer_counts(self, source: str, records: int, present: Mapping[str, int]) -> None:
        """``records`` customer records of ``source`` at once, ``present[field]`` of them holding the field (a
        pass that counts records by which fields they hold adds each count once, not each record)."""
        self.totals[source] += records
        for name in COMPLETENESS_FIELDS:
            self.per_source[source][name] += present.get(name, 0)

    def add_golden_counts(self, records: int, present: Mapping[str, int]) -> None:
        """``records`` active golden records at once (as ``add_customer_counts``)."""
        self.golden_records += records
        for name in COMPLETENESS_FIELDS:
            self.golden[name] += present.get(name, 0)

    def figures(self) -> dict[str, Any]:
        """The report's ``completeness`` section (JSON-ready)."""
        out: dict[str, Any] = {"sources": {}, "golden": None}
        for source in sorted(self.totals):
            n = self.totals[source]
            out["sources"][source] = {"records": n,
                                      **{f: pct(self.per_source[source][f], n) for f in COMPLETENESS_FIELDS}}
        if self.golden_records:
            n = self.golden_records
            out["golden"] = {"records": n, **{f: pct(self.golden[f], n) for f in COMPLETENESS_FIELDS}}
        return out
