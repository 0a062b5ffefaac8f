"""Turn a raw customer frame into matching keys (integer codes + unique value tables).

Every standardisation runs on *unique* values only (values repeat a lot in customer data), then the
results are mapped back with integer codes, so 1M rows cost what their distinct values cost.

Standardisers come from :mod:`hub.standardise` when it provides them; the ``_fallback_*`` functions
below are minimal private stand-ins (marked TO BE REPLACED) used only when that package lacks a function.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd

from hub.dedupe.arrays import distinct
from hub.dedupe.parallel import fork_map, worker_count

MAX_SLOTS = 4  # further values per record read from phone_2..phone_5 / email_2..email_5
ALTERNATE_COLUMN = re.compile(r"^(phone|email)_([2-9])$")
# the keys a further phone / e-mail has of its own (everything comparing and blocking identifiers reads)
ALTERNATE_KEYS = ("phone", "phone_tail", "phone_reserved", "email", "email_reserved", "email_local",
                  "email_domain", "email_stem", "email_digits", "email_is_name")

# a record's further addresses (a shop's billing and shipping address, an ERP party's several addresses) from
# street_2 / city_2 / region_2 / postal_code_2 … _4: compared as the best agreement of any two of the records'
# addresses; the first address alone is blocked on
ADDRESS_SLOTS = 3
ADDRESS_COLUMN = re.compile(r"^(street|city|region|postal_code)_([2-9])$")
ADDRESS_KEYS = ("street", "street_han", "street_base", "street_number", "street_group", "city", "region", "postcode")

CANONICAL_COLUMNS = (
    "source", "full_name", "given_name", "family_name", "company", "email", "phone", "birth_date",
    "gender", "national_id", "street", "city", "region", "postal_code", "country",
)
# the kind of a record's national id, when the caller validated it (the hub's staging does): a checksummed
# resident id or an SSN that passed the issuing rules is one person's, and two different ones are two people.
# Optional: without it, an 18-character id that passes the GB 11643 checksum is taken as validated.
NATIONAL_ID_TYPE_COLUMN = "national_id_type"
VALIDATED_ID_TYPES = frozenset({"cn_resident", "us_ssn"})


@dataclass
class KeyColumn:
    """One matching key: per-record integer code (-1 = missing) and the table of distinct values."""

    codes: np.ndarray  # int32, len n
    uniques: np.ndarray  # object array of str

    def values(self) -> np.ndarray:
        out = np.empty(len(self.codes), dtype=object)
        ok = self.codes >= 0
        out[ok] = self.uniques[self.codes[ok]]
        out[~ok] = ""
        return out

    def counts(self) -> np.ndarray:
        """Frequency of each distinct value (for term-frequency adjustment)."""
        ok = self.codes[self.codes >= 0]
        return np.bincount(ok, minlength=len(self.uniques))


@dataclass
class Prepared:
    n: int
    record_id: np.ndarray
    source: np.ndarray  # int32 codes of the source column (all 0 when absent)
    keys: dict[str, KeyColumn] = field(default_factory=dict)
    source_names: np.ndarray = field(default_factory=lambda: np.array([""], dtype=object))  # code -> name
    # records whose identifier was set aside, per reason: "phone_unusable" (invalid, or a placeholder such
    # as 13800000000 or noemail@…) and "phone_shared" (held by too many different people to be anyone's own)
    set_aside: dict[str, int] = field(default_factory=dict)
    # a record's further phones and e-mails (input columns phone_2, email_2 …): one dict per slot holding the
    # identifier keys (ALTERNATE_KEYS) of that slot, coded in the same value tables as the first value's keys
    slots: list[dict[str, KeyColumn]] = field(default_factory=list)
    # a record's further addresses (street_2, city_2 …): one dict per slot holding the address keys
    # (ADDRESS_KEYS), coded in the same value tables as the first address's keys
    address_slots: list[dict[str, KeyColumn]] = field(default_factory=list)
    # the per-record standardised values (``prepare(..., capture=True)``; see STANDARDISED_NAME_PARTS)
    standardised: pd.DataFrame | None = None
    # per record: its national id (the ``national_id`` key, not set aside) is a validated one
    # (``VALIDATED_ID_TYPES``): two records whose validated ids differ are two people (engine.id_conflict)
    validated_id: np.ndarray | None = None

    def key(self, name: str) -> KeyColumn:
        return self.keys[name]

    def value_counts(self, name: str) -> np.ndarray:
        """Frequency of each distinct value of ``name`` over the first and the further values of every record."""
        cnt = self.key(name).counts()
        for slot in self.slots:
            if name in slot:
                cnt = cnt + slot[name].counts()
        return cnt


# --------------------------------------------------------------------------------------------
# Minimal private standardisers — TO BE REPLACED by hub.standardise where it offers the function.
# --------------------------------------------------------------------------------------------
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_NUMBERS = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^\w\s,]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
_TITLES = {"mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam", "jr", "sr", "ii", "iii", "iv", "先生", "女士"}
_COMPOUND_SURNAMES = {
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "夏侯", "尉迟", "公孙", "长孙", "宇文",
    "司徒", "端木", "西门", "南宫", "独孤", "百里", "呼延", "轩辕", "申屠", "太史", "澹台",
}
_SURNAME_READING = {
    "单": "shan", "曾": "zeng", "区": "ou", "解": "xie", "仇": "qiu", "朴": "piao", "查": "zha",
    "盖": "ge", "乐": "yue", "覃": "qin", "翟": "zhai", "秘": "bi", "缪": "miao", "尉": "yu", "长": "zhang",
}
# Frequent Chinese surnames in pinyin: a romanised token in this set is most likely the family name.
_CN_SURNAME_PINYIN = set(
    "wang li zhang liu chen yang huang zhao wu zhou xu sun ma zhu hu guo he gao lin luo zheng liang xie song "
    "tang han feng deng cao peng zeng xiao tian dong yuan pan yu jiang cai jia ding wei xue ye yan lu du dai "
    "xia zhong fu qin shen cui ren kang mao qiu jin shi bai tan lai zou hou long duan hao kong shao meng wan "
    "gu qian yin yi chang qiao he lei fan fang shan ouyang situ zhuge shangguan".split()
)
_NICKNAMES = {
    "bob": "robert", "rob": "robert", "bobby": "robert", "robbie": "robert", "bill": "william",
    "will": "william", "billy": "william", "liam": "william", "liz": "elizabeth", "beth": "elizabeth",
    "betty": "elizabeth", "lizzie": "elizabeth", "eliza": "elizabeth", "jim": "james", "jimmy": "james",
    "jamie": "james", "mike": "michael", "mick": "michael", "mikey": "michael", "tom": "thomas",
    "tommy": "thomas", "dick": "richard", "rick": "richard", "rich": "richard", "ricky": "richard",
    "dave": "david", "davy": "david", "dan": "daniel", "danny": "daniel", "joe": "joseph", "joey": "joseph",
    "chris": "christopher", "kate": "katherine", "katie": "katherine", "kathy": "katherine",
    "cathy": "catherine", "jenny": "jennifer", "jen": "jennifer", "sue": "susan", "susie": "susan",
    "tony": "anthony", "ted": "edward", "eddie": "edward", "ed": "edward", "ned": "edward",
    "matt": "matthew", "andy": "andrew", "drew": "andrew", "steve": "stephen", "steven": "stephen",
    "sam": "samuel", "ben": "benjamin", "alex": "alexander", "nick": "nicholas", "pat": "patricia",
    "patty": "patricia", "peggy": "margaret", "maggie": "margaret", "meg": "margaret", "jack": "john",
    "johnny": "john", "jon": "john", "greg": "gregory", "jeff": "jeffrey", "larry": "lawrence",
    "charlie": "charles", "chuck": "charles", "hank": "henry", "harry": "henry", "fred": "frederick",
    "frank": "francis", "al": "albert", "abby": "abigail", "becky": "rebecca", "vicky": "victoria",
    "debbie": "deborah", "deb": "deborah", "mandy": "amanda", "pam": "pamela", "ron": "ronald",
    "ronnie": "ronald", "don": "donald", "doug": "douglas", "ken": "kenneth", "kenny": "kenneth",
    "tim": "timothy", "josh": "joshua", "nate": "nathan", "zach": "zachary", "gerry": "gerald",
    "jerry": "gerald", "phil": "philip", "walt": "walter", "wes": "wesley", "len": "leonard",
}


@lru_cache(maxsize=1)
def _t2s() -> Callable[[str], str]:
    import opencc

    return opencc.OpenCC("t2s").convert


def _nfkc_lower(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).strip().lower()
    # strip accents on Latin letters (José -> jose) without touching hanzi
    if not _HAN.search(s) and not s.isascii():
        s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    return s


def _han_pinyin(s: str, surname: bool = False) -> str:
    from pypinyin import Style, lazy_pinyin

    if surname and s in _SURNAME_READING:
        return _SURNAME_READING[s]
    return "".join(lazy_pinyin(s, style=Style.NORMAL, errors="ignore"))


def _roman(s: str, surname: bool = False) -> str:
    """Latin key of a name part: pinyin for hanzi, letters only otherwise."""
    if not s:
        return ""
    if _HAN.search(s):
        s = _t2s()(s)
        return _han_pinyin("".join(_HAN.findall(s)), surname)
    return re.sub(r"[^a-z]", "", s)


def _fallback_person_name(full: str, given: str, family: str) -> tuple[str, str, str]:
    """(family_key, given_key, given_canonical). TO BE REPLACED by hub.standardise names."""
    full, given, family = _nfkc_lower(full), _nfkc_lower(given), _nfkc_lower(family)
    if not given and not family and full:
        if _HAN.search(full):
            han = "".join(_HAN.findall(_t2s()(full)))
            cut = 2 if han[:2] in _COMPOUND_SURNAMES else 1
            family, given = han[:cut], han[cut:]
        else:
            full = _NON_WORD.sub(" ", full)
            if "," in full:
                family, _, given = full.partition(",")
            else:
                toks = [t for t in _SPACES.split(full.replace(",", " ")) if t and t not in _TITLES]
                if len(toks) == 1:
                    given = toks[0]
                elif toks:
                    if toks[0] in _CN_SURNAME_PINYIN and toks[-1] not in _CN_SURNAME_PINYIN:
                        family, given = toks[0], "".join(toks[1:])
                    else:
                        given, family = toks[0], toks[-1]
    fam = _roman(family, surname=True)
    giv = _roman(given.split()[0] if given and not _HAN.search(given) and " " in given.strip() else given)
    return fam, giv, _NICKNAMES.get(giv, giv)


_PHONE_DIGITS = re.compile(r"\D+")


def _fallback_phone(raw: str) -> str:
    """Digits-only phone key with CN country/trunk prefixes removed. TO BE REPLACED by hub.standardise."""
    s = unicodedata.normalize("NFKC", raw)
    s = s.split("ext")[0].split("x")[0] if "x" in s.lower() else s
    d = _PHONE_DIGITS.sub("", s)
    if d.startswith("00"):
        d = d[2:]
    if d.startswith("86") and len(d) in (12, 13):
        d = d[2:]
    if d.startswith("0") and len(d) > 6:
        d = d[1:]
    return d if len(d) >= 6 else ""


_GMAIL = {"gmail.com", "googlemail.com"}


def _fallback_email(raw: str) -> str:
    s = unicodedata.normalize("NFKC", raw).strip().lower()
    if "@" not in s:
        return ""
    local, _, dom = s.rpartition("@")
    local = local.split("+")[0]
    if dom in _GMAIL:
        local, dom = local.replace(".", ""), "gmail.com"
    return f"{local}@{dom}" if local and "." in dom else ""


_DATE_SEP = re.compile(r"[^\d]+")
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}


def _fallback_date(raw: str) -> str:
    """YYYYMMDD string. Keeps an 8-digit raw value even when it is not a valid date: a typo'd
    birth date still carries evidence (FEBRL-style data). TO BE REPLACED by hub.standardise dates."""
    s = unicodedata.normalize("NFKC", raw).strip().lower()
    if not s:
        return ""
    if s.isdigit():
        # a typo'd YYYYMMDD (digit inserted/dropped) is still one edit from the true date
        return s if 7 <= len(s) <= 9 else ""
    s = s.split("t")[0] if re.match(r"\d{4}-\d\d-\d\dt", s) else s.split(" ")[0] if re.match(r"\d{4}\D", s) else s
    mon = next((v for k, v in _MONTHS.items() if k in s), None)
    parts = [p for p in _DATE_SEP.split(s) if p]
    try:
        if mon is not None and len(parts) == 2:
            a, b = int(parts[0]), int(parts[1])
            y, d = (a, b) if a > 31 else (b, a)
            m = mon
        elif len(parts) == 3:
            a, b, c = (int(p) for p in parts)
            if len(parts[0]) == 4:
                y, m, d = a, b, c
            elif len(parts[2]) == 4:
                # day-first unless that is impossible (07/03/1985 = 7 March)
                y, d, m = c, a, b
                if m > 12 >= d:
                    d, m = m, d
            else:
                return ""
        else:
            return ""
    except ValueError:
        return ""
    if not (1 <= m <= 12 and 1 <= d <= 31 and 1850 <= y <= 2100):
        return ""
    return f"{y:04d}{m:02d}{d:02d}"


_ALNUM = re.compile(r"[^0-9A-Z]")


def _fallback_national_id(raw: str) -> str:
    return _ALNUM.sub("", unicodedata.normalize("NFKC", raw).upper())


_STREET_ABBR = {
    "street": "st", "st.": "st", "road": "rd", "avenue": "ave", "av": "ave", "drive": "dr", "place": "pl",
    "court": "ct", "crescent": "cres", "lane": "ln", "boulevard": "blvd", "highway": "hwy", "terrace": "tce",
    "parade": "pde", "circuit": "cct", "close": "cl", "square": "sq", "north": "n", "south": "s",
    "east": "e", "west": "w", "apartment": "apt", "unit": "u", "號": "号",
}


def _fallback_street(raw: str) -> str:
    s = _t2s()(_nfkc_lower(raw)) if _HAN.search(raw) else _nfkc_lower(raw)
    s = _NON_WORD.sub(" ", s).replace(",", " ")
    return " ".join(_STREET_ABBR.get(t, t) for t in s.split())


_PLACE_SUFFIX = re.compile(r"(市|省|区|县|自治区|特别行政区)$")


def _fallback_place(raw: str) -> str:
    s = _nfkc_lower(raw)
    if _HAN.search(s):
        s = _PLACE_SUFFIX.sub("", _t2s()(s).replace(" ", ""))
        return _han_pinyin(s)
    return " ".join(_NON_WORD.sub(" ", s).replace(",", " ").split())


def _fallback_postcode(raw: str) -> str:
    return _ALNUM.sub("", unicodedata.normalize("NFKC", raw).upper())


_GENDER = {"m": "m", "male": "m", "man": "m", "男": "m", "f": "f", "female": "f", "woman": "f", "女": "f",
           "w": "f", "mr": "m", "mrs": "f", "ms": "f"}


def _fallback_gender(raw: str) -> str:
    return _GENDER.get(_nfkc_lower(raw), "")


_COMPANY_SUFFIX = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|集团|\b(co|ltd|inc|llc|gmbh|ag|sa|plc|corp|company|limited)\b\.?)", re.I
)


def _fallback_company(raw: str) -> str:
    s = _t2s()(_nfkc_lower(raw)) if _HAN.search(raw) else _nfkc_lower(raw)
    s = _COMPANY_SUFFIX.sub(" ", s)
    return " ".join(_NON_WORD.sub(" ", s).replace(",", " ").split())


# --------------------------------------------------------------------------------------------
# Adapters onto hub.standardise (used when present; they fall back per value on failure).
# --------------------------------------------------------------------------------------------
def _std(name: str) -> Callable | None:
    try:
        import hub.standardise as std  # noqa: PLC0415
    except Exception:  # the package may be mid-edit by its owner; the fallback keeps us running
        return None
    return getattr(std, name, None)


# family key, given key, given canonical, family hanzi, given hanzi, organisation key (the name is a company's)
NameParts = tuple[str, str, str, str, str, str]
_LETTERS = re.compile(r"[^a-z]")


def _fallback_name_parts(full: str, given: str, family: str) -> NameParts:
    return (*_fallback_person_name(full, given, family), "", "", "")


def _is_handle(r) -> bool:
    """A hanzi "name" that is a screen name rather than a person's name: its first character is no known
    surname, or a one-character surname is followed by three or more characters (Chinese given names have
    one or two)."""
    flags = getattr(r, "flags", ()) or ()
    if "name.familiar" in flags:
        return False
    if "name.unknown_surname" in flags:
        return True
    return len(r.family or "") == 1 and len(r.given or "") >= 3


def _person_name_fn() -> Callable[[str, str, str], NameParts]:
    """Latin matching keys of a name (pinyin for hanzi, either order resolved by the standardiser) plus
    its simplified hanzi parts when written in hanzi: 王伟 and 王薇 share the key "wang wei" but are
    different names, which only the hanzi can tell."""
    fn = _std("standardise_person_name")
    if fn is None:
        return _fallback_name_parts

    def run(full: str, given: str, family: str) -> NameParts:
        try:
            r = fn(full=full or None, given=given or None, family=family or None)
        except Exception:
            return _fallback_name_parts(full, given, family)
        if "name.organisation" in (getattr(r, "flags", ()) or ()):
            # ACME Trading GmbH, 华为技术有限公司: matched as an organisation (company name, ids, address)
            return "", "", "", "", "", _fallback_company(r.display or full or family or given)
        fam = _LETTERS.sub("", (getattr(r, "family_key", None) or "").lower())
        giv = _LETTERS.sub("", (getattr(r, "given_key", None) or "").lower())
        if not fam and not giv:
            return _fallback_name_parts(full, given, family)
        canon = _LETTERS.sub("", (getattr(r, "given_canonical", None) or giv).lower()) or giv
        if getattr(r, "script", None) == "han":
            if _is_handle(r):
                # a screen name (平安是福, 小太阳, 春梅_46): no surname to compare; the characters stand as one
                # given-name word, so 春梅 may still meet the given name of 熊春梅
                whole = fam + giv
                return "", whole, whole, "", (r.family or "") + (r.given or ""), ""
            return fam, giv, canon, r.family or "", r.given or "", ""
        return fam, giv, canon, "", "", ""

    return run


def _phone_fn() -> Callable[[str], str]:
    fn = _std("standardise_phone")
    if fn is None:
        return _fallback_phone

    def run(raw: str) -> str:
        try:
            r = fn(raw)
        except Exception:
            return _no_dummy_phone(_fallback_phone(raw))
        if "phone.placeholder" in (getattr(r, "flags", ()) or ()):
            return ""
        e164 = getattr(r, "e164", None) if not isinstance(r, str) else r
        if e164:
            return _e164_key(e164)
        return _no_dummy_phone(_fallback_phone(raw))

    return run


def _e164_key(e164: str) -> str:
    """The phone key of an E.164 number: its digits, without China's country code."""
    return e164.lstrip("+").removeprefix("86")


def _staged_phone_keys(values: list[str], staged: Collection[str], unverified: Collection[str] = ()
                       ) -> list[str | None]:
    """The phone keys of the ``values`` staging judged already, None for the others (standardised as usual).
    ``staged``: E.164 numbers staging gave. What ``_unless_placeholder(_phone_fn())`` gives such a number without
    asking the standardiser: as a valid number ``standardise_phone`` gives it back as it is (staging wrote it as
    ``format_number`` does: parsing and formatting it again is a round trip) and its key is read off it; as an
    invalid one (a number staged under another version of the standardiser or of libphonenumber) the fallback
    key, read off only where it is the same key. Dummies are left to the standardiser: it drops them.
    ``unverified``: numbers staging could not validate (its ``unverified_phones``, after ``_phone_pre``): their
    key is the fallback key (no dummy, no placeholder text), what the standardiser's "no number" gives. Staging
    asked in the source's region, which the engine does not know (it asks in the default one): its verdict
    stands, so a number is judged once, where its region is known."""
    from hub.standardise.placeholders import is_placeholder_text, phone_placeholder

    out: list[str | None] = []
    for v in values:
        if v not in staged:
            out.append(None if v not in unverified else "" if is_placeholder_text(v)
                       else _no_dummy_phone(_fallback_phone(v)))
            continue
        key = _e164_key(v)
        ok = (key != "" and _fallback_phone(v) == key and not is_placeholder_text(v)
              and phone_placeholder(v) != "phone.placeholder" and phone_placeholder(key) != "phone.placeholder")
        out.append(key if ok else None)
    return out


def _no_dummy_phone(digits: str) -> str:
    """The digit key unless it is a dummy (0000000, 1234567): a placeholder is a missing value."""
    from hub.standardise.placeholders import phone_placeholder

    return "" if phone_placeholder(digits) == "phone.placeholder" else digits


def _date_fn() -> Callable[[str], str]:
    fn = _std("standardise_birth_date")
    if fn is None:
        return _fallback_date

    def run(raw: str) -> str:
        try:
            d = getattr(fn(raw), "value", None)
        except Exception:
            d = None
        if d is not None:
            return f"{d.year:04d}{d.month:02d}{d.day:02d}"
        # impossible/unparseable: a typo'd YYYYMMDD still carries evidence (FEBRL-style data)
        return _fallback_date(raw)

    return run


_PHONE_FORMAT = re.compile(r"[\s\-().\u3000]+")


def _phone_pre(raw: str) -> str:
    """Formatting-only normalisation (spaces, dashes, brackets, 00 -> +); meaning is left to the standardiser."""
    s = _PHONE_FORMAT.sub("", raw)
    return "+" + s[2:] if s.startswith("00") else s


def _email_fn() -> Callable[[str], str]:
    fn = _std("email_key")
    if fn is None:
        return _fallback_email

    def run(raw: str) -> str:
        try:
            key = fn(raw)
        except Exception:
            return _fallback_email(raw)
        return key or ""

    return run


# --------------------------------------------------------------------------------------------
def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The column as strings ('' = missing), kept in pandas' compact string storage: converting
    1M x 15 values to Python objects would cost gigabytes."""
    if name not in frame.columns:
        return pd.Series([""] * len(frame), dtype=object)
    col = frame[name]
    if not pd.api.types.is_string_dtype(col.dtype):
        col = col.astype(str)
    return col.fillna("")


PARALLEL_MIN = 40_000  # distinct values below which standardising in one process is faster than forking
_WORKERS = 1  # set by prepare(); 1 = in this process


def _apply(fn: Callable, chunk: list) -> list:
    return [(fn(*v) if isinstance(v, tuple) else fn(v) if v else "") for v in chunk]


def _map_known(fn: Callable, values: list, known: Callable[[list], list] | None) -> list:
    """``_map(fn, values)``; ``known``: the results it knows already (None for the others), which are not
    standardised. Both run a chunk at a time in ``_WORKERS`` processes when there are many values (reading
    100k staged numbers' keys off them took 0.5 s in one process)."""
    if known is None:
        return _map(fn, values)
    return _chunked(functools.partial(_known_or_apply, fn, known), values)


def _known_or_apply(fn: Callable, known: Callable[[list], list], chunk: list) -> list:
    out = known(chunk)
    todo = [k for k, v in enumerate(out) if v is None]
    for k, v in zip(todo, _apply(fn, [chunk[k] for k in todo]), strict=True):
        out[k] = v
    return out


def _map(fn: Callable, values: list) -> list:
    """``fn`` over distinct values — in ``_WORKERS`` forked processes when there are many of them (phones,
    names and addresses are standardised value by value in Python)."""
    return _chunked(functools.partial(_apply, fn), values)


def _chunked(task: Callable[[list], list], values: list) -> list:
    """``task(values)`` for a task that maps a list value by value: in chunks on ``_WORKERS`` forked processes
    when there are ``PARALLEL_MIN`` values or more."""
    if _WORKERS < 2 or len(values) < PARALLEL_MIN:
        return task(values)
    size = -(-len(values) // (_WORKERS * 4))
    chunks = [values[k:k + size] for k in range(0, len(values), size)]
    return [x for part in fork_map(task, chunks, _WORKERS) for x in part]


def _unless_placeholder(fn: Callable[[str], str]) -> Callable[[str], str]:
    """``fn`` for a field where "n/a", "unknown", "-", "未知" mean "no value" (not for names: Na is a name)."""
    from hub.standardise.placeholders import is_placeholder_text

    def run(raw: str) -> str:
        return "" if is_placeholder_text(raw) else fn(raw)

    return run


def _national_id(raw: str) -> str:
    key = _fallback_national_id(raw)
    # 000000000, 123456789, XXXXXXXX: a dummy id is a missing one
    if len(set(key)) <= 1 or key in "0123456789012345678" or key in "9876543210987654321":
        return ""
    return key


def _checksummed_resident_id(key: str) -> bool:
    """An engine id key that is a GB 11643 resident id as staging writes it: 18 characters, checksum and birth
    date valid (a 15-digit legacy id is left out: its key differs from the same person's 18-digit one)."""
    if len(key) != 18:
        return False
    from hub.standardise import validate_cn_resident_id

    got = validate_cn_resident_id(key)
    return got.valid and got.value == key


def _validated_ids(frame: pd.DataFrame, col: KeyColumn) -> np.ndarray:
    """Per record: its id key is present and validated — declared of a validated kind, or (no kind declared)
    a checksummed resident id. An id declared of another kind ("other": unchecked) never is."""
    declared = _column(frame, NATIONAL_ID_TYPE_COLUMN).str.strip().str.lower().to_numpy(dtype=object)
    held = col.codes >= 0
    # the checksum only of the values some record holds without a declared kind (staging declares them all)
    by_value = np.zeros(max(len(col.uniques), 1), dtype=bool)
    for k in distinct(col.codes[held & (declared == "")]).tolist():
        by_value[k] = _checksummed_resident_id(str(col.uniques[k]))
    ok = np.where(declared == "", by_value[np.maximum(col.codes, 0)],
                  np.isin(declared, list(VALIDATED_ID_TYPES)))
    return held & ok


def _house_number(street: str) -> str:
    """The house number of a street written as one number and a name (17 market st, 南京东路339号 — the
    number of 号 whatever follows it); streets with more numbers (floor, room, unit) are left out."""
    m = _HAN_HOUSE.search(street)
    if m:
        return m.group(1)
    nums = _NUMBERS.findall(street)
    return nums[0] if len(nums) == 1 else ""


# a Chinese street line may start with its province / city / district (上海市黄浦区南京东路17号) and end with a
# building, floor or room (…17号3栋502室); a Western one may carry an apartment or unit
_HAN_ADMIN_PREFIX = re.compile(r"^(?:[\u4e00-\u9fff]{1,7}?(?:省|自治区|特别行政区|市))*(?:[\u4e00-\u9fff]{1,4}?(?:区|县))?")
_HAN_HOUSE = re.compile(r"(\d+)号")
_UNIT_TAIL = re.compile(r"[\s,]+(?:apt|apartment|unit|suite|ste|flat|fl|floor|room|rm|#)\.?\s*\w*\s*$")
_UNIT_HEAD = re.compile(r"^(?:apt|apartment|unit|suite|ste|flat|#)\.?\s*\w+[\s,]+")


def _street_key(raw: str) -> str:
    """Street key: a hanzi street without the division it starts with (上海市南京东路17号 = 南京东路17号)."""
    s = _fallback_street(raw)
    if _HAN.search(s):
        rest = _HAN_ADMIN_PREFIX.sub("", s, count=1)
        s = rest if len(rest) >= 3 else s
    return s


def _street_base(street: str) -> str:
    """The building a street line names, without room, floor, apartment or unit: 南京东路17号5室 and
    南京东路17号 are one building, 12 elm st apt 5 and 12 elm st one house."""
    m = _HAN_HOUSE.search(street)
    if m and _HAN.search(street):
        return street[:m.end()]
    return _UNIT_HEAD.sub("", _UNIT_TAIL.sub("", street))


SHARED_VALUE_NAMES = 6  # an identifier value held by records of this many different names is nobody's own
SAME_NAME_PART = 0.88  # Jaro-Winkler at which two name parts may be one person's name typed twice (Meyer / Meier)
MAX_NAMES_COMPARED = 40  # a value held by more different spellings than this is shared without comparing them


def _name_part_alike(a: str, b: str) -> bool:
    from rapidfuzz.distance import JaroWinkler

    return (not a or not b or a == b or ((len(a) == 1 or len(b) == 1) and a[0] == b[0])
            or JaroWinkler.normalized_similarity(a, b) >= SAME_NAME_PART)


def _family_alike(a: str, b: str) -> bool:
    """One family name typed twice: alike, one typo apart (Yuang / Huang), or a Cantonese / Wade-Giles spelling
    of the other (Lau / Liu, Chan / Chen)."""
    from rapidfuzz.distance import OSA

    from hub.standardise import surname_variants

    return (_name_part_alike(a, b) or (min(len(a), len(b)) >= 4 and OSA.distance(a, b) <= 1)
            or b in surname_variants(a) or a in surname_variants(b))


def _one_persons_names(a: tuple[str, str, str], b: tuple[str, str, str]) -> bool:
    """Could (family, given, given canonical) ``a`` and ``b`` be one person's name written twice: typos,
    nicknames, initials, the parts swapped or split elsewhere (WuWen Ming / 吴文鸣), a name run together? Lenient
    on purpose — only names that clearly disagree (Chen Wei / Zhang Wei, Chen Fang / Chen Jing, Julia
    Schneider / Julia Schmidt) say that two people hold a value."""
    (fa, ga, ca), (fb, gb, cb) = a, b
    if (not fa or not ga) or (not fb or not gb):  # one word: the other's part or its whole name run together
        wa, wb = fa + ga, fb + gb
        return any(_name_part_alike(x, y) for x in {wa, fa, ga} - {""} for y in {wb, fb, gb, gb + fb} - {""})
    if fa + ga in (fb + gb, gb + fb) or ga + fa in (fb + gb, gb + fb):
        return True
    given = ca == cb or _name_part_alike(ga, gb)
    return (_family_alike(fa, fb) and given) or (_family_alike(fa, gb) and _name_part_alike(ga, fb))


def _holders(a: tuple[str, str, str], b: tuple[str, str, str]) -> int:
    """0: one person's names; 1: one family's (the family name alike, the given names not: a household's
    landline or mailbox); 2: two families' (Chen Wei / Zhang Wei, Julia Schneider / Julia Schmidt)."""
    if _one_persons_names(a, b):
        return 0
    if not (a[0] and a[1] and b[0] and b[1]) or _family_alike(a[0], b[0]):
        return 1
    return 2


def _dates_of_two_people(a: str, b: str) -> bool:
    """Birth dates (YYYYMMDD) that one person's records would not carry: neither equal, nor one edit apart, nor
    a day/month swap — what ``compare.compare_dates`` calls two edits or far (restated here: compare imports this
    module; a test pins the two together)."""
    from rapidfuzz.distance import OSA

    if a == b or (len(a) == 8 and a[:4] + a[6:8] + a[4:6] == b):
        return False
    return OSA.distance(a, b) >= 2


def _set_aside_shared(col: KeyColumn, name_key: KeyColumn, names: np.ndarray | None = None,
                      name_parts: list[tuple[str, str, str]] | None = None, births: KeyColumn | None = None
                      ) -> tuple[KeyColumn, int]:
    """(key, records set aside). Missing where the value is a group's, not a person's: held by records of
    SHARED_VALUE_NAMES or more different names (a dummy such as 13800000000 on every party entered without a
    number, a switchboard), or — with ``names`` (per record an index into ``name_parts``, -1 = no person's
    name) — held by records of different families (a company's switchboard or team mailbox held by Chen Wei
    and Zhang Wei, Julia Schneider and Julia Schmidt): such a value says the records belong to one group, not
    that they are one person, and its difference from a person's own number says nothing either. A person's
    records holding one value under a typo'd, swapped, re-split or romanised name keep it, and so does one
    family's household (a landline of Chen Fang and Chen Jing: the given names disagree, which the
    comparison of given names weighs; a person's English and Chinese given names look the same).
    ``name_key``: the names' initials (a person's typo'd and swapped names share them: Jon Smtih / Smith
    John). With ``births`` (per record a birth-date code), a value is also a group's where records of one
    person's names hold it under two people's birth dates: namesakes sharing a mailbox (John Smith senior and
    junior), or a name-derived address (sarah.wilson@gmail.com) given to many Sarah Wilsons. At scale such
    values outnumber a person's own shared values, and a model fitted with them learns that a person's records
    often differ on birth date, phone and address."""
    ok = (col.codes >= 0) & (name_key.codes >= 0)
    if not ok.any():
        return col, 0
    combo = distinct(col.codes[ok].astype(np.int64) * (len(name_key.uniques) + 1) + name_key.codes[ok])
    names_per_value = np.bincount(combo // (len(name_key.uniques) + 1), minlength=len(col.uniques))
    shared = names_per_value >= SHARED_VALUE_NAMES
    if names is not None and name_parts is not None:
        held = (col.codes >= 0) & (names >= 0)
        radix = len(name_parts) + 1
        pairs = distinct(col.codes[held].astype(np.int64) * radix + names[held])
        value, name = pairs // radix, pairs % radix
        starts = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])
        ends = np.r_[starts[1:], len(value)]
        kind: dict[tuple[int, int], int] = {}
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            v = int(value[a])
            if b - a < 2 or shared[v]:
                continue
            if b - a > MAX_NAMES_COMPARED:
                shared[v] = True
                continue
            held_by = name[a:b].tolist()
            for x in range(len(held_by)):
                for y in range(x + 1, len(held_by)):
                    k = (held_by[x], held_by[y])
                    if k not in kind:
                        kind[k] = _holders(name_parts[k[0]], name_parts[k[1]])
                    if kind[k] == 2:
                        shared[v] = True
                        break
                if shared[v]:
                    break
        if births is not None:
            _set_aside_namesakes(col, names, name_parts, births, shared, kind)
    if not shared.any():
        return col, 0
    hit = (col.codes >= 0) & shared[np.maximum(col.codes, 0)]
    return KeyColumn(codes=np.where(hit, -1, col.codes).astype(np.int32), uniques=col.uniques), int(hit.sum())


def _set_aside_namesakes(col: KeyColumn, names: np.ndarray, name_parts: list[tuple[str, str, str]],
                         births: KeyColumn, shared: np.ndarray, kind: dict[tuple[int, int], int]) -> None:
    """Mark in ``shared`` the values held under one person's names (``_holders`` 0) with two people's birth dates.
    A household's value (the given names disagree) is left to the comparison of given names, as above."""
    held = (col.codes >= 0) & (names >= 0) & (births.codes >= 0)
    held[held] = ~shared[col.codes[held]]
    if not held.any():
        return
    rn, rb = len(name_parts) + 1, len(births.uniques) + 1
    triples = distinct((col.codes[held].astype(np.int64) * rn + names[held]) * rb + births.codes[held])
    value, name, born = triples // (rn * rb), (triples // rb) % rn, triples % rb
    starts = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])
    ends = np.r_[starts[1:], len(value)]
    many = (ends - starts) >= 2
    dates = births.uniques

    def one_persons(x: int, y: int) -> bool:
        if x == y:
            return True
        k = (min(x, y), max(x, y))
        if k not in kind:
            kind[k] = _holders(name_parts[k[0]], name_parts[k[1]])
        return kind[k] == 0

    for a, b in zip(starts[many].tolist(), ends[many].tolist(), strict=True):
        holders = list(zip(name[a:b].tolist(), born[a:b].tolist(), strict=True))
        # dozens of (name, birth date) holders: nobody's own
        if b - a > MAX_NAMES_COMPARED or any(
                bx != by and _dates_of_two_people(dates[bx], dates[by]) and one_persons(nx, ny)
                for (nx, bx), (ny, by) in combinations(holders, 2)):
            shared[int(value[a])] = True


def _group_values(col: KeyColumn, name_key: KeyColumn) -> KeyColumn:
    """The value where it is held by records of SHARED_VALUE_NAMES or more different names, else missing."""
    kept, _ = _set_aside_shared(col, name_key)
    hit = (col.codes >= 0) & (kept.codes < 0)
    return KeyColumn(codes=np.where(hit, col.codes, -1).astype(np.int32), uniques=col.uniques)


def _set_aside_roles(col: KeyColumn) -> tuple[KeyColumn, int]:
    """Missing where the e-mail is a function's mailbox (info@, einkauf3@, 采购@): whoever does the job holds
    it, so it is no evidence that two records are one person — however few records hold it."""
    from hub.standardise.placeholders import is_role_address

    role = np.array([is_role_address(v) for v in col.uniques.tolist()], dtype=bool)
    if not role.any():
        return col, 0
    hit = (col.codes >= 0) & role[np.maximum(col.codes, 0)]
    return KeyColumn(codes=np.where(hit, -1, col.codes).astype(np.int32), uniques=col.uniques), int(hit.sum())


def _reserved(col: KeyColumn, grade: str) -> KeyColumn:
    """Code 0 where the value is from a range reserved for examples and tests (``@example.com``, 555-01xx),
    else missing: such a value names a record, so only an exact copy of it is evidence."""
    from hub.standardise.placeholders import email_placeholder, phone_placeholder

    check = email_placeholder if grade.startswith("email") else phone_placeholder
    values = col.uniques.tolist()
    if grade == "phone.fictional":
        # a fictional number (NANP 555-0100..0199) has the digits 55501: a number of ASCII digits without them
        # is none, and checking only the others is ~20x cheaper (phone keys are digits)
        flag = np.array([not (v.isascii() and v.isdigit()) or "55501" in v for v in values], dtype=bool)
        for k in np.flatnonzero(flag).tolist():
            flag[k] = check(values[k]) == grade
    else:
        flag = np.array([check(v) == grade for v in values], dtype=bool)
    hit = (col.codes >= 0) & (flag[np.maximum(col.codes, 0)] if len(flag) else False)
    return KeyColumn(codes=np.where(hit, 0, -1).astype(np.int32), uniques=np.array([grade], dtype=object))


def _encode(values: pd.Series | np.ndarray, fn: Callable[[str], str] | None,
            pre: Callable[[str], str] | None = None, known: Callable[[list], list] | None = None) -> KeyColumn:
    """Standardise distinct raw values with ``fn`` and factorise the results to codes (``known``: ``fn``'s
    results of some of the values after ``pre``, see ``_map_known``)."""
    raw_codes, raw_uniques = pd.factorize(values)
    if fn is None:
        std = np.asarray(raw_uniques, dtype=object)
    elif pre is not None:
        # collapse pure formatting variants first so the (slower) standardiser sees fewer values
        pre_codes, pre_uniques = pd.factorize(np.array([pre(v) for v in np.asarray(raw_uniques, dtype=object).tolist()],
                                                       dtype=object))
        pre_std = np.array(_map_known(fn, list(pre_uniques), known), dtype=object)
        std = pre_std[pre_codes] if len(pre_std) else np.asarray(raw_uniques, dtype=object)
    else:
        std = np.array(_map(fn, list(raw_uniques)), dtype=object)
    key_codes, key_uniques = pd.factorize(std)
    key_uniques = np.asarray(key_uniques, dtype=object)
    # empty key = missing
    empty = np.flatnonzero(key_uniques == "")
    remap = np.arange(len(key_uniques), dtype=np.int64)
    if len(empty):
        e = empty[0]
        remap[e] = -1
        remap[e + 1 :] -= 1
        key_uniques = np.delete(key_uniques, e)
    mapped = remap[key_codes]
    if len(mapped) == 0:
        return KeyColumn(codes=np.full(len(values), -1, dtype=np.int32), uniques=key_uniques)
    codes = np.where(raw_codes >= 0, mapped[np.maximum(raw_codes, 0)], -1).astype(np.int32)
    return KeyColumn(codes=codes, uniques=key_uniques)


# Province-level municipalities: their province is the city, so a record with 上海市 only in the region
# column is in the same city as one with Shanghai in the city column.
MUNICIPALITIES = frozenset({"beijing", "shanghai", "tianjin", "chongqing", "hong kong", "hongkong", "macau", "aomen",
                            "xianggang"})


def _city_or_municipality(city: KeyColumn, region: KeyColumn) -> KeyColumn:
    """City key, filled from the region where the city is missing and the region is a municipality."""
    fill = (city.codes < 0) & (region.codes >= 0)
    if not fill.any():
        return city
    muni = np.array([u in MUNICIPALITIES for u in region.uniques.tolist()], dtype=bool)
    fill[fill] = muni[region.codes[fill]]
    if not fill.any():
        return city
    vals = city.values()
    vals[fill] = region.uniques[region.codes[fill]]
    return _encode(vals, None)


def _mailbox_is_name(p: Prepared, stem_col: KeyColumn | None = None) -> KeyColumn:
    """Code 0 where the letters of the record's mailbox name are its own name (robert.jones, jonesrobert,
    rjones, lhuang774, jenny), else missing: such a mailbox at another provider repeats the name evidence."""
    stem = (stem_col or p.key("email_stem")).values()
    fam, giv = p.key("family").values(), p.key("given").values()
    hit = np.zeros(p.n, dtype=bool)
    for k in np.flatnonzero((stem != "") & ((fam != "") | (giv != ""))).tolist():
        s, f, g = stem[k], fam[k], giv[k]
        hit[k] = s in (f + g, g + f, g[:1] + f, f + g[:1], f, g) and s != ""
    return KeyColumn(codes=np.where(hit, 0, -1).astype(np.int32), uniques=np.array(["name"], dtype=object))


_IDENTIFIER_KEY_ORDER = ("phone", "email", "email_reserved", "phone_reserved", "email_local", "email_domain",
                         "email_stem", "email_digits", "email_is_name", "phone_tail")


def _identifier_tables(phone_uniques: np.ndarray, email_uniques: np.ndarray) -> dict[str, tuple[str, KeyColumn]]:
    """The value-level identifier keys (ALTERNATE_KEYS but the per-record ``email_is_name``) of one phone and
    one e-mail value table, as (parent key, key coded per value of the parent's table): computed once per
    table and shared by the first and every further value (slot), which use the same tables."""
    def table(uniques: np.ndarray) -> KeyColumn:
        return KeyColumn(codes=np.arange(len(uniques), dtype=np.int32), uniques=uniques)

    phone, email = table(phone_uniques), table(email_uniques)
    local = _derive(email, lambda e: e.split("@")[0])
    out = {
        "email_reserved": ("email", _reserved(email, "email.reserved_domain")),
        "phone_reserved": ("phone", _reserved(phone, "phone.fictional")),
        "email_local": ("email", local),
        "email_domain": ("email", _derive(email, lambda e: e.partition("@")[2])),
        # the letters and the digits of the mailbox name apart: sjones28 / sjones49 are two Sophie Joneses
        "email_stem": ("email", _derive(local, lambda loc: "".join(ch for ch in loc if ch.isalpha()))),
        "email_digits": ("email", _derive(local, lambda loc: "".join(ch for ch in loc if ch.isdigit()))),
        # last 8 digits: the same subscriber written with and without a country code (+1 279 491 4555 vs
        # (279) 491-4555 parsed under the CN default region) still meets in blocking and comparison
        "phone_tail": ("phone", _derive(phone, lambda t: t[-8:] if len(t) >= 8 else "")),
    }
    return out


def _identifier_keys(p: Prepared, phone: KeyColumn, email: KeyColumn,
                     tables: dict[str, tuple[str, KeyColumn]] | None = None) -> dict[str, KeyColumn]:
    """The keys derived from one phone and one e-mail per record (ALTERNATE_KEYS); derived from the value
    tables, so the first and the further values of the records share their codes (``tables``: those of
    ``_identifier_tables`` for these value tables, computed once for every slot)."""
    tables = tables if tables is not None else _identifier_tables(phone.uniques, email.uniques)
    out = {"phone": phone, "email": email}
    for name, (parent_name, per_value) in tables.items():
        parent = out[parent_name]
        codes = (np.where(parent.codes >= 0, per_value.codes[np.maximum(parent.codes, 0)], -1)
                 if len(per_value.codes) else np.full(len(parent.codes), -1))
        out[name] = KeyColumn(codes=codes.astype(np.int32), uniques=per_value.uniques)
    out["email_is_name"] = _mailbox_is_name(p, out["email_stem"])
    return {k: out[k] for k in _IDENTIFIER_KEY_ORDER}


def _derive(parent: KeyColumn, fn: Callable[[str], str]) -> KeyColumn:
    """A key computed from another key's distinct values (e.g. birth year from birth date)."""
    if len(parent.uniques) == 0:
        return KeyColumn(codes=np.full(len(parent.codes), -1, dtype=np.int32), uniques=np.empty(0, dtype=object))
    vals = np.array([fn(v) for v in parent.uniques], dtype=object)
    sub = _encode(vals, None)
    codes = np.where(parent.codes >= 0, sub.codes[np.maximum(parent.codes, 0)], -1).astype(np.int32)
    return KeyColumn(codes=codes, uniques=sub.uniques)


def _street_in_city(street: KeyColumn, city: KeyColumn) -> KeyColumn:
    """The street with its city ("street|city"; a street without a city is its own value), missing where the
    street is. Not ``_combine``: its values are batch-dependent integer codes, and a key's values go into
    ``Records.fingerprint`` (a record's fingerprint must not change because other records came or went)."""
    ok = street.codes >= 0
    combo = street.codes.astype(np.int64) * (len(city.uniques) + 1) + (city.codes.astype(np.int64) + 1)
    codes = np.full(len(street.codes), -1, dtype=np.int32)
    if not ok.any():
        return KeyColumn(codes=codes, uniques=np.empty(0, dtype=object))
    sub, distinct = pd.factorize(combo[ok])
    codes[ok] = sub
    radix = len(city.uniques) + 1
    cities = np.append(np.asarray(city.uniques, dtype=object), "")  # index -1 -> ""
    streets = np.asarray(street.uniques, dtype=object)
    uniques = np.array([f"{streets[v // radix]}|{cities[v % radix - 1]}" for v in distinct.tolist()], dtype=object)
    return KeyColumn(codes=codes, uniques=uniques)


def _combine(*cols: KeyColumn) -> KeyColumn:
    """Key for a tuple of keys (missing if any part is missing) — used for blocking."""
    n = len(cols[0].codes)
    ok = np.ones(n, dtype=bool)
    acc = np.zeros(n, dtype=np.int64)
    for c in cols:
        ok &= c.codes >= 0
        acc = acc * (len(c.uniques) + 1) + (c.codes.astype(np.int64) + 1)
    codes, uniq = pd.factorize(np.where(ok, acc, -1))
    codes = codes.astype(np.int64)
    # factorize keeps -1 as a regular value; map it to missing
    if (uniq == -1).any():
        miss = int(np.flatnonzero(uniq == -1)[0])
        codes = np.where(codes == miss, -1, np.where(codes > miss, codes - 1, codes))
        uniq = uniq[uniq != -1]
    return KeyColumn(codes=codes.astype(np.int32), uniques=np.asarray(uniq).astype(str).astype(object))


@dataclass
class _AddressValues:
    """Every address of the records standardised (``_address_values``): the further slots in use and one value
    table per part over all of them (first address, then each further slot)."""

    further: list[int]
    street: KeyColumn
    region: KeyColumn
    city: KeyColumn
    postcode: KeyColumn


def _address_values(frame: pd.DataFrame, std: _Standardised) -> _AddressValues:
    n = len(frame)
    further = sorted({int(m.group(2)) for c in frame.columns if (m := ADDRESS_COLUMN.match(str(c)))
                      and (_column(frame, str(c)).str.strip() != "").any()})
    further = [k for k in further if k <= 1 + ADDRESS_SLOTS]

    def stacked(name: str) -> pd.Series:
        parts = [_column(frame, name), *(_column(frame, f"{name}_{k}") for k in further)]
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    def encode(name: str, fn: Callable[[str], str]) -> KeyColumn:
        return std.encode([name] + [f"{name}_{k}" for k in further], n, stacked(name), fn)

    return _AddressValues(further=further, street=encode("street", _unless_placeholder(_street_key)),
                          region=encode("region", _unless_placeholder(_fallback_place)),
                          city=encode("city", _unless_placeholder(_fallback_place)),
                          postcode=encode("postal_code", _unless_placeholder(_fallback_postcode)))


def _address_keys(n: int, values: _AddressValues, initials: KeyColumn
                  ) -> tuple[dict[str, KeyColumn], list[dict[str, KeyColumn]]]:
    """(the first address's keys, one dict of keys per further address): every address of the records in one
    value table per key, so a street is set aside as a group's site whichever slot holds it."""
    reps = 1 + len(values.further)
    keys: dict[str, KeyColumn] = {}
    keys["street"] = values.street
    keys["region"] = values.region
    keys["city"] = _city_or_municipality(values.city, keys["region"])
    # a street written in hanzi and one in Latin letters (张江路339号 / No.339 Zhangjiang Lu) cannot be compared
    # as strings
    keys["street_han"] = _derive(keys["street"], lambda st: "han" if _HAN.search(st) else "latin")
    # the house number of a street written as one number and a name (17 Market Street, 张江路339号); streets
    # with more numbers (floor, room, unit) are left to the string comparison
    keys["street_base"] = _derive(keys["street"], _street_base)
    keys["street_number"] = _derive(keys["street_base"], _house_number)
    # a building where many different people are registered (a company's site with its contact persons, an
    # office block): the street says which group a record belongs to, not which person — compared as area only
    # A site is a street in its city: 中山路421号 or 12 Elm Street in two cities are two buildings (staging writes
    # the street without the city a raw line such as 天津中山路421号 carries, so by street alone every city's
    # Zhongshan Road 421 was one "site" held by many names, and a person's two records there compared as area only)
    tiled = KeyColumn(codes=np.tile(initials.codes, reps), uniques=initials.uniques) if reps > 1 else initials
    keys["street_group"] = _group_values(_street_in_city(keys["street_base"], keys["city"]), tiled)
    keys["postcode"] = values.postcode
    if reps == 1:
        return keys, []
    first = {k: KeyColumn(codes=c.codes[:n], uniques=c.uniques) for k, c in keys.items()}
    slots = [{k: KeyColumn(codes=c.codes[n * s:n * (s + 1)], uniques=c.uniques) for k, c in keys.items()}
             for s in range(1, reps)]
    return first, slots


# The per-record standardised values prepare computes before any decision about the batch (which values are
# shared, set aside, …): a pure function of the record's own values. ``prepare(frame, capture=True)`` returns
# them (``Prepared.standardised``), ``prepare(frame, standardised=…)`` takes them instead of standardising
# again — the same keys as preparing the raw frame (a caller that keeps them per record, the golden stage,
# prepares only its new and changed records). Columns: the name parts, then one per standardised field;
# ``phone`` / ``email`` values of further slots as ``phone_2`` … like the input.
STANDARDISED_NAME_PARTS = ("name_family", "name_given", "name_canon", "name_family_han", "name_given_han",
                           "name_org")


def prepare(frame: pd.DataFrame, workers: int = 1, standardised: pd.DataFrame | None = None,
            capture: bool = False, staged_phones: Collection[str] = (),
            unverified_phones: Collection[str] = ()) -> Prepared:
    """Standardise the canonical columns of ``frame`` into matching keys; distinct values are standardised
    in ``workers`` forked processes (0 = one per core, at most 4) when there are many. ``standardised``:
    the records' standardised values (``Prepared.standardised`` of an earlier call, row for row), used
    instead of standardising; ``capture``: keep them in ``Prepared.standardised``. ``staged_phones``: phone
    values that are E.164 numbers ``hub.standardise.standardise_phone`` gave (the hub's staging): their keys
    are read off them (``_staged_phone_keys``) instead of standardising them again; ``unverified_phones``: phone
    values staging could not validate (its ``unverified_phones``), keyed without asking the standardiser again."""
    global _WORKERS
    _WORKERS = worker_count(workers)
    try:
        std = _Standardised(standardised, capture, staged_phones, unverified_phones)
        p = _prepare(frame, std)
        if capture:
            p.standardised = _standardised_frame(frame, std.captured or {})
        return p
    finally:
        _WORKERS = 1


def standardise(frame: pd.DataFrame, staged_phones: Collection[str] = (),
                unverified_phones: Collection[str] = ()) -> pd.DataFrame:
    """The per-record standardised values of ``frame``: ``prepare(frame, capture=True).standardised`` without
    the keys prepare goes on to build (~40 % of its time on batches of 10,000 records), in this process."""
    std = _Standardised(None, True, staged_phones, unverified_phones)
    _standardise(frame, std)
    return _standardised_frame(frame, std.captured or {})


def _standardised_frame(frame: pd.DataFrame, captured: dict[str, np.ndarray]) -> pd.DataFrame:
    """The captured values as a frame whose columns depend on ``frame``'s columns only (sorted by name): a
    further address slot empty in this batch (not standardised) is a column of empty values."""
    cols = dict(captured)
    for c in map(str, frame.columns):
        m = ADDRESS_COLUMN.match(c)
        if m and int(m.group(2)) <= 1 + ADDRESS_SLOTS and c not in cols:
            cols[c] = np.full(len(frame), "", dtype=object)
    # copy=False: the captured arrays become the columns (pandas would copy them into one block: at the match
    # step's high-water mark, ~100 MB at 300k records)
    return pd.DataFrame({k: cols[k] for k in sorted(cols)}, index=pd.RangeIndex(len(frame)), dtype=object,
                        copy=False)


class _Standardised:
    """Where prepare gets a column's per-record standardised values: given, or computed (and kept)."""

    def __init__(self, given: pd.DataFrame | None, capture: bool, staged_phones: Collection[str] = (),
                 unverified_phones: Collection[str] = ()) -> None:
        self.given = given
        self.captured: dict[str, np.ndarray] | None = {} if capture else None
        self.staged_phones = staged_phones
        # as the phone column's values reach ``_staged_phone_keys`` (after ``_phone_pre``)
        self.unverified_phones = {_phone_pre(v) for v in unverified_phones}

    def has(self, name: str) -> bool:
        return self.given is not None and name in self.given.columns

    def column(self, name: str) -> np.ndarray:
        return self.given[name].to_numpy(dtype=object)

    def keep(self, name: str, values: np.ndarray) -> None:
        if self.captured is not None:
            self.captured[name] = values

    def encode(self, names: list[str], n: int, values: pd.Series | np.ndarray, fn: Callable[[str], str] | None,
               pre: Callable[[str], str] | None = None, known: Callable[[list], list] | None = None) -> KeyColumn:
        """``_encode(values, fn, pre)``; ``values`` are the columns ``names`` (each ``n`` long) one after the
        other. From the given standardised values when there are any (factorising the per-record values gives
        the same codes and value table as standardising the distinct raw values: both number the values in
        order of first appearance)."""
        if all(self.has(x) for x in names):
            std = np.concatenate([self.column(x) for x in names]) if len(names) > 1 else self.column(names[0])
            return _encode(std, None)
        col = _encode(values, fn, pre, known)
        if self.captured is not None:
            vals = col.values()
            for k, x in enumerate(names):
                self.captured[x] = vals[k * n:(k + 1) * n]
        return col


# the identifiers standardised in one value table per kind with their further slots: (key, column, the
# standardiser's maker, what every value goes through first)
_IDENTIFIERS: tuple[tuple[str, str, Callable[[], Callable[[str], str]], Callable[[str], str] | None], ...] = (
    ("national_id", "national_id", lambda: _national_id, None),
    ("phone", "phone", _phone_fn, _phone_pre),
    ("email", "email", _email_fn, lambda e: e.strip().lower()),
)


@dataclass
class _Values:
    """A batch's standardised values, each field's in a value table over its records (``_standardise``): what
    prepare decides about the batch (shared values, set-aside groups, derived keys) starts from them."""

    tcodes: np.ndarray  # per record its distinct (full, given, family) name triple
    parsed: list[tuple[str, ...]]  # per distinct triple its name parts (STANDARDISED_NAME_PARTS)
    dob: KeyColumn
    identifiers: dict[str, tuple[KeyColumn, int]]  # per _IDENTIFIERS key: the first and further values, slots
    address: _AddressValues
    gender: KeyColumn
    company: KeyColumn


def _standardise(frame: pd.DataFrame, std: _Standardised) -> _Values:
    """Every standardised value of ``frame``'s records, from ``std``'s given values where it has them, else
    standardised here (distinct values only) and kept by ``std`` when it captures: a pure function of each
    record (``standardise`` is this alone; ``_prepare`` goes on to the keys)."""
    n = len(frame)
    # names: standardise distinct (full, given, family) triples
    full, given, family = _column(frame, "full_name"), _column(frame, "given_name"), _column(frame, "family_name")
    (cf, uf), (cg, ug), (cs, us) = (pd.factorize(c) for c in (full, given, family))
    k1, _ = pd.factorize(cf.astype(np.int64) * (len(ug) + 1) + cg)
    _, first, tcodes = np.unique(k1.astype(np.int64) * (len(us) + 1) + cs, return_index=True, return_inverse=True)
    uf, ug, us = (np.asarray(u, dtype=object) for u in (uf, ug, us))
    tuniq = [(uf[cf[r]] if cf[r] >= 0 else "", ug[cg[r]] if cg[r] >= 0 else "", us[cs[r]] if cs[r] >= 0 else "")
             for r in first.tolist()]
    if all(std.has(x) for x in STANDARDISED_NAME_PARTS):
        parts = [std.column(x) for x in STANDARDISED_NAME_PARTS]
        parsed = list(zip(*(c[first] for c in parts), strict=True)) if len(first) else []
    else:
        parsed = _map(_person_name_fn(), tuniq)
        for k, x in enumerate(STANDARDISED_NAME_PARTS):
            std.keep(x, np.array([t[k] for t in parsed], dtype=object)[tcodes] if len(tcodes)
                     else np.empty(0, dtype=object))
    dob = std.encode(["birth_date"], n, _column(frame, "birth_date"),
                     None if std.has("birth_date") else _unless_placeholder(_date_fn()))
    alternates = {c: sorted((col for col in frame.columns if (m := ALTERNATE_COLUMN.match(str(col)))
                             and m.group(1) == c), key=lambda col: int(str(col)[-1]))[:MAX_SLOTS]
                  for c in ("phone", "email")}
    n_slots = max(len(v) for v in alternates.values())
    identifiers: dict[str, tuple[KeyColumn, int]] = {}
    for key, column, fn_of, pre in _IDENTIFIERS:
        raw = _column(frame, column)
        extra = [_column(frame, c) for c in alternates.get(column, [])] if n_slots else []
        extra += [pd.Series([""] * n, dtype=object)] * ((n_slots - len(extra)) if key != "national_id" else 0)
        # the first and the further values in one value table: codes compare across slots, and a value is set
        # aside (a group's, a function's mailbox) whichever slot holds it
        both = pd.concat([raw, *extra], ignore_index=True) if extra else raw
        std_cols = [column] + [f"{column}_{k + 2}" for k in range(len(extra))]
        judged = key == "phone" and (std.staged_phones or std.unverified_phones)
        col = std.encode(std_cols, n, both,
                         None if all(std.has(x) for x in std_cols) else _unless_placeholder(fn_of()), pre=pre,
                         known=functools.partial(_staged_phone_keys, staged=std.staged_phones,
                                                 unverified=std.unverified_phones) if judged else None)
        identifiers[key] = (col, len(extra))
    address = _address_values(frame, std)
    gender = std.encode(["gender"], n, _column(frame, "gender"), _fallback_gender)
    company = _column(frame, "company").to_numpy(dtype=object, copy=True)
    org = np.array([x[5] for x in parsed], dtype=object)[tcodes]
    fill = (company == "") & (org != "")
    company[fill] = org[fill]  # already a company key: _fallback_company leaves it as it is
    return _Values(tcodes=tcodes, parsed=parsed, dob=dob, identifiers=identifiers, address=address, gender=gender,
                   company=std.encode(["company"], n, company, _fallback_company))


def _prepare(frame: pd.DataFrame, std: _Standardised | None = None) -> Prepared:
    std = std or _Standardised(None, False)
    n = len(frame)
    rid = _column(frame, "record_id").to_numpy(dtype=object)
    src_codes, src_names = pd.factorize(_column(frame, "source").str.strip())  # "" (no source) is a value too
    names = np.asarray(src_names, dtype=object) if len(src_names) else np.array([""], dtype=object)
    p = Prepared(n=n, record_id=rid, source=np.maximum(src_codes, 0).astype(np.int32), source_names=names)
    values = _standardise(frame, std)
    tcodes, parsed = values.tcodes, values.parsed
    fam_u = np.array([x[0] for x in parsed], dtype=object)
    giv_u = np.array([x[1] for x in parsed], dtype=object)
    can_u = np.array([x[2] for x in parsed], dtype=object)
    p.keys["family_han"] = _encode(np.array([x[3] for x in parsed], dtype=object)[tcodes], None)
    p.keys["given_han"] = _encode(np.array([x[4] for x in parsed], dtype=object)[tcodes], None)
    p.keys["family"] = _encode(fam_u[tcodes], None)
    p.keys["given"] = _encode(giv_u[tcodes], None)
    p.keys["given_canon"] = _encode(can_u[tcodes], None)
    # order-insensitive full-name key: "chen wei" for Chen Wei / WEI CHEN / 陳偉
    nk = np.array([" ".join(sorted(t for t in (a, b) if t)) for a, b in zip(fam_u, giv_u, strict=True)], dtype=object)
    p.keys["name_key"] = _encode(nk[tcodes], None)

    p.keys["dob"] = values.dob
    p.keys["birth_year"] = _derive(p.keys["dob"], lambda d: d[:4])
    initials = _encode(np.array([" ".join(sorted(t[:1] for t in (a, b) if t)) for a, b in
                                 zip(fam_u, giv_u, strict=True)], dtype=object)[tcodes], None)
    # a person's name per record (index into the distinct names, -1 = none or an organisation's): a phone or
    # e-mail held by records whose names disagree is a group's (switchboard, team or family mailbox)
    person = np.array([bool(x[0] or x[1]) for x in parsed] or [False], dtype=bool)
    names = np.where(person[tcodes], tcodes, -1) if len(tcodes) else np.zeros(0, dtype=np.int64)
    name_parts = [(x[0], x[1], x[2]) for x in parsed]
    n_slots = 0
    slot_cols: dict[str, list[KeyColumn]] = {}
    for key, column, _, _ in _IDENTIFIERS:
        raw = _column(frame, column)
        col, extra = values.identifiers[key]
        n_slots = max(n_slots, extra)
        unusable = int(((col.codes[:n] < 0) & (raw != "").to_numpy()).sum())
        before = col
        if key == "email":
            col, role = _set_aside_roles(col)
            if role:
                p.set_aside["email_role"] = role
        reps = 1 + extra
        tiled = KeyColumn(codes=np.tile(initials.codes, reps), uniques=initials.uniques)
        # a national id is one person's by definition: only a dummy held by many names is set aside
        col, shared = (_set_aside_shared(col, tiled) if key == "national_id"
                       else _set_aside_shared(col, tiled, np.tile(names, reps), name_parts,
                                              KeyColumn(codes=np.tile(p.keys["dob"].codes, reps),
                                                        uniques=p.keys["dob"].uniques)))
        if key != "national_id":
            # the group value a record holds (a switchboard, a team mailbox): no evidence of one person, but two
            # records holding it are members of one group, where namesakes are different people
            p.keys[f"{key}_group"] = _encode(np.where(col.codes[:n] < 0, before.values()[:n], ""), None)
        p.keys[key] = KeyColumn(codes=col.codes[:n], uniques=col.uniques)
        if key == "national_id":
            p.validated_id = _validated_ids(frame, p.keys[key])
        if extra:
            slot_cols[key] = [KeyColumn(codes=col.codes[n * (s + 1):n * (s + 2)], uniques=col.uniques)
                              for s in range(extra)]
        if unusable:
            p.set_aside[f"{key}_unusable"] = unusable
        if shared:
            p.set_aside[f"{key}_shared"] = shared
    tables = _identifier_tables(p.keys["phone"].uniques, p.keys["email"].uniques)
    p.keys.update(_identifier_keys(p, p.keys["phone"], p.keys["email"], tables))
    p.slots = [_identifier_keys(p, slot_cols["phone"][s], slot_cols["email"][s], tables) for s in range(n_slots)]
    first, p.address_slots = _address_keys(n, values.address, initials)
    p.keys.update(first)
    p.keys["gender"] = values.gender
    p.keys["company"] = values.company
    # blocking helpers
    p.keys["family_init"] = _derive(p.keys["family"], lambda s: s[:1])
    p.keys["given_init"] = _derive(p.keys["given"], lambda s: s[:1])
    ns = np.array([f"{a} {b}".strip() for a, b in zip(fam_u, giv_u, strict=True)], dtype=object)
    nr = np.array([f"{b} {a}".strip() for a, b in zip(fam_u, giv_u, strict=True)], dtype=object)
    # the full name run together in both orders, coded in ONE vocabulary so that "lijiezhang" in one record
    # equals the other's reversed concatenation whatever the family/given split was
    fwd = np.array([f"{a}{b}" for a, b in zip(fam_u, giv_u, strict=True)], dtype=object)
    rev = np.array([f"{b}{a}" for a, b in zip(fam_u, giv_u, strict=True)], dtype=object)
    both = _encode(np.concatenate([fwd, rev]), None)
    k = len(fwd)
    p.keys["name_concat"] = KeyColumn(codes=both.codes[:k][tcodes], uniques=both.uniques)
    p.keys["name_concat_rev"] = KeyColumn(codes=both.codes[k:][tcodes], uniques=both.uniques)
    p.keys["name_sort"] = _encode(ns[tcodes], None)
    p.keys["name_sort_rev"] = _encode(nr[tcodes], None)
    return p
