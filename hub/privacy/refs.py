"""How source ids may appear in Dagster metadata, logs and reports: short numeric ids (an ERP party 1042, a shop
customer 88) are not personal and are shown; anything else — WeChat openids, national ids, the e-mail or phone
keys of imported files, composite keys — is shown as its source and length only, which cannot be read back."""

from __future__ import annotations

import re

SHOWN_DIGITS = 8


def source_ref(source_id: object) -> str:
    s = str(source_id)
    if s.isdigit() and len(s) <= SHOWN_DIGITS:
        return s
    return f"‹{len(s)} chars›"


def record_ref(record_key: str) -> str:
    """``webshop:88`` stays; ``social:oWx1…`` becomes ``social:‹28 chars›``."""
    source, sep, sid = str(record_key).partition(":")
    return f"{source}:{source_ref(sid)}" if sep else source_ref(source)


_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”")
_CONTACT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\+?\d[\d\s\-().]{5,}\d")


def safe_reason(reason: str | None) -> str:
    """A target's refusal as metadata may show it: quoted record names and contact data cut out (Tryton quotes
    the record, e.g. 'in record "陈伟" of "Party"')."""
    return _CONTACT.sub("…", _QUOTED.sub('"…"', reason or ""))
