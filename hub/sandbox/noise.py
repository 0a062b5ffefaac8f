"""Realistic per-observation noise: how a clean Person fact looks when typed into a source system."""

from __future__ import annotations

import random
from datetime import date

from hub.sandbox import _data as D
from hub.sandbox.people import Person, to_traditional, wchoice

_FULLWIDTH = str.maketrans("0123456789+-() ", "０１２３４５６７８９＋－（）　")


def fullwidth(s: str) -> str:
    return s.translate(_FULLWIDTH)


def name_variant(p: Person, rng: random.Random) -> tuple[str, str, str]:
    """Return (first_name, last_name, display_name) as a person might type it.

    Chinese: simplified hanzi, traditional script, pinyin given-first or family-first, WEI CHEN caps.
    Western: nicknames (Bob for Robert), case noise, swapped fields.
    """
    r = rng.random()
    if p.culture == "cn":
        fam_py, giv_py = p.family_pinyin.capitalize(), p.given_pinyin.capitalize()
        if p.nicknames and rng.random() < 0.3:
            return p.nicknames[0], fam_py, f"{p.nicknames[0]} {fam_py}"
        if r < 0.45:
            return p.given_name, p.family_name, p.family_name + p.given_name
        if r < 0.55:
            fam, giv = to_traditional(p.family_name), to_traditional(p.given_name)
            return giv, fam, fam + giv
        if r < 0.75:
            return giv_py, fam_py, f"{giv_py} {fam_py}"
        if r < 0.85:
            return fam_py, giv_py, f"{fam_py} {giv_py}"  # family name typed into "first name"
        if r < 0.93:
            return giv_py.upper(), fam_py.upper(), f"{giv_py.upper()} {fam_py.upper()}"
        if r < 0.97:
            spaced = " ".join(p.given_pinyin)  # rare, but seen: "Xiao Ming" typed "XiaoMing"/"Xiao-ming"
            giv = giv_py if len(p.given_name) == 1 else giv_py[:1] + spaced[1:].replace(" ", "")
            return giv, fam_py.lower(), f"{giv} {fam_py.lower()}"
        return "", p.family_name + p.given_name, p.family_name + p.given_name  # whole name in one field
    first = p.given_name
    if p.nicknames and r < 0.25:
        first = rng.choice(p.nicknames)
    last = p.family_name
    r2 = rng.random()
    if r2 < 0.08:
        first, last = first.upper(), last.upper()
    elif r2 < 0.15:
        first, last = first.lower(), last.lower()
    elif r2 < 0.18:
        last = last.replace("ü", "ue").replace("ö", "oe").replace("ß", "ss")
    return first, last, f"{first} {last}"


def homophone(s: str, rng: random.Random) -> str:
    """Swap one character for a same-pinyin one, as a pinyin IME slip does (陈伟 -> 陈玮)."""
    idx = [i for i, c in enumerate(s) if c in D.CN_HOMOPHONES]
    if not idx:
        return s
    i = rng.choice(idx)
    alts = [c for c in D.CN_HOMOPHONES[s[i]] if c != s[i]]
    return s[:i] + rng.choice(alts) + s[i + 1:]


def typo(s: str, rng: random.Random) -> str:
    """One keyboard slip: drop, double, or swap two neighbouring characters."""
    if len(s) < 4:
        return s
    i = rng.randrange(1, len(s) - 1)
    k = rng.randrange(3)
    if k == 0:
        return s[:i] + s[i + 1:]
    if k == 1:
        return s[:i] + s[i] + s[i:]
    return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]


def phone_variant(e164: str, rng: random.Random) -> str:
    """Render an E.164 number the way it appears in real systems."""
    if e164.startswith("+86"):
        nat = e164[3:]
        if nat.startswith("1") and len(nat) == 11:  # mobile
            forms = (nat, e164, f"+86 {nat[:3]}-{nat[3:7]}-{nat[7:]}", f"{nat[:3]} {nat[3:7]} {nat[7:]}",
                     "0086" + nat, f"86-{nat}", fullwidth(nat), f"+86 {nat[:3]} {nat[3:7]} {nat[7:]}",
                     f"({nat[:3]}){nat[3:7]}-{nat[7:]}")
            weights = (30, 14, 10, 10, 8, 5, 5, 10, 3)
        else:  # landline: area code 2 or 3 digits after the trunk 0
            ac = 2 if nat[0] in "12" else 3
            forms = ("0" + nat, f"0{nat[:ac]}-{nat[ac:]}", e164, f"+86 {nat[:ac]} {nat[ac:]}",
                     f"(0{nat[:ac]}){nat[ac:]}", nat[ac:])
            weights = (25, 30, 10, 15, 10, 10)
        return wchoice(rng, forms, weights)
    if e164.startswith("+1"):
        n = e164[2:]
        forms = (e164, f"({n[:3]}) {n[3:6]}-{n[6:]}", f"{n[:3]}-{n[3:6]}-{n[6:]}", f"1{n}", f"+1 {n[:3]} {n[3:6]} {n[6:]}",
                 f"001{n}")
        return wchoice(rng, forms, (20, 30, 25, 10, 10, 5))
    if e164.startswith("+44"):
        n = e164[3:]
        forms = (e164, "0" + n, f"0{n[:4]} {n[4:]}", f"+44 {n[:4]} {n[4:]}", f"+44 (0){n[:4]} {n[4:]}", "0044" + n)
        return wchoice(rng, forms, (15, 25, 30, 15, 10, 5))
    if e164.startswith("+49"):
        n = e164[3:]
        forms = (e164, "0" + n, f"0{n[:3]} {n[3:]}", f"+49 {n[:3]} {n[3:]}", f"+49 (0){n[:3]} {n[3:]}",
                 f"0{n[:3]}/{n[3:]}", "0049" + n)
        return wchoice(rng, forms, (15, 20, 25, 15, 10, 10, 5))
    return e164


def date_variant(d: date, rng: random.Random, culture: str = "cn") -> str:
    """Render a birth date in one of the formats seen in Chinese and Western forms."""
    forms_cn = (d.isoformat(), f"{d.year}/{d.month}/{d.day}", f"{d:%Y%m%d}", f"{d.year}年{d.month}月{d.day}日",
                f"{d:%Y.%m.%d}", f"{d:%Y/%m/%d}")
    forms_west = (d.isoformat(), f"{d:%d/%m/%Y}", f"{d:%m/%d/%Y}", f"{d:%d.%m.%Y}", f"{d.day} {d:%b %Y}")
    if culture == "cn":
        return wchoice(rng, forms_cn, (30, 20, 15, 20, 5, 10))
    return wchoice(rng, forms_west, (30, 25, 20, 15, 10))


def email_variant(e: str, rng: random.Random) -> str:
    r = rng.random()
    if r < 0.1:
        return e.upper() if rng.random() < 0.3 else e[0].upper() + e[1:]
    if r < 0.14:
        return f" {e} "
    if r < 0.16:
        local, _, dom = e.partition("@")
        return typo(local, rng) + "@" + dom
    return e


def junk_phone(rng: random.Random) -> str:
    return rng.choice(("123", "000000", "n/a", "13800", "+86 1", "99999999999999", "电话"))


def impossible_date(rng: random.Random) -> str:
    return rng.choice(("1985-02-30", "0000-00-00", "1899-13-01", "2999-01-01", "19851345", "1985年2月31日"))
