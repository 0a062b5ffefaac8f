"""The standardisers a mapping may name, as adapters over ``hub.standardise`` (the one implementation).

Every adapter has the shape ``fn(field, inputs, ctx, options) -> (updates, flags)``:

- ``inputs`` is what the field's paths resolved to: a list of raw candidate values (``from: a | b``), or for
  role-based standardisers (names, addresses, national ids) a dict role -> list of candidates;
- ``updates`` are canonical fields to set (``person_name`` sets ``name`` *and* full/given/family names);
- ``flags`` are machine-readable codes (``phone.invalid``) for values that were nulled or fixed.

Adapters never raise on any input: junk becomes ``None`` plus a flag. Value coercions that are not
standardisation (decimals, ints, booleans, timestamps, enumerations) live here too, because they are about
reading a source's wire format, not about cleaning customer data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from hub.standardise.addresses import standardise_address
from hub.standardise.dates import standardise_date
from hub.standardise.emails import standardise_email
from hub.standardise.identifiers import validate_cn_resident_id, validate_ssn
from hub.standardise.names import standardise_company, standardise_person_name
from hub.standardise.phones import standardise_phone
from hub.standardise.placeholders import is_placeholder_text
from hub.standardise.text import as_str, normalize_text


class Context(NamedTuple):
    """Per-source settings the standardisers need (a tuple: cheap to hash in the adapter memo keys)."""

    source: str
    phone_region: str = "CN"
    dayfirst: bool = False
    default_country: str | None = "CN"
    today: date | None = None


Inputs = list[Any] | dict[str, list[Any]]
Result = tuple[dict[str, Any], tuple[str, ...]]
Adapter = Callable[[str, Inputs, Context, Mapping[str, Any]], Result]


@dataclass(frozen=True, slots=True)
class Standardiser:
    name: str
    fn: Adapter
    roles: frozenset[str] | None = None  # None: a single ``from`` (path or list of paths)
    required_roles: frozenset[str] = frozenset()
    # canonical fields the standardiser fills besides the declared one (they cannot be mapped directly)
    fills: tuple[str, ...] = ()
    produces_list: bool = False
    options: frozenset[str] = frozenset()
    free_roles: bool = False  # role names are the caller's (external id names)
    first_only: bool = False  # reads only the first non-empty value: alternatives stop at the first hit
    doc: str = ""


_NO: tuple[str, ...] = ()


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _scalars(values: list[Any]) -> list[Any]:
    """Flatten one level of lists (a path may reach a list of phones) and drop containers."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(x for x in v if x is not None and not isinstance(x, dict | list))
        elif not isinstance(v, dict):
            out.append(v)
    return out


# --------------------------------------------------------------------------------------------------------------
# Names, companies


_SCRIPTS = frozenset({"han", "latin", "mixed"})
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def _person_name(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    assert isinstance(inputs, dict)
    full = _first(_scalars(inputs.get("full", [])))
    given = _first(_scalars(inputs.get("given", [])))
    family = _first(_scalars(inputs.get("family", [])))
    if full is None and given is None and family is None:
        return {fld: None}, _NO  # absent, not bad: the `required` rule decides whether that matters
    if full is None and (given is None) != (family is None):
        # one box filled with a whole name ("张明辉" typed into last_name, "Wei Chen" into first_name):
        # parse it as a full name rather than trusting the box it landed in
        only = normalize_text(as_str(given if family is None else family) or "")
        if " " in only or (len(only) >= 2 and _HAN_RE.fullmatch(only)):
            full, given, family = only, None, None
    p = standardise_person_name(full=full, given=given, family=family)
    if not (p.display or p.name_key):
        return {fld: None}, tuple(p.flags) or ("name.unparseable",)
    reject = opts.get("reject_flags")
    if reject and any(f in reject for f in p.flags):
        # e.g. WeChat nicknames: "追风少年" is not a person's name; a fake name would only mislead matching
        return {fld: None}, (*p.flags, "name.rejected")
    parts = {
        "display": p.display,
        "family": p.family,
        "given": p.given,
        "script": p.script if p.script in _SCRIPTS else None,
        "han": p.han,
        "family_pinyin": p.family_pinyin,
        "given_pinyin": p.given_pinyin,
        "name_key": p.name_key,
        "given_canonical": p.given_canonical,
    }
    return (
        {fld: parts, "full_name": p.display, "given_name": p.given, "family_name": p.family},
        tuple(p.flags),
    )


def _company(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    raw = _first(_scalars(inputs))  # type: ignore[arg-type]
    if raw is None:
        return {fld: None}, _NO
    c = standardise_company(raw)
    if not c.key:
        return {fld: None, "company_key": None}, tuple(c.flags) or ("company.unparseable",)
    display = normalize_text(as_str(raw) or "")[:512] or None
    return {fld: display, "company_key": c.key}, tuple(c.flags)


# --------------------------------------------------------------------------------------------------------------
# Contacts


def _emails(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    emails: list[str] = []
    keys: list[str] = []
    flags: list[str] = []
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        e = standardise_email(raw)
        flags.extend(f for f in e.flags if f != "email.missing")
        if e.address and e.address not in emails:
            emails.append(e.address)
            if e.key and e.key not in keys:
                keys.append(e.key)
    return {fld: emails, "email_keys": keys}, tuple(flags)


def _email(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    flags: list[str] = []
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        e = standardise_email(raw)
        if e.address:
            return {fld: e.address}, _NO
        flags.extend(f for f in e.flags if f != "email.missing")
    return {fld: None}, tuple(flags)


def _region(ctx: Context, opts: Mapping[str, Any]) -> str:
    return str(opts.get("region") or ctx.phone_region or "CN")


_DIGITS_ONLY = re.compile(r"^\d{10,15}$")


def _parse_phone(raw: Any, region: str, opts: Mapping[str, Any]) -> Any:
    p = standardise_phone(raw, region)
    if p.e164 is None and opts.get("plus_fallback"):
        # trunks often deliver international numbers without '+' or '00' (4915132514728)
        s = (as_str(raw) or "").strip()
        if _DIGITS_ONLY.match(s):
            q = standardise_phone("+" + s, region)
            if q.e164 is not None:
                return q._replace(flags=(*q.flags, "phone.plus_added"))
    return p


# a phone-number-looking run inside free text (WeChat remarks, notes)
_NUMBER_RUN = re.compile(r"[+＋]?[0-9０-９][0-9０-９ \-－()（）]{5,}[0-9０-９]")


def _free_text_numbers(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        s = as_str(v)
        if s:
            out.extend(m.group(0) for m in _NUMBER_RUN.finditer(s[:1000]))
    return out


def _phones(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    region = _region(ctx, opts)
    phones: list[dict[str, Any]] = []
    seen: set[str] = set()
    flags: list[str] = []
    candidates = _scalars(inputs)  # type: ignore[arg-type]
    if opts.get("free_text"):
        candidates = _free_text_numbers(candidates)
    unverified: list[str] = []
    for raw in candidates:
        p = _parse_phone(raw, region, opts)
        if p.e164 is None:
            flags.extend(f for f in p.flags if f != "phone.missing")
            if "phone.possible" in p.flags and not {"phone.fictional", "phone.placeholder"} & set(p.flags):
                text = normalize_text(as_str(raw) or "").strip()[:64]
                if text and text not in unverified:
                    unverified.append(text)
            continue
        flags.extend(p.flags)
        if p.e164 in seen:
            continue
        seen.add(p.e164)
        phones.append({"e164": p.e164, "kind": p.kind or "other", "extension": p.extension,
                       "raw": normalize_text(as_str(raw) or "")[:64] or None})
    return {fld: phones, "unverified_phones": unverified}, tuple(flags)


def _phone(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    """The first candidate that is a valid number (CDR: the caller, else the called party)."""
    region = _region(ctx, opts)
    flags: list[str] = []
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        p = _parse_phone(raw, region, opts)
        if p.e164:
            return {fld: p.e164}, tuple(p.flags)
        flags.extend(f for f in p.flags if f != "phone.missing")
    return {fld: None}, tuple(dict.fromkeys(flags))


# --------------------------------------------------------------------------------------------------------------
# Dates and times


def _tryton_value(v: Any) -> Any:
    """Tryton's JSON-RPC encodes dates/datetimes/decimals as ``{"__class__": ...}`` objects."""
    if isinstance(v, dict) and "__class__" in v:
        cls = v.get("__class__")
        try:
            if cls == "datetime":
                return datetime(int(v["year"]), int(v["month"]), int(v["day"]), int(v.get("hour", 0)),
                                int(v.get("minute", 0)), int(v.get("second", 0)), int(v.get("microsecond", 0)))
            if cls == "date":
                return date(int(v["year"]), int(v["month"]), int(v["day"]))
            if cls == "Decimal":
                return v.get("decimal")
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
    return v


def _date(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any], birth: bool = False) -> Result:
    flags: list[str] = []
    dayfirst = bool(opts.get("dayfirst", ctx.dayfirst))
    unverified: str | None = None
    for raw in _scalars([_tryton_value(v) for v in inputs]):  # type: ignore[union-attr]
        p = standardise_date(raw, dayfirst=dayfirst, birth=birth, today=ctx.today)
        if p.value is not None:
            return {fld: p.value, **({"unverified_birth_date": None} if birth else {})}, tuple(p.flags)
        flags.extend(f for f in p.flags if f != "date.missing")
        if unverified is None and {"date.impossible", "date.unparseable"} & set(p.flags) \
                and "date.zero" not in p.flags:
            unverified = normalize_text(as_str(raw) or "").strip()[:_MAX_UNVERIFIED_DATE] or None
    if birth:
        # a birth date that is no date (19561345, a digit typed twice) as written: match evidence only, as
        # `hub dedupe` compares a file's birth_date column (a typo is still one edit from the true date)
        return {fld: None, "unverified_birth_date": unverified}, tuple(dict.fromkeys(flags))
    return {fld: None}, tuple(dict.fromkeys(flags))


_MAX_UNVERIFIED_DATE = 32


def _birth_date(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    return _date(fld, inputs, ctx, opts, birth=True)


_ISO_FAST = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_MIN_DT = datetime(1900, 1, 1)
_MAX_DT = datetime(2100, 12, 31)


def _to_naive_utc(dt: datetime) -> datetime:
    # canonical timestamps are naive UTC (the store's convention); aware values are converted
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo is not None else dt


def _parse_datetime(raw: Any, unit: str, dayfirst: bool) -> tuple[datetime | None, str | None]:
    if raw.__class__ is str and raw.isascii() and _ISO_FAST.fullmatch(raw):
        # the bulk of timestamps (ISO 8601 from every API), each unique: the general path below gives the same
        # result (an ASCII ISO string is its own normal form), after a normalize_text whose cache they flood
        try:
            return _to_naive_utc(datetime.fromisoformat(raw)), None
        except ValueError:
            return None, "datetime.impossible"
    raw = _tryton_value(raw)
    if isinstance(raw, datetime):
        return _to_naive_utc(raw), None
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day), None
    if isinstance(raw, bool):
        return None, "datetime.unparseable"
    if isinstance(raw, int | float) or (isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) >= 9):
        # epoch seconds (WeChat subscribe_time) or milliseconds
        try:
            n = float(raw)
            if math.isnan(n) or math.isinf(n):
                return None, "datetime.unparseable"
            if unit == "ms" or n > 1e11:
                n /= 1000.0
            return datetime.fromtimestamp(n, UTC).replace(tzinfo=None), None
        except (OverflowError, OSError, ValueError):
            return None, "datetime.impossible"
    s = as_str(raw)
    if s is None or not s.strip():
        return None, None
    s = normalize_text(s)
    if len(s) > 64:
        return None, "datetime.unparseable"
    if _ISO_FAST.match(s):
        try:
            return _to_naive_utc(datetime.fromisoformat(s)), None
        except ValueError:
            return None, "datetime.impossible"
    try:
        from dateutil import parser as du

        return _to_naive_utc(du.parse(s, dayfirst=dayfirst)), None
    except (ValueError, OverflowError):
        p = standardise_date(s, dayfirst=dayfirst)
        if p.value is not None:
            return datetime(p.value.year, p.value.month, p.value.day), None
        return None, "datetime.impossible" if "date.impossible" in p.flags else "datetime.unparseable"
    except Exception:  # dateutil on pathological input
        return None, "datetime.unparseable"


def _datetime(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    unit = str(opts.get("unit", "s"))
    dayfirst = bool(opts.get("dayfirst", ctx.dayfirst))
    flags: list[str] = []
    for raw in inputs:  # type: ignore[union-attr]
        if isinstance(raw, list):
            continue
        dt, flag = _parse_datetime(raw, unit, dayfirst)
        if dt is not None:
            if not (_MIN_DT <= dt <= _MAX_DT):
                flags.append("datetime.impossible")
                continue
            return {fld: dt}, _NO
        if flag:
            flags.append(flag)
    return {fld: None}, tuple(dict.fromkeys(flags))


# --------------------------------------------------------------------------------------------------------------
# Addresses and identifiers


def _join(values: list[Any], sep: str = ", ") -> str | None:
    parts = []
    for v in _scalars(values):
        s = as_str(v)
        if s and s.strip() and s.strip() not in parts:
            parts.append(s.strip())
    return sep.join(parts) or None


_ADDRESS_ROLES = frozenset({"street", "district", "city", "region", "postal_code", "country"})
_MAX_POSTAL = 16  # the standardiser's limit too


def _address_one(roles: Mapping[str, list[Any]], ctx: Context, opts: Mapping[str, Any]) -> Result:
    street = _join(roles.get("street", []))
    district = _join(roles.get("district", []))
    city = _join(roles.get("city", []))
    region = _join(roles.get("region", []))
    table = opts.get("_region_table")
    if table and region:
        # the source's own subdivision codes (WooCommerce "CN24" = 四川省) to names the standardiser knows
        region = table.get(region.strip().upper(), region)
    postal = _join(roles.get("postal_code", []))
    country = _join(roles.get("country", []))
    if not any((street, district, city, region, postal)):
        return {}, _NO  # no address at all is not a problem, just absent
    default_country = opts.get("default_country", ctx.default_country)
    a = standardise_address(street=street if not district else f"{district} {street or ''}".strip(),
                            city=city, region=region, postal_code=postal, country=country,
                            default_country=default_country)
    value = {
        "kind": opts.get("kind", "other"),
        "street": a.street,
        "district": a.district,
        "city": a.city,
        "region": a.region,
        "postal_code": a.postal_code,
        "country": a.country,
        "key": a.key,
    }
    if postal and not a.postal_code and "postal_code.invalid" in a.flags:
        kept = " ".join(postal.split())
        if 0 < len(kept) <= _MAX_POSTAL:  # longer is no postcode anywhere
            value["unverified_postal_code"] = kept
    if not any(value[k] for k in ("street", "district", "city", "region", "postal_code")):
        return {}, tuple(a.flags) or ("address.unparseable",)
    return {"value": value}, tuple(a.flags)


def _address(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    assert isinstance(inputs, dict)
    out, flags = _address_one(inputs, ctx, opts)
    return {fld: out.get("value")}, flags


def _addresses(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    assert isinstance(inputs, dict)
    out, flags = _address_one(inputs, ctx, opts)
    return {fld: [out["value"]] if "value" in out else []}, flags


_ID_TYPES = {
    "cn_resident": "cn_resident", "cn_ric": "cn_resident", "cn_id": "cn_resident", "resident_id": "cn_resident",
    "身份证": "cn_resident", "us_ssn": "us_ssn", "ssn": "us_ssn",
}
_ID_GENDER = {"M": "male", "F": "female"}


_ID_SEPARATORS = re.compile(r"[\s\-./]+")


def _other_id(raw: Any) -> str | None:
    """An identifier of an undeclared scheme, letters upper-cased and separators dropped; None when it is a
    placeholder or a dummy (n/a, 000000, 123456789) or too short to identify anyone."""
    text = str(raw).strip()
    if is_placeholder_text(text):
        return None
    value = _ID_SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    if len(value) < 5 or len(value) > 32 or not value.isalnum() or not any(c.isdigit() for c in value):
        return None
    if len(set(value)) <= 1 or value in "0123456789012345678" or value in "9876543210987654321":
        return None
    return value


def _national_id(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    """Personal national ids: GB 11643 resident ids (checksum, encoded birth date/gender) and US SSNs."""
    assert isinstance(inputs, dict)
    raw = _first(_scalars(inputs.get("value", [])))
    if raw is None:
        return {fld: None}, _NO
    given = _first(_scalars(inputs.get("type", []))) or opts.get("type")
    declared = given or "cn_resident"
    kind = _ID_TYPES.get(str(declared).strip().lower())
    if kind == "us_ssn":
        s = validate_ssn(raw)
        if not s.valid:
            return {fld: None, "unverified_national_id": _other_id(raw)}, tuple(s.flags) or ("national_id.invalid",)
        return {fld: s.value, "national_id_type": "us_ssn", "unverified_national_id": None}, tuple(s.flags)
    if kind != "cn_resident":
        return {fld: None}, ("national_id.unknown_type",)
    n = validate_cn_resident_id(raw, today=ctx.today)
    if not given and n.flags and n.flags[0] == "national_id.format":
        # no type declared and not shaped like a resident id (a passport, a foreign tax or social security
        # number): kept as written, of type "other" and unverified — it still tells two records apart or together
        other = _other_id(raw)
        if other:
            return {fld: other, "national_id_type": "other"}, ("national_id.unverified",)
    if not n.valid or not n.value:
        # an id that fails validation (a region code that does not exist, a typo) as written: match evidence
        # only, as `hub dedupe` compares a file's national_id column (a typo is still one edit from the true id)
        return {fld: None, "unverified_national_id": _other_id(raw)}, tuple(n.flags) or ("national_id.invalid",)
    out: dict[str, Any] = {fld: n.value, "national_id_type": "cn_resident", "unverified_national_id": None}
    # the engine cross-checks these against the record's own birth date / gender
    if n.birth_date is not None:
        out["__id_birth_date"] = n.birth_date
    if n.gender in _ID_GENDER:
        out["__id_gender"] = _ID_GENDER[n.gender]
    return out, tuple(n.flags)


# --------------------------------------------------------------------------------------------------------------
# Plain values


def _text(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    max_len = int(opts.get("max_len", 512))
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        s = as_str(_tryton_value(raw))
        if s is None:
            continue
        t = normalize_text(s[: max_len * 4])
        if t:
            if len(t) > max_len:
                return {fld: t[:max_len]}, ("text.truncated",)
            return {fld: t}, _NO
    return {fld: None}, _NO


def _identifier(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    """A foreign key or id as text; ``null_values`` (e.g. Woo's customer_id 0 for guests) mean none."""
    nulls = {str(v) for v in opts.get("null_values", ())}
    prefix = str(opts.get("prefix", ""))
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        s = as_str(raw)
        if s is None:
            continue
        s = s.strip()
        if s and s not in nulls:
            return {fld: (prefix + s)[:255]}, _NO
    return {fld: None}, _NO


def _decimal(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    flags: list[str] = []
    for raw in _scalars([_tryton_value(v) for v in inputs]):  # type: ignore[union-attr]
        if isinstance(raw, bool):
            flags.append("number.invalid")
            continue
        s = as_str(raw)
        if s is None or not s.strip():
            continue
        s = normalize_text(s).replace(",", "").replace("¥", "").replace("￥", "").replace("$", "").strip()
        try:
            d = Decimal(s)
        except (InvalidOperation, ValueError):
            flags.append("number.invalid")
            continue
        if not d.is_finite() or abs(d) >= Decimal(10) ** 15:
            flags.append("number.invalid")
            continue
        return {fld: d}, _NO
    return {fld: None}, tuple(dict.fromkeys(flags))


def _int(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    out, flags = _decimal(fld, inputs, ctx, opts)
    d = out[fld]
    if d is None:
        return out, flags
    if d != d.to_integral_value() or abs(d) >= 2**31:
        return {fld: None}, ("number.invalid",)
    return {fld: int(d)}, _NO


_TRUE = frozenset({"1", "true", "yes", "y", "t", "on", "subscribed", "opt_in", "opted_in", "granted", "是"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "off", "unsubscribed", "not_subscribed", "opt_out",
                    "opted_out", "denied", "否"})


def _bool(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    true = _TRUE | {str(v).lower() for v in opts.get("true", ())}
    false = _FALSE | {str(v).lower() for v in opts.get("false", ())}
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        if isinstance(raw, bool):
            return {fld: raw}, _NO
        s = (as_str(raw) or "").strip().lower()
        if s in true:
            return {fld: True}, _NO
        if s in false:
            return {fld: False}, _NO
        if s:
            return {fld: None}, ("bool.invalid",)
    return {fld: None}, _NO


def _lookup(values: Mapping[Any, Any]) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in values.items()}


def _map(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    """Enumerations: ``values: {raw: canonical}`` (case-insensitive); ``default`` for anything else."""
    table = opts.get("_table") or _lookup(opts.get("values", {}))
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        s = (as_str(raw) or "").strip().lower()
        if not s:
            continue
        if s in table:
            return {fld: table[s]}, _NO
        if "default" in opts:
            return {fld: opts["default"]}, _NO
        return {fld: None}, ("value.unmapped",)
    return {fld: opts.get("missing")}, _NO


_GENDER = _lookup({
    "m": "male", "male": "male", "man": "male", "男": "male", "先生": "male", "mr": "male",
    "f": "female", "female": "female", "woman": "female", "女": "female", "女士": "female", "mrs": "female",
    "ms": "female", "x": "other", "other": "other", "diverse": "other", "d": "other",
})


def _gender(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    table = dict(_GENDER)
    table.update(_lookup(opts.get("values", {})))
    unknown = {str(v).lower() for v in opts.get("unknown", ("", "0", "u", "unknown", "未知", "n"))}
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        s = normalize_text(as_str(raw) or "").lower()
        if not s or s in unknown:
            continue
        if s in table:
            return {fld: table[s]}, _NO
        return {fld: None}, ("gender.invalid",)
    return {fld: None}, _NO


def _language(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    for raw in _scalars(inputs):  # type: ignore[arg-type]
        s = normalize_text(as_str(raw) or "").replace("_", "-")
        if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", s):
            head, *rest = s.split("-")
            return {fld: "-".join([head.lower(), *[r.upper() if len(r) == 2 else r for r in rest]])}, _NO
        if s:
            return {fld: None}, ("language.invalid",)
    return {fld: None}, _NO


def _id_map(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    """``external_ids``: role -> identifier text (e.g. ``wechat_unionid: unionid``)."""
    assert isinstance(inputs, dict)
    out: dict[str, str] = {}
    for role, values in inputs.items():
        for raw in _scalars(values):
            s = (as_str(raw) or "").strip()
            if s:
                out[role] = s[:255]
                break
    return {fld: out}, _NO


def _const(fld: str, inputs: Inputs, ctx: Context, opts: Mapping[str, Any]) -> Result:
    return {fld: opts.get("value")}, _NO


STANDARDISERS: dict[str, Standardiser] = {
    s.name: s
    for s in (
        Standardiser("person_name", first_only=True, fn=_person_name, roles=frozenset({"full", "given", "family"}),
                     fills=("full_name", "given_name", "family_name"), options=frozenset({"reject_flags"}),
                     doc="names -> PersonNameParts"),
        Standardiser("company", first_only=True, fn=_company, fills=("company_key",)),
        Standardiser("emails", _emails, fills=("email_keys",), produces_list=True),
        Standardiser("email", _email),
        Standardiser("phones", _phones, produces_list=True, fills=("unverified_phones",),
                     options=frozenset({"region", "free_text", "plus_fallback"})),
        Standardiser("phone", _phone, options=frozenset({"region", "plus_fallback"})),
        Standardiser("date", _date, options=frozenset({"dayfirst"})),
        Standardiser("birth_date", _birth_date, options=frozenset({"dayfirst"}), fills=("unverified_birth_date",)),
        Standardiser("datetime", _datetime, options=frozenset({"unit", "dayfirst"})),
        Standardiser("address", _address, roles=_ADDRESS_ROLES,
                     options=frozenset({"kind", "default_country", "region_values"})),
        Standardiser("addresses", _addresses, roles=_ADDRESS_ROLES, produces_list=True,
                     options=frozenset({"kind", "default_country", "region_values"})),
        Standardiser("national_id", _national_id, roles=frozenset({"value", "type"}),
                     required_roles=frozenset({"value"}), fills=("national_id_type", "unverified_national_id"),
                     options=frozenset({"type"})),
        Standardiser("text", first_only=True, fn=_text, options=frozenset({"max_len"})),
        Standardiser("identifier", first_only=True, fn=_identifier, options=frozenset({"null_values", "prefix"})),
        Standardiser("decimal", _decimal),
        Standardiser("int", _int),
        Standardiser("bool", first_only=True, fn=_bool, options=frozenset({"true", "false"})),
        Standardiser("map", first_only=True, fn=_map, options=frozenset({"values", "default", "missing"})),
        Standardiser("gender", first_only=True, fn=_gender, options=frozenset({"values", "unknown"})),
        Standardiser("language", first_only=True, fn=_language),
        Standardiser("id_map", first_only=True, fn=_id_map, roles=frozenset(), free_roles=True, doc="external id name -> path"),
        Standardiser("const", _const, options=frozenset({"value"})),
    )
}
