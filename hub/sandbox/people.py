"""Deterministic synthetic people: the "truth" behind every source-system record in the sandbox.

``generate_people(n, seed)`` returns ``Person`` objects (≈70 % Chinese, 30 % Western by default), grouped
into households, with a share of deliberate namesakes.  Which systems each person is seen by, and how
noisy each observation is, is decided later in :mod:`hub.sandbox.world_gen` — a Person holds only clean,
canonical facts (E.164 phones, ISO dates).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import TypeVar

import phonenumbers

from hub.sandbox import _data as D

T = TypeVar("T")


@dataclass(slots=True)
class Address:
    country: str  # ISO 3166-1 alpha-2
    province: str  # CN: 广东省 ; US: state code ; GB/DE: "" (region not used)
    city: str
    district: str  # CN only
    street: str  # CN: 中山路88号3栋502室 ; West: 12 Market Street
    postcode: str
    # romanised twins for CN (what a customer types into an English web form)
    province_en: str = ""
    city_en: str = ""
    district_en: str = ""
    street_en: str = ""
    state_code: str = ""  # WooCommerce state code (CN20, CA, ...)


@dataclass(slots=True)
class Person:
    person_id: str
    culture: str  # "cn" | "west"
    family_name: str  # hanzi (simplified) or Latin
    given_name: str
    family_pinyin: str  # "" for Western people
    given_pinyin: str
    gender: str  # "M" | "F"
    birth_date: date
    emails: list[str]
    mobiles: list[str]  # E.164
    address: Address
    landline: str = ""  # E.164, shared inside a household
    national_id: str = ""  # GB 11643 for CN residents
    household_id: str = ""
    nicknames: list[str] = field(default_factory=list)
    consent_email: bool = False
    consent_sms: bool = False
    consent_wechat: bool = False

    @property
    def full_name(self) -> str:
        if self.culture == "cn":
            return self.family_name + self.given_name
        return f"{self.given_name} {self.family_name}"

    def to_dict(self) -> dict:
        # hand-rolled: dataclasses.asdict deep-copies and is ~10x slower on 100k people
        d = {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]
        d["birth_date"] = self.birth_date.isoformat()
        d["address"] = {f: getattr(self.address, f) for f in self.address.__slots__}  # type: ignore[attr-defined]
        d["emails"], d["mobiles"], d["nicknames"] = list(self.emails), list(self.mobiles), list(self.nicknames)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Person:
        d = dict(d)
        d["birth_date"] = date.fromisoformat(d["birth_date"])
        d["address"] = Address(**d["address"])
        return cls(**d)


@lru_cache(maxsize=512)
def _cumulative(weights: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(itertools.accumulate(weights))


def wchoice(rng: random.Random, options: Sequence[T], weights: Sequence[float]) -> T:
    """``rng.choices(options, weights)[0]`` with cached cumulative weights (the generator's hot path)."""
    cum = _cumulative(tuple(weights))
    return options[bisect.bisect(cum, rng.random() * cum[-1], 0, len(cum) - 1)]


@lru_cache(maxsize=4096)
def to_traditional(text: str) -> str:
    """Simplified → traditional script (OpenCC ``s2t``); cached because names repeat a lot."""
    return _s2t().convert(text)


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def gb11643_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of a Chinese resident identity number (GB 11643-1999)."""
    total = sum(int(c) * (2 ** (17 - i) % 11) for i, c in enumerate(first17))
    v = (12 - total % 11) % 11
    return "X" if v == 10 else str(v)


def make_cn_national_id(division: str, birth: date, gender: str, rng: random.Random) -> str:
    if birth.year < D.CN_DIVISION_SINCE.get(division, 0):
        division = division[:4] + "00"
    seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "M" else (0, 2, 4, 6, 8))
    body = f"{division}{birth:%Y%m%d}{seq:03d}"
    return body + gb11643_check_char(body)


def _valid(draw: Callable[[], str]) -> str:
    """Re-draw until libphonenumber accepts the number (number plans have holes: pagers, unused ranges)."""
    for _ in range(50):
        num = draw()
        if phonenumbers.is_valid_number(phonenumbers.parse(num)):
            return num
    raise RuntimeError("could not draw a valid phone number")


def _cn_mobile(rng: random.Random) -> str:
    return _cn_mobile_raw(rng)  # every prefix in CN_MOBILE_PREFIXES is a live mobile range


def _west_mobile(country: str, rng: random.Random) -> str:
    return _valid(lambda: _west_mobile_raw(country, rng))


def _landline(country: str, area: str, rng: random.Random) -> str:
    return _valid(lambda: _landline_raw(country, area, rng))


def _cn_mobile_raw(rng: random.Random) -> str:
    return "+86" + rng.choice(D.CN_MOBILE_PREFIXES) + f"{rng.randrange(0, 10**8):08d}"


def _west_mobile_raw(country: str, rng: random.Random) -> str:
    if country == "US":
        area = rng.choice(("212", "415", "312", "617", "206", "512", "646", "917"))
        return f"+1{area}{rng.randrange(2, 10)}{rng.randrange(0, 100):02d}{rng.randrange(0, 10**4):04d}"
    if country == "GB":
        # 076xx are pagers, not mobiles
        return f"+447{rng.choice((4, 5, 7, 8, 9))}{rng.randrange(10, 100)}{rng.randrange(0, 10**6):06d}"
    return f"+49{rng.choice(('151', '152', '160', '170', '171', '176'))}{rng.randrange(10**7, 10**8)}"


def _landline_raw(country: str, area: str, rng: random.Random) -> str:
    if country == "CN":
        return f"+86{area[1:]}{rng.randrange(2, 9)}{rng.randrange(0, 10**7):07d}"
    if country == "US":
        return f"+1{area}{rng.randrange(2, 10)}{rng.randrange(0, 100):02d}{rng.randrange(0, 10**4):04d}"
    if country == "GB":
        width = 10 - len(area)
        first = {"20": (3, 7, 8), "117": (9,)}.get(area, (2, 3, 4, 5, 6, 7, 8))  # allocated local ranges
        return f"+44{area}{rng.choice(first)}{rng.randrange(0, 10 ** (width - 1)):0{width - 1}d}"
    return f"+49{area}{rng.randrange(2, 9)}{rng.randrange(0, 10**6):06d}"


def _cn_address(rng: random.Random) -> tuple[Address, str, str]:
    prov, prov_en, state, city, city_en, area, districts = rng.choice(D.CN_PLACES)
    dist, dist_en, postcode, division = rng.choice(districts)
    st, st_en = rng.choice(D.CN_STREETS)
    no = rng.randrange(1, 400)
    bld, room = rng.randrange(1, 30), rng.randrange(1, 33) * 100 + rng.randrange(1, 7)
    street = f"{st}{no}号{bld}栋{room}室"
    street_en = f"Room {room}, Building {bld}, No. {no} {st_en}"
    addr = Address("CN", prov, city, dist, street, postcode, prov_en, city_en, dist_en, street_en, state)
    return addr, area, division


def _west_address(country: str, rng: random.Random) -> tuple[Address, str]:
    city, state, area, postcodes = rng.choice(D.WEST_PLACES[country])
    st = rng.choice(D.WEST_STREETS[country])
    no = rng.randrange(1, 250)
    street = f"{st} {no}" if country == "DE" else f"{no} {st}"
    return Address(country, state, city, "", street, rng.choice(postcodes), state_code=state), area


def _birth_date(rng: random.Random) -> date:
    return date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))


def _ascii_fold(s: str) -> str:
    return (s.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae").replace("ß", "ss")
            .replace("'", "").replace(" ", "").lower())


def _emails(p_family: str, p_given: str, birth: date, culture: str, country: str,
            rng: random.Random) -> list[str]:
    if culture == "cn":
        if rng.random() < 0.45:  # QQ numbers are the classic Chinese e-mail local part
            first = f"{rng.randrange(10**5, 4 * 10**9)}@qq.com"
        else:
            style = rng.randrange(3)
            local = (f"{p_family}{p_given}", f"{p_given}.{p_family}", f"{p_family}{p_given}{birth:%y}")[style]
            first = f"{local}@{rng.choice(D.CN_EMAIL_DOMAINS)}"
    else:
        fam, giv = _ascii_fold(p_family), _ascii_fold(p_given)
        style = rng.randrange(3)
        local = (f"{giv}.{fam}", f"{giv[0]}{fam}", f"{giv}{fam}{rng.randrange(1, 99)}")[style]
        first = f"{local}@{rng.choice(D.WEST_EMAIL_DOMAINS[country])}"
    out = [first]
    if rng.random() < 0.2:  # a work or second private address
        dom = "corp-mail.cn" if culture == "cn" else "work-example.com"
        out.append(f"{_ascii_fold(p_given)}.{_ascii_fold(p_family)}@{dom}")
    return out


def _weighted_surnames() -> tuple[list[tuple[str, str]], list[int]]:
    return [(s, p) for s, p, _ in D.CN_SURNAMES], [w for _, _, w in D.CN_SURNAMES]


def generate_people(n: int, seed: int = 42, chinese_share: float = 0.7, namesake_share: float = 0.04,
                    household_share: float = 0.15) -> list[Person]:
    """Generate ``n`` persons deterministically from ``seed``.

    ``household_share`` of persons start a household of 2–4 people (same surname, address and landline);
    ``namesake_share`` get one of the very common names (王伟, 李娜, John Smith …) on purpose.
    """
    rng = random.Random(seed)
    surnames, weights = _weighted_surnames()
    people: list[Person] = []
    hh_seq = 0
    while len(people) < n:
        idx = len(people)
        is_cn = rng.random() < chinese_share
        size = 1
        if rng.random() < household_share:
            size = min(rng.randrange(2, 5), n - idx)
        country = "CN" if is_cn else wchoice(rng, ("US", "GB", "DE"), (45, 30, 25))
        if is_cn:
            addr, area, division = _cn_address(rng)
            fam, fam_py = wchoice(rng, surnames, weights)
        else:
            addr, area = _west_address(country, rng)
            division = ""
            fam, fam_py = rng.choice(D.WEST_SURNAMES[country]), ""
        household_id = ""
        landline = ""
        if size > 1:
            hh_seq += 1
            household_id = f"H{hh_seq:06d}"
            landline = _landline(country, area, rng)
        elif rng.random() < 0.15:
            landline = _landline(country, area, rng)
        for member in range(size):
            pid = f"P{len(people) + 1:07d}"
            gender = rng.choice("MF")
            birth = _birth_date(rng)
            nicks: list[str] = []
            if is_cn:
                fam_m, fam_py_m = fam, fam_py
                if member > 0 and rng.random() < 0.3:  # spouses keep their own surname in China
                    fam_m, fam_py_m = wchoice(rng, surnames, weights)
                pool = D.CN_GIVEN_MALE if gender == "M" else D.CN_GIVEN_FEMALE
                k = 1 if rng.random() < 0.35 else 2
                chars = [rng.choice(pool) for _ in range(k)]
                given = "".join(c for c, _ in chars)
                given_py = "".join(p for _, p in chars)
                if rng.random() < namesake_share:
                    fam_m, fam_py_m, given, given_py, gender = rng.choice(D.CN_NAMESAKES)
                family, family_py = fam_m, fam_py_m
                emails = _emails(family_py, given_py, birth, "cn", "CN", rng)
                mobiles = [_cn_mobile(rng)]
                nat_id = make_cn_national_id(division, birth, gender, rng) if rng.random() < 0.5 else ""
                if rng.random() < 0.15:  # an English name used at work and in shops: "Kevin Chen"
                    nicks = [rng.choice(D.CN_ENGLISH_NAMES[gender])]
            else:
                first, gender, nicks_t = rng.choice([f for f in D.WEST_FIRST if f[1] == gender])
                nicks = list(nicks_t)
                family, given, family_py, given_py = fam, first, "", ""
                if rng.random() < namesake_share:
                    given, family, gender = rng.choice(D.WEST_NAMESAKES)
                    nicks = next((list(f[2]) for f in D.WEST_FIRST if f[0] == given), [])
                emails = _emails(family, given, birth, "west", country, rng)
                mobiles = [_west_mobile(country, rng)]
                nat_id = ""
            if rng.random() < 0.12:  # a second handset (work phone, dual-SIM)
                mobiles.append(_cn_mobile(rng) if is_cn else _west_mobile(country, rng))
            people.append(Person(
                person_id=pid, culture="cn" if is_cn else "west", family_name=family, given_name=given,
                family_pinyin=family_py, given_pinyin=given_py, gender=gender, birth_date=birth,
                emails=emails, mobiles=mobiles, address=addr, landline=landline, national_id=nat_id,
                household_id=household_id, nicknames=nicks,
                consent_email=rng.random() < 0.6, consent_sms=rng.random() < 0.4,
                consent_wechat=is_cn and rng.random() < 0.5,
            ))
    return people
