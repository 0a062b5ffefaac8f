"""Dates in the shapes customer systems produce."""

import datetime as dt

import pytest

from hub.standardise import standardise_birth_date, standardise_date

D = dt.date(1985, 3, 7)


@pytest.mark.parametrize(
    "raw",
    ["1985-03-07", "1985/3/7", "19850307", "1985年3月7日", "1985年03月07日", "1985.03.07", "1985-3-7",
     "7 Mar 1985", "March 7, 1985", "7th March 1985", "Thu, 07 Mar 1985 10:00:00 +0800",
     "1985-03-07T10:00:00Z", "1985-03-07 10:22:33", "1985-03-07T23:30:00-05:00", "１９８５－０３－０７",
     "1985年3月7号", 19850307, dt.date(1985, 3, 7), dt.datetime(1985, 3, 7, 12, 0)],
)
def test_date_shapes(raw):
    assert standardise_date(raw) == (D, ())


@pytest.mark.parametrize(
    ("raw", "dayfirst", "expected"),
    [
        ("07/03/1985", True, dt.date(1985, 3, 7)),
        ("07/03/1985", False, dt.date(1985, 7, 3)),
        ("7.3.1985", True, dt.date(1985, 3, 7)),
        ("25/12/1985", False, dt.date(1985, 12, 25)),   # unambiguous whatever the locale says
        ("12/25/1985", True, dt.date(1985, 12, 25)),
        ("03-07-1985 08:00", False, dt.date(1985, 3, 7)),
    ],
)
def test_dayfirst(raw, dayfirst, expected):
    assert standardise_date(raw, dayfirst=dayfirst).value == expected


@pytest.mark.parametrize("raw", ["1985-02-30", "1985-13-01", "31/31/1985", "1850-01-01", "2201-01-01", "19850230"])
def test_impossible(raw):
    p = standardise_date(raw)
    assert p.value is None and "date.impossible" in p.flags


def test_birth_date_future_is_impossible():
    today = dt.date(2026, 1, 1)
    p = standardise_birth_date("2030-05-01", today=today)
    assert p.value is None and "date.impossible" in p.flags
    assert standardise_date("2030-05-01").value == dt.date(2030, 5, 1)  # an order date may be ahead
    assert standardise_birth_date("1899-12-31").flags == ("date.impossible",)


@pytest.mark.parametrize("raw", ["junk", "不详", "N/A", "March 1985", "1985", "12"])
def test_unparseable(raw):
    p = standardise_date(raw)
    assert p.value is None and "date.unparseable" in p.flags


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_missing(raw):
    assert standardise_date(raw).flags == ("date.missing",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("一九八五年三月七日", D), ("二〇〇一年十二月三十一日", dt.date(2001, 12, 31)), ("一九八五年十月十日", dt.date(1985, 10, 10)),
     ("85年3月7日", D), ("05年1月2日", dt.date(2005, 1, 2)), ("Thursday, March 7, 1985", D), ("07-Mar-1985", D),
     ("1985/03/07 12:00:00 AM", D), ("1985-03-07 00:00:00.000", D)],
)
def test_more_shapes(raw, expected):
    assert standardise_date(raw).value == expected


@pytest.mark.parametrize("raw", ["0000-00-00", "0000-00-00 00:00:00"])
def test_zero_dates_are_flagged(raw):
    assert standardise_date(raw).flags == ("date.impossible", "date.zero")


def test_chinese_numeral_impossible():
    assert standardise_date("一九八五年二月三十日").flags == ("date.impossible",)
    assert standardise_date("一九八五年十十月一日").value is None
