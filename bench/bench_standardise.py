"""Throughput of the standardisers on messy, customer-like records.

    python bench/bench_standardise.py --records 200000 [--workers 2] [--seed 7]

Generates N records itself (Chinese names in simplified/traditional/pinyin/either order, Western names
with nicknames and titles, phones in a dozen shapes, e-mails, birth dates in many formats, Chinese and
Western addresses, companies, resident IDs), with a realistic repeat rate (the same person arrives from
several sources; cities, districts and companies repeat a lot), then runs every standardiser on every
record and prints records/s and peak memory. Generation is not timed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import opencc  # noqa: E402

from hub.standardise import (  # noqa: E402
    standardise_address,
    standardise_birth_date,
    standardise_company,
    standardise_email,
    standardise_person_name,
    standardise_phone,
    validate_cn_resident_id,
)
from hub.standardise._cn_divisions import DIVISIONS  # noqa: E402
from hub.standardise._name_data import SINGLE_SURNAMES  # noqa: E402
from hub.standardise.identifiers import cn_id_check_char  # noqa: E402
from hub.standardise.names import pinyin, surname_pinyin  # noqa: E402

_GIVEN_CHARS = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯健俊帆帅旭宁龙林欣晨雪婷琳"
_WEST_GIVEN = ["Robert", "Bob", "William", "Bill", "Elizabeth", "Liz", "James", "Jim", "Michael", "Mike",
               "Anna", "Maria", "David", "Dave", "Katherine", "Kate", "Thomas", "Tom", "John", "Jack", "Sarah",
               "Laura", "Peter", "Susan", "Sue", "Richard", "Dick", "Jennifer", "Jenny", "Hans", "Jürgen"]
_WEST_FAMILY = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Müller", "Schmidt",
                "Schneider", "Fischer", "Weber", "Taylor", "Wilson", "O'Brien", "van Dijk", "García", "Martin"]
_STREETS_CN = ["中山路", "人民路", "解放路", "建设路", "和平路", "世纪大道", "南京路", "长江路", "新华街", "文化路", "科技园路"]
_STREETS_W = ["Main Street", "High St", "Station Road", "Oak Avenue", "Park Ave.", "Hauptstraße", "Bahnhofstr.",
              "Church Lane", "Sunset Boulevard", "Elm Drive"]
_COMPANIES = ["华为技术有限公司", "華為技術有限公司", "阿里巴巴(中国)有限公司", "腾讯科技(深圳)有限公司", "小米通讯技术有限公司",
              "海尔集团", "京东集团股份有限公司", "Acme Co., Ltd.", "Siemens AG", "Foo GmbH & Co. KG", "Tesco PLC",
              "ACME Inc", "比亚迪股份有限公司", "联想(北京)有限公司"]
_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "googlemail.com", "outlook.com", "sina.com", "example.com",
            "QQ.COM", "foxmail.com"]
_S2T = opencc.OpenCC("s2t")


def _divisions() -> tuple[list[tuple[str, str, str]], list[str]]:
    """(province, city, district) name triples for generating Chinese addresses."""
    names = {}
    for line in DIVISIONS.splitlines():
        code, _, name = line.partition(" ")
        if name:
            names[code] = name
    triples = []
    for code, name in names.items():
        if code.endswith("00"):
            continue
        prov = names.get(code[:2] + "0000")
        city = names.get(code[:4] + "00", prov)
        if prov:
            triples.append((prov, city, name))
    # big cities dominate real customer bases: repeat their districts
    big = [t for t in triples if t[0] in ("北京市", "上海市", "广东省", "江苏省", "浙江省")]
    return triples + big * 5, list(names.values())


def _chinese_name(rng: random.Random) -> str:
    fam = SINGLE_SURNAMES[min(int(rng.expovariate(1 / 25)), len(SINGLE_SURNAMES) - 1)]
    if rng.random() < 0.02:
        fam = rng.choice(["欧阳", "司马", "诸葛", "上官", "慕容"])
    given = "".join(rng.choice(_GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2))))
    form = rng.random()
    if form < 0.55:
        return fam + given
    if form < 0.70:
        return _S2T.convert(fam + given)
    fp, gp = surname_pinyin(fam).capitalize(), pinyin(given).capitalize()
    if form < 0.80:
        return f"{fp} {gp}"
    if form < 0.88:
        return f"{gp} {fp.upper()}"
    if form < 0.94:
        return f"{fp}, {gp}"
    return f"{gp.upper()} {fp.upper()}"


def _western_name(rng: random.Random) -> str:
    g, f = rng.choice(_WEST_GIVEN), rng.choice(_WEST_FAMILY)
    r = rng.random()
    if r < 0.6:
        return f"{g} {f}"
    if r < 0.75:
        return f"{rng.choice(['Mr.', 'Dr', 'Mrs', 'Ms.'])} {g} {f}"
    if r < 0.9:
        return f"{f}, {g}"
    return f"{g} {rng.choice('ABCDEFGHJ')}. {f} {rng.choice(['Jr.', 'III', ''])}".strip()


def _phone(rng: random.Random) -> str:
    n = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
    shapes = (n, f"+86 {n[:3]}-{n[3:7]}-{n[7:]}", f"86{n}", f"0086 {n[:3]} {n[3:7]} {n[7:]}",
              n.translate(str.maketrans("0123456789", "０１２３４５６７８９")), f"({rng.choice(['021', '010', '025'])}) "
              f"{rng.randrange(2000, 9999)} {rng.randrange(1000, 9999)}", f"+1 650 {rng.randrange(200, 999)} "
              f"{rng.randrange(1000, 9999)}", f"+49 30 {rng.randrange(100000, 999999)}", "123", "")
    return rng.choices(shapes, weights=(30, 15, 8, 5, 4, 15, 6, 5, 2, 10))[0]


def _date(rng: random.Random) -> str:
    y, m, d = rng.randrange(1940, 2008), rng.randrange(1, 13), rng.randrange(1, 29)
    shapes = (f"{y}-{m:02d}-{d:02d}", f"{y}/{m}/{d}", f"{y}{m:02d}{d:02d}", f"{y}年{m}月{d}日", f"{d:02d}/{m:02d}/{y}",
              f"{y}.{m:02d}.{d:02d}", f"{d} {'JanFebMarAprMayJunJulAugSepOctNovDec'[3 * m - 3:3 * m]} {y}",
              f"{y}-{m:02d}-{d:02d}T08:00:00Z", "1985-02-30", "unknown", "")
    return rng.choices(shapes, weights=(30, 10, 10, 10, 8, 5, 5, 10, 1, 2, 9))[0]


def _cn_address(rng: random.Random, divs: list[tuple[str, str, str]]) -> tuple[str, str, str, str]:
    prov, city, dist = rng.choice(divs)
    road = f"{rng.choice(_STREETS_CN)}{rng.randrange(1, 400)}{rng.choice('号號')}"
    r = rng.random()
    short_p, short_c = prov.rstrip("省市"), city.rstrip("市")
    if r < 0.4:
        return f"{prov}{city if city != prov else ''}{dist}{road}", "", "", ""
    if r < 0.6:
        return f"{short_p}{short_c if city != prov else ''}{dist}{road}", "", "", ""
    if r < 0.8:
        return f"{dist}{road}", city, prov, f"{rng.randrange(100000, 999999)}"
    return _S2T.convert(f"{prov}{city if city != prov else ''}{dist}{road}"), "", "", ""


def _west_address(rng: random.Random) -> tuple[str, str, str, str, str]:
    r = rng.random()
    street = f"{rng.randrange(1, 300)} {rng.choice(_STREETS_W)}"
    if r < 0.5:
        return street, rng.choice(["San Francisco", "NEW YORK", "Seattle"]), rng.choice(["California", "CA", "NY"]), \
            f"{rng.randrange(10000, 99999)}", rng.choice(["USA", "United States", "US"])
    if r < 0.8:
        return street, rng.choice(["Berlin", "München", "Hamburg"]), "", f"D-{rng.randrange(10000, 99999)}", \
            rng.choice(["Deutschland", "Germany", "DE"])
    return street, "London", "", rng.choice(["sw1a1aa", "EC1A 1BB", "M1 1AE"]), rng.choice(["UK", "GB"])


def _resident_id(rng: random.Random) -> str:
    body = f"{rng.choice(['110105', '320106', '310115', '440305'])}{rng.randrange(1950, 2005)}" \
           f"{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
    return body + (cn_id_check_char(body) if rng.random() < 0.95 else "0")


def generate(n: int, seed: int = 7) -> list[tuple]:
    """N records; about 35 % are the same person again from another source (same values, other shapes)."""
    rng = random.Random(seed)
    divs, _ = _divisions()
    people = []
    for _ in range(max(1, int(n * 0.65))):
        chinese = rng.random() < 0.75
        name = _chinese_name(rng) if chinese else _western_name(rng)
        local = pinyin(name) or name.split()[0].lower()
        email = f"{local}{rng.randrange(1000)}@{rng.choice(_DOMAINS)}" if rng.random() < 0.8 else ""
        addr = _cn_address(rng, divs) + ("中国",) if chinese else _west_address(rng)
        company = rng.choice(_COMPANIES) if rng.random() < 0.3 else ""
        rid = _resident_id(rng) if chinese and rng.random() < 0.25 else ""
        people.append((name, _phone(rng), email, _date(rng), addr, company, rid))
    records = [rng.choice(people) if i >= len(people) else people[i] for i in range(n)]
    rng.shuffle(records)
    return records


def run(records: list[tuple]) -> int:
    ok = 0
    for name, phone, email, dob, addr, company, rid in records:
        standardise_person_name(name)
        standardise_phone(phone)
        standardise_email(email)
        standardise_birth_date(dob, dayfirst=True)
        a = standardise_address(*addr)
        if company:
            standardise_company(company)
        if rid:
            validate_cn_resident_id(rid)
        ok += a.key is not None
    return ok


_CHUNKS: list[list[tuple]] = []


def _run_chunk(i: int) -> None:
    run(_CHUNKS[i])


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--workers", type=int, default=1, help="processes (each has its own caches)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    records = generate(args.records, args.seed)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(records):,} records in {gen_s:.1f}s "
          f"({len({r[0] for r in records}):,} distinct names, {len({r[4] for r in records}):,} distinct addresses)")

    # Load the libraries' lazy data (pycountry's database, libphonenumber region metadata, pypinyin
    # phrases) once, on other records, so a forked worker does not pay it again inside the timing.
    run(generate(300, args.seed + 1))
    t0 = time.perf_counter()
    c0 = _cpu_seconds()
    if args.workers <= 1:
        run(records)
    else:
        # Partition by person (as a pipeline partitions by key): the same values meet the same cache.
        chunks: list[list[tuple]] = [[] for _ in range(args.workers)]
        for r in records:
            chunks[hash(r[0]) % args.workers].append(r)
        global _CHUNKS
        _CHUNKS = chunks  # inherited by the forked workers: nothing is pickled
        ctx = mp.get_context("fork")
        procs = [ctx.Process(target=_run_chunk, args=(i,)) for i in range(args.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    elapsed = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0
    rate = len(records) / elapsed
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"standardised {len(records):,} records in {elapsed:.2f}s with {args.workers} worker(s): "
          f"{rate:,.0f} records/s (wall clock)")
    # On a shared machine the wall clock mostly measures the neighbours; CPU time is what we cost.
    print(f"CPU time {cpu:.2f}s: {len(records) / cpu:,.0f} records per CPU-second "
          f"(≈ {args.workers * len(records) / cpu:,.0f} records/s on {args.workers} idle core(s))")
    print(f"peak RSS: main {peak_mb:,.0f} MiB" + (f", largest worker {child_mb:,.0f} MiB" if args.workers > 1 else ""))


if __name__ == "__main__":
    main()
