"""Addresses: Chinese divisions from full/abbreviated forms, Western street/postcode, countries."""

import pytest

from hub.standardise import country_code, standardise_address, standardise_postal_code, standardise_street
from hub.standardise._cn_divisions import DIVISIONS


@pytest.mark.parametrize(
    ("kwargs", "region", "city", "district", "street", "adcode"),
    [
        (dict(street="江苏省南京市鼓楼区中山路1號"), "江苏省", "南京市", "鼓楼区", "中山路1号", "320106"),
        (dict(street="江苏南京鼓楼区中山路１號"), "江苏省", "南京市", "鼓楼区", "中山路1号", "320106"),
        (dict(street="南京市鼓楼区中山路1号"), "江苏省", "南京市", "鼓楼区", "中山路1号", "320106"),
        (dict(street="江苏 南京 鼓楼区 中山路1号"), "江苏省", "南京市", "鼓楼区", "中山路1号", "320106"),
        (dict(street="上海市浦东新区世纪大道100号"), "上海市", "上海市", "浦东新区", "世纪大道100号", "310115"),
        (dict(street="上海浦东世纪大道100号"), "上海市", "上海市", "浦东新区", "世纪大道100号", "310115"),
        (dict(street="北京朝阳区建国路88号"), "北京市", "北京市", "朝阳区", "建国路88号", "110105"),
        (dict(street="吉林省长春市朝阳区人民大街"), "吉林省", "长春市", "朝阳区", "人民大街", "220104"),
        (dict(street="中山路1号", city="南京", region="江苏"), "江苏省", "南京市", None, "中山路1号", "320100"),
        (dict(street="鼓楼区中山路1号", city="南京市", region="江苏省"), "江苏省", "南京市", "鼓楼区", "中山路1号",
         "320106"),
        (dict(street="中国江苏省南京市江苏省南京市鼓楼区中山路1号"), "江苏省", "南京市", "鼓楼区", "中山路1号", "320106"),
        (dict(street="南京路100号", city="上海"), "上海市", "上海市", None, "南京路100号", "310000"),
        (dict(street="廣東省深圳市南山區科技園"), "广东省", "深圳市", "南山区", "科技园", "440305"),
        (dict(street="广西南宁青秀区民族大道"), "广西壮族自治区", "南宁市", "青秀区", "民族大道", "450103"),
        (dict(street="内蒙古呼和浩特市新城区"), "内蒙古自治区", "呼和浩特市", "新城区", None, "150102"),
        (dict(street="延边延吉市"), "吉林省", "延边朝鲜族自治州", "延吉市", None, "222401"),
        (dict(street="苏州昆山市玉山镇"), "江苏省", "苏州市", "昆山市", "玉山镇", "320583"),
        (dict(street="Xinjiekou 1", city="Nanjing", region="Jiangsu"), "江苏省", "南京市", None, "Xinjiekou 1",
         "320100"),
        (dict(street="世纪大道100号", city="Shanghai"), "上海市", "上海市", None, "世纪大道100号", "310000"),
    ],
)
def test_cn_divisions(kwargs, region, city, district, street, adcode):
    a = standardise_address(**kwargs)
    assert (a.region, a.city, a.district, a.street, a.adcode, a.country) == (
        region, city, district, street, adcode, "CN")


def test_cn_equivalent_forms_share_key():
    forms = ["江苏省南京市鼓楼区中山路1号", "江苏南京鼓楼区中山路１號", "南京市鼓楼区中山路1号", "中国 江苏省 南京市 鼓楼区 中山路1号"]
    keys = {standardise_address(street=f).key for f in forms}
    assert keys == {"CN|320106|中山路1号"}


def test_cn_street_not_mistaken_for_city():
    # 中山 is also a prefecture city (中山市); after 南京市 it must stay part of the street.
    a = standardise_address(street="南京市中山路1号")
    assert a.city == "南京市" and a.street == "中山路1号"
    # a bare street without any division is not turned into a city
    a = standardise_address(street="中山路1号")
    assert a.city is None and a.street == "中山路1号" and "address.division_unknown" in a.flags


def test_cn_ambiguous_district_flagged():
    a = standardise_address(street="鼓楼区中山路")
    assert "address.ambiguous_division" in a.flags and a.district == "鼓楼区"


def test_cn_postcode_in_front():
    a = standardise_address(street="210008 江苏省南京市鼓楼区中山路1号")
    assert a.postal_code == "210008" and a.district == "鼓楼区"
    assert "postal_code.invalid" in standardise_address(street="南京", postal_code="12").flags


def test_division_table_covers_all_provinces_and_prefectures():
    codes = [line.split()[0] for line in DIVISIONS.strip().splitlines()]
    provinces = {c for c in codes if c.endswith("0000")}
    prefectures = {c for c in codes if c.endswith("00") and not c.endswith("0000")}
    assert len(provinces) >= 31 and len(prefectures) >= 330
    assert len(codes) > 3000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("123 North Main Street", "123 N Main St"), ("5th Avenue", "5th Ave"), ("1 Station Road, Apartment 4",
      "1 Station Rd, Apt 4"), ("Hauptstraße 5", "Hauptstr. 5"), ("Hauptstrasse 5", "Hauptstr. 5"),
     ("10 Sunset Boulevard", "10 Sunset Blvd")],
)
def test_street_abbreviations(raw, expected):
    assert standardise_street(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [("94105", "US", "94105"), ("941051234", "US", "94105-1234"), ("94105-1234", "US", "94105-1234"),
     ("sw1a1aa", "GB", "SW1A 1AA"), ("EC1A 1BB", "GB", "EC1A 1BB"), ("M1 1AE", "GB", "M1 1AE"),
     ("10115", "DE", "10115"), ("D-10115", "DE", "10115"), ("210008", "CN", "210008"), ("k1a0b1", "CA", "K1A 0B1"),
     ("1000001", "JP", "100-0001")],
)
def test_postcodes(raw, country, expected):
    assert standardise_postal_code(raw, country) == (expected, ())


@pytest.mark.parametrize(("raw", "country"), [("1234", "US"), ("ABCDE", "DE"), ("2100", "CN"), ("12345", "GB")])
def test_postcode_invalid(raw, country):
    assert standardise_postal_code(raw, country) == (None, ("postal_code.invalid",))


@pytest.mark.parametrize(
    ("raw", "iso"),
    [("中国", "CN"), ("China", "CN"), ("PRC", "CN"), ("P.R. China", "CN"), ("CN", "CN"), ("CHN", "CN"),
     ("中华人民共和国", "CN"), ("Deutschland", "DE"), ("Germany", "DE"), ("DEU", "DE"), ("USA", "US"),
     ("U.S.A.", "US"), ("United States", "US"), ("美国", "US"), ("UK", "GB"), ("United Kingdom", "GB"),
     ("香港", "HK"), ("台灣", "TW"), ("Japan", "JP"), ("South Korea", "KR"), ("france", "FR"), ("Narnia", None)],
)
def test_country(raw, iso):
    assert country_code(raw) == iso


def test_western_address():
    a = standardise_address(street="123 North Main Street, Apt. 4", city="SAN FRANCISCO", region="California",
                            postal_code="941051234", country="USA")
    assert (a.street, a.city, a.region, a.postal_code, a.country) == (
        "123 N Main St, Apt 4", "San Francisco", "CA", "94105-1234", "US")
    b = standardise_address(street="123 N. Main St., Apartment 4", city="San Francisco", region="CA",
                            postal_code="94105-1234", country="United States")
    assert a.key == b.key
    de = standardise_address(street="Hauptstraße 5", city="Berlin", postal_code="D-10115", country="Deutschland")
    assert (de.street, de.postal_code, de.country) == ("Hauptstr. 5", "10115", "DE")


def test_country_defaults():
    a = standardise_address(street="10 Downing Street", city="London", postal_code="SW1A 2AA", default_country="GB")
    assert a.country == "GB" and "country.defaulted" in a.flags
    assert standardise_address().flags == ("address.missing",)
    assert "country.unknown" in standardise_address(street="x", country="Narnia").flags


@pytest.mark.parametrize(
    ("a", "b"),
    [("南京市鼓楼区中山路一号", "南京市鼓楼区中山路1号"), ("北京市朝阳区建国路八十八号", "北京市朝阳区建国路88号"),
     ("上海市浦东新区世纪大道一百号二栋五零一室", "上海市浦东新区世纪大道100号2栋501室")],
)
def test_cn_house_numbers_in_chinese_numerals_share_key(a, b):
    assert standardise_address(street=a).key == standardise_address(street=b).key


def test_cn_place_names_with_numerals_untouched():
    assert standardise_address(street="北京市朝阳区三里屯路").key == "CN|110105|三里屯路"


def _division_triples() -> list[tuple[str, str, str, str]]:
    names = dict(line.split(" ", 1) for line in DIVISIONS.strip().splitlines())
    out = []
    for code, name in names.items():
        if code.endswith("00") or code[:2] in ("71", "81", "82"):
            continue
        prov = names.get(code[:2] + "0000")
        city = names.get(code[:4] + "00")
        if prov and city:
            out.append((code, prov, city, name))
    return out


_TRIPLES = _division_triples()


def test_every_county_with_a_prefecture_is_recognised_in_full_form():
    # Every district/county written in full after its province and city must resolve to its own code.
    misses = [(code, p + c + d) for code, p, c, d in _TRIPLES
              if standardise_address(street=f"{p}{c}{d}中山路1号").adcode != code]
    assert len(_TRIPLES) > 2500
    assert misses == []


def test_split_fields_equal_single_line():
    for code, p, c, d in _TRIPLES[::7]:
        one = standardise_address(street=f"{p}{c}{d}人民路8号")
        split = standardise_address(street=f"{d}人民路8号", city=c, region=p)
        assert one.key == split.key == f"CN|{code}|人民路8号"


def test_every_county_is_recognised_after_abbreviated_province_and_city():
    # 江苏南京鼓楼区, 河北唐山路南区 (路南区 is a district, not 唐山路), 山东济南市中区 (济南 + 市中区)
    from hub.standardise.addresses import _short_forms

    misses = []
    for code, p, c, d in _TRIPLES:
        ps = min(_short_forms(p, 0) or {p}, key=len)
        cs = min(_short_forms(c, 1) or {c}, key=len)
        a = standardise_address(street=f"{ps}{cs}{d}中山路1号")
        if (a.adcode, a.street) != (code, "中山路1号"):
            misses.append((code, ps + cs + d))
    assert misses == []


def test_street_named_after_a_city_stays_a_street():
    for line in ("南京路100号", "中山大道1号", "唐山路5号"):
        a = standardise_address(street=line)
        assert a.street == line and a.adcode is None
    a = standardise_address(street="广州中山大道1号")
    assert (a.city, a.street) == ("广州市", "中山大道1号")


@pytest.mark.parametrize(
    ("kwargs", "a_b_same"),
    [
        ((dict(street="1 Market Street", city="San Francisco, CA 94105", country="US"),
          dict(street="1 Market St.", city="San Francisco", region="California", postal_code="94105", country="USA")),
         True),
        ((dict(street="10 Downing Street, London SW1A 2AA", country="GB"),
          dict(street="10 Downing St", city="London", postal_code="sw1a2aa", country="UK")), True),
        ((dict(street="Hauptstraße 5", city="10115 Berlin", country="DE"),
          dict(street="Hauptstr. 5", city="Berlin", postal_code="D-10115", country="Deutschland")), True),
    ],
)
def test_postcode_and_state_written_into_other_fields(kwargs, a_b_same):
    a, b = (standardise_address(**k) for k in kwargs)
    assert (a.key == b.key) is a_b_same
    assert (a.city, a.region, a.postal_code) == (b.city, b.region, b.postal_code)


def test_city_that_ends_like_a_state_code_is_kept():
    a = standardise_address(street="1 Main", city="Salt Lake City", country="US")
    assert (a.city, a.region) == ("Salt Lake City", None)


def test_a_street_named_after_a_city_is_not_that_city() -> None:
    # 南京东路 is a street of Shanghai; with no city written, the address has no known division (not Nanjing)
    for street in ("南京东路17号", "北京西路5号", "重庆南路8号"):
        a = standardise_address(street, country="CN")
        assert a.street == street and a.city is None, a
    a = standardise_address("南京东路17号", city="上海", country="CN")
    assert (a.city, a.street) == ("上海市", "南京东路17号")
    # a city written before its district still reads as the city
    a = standardise_address("北京东城区东直门南大街5号", country="CN")
    assert (a.city, a.district, a.street) == ("北京市", "东城区", "东直门南大街5号")
