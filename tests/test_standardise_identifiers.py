"""Identifiers: GB 11643 resident ID, US SSN, GB 32100 unified social credit code."""

import datetime as dt

import pytest

from hub.standardise import validate_cn_resident_id, validate_ssn, validate_uscc
from hub.standardise.identifiers import cn_id_check_char, uscc_check_char


@pytest.mark.parametrize(
    ("raw", "value", "birth", "gender"),
    [
        ("11010519491231002X", "11010519491231002X", dt.date(1949, 12, 31), "F"),   # GB 11643 example
        ("11010519491231002x", "11010519491231002X", dt.date(1949, 12, 31), "F"),
        ("110105 1949 1231 002X", "11010519491231002X", dt.date(1949, 12, 31), "F"),
        ("１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", dt.date(1949, 12, 31), "F"),
        ("440524188001010014", "440524188001010014", None, "M"),   # valid checksum but born 1880
    ],
)
def test_cn_id_values(raw, value, birth, gender):
    r = validate_cn_resident_id(raw)
    assert (r.value, r.birth_date, r.gender) == (value, birth, gender)


def test_cn_id_valid_and_generated():
    for body in ("32010619850307123", "31011519900101001", "44030519770615456"):
        r = validate_cn_resident_id(body + cn_id_check_char(body))
        assert r.valid and r.flags == ()
    r = validate_cn_resident_id("320106198503071231"[:17] + cn_id_check_char("32010619850307123"))
    assert r.birth_date == dt.date(1985, 3, 7) and r.gender == "M" and r.region_code == "320106"


@pytest.mark.parametrize(
    ("raw", "flag"),
    [
        ("110105194912310021", "national_id.checksum"),
        ("11010519491331002X", "national_id.birth_date"),
        ("abc", "national_id.format"),
        ("1101051949123100", "national_id.format"),
        ("99010519491231002" + cn_id_check_char("99010519491231002"), "national_id.region"),
        (None, "national_id.missing"),
    ],
)
def test_cn_id_invalid(raw, flag):
    r = validate_cn_resident_id(raw)
    assert not r.valid and flag in r.flags


def test_cn_id_future_birth_and_legacy15():
    body = "11010520300101001"
    assert "national_id.birth_date" in validate_cn_resident_id(body + cn_id_check_char(body),
                                                               today=dt.date(2026, 1, 1)).flags
    r = validate_cn_resident_id("110105491231002")
    assert r.valid and r.value == "11010519491231002X" and "national_id.legacy15" in r.flags


@pytest.mark.parametrize(
    ("raw", "value", "valid"),
    [("536-90-4399", "536-90-4399", True), ("536904399", "536-90-4399", True), ("536 90 4399", "536-90-4399", True),
     ("000-12-3456", "000-12-3456", False), ("666-12-3456", "666-12-3456", False),
     ("912-12-3456", "912-12-3456", False), ("536-00-4399", "536-00-4399", False),
     ("536-90-0000", "536-90-0000", False), ("078-05-1120", "078-05-1120", False), ("12-345-6789", None, False)],
)
def test_ssn(raw, value, valid):
    r = validate_ssn(raw)
    assert (r.value, r.valid) == (value, valid)


@pytest.mark.parametrize("raw", ["914403001922038216", "91110000802100433B", "91350100M000100Y43",
                                 "9144 0300 1922 0382 16", "914403001922038216".lower()])
def test_uscc_valid(raw):
    r = validate_uscc(raw)
    assert r.valid and "uscc.checksum" not in r.flags and len(r.value) == 18


def test_uscc_fields_and_invalid():
    r = validate_uscc("914403001922038216")
    assert (r.region_code, r.org_code) == ("440300", "192203821")
    assert "uscc.checksum" in validate_uscc("914403001922038217").flags
    assert "uscc.format" in validate_uscc("91440300MA5FX").flags
    assert "uscc.format" in validate_uscc("9144030019220382IO").flags   # I and O are not in the alphabet
    assert uscc_check_char("91440300192203821") == "6"


@pytest.mark.parametrize(("raw", "value", "valid"), [("A123456(3)", "A1234563", True), ("a 123456 (3)", "A1234563", True),
                                                     ("G123456(A)", "G123456A", True), ("A123456(4)", "A1234564", False),
                                                     ("123456(3)", None, False)])
def test_hk_id(raw, value, valid):
    from hub.standardise import validate_hk_id

    r = validate_hk_id(raw)
    assert (r.value, r.valid) == (value, valid)


@pytest.mark.parametrize(("raw", "valid", "gender"), [("A123456789", True, "M"), ("a223456781", True, "F"),
                                                      ("A123456788", False, "M"), ("A323456789", False, None)])
def test_tw_id(raw, valid, gender):
    from hub.standardise import validate_tw_id

    r = validate_tw_id(raw)
    assert (r.valid, r.gender) == (valid, gender)
