"""Person and company names.

Chinese names: traditional → simplified (OpenCC t2s), family/given split with compound surnames, pinyin
without tones with surname readings (单 → shan). Romanised names in either order (Chen Wei / WEI Chen /
"Chen, Wei"). Western names: titles, suffixes, particles, nickname-resolved given name.

``name_key`` is the order-insensitive comparison key: the sorted (family, given) tokens in pinyin or
lower-case ASCII, so 陳偉, 陈伟, Chen Wei, WEI CHEN and "Chen, Wei" all give ``"chen wei"``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import opencc
from pypinyin import lazy_pinyin
from pypinyin.phrases_dict import phrases_dict
from pypinyin.pinyin_dict import pinyin_dict

from hub.standardise._name_data import (
    AMBIGUOUS_LEGAL_FORMS,
    CN_HONORIFICS,
    CN_LEGAL_SUFFIXES,
    COMPOUND_SURNAMES,
    FEMININE,
    LATIN_LEGAL_FORMS,
    NAME_NOTE_WORDS,
    NICKNAME_VARIANTS,
    NICKNAMES,
    PARTICLES,
    ROMANISED_SURNAME_PINYIN,
    ROMANISED_SURNAMES,
    SINGLE_SURNAMES,
    SUFFIXES,
    SURNAME_READINGS,
    TITLES,
)
from hub.standardise.text import as_str, fold_ascii, normalize_text, text_key

_MAX_NAME_LEN = 256
_MAX_COMPANY_LEN = 512


class PersonName(NamedTuple):
    display: str | None         # cleaned full name as written (titles removed, case fixed)
    family: str | None          # simplified hanzi for Chinese names, cleaned Latin otherwise
    given: str | None
    script: str | None          # 'han' | 'latin' | 'mixed' | 'other' | None
    han: str | None             # simplified hanzi full name (family+given, no spaces)
    family_pinyin: str | None   # 'chen', 'ouyang' (Chinese and romanised-Chinese names only)
    given_pinyin: str | None    # 'wei', 'xiaoming'
    name_key: str | None        # 'chen wei' — sorted tokens, order-insensitive
    given_canonical: str | None  # nickname-resolved lower-case given name ('robert' for Bob)
    flags: tuple[str, ...]
    middle: str | None = None   # Western middle name(s), if any
    # Lower-case ASCII comparison forms of each part in any script: pinyin for Chinese names, folded
    # Latin for others ('chen' / 'wei', 'muller' / 'jose', 'vanbeethoven' / 'ludwig').
    family_key: str | None = None
    given_key: str | None = None


class Company(NamedTuple):
    name: str | None            # name without legal form: '华为技术', 'Acme'
    legal_form: str | None      # '有限公司', 'Co Ltd', 'GmbH'
    key: str | None             # comparison key: simplified, case-folded, punctuation-free name
    flags: tuple[str, ...]


_EMPTY_NAME = PersonName(None, None, None, None, None, None, None, None, None, ("name.missing",))
_BAD_NAME = PersonName(None, None, None, None, None, None, None, None, None, ("name.unparseable",))
_EMPTY_COMPANY = Company(None, None, None, ("company.missing",))
_BAD_COMPANY = Company(None, None, None, ("company.unparseable",))

# --- Chinese helpers -------------------------------------------------------------------------------

_T2S = opencc.OpenCC("t2s")
_HAN_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_NON_HAN_RE = re.compile("[^\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]+")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_OTHER_LETTER_RE = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_WS_RE = re.compile(r"\s+")
_TOKEN_STRIP = ".'’,;:()[]\"“”"

_SURNAME_RANK: dict[str, int] = {}
for _i, _ch in enumerate(SINGLE_SURNAMES):
    _SURNAME_RANK.setdefault(_ch, _i)
_SINGLE_SURNAMES = frozenset(_SURNAME_RANK)


@lru_cache(maxsize=100_000)
def to_simplified(s: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s); non-Chinese text passes through."""
    if not s or s.isascii():
        return s
    return _T2S.convert(s)


@lru_cache(maxsize=50_000)
def _char_pinyin(ch: str) -> str:
    r = lazy_pinyin(ch, errors="ignore")
    return r[0].lower() if r and r[0].isascii() else ""


@lru_cache(maxsize=100_000)
def pinyin(s: str) -> str:
    """Toneless pinyin of a Chinese string, syllables joined ('小明' → 'xiaoming'); non-Han dropped."""
    if len(s) <= 4 and s not in phrases_dict:
        # Names are short and rarely dictionary phrases: per-character readings from a cache are ~50×
        # cheaper than pypinyin's phrase segmentation and give the same result when there is no phrase.
        return "".join(_char_pinyin(ch) for ch in s)
    return "".join(p for p in lazy_pinyin(s, errors="ignore") if p.isascii()).lower()


def surname_pinyin(family: str) -> str:
    """Pinyin of a family name using surname readings (单 → shan, 曾 → zeng)."""
    reading = SURNAME_READINGS.get(family)
    if reading:
        return reading
    return "".join(SURNAME_READINGS.get(ch) or pinyin(ch) for ch in family)


def split_han_name(han: str) -> tuple[str | None, str | None]:
    """Split a simplified Chinese full name (no spaces) into (family, given)."""
    if not han:
        return None, None
    if len(han) >= 3 and han[:2] in COMPOUND_SURNAMES:
        return han[:2], han[2:]
    if len(han) == 1:
        return han, None
    if len(han) == 2 and han in COMPOUND_SURNAMES:
        return han, None
    return han[0], han[1:]


# Rank of each surname pinyin (lowest = most common), for romanised-name order guessing.
_PINYIN_SURNAME_RANK: dict[str, int] = {}
for _ch, _rank in _SURNAME_RANK.items():
    _PINYIN_SURNAME_RANK.setdefault(surname_pinyin(_ch), _rank)
for _cs in COMPOUND_SURNAMES:
    _PINYIN_SURNAME_RANK.setdefault(surname_pinyin(_cs), 500)
for _r in ROMANISED_SURNAMES:
    # Cantonese/Hokkien forms (chan, wong, ng) are as common in their communities as the top pinyin
    # surnames are on the mainland.
    _PINYIN_SURNAME_RANK.setdefault(_r, 30)
del _i, _ch, _rank, _cs, _r

# Every toneless pinyin syllable (from pypinyin's own dictionary), to tell "xiaoming" from "robert".
_TONE_MAP = str.maketrans(
    "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm"
)
_SYLLABLES = frozenset(
    r.translate(_TONE_MAP)
    for readings in pinyin_dict.values()
    for r in readings.split(",")
    if r.translate(_TONE_MAP).isascii() and r.translate(_TONE_MAP).isalpha()
) - {"m", "n", "ng", "hm", "hng", "ň", "ê"}
_MAX_SYL = max(len(s) for s in _SYLLABLES)


@lru_cache(maxsize=50_000)
def is_pinyin(token: str) -> bool:
    """True if a lower-case ASCII token segments into toneless pinyin syllables ('xiaoming', 'ouyang')."""
    n = len(token)
    if n == 0 or n > 24 or not token.isascii():
        return False
    ok = [False] * (n + 1)
    ok[0] = True
    for i in range(n):
        if not ok[i]:
            continue
        for j in range(i + 1, min(n, i + _MAX_SYL) + 1):
            if token[i:j] in _SYLLABLES:
                ok[j] = True
    return ok[n]


# --- Latin helpers ---------------------------------------------------------------------------------

def _fix_case(tok: str) -> str:
    """WEI → Wei, chen → Chen; mixed case (McDonald, DeVito) is kept as written."""
    if tok.islower() and tok in PARTICLES:
        return tok
    if tok.isupper() or tok.islower():
        return "-".join(p[:1].upper() + p[1:].lower() for p in tok.split("-"))
    return tok


def _latin_key(tok: str) -> str:
    """Comparison form of a Latin token: ASCII-folded, lower-case, no hyphens/apostrophes."""
    t = fold_ascii(tok).lower()
    return "".join(c for c in t if c.isalnum())


def _canonical_given(given_key: str | None) -> str | None:
    if not given_key:
        return None
    return NICKNAMES.get(given_key, given_key)


def _strip_titles_suffixes(tokens: list[str], flags: list[str]) -> list[str]:
    while len(tokens) > 1 and tokens[0].lower().rstrip(".") in TITLES:
        tokens.pop(0)
        if "name.title" not in flags:
            flags.append("name.title")
    while len(tokens) > 1 and tokens[-1].lower().rstrip(".").replace(".", "") in SUFFIXES:
        tokens.pop()
        if "name.suffix" not in flags:
            flags.append("name.suffix")
    return tokens


def _tokens(s: str) -> list[str]:
    # tokens without a single letter/digit ("&", "-", stray symbols) carry no name
    return [t for t in (x.strip(_TOKEN_STRIP) for x in s.split()) if t and any(c.isalnum() for c in t)]


def _surname_rank(tok_key: str) -> int | None:
    return _PINYIN_SURNAME_RANK.get(tok_key)


def _build_latin(display_tokens: list[str], fam_idx: list[int], flags: list[str]) -> PersonName:
    """Assemble a PersonName from Latin tokens given which indices make up the family name."""
    fam_set = set(fam_idx)
    family_toks = [display_tokens[i] for i in fam_idx]
    other = [t for i, t in enumerate(display_tokens) if i not in fam_set]
    keys_other = [_latin_key(t) for t in other]
    keys_family = [_latin_key(t) for t in family_toks]
    family = " ".join(_fix_case(t) for t in family_toks) or None
    family_key = "".join(keys_family)
    chinese = bool(family_key) and all(is_pinyin(k) for k in keys_other + keys_family if k) and (
        _surname_rank(family_key) is not None
    )
    middle = None
    if chinese:
        # Romanised Chinese: given-name syllables belong together ("Xiao Ming" = xiaoming).
        given = " ".join(_fix_case(t) for t in other) or None
        given_key = "".join(keys_other) or None
        family_py: str | None = family_key
        given_py = given_key
        key_tokens = [family_key, given_key or ""]
    else:
        given = _fix_case(other[0]) if other else None
        middle = " ".join(_fix_case(t) for t in other[1:]) or None
        given_key = keys_other[0] if keys_other else None
        family_py = given_py = None
        # Middle names/initials are left out of the key: "Robert J. Smith" must meet "Robert Smith".
        key_tokens = [family_key, given_key or ""]
    if given_key and len(given_key) == 1:
        flags.append("name.initial")  # "J. Smith": compare the initial, not the name
    display = " ".join(_fix_case(t) for t in display_tokens)
    name_key = " ".join(sorted(k for k in key_tokens if k)) or None
    return PersonName(
        display, family, given, "latin", None, family_py, given_py, name_key,
        _canonical_given(given_key), tuple(flags), middle, family_key or None, given_key or None,
    )


def _parse_latin(s: str, flags: list[str]) -> PersonName:
    comma_family: list[str] | None = None
    if "," in s:
        head, _, tail = s.partition(",")
        tail_toks = _tokens(tail)
        # "Smith, John" (family first) vs "John Smith, Jr." (suffix after the comma).
        if tail_toks and all(t.lower().rstrip(".").replace(".", "") in SUFFIXES for t in tail_toks):
            flags.append("name.suffix")
            s = head
        else:
            comma_family = _tokens(head)
            s = tail
    tokens = _strip_titles_suffixes(_tokens(s), flags)
    if comma_family is not None:
        comma_family = _strip_titles_suffixes(comma_family, flags)
        if not comma_family:
            comma_family = None
    if comma_family:
        display_tokens = tokens + comma_family
        fam_idx = list(range(len(tokens), len(display_tokens)))
        return _build_latin(display_tokens, fam_idx, flags)
    if not tokens:
        return _BAD_NAME
    keys = [_latin_key(t) for t in tokens]
    if not any(keys):
        return _BAD_NAME
    n = len(tokens)
    if n == 1:
        flags.append("name.single_token")
        if _surname_rank(keys[0]) is not None and is_pinyin(keys[0]) or keys[0] in ROMANISED_SURNAMES:
            return _build_latin(tokens, [0], flags)
        return _build_latin(tokens, [], flags)
    # 1) A single all-caps token is the family name (passport style: "WEI Chen", "Chen WEI").
    caps = [i for i, t in enumerate(tokens) if len(t) > 1 and t.isupper()]
    if len(caps) == 1 and n > 1:
        return _build_latin(tokens, caps, flags)
    # 2) Romanised Chinese: every token is pinyin (or a known romanised surname); the more common
    #    surname among the first/last token is the family name.
    if all(is_pinyin(k) or k in ROMANISED_SURNAMES for k in keys):
        first, last = _surname_rank(keys[0]), _surname_rank(keys[-1])
        if first is not None or last is not None:
            if first is not None and last is not None:
                flags.append("name.order_guessed")
                idx = 0 if first <= last else n - 1
            else:
                idx = 0 if first is not None else n - 1
            return _build_latin(tokens, [idx], flags)
    # 3) Western order: last token (with its lower-case particles) is the family name.
    start = n - 1
    while start > 1 and tokens[start - 1].lower() in PARTICLES:
        start -= 1
    return _build_latin(tokens, list(range(start, n)), flags)


def _han_result(display: str, family: str | None, given: str | None, flags: list[str],
                script: str = "han") -> PersonName:
    fam_py = surname_pinyin(family) if family else None
    giv_py = pinyin(given) if given else None
    han = (family or "") + (given or "")
    key = " ".join(sorted(k for k in (fam_py, giv_py) if k)) or None
    return PersonName(
        display, family, given, script, han or None, fam_py or None, giv_py or None, key,
        giv_py or None, tuple(flags), None, fam_py or None, giv_py or None,
    )


_FAMILIAR_PREFIXES = ("老", "小", "阿")


def _familiar_form(han: str) -> tuple[str | None, str | None] | None:
    """(family, given) of 老赵 / 小王 (surname) or 小刚 / 阿强 (given name); None when ``han`` is a real
    name that merely starts with one of those characters (小 and 阿 are not surnames; 老 is not either)."""
    if len(han) not in (2, 3) or han[0] not in _FAMILIAR_PREFIXES:
        return None
    rest = han[1:]
    # 老 goes with surnames; 小 and 阿 mostly with given names (小明, 阿强) unless the character is one of the
    # most common surnames (小王, 阿陈)
    top = 10_000 if han[0] == "老" else 40
    if rest in COMPOUND_SURNAMES or _SURNAME_RANK.get(rest, 10_000) < top:
        return rest, None
    if len(rest) == 1:
        return None, rest
    return None


def _parse_han(text: str, flags: list[str], script: str) -> PersonName:
    display = text
    simp = to_simplified(text)
    if script == "mixed":
        flags.append("name.mixed_script")
    if "·" in simp:
        # Transliterated (e.g. Uyghur) names: 买买提·艾力. No family/given split in the Chinese sense.
        parts = [p for p in _NON_HAN_RE.split(simp) if p]
        flags.append("name.transliterated")
        han = "".join(parts)
        py = " ".join(pinyin(p) for p in parts)
        return PersonName(display, None, han, script, han, None, pinyin(han), " ".join(sorted(py.split())) or None,
                          pinyin(han), tuple(flags), None, None, pinyin(han) or None)
    parts = [p for p in _NON_HAN_RE.split(simp) if p]
    if not parts:
        return _BAD_NAME
    if len(parts) == 2 and script == "han" and (
        parts[0] in _SINGLE_SURNAMES or parts[0] in COMPOUND_SURNAMES
    ):
        # "欧阳 娜娜": the writer told us where the split is.
        family, given = parts[0], parts[1]
    else:
        han = "".join(parts)
        for h in CN_HONORIFICS:
            if han.endswith(h) and 1 <= len(han) - len(h) <= 4:
                # 陈先生 / 王女士 / 李总: family name + form of address; 陈伟先生: full name + address.
                rest = han[: -len(h)]
                flags.append("name.honorific")
                if rest in _SINGLE_SURNAMES or rest in COMPOUND_SURNAMES:
                    return _han_result(display, rest, None, flags, script)
                han = rest
                break
        familiar = _familiar_form(han)
        if familiar is not None:
            # 老赵 / 小王: "old/young" + surname; 小刚 / 阿强: + given name — a form of address, not a name
            flags.append("name.familiar")
            return _han_result(display, *familiar, flags, script)
        family, given = split_han_name(han)
        if len(han) > 4:
            flags.append("name.unusual_length")
        if given is None:
            flags.append("name.family_only")
        elif family not in _SINGLE_SURNAMES and family not in COMPOUND_SURNAMES:
            flags.append("name.unknown_surname")
    return _han_result(display, family, given, flags, script)


# Emoji and pictographs: typical of social-media display names (WeChat nicknames), not legal names.
_SYMBOL_RE = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0e\ufe0f\U0001f000-\U0001faff]")


@lru_cache(maxsize=200_000)
def _standardise_full(raw: str) -> PersonName:
    text = normalize_text(raw)
    if not text:
        return _EMPTY_NAME
    has_han = _HAN_RE.search(text) is not None
    has_latin = _LATIN_RE.search(text) is not None
    flags: list[str] = []
    if _SYMBOL_RE.search(text):
        flags.append("name.symbols")
        text = _WS_RE.sub(" ", _SYMBOL_RE.sub(" ", text)).strip()
    if has_han:
        if _OTHER_LETTER_RE.search(text):
            flags.append("name.other_script")  # kana/hangul next to Han: a Japanese/Korean name
        return _parse_han(text, flags, "mixed" if has_latin else "han")
    if has_latin:
        return _parse_latin(text, flags)
    if _OTHER_LETTER_RE.search(text):
        # Hangul, kana, Cyrillic, Arabic…: keep a case-folded token key, no parsing.
        toks = sorted(text_key(text).split())
        key = " ".join(toks) or None
        if key is None:
            return _BAD_NAME
        return PersonName(text, None, None, "other", None, None, None, key, None, ("name.other_script",))
    return _BAD_NAME


@lru_cache(maxsize=100_000)
def _looks_like_full_name(s: str, has_han: bool) -> bool:
    if has_han:
        han = "".join(_HAN_RE.findall(to_simplified(s)))
        # a lone surname (陈, 欧阳) is what a family field should hold; anything longer is a full name
        return len(han) >= 2 and han not in COMPOUND_SURNAMES
    # Latin: only a romanised Chinese name ("Chen Wei") is re-parsed; "Mary Ann" in a given-name field
    # or "van Dijk" in a family-name field mean what the field says.
    keys = [_latin_key(t) for t in _tokens(s)]
    return (
        len(keys) >= 2
        and all(k and (is_pinyin(k) or k in ROMANISED_SURNAMES) for k in keys)
        and any(_surname_rank(k) is not None for k in keys)
    )


def _standardise_parts(given: str, family: str) -> PersonName:
    g = normalize_text(given)
    f = normalize_text(family)
    if not g and not f:
        return _EMPTY_NAME
    joined = f"{f}{g}"
    has_han = _HAN_RE.search(joined) is not None
    has_latin = _LATIN_RE.search(joined) is not None
    flags: list[str] = []
    only = f if not g else g if not f else None
    if only is not None and _looks_like_full_name(only, has_han):
        # The whole name typed into one field (陈伟 as family name, "Chen Wei" as first name).
        res = _standardise_full(only)
        return res._replace(flags=(*res.flags, "name.single_field"))
    if has_han and not has_latin:
        fs = "".join(_HAN_RE.findall(to_simplified(f))) or None
        gs = "".join(_HAN_RE.findall(to_simplified(g))) or None
        if fs is None and gs is None:
            return _BAD_NAME
        if gs is None:
            flags.append("name.family_only")
        display = f"{f}{g}"
        return _han_result(display, fs, gs, flags)
    if has_han:
        # e.g. family='陈', given='David': treat the Chinese part as authoritative.
        return _standardise_full(f"{f}{g}" if _HAN_RE.search(f) else f"{g}{f}")
    if not has_latin:
        return _standardise_full(f"{g} {f}".strip())
    # Latin with explicit parts: no order guessing, the source told us.
    g_toks = _strip_titles_suffixes(_tokens(g), flags) if g else []
    f_toks = _strip_titles_suffixes(_tokens(f), flags) if f else []
    toks = g_toks + f_toks
    if not toks:
        return _BAD_NAME
    return _build_latin(toks, list(range(len(g_toks), len(toks))), flags)


def _gendered(res: PersonName, gender: object) -> PersonName:
    """Re-resolve an ambiguous nickname (pat, alex, chris) with the record's gender."""
    if res.script != "latin" or not res.given:
        return res
    variants = NICKNAME_VARIANTS.get(_latin_key(res.given.split()[0]))
    if not variants or len(variants) < 2:
        return res
    g = standardise_gender(gender)
    if g is None:
        return res
    pick = next((v for v in variants if (v in FEMININE) == (g == "F")), variants[0])
    return res if pick == res.given_canonical else res._replace(given_canonical=pick)


_NOTE_KIND = {w: kind for kind, words in NAME_NOTE_WORDS.items() for w in words}
# a note in brackets after the name: ASCII brackets after a space ("John Smith (old account)"; =HYPERLINK("…")
# is no name with a note), full-width ones also without (王伟（停用）)
_BRACKET_TAIL_RE = re.compile(r"(?:\s+[(\[{][^()\[\]（）【】{}]*[)\]}]|\s*[（【][^()\[\]（）【】{}]*[）】])\s*$")
_HASH_TAIL_RE = re.compile(r"\s*#\s*[\w\-/.]*\s*$")
_DASH_TAIL_RE = re.compile(r"\s+[-–—/|:]+\s*([^-–—/|:]+)$")
_CODE_TOKEN_RE = re.compile(r"^(?:[A-Za-z]{0,4}[-_.]?\d{2,}[A-Za-z0-9]*|\d+)$")
_LEAD_MARK_RE = re.compile(r"^\s*(?:z{2,}|x{2,}|\*+|dnu|do not use|test|测试|測試)\s*[-:*_]+\s*", re.I)
_NOTE_SPLIT_RE = re.compile(r"[\s,._*!]+")


def _note_words(text: str) -> list[str] | None:
    """The note kinds of ``text`` when every word of it is a note word or a code, else None."""
    words = [w for w in _NOTE_SPLIT_RE.split(text.lower()) if w]
    if not words:
        return []
    kinds = []
    for w in words:
        if w in _NOTE_KIND:
            kinds.append(_NOTE_KIND[w])
        elif _CODE_TOKEN_RE.match(w):
            kinds.append("code")
        else:
            return None
    return kinds


# the note words in Han script, in _NOTE_KIND's order (the first that ends a name wins)
_HAN_NOTE_WORDS = tuple(x for x in _NOTE_KIND if _HAN_RE.search(x))


@lru_cache(maxsize=100_000)  # pure; surnames and given names repeat across records and sources
def split_name_note(raw: str) -> tuple[str, tuple[str, ...]]:
    """(name, note kinds) of a name field that carries an ERP's note: ``Ines Khan #00999`` → ("Ines Khan",
    ("code",)); ``John Smith (old account)`` → ("John Smith", ("inactive",)); ``Anna Dubois DUPLICATE``,
    ``Maria Rossi - do not use``, ``王伟 测试``, ``ZZZ - Old Customer``. A bracketed tail is always a note (an
    alias in another script included); other tails only when every word is a note word or a code. Kinds:
    duplicate, test, inactive, code, note."""
    text = raw
    kinds: list[str] = []
    m = _LEAD_MARK_RE.match(text)
    if m and text[m.end():].strip():
        kinds.extend(_note_words(m.group(0)) or ["note"])
        text = text[m.end():]
    for _ in range(4):
        text = text.rstrip()
        m = _BRACKET_TAIL_RE.search(text) or _HASH_TAIL_RE.search(text)
        if m and m.start() > 0:
            inner = m.group(0).strip().strip("#()[]（）【】{} ")
            kinds.extend(_note_words(inner) or ["note"] if inner else ["code"])
            text = text[:m.start()]
            continue
        m = _DASH_TAIL_RE.search(text)
        if m and m.start() > 0 and (found := _note_words(m.group(1))):
            kinds.extend(found)
            text = text[:m.start()]
            continue
        # trailing words: DUPLICATE, 测试, a code (C00123) — while a name is left before them
        toks = text.split()
        if len(toks) >= 2 and (found := _note_words(toks[-1])) and found != ["inactive"]:
            kinds.extend(found)
            text = " ".join(toks[:-1])
            continue
        han_tail = next((x for x in _HAN_NOTE_WORDS if text.endswith(x)
                         and len(_HAN_RE.findall(text[:-len(x)])) >= 2), None)
        if han_tail:  # 王伟测试
            kinds.append(_NOTE_KIND[han_tail])
            text = text[:-len(han_tail)]
            continue
        break
    return text.strip(), tuple(dict.fromkeys(kinds))


def organisation_form(raw: str) -> str | None:
    """The legal form when the name is an organisation's (ACME Trading GmbH, 华为技术有限公司, Smith & Co.
    Ltd), else None. Ambiguous short forms count only when written as forms are (AG, S.A., Co.), not as a
    capitalised name part (Wang Se)."""
    c = standardise_company(raw)
    if c.legal_form is None or c.name is None:
        return None
    if _HAN_RE.search(raw):
        return c.legal_form
    toks = [t for t in re.split(r"[\s,]+", normalize_text(raw)) if t]
    if len(toks) < 2:
        return None
    last = toks[-1]
    key = last.lower().replace(".", "").strip("()")
    if key in AMBIGUOUS_LEGAL_FORMS:
        written_as_form = "." in last or (last.isupper() and not all(t.isupper() for t in toks[:-1])) \
            or last in ("GmbH", "SpA", "SaS")
        if not written_as_form and not (key in ("company", "group", "holdings") and len(toks) >= 2
                                        and toks[-2].lower() not in ("the",)):
            return None
    return c.legal_form


_NOTE_FLAGS = {"duplicate": "name.note_duplicate", "test": "name.note_test", "inactive": "name.note_inactive",
               "code": "name.note_code"}


def _note_flags(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """``name.note`` plus ``name.note_<kind>`` for what the ERP said (duplicate, test, inactive, code)."""
    return ("name.note", *(_NOTE_FLAGS[k] for k in kinds if k in _NOTE_FLAGS)) if kinds else ()


def _with_flags(res: PersonName, flags: tuple[str, ...]) -> PersonName:
    return res._replace(flags=(*res.flags, *flags)) if flags else res


def _organisation(text: str, form: str) -> PersonName:
    """A party whose name is an organisation's: no person parts; ``name_key`` is the company key."""
    c = standardise_company(text)
    display = normalize_text(text)
    return PersonName(display, None, None, "han" if _HAN_RE.search(text) else "latin", None, None, None,
                      c.key, None, ("name.organisation",))


def standardise_person_name(
    full: object = None, given: object = None, family: object = None, gender: object = None
) -> PersonName:
    """Standardise a person name given as a full string and/or explicit given/family parts.

    Explicit parts win over the full string (the source knows its own fields). ``gender`` (any coding
    `standardise_gender` reads) only disambiguates nicknames such as Pat (Patrick/Patricia). Never
    raises: junk gives ``PersonName(... flags=('name.unparseable',))``.
    """
    try:
        g = as_str(given) or ""
        f = as_str(family) or ""
        res = None
        if g.strip() or f.strip():
            if len(g) > _MAX_NAME_LEN or len(f) > _MAX_NAME_LEN:
                return _BAD_NAME
            f, f_note = split_name_note(f) if f.strip() else (f, ())
            g, g_note = split_name_note(g) if g.strip() else (g, ())
            note = _note_flags(f_note + g_note)
            only = f if not g.strip() else g if not f.strip() else None
            form = organisation_form(only) if only else None
            res = _organisation(only, form) if form and only else _standardise_parts(g, f)
            res = _with_flags(res, note) if res.display is not None else None
        if res is None:
            s = as_str(full)
            if s is None or not s.strip():
                return _EMPTY_NAME
            if len(s) > _MAX_NAME_LEN:
                return _BAD_NAME
            s, kinds = split_name_note(s)
            if not s:
                return _BAD_NAME._replace(flags=("name.unparseable", *_note_flags(kinds)))
            form = organisation_form(s)
            res = _with_flags(_organisation(s, form) if form else _standardise_full(s), _note_flags(kinds))
        return _gendered(res, gender) if gender is not None else res
    except Exception:  # defensive: never let one odd name stop a batch
        return _BAD_NAME._replace(flags=("name.unparseable", "standardise.error"))


def surname_variants(key: object) -> tuple[str, ...]:
    """Every Mandarin pinyin a romanised Chinese surname key can stand for, the key itself first:
    'wong' -> ('wong', 'wang', 'huang'), 'chan' -> ('chan', 'chen'), 'smith' -> ('smith',)."""
    k = as_str(key)
    if not k:
        return ()
    k = k.strip().lower()
    return (k, *ROMANISED_SURNAME_PINYIN.get(k, ()))


def nickname_canonical(given: object) -> str | None:
    """'Bob' → 'robert', 'Liz' → 'elizabeth'; unknown names are returned lower-cased."""
    s = as_str(given)
    if not s:
        return None
    k = _latin_key(normalize_text(s))
    return _canonical_given(k) if k else None


def given_name_variants(given: object) -> tuple[str, ...]:
    """Every canonical name a given name may stand for: 'Pat' → ('patricia', 'patrick'), 'Bob' →
    ('robert',), 'Zhang' → ('zhang',). Empty for junk. Lets a comparison treat Pat ~ Patrick as a
    nickname match without choosing a gender."""
    s = as_str(given)
    if not s:
        return ()
    k = _latin_key(normalize_text(s)) if len(s) <= _MAX_NAME_LEN else ""
    if not k:
        return ()
    return NICKNAME_VARIANTS.get(k, (k,))


# --- Companies -------------------------------------------------------------------------------------

_CN_SUFFIX_RE = re.compile("(?:" + "|".join(CN_LEGAL_SUFFIXES) + r")$")
_PAREN_TAIL_RE = re.compile(r"\s*[(（][^()（）]*[)）]\s*$")
_LATIN_SPLIT_RE = re.compile(r"[\s,]+")


def _strip_latin_forms(name: str) -> tuple[str, list[str]]:
    toks = [t for t in _LATIN_SPLIT_RE.split(name) if t]
    forms: list[str] = []
    while len(toks) > 1:
        last = toks[-1]
        k = last.lower().replace(".", "").strip("()")
        # "S.A.", "S.p.A.", "B.V." and "L.L.C." lose their dots above; "&" in "& Co" goes with the form.
        if k in LATIN_LEGAL_FORMS:
            forms.append(LATIN_LEGAL_FORMS[k])
            toks.pop()
            if toks and toks[-1] in ("&", "and", "und") and forms[-1] == "Co":
                toks.pop()
            continue
        # "GmbH & Co. KG" written as "GmbH&Co.KG"
        break
    forms.reverse()
    return " ".join(toks), forms


@lru_cache(maxsize=100_000)
def _standardise_company(raw: str) -> Company:
    text = normalize_text(raw)
    if not text:
        return _EMPTY_COMPANY
    simp = to_simplified(text)
    flags: list[str] = []
    name = simp
    forms: list[str] = []
    if _HAN_RE.search(simp):
        # Chinese: strip legal suffixes from the end, repeatedly (…集团有限公司 is one entry; 分公司 may
        # follow a location in parentheses: 某某(上海)分公司).
        while True:
            m = _CN_SUFFIX_RE.search(name)
            if not m or m.start() == 0:
                break
            forms.insert(0, m.group(0))
            name = name[: m.start()].rstrip()
    name, latin_forms = _strip_latin_forms(name)
    forms = latin_forms + forms
    name = name.strip(" ,.-&")
    if not name:
        return _BAD_COMPANY
    legal_form = " ".join(forms) or None
    if legal_form is None:
        flags.append("company.no_legal_form")
    key = fold_ascii(text_key(name))
    if key.startswith("the "):
        key = key[4:]
    return Company(name, legal_form, key.replace(" ", "") if _HAN_RE.search(key) else key or None, tuple(flags))


def standardise_company(raw: object) -> Company:
    """Split a company name into name + legal form ('华为技术有限公司' → '华为技术' + '有限公司');
    ``key`` is the comparison key of the name part. Never raises."""
    s = as_str(raw)
    if s is None or not s.strip():
        return _EMPTY_COMPANY
    if len(s) > _MAX_COMPANY_LEN:
        return _BAD_COMPANY
    try:
        return _standardise_company(s)
    except Exception:
        return Company(None, None, None, ("company.unparseable", "standardise.error"))


# --- Gender ----------------------------------------------------------------------------------------

_GENDER = {
    **dict.fromkeys(("m", "male", "man", "men", "masculine", "boy", "男", "男性", "男士", "先生", "mr", "herr",
                     "h", "1", "♂"), "M"),
    **dict.fromkeys(("f", "female", "woman", "women", "feminine", "girl", "w", "weiblich", "女", "女性", "女士",
                     "小姐", "太太", "mrs", "ms", "miss", "frau", "2", "♀"), "F"),
    "männlich": "M", "mannlich": "M",
}


@lru_cache(maxsize=1024)
def _gender(s: str) -> str | None:
    return _GENDER.get(text_key(to_simplified(s)).replace(" ", ""))


def standardise_gender(raw: object) -> str | None:
    """'M' | 'F' | None from the usual codings: M/F, male/female, 男/女, 先生/女士, WeChat's 1/2 (0 and
    anything else = unknown). Never raises."""
    s = as_str(raw)
    if not s or len(s) > 32:
        return None
    try:
        return _gender(s)
    except Exception:
        return None
