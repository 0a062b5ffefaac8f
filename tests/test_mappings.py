"""Mapping declarations: load-time validation, path language, and canonical values from payloads shaped
exactly like the sources' documented records (api_shapes.md §1.2, §2.1, §3.1; tryton.md §5)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from hub.connectors.cdr import parse_cdr_line
from hub.connectors.tryton import _nest
from hub.mappings import SHIPPED_KINDS, MappingError, load_mapping, load_mappings, parse_mapping
from hub.mappings.paths import PathError, check_shape, compile_path, parse_path
from hub.models import CustomerRecord, Interaction, Order, Shipment

MAPPINGS = Path(__file__).parent.parent / "hub" / "mappings"


@pytest.fixture(scope="module")
def mappings():
    return load_mappings()


def _decl(kind: str) -> dict:
    return yaml.safe_load((MAPPINGS / f"{kind}.yaml").read_text(encoding="utf-8"))


def _map_one(mapper, entity: str, source: str, source_id: str, payload: dict, **ctx):
    outcome = mapper.map(entity, source_id, payload, mapper.context(source, ctx))
    return outcome


# -- loading and validation --------------------------------------------------------------------------------------


def test_every_shipped_mapping_loads(mappings) -> None:
    assert set(mappings) == set(SHIPPED_KINDS)
    assert mappings["wechat"].entities == ("followers", "messages")
    assert [t.entity for t in mappings["wechat"].targets["followers"]] == ["customers", "interactions"]
    assert [t.entity for t in mappings["asterisk_cdr"].targets["calls"]] == ["interactions"]


def test_typo_in_field_path_fails_at_load_naming_kind_entity_and_field() -> None:
    decl = _decl("woocommerce")
    decl["entities"]["customers"]["records"][0]["fields"]["phones"] = "billing.phnoe"
    with pytest.raises(MappingError) as exc:
        parse_mapping(decl)
    msg = str(exc.value)
    assert "'woocommerce'" in msg and "'customers'" in msg and "'phones'" in msg
    assert "phnoe" in msg and "phone" in msg  # names the bad key and lists the ones that exist


def test_typo_in_a_role_path_and_in_a_filter_key_fail_at_load() -> None:
    decl = _decl("sql_erp_sandbox")
    decl["entities"]["customers"]["records"][0]["fields"]["emails"] = "contact_mechanisms[typ=email].value"
    with pytest.raises(MappingError, match=r"sql_erp_sandbox.*customers.*'emails'.*typ"):
        parse_mapping(decl)
    decl = _decl("tryton")
    decl["entities"]["shipments"]["records"][0]["fields"]["delivery_address"]["from"]["city"] = (
        "delivery_address.cty")
    with pytest.raises(MappingError, match=r"tryton.*shipments.*'delivery_address'.*role 'city'.*cty"):
        parse_mapping(decl)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda f: f.update({"emial": "email"}), r"'emial'.*unknown canonical field"),
        (lambda f: f.update({"emails": {"from": "email", "standardise": "emailz"}}), r"unknown standardiser 'emailz'"),
        (lambda f: f.update({"emails": "billing..email"}), r"'emails'.*unexpected '\.'"),
        (lambda f: f.update({"emails": "billing[type=].email"}), r"'emails'.*malformed"),
        (lambda f: f.update({"phones": {"from": "billing.phone", "standardise": "phone"}}),
         r"'phones'.*list.*one value"),
        (lambda f: f.update({"name": {"from": {"first": "first_name"}}}), r"'name'.*no role"),
        (lambda f: f.update({"full_name": "first_name"}), r"'full_name'.*filled by the standardiser person_name"),
        (lambda f: f.update({"source_id": "id"}), r"'source_id'.*staging engine"),
        (lambda f: f.update({"gender": {"from": "billing.gender_x"}}), r"'gender'.*gender_x"),
        (lambda f: f.update({"phones": {"from": "billing.phone", "regoin": "CN"}}), r"'phones'.*regoin"),
        (lambda f: f["addresses"][0].update({"kind": "invoice"}), r"'addresses'.*address kind 'invoice'"),
        (lambda f: f.update({"gender": {"standardise": "map", "from": "email", "values": {"m": "man"}}}),
         r"'gender'.*'man'"),
    ],
)
def test_broken_declarations_fail_at_load(mutate, pattern: str) -> None:
    decl = _decl("woocommerce")
    mutate(decl["entities"]["customers"]["records"][0]["fields"])
    with pytest.raises(MappingError, match=pattern):
        parse_mapping(decl)


def test_unmapped_required_model_field_and_bad_constant_fail() -> None:
    decl = _decl("asterisk_cdr")
    fields = decl["entities"]["calls"]["records"][0]["fields"]
    del fields["kind"]
    with pytest.raises(MappingError, match=r"asterisk_cdr.*calls.*'kind' has no default"):
        parse_mapping(decl)
    fields["kind"] = {"const": "phone_call"}
    with pytest.raises(MappingError, match=r"'kind'.*constant 'phone_call'"):
        parse_mapping(decl)


def test_required_rule_must_be_known_and_mapped() -> None:
    decl = _decl("woocommerce")
    decl["entities"]["customers"]["records"][0]["required"] = ["name", "contakt"]
    with pytest.raises(MappingError, match=r"'contakt'.*unknown field or rule"):
        parse_mapping(decl)


def test_sample_is_required_and_file_name_must_match_kind(tmp_path: Path) -> None:
    decl = _decl("wechat")
    del decl["entities"]["followers"]["sample"]
    with pytest.raises(MappingError, match=r"wechat.*sample"):
        parse_mapping(decl)
    p = tmp_path / "other.yaml"
    p.write_text(yaml.safe_dump(_decl("wechat"), allow_unicode=True), encoding="utf-8")
    assert load_mapping(p).kind == "wechat"  # explicit paths may be named freely
    with pytest.raises(MappingError, match="no declaration"):
        load_mapping("no_such_kind")


def test_a_new_source_is_a_small_declaration() -> None:
    """Adding a source is YAML, not pipeline code: a minimal CRM export mapping."""
    decl = {
        "kind": "crm_csv",
        "phone_region": "DE",
        "dayfirst": True,
        "entities": {
            "contacts": {
                "sample": {"Id": "C1", "Name": "Müller, Hans", "Tel": "030 1234567", "Geburtstag": "07.03.1985"},
                "records": [{"entity": "customers", "required": ["name"], "fields": {
                    "name": {"from": {"full": "Name"}}, "phones": "Tel", "birth_date": "Geburtstag"}}],
            }
        },
    }
    m = parse_mapping(decl)
    out = m.map("contacts", "C1", {"Name": "Müller, Hans", "Tel": "030 1234567", "Geburtstag": "07.03.1985"},
                m.context("crm"))
    rec = out.records[0].record
    assert rec["family_name"] == "Müller" and rec["given_name"] == "Hans"
    assert rec["phones"][0]["e164"] == "+49301234567"
    assert rec["birth_date"] == "1985-03-07"  # dayfirst from the declaration


# -- the path language -----------------------------------------------------------------------------------------


def test_paths_nested_lists_filters_conditions_and_alternatives() -> None:
    p = {
        "billing": {"first_name": "Wei", "phone": " "},
        "contact_mechanisms": [
            {"type": "email", "value": "a@x.cn"},
            {"type": "mobile", "value": "138"},
            {"type": "phone", "value": "021"},
        ],
        "addresses.": [{"city": "Nanjing"}, {"city": ""}],
        "dcontext": "from-internal",
        "dst": "139",
        "src": "2001",
    }
    assert compile_path("billing.first_name")(p) == ["Wei"]
    assert compile_path("billing.phone")(p) == []  # blank = absent
    assert compile_path("contact_mechanisms[type=email].value")(p) == ["a@x.cn"]
    assert compile_path("contact_mechanisms[type=phone|mobile].value")(p) == ["138", "021"]
    assert compile_path("contact_mechanisms[].type")(p) == ["email", "mobile", "phone"]
    assert compile_path("contact_mechanisms[1].value")(p) == ["138"]
    assert compile_path("['addresses.'][].city")(p) == ["Nanjing"]
    assert compile_path("[dcontext=from-internal].dst | src")(p) == ["139", "2001"]
    assert compile_path("[dcontext=from-trunk].dst | src")(p) == ["2001"]
    assert compile_path("billing.phone | billing.first_name", first=True)(p) == ["Wei"]


@pytest.mark.parametrize("bad", ["", "a..b", "a.", ".a", "a b", "[]x", "a[type=]", "a[=x]", "a[x", "a]"])
def test_malformed_paths_are_rejected(bad: str) -> None:
    with pytest.raises(PathError):
        parse_path(bad)


def test_shape_check_names_the_missing_key() -> None:
    sample = {"billing": {"first_name": "x"}, "meta_data": [{"id": 1, "key": "k", "value": "v"}]}
    check_shape("billing.first_name | meta_data[key=birthday].value", [sample])
    with pytest.raises(PathError, match=r"unknown field 'frist_name' at 'billing'.*first_name"):
        check_shape("billing.frist_name", [sample])
    with pytest.raises(PathError, match=r"filter key 'kee'"):
        check_shape("meta_data[kee=x].value", [sample])
    with pytest.raises(PathError, match=r"not a list"):
        check_shape("billing[].x", [sample])


def test_paths_never_raise_on_junk() -> None:
    g = compile_path("a.b[t=x].c | a[0].c | [k=v].z")
    for junk in (None, 1, "s", [], {}, {"a": 5}, {"a": [None, 1, "x", {"c": 1}]}, {"a": {"b": [1, [2], {"t": None}]}},
                 {"k": ["v"]}, {"a": {"b": {"t": "x", "c": 3}}}):
        assert isinstance(g(junk), list)


# -- canonical values from documented payloads -------------------------------------------------------------------

WOO_CUSTOMER = _decl("woocommerce")["entities"]["customers"]["sample"]


def test_woocommerce_documented_customer(mappings) -> None:
    out = _map_one(mappings["woocommerce"], "customers", "webshop", "25", WOO_CUSTOMER)
    assert out.reasons == []
    (rec,) = out.records
    r = CustomerRecord.model_validate(rec.record)
    assert (r.source, r.source_id, rec.entity, rec.customer_key) == ("webshop", "25", "customers", None)
    assert r.given_name == "John" and r.family_name == "Doe" and r.name.name_key == "doe john"
    assert r.emails == ["john.doe@example.com"]
    # (555) numbers are fictional in the US: read with the record's billing country, not the shop's CN default
    assert r.phones == [] and "phones:phone.invalid" in rec.quality_flags
    assert {a.kind for a in r.addresses} == {"billing", "shipping"}
    assert r.addresses[0].country == "US" and r.addresses[0].postal_code == "94103"
    assert r.birth_date.isoformat() == "1985-03-07"  # from the meta_data item
    assert r.source_created_at.isoformat() == "2017-03-21T19:09:28"  # the _gmt twin wins
    assert r.external_ids == {"woocommerce_username": "john.doe"}


def test_woocommerce_chinese_customer_traditional_script_and_phone_formats(mappings) -> None:
    payload = copy.deepcopy(WOO_CUSTOMER)
    payload.update({"first_name": "偉", "last_name": "陳", "email": " Chen.Wei+shop@GoogleMail.com "})
    payload["billing"].update({"first_name": "偉", "last_name": "陳", "phone": "+86 138-0013-8000", "country": "CN",
                               "email": "CHEN.WEI+shop@googlemail.com",
                               "city": "南京市", "state": "江苏省", "postcode": "210008", "address_1": "鼓楼区中山路1号"})
    payload["meta_data"] = [{"id": 1, "key": "birthday", "value": "1985年3月7日"},
                            {"id": 2, "key": "gender", "value": "男"},
                            {"id": 3, "key": "marketing_consent", "value": "yes"}]
    out = _map_one(mappings["woocommerce"], "customers", "webshop", "26", payload)
    r = CustomerRecord.model_validate(out.records[0].record)
    assert r.name.family == "陈" and r.name.given == "伟" and r.name.name_key == "chen wei"
    assert r.name.han == "陈伟" and r.name.script == "han"
    assert r.phones[0].e164 == "+8613800138000" and r.phones[0].kind == "mobile"
    assert r.emails == ["chen.wei+shop@googlemail.com"] and r.email_keys == ["chenwei@gmail.com"]
    assert r.birth_date.isoformat() == "1985-03-07" and r.gender == "male" and r.consent.email is True
    billing = next(a for a in r.addresses if a.kind == "billing")
    assert billing.region == "江苏省" and billing.city == "南京市" and billing.country == "CN"


def test_woocommerce_province_codes_become_province_names(mappings) -> None:
    payload = copy.deepcopy(WOO_CUSTOMER)
    payload["billing"].update(country="CN", state="CN24", city="成都市", postcode="610041",
                              address_1="Room 2701, Building 16, No. 78 Tianhe Road")
    r = _map_one(mappings["woocommerce"], "customers", "webshop", "1", payload).records[0]
    billing = next(a for a in r.record["addresses"] if a["kind"] == "billing")
    assert (billing["region"], billing["city"], billing["country"]) == ("四川省", "成都市", "CN")
    assert not any(f.startswith("addresses:address.division") for f in r.quality_flags)


def test_woocommerce_documented_order(mappings) -> None:
    sample = _decl("woocommerce")["entities"]["orders"]["sample"]
    out = _map_one(mappings["woocommerce"], "orders", "webshop", "727", sample)
    rec, guest = out.records
    o = Order.model_validate(rec.record)
    # guest checkout (customer_id 0): the order owns a guest customer record built from its billing block
    assert o.customer_source_id == "guest-order-727" and rec.customer_key == "webshop:guest-order-727"
    g = CustomerRecord.model_validate(guest.record)
    assert (guest.entity, g.source_id, g.full_name, g.emails) == (
        "customers", "guest-order-727", "John Doe", ["john.doe@example.com"])
    assert o.status == "completed" and o.currency == "USD" and str(o.total) == "29.35"
    assert o.ordered_at.isoformat() == "2017-03-22T19:28:02"
    assert o.lines[0].description == "Woo Single #1" and o.lines[0].quantity == 2
    assert o.billing_email == "john.doe@example.com"
    owned = dict(sample, customer_id=25, status="on-hold")
    (rec,) = _map_one(mappings["woocommerce"], "orders", "webshop", "727", owned).records
    assert rec.customer_key == "webshop:25" and rec.record["status"] == "pending"
    # a guest without a usable name/contact: the order still stages, the optional guest record is skipped
    anonymous = copy.deepcopy(sample)
    anonymous["billing"].update(first_name="", last_name="", email="", phone="")
    anonymous["shipping"].update(first_name="", last_name="")
    out = _map_one(mappings["woocommerce"], "orders", "webshop", "727", anonymous)
    assert out.reasons == [] and [r.entity for r in out.records] == ["orders"]


WECHAT_BATCHGET = [
    {"subscribe": 1, "openid": "otvxTs4dckWG7imySrJd6jSi0CWE", "nickname": "iWithery", "sex": 1, "language": "zh_CN",
     "city": "Jieyang", "province": "Guangdong", "country": "China",
     "headimgurl": "http://wx.qlogo.cn/mmopen/x/0", "subscribe_time": 1434093047,
     "unionid": "oR5GjjgEhCMJFyzaVZdrxZ2zRRF4", "remark": "", "groupid": 0},
    {"subscribe": 0, "openid": "otvxTs_JZ6SEiP0imdhpi50fuSZg", "unionid": "oR5GjjjrbqBZbrnPwwmSxFukE41U"},
]


def test_wechat_follower_is_a_customer_and_a_social_follow(mappings) -> None:
    m = mappings["wechat"]
    out = _map_one(m, "followers", "social", WECHAT_BATCHGET[0]["openid"], WECHAT_BATCHGET[0])
    by = {r.entity: r for r in out.records}
    c = CustomerRecord.model_validate(by["customers"].record)
    assert c.gender == "male" and c.language == "zh-CN" and c.consent.social is True
    assert c.external_ids == {"wechat_openid": "otvxTs4dckWG7imySrJd6jSi0CWE",
                              "wechat_unionid": "oR5GjjgEhCMJFyzaVZdrxZ2zRRF4"}
    assert c.source_created_at.isoformat() == "2015-06-12T07:10:47"  # epoch seconds, UTC
    assert c.addresses and c.addresses[0].country == "CN"
    i = Interaction.model_validate(by["interactions"].record)
    assert i.kind == "social_follow" and i.customer_source_id == c.source_id
    assert by["interactions"].customer_key == "social:otvxTs4dckWG7imySrJd6jSi0CWE"
    # an unsubscribed user has only openid/unionid: still staged, consent withdrawn
    out = _map_one(m, "followers", "social", WECHAT_BATCHGET[1]["openid"], WECHAT_BATCHGET[1])
    by = {r.entity: r for r in out.records}
    assert by["customers"].record["consent"]["social"] is False
    assert by["interactions"].record["disposition"] == "unsubscribed"


def test_wechat_chat_records_are_messages_owned_by_the_follower(mappings) -> None:
    # wechatpy fixture customservice_msgrecord_getmsglist.json (api_shapes.md §2.1)
    records = [{"worker": " test1", "openid": "oDF3iY9WMaswOPWjCIp_f3Bnpljk", "opercode": 2002, "time": 1400563710,
                "text": " 您好，客服test1为您服务。"},
               {"worker": " test1", "openid": "oDF3iY9WMaswOPWjCIp_f3Bnpljk", "opercode": 2003, "time": 1400563731,
                "text": " 你好，有什么事情？ "}]
    out = [_map_one(mappings["wechat"], "messages", "social", f"m{i}", r).records[0] for i, r in enumerate(records)]
    msgs = [Interaction.model_validate(r.record) for r in out]
    assert [m.direction for m in msgs] == ["outbound", "inbound"]
    assert all(m.kind == "social_message" and m.channel == "test1" for m in msgs)
    assert {r.customer_key for r in out} == {"social:oDF3iY9WMaswOPWjCIp_f3Bnpljk"}
    assert msgs[1].occurred_at.isoformat() == "2014-05-20T05:28:51" and msgs[1].content.startswith("你好")


def test_wechat_remark_phone_is_read_from_free_text(mappings) -> None:
    payload = dict(WECHAT_BATCHGET[0], remark="陈伟 138 0013 8000", nickname="陳偉")
    out = _map_one(mappings["wechat"], "followers", "social", payload["openid"], payload)
    c = next(r for r in out.records if r.entity == "customers")
    assert [p["e164"] for p in c.record["phones"]] == ["+8613800138000"]
    assert c.record["name"]["name_key"] == "chen wei"
    quiet = dict(payload, remark="VIP 陈先生")
    c = next(r for r in _map_one(mappings["wechat"], "followers", "social", "x", quiet).records
             if r.entity == "customers")
    assert c.record["phones"] == [] and not any("phone" in f for f in c.quality_flags)


CDR_LINES = [
    '"","1001","2000","from-internal","""Alice Wang"" <1001>","PJSIP/1001-00000001","PJSIP/2000-00000002","Dial",'
    '"PJSIP/2000,30,tT","2024-05-06 10:15:02","2024-05-06 10:15:07","2024-05-06 10:17:40",158,153,"ANSWERED",'
    '"DOCUMENTATION","1714990502.1",""',
    '"","13800138000","s","from-trunk","""13800138000"" <13800138000>","PJSIP/trunk-00000003","","Hangup","",'
    '"2024-05-06 11:00:00",,"2024-05-06 11:00:12",12,0,"NO ANSWER","DOCUMENTATION","1714993200.3",""',
]


def test_cdr_rows_become_calls_keyed_by_e164(mappings) -> None:
    m = mappings["asterisk_cdr"]
    row = parse_cdr_line(CDR_LINES[1])
    (rec,) = _map_one(m, "calls", "callcenter", row["uniqueid"], row).records
    i = Interaction.model_validate(rec.record)
    assert i.kind == "call" and i.phone == "+8613800138000" and i.direction == "inbound"
    assert i.disposition == "NO ANSWER" and i.duration_s == 12 and i.billsec_s == 0
    assert i.occurred_at.isoformat() == "2024-05-06T11:00:00" and rec.customer_key is None
    # outbound to a customer: the customer is the called party
    row = dict(parse_cdr_line(CDR_LINES[0]), dst="0086 139 1234 5678")
    i = _map_one(m, "calls", "callcenter", "o1", row).records[0].record
    assert i["phone"] == "+8613912345678" and i["direction"] == "outbound" and i["channel"] == "1001"
    # international numbers a trunk delivers without '+'
    row = dict(parse_cdr_line(CDR_LINES[1]), src="4915132514728")
    assert _map_one(m, "calls", "callcenter", "x", row).records[0].record["phone"] == "+4915132514728"


def test_cdr_internal_anonymous_and_malformed_rows_are_quarantined(mappings) -> None:
    m = mappings["asterisk_cdr"]
    internal = parse_cdr_line(CDR_LINES[0])  # extension 1001 -> extension 2000: no customer number
    assert _map_one(m, "calls", "callcenter", "i", internal).reasons == ["required.phone_missing", "phone.invalid"]
    anon = dict(parse_cdr_line(CDR_LINES[1]), src="anonymous")
    assert _map_one(m, "calls", "callcenter", "a", anon).reasons == ["required.phone_missing", "phone.invalid"]
    no_time = dict(parse_cdr_line(CDR_LINES[1]), start="2024-02-30 10:00:00")
    assert _map_one(m, "calls", "callcenter", "t", no_time).reasons == [
        "required.occurred_at_missing", "datetime.impossible"]
    broken = parse_cdr_line('"only","three","columns"')
    assert _map_one(m, "calls", "callcenter", "b", broken).reasons == ["payload.malformed"]


# tryton.md §5: a party.party search_read row as the server returns it, then nested by the connector
TRYTON_PARTY = {
    "active": 1, "id": 2, "name": "陳偉", "code": "2",
    "write_date": "2026-11-22T07:40:39.460474", "create_date": "2026-11-22T07:40:39.460474",
    "addresses": [2], "identifiers": [3], "contact_mechanisms": [1, 2],
    "contact_mechanisms.": [{"type": "phone", "value": "+86 21 6234 5678", "write_date": None, "id": 1},
                            {"type": "email", "value": "customer00000@example.com", "write_date": None, "id": 2}],
    "identifiers.": [{"type": "cn_ric", "code": "11010519491231002x", "id": 3}],
    "addresses.": [{"city": "Liege", "write_date": None, "postal_code": "4000", "id": 2, "street": "143 Market Street",
                    "country.": {"code": "BE", "id": 19}}],
}


def test_tryton_party_with_children(mappings) -> None:
    payload = _nest(TRYTON_PARTY)
    out = _map_one(mappings["tryton"], "customers", "tryton", "2", payload)
    r = CustomerRecord.model_validate(out.records[0].record)
    assert r.name.name_key == "chen wei"
    assert [p.e164 for p in r.phones] == ["+862162345678"] and r.phones[0].kind == "fixed"
    assert r.emails == ["customer00000@example.com"]
    assert r.national_id == "11010519491231002X" and r.national_id_type == "cn_resident"
    assert r.birth_date.isoformat() == "1949-12-31"  # filled from the id, flagged
    assert "birth_date:birth_date.from_national_id" in out.records[0].quality_flags
    assert r.addresses[0].country == "BE" and r.addresses[0].city == "Liege"


@pytest.mark.parametrize(("name", "flag", "name_key"), [
    ("Ines Khan #00999", "name:name.note_code", "ines khan"),
    ("John Smith (old account)", "name:name.note_inactive", "john smith"),
    ("ACME Trading GmbH", "name:name.organisation", "acme trading"),
    ("上海某某贸易有限公司", "name:name.organisation", "上海某某贸易"),
])
def test_tryton_party_names_as_erps_write_them(mappings, name, flag, name_key) -> None:
    """Staging carries what the name standardiser found: the ERP's note split off, an organisation by its
    legal form; placeholder contact values are no contact values."""
    payload = _nest({**TRYTON_PARTY, "name": name, "contact_mechanisms.": [
        {"type": "phone", "value": "13800000000", "write_date": None, "id": 1},
        {"type": "email", "value": "noemail@example.com", "write_date": None, "id": 2}]})
    out = _map_one(mappings["tryton"], "customers", "tryton", "2", payload)
    rec = out.records[0]
    r = CustomerRecord.model_validate(rec.record)
    assert flag in rec.quality_flags and r.name.name_key == name_key
    assert r.phones == [] and r.emails == []
    assert "phones:phone.placeholder" in rec.quality_flags and "emails:email.placeholder" in rec.quality_flags


def test_tryton_sale_and_shipment(mappings) -> None:
    sale = _nest({
        "id": 1, "number": "1", "state": "processing", "sale_date": "2026-11-22", "party": 30,
        "party.": {"code": "30", "name": "Jon Berg", "id": 30}, "currency.": {"code": "USD", "id": 145},
        "total_amount": "95.00", "lines": [1, 2],
        "lines.": [{"type": "line", "unit_price": "15.0000", "quantity": 1.0, "product": 2, "id": 1, "amount": "15.00",
                    "product.": {"code": "W000", "id": 2}},
                   {"type": "comment", "description": "gift wrap", "id": 2}],
    })
    rec = _map_one(mappings["tryton"], "orders", "tryton", "1", sale).records[0]
    o = Order.model_validate(rec.record)
    assert rec.customer_key == "tryton:30" and o.status == "processing" and o.currency == "USD"
    assert [ln.sku for ln in o.lines] == ["W000"]  # comment lines are not order lines
    ship = _nest({
        "id": 1, "number": "1", "state": "done", "planned_date": "2026-11-22", "effective_date": "2026-11-23",
        "customer": 30, "customer.": {"name": "Jon Berg", "id": 30},
        "delivery_address.": {"postal_code": "75001", "city": "Paris", "id": 30, "street": "624 Market Street",
                              "country.": {"code": "FR", "id": 76}},
    })
    rec = _map_one(mappings["tryton"], "shipments", "tryton", "1", ship).records[0]
    s = Shipment.model_validate(rec.record)
    assert rec.customer_key == "tryton:30" and s.status == "shipped"
    assert s.delivery_address.city == "Paris" and s.delivery_address.kind == "shipping"


def test_sql_erp_party_bad_optional_fields_are_nulled_and_flagged(mappings) -> None:
    sample = copy.deepcopy(_decl("sql_erp_sandbox")["entities"]["customers"]["sample"])
    sample["contact_mechanisms"].append({"id": 3, "party": 2, "type": "phone", "value": "12345"})
    sample["identifiers"][0]["code"] = "110105194912310021"  # wrong check digit
    out = _map_one(mappings["sql_erp_sandbox"], "customers", "erp", "2", sample)
    rec = out.records[0]
    assert [p["e164"] for p in rec.record["phones"]] == ["+8613800138000"]
    assert rec.record["national_id"] is None
    assert "phones:phone.invalid" in rec.quality_flags and "national_id:national_id.checksum" in rec.quality_flags


def test_required_rules_give_reason_codes(mappings) -> None:
    m = mappings["woocommerce"]
    payload = copy.deepcopy(WOO_CUSTOMER)
    for who in (payload, payload["billing"], payload["shipping"]):
        who["first_name"] = who["last_name"] = ""
    assert _map_one(m, "customers", "webshop", "1", payload).reasons == ["required.name_missing"]
    payload = copy.deepcopy(WOO_CUSTOMER)
    payload["email"] = payload["billing"]["email"] = "not-an-email"
    payload["billing"]["phone"] = "call me"
    out = _map_one(m, "customers", "webshop", "1", payload)
    assert out.reasons == ["required.contact_missing", "phone.invalid", "email.invalid"]
    assert out.records == []
    sale = dict(_decl("woocommerce")["entities"]["orders"]["sample"], date_created="2017-02-30T10:00:00",
                date_created_gmt="")
    assert _map_one(m, "orders", "webshop", "1", sale).reasons == ["required.ordered_at_missing",
                                                                    "datetime.impossible"]
    assert _map_one(m, "customers", "webshop", "1", ["not", "an", "object"]).reasons == ["payload.malformed"]
    assert _map_one(m, "refunds", "webshop", "1", {}).reasons == ["mapping.missing"]


def test_phone_region_and_dayfirst_come_from_the_source(mappings) -> None:
    m = mappings["woocommerce"]
    payload = copy.deepcopy(WOO_CUSTOMER)
    payload["billing"].update(phone="030 1234567", country="")
    payload["shipping"]["country"] = ""
    payload["meta_data"] = [{"id": 1, "key": "birthday", "value": "07/03/1985"}]
    cn = _map_one(m, "customers", "webshop", "1", payload).records[0]
    de = _map_one(m, "customers", "shop_de", "1", payload, phone_region="DE", dayfirst=True).records[0]
    assert cn.record["birth_date"] == "1985-07-03" and de.record["birth_date"] == "1985-03-07"
    assert de.record["phones"][0]["e164"] == "+49301234567"
    assert cn.record["phones"] == [] or cn.record["phones"][0]["e164"].startswith("+86")
    payload["billing"]["country"] = "Deutschland"  # the record's own country beats the source default
    assert _map_one(m, "customers", "webshop", "1", payload).records[0].record["phones"][0]["e164"] == "+49301234567"


# -- junk never raises ---------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40),
                    st.sampled_from(["", " ", "0", "1", "email", "mobile", "cn_ric", "from-internal", "男",
                                     "13800138000", "+86 138-0013-8000", "1985-02-30", "2024-05-06 10:15:02",
                                     "11010519491231002X", "陳偉", "WEI CHEN", "line", "done"]))
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                     max_leaves=25)


def _sample_keys(mapper, entity: str) -> list[str]:
    return sorted(mapper.spec.entities[entity].sample)


def _payloads(keys: list[str]):
    """Payloads that use the real field names (so paths reach them) with arbitrary junk values."""
    return st.one_of(
        _json,
        st.dictionaries(st.sampled_from(keys), _json, max_size=len(keys)),
    )


_ALL = load_mappings()
_CASES = [(kind, ent) for kind, m in _ALL.items() for ent in m.entities]


@pytest.mark.parametrize(("kind", "entity"), _CASES)
def test_arbitrary_junk_payloads_never_raise(kind: str, entity: str) -> None:
    m = _ALL[kind]
    ctx = m.context("src")

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(payload=_payloads(_sample_keys(m, entity)), sid=st.text(min_size=1, max_size=20))
    def run(payload, sid: str) -> None:
        out = m.map(entity, sid, payload, ctx)
        # either canonical records (maybe with flags) or quarantine reasons, never both, never nothing
        assert bool(out.records) != bool(out.reasons)
        for rec in out.records:
            model = {"customers": CustomerRecord, "orders": Order, "shipments": Shipment,
                     "interactions": Interaction}[rec.entity]
            model.model_validate(rec.record)
            assert all(":" in f for f in rec.quality_flags)
        for code in out.reasons:
            assert code.count(".") >= 1 and " " not in code

    run()


def test_customer_file_mapping_for_spreadsheet_imports() -> None:
    m = load_mapping("customer_file")  # used by `hub import FILE --mapping customer_file`
    sample = m.spec.entities["customers"].sample
    (rec,) = _map_one(m, "customers", "import", "C-001", sample).records
    r = CustomerRecord.model_validate(rec.record)
    assert r.name.name_key == "chen wei" and r.phones[0].e164 == "+8613800138000"
    assert r.birth_date.isoformat() == "1985-03-07" and r.gender == "male" and r.company_key
    assert r.national_id == "11010519491231002X"
    assert "national_id:national_id.birth_date_mismatch" in rec.quality_flags  # the sample's id says 1949


@pytest.mark.parametrize(("raw", "kept", "kind", "flag"), [
    ("1804974", "1804974", "other", "national_id.unverified"),  # a foreign number (FEBRL's social security id)
    ("X 1234-567", "X1234567", "other", "national_id.unverified"),
    ("110105194912310021", None, None, "national_id.checksum"),  # shaped like a resident id: a typo is invalid
    ("000000", None, None, "national_id.format"),  # a dummy
    ("n/a", None, None, "national_id.format"),
])
def test_customer_file_keeps_an_identifier_of_an_undeclared_kind(raw, kept, kind, flag) -> None:
    # what the matching engine compares (`hub dedupe` reads the same column): only an id shaped like a Chinese
    # resident id is held to its checksum; anything else is kept as written, of type "other", unverified
    m = load_mapping("customer_file")
    (rec,) = _map_one(m, "customers", "import", "C-9", {"full_name": "Mitchell Green", "city": "Cleveland",
                                                         "national_id": raw}).records
    assert rec.record["national_id"] == kept and rec.record["national_id_type"] == kind
    assert f"national_id:{flag}" in rec.quality_flags


def test_customer_file_reads_the_further_columns_hub_dedupe_reads() -> None:
    m = load_mapping("customer_file")
    (rec,) = _map_one(m, "customers", "import", "C-8", {
        "full_name": "Anna Schmidt", "phone": "+49 30 1234567", "phone_2": "+49 170 1234567",
        "email_2": "anna@example.de", "street": "12 Lindenstrasse", "city": "Berlin", "country": "DE",
        "street_2": "7 Hafenweg", "city_2": "Hamburg", "postal_code_2": "20095"}).records
    r = CustomerRecord.model_validate(rec.record)
    assert [p.e164 for p in r.phones] == ["+49301234567", "+491701234567"] and r.emails == ["anna@example.de"]
    assert [a.city for a in r.addresses] == ["Berlin", "Hamburg"] and r.addresses[1].postal_code == "20095"
    (one,) = _map_one(m, "customers", "import", "C-7", {"full_name": "Anna Schmidt", "city": "Berlin"}).records
    assert len(one.record["addresses"]) == 1  # no empty second address


def test_customer_file_keeps_unverified_postcode_and_birth_date_as_match_evidence() -> None:
    # what `hub dedupe` compares in the same file: a postcode that does not fit the (defaulted) country and a
    # birth date with a typo that makes it no date are kept as written, apart from the verified values (never
    # pushed), with the flags that say why they are not verified
    from hub.golden.matching import ENGINE_COLUMNS, engine_row

    m = load_mapping("customer_file")
    (rec,) = _map_one(m, "customers", "import", "C-9", {
        "given_name": "mitchell", "family_name": "green", "street": "7 wallaby place", "city": "cleveland",
        "region": "sa", "postal_code": "2119", "birth_date": "19561345"}).records
    r = rec.record
    assert r["birth_date"] is None and r["unverified_birth_date"] == "19561345"
    (addr,) = r["addresses"]
    assert addr["postal_code"] is None and addr["unverified_postal_code"] == "2119"
    assert "birth_date:date.impossible" in rec.quality_flags
    assert any(f.endswith("postal_code.invalid") for f in rec.quality_flags)
    row = dict(zip(ENGINE_COLUMNS, engine_row("import:C-9", r), strict=True))
    assert (row["birth_date"], row["postal_code"]) == ("19561345", "2119")
    # verified values win, and a placeholder date is no evidence
    (ok,) = _map_one(m, "customers", "import", "C-8", {"full_name": "Wang Fang", "city": "上海", "postal_code": "200001",
                                                        "birth_date": "0000-00-00"}).records
    assert ok.record["addresses"][0]["postal_code"] == "200001"
    assert "unverified_postal_code" not in ok.record["addresses"][0] or not ok.record["addresses"][0]["unverified_postal_code"]
    assert ok.record["unverified_birth_date"] is None
