"""Dates → ``datetime.date``.

The common shapes (ISO, 1985/3/7, 19850307, 1985年3月7日, 85年3月7日, 一九八五年三月七日, 07/03/1985,
1985.03.07, 7 Mar 1985, March 7, 1985) go through precompiled regexes; everything else (RFC 2822,
07-Mar-85 …) falls back to ``dateutil``. Datetime strings keep their *written* calendar date (no time-zone shift: a birth date or
an order date written as ``1985-03-07T23:30:00-05:00`` means the 7th to the person who wrote it).
"""

from __future__ import annotations

import datetime as _dt
import re
from functools import lru_cache
from typing import NamedTuple

from dateutil import parser as _du_parser

from hub.standardise.text import as_str, normalize_text

MIN_YEAR = 1900
MAX_YEAR = 2100
_MAX_DATE_LEN = 64


class ParsedDate(NamedTuple):
    value: _dt.date | None
    flags: tuple[str, ...]


_TIME_TAIL = r"(?:[T\s_]+\d{1,2}[:时時]\d{1,2}(?:[:分]\d{1,2}(?:[.,]\d+)?秒?)?\s*(?:Z|[+-]\d{2}:?\d{2}|[A-Za-z]{1,5})?)?"
# year-first: 1985-03-07, 1985/3/7, 1985.03.07, 1985 3 7, 1985年3月7日 (+ optional time)
_YMD_RE = re.compile(r"^(\d{4})\s*[-/.年\s]\s*(\d{1,2})\s*[-/.月\s]\s*(\d{1,2})\s*[日号號]?" + _TIME_TAIL + r"$")
# compact: 19850307 (+ optional time as 19850307T101500 or 19850307101500)
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?\d{4,6}(?:Z)?)?$")
# day/month first: 07/03/1985, 7.3.1985, 07-03-1985 (+ optional time); order decided by `dayfirst`
_XXY_RE = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})" + _TIME_TAIL + r"$")
# English month names: "7 Mar 1985", "7th of March 1985", "March 7, 1985". dateutil parses these too,
# but ~50× slower (and twice, see `_dateutil`), and they are frequent in web-shop exports.
_MONTHS = {
    name: i
    for i, names in enumerate(
        ("jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july",
         "aug august", "sep sept september", "oct october", "nov november", "dec december"),
        start=1,
    )
    for name in names.split()
}
_DMY_NAME_RE = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([a-z]{3,9})\.?,?\s+(\d{4})$")
_MDY_NAME_RE = re.compile(r"^([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$")
# Anything that looks like a date but has a 2-digit year goes to dateutil (it pivots the century).

# Chinese-numeral dates (contracts, ID-card OCR): 一九八五年三月七日, 二〇〇一年十二月三十一日.
_CN_DIGITS = {"〇": 0, "零": 0, "○": 0, "Ｏ": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_DATE_RE = re.compile(r"^([〇零○一二三四五六七八九]{4})年([一二三四五六七八九十]{1,2})月([一二三四五六七八九十]{1,3})[日号號]?$")
# Two-digit year with 年: 85年3月7日
_YY_CN_RE = re.compile(r"^(\d{2})年(\d{1,2})月(\d{1,2})[日号號]?$")
# MySQL/legacy "zero dates": not a calendar date (date.impossible), tagged date.zero because they
# usually stand for "no date" and a caller may prefer to treat them as missing.
_ZERO_DATE_RE = re.compile(r"^0{4}-0{2}-0{2}(?:[ T]0{2}:0{2}(?::0{2}(?:\.0+)?)?)?$")


def _cn_small_number(s: str) -> int:
    """十 → 10, 十二 → 12, 二十 → 20, 二十七 → 27, 七 → 7."""
    if "十" not in s:
        return _CN_DIGITS[s] if len(s) == 1 else -1
    tens, _, units = s.partition("十")
    t = _CN_DIGITS.get(tens, -100) if tens else 1
    u = _CN_DIGITS.get(units, -100) if units else 0
    return t * 10 + u  # negative for malformed input → date.impossible


_MISSING = ParsedDate(None, ("date.missing",))
_ZERO = ParsedDate(None, ("date.impossible", "date.zero"))
_UNPARSEABLE = ParsedDate(None, ("date.unparseable",))
_IMPOSSIBLE = ParsedDate(None, ("date.impossible",))
_DEFAULT_A = _dt.datetime(1904, 1, 1)
_DEFAULT_B = _dt.datetime(1908, 2, 2)


def _make(y: int, m: int, d: int) -> ParsedDate:
    try:
        value = _dt.date(y, m, d)
    except ValueError:  # 1985-02-30, month 13 …
        return _IMPOSSIBLE
    return ParsedDate(value, ())


def _dateutil(s: str, dayfirst: bool) -> ParsedDate:
    try:
        a = _du_parser.parse(s, default=_DEFAULT_A, dayfirst=dayfirst)
        # A second parse with a different default tells us whether day/month/year were really present
        # ("March 1985" would otherwise silently become 1985-03-01).
        b = _du_parser.parse(s, default=_DEFAULT_B, dayfirst=dayfirst)
    except (ValueError, OverflowError) as e:
        if "out of range" in str(e) or "must be in" in str(e):
            return _IMPOSSIBLE
        return _UNPARSEABLE
    except Exception:
        return _UNPARSEABLE
    if a.date() != b.date():
        return ParsedDate(None, ("date.unparseable", "date.partial"))
    return ParsedDate(a.date(), ())


@lru_cache(maxsize=100_000)
def _parse(s: str, dayfirst: bool) -> ParsedDate:
    t = normalize_text(s)
    if not t:
        return _MISSING
    if _ZERO_DATE_RE.match(t):
        return _ZERO
    m = _YMD_RE.match(t) or _COMPACT_RE.match(t)
    if m:
        return _make(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _XXY_RE.match(t)
    if m:
        a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
        # An unambiguous part (> 12) decides the order whatever the source locale says.
        if a > 12 >= b:
            return _make(y, b, a)
        if b > 12 >= a:
            return _make(y, a, b)
        return _make(y, b, a) if dayfirst else _make(y, a, b)
    if "年" in t:
        m = _CN_DATE_RE.match(t)
        if m:
            year = int("".join(str(_CN_DIGITS[c]) for c in m.group(1)))
            return _make(year, _cn_small_number(m.group(2)), _cn_small_number(m.group(3)))
        m = _YY_CN_RE.match(t)
        if m:
            # Century pivot: a two-digit year not after this year's is this century's (05 → 2005).
            yy = int(m.group(1))
            year = 2000 + yy if yy <= _dt.date.today().year % 100 else 1900 + yy
            return _make(year, int(m.group(2)), int(m.group(3)))
    low = t.lower()
    m = _DMY_NAME_RE.match(low)
    if m and m.group(2) in _MONTHS:
        return _make(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
    m = _MDY_NAME_RE.match(low)
    if m and m.group(1) in _MONTHS:
        return _make(int(m.group(3)), _MONTHS[m.group(1)], int(m.group(2)))
    if not any(c.isdigit() for c in t):
        return _UNPARSEABLE  # "unknown", "N/A", "不详": no need to wake dateutil
    return _dateutil(t, dayfirst)


def _check_range(p: ParsedDate, birth: bool, today: _dt.date | None) -> ParsedDate:
    v = p.value
    if v is None:
        return p
    if v.year < MIN_YEAR or v.year > MAX_YEAR:
        return _IMPOSSIBLE
    if birth and v > (today or _dt.date.today()):
        return ParsedDate(None, ("date.impossible", "date.future"))
    return p


def standardise_date(
    raw: object, *, dayfirst: bool = False, birth: bool = False, today: _dt.date | None = None
) -> ParsedDate:
    """Parse a date written in any usual way.

    ``dayfirst`` is the source locale's order for ``07/03/1985`` (True: 7 March, e.g. UK/DE/FR sources;
    False: July 3rd, US sources). ``birth=True`` also rejects dates in the future. Years outside
    1900–2100 are ``date.impossible``. Never raises.
    """
    if raw is None:
        return _MISSING
    if isinstance(raw, _dt.datetime):
        return _check_range(ParsedDate(raw.date(), ()), birth, today)
    if isinstance(raw, _dt.date):
        return _check_range(ParsedDate(raw, ()), birth, today)
    s = as_str(raw)
    if s is None or not s.strip():
        return _MISSING
    if len(s) > _MAX_DATE_LEN:
        return _UNPARSEABLE
    try:
        p = _parse(s, bool(dayfirst))
    except Exception:  # defensive: dateutil on pathological input
        return ParsedDate(None, ("date.unparseable", "standardise.error"))
    return _check_range(p, birth, today)


def standardise_birth_date(
    raw: object, *, dayfirst: bool = False, today: _dt.date | None = None
) -> ParsedDate:
    """`standardise_date` with the birth-date rules (1900 ≤ year, not in the future)."""
    return standardise_date(raw, dayfirst=dayfirst, birth=True, today=today)
