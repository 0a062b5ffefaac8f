"""Text normalisation shared by all standardisers.

Everything here is pure and cached on the input string: customer data repeats a lot (cities, company
names, provinces), so the cache absorbs most of the cost of NFKC and regex passes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache

# Hard ceiling for any single field. Longer values are never legitimate customer data and would only
# bloat the caches (the cache key is the string itself).
MAX_FIELD_LEN = 4096

_WS_RE = re.compile(r"\s+")
# Invisible characters that survive NFKC and break equality: zero-width space/joiners, BOM, soft hyphen,
# bidi marks; and lone surrogates (from broken UTF-16 sources), which cannot even be encoded to UTF-8.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff\u00ad\ud800-\udfff]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def as_str(value: object) -> str | None:
    """Coerce a raw source value to ``str`` (or None) without ever raising.

    Spreadsheet and SQL sources hand us ints/floats for phone numbers and dates, bytes from legacy
    drivers, etc.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        # 13800138000.0 from a spreadsheet is an integer in disguise.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:  # an exotic object whose __str__ raises: treat as missing
        return None


# The entry points cache their own results; this cache only serves repeated sub-fields (cities, labels).
@lru_cache(maxsize=65_536)
def normalize_text(s: str) -> str:
    """NFKC (full-width → half-width, ligatures, compatibility forms), drop invisible/control characters,
    collapse whitespace, trim. Case and punctuation are kept."""
    if not s:
        return ""
    if s.isascii():
        # Fast path: ASCII needs no NFKC.
        t = s
    else:
        t = unicodedata.normalize("NFKC", s)
        t = _INVISIBLE_RE.sub("", t)
        # Ideographic space is handled by NFKC; the Chinese middle-dot variants are unified here because
        # they separate parts of transliterated names (阿不都·热合曼).
        t = t.replace("\u30fb", "·").replace("\u2022", "·").replace("\u2027", "·")
    t = _CONTROL_RE.sub(" ", t)
    return _WS_RE.sub(" ", t).strip()


def _is_punct(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "PS"


# Translation table: every punctuation/symbol code point in the BMP → space. Built once at import
# (~20 ms) so that `str.translate` does the work in C.
_PUNCT_TABLE = {cp: " " for cp in range(0x10000) if _is_punct(chr(cp))}


def strip_punctuation(s: str) -> str:
    """Replace punctuation and symbols by spaces and collapse whitespace."""
    if not s:
        return ""
    return _WS_RE.sub(" ", s.translate(_PUNCT_TABLE)).strip()


@lru_cache(maxsize=65_536)
def text_key(s: str) -> str:
    """A comparison key: NFKC, case-folded, punctuation removed, whitespace collapsed."""
    return strip_punctuation(normalize_text(s).casefold())


def fold_ascii(s: str) -> str:
    """Remove diacritics (José → Jose, Müller → Muller); non-Latin characters are kept as they are."""
    if s.isascii():
        return s
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ß", "ss")


def clean_str(value: object, max_len: int = MAX_FIELD_LEN) -> tuple[str | None, str | None]:
    """Coerce + normalise one raw value. Returns ``(text, problem)`` where problem is None, ``'missing'``
    (None/blank) or ``'too_long'``."""
    s = as_str(value)
    if s is None:
        return None, "missing"
    if len(s) > max_len:
        return None, "too_long"
    t = normalize_text(s)
    if not t:
        return None, "missing"
    return t, None


# -- spreadsheet formula injection (OWASP "CSV Injection") ------------------------------------------------------
# A cell that begins with one of these is run as a formula by Excel, WPS or LibreOffice when the file is
# opened (``=HYPERLINK(...)``, ``-2+3+cmd|' /c calc'!A0``). Numbers and phone numbers (``+86 138-0013-8000``,
# ``-12.5``) are data, not formulas: they stay as they are so they remain usable.
FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER_RE = re.compile(r"[+-][0-9][0-9 ().\-/]*")
_DASHES_RE = re.compile(r"[-\s]+")  # "-", "--": the usual placeholder for "no value"


def is_formula_like(value: object) -> bool:
    """Would a spreadsheet read this text cell as a formula? (``text.formula_like``)."""
    if value.__class__ is not str or not value or value[0] not in FORMULA_STARTS:  # type: ignore[index]
        return False
    s: str = value  # type: ignore[assignment]
    if s[0] in "+-" and (_PLAIN_NUMBER_RE.fullmatch(s) or _DASHES_RE.fullmatch(s)):
        return False
    return True


def escape_cell(value: str) -> str:
    """OWASP escaping for a cell written into CSV/XLSX: a leading apostrophe makes a formula-like value text.

    A value that already starts with apostrophes in front of a formula character gets one more, so
    :func:`unescape_cell` gives back exactly the original (export -> import round trips)."""
    return "'" + value if is_formula_like(value.lstrip("'")) else value


def unescape_cell(value: str) -> str:
    """Inverse of :func:`escape_cell` (applied to cells read from a spreadsheet)."""
    if value.startswith("'") and is_formula_like(value[1:].lstrip("'")):
        return value[1:]
    return value
