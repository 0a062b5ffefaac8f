"""Lookup keys: the standardised forms under which a golden customer can be found.

The same functions turn a golden customer's 360 view into index keys and a caller's query into search keys,
with the hub's own standardisers (the ones the matcher uses), so every way of writing a value meets:

  phone   ``p:+8613800138000``           E.164 (``hub.standardise.phones``): 138-0013-8000, 0086…, ＋８６…
  e-mail  ``e:johndoe@gmail.com``        provider-aware match key (``email_key``): John.Doe+x@googlemail.com
  name    ``n:chen wei``                 order-insensitive romanised key (``standardise_person_name``):
                                         陳偉 / 陈伟 / Chen Wei / WEI CHEN; also with the nickname resolved
                                         (``n:jones robert`` for Bob Jones)
  name+city ``nc:chen wei|上海市``        the city as the address standardiser names it: Shanghai / 上海 / 上海市

Keys are stored as 64-bit blake2b hashes (``key_hash``): the index holds no personal data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from hub.standardise import email_key, fold_ascii, standardise_address, standardise_person_name, text_key


def key_hash(key: str) -> int:
    """Signed 64-bit blake2b of a lookup key (fits a BIGINT on every backend)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def phone_key(e164: str) -> str:
    return "p:" + e164


def email_lookup_key(email: str | None) -> str | None:
    key = email_key(email) if email else None
    return "e:" + key if key else None


@lru_cache(maxsize=200_000)
def name_keys(full: str | None, given: str | None = None, family: str | None = None) -> frozenset[str]:
    """Romanised, order-insensitive name keys: as written and with the given name's nickname resolved."""
    out: set[str] = set()
    for res in {standardise_person_name(full=full), standardise_person_name(given=given, family=family)}:
        if res.name_key:
            out.add(res.name_key)
        canonical = [p for p in (res.family_key, res.given_canonical or res.given_key) if p]
        if canonical:
            out.add(" ".join(sorted(canonical)))
    return frozenset(out)


@lru_cache(maxsize=50_000)
def city_key(city: str | None, region: str | None = None) -> str | None:
    """The city as the address standardiser names it, case- and accent-folded: 'Shanghai', '上海' and
    '上海市' give '上海市'; a region-level city (Hong Kong) gives its region. The country is left out on
    purpose: a caller searching by city does not name it."""
    if not (city or region):
        return None
    addr = standardise_address(city=city, region=region)
    place = addr.city or addr.region or city or region or ""
    return text_key(fold_ascii(place)) or None


def customer_keys(view: Mapping[str, Any]) -> set[str]:
    """Every lookup key of one customer_360 view (its golden profile: phones, e-mails, names × cities)."""
    return profile_keys(view.get("profile") or {})


def profile_keys(profile: Mapping[str, Any]) -> set[str]:
    """``customer_keys`` of a view's profile alone (what the index reads of each view)."""
    keys: set[str] = set()
    for phone in _phones(profile):
        keys.add(phone_key(phone))
    for email in [profile.get("primary_email"), *(profile.get("emails") or [])]:
        key = email_lookup_key(email)
        if key:
            keys.add(key)
    names = name_keys(profile.get("full_name"), profile.get("given_name"), profile.get("family_name"))
    cities = {city_key(a.get("city"), a.get("region")) for a in _addresses(profile)}
    cities.discard(None)
    for name in names:
        keys.add("n:" + name)
        keys.update(f"nc:{name}|{city}" for city in cities)
    return keys


def _phones(profile: Mapping[str, Any]) -> list[str]:
    phones = [profile.get("primary_phone"), *(profile.get("phones") or [])]
    return [p for p in dict.fromkeys(phones) if p]


def _addresses(profile: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for addr in [profile.get("address"), *(profile.get("addresses") or [])]:
        if isinstance(addr, Mapping):
            yield addr


def holds_phone(view: Mapping[str, Any], e164: str) -> bool:
    """True when the view's golden profile holds this number (guards the hash index against staleness)."""
    return e164 in _phones(view.get("profile") or {})


# Probe values whose keys fingerprint the key derivation: when a standardiser changes how it writes any of
# them, every stored key may be stale and the index is rebuilt in full.
_PROBES = {
    "profile": {
        "full_name": "陳偉", "given_name": "Bob", "family_name": "Jones",
        "primary_email": "John.Doe+x@GoogleMail.com", "emails": ["12345@vip.qq.com"],
        "primary_phone": "+8613800138000", "phones": ["+862162345678", "+14155550123"],
        "address": {"city": "Shanghai", "region": None, "country": "CN"},
        "addresses": [{"city": "München", "country": "DE"}, {"city": "香港", "country": "HK"},
                      {"city": "Xi'an"}],
    }
}
KEYS_VERSION = "1"


@lru_cache(maxsize=1)
def keys_fingerprint() -> str:
    """16 hex characters naming the current key derivation (version + what it makes of the probes)."""
    probe = "\n".join(sorted(customer_keys(_PROBES)))
    return hashlib.blake2b(f"{KEYS_VERSION}\n{probe}".encode(), digest_size=8).hexdigest()
