"""Matching rules of the engine, each through ``deduplicate`` on a small frame plus a background population
(so that frequencies and EM have something to learn from): Chinese names as characters, one typo in an id,
one-word pinyin names, source-pair priors, cluster profiles, oversized components."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hub.dedupe import deduplicate
from hub.dedupe import synthetic as syn
from hub.dedupe.blocking import DEFAULT_RULES, candidate_pairs
from hub.dedupe.prepare import prepare

BACKGROUND = syn.customers(800, seed=31).drop(columns=["entity_id"]).astype(str)


def _run(rows: list[dict], background: pd.DataFrame = BACKGROUND):
    df = pd.concat([pd.DataFrame(rows).fillna("").astype(str), background], ignore_index=True).fillna("")
    res = deduplicate(df)
    return res, dict(zip(res.clusters.record_id, res.clusters.cluster_id, strict=True))


def _pair(res, a: str, b: str) -> dict:
    p = res.pairs
    hit = p[((p.record_id_l == a) & (p.record_id_r == b)) | ((p.record_id_l == b) & (p.record_id_r == a))]
    assert len(hit) == 1, f"{a}-{b} not a candidate pair"
    return hit.iloc[0].to_dict()


def test_chinese_given_names_compare_as_characters():
    res, c = _run([
        # one household: same surname, address and landline; 婉红 and 浩强 look alike only as pinyin letters
        {"record_id": "h1", "full_name": "张婉红", "phone": "027-94541334", "street": "江汉区朝阳路304号202室",
         "city": "武汉", "birth_date": "1964-04-12"},
        {"record_id": "h2", "full_name": "张浩强", "phone": "86-27-94541334", "street": "朝阳路304号202室",
         "city": "武汉市", "national_id": "440106196806083291"},
        # 王伟 / 王薇: the same pinyin, different people
        {"record_id": "w1", "full_name": "王伟", "city": "北京", "phone": "13911112222"},
        {"record_id": "w2", "full_name": "王薇", "city": "北京", "phone": "13911112222"},
        # the same person in hanzi and in pinyin
        {"record_id": "p1", "full_name": "邹俊", "phone": "16691324135", "city": "重庆"},
        {"record_id": "p2", "full_name": "Zou Jun", "phone": "166 9132 4135"},
    ])
    assert _pair(res, "h1", "h2")["given_name_level"] == "far"
    assert _pair(res, "w1", "w2")["given_name_level"] == "weak"
    assert _pair(res, "p1", "p2")["given_name_level"] == "exact"
    assert c["h1"] != c["h2"] and c["p1"] == c["p2"]


def test_one_typo_in_an_id_or_phone_still_meets_in_blocking():
    df = pd.DataFrame([
        {"record_id": "a", "full_name": "Ann Lee", "national_id": "6258306"},
        {"record_id": "b", "full_name": "Anne Leigh", "national_id": "6285306"},  # two digits swapped
        {"record_id": "c", "full_name": "Bo Chan", "phone": "+86 138 0013 8000"},
        {"record_id": "d", "full_name": "Chan Bo", "phone": "13800138001"},  # last digit differs
    ])
    p = prepare(pd.concat([df, BACKGROUND], ignore_index=True).fillna(""))
    rules = tuple(r for r in DEFAULT_RULES if r.variants == "deletions")
    left, right, _ = candidate_pairs(p, rules)
    pairs = {tuple(sorted((p.record_id[a], p.record_id[b]))) for a, b in zip(left, right, strict=True)}
    assert ("a", "b") in pairs and ("c", "d") in pairs


def test_one_word_pinyin_name_matches_the_full_name():
    res, c = _run([
        {"record_id": "x1", "source": "webshop", "full_name": "徐博鹏", "phone": "0086 18017839086",
         "city": "西安"},
        {"record_id": "x2", "source": "wechat", "full_name": "xubopeng", "phone": "+86 180 1783 9086"},
    ])
    pair = _pair(res, "x1", "x2")
    assert pair["family_name_level"] == "exact" and pair["given_name_level"] == "exact"
    assert c["x1"] == c["x2"]


def test_source_pair_priors_follow_the_data():
    df = syn.sparse_multisource(1500, seed=32).astype(str)
    res = deduplicate(df.drop(columns=["entity_id"]))
    gp = res.model.group_prior
    # every sandbox person has at most one record per system: within-system pairs are far less likely
    # matches than cross-system ones, and the engine learns that without labels
    assert gp["erp|erp"] < gp["erp|shop"] - 1.5
    assert gp["shop|shop"] < gp["erp|shop"] - 1.5
    pairs = res.pairs
    assert np.allclose(pairs[[c for c in pairs.columns if c.endswith("_weight") and c != "match_weight"]]
                       .sum(axis=1), pairs["match_weight"], atol=0.05)


def test_caller_joins_the_person_whose_landline_it_is():
    """A call-centre record (surname + landline) agrees with one ERP record; the person's other records hold
    other fields. Compared as profiles, the clusters match; pair by pair, the caller would stay alone."""
    res, c = _run([
        {"record_id": "e1", "source": "erp", "full_name": "王建国", "phone": "023-48382546", "birth_date": "1971/6/14",
         "street": "九龙坡区深南大道34号", "city": "重庆", "postal_code": "400102"},
        {"record_id": "e2", "source": "erp", "full_name": "王建国", "email": "jianguo.wang@qq.com",
         "birth_date": "1971-06-14", "street": "九龙坡区深南大道34号", "city": "重庆市", "postal_code": "400102"},
        {"record_id": "s1", "source": "webshop", "full_name": "Wang Jianguo", "email": "jianguo.wang@qq.com",
         "phone": "166 9132 4135", "street": "九龙坡区深南大道34号", "postal_code": "400102"},
        {"record_id": "c1", "source": "callcenter", "full_name": "王先生", "phone": "(023)4838 2546"},
    ], syn.customers(3000, seed=34).drop(columns=["entity_id"]).astype(str))
    # pair by pair, the caller is a stranger to e2 (not even a candidate, or a weak one)
    p = res.pairs
    e2c1 = p[((p.record_id_l == "e2") & (p.record_id_r == "c1")) | ((p.record_id_l == "c1") & (p.record_id_r == "e2"))]
    assert e2c1.empty or float(e2c1.match_probability.iloc[0]) < 0.5
    assert c["e1"] == c["e2"] == c["s1"] == c["c1"]


def test_one_badly_typod_duplicate_does_not_split_a_person():
    """FEBRL-style star: every duplicate matches the original, but two corrupted duplicates disagree with each
    other on given name and id. The person stays one cluster."""
    rows = [
        {"record_id": "o", "given_name": "riley", "family_name": "singh", "birth_date": "19480207",
         "national_id": "8221720", "street": "110 main street", "city": "sydney", "postal_code": "2000"},
        {"record_id": "d1", "given_name": "riley", "family_name": "singh", "national_id": "8232207",
         "street": "110 main street", "city": "sydney", "postal_code": "2020"},
        {"record_id": "d2", "given_name": "ri1y", "family_name": "sinkg", "birth_date": "19480207",
         "national_id": "8221720", "street": "110 main stre et", "city": "sydney", "postal_code": "2000"},
        {"record_id": "d3", "given_name": "riley", "family_name": "singh", "birth_date": "19950414",
         "national_id": "8221720", "street": "110 main street", "city": "sydney", "postal_code": "2000"},
    ]
    background = syn.febrl_like(1500, 2000, 5, seed=33).drop(columns=["entity_id"]).astype(str)
    _, c = _run(rows, background)
    assert c["o"] == c["d1"] == c["d2"] == c["d3"]


def test_an_oversized_component_is_cut_before_exhaustive_scoring():
    """A chain of 3,000 records, each linked to the next (namesakes and shared numbers at 1M records): every
    pair of a component is scored, so a component this size must be cut at its weakest links first — the
    pairs scored stay O(n * limit), not O(n^2), and no cluster is larger than the limit."""
    from hub.dedupe.cluster import cluster

    n, limit = 3000, 100
    left = np.arange(n - 1, dtype=np.int64)
    right = left + 1
    weight = np.random.default_rng(5).uniform(1, 10, n - 1)
    scored = []

    def score_pairs(i, j):
        scored.append(len(i))
        adjacent = np.abs(i - j) == 1
        mw = np.where(adjacent, 5.0, -20.0)
        return mw, 1 / (1 + np.exp2(-mw)), np.zeros(len(i), dtype=bool)

    labels = cluster(n, left, right, weight, score_pairs, max_component=limit)
    assert sum(scored) <= n * limit / 2
    assert np.bincount(labels).max() <= limit


def test_romanised_surnames_and_split_full_names():
    res, c = _run([
        # Hong Kong spelling of 黄 / 姚 against the mainland record of the same person
        {"record_id": "k1", "full_name": "Wong Jiawei", "phone": "+852 9123 4567", "city": "Shenzhen"},
        {"record_id": "k2", "full_name": "黄家伟", "phone": "85291234567", "city": "深圳"},
        {"record_id": "y1", "full_name": "yiu yuyan", "phone": "0422705677", "city": "Melbourne"},
        {"record_id": "y2", "full_name": "姚语燕", "phone": "0422 705 677", "city": "Melbourne"},
        # the same letters split differently into family and given name
        {"record_id": "s1", "full_name": "Chiang Xin Juan", "phone": "15233714448"},
        {"record_id": "s2", "full_name": "xinjuan chiang", "phone": "152-3371-4448"},
    ])
    assert _pair(res, "k1", "k2")["family_name_level"] == "close"
    assert _pair(res, "y1", "y2")["family_name_level"] == "close"
    pair = _pair(res, "s1", "s2")
    assert pair["family_name_level"] == "exact" and pair["given_name_level"] == "exact"
    assert c["k1"] == c["k2"] and c["y1"] == c["y2"] and c["s1"] == c["s2"]


def test_naive_transliteration_of_a_surname_reading():
    # a shop export transliterated 曾 with its everyday reading (ceng); as a surname it reads zeng
    res, c = _run([
        {"record_id": "z1", "family_name": "Ceng", "given_name": "Wei", "street": "杭州人民路67号", "city": "杭州",
         "email": "cengwei457@yahoo.com"},
        {"record_id": "z2", "full_name": "曾伟", "street": "杭州人民路67号", "postal_code": "310000", "city": "杭州",
         "birth_date": "1968-01-13"},
        {"record_id": "d1", "full_name": "Dan Lihua", "phone": "13912345678"},
        {"record_id": "d2", "full_name": "单丽华", "phone": "139 1234 5678"},
    ])
    assert _pair(res, "z1", "z2")["family_name_level"] == "close"
    assert _pair(res, "d1", "d2")["family_name_level"] == "close"
    assert c["z1"] == c["z2"] and c["d1"] == c["d2"]


def test_parallel_standardisation_gives_the_same_keys(monkeypatch):
    import hub.dedupe.prepare as prep

    monkeypatch.setattr(prep, "PARALLEL_MIN", 10)  # force the forked path on a small frame
    frame = syn.sparse_multisource(400, seed=35).drop(columns=["entity_id"]).astype(str)
    # and with staging's verdicts on some numbers (read off, a chunk at a time beside the rest standardised)
    phones = [v for v in frame["phone"].tolist() if v]
    verdicts = {"staged_phones": {v for v in phones[::3] if v.startswith("+")}, "unverified_phones": set(phones[1::3])}
    for given in ({}, verdicts):
        one, two = prep.prepare(frame, workers=1, **given), prep.prepare(frame, workers=2, **given)
        assert one.keys.keys() == two.keys.keys()
        for name in one.keys:
            assert np.array_equal(one.key(name).codes, two.key(name).codes), name
            assert list(one.key(name).uniques) == list(two.key(name).uniques), name


def test_parallel_blocking_and_comparison_give_the_same_clusters(monkeypatch):
    import hub.dedupe.blocking as blk
    import hub.dedupe.engine as eng
    from hub.dedupe import DedupeSettings

    monkeypatch.setattr(blk, "PARALLEL_MIN_RECORDS", 10)
    monkeypatch.setattr(eng, "CMP_CHUNK", 5_000)  # many comparison tasks on a small frame
    # the fit's weights in chunks on two processes (a chunk shorter than CHUNK: three of them)
    monkeypatch.setattr(eng, "WEIGH_PARALLEL_MIN", 10)
    monkeypatch.setattr(eng, "CHUNK", 1_000)
    frame = syn.customers(1500, seed=36).drop(columns=["entity_id"]).astype(str)
    one = deduplicate(frame, settings=DedupeSettings(workers=1))
    two = deduplicate(frame, settings=DedupeSettings(workers=2))
    assert one.stats["blocking"] == two.stats["blocking"]
    assert one.clusters.equals(two.clusters)
    assert np.array_equal(one.pairs["match_weight"].to_numpy(), two.pairs["match_weight"].to_numpy())
    assert np.array_equal(one.pairs["conflict"].to_numpy(), two.pairs["conflict"].to_numpy())


def test_email_levels_tell_typos_from_numbered_namesakes():
    res, c = _run([
        # two Sophie Joneses who each added a number to the same name-derived mailbox
        {"record_id": "n1", "full_name": "Sophie Jones", "email": "sjones28@hotmail.com", "city": "Chicago"},
        {"record_id": "n2", "full_name": "Sophie Jones", "email": "sjones49@hotmail.com", "city": "Chicago"},
        {"record_id": "n3", "full_name": "Chloe Williams", "email": "chloe.williams@gmail.com"},
        {"record_id": "n4", "full_name": "Chloe Williams", "email": "chloe.williams136@gmail.com"},
        {"record_id": "n5", "full_name": "James Green", "email": "jgreen@outlook.com"},
        {"record_id": "n6", "full_name": "C. Green", "email": "cgreen@outlook.com"},
        # one person: separators, a typo, a birth year written short, the same mailbox elsewhere
        {"record_id": "p1", "full_name": "Chloe Ryan", "email": "chloe.ryan@hotmail.com", "phone": "+1 617 555 0101"},
        {"record_id": "p2", "full_name": "Chloe Ryan", "email": "chloe_ryan@hotmail.com"},
        {"record_id": "t1", "full_name": "Oliver Bennet", "email": "oliver.bennet@gmail.com"},
        {"record_id": "t2", "full_name": "Oliver Bennett", "email": "oliver.benent@gmail.com"},
        {"record_id": "y1", "full_name": "Jack Thomas", "email": "jack.thomas1985@gmail.com"},
        {"record_id": "y2", "full_name": "Jack Thomas", "email": "jack.thomas85@gmail.com"},
    ])
    for a, b in (("n1", "n2"), ("n3", "n4"), ("n5", "n6")):
        assert _pair(res, a, b)["email_level"] == "far", (a, b)
    assert c["n1"] != c["n2"] and c["n3"] != c["n4"]
    for a, b in (("p1", "p2"), ("t1", "t2"), ("y1", "y2")):
        assert _pair(res, a, b)["email_level"] == "close", (a, b)
        assert c[a] == c[b], (a, b)


def test_swapped_name_with_one_agreeing_part_is_a_shared_surname():
    # "Pham Neil" read either way: the agreeing token is the surname of a household, not a rare given name
    res, c = _run([
        {"record_id": "v1", "full_name": "Pham Neil", "phone": "347-686-2332"},
        {"record_id": "v2", "full_name": "Vanessa Pham", "phone": "+1 347 686 2332", "birth_date": "1979-09-19",
         "email": "vanessa_pham1979@gmail.com", "street": "229 Jefferson St", "city": "Flushing"},
    ])
    pair = _pair(res, "v1", "v2")
    assert pair["family_name_level"] == "exact" and pair["given_name_level"] == "far"
    assert c["v1"] != c["v2"]


def test_municipality_in_the_region_column_and_a_street_in_another_script():
    res, c = _run([
        # 上海市 only as the region, the street in hanzi; the same flat written in English with Shanghai as city
        {"record_id": "m1", "family_name": "張", "given_name": "桂蘭", "street": "张江路339号17栋3204室",
         "region": "上海市", "gender": "f", "phone": "86-17336817311"},
        {"record_id": "m2", "full_name": "guilan zhang", "street": "Rm 3204, No.339, Zhangjiang Lu, Xuhui",
         "city": "Shanghai", "postal_code": "200308", "birth_date": "1966-07-22", "gender": "F"},
    ])
    assert _pair(res, "m1", "m2")["address_level"] == "same_area"
    keys = prepare(pd.DataFrame([{"record_id": "a", "region": "上海市"}, {"record_id": "b", "region": "NY"}]), workers=1)
    assert [keys.key("city").uniques[x] if x >= 0 else None for x in keys.key("city").codes] == ["shanghai", None]


def test_a_phone_held_by_one_customer_only_links_a_bare_call_record():
    # a call-centre record with nothing but a number; that number is on one ERP customer and nowhere else.
    # Its frequency among *other* people's records is what makes it telling, not its raw count of two
    background = syn.sparse_multisource(1500, seed=41).drop(columns=["entity_id"]).astype(str)
    res, c = _run([
        {"record_id": "c1", "source": "callcenter", "phone": "0086 15808948858"},
        {"record_id": "e1", "source": "erp", "full_name": "李建杰", "phone": "+86 158 0894 8858", "city": "广州市",
         "email": "lijianjie@163.com"},
    ], background=background)
    assert _pair(res, "c1", "e1")["phone_level"] == "exact"
    assert c["c1"] == c["e1"]


def test_screen_names_are_not_surname_plus_given_name():
    frame = pd.DataFrame([{"record_id": "a", "full_name": "平安是福"}, {"record_id": "b", "full_name": "春梅_46"},
                          {"record_id": "c", "full_name": "陈国强"}, {"record_id": "d", "full_name": "老赵"}])
    keys = prepare(frame, workers=1)

    def parts(k: str) -> list:
        col = keys.key(k)
        return [col.uniques[x] if x >= 0 else None for x in col.codes]

    assert parts("family") == [None, None, "chen", "zhao"]
    assert parts("given") == ["pinganshifu", "chunmei", "guoqiang", None]
    # two followers who both call themselves 平安是福 are not two records of a person named 平 安是福
    background = syn.sparse_multisource(1500, seed=43).drop(columns=["entity_id"]).astype(str)
    res, c = _run([
        {"record_id": "w1", "source": "social", "full_name": "平安是福", "city": "上海", "gender": "女"},
        {"record_id": "w2", "source": "social", "full_name": "平安是福", "city": "Manchester", "gender": "F"},
    ], background=background)
    assert c["w1"] != c["w2"]


def test_a_mailbox_named_after_the_person_at_another_provider_is_no_evidence():
    res, _ = _run([
        {"record_id": "r1", "full_name": "Robert Jones", "email": "robert.jones@gmail.com", "city": "Boston"},
        {"record_id": "r2", "full_name": "Robert Jones", "email": "robert.jones@icloud.com", "city": "Boston"},
        # a mailbox name that is not the name: the same one elsewhere still points at one person
        {"record_id": "x1", "full_name": "徐晨", "email": "sunnyday88@139.com", "city": "上海"},
        {"record_id": "x2", "full_name": "Xu Chen", "email": "sunnyday88@qq.com", "city": "Shanghai"},
    ])
    assert _pair(res, "r1", "r2")["email_level"] == "missing"
    assert _pair(res, "x1", "x2")["email_level"] == "close"


def test_a_small_source_does_not_talk_itself_into_matches():
    # a dozen records of a source of their own: its prior is shrunk towards the global one, so two namesakes
    # with different mailboxes stay apart instead of the source's prior rising to "every pair is a match"
    names = ["Ava Clarke", "Noah Fischer", "Mia Novak", "Liam Ortega", "Zoe Hartmann", "Ethan Moreau",
             "Lily Sato", "Owen Becker", "Ruby Castillo", "Felix Lindqvist"]
    rows = [{"record_id": f"s{k}", "source": "tiny", "full_name": name, "city": "Boston"}
            for k, name in enumerate(names)]
    rows += [{"record_id": "n1", "source": "tiny", "full_name": "Sophie Jones", "email": "sjones28@hotmail.com",
              "city": "Chicago"},
             {"record_id": "n2", "source": "tiny", "full_name": "Sophie Jones", "email": "sjones49@hotmail.com",
              "city": "Chicago"}]
    res, c = _run(rows)
    assert res.model.group_prior["tiny|tiny"] < res.model.prior_log2_odds + 3
    assert c["n1"] != c["n2"]


def test_deletion_variants_block_like_spelled_out_variants():
    # the vectorised, hashed variants must put records in the same blocks as the plain definition: a value
    # and each of its one-character deletions (values of 6+ characters, 1122 minus either 1 is one variant)
    from hub.dedupe.blocking import MIN_DELETION_LEN, deletion_variants
    from hub.dedupe.prepare import KeyColumn

    rng = np.random.default_rng(5)
    values = sorted({"".join(rng.choice(list("0123456789"), size=int(rng.integers(4, 13)))) for _ in range(3000)}
                    | {"112233", "11223", "1122334", "abcdeé", "abcdé", "440103198104111630"})
    col = KeyColumn(codes=rng.integers(-1, len(values), size=8000).astype(np.int32),
                    uniques=np.array(values, dtype=object))
    rec, code, ids = deletion_variants(col)
    got = {}
    for r, c in zip(rec.tolist(), code.tolist(), strict=True):
        got.setdefault(c, set()).add(r)
    want = {}
    for r, c in enumerate(col.codes.tolist()):
        v = values[c] if c >= 0 else ""
        if len(v) < MIN_DELETION_LEN:
            continue
        for d in {v, *(v[:k] + v[k + 1:] for k in range(len(v)))}:
            want.setdefault(d, set()).add(r)
    assert sorted(map(sorted, got.values())) == sorted(map(sorted, want.values()))
    assert len(np.unique(ids)) == len(ids)  # one id per distinct variant


def test_shared_variant_table_blocks_every_slot_as_its_own_table():
    # phone~1 computes the deletion variants of the phone value table once for the first and every further
    # phone: each slot must get the rows it gets from a table of its own
    from hub.dedupe.blocking import deletion_variants, variant_table
    from hub.dedupe.prepare import KeyColumn

    rng = np.random.default_rng(9)
    values = np.array(sorted({"".join(rng.choice(list("0123456789"), size=int(rng.integers(4, 14))))
                              for _ in range(2000)}), dtype=object)
    table = variant_table(values)
    for seed in range(3):  # slots hold different, sparser subsets of the same table
        codes = np.random.default_rng(seed).integers(-1 - 3 * seed, len(values), size=5000)
        col = KeyColumn(codes=np.maximum(codes, -1).astype(np.int32), uniques=values)
        rec, code, ids = deletion_variants(col)
        rec2, code2, ids2 = deletion_variants(col, table)
        assert (rec == rec2).all() and (ids[code] == ids2[code2]).all()


def test_the_fictional_number_prefilter_agrees_with_its_definition():
    # the prefilter of the fictional-number check (only non-digit text and numbers holding 55501 are checked)
    # must flag what the plain definition flags, for any text (staging hands over digits, fallbacks need not)
    import random
    import string

    from hub.dedupe.prepare import KeyColumn, _reserved
    from hub.standardise.placeholders import phone_placeholder

    rnd = random.Random(3)
    alphabet = string.printable + "éü王²٣５"
    vals = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 15))) for _ in range(5000)]
    vals += ["".join(rnd.choice("0123456789") for _ in range(rnd.randint(5, 13))) for _ in range(5000)]
    vals += [f"1{rnd.randint(200, 999)}55501{rnd.randint(0, 99):02d}" for _ in range(300)]
    vals += [f"55501{k:02d}" for k in range(100)] + ["+1 (212) 555-0142", "555-0199", "٥٥٥٠١٠٠", "2125550142"]
    vals = list(dict.fromkeys(vals))
    col = KeyColumn(codes=np.arange(len(vals), dtype=np.int32), uniques=np.array(vals, dtype=object))
    got = _reserved(col, "phone.fictional").codes == 0
    want = np.array([phone_placeholder(v) == "phone.fictional" for v in vals])
    assert want.sum() > 300 and (got == want).all()


def test_value_hashes_are_pandas_hashes_of_the_values():
    # value_hashes skips pandas' categorising: the hashes stored models hold (by value) must not change
    from hub.dedupe.model import value_hashes

    vals = np.array(["", "wang", "王芳", "x" * 300, "13800138000", "a@b.cn", "wang"], dtype=object)
    assert (value_hashes(vals) == pd.util.hash_array(vals.astype(str).astype(object))).all()


def test_band_codes_are_the_bands():
    # the golden stage reads one byte per pair (band_codes) where the band's text took 40: both must say the
    # same, conflicts included and whatever the thresholds' order
    from hub.dedupe import BAND_BY_CODE, DedupeSettings, Scores

    rng = np.random.default_rng(1)
    prob = rng.random(50_000).astype(np.float32)
    prob[:50], prob[50:100] = 0.5, 0.1  # on the default thresholds
    conflict = rng.random(50_000) < 0.1
    s = Scores(np.zeros(50_000, np.float32), prob, conflict, np.zeros((50_000, 1), np.int8))
    for ds in (DedupeSettings(), DedupeSettings(auto_match=0.3, review=0.6)):
        plain = np.where(conflict, "non_match", np.where(prob >= ds.auto_match, "auto_match",
                                                         np.where(prob >= ds.review, "review", "non_match")))
        assert (np.array(BAND_BY_CODE)[s.band_codes(ds)] == plain).all() and (s.band(ds) == plain).all()
