"""Postal addresses.

China: province / prefecture city / district recognised in full or abbreviated form (江苏省南京市,
江苏南京, 南京市鼓楼区, 上海市浦东新区, 北京朝阳区) against the GB/T 2260 division table, traditional →
simplified (號 → 号), full-width digits → ASCII. The matcher reads the divisions from the start of the
text, accepting only matches consistent with what it has already read (so 中山路 after 南京市 is a street,
not 中山市), and stops at the first non-division: the rest is the street.

Elsewhere: street-type abbreviations (Street → St, Straße → Str.), postcode formats (US ZIP/ZIP+4, UK,
DE, CN, CA, …) and country names/codes → ISO 3166 alpha-2 (``pycountry`` + a table of usual aliases).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import pycountry

from hub.standardise._cn_divisions import DIVISIONS
from hub.standardise.names import pinyin, to_simplified
from hub.standardise.text import as_str, fold_ascii, normalize_text, strip_punctuation, text_key

_MAX_ADDR_FIELD = 512


class Address(NamedTuple):
    street: str | None
    district: str | None       # CN county-level division (鼓楼区); None elsewhere
    city: str | None
    region: str | None         # CN province (江苏省, 上海市); state/province elsewhere
    postal_code: str | None
    country: str | None        # ISO 3166-1 alpha-2
    key: str | None            # compact comparable string, e.g. 'CN|320106|中山路1号' / 'US|94105|1 market st'
    flags: tuple[str, ...]
    adcode: str | None = None  # CN 6-digit division code of the most precise division recognised


# --- Countries ---------------------------------------------------------------------------------------

_COUNTRY_ALIASES = {
    "中国": "CN", "中华人民共和国": "CN", "中國": "CN", "中国大陆": "CN", "大陆": "CN", "prc": "CN",
    "p r c": "CN", "p r china": "CN", "peoples republic of china": "CN", "mainland china": "CN",
    "china mainland": "CN", "china prc": "CN",
    "香港": "HK", "中国香港": "HK", "hong kong sar": "HK", "hongkong": "HK", "澳门": "MO", "中国澳门": "MO",
    "macau": "MO", "台湾": "TW", "中国台湾": "TW", "台灣": "TW",
    "usa": "US", "u s a": "US", "u s": "US", "us": "US", "america": "US", "united states of america": "US",
    "美国": "US", "美國": "US",
    "uk": "GB", "u k": "GB", "great britain": "GB", "britain": "GB", "england": "GB", "scotland": "GB",
    "wales": "GB", "northern ireland": "GB", "英国": "GB",
    "deutschland": "DE", "german": "DE", "brd": "DE", "德国": "DE", "österreich": "AT", "osterreich": "AT",
    "schweiz": "CH", "suisse": "CH", "svizzera": "CH", "france": "FR", "法国": "FR", "españa": "ES",
    "espana": "ES", "italia": "IT", "nederland": "NL", "holland": "NL", "the netherlands": "NL",
    "日本": "JP", "japan": "JP", "韩国": "KR", "korea": "KR", "south korea": "KR", "republic of korea": "KR",
    "新加坡": "SG", "马来西亚": "MY", "russia": "RU", "俄罗斯": "RU", "加拿大": "CA", "澳大利亚": "AU",
    "澳洲": "AU", "新西兰": "NZ", "泰国": "TH", "越南": "VN", "印度": "IN", "印度尼西亚": "ID",
    "菲律宾": "PH", "uae": "AE", "阿联酋": "AE", "意大利": "IT", "西班牙": "ES", "荷兰": "NL", "瑞士": "CH",
    "瑞典": "SE", "巴西": "BR", "墨西哥": "MX", "vietnam": "VN", "czechia": "CZ", "turkey": "TR",
}


@lru_cache(maxsize=4096)
def country_code(raw: str) -> str | None:
    """Country name/code in any usual form → ISO 3166-1 alpha-2, or None."""
    t = normalize_text(raw)
    if not t:
        return None
    k = text_key(t)
    hit = _COUNTRY_ALIASES.get(k) or _COUNTRY_ALIASES.get(to_simplified(k))
    if hit:
        return hit
    try:
        return pycountry.countries.lookup(t).alpha_2
    except (LookupError, AttributeError):
        pass
    try:
        return pycountry.countries.lookup(fold_ascii(k)).alpha_2
    except (LookupError, AttributeError):
        return None


# --- China: division table and matcher ---------------------------------------------------------------

_ETHNIC = sorted(
    (
        "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 拉祜 水 东乡 纳西 景颇 "
        "柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 "
        "京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺 高山 各"
    ).split(),
    key=len,
    reverse=True,
)


class _Div(NamedTuple):
    code: str
    level: int       # 0 province, 1 prefecture city, 2 county-level
    alias: bool      # matched through an abbreviation, not the full name


def _level(code: str) -> int:
    if code.endswith("0000"):
        return 0
    if code.endswith("00"):
        return 1
    return 2


def _short_forms(name: str, level: int) -> set[str]:
    """Abbreviations people actually write: 江苏, 广西, 南京, 延边, 浦东, 昆山."""
    out: set[str] = set()
    base = name
    for suf in ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "自治县",
                "自治旗", "地区", "省", "市", "盟"):
        if base.endswith(suf) and len(base) - len(suf) >= 2:
            base = base[: -len(suf)]
            break
    if base != name:
        # strip ethnic names before 自治州/自治县: 延边朝鲜族 → 延边, 黔东南苗族侗族 → 黔东南
        changed = True
        while changed:
            changed = False
            for e in _ETHNIC:
                for form in (e + "族", e):
                    if base.endswith(form) and len(base) - len(form) >= 2:
                        base = base[: -len(form)]
                        changed = True
                        break
                if changed:
                    break
        out.add(base)
    if level == 2 and name.endswith("新区") and len(name) >= 4:
        out.add(name[:-2])          # 浦东新区 → 浦东
    elif level == 2 and name.endswith("区") and len(name) >= 3:
        out.add(name[:-1])          # 朝阳区 → 朝阳 (only accepted after a parent division, see below)
    out.discard(name)
    return out


def _build_table() -> tuple[dict[str, tuple[_Div, ...]], dict[str, str], dict[str, str], int]:
    names: dict[str, list[_Div]] = {}
    code_name: dict[str, str] = {}
    for line in DIVISIONS.splitlines():
        code, _, name = line.partition(" ")
        if not name:
            continue
        code_name[code] = name
        lvl = _level(code)
        # Input goes through OpenCC t2s, which also rewrites a few official names (乾安县 → 干安县):
        # index both spellings so they meet.
        for spelling in {name, to_simplified(name)}:
            names.setdefault(spelling, []).append(_Div(code, lvl, False))
            for short in _short_forms(spelling, lvl):
                names.setdefault(short, []).append(_Div(code, lvl, True))
    # Latin (pinyin) names of provinces and prefecture cities, for region/city fields written in Latin.
    latin: dict[str, str] = {}
    for code, name in code_name.items():
        if _level(code) < 2:
            shorts = _short_forms(name, _level(code)) or {name}
            for s in shorts:
                latin.setdefault(pinyin(s), code)
    latin.update({"shaanxi": "610000", "shanxi": "140000", "innermongolia": "150000", "tibet": "540000",
                  "xizang": "540000", "hongkong": "810000", "macau": "820000", "macao": "820000",
                  "canton": "440100", "peking": "110000"})
    # one entry per code (a full name wins over an abbreviation of the same division)
    table = {
        k: tuple(sorted({d.code: d for d in sorted(v, key=lambda d: not d.alias)}.values(),
                        key=lambda d: (d.alias, d.level, d.code)))
        for k, v in names.items()
    }
    return table, code_name, latin, max(len(k) for k in table)


_TABLE, _CODE_NAME, _LATIN_DIV, _MAX_NAME = _build_table()
# First character → candidate name lengths, longest first: the matcher then does a handful of dict
# look-ups per position instead of one per possible length.
_LENGTHS_BY_FIRST: dict[str, tuple[int, ...]] = {}
for _name in _TABLE:
    _LENGTHS_BY_FIRST.setdefault(_name[0], ())
    if len(_name) not in _LENGTHS_BY_FIRST[_name[0]]:
        _LENGTHS_BY_FIRST[_name[0]] = tuple(sorted((*_LENGTHS_BY_FIRST[_name[0]], len(_name)), reverse=True))
del _name
_MUNICIPALITIES = frozenset({"11", "12", "31", "50"})
# A short form directly followed by one of these is part of a street name (南京路, 中山大道).
_STREET_AFTER = frozenset("路街道巷弄里号桥")
# a city short form followed by a compass-point road is a street named after the city (南京东路 in Shanghai,
# 北京西路 in Guangzhou), not that city
_STREET_AFTER_2 = ("大道", "大街", *(f"{p}{r}" for p in "东西南北中" for r in ("路", "街", "大街", "大道")))
_CN_PREFIX_RE = re.compile(r"^(?:中华人民共和国|中国大陆|中国|中國|china|prc)\s*", re.I)
_LEAD_PUNCT_RE = re.compile(r"^[\s,，.:：;；#\-]+")
_LEAD_POSTCODE_RE = re.compile(r"^(\d{6})\s*(?=[\u4e00-\u9fff])")
_LATIN_DIV_SUFFIX_RE = re.compile(
    r"(?:province|sheng|municipality|city|shi|autonomousregion|specialadministrativeregion|sar|district|qu)$"
)


def _consistent(d: _Div, prov: str | None, city: str | None, dist: str | None) -> bool:
    c = d.code
    if d.level == 0:
        return prov is None and city is None and dist is None or prov == c
    if d.level == 1:
        return dist is None and (prov is None or c[:2] == prov[:2]) and (city is None or city == c)
    return (
        (prov is None or c[:2] == prov[:2])
        and (city is None or c[:4] == city[:4])
        and (dist is None or dist == c)
    )


def _full_division_at(text: str, j: int) -> bool:
    """Does a division written in full (路南区, 桥西区) start at ``text[j]``?"""
    for ln in _LENGTHS_BY_FIRST.get(text[j], ()):
        cands = _TABLE.get(text[j : j + ln])
        if cands and not cands[0].alias:
            return True
    return False


def _match_divisions(text: str) -> tuple[str | None, str | None, str | None, int, bool]:
    """Read divisions from the start of ``text``. Returns (province, city, district codes, end index,
    ambiguous)."""
    prov = city = dist = None
    i = 0
    n = len(text)
    ambiguous = False
    table_get = _TABLE.get
    lengths_get = _LENGTHS_BY_FIRST.get
    while i < n:
        best = None
        for ln in lengths_get(text[i], ()):
            if ln > n - i:
                continue
            cands = table_get(text[i : i + ln])
            if cands is None:
                continue
            j = i + ln
            street_next = j < n and (text[j] in _STREET_AFTER or text.startswith(_STREET_AFTER_2, j)) and not (
                _full_division_at(text, j)  # 唐山路南区, 石家庄桥西区: the "street" is a district name
            )
            second = None
            for d in cands:  # sorted: full names first, then higher levels, then lowest code
                if d.alias and (street_next or (d.level == 2 and prov is None and city is None)):
                    # 南京路 is a street; a bare district short form (朝阳) needs a parent already read
                    continue
                if not _consistent(d, prov, city, dist):
                    continue
                if best is None:
                    best = d
                else:
                    second = d
                    break
            if best is None:
                continue
            if second is not None and prov is None and city is None and (second.alias, second.level) == (
                best.alias, best.level
            ):
                ambiguous = True  # 鼓楼区 alone: Nanjing, Fuzhou, Xuzhou or Kaifeng — lowest code wins
            if best.level == 0:
                prov = best.code
            elif best.level == 1:
                city, prov = best.code, prov or best.code[:2] + "0000"
            else:
                dist, prov = best.code, prov or best.code[:2] + "0000"
                parent = best.code[:4] + "00"
                if city is None and parent in _CODE_NAME:
                    city = parent
            step = ln
            if (
                ln >= 3
                and i + ln < n
                and not _full_division_at(text, i + ln)
                and _full_division_at(text, i + ln - 1)
                and any(d.code == best.code for d in table_get(text[i : i + ln - 1], ()))
            ):
                step = ln - 1  # 济南市中区 = 济南 + 市中区, not 济南市 + 中区
            i += step
            break
        if best is None:
            break
    return prov, city, dist, i, ambiguous


def _latin_division(s: str) -> str | None:
    k = _LATIN_DIV_SUFFIX_RE.sub("", "".join(ch for ch in fold_ascii(s).lower() if ch.isalpha()))
    code = _LATIN_DIV.get(k)
    return _CODE_NAME.get(code) if code else None


def _cn_field(s: str | None) -> str:
    if not s:
        return ""
    t = to_simplified(s)
    if t.isascii():
        return _latin_division(t) or t
    # Spaces inside Chinese addresses carry no meaning (江苏 南京 鼓楼区).
    return t.replace(" ", "")


_CN_NUM = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
# House/building/room numbers written in Chinese numerals (中山路一百二十三号, 三栋): only before a
# numbering word, so place names like 三里屯 or 五道口 are left alone.
_CN_HOUSE_NUM_RE = re.compile("([零〇一二两三四五六七八九十百千]+)(?=[号栋幢楼层室单弄巷])")


def _cn_int(s: str) -> str:
    if all(c in _CN_NUM for c in s):
        return "".join(str(_CN_NUM[c]) for c in s)  # 一二三 → 123 (digit by digit)
    total, cur = 0, 0
    for c in s:
        if c in _CN_NUM:
            cur = _CN_NUM[c]
        else:
            total += (cur or 1) * _CN_UNIT[c]
            cur = 0
    return str(total + cur)


def _cn_numerals_to_digits(s: str) -> str:
    if not _CN_HOUSE_NUM_RE.search(s):
        return s
    return _CN_HOUSE_NUM_RE.sub(lambda m: _cn_int(m.group(1)), s)


def _cn_address(street: str, city: str, region: str, postal: str | None, flags: list[str]) -> Address:
    r = _CN_PREFIX_RE.sub("", _cn_field(region))
    c = _CN_PREFIX_RE.sub("", _cn_field(city))
    st = _LEAD_PUNCT_RE.sub("", _CN_PREFIX_RE.sub("", _cn_field(street)))
    m = _LEAD_POSTCODE_RE.match(st)
    if m:
        # "210008 江苏省南京市…": the postcode written in front of the address line
        postal = postal or m.group(1)
        st = _CN_PREFIX_RE.sub("", st[m.end():])
    prefix = r + c
    text = prefix + st
    prov, cty, dist, end, ambiguous = _match_divisions(text)
    if ambiguous:
        flags.append("address.ambiguous_division")
    if end > len(prefix):
        st = st[end - len(prefix):]
    st = st.lstrip(" ,，-")
    if prov is None:
        flags.append("address.division_unknown")
    region_name = _CODE_NAME.get(prov) if prov else (r or None)
    if prov and prov[:2] in _MUNICIPALITIES:
        city_name: str | None = region_name  # 上海市 is both the province-level unit and the city
    else:
        city_name = _CODE_NAME.get(cty) if cty else (c if prov is None and c else None)
        if cty is None and prov and c and not _TABLE.get(c):
            city_name = c  # an unrecognised city field is kept as written
    district = _CODE_NAME.get(dist) if dist else None
    adcode = dist or cty or prov
    street_out = st or None
    # st is already NFKC-normalised: fold case and drop punctuation/spaces directly
    street_key = _cn_numerals_to_digits(strip_punctuation(st.casefold()).replace(" ", "")) if st else ""
    key = f"CN|{adcode or text_key(region_name or '') + '/' + text_key(city_name or '')}|{street_key}"
    if postal and not _CN_POSTAL_RE.match(postal):
        flags.append("postal_code.invalid")
        postal = None
    return Address(street_out, district, city_name, region_name, postal, "CN", key, tuple(flags), adcode)


# --- Western -----------------------------------------------------------------------------------------

_STREET_ABBR = {
    "street": "St", "avenue": "Ave", "road": "Rd", "boulevard": "Blvd", "drive": "Dr", "lane": "Ln",
    "court": "Ct", "place": "Pl", "square": "Sq", "terrace": "Ter", "highway": "Hwy", "parkway": "Pkwy",
    "circle": "Cir", "crescent": "Cres", "expressway": "Expy", "freeway": "Fwy", "trail": "Trl",
    "apartment": "Apt", "suite": "Ste", "floor": "Fl", "building": "Bldg", "room": "Rm", "unit": "Unit",
    "north": "N", "south": "S", "east": "E", "west": "W", "northeast": "NE", "northwest": "NW",
    "southeast": "SE", "southwest": "SW", "mount": "Mt", "fort": "Ft", "point": "Pt", "heights": "Hts",
    "gardens": "Gdns", "close": "Cl", "grove": "Gr", "way": "Way",
    # already-abbreviated forms with a dot normalise to the same token
    "st.": "St", "ave.": "Ave", "rd.": "Rd", "blvd.": "Blvd", "dr.": "Dr", "ln.": "Ln", "apt.": "Apt",
    "ste.": "Ste", "av": "Ave", "av.": "Ave",
}
_DE_STRASSE_RE = re.compile(r"(?i)(stra(?:ß|ss)e|str\.?)(?=\s|\d|$|,)")
_STREET_TOKEN_RE = re.compile(r"[^\s,]+|,")

_POSTAL_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "US": (re.compile(r"^(\d{5})(?:-?(\d{4}))?$"), "us"),
    "GB": (re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})$"), "gb"),
    "DE": (re.compile(r"^(?:D-?)?(\d{5})$"), "plain"),
    "FR": (re.compile(r"^(?:F-?)?(\d{5})$"), "plain"),
    "IT": (re.compile(r"^(?:I-?)?(\d{5})$"), "plain"),
    "ES": (re.compile(r"^(\d{5})$"), "plain"),
    "CN": (re.compile(r"^(\d{6})$"), "plain"),
    "TW": (re.compile(r"^(\d{3}(?:\d{2,3})?)$"), "plain"),
    "SG": (re.compile(r"^(\d{6})$"), "plain"),
    "IN": (re.compile(r"^(\d{3})\s?(\d{3})$"), "join"),
    "RU": (re.compile(r"^(\d{6})$"), "plain"),
    "AT": (re.compile(r"^(?:A-?)?(\d{4})$"), "plain"),
    "CH": (re.compile(r"^(?:CH-?)?(\d{4})$"), "plain"),
    "AU": (re.compile(r"^(\d{4})$"), "plain"),
    "NL": (re.compile(r"^(\d{4})\s?([A-Z]{2})$"), "space"),
    "CA": (re.compile(r"^([A-Z]\d[A-Z])\s?(\d[A-Z]\d)$"), "space"),
    "JP": (re.compile(r"^(\d{3})-?(\d{4})$"), "dash"),
    "KR": (re.compile(r"^(\d{5})$"), "plain"),
}
_CN_POSTAL_RE = _POSTAL_FORMATS["CN"][0]


def standardise_postal_code(raw: object, country: str | None) -> tuple[str | None, tuple[str, ...]]:
    """Format a postcode the country's way ('sw1a1aa' → 'SW1A 1AA', '941051234' → '94105-1234').

    Unknown countries: trimmed and upper-cased. Returns (postcode or None, flags)."""
    s = as_str(raw)
    if s is None:
        return None, ()
    t = normalize_text(s).upper().strip(" ,.")
    if not t:
        return None, ()
    if len(t) > 16:
        return None, ("postal_code.invalid",)
    fmt = _POSTAL_FORMATS.get((country or "").upper())
    if fmt is None:
        return t, ()
    m = fmt[0].match(t)
    if not m:
        return None, ("postal_code.invalid",)
    style = fmt[1]
    if style == "us":
        return (f"{m.group(1)}-{m.group(2)}" if m.group(2) else m.group(1)), ()
    if style in ("gb", "space"):
        return f"{m.group(1)} {m.group(2)}", ()
    if style == "dash":
        return f"{m.group(1)}-{m.group(2)}", ()
    if style == "join":
        return m.group(1) + m.group(2), ()
    return m.group(1), ()


def standardise_street(raw: str) -> str:
    """Western street line with the usual abbreviations: '123 North Main Street' → '123 N Main St'."""
    t = normalize_text(raw)
    t = _DE_STRASSE_RE.sub("str.", t)
    out = []
    for tok in _STREET_TOKEN_RE.findall(t):
        abbr = _STREET_ABBR.get(tok.lower())
        out.append(abbr if abbr else tok)
    return " ".join(out).replace(" ,", ",")


@lru_cache(maxsize=64)
def _subdivisions(country: str) -> dict[str, str]:
    try:
        subs = pycountry.subdivisions.get(country_code=country) or []
    except (LookupError, KeyError):
        return {}
    return {text_key(s.name): s.code.split("-", 1)[1] for s in subs}


_LEADING_POSTCODE_RE = re.compile(r"^(?:[A-Z]{1,2}-)?(\d{4,5})\s+(\D.*)$")
_TRAILING_POSTCODE_RE = {
    "US": re.compile(r"[\s,]+(\d{5}(?:-\d{4})?)$"),
    "GB": re.compile(r"[\s,]+([A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2})$"),
    "CA": re.compile(r"[\s,]+([A-Za-z]\d[A-Za-z]\s?\d[A-Za-z]\d)$"),
}
_CITY_STATE_RE = re.compile(r"^(.*?),?\s+([A-Za-z]{2,3})$")
_REGION_CODE_COUNTRIES = frozenset({"US", "CA", "AU"})


def _western_address(street: str, city: str, region: str, postal: str | None, country: str,
                     flags: list[str]) -> Address:
    if not postal:
        # Postcode written into another field: "10115 Berlin" (city line, continental style) or
        # "…, San Francisco, CA 94105" / "…, London SW1A 2AA" (end of the street line).
        m = _LEADING_POSTCODE_RE.match(city)
        if m:
            postal, city = m.group(1), m.group(2)
        else:
            tail = _TRAILING_POSTCODE_RE.get(country)
            for field in ("city", "street"):
                text = city if field == "city" else street
                m = tail.search(text) if tail and text else None
                if m:
                    postal = m.group(1)
                    rest = text[: m.start()].rstrip(" ,")
                    if field == "city":
                        city = rest
                    else:
                        street = rest
                        if not city and "," in street:  # "10 Downing Street, London"
                            street, _, city = street.rpartition(",")
                            street, city = street.strip(), city.strip()
                    break
    if not region and country in _REGION_CODE_COUNTRIES and city:
        m = _CITY_STATE_RE.match(city)  # "San Francisco, CA"
        if m and m.group(2).upper() in _subdivisions(country).values():
            city, region = m.group(1), m.group(2).upper()
    st = standardise_street(street) if street else None
    cty = normalize_text(city) or None
    if cty and (cty.isupper() or cty.islower()):
        cty = cty.title()
    reg = normalize_text(region) or None
    if reg and country in _REGION_CODE_COUNTRIES:
        code = _subdivisions(country).get(text_key(reg))
        reg = code or (reg.upper() if len(reg) <= 3 else reg)
    postal_out, pflags = standardise_postal_code(postal, country)
    flags.extend(pflags)
    # HK/TW/MO lines are often in traditional characters: compare them simplified.
    street_key = fold_ascii(text_key(to_simplified(st))) if st else ""
    if _has_han(street_key):
        street_key = street_key.replace(" ", "")
    where = postal_out.replace(" ", "") if postal_out else fold_ascii(text_key(cty or ""))
    key = f"{country}|{where}|{street_key}"
    return Address(st, None, cty, reg, postal_out, country, key, tuple(flags))


# --- Entry point -------------------------------------------------------------------------------------

_EMPTY = Address(None, None, None, None, None, None, None, ("address.missing",))


@lru_cache(maxsize=100_000)
def _standardise_address(street: str, city: str, region: str, postal: str, country: str,
                         default_country: str) -> Address:
    flags: list[str] = []
    street_n, city_n, region_n = normalize_text(street), normalize_text(city), normalize_text(region)
    postal_n = normalize_text(postal) or None
    cc = None
    if country:
        cc = country_code(country)
        if cc is None:
            flags.append("country.unknown")
    if cc is None:
        cc = country_code(default_country) if default_country else None
        if not country:
            flags.append("country.defaulted")
    if not (street_n or city_n or region_n or postal_n):
        return Address(None, None, None, None, None, cc, None, ("address.missing", *flags))
    if cc == "CN" or cc is None and _has_han(street_n + city_n + region_n):
        if postal_n:
            postal_n = postal_n.replace(" ", "")
        return _cn_address(street_n, city_n, region_n, postal_n, flags)
    if cc is None:
        flags.append("country.unknown")
        cc = ""
    return _western_address(street_n, city_n, region_n, postal_n, cc, flags)


_HAN_RE = re.compile("[\u4e00-\u9fff]")


def _has_han(s: str) -> bool:
    return _HAN_RE.search(s) is not None


def _field(v: object) -> str:
    s = as_str(v)
    if s is None:
        return ""
    return s if len(s) <= _MAX_ADDR_FIELD else s[:_MAX_ADDR_FIELD]


def standardise_address(
    street: object = None,
    city: object = None,
    region: object = None,
    postal_code: object = None,
    country: object = None,
    default_country: str | None = "CN",
) -> Address:
    """Standardise one postal address. ``country`` wins over ``default_country`` (the source's home
    country, used when the record has none). Never raises."""
    try:
        args = (_field(street), _field(city), _field(region), _field(postal_code), _field(country),
                default_country or "")
        if not any(args[:5]):
            return _EMPTY
        return _standardise_address(*args)
    except Exception:
        return Address(None, None, None, None, None, None, None, ("address.unparseable", "standardise.error"))
