"""National identifiers: Chinese resident ID (GB 11643), US SSN, Chinese unified social credit code
(GB 32100). Validation only — checksums, formats and the facts encoded in the number; nothing is looked up.

Identifiers are personal data: never log the values, only the flags.
"""

from __future__ import annotations

import datetime as _dt
import operator
import re
from functools import lru_cache
from typing import NamedTuple

from hub.standardise.text import as_str, normalize_text

# Province-level codes that can start a resident ID / division code (GB/T 2260; 71 Taiwan, 81/82 HK/Macao
# residence permits, 83 Taiwan residence permits; 91 was used for foreigners' permanent residence IDs).
_CN_PROVINCES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
    "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82",
    "83", "91",
})


class NationalId(NamedTuple):
    value: str | None             # normalised 18-character ID ('11010519491231002X'); None if unusable
    valid: bool                   # checksum, date and region all fine
    birth_date: _dt.date | None   # encoded birth date, for cross-checking against the record's
    gender: str | None            # 'M' | 'F' (sequence digit parity)
    region_code: str | None       # 6-digit administrative division of first registration
    flags: tuple[str, ...]


class Ssn(NamedTuple):
    value: str | None   # 'AAA-GG-SSSS'
    valid: bool
    flags: tuple[str, ...]


class CreditCode(NamedTuple):
    value: str | None          # 18-character unified social credit code, upper-case
    valid: bool
    region_code: str | None    # 6-digit administrative division
    org_code: str | None       # embedded 9-character organisation code (GB 11714)
    flags: tuple[str, ...]


_SEP_RE = re.compile(r"[\s\-‐‑–—_.]+")

# --- GB 11643 resident ID ----------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID18_RE = re.compile(r"^\d{17}[\dX]$")
_ID15_RE = re.compile(r"^\d{15}$")


_ID_WEIGHT_SUM_48 = 48 * sum(_ID_WEIGHTS)


def cn_id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not first17.isdigit() or not first17.isascii():
        raise ValueError("17 ASCII digits expected")
    # Σ (ord(c) − 48)·w done in C over the bytes: this runs once per distinct ID.
    total = sum(map(operator.mul, first17.encode(), _ID_WEIGHTS)) - _ID_WEIGHT_SUM_48
    return _ID_CHECK[total % 11]


def _id_date(s: str) -> _dt.date | None:
    try:
        return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        return None


@lru_cache(maxsize=50_000)
def _cn_id(s: str, today: _dt.date) -> NationalId:
    t = _SEP_RE.sub("", normalize_text(s)).upper()
    flags: list[str] = []
    if _ID15_RE.match(t):
        # First-generation 15-digit ID (before 1999): YYMMDD, no check digit. Upgrade to 18 digits the
        # official way (century 19 + computed check character) so both generations compare equal.
        first17 = t[:6] + "19" + t[6:]
        t = first17 + cn_id_check_char(first17)
        flags.append("national_id.legacy15")
    if not _ID18_RE.match(t):
        return NationalId(None, False, None, None, None, ("national_id.format",))
    if cn_id_check_char(t[:17]) != t[17]:
        flags.append("national_id.checksum")
    birth = _id_date(t[6:14])
    if birth is None or birth.year < 1900 or birth > today:
        flags.append("national_id.birth_date")
        birth = None
    if t[:2] not in _CN_PROVINCES:
        flags.append("national_id.region")
    gender = "M" if int(t[16]) % 2 else "F"
    valid = not any(f != "national_id.legacy15" for f in flags)
    return NationalId(t, valid, birth, gender, t[:6], tuple(flags))


def validate_cn_resident_id(raw: object, today: _dt.date | None = None) -> NationalId:
    """Validate a Chinese resident identity card number (GB 11643-1999, 18 digits with ISO 7064
    MOD 11-2 check character; 15-digit legacy IDs are upgraded). Returns the encoded birth date and
    gender so callers can cross-check them against the record. Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return NationalId(None, False, None, None, None, ("national_id.missing",))
    if len(s) > 64:
        return NationalId(None, False, None, None, None, ("national_id.format",))
    try:
        return _cn_id(s, today or _dt.date.today())
    except Exception:
        return NationalId(None, False, None, None, None, ("national_id.format", "standardise.error"))


# --- US Social Security Number --------------------------------------------------------------------

_SSN_RE = re.compile(r"^(\d{3})-?(\d{2})-?(\d{4})$")
# Numbers published in advertising / on sample cards, never issued to a person.
_SSN_BLOCKED = frozenset({"078051120", "219099999", "123456789"})


@lru_cache(maxsize=20_000)
def _ssn(s: str) -> Ssn:
    t = re.sub(r"[\s.]+", "", normalize_text(s)).replace("‐", "-").replace("–", "-")
    m = _SSN_RE.match(t)
    if not m:
        return Ssn(None, False, ("ssn.format",))
    area, group, serial = m.groups()
    value = f"{area}-{group}-{serial}"
    # SSA rules: area 000, 666 and 900–999 are never issued; group 00 and serial 0000 neither.
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return Ssn(value, False, ("ssn.invalid",))
    if area + group + serial in _SSN_BLOCKED:
        return Ssn(value, False, ("ssn.invalid", "ssn.sample"))
    return Ssn(value, True, ())


def validate_ssn(raw: object) -> Ssn:
    """Check a US SSN's format and the area/group/serial issuing rules. Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return Ssn(None, False, ("ssn.missing",))
    if len(s) > 64:
        return Ssn(None, False, ("ssn.format",))
    try:
        return _ssn(s)
    except Exception:
        return Ssn(None, False, ("ssn.format", "standardise.error"))


# --- GB 32100 unified social credit code ------------------------------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"   # 31 characters: no I, O, S, V, Z
_USCC_VAL = {c: i for i, c in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character (mod 31) for the first 17 characters of a credit code."""
    total = sum(_USCC_VAL[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str | None:
    """GB 11714 check character for an 8-character organisation code body (None if not computable)."""
    try:
        total = sum(_ORG_CHARS.index(c) * w for c, w in zip(first8, _ORG_WEIGHTS, strict=True))
    except ValueError:
        return None
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


@lru_cache(maxsize=20_000)
def _uscc(s: str) -> CreditCode:
    t = _SEP_RE.sub("", normalize_text(s)).upper()
    if not _USCC_RE.match(t):
        return CreditCode(None, False, None, None, ("uscc.format",))
    flags: list[str] = []
    if uscc_check_char(t[:17]) != t[17]:
        flags.append("uscc.checksum")
    org = t[8:17]
    if org_code_check_char(org[:8]) != org[8]:
        # Codes issued to individual businesses (类别 92) use a placeholder organisation code, so this is
        # informational, not a reason to reject the code.
        flags.append("uscc.org_code_checksum")
    if t[2:4] not in _CN_PROVINCES and t[2:4] != "10":  # 10xxxx: central-government registrations
        flags.append("uscc.region")
    valid = "uscc.checksum" not in flags and "uscc.region" not in flags
    return CreditCode(t, valid, t[2:8], org, tuple(flags))


def validate_uscc(raw: object) -> CreditCode:
    """Validate a Chinese unified social credit code (统一社会信用代码, GB 32100-2015). Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return CreditCode(None, False, None, None, ("uscc.missing",))
    if len(s) > 64:
        return CreditCode(None, False, None, None, ("uscc.format",))
    try:
        return _uscc(s)
    except Exception:
        return CreditCode(None, False, None, None, ("uscc.format", "standardise.error"))


# --- Hong Kong and Taiwan identity cards --------------------------------------------------------------

class RegionalId(NamedTuple):
    value: str | None        # normalised: 'A1234563' (HK, check digit without brackets) / 'A123456789' (TW)
    valid: bool
    gender: str | None       # TW only: 'M' | 'F' (second character 1 / 2)
    flags: tuple[str, ...]


_HKID_RE = re.compile(r"^([A-Z]{1,2})(\d{6})\(?([0-9A])\)?$")
_TWID_RE = re.compile(r"^([A-Z])([12])(\d{8})$")
# Taiwan: letter → two-digit area number (not alphabetical: I, O, W, X, Y, Z were added later).
_TW_LETTERS = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36), strict=True))


@lru_cache(maxsize=20_000)
def _hkid(s: str) -> RegionalId:
    t = _SEP_RE.sub("", normalize_text(s)).upper()
    m = _HKID_RE.match(t)
    if not m:
        return RegionalId(None, False, None, ("hk_id.format",))
    letters, digits, check = m.groups()
    chars = (" " + letters if len(letters) == 1 else letters) + digits
    # Space (single-letter IDs) = 36, A–Z = 10–35, digits as such; weights 9..2; check = mod 11, 10 → 'A'.
    total = sum((36 if c == " " else int(c, 36)) * w for c, w in zip(chars, range(9, 1, -1), strict=True))
    expected = (11 - total % 11) % 11
    ok = check == ("A" if expected == 10 else str(expected))
    value = letters + digits + check
    return RegionalId(value, ok, None, () if ok else ("hk_id.checksum",))


def validate_hk_id(raw: object) -> RegionalId:
    """Validate a Hong Kong identity card number ('A123456(3)'). Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return RegionalId(None, False, None, ("hk_id.missing",))
    if len(s) > 64:
        return RegionalId(None, False, None, ("hk_id.format",))
    try:
        return _hkid(s)
    except Exception:
        return RegionalId(None, False, None, ("hk_id.format", "standardise.error"))


@lru_cache(maxsize=20_000)
def _twid(s: str) -> RegionalId:
    t = _SEP_RE.sub("", normalize_text(s)).upper()
    m = _TWID_RE.match(t)
    if not m:
        return RegionalId(None, False, None, ("tw_id.format",))
    letter, sex, rest = m.groups()
    area = _TW_LETTERS[letter]
    digits = [int(c) for c in sex + rest]
    total = area // 10 + (area % 10) * 9 + sum(d * w for d, w in zip(digits[:8], range(8, 0, -1), strict=True))
    ok = (total + digits[8]) % 10 == 0
    return RegionalId(t, ok, "M" if sex == "1" else "F", () if ok else ("tw_id.checksum",))


def validate_tw_id(raw: object) -> RegionalId:
    """Validate a Taiwan national identification number ('A123456789'); returns the encoded gender.
    Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return RegionalId(None, False, None, ("tw_id.missing",))
    if len(s) > 64:
        return RegionalId(None, False, None, ("tw_id.format",))
    try:
        return _twid(s)
    except Exception:
        return RegionalId(None, False, None, ("tw_id.format", "standardise.error"))
