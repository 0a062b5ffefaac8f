"""Labelled synthetic customer data for tests and benchmarks (ground truth in ``entity_id``).

Sets:
* :func:`febrl_like` — FEBRL-style person records (Western names, YYYYMMDD dates, 7-digit social
  security ids, single-char typos/transpositions, missing values, nicknames, swapped name fields);
  ``link=True`` gives a two-file linkage set (sources A/B, one duplicate per original).
* :func:`customers` — single-source customer master with mixed scripts (陳偉/陈伟/Chen Wei/WEI CHEN),
  households (same surname, address, shared landline), namesakes (王伟, 张伟, John Smith with
  different birth dates/ids/look-alike e-mails), shared phones, messy formats, missing fields.
* :func:`sparse_multisource` — ERP + web shop + social + call-centre records; social and phone records
  carry little more than a name and a city.

All generators are deterministic for a given seed.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

# ---- vocabularies (frequency-weighted by list order: Zipf-like draws) -------------------------------
WEST_GIVEN_M = (
    "james john robert michael william david richard joseph thomas charles christopher daniel matthew anthony "
    "mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald edward jason jeffrey ryan "
    "jacob gary nicholas eric jonathan stephen larry justin scott brandon benjamin samuel gregory alexander "
    "frank patrick raymond jack dennis jerry tyler aaron jose adam nathan henry douglas zachary peter kyle "
    "ethan walter noah jeremy christian keith roger terry gerald harold sean austin carl arthur lawrence dylan "
    "jesse jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy roy vincent "
    "ralph eugene russell bobby mason philip louis liam lachlan oliver hamish angus campbell riley blake"
).split()
WEST_GIVEN_F = (
    "mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra "
    "ashley kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca sharon laura "
    "cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen samantha katherine christine "
    "debra rachel carolyn janet catherine maria heather diane ruth julie olivia joyce virginia victoria kelly "
    "lauren christina joan evelyn judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara "
    "madison frances kathryn janice jean abigail alice judy sophia grace denise amber doris marilyn danielle "
    "beverly isabella theresa diana natalie brittany charlotte marie kayla alexis lori chloe matilda ruby zoe"
).split()
WEST_FAMILY = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson "
    "anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis "
    "robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall "
    "rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins "
    "reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly "
    "howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes "
    "price alvarez castillo sanders patel myers long ross foster jimenez powell jenkins perry russell sullivan "
    "bell coleman butler henderson barnes gonzales fisher vasquez simmons romero jordan patterson alexander "
    "hamilton graham reynolds griffin wallace moreno west cole hayes bryant herrera gibson ellis tran medina "
    "aguilar stevens murray ford castro marshall owens harrison fernandez mcdonald woods washington kennedy "
    "wells vargas henry chen freeman webb tucker guzman burns crawford olson simpson porter hunter gordon "
    "mendez silva shaw snyder mason dixon munoz hunt hicks holmes palmer wagner black robertson boyd rose "
    "stone salazar fox warren mills meyer rice schmidt garza daniels ferguson nichols stephens soto weaver "
    "ryan gardner payne grant dunn kelley spencer hawkins arnold pierce vazquez hansen peters santos hart "
    "bradley knight elliott cunningham duncan armstrong hudson carroll lane riley andrews alvarado ray delgado"
).split()
NICK = {
    "robert": "bob", "william": "bill", "elizabeth": "liz", "james": "jim", "michael": "mike", "thomas": "tom",
    "richard": "dick", "david": "dave", "daniel": "dan", "joseph": "joe", "katherine": "kate",
    "jennifer": "jenny", "susan": "sue", "anthony": "tony", "edward": "ted", "matthew": "matt",
    "andrew": "andy", "samuel": "sam", "benjamin": "ben", "alexander": "alex", "nicholas": "nick",
    "patricia": "pat", "margaret": "peggy", "john": "jack", "gregory": "greg", "lawrence": "larry",
    "charles": "charlie", "timothy": "tim", "ronald": "ron", "kenneth": "ken", "rebecca": "becky",
    "deborah": "debbie", "pamela": "pam", "victoria": "vicky", "abigail": "abby",
}
CN_FAMILY = (
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 高 林 罗 郑 梁 谢 宋 唐 许 韩 冯 邓 曹 彭 曾 肖 田 董 袁 潘 于 蒋 蔡 "
    "余 杜 叶 程 苏 魏 吕 丁 任 沈 姚 卢 姜 崔 钟 谭 陆 汪 范 金 石 廖 贾 夏 韦 付 方 白 邹 孟 熊 秦 邱 江 尹 薛 闫 段 雷 侯 龙 "
    "史 陶 黎 贺 顾 毛 郝 龚 邵 万 钱 严 覃 武 戴 莫 孔 向 汤 欧阳 司马 诸葛 上官"
).split()
CN_GIVEN_CHARS = (
    "伟 芳 娜 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀 霞 平 刚 桂 英 华 玉 萍 红 鹏 飞 建 国 辉 文 斌 宇 浩 凯 "
    "婷 雪 琳 晶 慧 颖 倩 丹 宁 波 海 峰 志 俊 晨 欣 怡 佳 子 梓 涵 轩 博 瑞 思 雨 嘉 鑫 淑 兰 凤 春 金 荣 成 龙 云 "
    "新 德 光 福 安 正 永 东 少 小 晓 立 家 天 振 亮 江 婉 梅 莉 璐 薇 蓉 蕾 珊 琪 瑶 璇 月 诗 清 美 秋 "
).split()
CN_CITIES = (("上海", "shanghai", "200000", "上海"), ("北京", "beijing", "100000", "北京"),
             ("广州", "guangzhou", "510000", "广东"), ("深圳", "shenzhen", "518000", "广东"),
             ("杭州", "hangzhou", "310000", "浙江"), ("南京", "nanjing", "210000", "江苏"),
             ("成都", "chengdu", "610000", "四川"), ("武汉", "wuhan", "430000", "湖北"),
             ("西安", "xian", "710000", "陕西"), ("苏州", "suzhou", "215000", "江苏"),
             ("天津", "tianjin", "300000", "天津"), ("重庆", "chongqing", "400000", "重庆"))
CN_STREETS = "人民路 中山路 解放路 南京路 建设路 和平路 长江路 淮海路 延安路 黄河路 新华路 光明路 文化路 朝阳路 幸福路".split()
WEST_CITIES = (("London", "E1 6AN", "ENG"), ("Manchester", "M1 1AE", "ENG"), ("Sydney", "2000", "NSW"),
               ("Melbourne", "3000", "VIC"), ("New York", "10001", "NY"), ("Boston", "02108", "MA"),
               ("Toronto", "M5H 2N2", "ON"), ("Berlin", "10115", "BE"), ("Singapore", "018956", "SG"))
FEBRL_SUBURBS = (
    "kingston sunnybank toowong paddington richmond brunswick fitzroy carlton glenelg norwood unley hawthorn "
    "kew prahran balmain manly bondi cronulla penrith parramatta chatswood hornsby ryde epping blacktown "
    "liverpool campbelltown camden wollongong gosford newcastle maitland cessnock dubbo orange bathurst "
    "goulburn queanbeyan belconnen woden tuggeranong gungahlin weston holt macgregor"
).split()
FEBRL_STATES = ("nsw", "vic", "qld", "wa", "sa", "tas", "act", "nt")
STREET_NAMES = (
    "miller wattle church king queen george elizabeth victoria albert station park high bridge mill hill "
    "railway river ocean forest garden lake spring heather banksia acacia jarrah kurrajong murray darling "
    "hume pacific barton macquarie flinders collins swanston lygon bourke oxford glebe point"
).split()
STREET_TYPES = ("street", "road", "avenue", "place", "crescent", "drive", "court", "lane", "circuit", "close")
EMAIL_DOMAINS = ("gmail.com", "qq.com", "163.com", "126.com", "hotmail.com", "outlook.com", "yahoo.com", "sina.com")


@lru_cache(maxsize=256)
def _zipf_cdf(n: int, a: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return np.cumsum(w / w.sum())


def _zipf_choice(rng: np.random.Generator, items, size=None, a: float = 1.1):
    cdf = _zipf_cdf(len(items), a)
    if size is None:
        return items[min(int(np.searchsorted(cdf, rng.random())), len(items) - 1)]
    idx = np.minimum(np.searchsorted(cdf, rng.random(size)), len(items) - 1)
    return [items[k] for k in idx]


def _typo(rng: np.random.Generator, s: str) -> str:
    """One FEBRL-style edit: insert / delete / substitute / transpose."""
    if not s:
        return s
    letters = "abcdefghijklmnopqrstuvwxyz" if not s.isdigit() else "0123456789"
    k = int(rng.integers(0, len(s)))
    op = rng.random()
    if op < 0.25 and len(s) > 1:
        return s[:k] + s[k + 1:]
    if op < 0.5:
        return s[:k] + letters[rng.integers(0, len(letters))] + s[k:]
    if op < 0.8:
        return s[:k] + letters[rng.integers(0, len(letters))] + s[k + 1:]
    if len(s) > 1:
        k = min(k, len(s) - 2)
        return s[:k] + s[k + 1] + s[k] + s[k + 2:]
    return s


def _dob(rng: np.random.Generator) -> tuple[int, int, int]:
    return int(rng.integers(1935, 2005)), int(rng.integers(1, 13)), int(rng.integers(1, 29))


# ---- FEBRL-like -----------------------------------------------------------------------------------
FEBRL_FIELDS = ("given_name", "family_name", "street", "city", "postal_code", "region", "birth_date", "national_id")


def _febrl_original(rng: np.random.Generator) -> dict:
    female = rng.random() < 0.5
    y, m, d = _dob(rng)
    return {
        "given_name": _zipf_choice(rng, WEST_GIVEN_F if female else WEST_GIVEN_M, a=0.9),
        "family_name": _zipf_choice(rng, WEST_FAMILY, a=0.8),
        "street": f"{rng.integers(1, 300)} {_zipf_choice(rng, STREET_NAMES, a=0.5)} {_zipf_choice(rng, STREET_TYPES)}",
        "city": _zipf_choice(rng, FEBRL_SUBURBS, a=0.6),
        "postal_code": str(rng.integers(2000, 7999)),
        "region": _zipf_choice(rng, FEBRL_STATES),
        "birth_date": f"{y:04d}{m:02d}{d:02d}",
        "national_id": str(rng.integers(1_000_000, 9_999_999)),
    }


def _febrl_corrupt(rng: np.random.Generator, rec: dict, max_mods: int = 4) -> dict:
    out = dict(rec)
    for _ in range(int(rng.integers(1, max_mods + 1))):
        f = FEBRL_FIELDS[int(rng.integers(0, len(FEBRL_FIELDS)))]
        r = rng.random()
        if r < 0.12:
            out[f] = ""
        elif r < 0.17 and f in ("given_name", "family_name"):
            out["given_name"], out["family_name"] = out["family_name"], out["given_name"]
        elif r < 0.24 and f == "given_name" and out[f] in NICK:
            out[f] = NICK[out[f]]
        else:
            out[f] = _typo(rng, out[f])
    return out


def febrl_like(n_orig: int = 2000, n_dup: int = 3000, max_dup: int = 5, link: bool = False,
               seed: int = 1) -> pd.DataFrame:
    """FEBRL-style set. ``link=False``: one file, up to ``max_dup`` duplicates per original (FEBRL3-like).
    ``link=True``: two sources A/B with exactly one duplicate per original in B (FEBRL4-like)."""
    rng = np.random.default_rng(seed)
    rows = []
    if link:
        for e in range(n_orig):
            o = _febrl_original(rng)
            rows.append({"record_id": f"rec-{e}-org", "source": "A", "entity_id": e, **o})
            rows.append({"record_id": f"rec-{e}-dup-0", "source": "B", "entity_id": e, **_febrl_corrupt(rng, o)})
    else:
        origs = [_febrl_original(rng) for _ in range(n_orig)]
        for e, o in enumerate(origs):
            rows.append({"record_id": f"rec-{e}-org", "entity_id": e, **o})
        # duplicates: Zipf-ish count per original, capped at max_dup
        left = n_dup
        counts = np.zeros(n_orig, dtype=int)
        while left > 0:
            e = int(rng.integers(0, n_orig))
            if counts[e] < max_dup:
                counts[e] += 1
                left -= 1
        for e, c in enumerate(counts):
            for k in range(c):
                rows.append({"record_id": f"rec-{e}-dup-{k}", "entity_id": e, **_febrl_corrupt(rng, origs[e])})
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


# ---- Chinese/Western customers ---------------------------------------------------------------------
_T2S_S2T = None


@lru_cache(maxsize=200_000)
def _s2t(s: str) -> str:
    global _T2S_S2T
    if _T2S_S2T is None:
        import opencc

        _T2S_S2T = opencc.OpenCC("s2t").convert
    return _T2S_S2T(s)


@lru_cache(maxsize=200_000)
def _pinyin(s: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(s, style=Style.NORMAL)).capitalize()


def _cn_id(rng: np.random.Generator, y: int, m: int, d: int, female: bool) -> str:
    body = f"{rng.integers(110000, 659000):06d}{y:04d}{m:02d}{d:02d}{rng.integers(0, 99):02d}"
    body += str(int(rng.integers(0, 5)) * 2 + (0 if female else 1))
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * k for c, k in zip(body, w, strict=True)) % 11]


COMMON_CN = (("王", "伟"), ("张", "伟"), ("李", "娜"), ("刘", "洋"), ("陈", "静"), ("王", "芳"), ("李", "强"))
COMMON_WEST = (("john", "smith"), ("mary", "jones"), ("david", "brown"), ("sarah", "wilson"))


def _person(rng: np.random.Generator, namesake: bool = False) -> dict:
    chinese = rng.random() < 0.6
    female = rng.random() < 0.5
    y, m, d = _dob(rng)
    if chinese:
        if namesake:
            fam, giv = COMMON_CN[int(rng.integers(0, len(COMMON_CN)))]
        else:
            fam = _zipf_choice(rng, CN_FAMILY, a=0.9)
            giv = "".join(_zipf_choice(rng, CN_GIVEN_CHARS, size=int(rng.integers(1, 3)), a=0.7))
        city = CN_CITIES[int(rng.integers(0, len(CN_CITIES)))]
        street = f"{city[0]}{_zipf_choice(rng, CN_STREETS, a=0.5)}{rng.integers(1, 800)}号"
        phone = f"1{rng.choice([3, 5, 8])}{rng.integers(0, 10)}{rng.integers(0, 10**8):08d}"
        mail_local = f"{_pinyin(fam).lower()}{_pinyin(giv).lower()}{rng.integers(1, 999) if rng.random() < .6 else ''}"
        p = {"chinese": True, "fam": fam, "giv": giv, "city": city[0], "city_py": city[1], "postal_code": city[2],
             "region": city[3], "street": street, "nid": _cn_id(rng, y, m, d, female)}
    else:
        if namesake:
            giv, fam = COMMON_WEST[int(rng.integers(0, len(COMMON_WEST)))]
        else:
            giv = _zipf_choice(rng, WEST_GIVEN_F if female else WEST_GIVEN_M, a=0.9)
            fam = _zipf_choice(rng, WEST_FAMILY, a=0.8)
        city = WEST_CITIES[int(rng.integers(0, len(WEST_CITIES)))]
        street = f"{rng.integers(1, 300)} {_zipf_choice(rng, STREET_NAMES, a=0.5).title()} {_zipf_choice(rng, STREET_TYPES).title()}"
        phone = f"+1 {rng.integers(200, 999)} {rng.integers(200, 999)} {rng.integers(0, 10000):04d}"
        mail_local = f"{giv}.{fam}{rng.integers(1, 99) if rng.random() < .5 else ''}"
        p = {"chinese": False, "fam": fam.title(), "giv": giv.title(), "city": city[0], "city_py": city[0],
             "postal_code": city[1], "region": city[2], "street": street,
             "nid": f"{rng.integers(100, 899):03d}-{rng.integers(10, 99):02d}-{rng.integers(1000, 9999):04d}"}
    p.update({"female": female, "dob": (y, m, d), "phone": phone,
              "email": f"{mail_local}@{_zipf_choice(rng, EMAIL_DOMAINS)}", "company": ""})
    return p


def _name_variant(rng: np.random.Generator, p: dict) -> dict:
    """A name as one source system would hold it."""
    if p["chinese"]:
        r = rng.random()
        fam, giv = p["fam"], p["giv"]
        if r < 0.4:
            return {"full_name": fam + giv}
        if r < 0.55:
            return {"full_name": _s2t(fam + giv)}
        if r < 0.7:
            return {"full_name": f"{_pinyin(fam)} {_pinyin(giv)}"}
        if r < 0.8:
            return {"full_name": f"{_pinyin(giv)} {_pinyin(fam).upper()}"}
        if r < 0.9:
            return {"family_name": fam, "given_name": giv}
        return {"family_name": _pinyin(fam), "given_name": _pinyin(giv)}
    giv, fam = p["giv"], p["fam"]
    r = rng.random()
    if r < 0.1 and giv.lower() in NICK:
        giv = NICK[giv.lower()].title()
    elif r < 0.2:
        giv = _typo(rng, giv.lower()).title()
    elif r < 0.27:
        fam = _typo(rng, fam.lower()).title()
    r = rng.random()
    if r < 0.5:
        return {"given_name": giv, "family_name": fam}
    if r < 0.8:
        return {"full_name": f"{giv} {fam}"}
    if r < 0.9:
        return {"full_name": f"{fam.upper()}, {giv}"}
    return {"full_name": f"{giv.upper()} {fam.upper()}"}


def _phone_variant(rng: np.random.Generator, phone: str) -> str:
    if phone.startswith("+1"):
        digits = "".join(c for c in phone if c.isdigit())
        return phone if rng.random() < 0.5 else f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    r = rng.random()
    if r < 0.3:
        return phone
    if r < 0.5:
        return f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
    if r < 0.65:
        return f"0086 {phone[:3]} {phone[3:7]} {phone[7:]}"
    if r < 0.8:
        return "86" + phone
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


def _date_variant(rng: np.random.Generator, ymd: tuple[int, int, int], chinese: bool) -> str:
    y, m, d = ymd
    r = rng.random()
    if r < 0.4:
        return f"{y:04d}-{m:02d}-{d:02d}"
    if r < 0.55:
        return f"{y:04d}/{m}/{d}"
    if r < 0.7:
        return f"{y}年{m}月{d}日" if chinese else f"{d:02d}/{m:02d}/{y:04d}"
    if r < 0.85:
        return f"{y:04d}{m:02d}{d:02d}"
    return f"{y:04d}.{m:02d}.{d:02d}"


def _record(rng: np.random.Generator, p: dict, source: str, fields: dict[str, float]) -> dict:
    """One source record of person ``p``; ``fields`` maps field -> probability it is filled."""
    rec: dict = {"source": source}
    rec.update(_name_variant(rng, p))
    if rng.random() < fields.get("phone", 0):
        rec["phone"] = _phone_variant(rng, p["phone"])
    if rng.random() < fields.get("email", 0):
        e = p["email"]
        rec["email"] = e.upper() if rng.random() < 0.1 else e
    if rng.random() < fields.get("birth_date", 0):
        rec["birth_date"] = _date_variant(rng, p["dob"], p["chinese"])
    if rng.random() < fields.get("national_id", 0):
        rec["national_id"] = p["nid"]
    if rng.random() < fields.get("gender", 0):
        rec["gender"] = ("女" if p["female"] else "男") if p["chinese"] and rng.random() < .5 else ("F" if p["female"] else "M")
    if rng.random() < fields.get("street", 0):
        st = p["street"]
        rec["street"] = st if rng.random() < 0.8 or p["chinese"] else _typo(rng, st.lower())
        rec["postal_code"] = p["postal_code"] if rng.random() < 0.8 else ""
    if rng.random() < fields.get("city", 0):
        rec["city"] = p["city"] if rng.random() < 0.6 else (p["city_py"] if rng.random() < .7 else p["city"] + ("市" if p["chinese"] else ""))
        rec["region"] = p["region"] if rng.random() < 0.5 else ""
    return rec


FULL = {"phone": 0.8, "email": 0.7, "birth_date": 0.7, "national_id": 0.35, "gender": 0.6, "street": 0.8, "city": 0.9}


def _households_and_namesakes(rng: np.random.Generator, n_people: int) -> list[dict]:
    people: list[dict] = []
    while len(people) < n_people:
        r = rng.random()
        if r < 0.2:  # household: same surname, address, city, a shared landline
            head = _person(rng)
            landline = (f"021{rng.integers(10**7, 10**8)}" if head["chinese"]
                        else f"+1 {rng.integers(200, 999)} 555 {rng.integers(0, 10000):04d}")
            for _ in range(int(rng.integers(2, 5))):
                q = _person(rng)
                if q["chinese"] != head["chinese"]:
                    continue
                for k in ("fam", "street", "city", "city_py", "postal_code", "region"):
                    q[k] = head[k]
                if head["chinese"]:
                    q["email"] = f"{_pinyin(q['fam']).lower()}{_pinyin(q['giv']).lower()}{rng.integers(1, 99)}@qq.com"
                if rng.random() < 0.6:
                    q["phone"] = landline
                people.append(q)
        elif r < 0.3:  # namesake: a very common name, own birth date/id/e-mail
            q = _person(rng, namesake=True)
            people.append(q)
        else:
            people.append(_person(rng))
    return people[:n_people]


def customers(n_people: int = 3000, seed: int = 2) -> pd.DataFrame:
    """Single-source customer master: 1–3 records per person, households, namesakes, messy formats."""
    rng = np.random.default_rng(seed)
    people = _households_and_namesakes(rng, n_people)
    rows = []
    for e, p in enumerate(people):
        k = 1 + (rng.random() < 0.45) + (rng.random() < 0.15)
        for _ in range(k):
            rows.append({"entity_id": e, **_record(rng, p, "crm", FULL)})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "record_id", [f"{k:06d}" for k in range(len(df))])
    return df.fillna("")


SPARSE_SOURCES = {
    "erp": {"phone": 0.8, "email": 0.4, "birth_date": 0.6, "national_id": 0.5, "gender": 0.5, "street": 0.9, "city": 1.0},
    "shop": {"phone": 0.9, "email": 1.0, "street": 0.9, "city": 0.9},
    "social": {"city": 0.9, "gender": 0.7},
    "callcenter": {"phone": 1.0, "city": 0.3},
}


def sparse_multisource(n_people: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Multi-source set: each person in 1–4 of erp/shop/social/callcenter; social and call-centre
    records hold little beyond a name (and a city or a phone)."""
    rng = np.random.default_rng(seed)
    people = _households_and_namesakes(rng, n_people)
    rows = []
    for e, p in enumerate(people):
        srcs = [s for s, pr in (("erp", 0.6), ("shop", 0.6), ("social", 0.5), ("callcenter", 0.4)) if rng.random() < pr]
        if not srcs:
            srcs = ["erp"]
        for s in srcs:
            rows.append({"entity_id": e, **_record(rng, p, s, SPARSE_SOURCES[s])})
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "record_id", [f"{k:06d}" for k in range(len(df))])
    return df.fillna("")


def truth_of(frame: pd.DataFrame) -> pd.Series:
    """record_id -> entity id (ground truth)."""
    return pd.Series(frame["entity_id"].astype(str).to_numpy(), index=frame["record_id"].astype(str).to_numpy())


# ---- ERP parties as a first sync meets them ----------------------------------------------------------
ERP_GIVEN = ("hugo", "ines", "john", "maria", "wei", "anna", "lucas", "sofia", "omar", "lena", "ivan", "mia",
             "noah", "emma", "li", "sara")
ERP_FAMILY = ("khan", "smith", "garcia", "muller", "chen", "rossi", "novak", "silva", "dubois", "wang")
ERP_GIVEN_HAN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明")
ERP_FAMILY_HAN = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周")
ERP_NOTES = (" (old account)", " #{code}", " - do not use", " DUPLICATE", " 测试", " [{code}]")
ERP_DUMMY_PHONES = ("13800000000", "0000", "0000000", "+1 555 0100", "00000000000", "1234567")
ERP_HOMOPHONES = {"伟": "玮", "芳": "方", "娜": "纳", "敏": "民", "静": "晶", "丽": "莉", "强": "墙", "磊": "蕾",
                  "军": "君", "洋": "阳", "勇": "永", "艳": "燕", "杰": "洁", "娟": "鹃", "涛": "韬", "明": "铭"}


def _cn_variant(rng: np.random.Generator, name: str) -> str:
    """A Chinese party entered again: traditional script, pinyin in either order, an IME homophone."""
    r = rng.random()
    if r < 0.25:
        return _s2t(name)
    if r < 0.4:
        fam, giv = _pinyin(name[0]), _pinyin(name[1:])
        return f"{fam} {giv}" if rng.random() < 0.5 else f"{giv} {fam.upper()}"
    if r < 0.55:
        return name[0] + "".join(ERP_HOMOPHONES.get(c, c) for c in name[1:])
    return name


def _cn_phone_format(rng: np.random.Generator, phone: str) -> str:
    d = "".join(c for c in phone if c.isdigit())[-11:]
    return [f"+86 {d[:3]} {d[3:7]} {d[7:]}", f"{d[:3]}-{d[3:7]}-{d[7:]}", f"0086{d}", d,
            d.translate(str.maketrans("0123456789", "０１２３４５６７８９"))][int(rng.integers(0, 5))]


def _cn_street_variant(rng: np.random.Generator, street: str) -> str:
    r = rng.random()
    if r < 0.3:
        return "上海市" + street
    if r < 0.5:
        return street + f"{rng.integers(1, 30)}室"
    if r < 0.6:
        return "黄浦区" + street
    return street


def erp_parties(n_people: int = 1500, dup_share: float = 0.0, seed: int = 21, *, script: str = "latin",
                email: str = "numbered", phone: str = "fictional", street: str = "numbered") -> pd.DataFrame:
    """One ERP's customer parties as a first sync meets them: distinct people with names drawn from 16 given
    and 10 family names, one source, one city, one street name, test-data contact values. ``dup_share`` of
    the records are duplicate parties of a person (entered again, with ERP notes in the name or a typo).

    ``email``: ``numbered`` (customer00017@example.com per person, a duplicate keeps it or has none),
    ``record`` (numbered per record: a duplicate has another number), ``placeholder`` (noemail@…, n/a, test@…
    on most records, a real-looking mailbox on the rest), ``none``.
    ``phone``: ``fictional`` (+1 555 01xx, a hundred numbers shared at random), ``dummy`` (13800000000, 0000, …
    on most records, a real number on the rest), ``personal`` (a real-looking number per person), ``none``.
    ``street``: ``numbered`` ("17 Market Street"), ``same`` (one address for everyone) or ``cn`` (南京东路17号, a
    duplicate in another script — traditional, pinyin, an IME homophone — with its mobile written another way
    and its street with a city, district or room added)."""
    rng = np.random.default_rng(seed)
    given, family = (ERP_GIVEN_HAN, ERP_FAMILY_HAN) if script == "han" else (ERP_GIVEN, ERP_FAMILY)
    people = []
    for k in range(n_people):
        han = script == "han" or (script == "mixed" and rng.random() < 0.5)
        g = (ERP_GIVEN_HAN if han else ERP_GIVEN)[rng.integers(0, 16)]
        f = (ERP_FAMILY_HAN if han else ERP_FAMILY)[rng.integers(0, 10)]
        people.append({
            "name": f + g if han else f"{g.title()} {f.title()}",
            "email": {"numbered": f"customer{k + 1:05d}@example.com", "record": f"customer{k + 1:05d}@example.com",
                      "placeholder": (["noemail@example.com", "n/a", "test@test.com", "none@none.com", "unknown", ""]
                                      [rng.integers(0, 6)] if rng.random() < 0.7 else
                                      f"{g}.{f}{rng.integers(10, 99)}@mail{rng.integers(1, 9)}.net" if not han else
                                      f"{rng.integers(10**7, 10**9)}@qq.com")}.get(email, ""),
            "phone": {"fictional": f"+1 555 01{rng.integers(0, 100):02d}",
                      "dummy": (ERP_DUMMY_PHONES[rng.integers(0, len(ERP_DUMMY_PHONES))] if rng.random() < 0.6
                                else f"+86 139 {rng.integers(0, 10**4):04d} {rng.integers(0, 10**4):04d}"),
                      "personal": f"+86 139 {rng.integers(0, 10**4):04d} {rng.integers(0, 10**4):04d}"}.get(phone, ""),
            "street": {"numbered": f"{rng.integers(1, 4000)} Market Street",
                       "cn": f"南京东路{rng.integers(1, 800)}号"}.get(street, "1 Market Street"),
            "han": han,
        })
    n_dup = int(round(n_people * dup_share / (1.0 - dup_share))) if dup_share > 0 else 0
    rows = [{"entity_id": k, **{c: p[c] for c in ("name", "email", "phone", "street")}} for k, p in enumerate(people)]
    for k in rng.choice(n_people, size=n_dup, replace=n_dup > n_people).tolist():
        p = people[k]
        name = p["name"]
        r = rng.random()
        if r < 0.3:
            name += ERP_NOTES[rng.integers(0, len(ERP_NOTES))].format(code=f"{rng.integers(0, 10**5):05d}")
        elif r < 0.45 and not p["han"]:
            name = name.upper()
        elif r < 0.6 and not p["han"]:
            parts = name.split()
            name = f"{parts[0]} {_typo(rng, parts[1].lower()).title()}"
        elif p["han"] and street == "cn":
            name = _cn_variant(rng, name)
        rows.append({
            "entity_id": k, "name": name,
            "email": (p["email"] if rng.random() < 0.8 else "") if email != "record"
            else f"customer{n_people + len(rows) + 1:05d}@example.com",
            "phone": (p["phone"] if street != "cn" or not p["phone"] else _cn_phone_format(rng, p["phone"]))
            if rng.random() < 0.8 else "",
            "street": (p["street"] if street != "cn" else _cn_street_variant(rng, p["street"]))
            if rng.random() < 0.9 else "",
        })
    df = pd.DataFrame(rows)
    df = df.rename(columns={"name": "full_name"})
    df["city"] = "Springfield" if script != "han" else "上海"
    df["source"] = "erp"
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "record_id", [f"P{k:06d}" for k in range(len(df))])
    return df.fillna("")


# -- a distributor's contacts: persons at customer companies sharing switchboards and role mailboxes ----------
CONTACT_GIVEN_DE = ("julia", "anna", "thomas", "michael", "stefan", "sabine", "andreas", "petra", "markus", "claudia",
                    "frank", "monika", "jan", "katrin", "jens", "nicole")
CONTACT_FAMILY_DE = ("mueller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz",
                     "hoffmann")
CONTACT_ROLES_DE = ("info", "einkauf", "vertrieb", "kontakt", "office", "service", "buchhaltung", "sales", "zentrale")
CONTACT_ROLES_CN = ("info", "sales", "service", "purchase", "office", "采购", "销售", "contact", "admin")
CONTACT_PLACEHOLDERS = ("n.a.", "k.A.", "keine", "-", "none", "n/a", "kein", "k. A.")


def company_contacts(n_people: int = 600, dup_share: float = 0.0, seed: int = 71) -> pd.DataFrame:
    """A B2B distributor's ERP: contact persons at customer companies (about 19 per company, German and Chinese
    companies), names from 16 given and 10 family names. Contacts of one company share its switchboard, its
    address and its role mailboxes (info@, einkauf3@, 采购@…); clerks typed placeholders ("n.a.", "k.A.",
    "keine", "-") into the e-mail and phone fields; some contacts have a personal mobile or mailbox. Namesakes
    at one company are different people. ``dup_share`` of the records are a person's duplicate party: it keeps
    the person's personal mobile or mailbox (the other field may hold the switchboard, a role mailbox, a
    placeholder or nothing) and may carry a typo, capitals, an ERP note or another script in its name."""
    rng = np.random.default_rng(seed)
    n_comp = max(4, int(round(n_people / 19)))
    companies = []
    for c in range(n_comp):
        cn = rng.random() < 0.45
        domain = f"{'hua' if cn else 'handel'}{c:02d}{'-tech.cn' if cn else '-gmbh.de'}"
        roles = [str(r) for r in rng.choice(CONTACT_ROLES_CN if cn else CONTACT_ROLES_DE, size=int(rng.integers(2, 6)),
                                            replace=False)]
        roles = [r + (str(rng.integers(1, 10)) if rng.random() < 0.3 else "") for r in roles]
        companies.append({
            "cn": cn, "domain": domain, "roles": [f"{r}@{domain}" for r in roles],
            "switchboard": (f"+86 21 {rng.integers(5000, 7000)} {rng.integers(0, 10**4):04d}" if cn
                            else f"+49 30 {rng.integers(100, 999)}{rng.integers(0, 10**4):04d}"),
            "street": (f"张江路{rng.integers(1, 900)}号" if cn else f"Industriestraße {rng.integers(1, 200)}"),
            "city": "上海" if cn else "Berlin", "postal_code": "201203" if cn else f"1{rng.integers(2000, 4000)}",
        })
    people = []
    for k in range(n_people):
        comp = companies[k % n_comp]
        if comp["cn"]:
            f, g = ERP_FAMILY_HAN[rng.integers(0, 10)], ERP_GIVEN_HAN[rng.integers(0, 16)]
            name, local = f + g, f"{_pinyin(g).lower()}.{_pinyin(f).lower()}"
        else:
            f, g = CONTACT_FAMILY_DE[rng.integers(0, 10)], CONTACT_GIVEN_DE[rng.integers(0, 16)]
            name, local = f"{g.title()} {f.title()}", f"{g[0] if rng.random() < 0.4 else g + '.'}{f}"
        r = rng.random()
        phone = (comp["switchboard"] if r < 0.45 else
                 (f"+86 13{rng.integers(0, 10)} {rng.integers(0, 10**4):04d} {rng.integers(0, 10**4):04d}" if comp["cn"]
                  else f"+49 15{rng.integers(1, 8)} {rng.integers(10**6, 10**7)}") if r < 0.8 else
                 CONTACT_PLACEHOLDERS[rng.integers(0, len(CONTACT_PLACEHOLDERS))] if r < 0.9 else "")
        r = rng.random()
        # a personal mailbox: namesakes at one company get a number (julia.schmidt2@)
        taken = comp.setdefault("taken", set())
        mailbox, n = f"{local}@{comp['domain']}", 2
        while mailbox in taken:
            mailbox, n = f"{local}{n}@{comp['domain']}", n + 1
        email = (comp["roles"][rng.integers(0, len(comp["roles"]))] if r < 0.35 else
                 mailbox if r < 0.75 else
                 CONTACT_PLACEHOLDERS[rng.integers(0, len(CONTACT_PLACEHOLDERS))] if r < 0.87 else "")
        if email == mailbox:
            taken.add(mailbox)
        people.append({"name": name, "han": comp["cn"], "phone": phone, "email": email, "comp": comp})
    rows = []
    for k, p in enumerate(people):
        c = p["comp"]
        rows.append({"entity_id": k, "full_name": p["name"], "phone": p["phone"], "email": p["email"],
                     "street": c["street"], "city": c["city"], "postal_code": c["postal_code"]})
    n_dup = int(round(n_people * dup_share / (1.0 - dup_share))) if dup_share > 0 else 0
    def personal(p: dict) -> tuple[bool, bool]:
        return p["phone"].startswith(("+86 13", "+49 15")), "@" in p["email"] and p["email"] not in p["comp"]["roles"]

    own = [k for k, p in enumerate(people) if any(personal(p))]
    for k in rng.choice(own, size=n_dup, replace=n_dup > len(own)).tolist() if n_dup else []:
        p, c = people[k], people[k]["comp"]
        name = p["name"]
        r = rng.random()
        if r < 0.25:
            name += ERP_NOTES[rng.integers(0, len(ERP_NOTES))].format(code=f"{rng.integers(0, 10**5):05d}")
        elif r < 0.4 and not p["han"]:
            name = name.upper()
        elif r < 0.55 and not p["han"]:
            g, f = name.split()
            name = f"{g} {_typo(rng, f.lower()).title()}"
        elif r < 0.55:
            name = _cn_variant(rng, name)
        own_phone, own_mail = personal(p)
        keep_phone = own_phone and (not own_mail or rng.random() < 0.6)
        keep_mail = own_mail and (not keep_phone or rng.random() < 0.6)
        other = rng.random()
        phone = (p["phone"] if keep_phone else c["switchboard"] if other < 0.5 else
                 CONTACT_PLACEHOLDERS[rng.integers(0, len(CONTACT_PLACEHOLDERS))] if other < 0.7 else "")
        email = (p["email"] if keep_mail else c["roles"][rng.integers(0, len(c["roles"]))] if other < 0.5 else
                 CONTACT_PLACEHOLDERS[rng.integers(0, len(CONTACT_PLACEHOLDERS))] if other < 0.7 else "")
        rows.append({"entity_id": k, "full_name": name, "phone": phone, "email": email,
                     "street": c["street"] if rng.random() < 0.9 else "", "city": c["city"],
                     "postal_code": c["postal_code"]})
    df = pd.DataFrame(rows)
    df["source"] = "erp"
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    df.insert(0, "record_id", [f"C{k:06d}" for k in range(len(df))])
    return df.fillna("")
