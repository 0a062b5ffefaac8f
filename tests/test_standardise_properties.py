"""Property tests: no standardiser ever raises, whatever it is given, and results are well-formed."""

import datetime as dt

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.standardise import (
    standardise_address,
    standardise_company,
    standardise_date,
    standardise_email,
    standardise_person_name,
    standardise_phone,
    text_key,
    validate_cn_resident_id,
    validate_hk_id,
    validate_ssn,
    validate_tw_id,
    validate_uscc,
)

# Arbitrary Unicode (including surrogates and control characters), plus shapes close to real values so
# the deeper code paths get exercised too.
_any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=80)
_cjk = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=6)
_near = st.one_of(
    _any_text,
    _cjk,
    st.from_regex(r"\+?[0-9０-９ ()\-]{0,20}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9.+]{0,10}@[a-z0-9.\-]{0,10}", fullmatch=True),
    st.from_regex(r"[0-9]{1,4}[-/.年 ][0-9]{1,2}[-/.月 ][0-9]{1,4}日?", fullmatch=True),
    st.from_regex(r"[0-9Xx]{15,18}", fullmatch=True),
    st.builds(lambda a, b: a + b, _cjk, _any_text),
)
_value = st.one_of(st.none(), _near, st.integers(), st.floats(), st.binary(max_size=20), st.booleans())
_cfg = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_cfg
@given(_value, st.sampled_from(["CN", "US", "GB", "DE", None, "XX", ""]))
def test_phone_never_raises(v, region):
    p = standardise_phone(v, region)
    assert "standardise.error" not in p.flags  # the defensive except branch must stay unused
    assert (p.e164 is None) == bool({"phone.invalid", "phone.missing", "phone.placeholder"} & set(p.flags))
    if p.e164:
        assert p.e164.startswith("+") and p.e164[1:].isdigit()


@_cfg
@given(_value)
def test_email_never_raises(v):
    e = standardise_email(v)
    assert "standardise.error" not in e.flags
    assert (e.address is None) == (e.key is None)
    if e.address:
        assert e.address == e.address.lower() and "@" in e.key


@_cfg
@given(_value, st.booleans(), st.booleans())
def test_date_never_raises(v, dayfirst, birth):
    d = standardise_date(v, dayfirst=dayfirst, birth=birth)
    assert "standardise.error" not in d.flags
    assert (d.value is None) == bool(d.flags)
    if d.value is not None:
        assert isinstance(d.value, dt.date) and 1900 <= d.value.year <= 2100


@_cfg
@given(_value, _value, _value)
def test_names_never_raise(full, given_, family):
    n = standardise_person_name(full, given_, family)
    assert isinstance(n.flags, tuple) and "standardise.error" not in n.flags
    if n.name_key is not None:
        assert n.name_key == n.name_key.strip() and "  " not in n.name_key
    for field in (n.family_pinyin, n.given_pinyin):
        assert field is None or (field.isascii() and field == field.lower())
    c = standardise_company(full)
    assert "standardise.error" not in c.flags
    assert (c.name is None) == bool({"company.missing", "company.unparseable"} & set(c.flags))


@_cfg
@given(_value, _value, _value, _value, _value, st.sampled_from(["CN", "US", "DE", "GB", None, "??"]))
def test_address_never_raises(street, city, region, postal, country, default):
    a = standardise_address(street, city, region, postal, country, default)
    assert isinstance(a.flags, tuple) and "standardise.error" not in a.flags


@_cfg
@given(_value)
def test_identifiers_never_raise(v):
    r = validate_cn_resident_id(v)
    for res in (r, validate_ssn(v), validate_uscc(v), validate_hk_id(v), validate_tw_id(v)):
        assert "standardise.error" not in res.flags
    assert r.valid is False or (r.value and len(r.value) == 18)
    assert validate_ssn(v).valid in (True, False)
    assert validate_uscc(v).valid in (True, False)
    assert validate_hk_id(v).valid in (True, False) and validate_tw_id(v).valid in (True, False)


@_cfg
@given(_any_text)
def test_text_key_idempotent(s):
    assert text_key(text_key(s)) == text_key(s)


def test_lone_surrogates_are_dropped():
    n = standardise_person_name("\ud800陈伟\udfff")
    assert n.name_key == "chen wei"
    n.display.encode("utf-8")  # must be storable


def test_huge_inputs():
    big = "陈" * 1_000_000
    assert standardise_person_name(big).flags == ("name.unparseable",)
    assert standardise_phone(big).e164 is None
    assert standardise_email(big).key is None
    assert standardise_date(big).value is None
    assert "address.division_unknown" in standardise_address(street=big).flags
    assert standardise_company(big).name is None
    assert not validate_cn_resident_id(big).valid


# --- fast paths must agree with the libraries they shortcut ------------------------------------------

@settings(max_examples=2000, deadline=None)
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", "+86 ", "0086", "86"]))
def test_cn_mobile_fast_path_matches_libphonenumber(nsn, prefix):
    import phonenumbers

    p = standardise_phone(prefix + nsn, "CN")
    num = phonenumbers.parse(nsn, "CN")
    if "phone.placeholder" in p.flags:  # 13000000000: valid in the numbering plan, a dummy in a customer file
        assert p.e164 is None and nsn[-7:] == "0000000"
    elif phonenumbers.is_valid_number(num):
        assert p.e164 == phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
        from hub.standardise.phones import _KIND

        assert p.kind == _KIND.get(phonenumbers.number_type(num), "other")
    else:
        assert p.e164 is None


@_cfg
@given(st.from_regex(r"[a-zA-Z0-9._%+\-]{1,20}@[a-zA-Z0-9.\-]{1,20}\.[a-zA-Z]{1,6}", fullmatch=True))
def test_email_fast_path_matches_email_validator(raw):
    from email_validator import EmailNotValidError, validate_email

    e = standardise_email(raw)
    try:
        v = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        assert e.address is None
    else:
        from hub.standardise.placeholders import email_placeholder

        address = f"{v.local_part}@{v.domain}".lower()
        if email_placeholder(address) == "email.placeholder":  # '-@0.a', 'x@…': no address
            assert e.address is None and e.flags == ("email.placeholder",)
        else:
            assert e.address == address


def _libphonenumber_valid(raw: str, region: str) -> bool:
    import phonenumbers

    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(raw, region))
    except phonenumbers.NumberParseException:
        return False


@settings(max_examples=1500, deadline=None)
@given(st.from_regex(r"\+?[0-9]{5,14}", fullmatch=True), st.sampled_from(["CN", "US", "DE", "GB", "HK"]))
@example("0012012000000", "US")  # 00 written as the international prefix from a North-American source
def test_phone_validity_matches_is_valid_number(raw, region):
    from hub.standardise.phones import _00_REGIONS_SKIP

    p = standardise_phone(raw, region)
    expected = _libphonenumber_valid(raw, region)
    if not expected and raw.startswith("00") and region not in _00_REGIONS_SKIP:
        # documented fallback: "00" is read as the international prefix whatever the source's region
        expected = _libphonenumber_valid("+" + raw[2:], region)
    assert (p.e164 is not None) == expected


# --- name_key is the same whatever the script and order -----------------------------------------------

_S2T = __import__("opencc").OpenCC("s2t")
_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林",
             "欧阳", "司马", "诸葛", "上官", "单", "曾", "区", "解", "仇", "翟", "覃", "查"]
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌宇浩凯健俊帆帅旭宁龙林欣晨雪婷琳"


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_SURNAMES), st.text(alphabet=_GIVEN, min_size=1, max_size=2), st.integers(0, 4))
def test_name_key_order_and_script_invariant(family, given_, form):
    from hub.standardise import pinyin, surname_pinyin, to_simplified

    han = standardise_person_name(family + given_)
    assert (han.family, han.given) == (family, given_)
    fp, gp = surname_pinyin(family), pinyin(given_)
    written = [f"{gp.capitalize()} {fp.upper()}", f"{fp.upper()} {gp.capitalize()}", f"{fp.capitalize()}, {gp.capitalize()}",
               f"{gp} {fp}", f"{fp} {gp}"][form]
    rom = standardise_person_name(written)
    assert rom.name_key == han.name_key == " ".join(sorted((fp, gp)))
    # traditional script gives the same key (when the s2t → t2s round trip is lossless for these chars)
    trad = _S2T.convert(family + given_)
    if to_simplified(trad) == family + given_:
        assert standardise_person_name(trad).name_key == han.name_key
