"""Phone numbers → E.164 via Google's libphonenumber port (`phonenumbers`)."""

from __future__ import annotations

import re
import traceback
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType

from hub.standardise.placeholders import is_placeholder_text, phone_placeholder
from hub.standardise.text import as_str, normalize_text

# Sources without a configured region are Chinese (the hub's main market).
DEFAULT_REGION = "CN"
_MAX_PHONE_LEN = 128


class Phone(NamedTuple):
    e164: str | None            # '+8613800138000'; None when invalid/missing
    kind: str | None            # 'mobile' | 'fixed' | 'voip' | 'other'
    extension: str | None
    region: str | None          # ISO 3166 alpha-2 of the number ('CN'), not of the source
    flags: tuple[str, ...]


_KIND = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    # US/CA numbers cannot be told apart; they are landline-shaped for matching purposes.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed",
    PhoneNumberType.VOIP: "voip",
}

# Chinese extension markers (转 = "transfer to", 分机 = "extension") → something libphonenumber parses.
_CN_EXT_RE = re.compile(r"\s*(?:转|分机|分機|內線|内线)\s*")
# Labels people type into phone fields: "Tel:", "手机：", "Mobile".
_LABEL_RE = re.compile(r"^\s*(?:tel|phone|mobile|mob|cell|fax|手机|电话|電話|手機|座机|传真)\s*[:.]?\s*", re.I)

# Fast path for Chinese mobiles, the bulk of the hub's numbers. Validity comes from libphonenumber's
# own metadata (the CN mobile pattern), so it says exactly what `is_valid_number` would say.
_CN_MOBILE_RE = re.compile(
    "(?:" + phonenumbers.PhoneMetadata.metadata_for_region("CN").mobile.national_number_pattern + ")"
)
_SEPARATORS_RE = re.compile(r"[\s\-().\u00a0/]+")
_CN_MOBILE_SHAPE_RE = re.compile(r"^(?:\+86|0086|86)?(1\d{10})$")

_MISSING = Phone(None, None, None, None, ("phone.missing",))
_INVALID = Phone(None, None, None, None, ("phone.invalid",))
_INVALID_POSSIBLE = Phone(None, None, None, None, ("phone.invalid", "phone.possible"))
_PLACEHOLDER = Phone(None, None, None, None, ("phone.placeholder",))


# Regions whose own international prefix is 00: libphonenumber already handles 00 for them.
_00_REGIONS_SKIP = frozenset({"CN", "DE", "GB", "FR", "IT", "ES", "NL", "CH", "AT", "HK", "MO", "TW", "IN"})


def _clear_frames(exc: BaseException | None) -> None:
    """Drop the locals of the finished frames of ``exc``'s traceback and of the exceptions it arose from."""
    while exc is not None:
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__


def _parse_typed(s: str, region: str) -> tuple[phonenumbers.PhoneNumber | None, int, Phone, str | None]:
    """Parse and type a number: (number, type, _, the number's own region), or (None, _, Phone-with-flags, _)
    when it is not a valid number. The region is returned because working it out is half of libphonenumber's
    cost for a +1 number (it tries every NANP region's patterns)."""
    try:
        num = phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException as exc:
        # parse keeps an exception it caught in a local (sys.exc_info()) and raises again: that frame and the
        # traceback are a cycle holding every caller's frame until the cyclic collector runs (in staging: a
        # read's mapped rows, kept through the pass that should have freed them)
        _clear_frames(exc)
        return None, PhoneNumberType.UNKNOWN, _INVALID, None
    # `number_type` is UNKNOWN exactly when `is_valid_number` is False (both resolve the number's own
    # region and run the same type patterns); calling it once halves libphonenumber's work.
    num_region = phonenumbers.region_code_for_number(num)
    ntype = phonenumbers.number_type(num) if num_region else PhoneNumberType.UNKNOWN
    if ntype == PhoneNumberType.UNKNOWN:
        if phonenumbers.is_possible_number(num):
            # Right length but unassigned range: often a typo; callers may want to look at it.
            return None, ntype, _INVALID_POSSIBLE, num_region
        return None, ntype, _INVALID, num_region
    return num, ntype, _INVALID, num_region


@lru_cache(maxsize=200_000)
def _standardise_phone(raw: str, region: str) -> Phone:
    s = normalize_text(raw)  # full-width digits → ASCII
    if not s:
        return _MISSING
    s = _LABEL_RE.sub("", s)
    compact = _SEPARATORS_RE.sub("", s)
    m = _CN_MOBILE_SHAPE_RE.match(compact)
    if m and (region == "CN" or compact.startswith("+")):
        nsn = m.group(1)
        if _CN_MOBILE_RE.fullmatch(nsn):
            return Phone("+86" + nsn, "mobile", None, "CN", () if region == "CN" else ("phone.foreign",))
    s = _CN_EXT_RE.sub(" ext. ", s)
    num, ntype, invalid, num_region = _parse_typed(s, region)
    if num is None and compact.startswith("00") and region not in _00_REGIONS_SKIP:
        # "0013125800836" from a US source: 00 is the international prefix almost everywhere except
        # North America (011), and people write it regardless of where the source is.
        num, ntype, invalid2, num_region = _parse_typed("+" + compact[2:], region)
        invalid = invalid if num is None else invalid2
    if num is None:
        return invalid
    e164 = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    kind = _KIND.get(ntype, "other")
    flags = ()
    if num_region and num_region != region:
        flags = ("phone.foreign",)
    return Phone(e164, kind, num.extension or None, num_region, flags)


# Several numbers in one field ("138 0013 8000; 139 1234 5678", "座机 021-62345678 / 手机 13800138000").
_MULTI_SEP_RE = re.compile(r"\s*(?:[;,，；、|]|\s/\s|\sor\s|或)\s*")


def _first_valid(s: str, region: str) -> Phone:
    parts = [p for p in _MULTI_SEP_RE.split(s) if p.strip()]
    if len(parts) < 2:
        return _standardise_phone(s, region)
    valid = [p for p in (_standardise_phone(part, region) for part in parts) if p.e164]
    if not valid:
        return _INVALID
    # A mobile identifies a person better than a shared switchboard line.
    best = next((p for p in valid if p.kind == "mobile"), valid[0])
    return best._replace(flags=(*best.flags, "phone.multiple"))


def standardise_phone(raw: object, region: str | None = DEFAULT_REGION) -> Phone:
    """Parse a phone number written any usual way into E.164.

    ``region`` is the default region of the *source* (used for numbers written without country code).
    Never raises: invalid input gives ``Phone(e164=None, ..., flags=('phone.invalid',))``. A field
    holding several numbers gives the first valid mobile (else the first valid one), flagged ``phone.multiple``.
    A dummy (``13800000000``, ``0000000``, ``1234567``) is no number: ``flags=('phone.placeholder',)``; a number
    from a range reserved for fiction (555-0100..0199) keeps its E.164, flagged ``phone.fictional``.
    """
    s = as_str(raw)
    if s is None:
        return _MISSING
    return _standardise_text(s, (region or DEFAULT_REGION).upper())


@lru_cache(maxsize=200_000)
def _standardise_text(s: str, reg: str) -> Phone:
    # the whole of standardise_phone on text, cached: a number recurs across sources and on every call it
    # makes, and the placeholder and multi-number checks cost as much as the cached parse itself
    if not s.strip():
        return _MISSING
    if len(s) > _MAX_PHONE_LEN:
        return _INVALID
    if is_placeholder_text(s):  # "k.A.", "keine", "-" typed where no number was known
        return _PLACEHOLDER
    try:
        p = _first_valid(s, reg) if _MULTI_SEP_RE.search(s) else _standardise_phone(s, reg)
        grade = phone_placeholder(p.e164) or phone_placeholder(s)
        if grade == "phone.placeholder" and p.e164:
            return _PLACEHOLDER
        if grade:
            return p._replace(flags=(*p.flags, grade))
        return p
    except Exception:  # libphonenumber edge cases on pathological input: report, never raise
        return Phone(None, None, None, None, ("phone.invalid", "standardise.error"))


def phone_e164(raw: object, region: str | None = DEFAULT_REGION) -> str | None:
    """Shortcut: the E.164 string or None."""
    return standardise_phone(raw, region).e164
