"""Compact per-record match features and the dedupe-engine input frame, built from staged customer JSON.

Kept deliberately small (tuples of strings) so a million records fit in memory; full CustomerRecord models
are only built cluster by cluster during survivorship.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

ENGINE_COLUMNS = (
    "record_id", "source", "full_name", "given_name", "family_name", "company", "email", "phone", "birth_date",
    "gender", "national_id", "street", "city", "region", "postal_code", "country",
)


@dataclass(frozen=True, slots=True)
class Features:
    source: str
    name_key: str | None
    phones: tuple[str, ...]
    email_keys: tuple[str, ...]
    national_id: str | None
    birth_date: str | None


def _s(v: object) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def features_of(rec: dict) -> Features:
    """Match features of one staged customer record (``CustomerRecord.model_dump(mode="json")``)."""
    name = rec.get("name") or {}
    name_key = _s(name.get("name_key"))
    if name_key is None:
        full = _s(rec.get("full_name")) or " ".join(
            x for x in (_s(rec.get("given_name")), _s(rec.get("family_name"))) if x
        )
        # order-insensitive fallback when the standardiser left no key
        name_key = " ".join(sorted(full.casefold().split())) if full else None
    phones = tuple(dict.fromkeys(p["e164"] for p in rec.get("phones") or () if p.get("e164")))
    keys = rec.get("email_keys") or [e.strip().casefold() for e in rec.get("emails") or () if e]
    return Features(
        source=rec.get("source") or "",
        name_key=name_key,
        phones=phones,
        email_keys=tuple(dict.fromkeys(k for k in keys if k)),
        national_id=_s(rec.get("national_id")),
        birth_date=_s(rec.get("birth_date")),
    )


def engine_row(record_key: str, rec: dict) -> tuple:
    """One row of the ``hub.dedupe.deduplicate`` input frame (primary e-mail / phone / address only)."""
    phones = [p.get("e164") for p in rec.get("phones") or () if p.get("e164")]
    emails = [e for e in rec.get("emails") or () if e]
    addr = (rec.get("addresses") or [{}])[0] or {}
    return (
        record_key,
        rec.get("source") or "",
        rec.get("full_name") or "",
        rec.get("given_name") or "",
        rec.get("family_name") or "",
        rec.get("company") or "",
        emails[0] if emails else "",
        phones[0] if phones else "",
        rec.get("birth_date") or "",
        rec.get("gender") or "",
        rec.get("national_id") or "",
        addr.get("street") or "",
        addr.get("city") or "",
        addr.get("region") or "",
        addr.get("postal_code") or "",
        addr.get("country") or "",
    )


def engine_frame(records: Iterable[tuple[str, dict]]) -> pd.DataFrame:
    """The engine's input frame (all strings, '' = missing) for (record_key, staged record JSON) items."""
    return pd.DataFrame([engine_row(k, r) for k, r in records], columns=list(ENGINE_COLUMNS), dtype=str)


def hash_keys(keys: Iterable[str]) -> np.ndarray:
    """Block keys as 64-bit blake2b hashes (uint64): compact in memory, and the blocking index holds no names
    or phone numbers. A (never observed) collision only adds a candidate pair, identically in full and
    incremental runs. Stored as 16 hex digits (``hex_key``)."""
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b(k.encode("utf-8"), digest_size=8).digest(), "big") for k in keys),
        dtype=np.uint64,
    )


def hex_key(h: int) -> str:
    return f"{h:016x}"
