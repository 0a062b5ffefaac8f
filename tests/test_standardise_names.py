"""Person and company names: Chinese (traditional/simplified/romanised, compound surnames, surname
readings), Western (titles, suffixes, particles, nicknames), companies with legal forms."""

import pytest

from hub.standardise import (
    nickname_canonical,
    pinyin,
    standardise_company,
    standardise_person_name,
    surname_pinyin,
    to_simplified,
)


@pytest.mark.parametrize("raw", ["陳偉", "陈伟", "Chen Wei", "WEI CHEN", "Chen, Wei", "chen wei", "CHEN Wei",
                                 "Wei CHEN", "陈 伟", "Mr. Chen Wei", "ＣＨＥＮ　ＷＥＩ"])
def test_chen_wei_same_key(raw):
    n = standardise_person_name(raw)
    assert n.name_key == "chen wei"


@pytest.mark.parametrize(
    ("raw", "family", "given", "family_py", "given_py"),
    [
        ("陳偉", "陈", "伟", "chen", "wei"),
        ("欧阳娜娜", "欧阳", "娜娜", "ouyang", "nana"),
        ("歐陽娜娜", "欧阳", "娜娜", "ouyang", "nana"),
        ("司马光", "司马", "光", "sima", "guang"),
        ("诸葛亮", "诸葛", "亮", "zhuge", "liang"),
        ("上官婉儿", "上官", "婉儿", "shangguan", "waner"),
        ("尉迟恭", "尉迟", "恭", "yuchi", "gong"),
        ("单雄信", "单", "雄信", "shan", "xiongxin"),
        ("曾国藩", "曾", "国藩", "zeng", "guofan"),
        ("区志航", "区", "志航", "ou", "zhihang"),
        ("解缙", "解", "缙", "xie", "jin"),
        ("仇英", "仇", "英", "qiu", "ying"),
        ("朴槿惠", "朴", "槿惠", "piao", "jinhui"),
        ("查良镛", "查", "良镛", "zha", "liangyong"),
        ("盖聂", "盖", "聂", "ge", "nie"),
        ("乐嘉", "乐", "嘉", "yue", "jia"),
        ("覃海", "覃", "海", "qin", "hai"),
        ("翟志刚", "翟", "志刚", "zhai", "zhigang"),
        ("王小明", "王", "小明", "wang", "xiaoming"),
        ("張學友", "张", "学友", "zhang", "xueyou"),
    ],
)
def test_han_split_and_pinyin(raw, family, given, family_py, given_py):
    n = standardise_person_name(raw)
    assert (n.family, n.given, n.family_pinyin, n.given_pinyin) == (family, given, family_py, given_py)
    assert n.script == "han"
    assert n.han == family + given
    assert n.display == raw


def test_explicit_parts_and_spacing():
    n = standardise_person_name(family="陳", given="偉")
    assert (n.family, n.given, n.name_key) == ("陈", "伟", "chen wei")
    n = standardise_person_name("欧阳 娜娜")
    assert (n.family, n.given) == ("欧阳", "娜娜")
    n = standardise_person_name(given="Wei", family="Chen")
    assert (n.family, n.given, n.family_pinyin) == ("Chen", "Wei", "chen")


@pytest.mark.parametrize(
    ("raw", "family", "given"),
    [
        ("Chen Wei", "Chen", "Wei"),
        ("WEI Chen", "Wei", "Chen"),           # the all-caps token is the family name
        ("Wei CHEN", "Chen", "Wei"),
        ("Chen, Wei", "Chen", "Wei"),          # comma = "Family, Given"
        ("Xiaoming Wang", "Wang", "Xiaoming"),
        ("Wang Xiaoming", "Wang", "Xiaoming"),
        ("Ouyang Nana", "Ouyang", "Nana"),
        ("Chan Tai Man", "Chan", "Tai Man"),
    ],
)
def test_romanised_chinese(raw, family, given):
    n = standardise_person_name(raw)
    assert (n.family, n.given) == (family, given)


def test_romanised_given_syllables_join():
    a = standardise_person_name("Xiao-Ming Wang")
    b = standardise_person_name("Wang Xiao Ming")
    c = standardise_person_name("王小明")
    assert a.name_key == b.name_key == c.name_key == "wang xiaoming"
    assert a.given_pinyin == "xiaoming"


@pytest.mark.parametrize(
    ("raw", "given", "middle", "family", "flags"),
    [
        ("Robert Smith", "Robert", None, "Smith", ()),
        ("Dr. Robert J. Smith Jr.", "Robert", "J", "Smith", ("name.title", "name.suffix")),
        ("Smith, John, Jr.", "John", None, "Smith", ("name.suffix",)),
        ("Mrs Mary Ann Jones", "Mary", "Ann", "Jones", ("name.title",)),
        ("Ludwig van Beethoven", "Ludwig", None, "van Beethoven", ()),
        ("JOHN SMITH III", "John", None, "Smith", ("name.suffix",)),
        ("José Müller", "José", None, "Müller", ()),
        ("O'Brien, Patrick", "Patrick", None, "O'Brien", ()),
    ],
)
def test_western(raw, given, middle, family, flags):
    n = standardise_person_name(raw)
    assert (n.given, n.middle, n.family, n.flags) == (given, middle, family, flags)
    assert n.script == "latin" and n.family_pinyin is None


def test_nicknames():
    assert standardise_person_name("Bob Smith").given_canonical == standardise_person_name(
        "Robert Smith").given_canonical == "robert"
    pairs = {"Bill": "william", "Liz": "elizabeth", "Peggy": "margaret", "Jim": "james", "Dick": "richard",
             "Kate": "katherine", "Catherine": "katherine", "Steven": "stephen", "Zhang": "zhang"}
    for nick, canon in pairs.items():
        assert nickname_canonical(nick) == canon
    assert standardise_person_name("Robert J. Smith").name_key == "robert smith"
    from hub.standardise._name_data import NICKNAMES
    assert len(NICKNAMES) >= 100


@pytest.mark.parametrize(
    ("raw", "flag"),
    [("陈先生", "name.honorific"), ("王女士", "name.honorific"), ("陈", "name.family_only"),
     ("买买提·艾力", "name.transliterated"), ("David 陈伟", "name.mixed_script"), ("김민준", "name.other_script")],
)
def test_name_flags(raw, flag):
    assert flag in standardise_person_name(raw).flags


def test_honorific_and_mixed():
    n = standardise_person_name("陈先生")
    assert (n.family, n.given, n.name_key) == ("陈", None, "chen")
    n = standardise_person_name("David 陈伟")
    assert (n.script, n.han, n.name_key) == ("mixed", "陈伟", "chen wei")


@pytest.mark.parametrize("raw", ["12345", "!!!", "---", "x" * 300])
def test_unparseable(raw):
    n = standardise_person_name(raw)
    assert n.name_key is None and n.flags == ("name.unparseable",)


def test_missing():
    assert standardise_person_name(None).flags == ("name.missing",)
    assert standardise_person_name("   ", given="", family=None).flags == ("name.missing",)


def test_helpers():
    assert to_simplified("陳偉 華為") == "陈伟 华为"
    assert pinyin("小明") == "xiaoming"
    assert surname_pinyin("单") == "shan" and surname_pinyin("欧阳") == "ouyang"


@pytest.mark.parametrize(
    ("raw", "name", "legal_form", "key"),
    [
        ("华为技术有限公司", "华为技术", "有限公司", "华为技术"),
        ("華為技術有限公司", "华为技术", "有限公司", "华为技术"),
        ("北京字节跳动科技有限责任公司", "北京字节跳动科技", "有限责任公司", "北京字节跳动科技"),
        ("中国平安保险(集团)股份有限公司", "中国平安保险(集团)", "股份有限公司", "中国平安保险集团"),
        ("海尔集团", "海尔", "集团", "海尔"),
        ("万科企业股份有限公司", "万科企业", "股份有限公司", "万科企业"),
        ("Acme Co., Ltd.", "Acme", "Co Ltd", "acme"),
        ("ACME Inc", "ACME", "Inc", "acme"),
        ("Acme, Inc.", "Acme", "Inc", "acme"),
        ("Foo Bar LLC", "Foo Bar", "LLC", "foo bar"),
        ("Siemens AG", "Siemens", "AG", "siemens"),
        ("Müller GmbH", "Müller", "GmbH", "muller"),
        ("Foo GmbH & Co. KG", "Foo", "GmbH Co KG", "foo"),
        ("Nestlé S.A.", "Nestlé", "SA", "nestle"),
        ("Tesco PLC", "Tesco", "PLC", "tesco"),
        ("Apple", "Apple", None, "apple"),
    ],
)
def test_company(raw, name, legal_form, key):
    c = standardise_company(raw)
    assert (c.name, c.legal_form, c.key) == (name, legal_form, key)


def test_company_edge():
    assert standardise_company("Ltd").name == "Ltd"   # the legal form alone is not stripped to nothing
    assert standardise_company(None).flags == ("company.missing",)
    assert standardise_company("有限公司").name == "有限公司"


@pytest.mark.parametrize(
    ("raw", "family", "given"),
    [("陈伟先生", "陈", "伟"), ("欧阳娜娜小姐", "欧阳", "娜娜"), ("李总", "李", None), ("王女士", "王", None)],
)
def test_honorific_suffixes(raw, family, given):
    n = standardise_person_name(raw)
    assert (n.family, n.given) == (family, given) and "name.honorific" in n.flags


def test_social_display_names_and_initials():
    n = standardise_person_name("Sunny☀️")
    assert n.name_key == "sunny" and "name.symbols" in n.flags and n.display == "Sunny"
    assert "name.initial" in standardise_person_name("J. Smith").flags


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("M", "M"), ("male", "M"), ("男", "M"), ("先生", "M"), ("1", "M"), (1, "M"), ("Männlich", "M"),
     ("F", "F"), ("Female", "F"), ("女", "F"), ("女士", "F"), ("2", "F"), ("w", "F"),
     ("0", None), ("unknown", None), (None, None), ("", None)],
)
def test_gender(raw, expected):
    from hub.standardise import standardise_gender

    assert standardise_gender(raw) == expected


@pytest.mark.parametrize(
    ("full", "gender", "canonical"),
    [("Pat Smith", "M", "patrick"), ("Pat Smith", "F", "patricia"), ("Pat Smith", "女", "patricia"),
     ("Alex Li", "female", "alexandra"), ("Alex Li", "male", "alexander"), ("Chris Wong", "F", "christina"),
     ("Bob Smith", "F", "robert"), ("Charlie Brown", "F", "charlotte")],
)
def test_gender_resolves_ambiguous_nicknames(full, gender, canonical):
    assert standardise_person_name(full, gender=gender).given_canonical == canonical


def test_given_name_variants_and_continental_nicknames():
    from hub.standardise import given_name_variants

    assert set(given_name_variants("Pat")) == {"patrick", "patricia"}
    assert given_name_variants("Bob") == ("robert",)
    assert given_name_variants("") == ()
    for nick, canon in {"Olli": "oliver", "Lotte": "charlotte", "Steffi": "stefanie", "Sepp": "josef",
                        "Paco": "francisco", "Matze": "matthias"}.items():
        assert nickname_canonical(nick) == canon


@pytest.mark.parametrize(
    ("given", "family", "expected_family", "expected_given", "key"),
    [("", "刘磊", "刘", "磊", "lei liu"), ("刘磊", "", "刘", "磊", "lei liu"), ("", "陈", "陈", None, "chen"),
     ("", "欧阳", "欧阳", None, "ouyang"), ("Chen Wei", "", "Chen", "Wei", "chen wei"),
     ("", "Wang Xiaoming", "Wang", "Xiaoming", "wang xiaoming"),
     ("", "van Dijk", "van Dijk", None, "vandijk"), ("Mary Ann", "", None, "Mary", "mary")],
)
def test_whole_name_in_one_field(given, family, expected_family, expected_given, key):
    n = standardise_person_name(given=given, family=family)
    assert (n.family, n.given, n.name_key) == (expected_family, expected_given, key)


@pytest.mark.parametrize(
    ("raw", "family_key", "given_key"),
    [("陈伟", "chen", "wei"), ("WEI CHEN", "chen", "wei"), ("José Müller", "muller", "jose"),
     ("Ludwig van Beethoven", "vanbeethoven", "ludwig"), ("Xiao-Ming Wang", "wang", "xiaoming"), ("Bob", None, "bob")],
)
def test_part_keys_in_any_script(raw, family_key, given_key):
    n = standardise_person_name(raw)
    assert (n.family_key, n.given_key) == (family_key, given_key)


@pytest.mark.parametrize(
    ("raw", "family", "given"),
    [
        ("老赵", "赵", None),  # "old Zhao": a surname
        ("小王", "王", None),  # 小 + a very common surname
        ("阿陈", "陈", None),
        ("小刚", None, "刚"),  # 小 + a given name
        ("阿强", None, "强"),
        ("小明", None, "明"),
        ("王小明", "王", "小明"),  # a real name starting with 王 is untouched
    ],
)
def test_familiar_forms_of_address(raw, family, given):
    n = standardise_person_name(raw)
    assert (n.family, n.given) == (family, given)
    if raw != "王小明":
        assert "name.familiar" in n.flags


def test_romanised_surname_variants():
    from hub.standardise import surname_variants

    assert surname_variants("Wong") == ("wong", "wang", "huang")
    assert surname_variants("chiang") == ("chiang", "jiang")
    assert surname_variants("smith") == ("smith",) and surname_variants("") == ()
    n = standardise_person_name("Chiang Xin Juan")  # a known romanised surname leads, Chinese order
    assert (n.family, n.given) == ("Chiang", "Xin Juan")


@pytest.mark.parametrize(("raw", "name_key", "kind"), [
    ("Ines Khan #00999", "ines khan", "code"),
    ("John Smith (old account)", "john smith", "inactive"),
    ("Maria Rossi - do not use", "maria rossi", "inactive"),
    ("Anna Dubois DUPLICATE", "anna dubois", "duplicate"),
    ("王伟 测试", "wang wei", "test"),
    ("王伟（停用）", "wang wei", "inactive"),
    ("Hugo Khan [12345]", "hugo khan", "code"),
])
def test_erp_notes_are_split_off_and_flagged(raw, name_key, kind):
    r = standardise_person_name(raw)
    assert r.name_key == name_key and "name.note" in r.flags and f"name.note_{kind}" in r.flags, r


@pytest.mark.parametrize("raw", ["John Smith Jr.", "Mary-Jane Watson", "Wang Se", "Chen Wei", "欧阳娜娜"])
def test_names_without_notes_are_left_alone(raw):
    assert not any(f.startswith("name.note") or f == "name.organisation" for f in standardise_person_name(raw).flags)


@pytest.mark.parametrize("raw", ["ACME Trading GmbH", "Northwind Ltd.", "Foo S.A.", "Bar Inc.", "上海某某贸易有限公司",
                                 "XX股份有限公司", "Huawei Technologies Co., Ltd.", "Siemens AG"])
def test_organisations_are_recognised_by_legal_form(raw):
    r = standardise_person_name(raw)
    assert "name.organisation" in r.flags and r.family is None and r.given is None and r.name_key, r
