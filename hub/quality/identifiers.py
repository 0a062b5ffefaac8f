"""The strong identifiers of a staged customer record: the values that name one person when few records hold
them (the merge/split brake's evidence that a consolidation is supported), and their hashes as staging keeps
them with the record (``staged_record.identifier_hashes``)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

DIGEST_SIZE = 8  # bytes per identifier: 64-bit hashes (at 10M identifiers two collide with a chance of ~1 in 10^5)


def strong_keys(rec: Mapping[str, Any]) -> set[tuple]:
    """The identifiers of a staged customer record that name one person when they are rare."""
    keys: set[tuple] = set()
    for e in rec.get("emails") or []:
        keys.add(("email", str(e).strip().lower()))
    for p in rec.get("phones") or []:
        number = p.get("e164") if type(p) is dict or isinstance(p, Mapping) else p  # decoded JSON: dicts
        if number:
            keys.add(("phone", str(number)))
    if rec.get("national_id"):
        keys.add(("national_id", str(rec["national_id"])))
    for kind, value in (rec.get("external_ids") or {}).items():
        # an openid is per account and never shared; a unionid is shared by the accounts of one person
        if value and not kind.endswith("openid"):
            keys.add(("external", kind, str(value)))
    name = rec.get("name") or {}
    name_key = name.get("name_key") if type(name) is dict or isinstance(name, Mapping) else None
    if name_key and rec.get("birth_date"):
        keys.add(("name_birth", name_key, str(rec["birth_date"])))
    return keys


def identifier_digests(rec: Mapping[str, Any]) -> bytes:
    """``strong_keys`` of a staged customer record as ``DIGEST_SIZE``-byte blake2b hashes, sorted, one after the
    other (empty: none). Stable across processes and versions (Python's ``hash`` is salted per process), so they
    can be kept with the record; a change to ``strong_keys`` ships with a migration emptying the kept ones."""
    return b"".join(sorted(
        hashlib.blake2b("\x1f".join(map(str, key)).encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()
        for key in strong_keys(rec)))
