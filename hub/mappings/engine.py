"""Compiling a mapping declaration and applying it to payloads.

Compilation does all the checking once (canonical field names, standardiser names, roles, path syntax,
paths against the declared sample payload) and turns paths into closures, so that mapping a record is a
tight loop of dict look-ups and cached standardiser calls.

Applying never raises: a payload that does not fit yields a record with quality flags (optional fields
nulled) or a list of machine-readable quarantine reasons (required rules broken, malformed payload).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from hub import models
from hub.mappings.paths import Getter, PathError, check_shape, compile_path
from hub.mappings.spec import FieldSpec, LandingSpec, MappingSpec, TargetSpec
from hub.mappings.transforms import STANDARDISERS, Context, Standardiser
from hub.standardise.addresses import country_code
from hub.standardise.text import FORMULA_STARTS, as_str, is_formula_like

ENTITY_MODELS: dict[str, type[BaseModel]] = {
    "customers": models.CustomerRecord,
    "orders": models.Order,
    "shipments": models.Shipment,
    "interactions": models.Interaction,
}

# Canonical fields a standardiser fills as a side effect: mapping them directly would fight it.
_DERIVED: dict[str, str] = {
    "full_name": "person_name (field 'name')",
    "given_name": "person_name (field 'name')",
    "family_name": "person_name (field 'name')",
    "company_key": "company",
    "email_keys": "emails",
    "unverified_phones": "phones",
    "unverified_birth_date": "birth_date",
    "national_id_type": "national_id",
    "unverified_national_id": "national_id",
}
_ENGINE_FIELDS = frozenset({"source", "source_id"})
# Composite rules besides plain field names in ``required``.
_RULES = frozenset({"contact", "identifiable", "matchable", "name_or_company", "reachable"})


class MappingError(ValueError):
    """A mapping declaration that is wrong; the message names the source kind, entity and field."""


@dataclass(frozen=True, slots=True)
class FieldInfo:
    is_list: bool
    base: Any  # the element type (list[Phone] -> Phone)
    literals: frozenset[Any] | None
    required: bool


def field_info(model: type[BaseModel], name: str) -> FieldInfo:
    f = model.model_fields[name]
    ann = f.annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        ann = args[0]
        origin = typing.get_origin(ann)
    is_list = origin is list
    base = typing.get_args(ann)[0] if is_list else ann
    literals = frozenset(typing.get_args(base)) if typing.get_origin(base) is Literal else None
    return FieldInfo(is_list, base, literals, f.is_required())


def default_standardiser(name: str, info: FieldInfo) -> str:
    by_name = {
        "name": "person_name",
        "company": "company",
        "emails": "emails",
        "billing_email": "email",
        "phones": "phones",
        "phone": "phone",
        "billing_phone": "phone",
        "birth_date": "birth_date",
        "gender": "gender",
        "national_id": "national_id",
        "language": "language",
        "external_ids": "id_map",
        "customer_source_id": "identifier",
        "order_source_id": "identifier",
    }
    if name in by_name:
        return by_name[name]
    base = info.base
    if base is models.Address:
        return "addresses" if info.is_list else "address"
    if isinstance(base, type) and issubclass(base, BaseModel):
        return "nested"
    if base is datetime:
        return "datetime"
    if base is date:
        return "date"
    if base is Decimal:
        return "decimal"
    if base is int:
        return "int"
    if base is bool:
        return "bool"
    if typing.get_origin(base) is dict or base is dict:
        return "id_map"
    return "text"


@dataclass(slots=True)
class CompiledField:
    name: str
    info: FieldInfo
    std: Standardiser | None  # None for nested models
    options: dict[str, Any]
    single: Getter | None = None
    roles: dict[str, Getter] = field(default_factory=dict)
    each: Getter | None = None
    nested: list[CompiledField] | None = None
    nested_model: type[BaseModel] | None = None
    region: Getter | None = None
    memo: dict[Any, Any] | None = field(default_factory=dict)  # None: memo switched off (low hit rate)
    hits: int = 0
    misses: int = 0
    run: Any = None  # bound fast path: (node, ctx) -> (updates, flags); set by _bind


@dataclass(slots=True)
class CompiledTarget:
    entity: str
    model: type[BaseModel]
    fields: list[CompiledField]
    required: tuple[str, ...]
    source_id: Getter | None
    source_id_prefix: str
    when: Getter | None = None  # produce this record only when the path yields something
    optional: bool = False  # its required rules failing drops this record, not the landing row
    wanted: tuple[str, ...] = ()  # rules whose failure flags the record incomplete instead of quarantining it
    # per field (run, name, allowed literals or None), in field order: the per-record loop of _map_target
    plan: tuple[tuple[Any, str, frozenset[Any] | None], ...] = ()


@dataclass(slots=True)
class StagedOutput:
    """One canonical record ready for ``staged_record``."""

    entity: str
    source_id: str
    customer_key: str | None
    record: dict[str, Any]  # Model.model_dump(mode="json")
    quality_flags: list[str]  # "<field>:<code>", e.g. "phones:phone.invalid"


@dataclass(slots=True)
class MappingOutcome:
    records: list[StagedOutput] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # non-empty -> quarantine the landing row
    detail: dict[str, Any] = field(default_factory=dict)


def _fail(kind: str, landing: str, target: str, fld: str | None, msg: str) -> MappingError:
    where = f"mapping '{kind}', entity '{landing}' -> {target}"
    if fld:
        where += f", field '{fld}'"
    return MappingError(f"{where}: {msg}")


def _paths(value: str | list[str]) -> str:
    return " | ".join(value) if isinstance(value, list) else value


def _compile_getter(path: str | list[str], samples: list[Any], err: Any, first: bool = False) -> Getter:
    text = _paths(path)
    try:
        getter = compile_path(text, first=first)
        check_shape(text, samples)
    except PathError as exc:
        raise err(f"path {text!r}: {exc}") from None
    return getter


def _flatten(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def _items_getter(getter: Getter) -> Getter:
    """``each: line_items`` means the items of the list the path reaches."""

    def items(node: Any) -> list[Any]:
        return _flatten(getter(node))

    return items


def _compile_field(
    name: str,
    raw: Any,
    model: type[BaseModel],
    samples: list[Any],
    err: Any,
) -> list[CompiledField]:
    if name not in model.model_fields:
        known = ", ".join(sorted(set(model.model_fields) - _ENGINE_FIELDS - set(_DERIVED)))
        raise err(f"unknown canonical field (the {model.__name__} fields are: {known})")
    if name in _ENGINE_FIELDS:
        raise err("is set by the staging engine, not by the mapping")
    if name in _DERIVED:
        raise err(f"is filled by the standardiser {_DERIVED[name]}; map that instead")
    info = field_info(model, name)
    # several declarations: a list field concatenates them, a single-valued field takes the first that
    # yields a value (fallbacks with different standardiser options)
    specs = raw if isinstance(raw, list) and not all(isinstance(x, str) for x in raw) else [raw]
    out: list[CompiledField] = []
    for item in specs:
        try:
            spec = FieldSpec.model_validate(item if not isinstance(item, list) else {"from": item})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            raise err(f"invalid declaration ({problems})") from None
        out.append(_bind(_compile_spec(name, spec, info, model, samples, err)))
    return out


def _compile_spec(
    name: str, spec: FieldSpec, info: FieldInfo, model: type[BaseModel], samples: list[Any], err: Any
) -> CompiledField:
    std_name = spec.standardise or default_standardiser(name, info)
    each = None
    if spec.each:
        each = _items_getter(_compile_getter(spec.each, samples, err))
        samples = _flatten(check_shape(spec.each, samples))
        if not samples:
            raise err(f"'each' path {spec.each!r} reaches nothing in the sample payload")
        if not info.is_list and std_name not in ("address",):
            raise err("'each' needs a list field")
    if std_name == "nested":
        base = info.base
        if not (isinstance(base, type) and issubclass(base, BaseModel)):
            raise err("standardiser 'nested' needs a field whose type is a model")
        if not spec.fields:
            raise err(f"needs 'fields:' for the {base.__name__} model")
        nested: list[CompiledField] = []
        for sub, sub_raw in spec.fields.items():

            def sub_err(msg: str, _sub: str = sub) -> MappingError:
                return err(f"sub-field '{_sub}': {msg}")

            nested.extend(_compile_field(sub, sub_raw, base, samples, sub_err))
        _check_required_fields(base, {c.name for c in nested}, err)
        return CompiledField(name, info, None, spec.options, each=each, nested=nested, nested_model=base)
    std = STANDARDISERS.get(std_name)
    if std is None:
        raise err(f"unknown standardiser {std_name!r} (known: {', '.join(sorted(STANDARDISERS))}, nested)")
    std = _formula_checked(std)
    if spec.fields:
        raise err(f"'fields:' only goes with nested models, not with standardiser {std_name!r}")
    bad_opts = set(spec.options) - std.options
    if bad_opts:
        raise err(f"standardiser {std_name!r} has no option(s) {sorted(bad_opts)}")
    if std.produces_list and not info.is_list:
        raise err(f"standardiser {std_name!r} produces a list but the field holds one value")
    if info.is_list and not std.produces_list and not (std_name == "const" and isinstance(spec.const, list)):
        raise err(f"the field is a list; standardiser {std_name!r} produces one value")
    opts = dict(spec.options)
    allowed = sorted(map(str, info.literals)) if info.literals is not None else None
    if "region_values" in opts:
        if not isinstance(opts["region_values"], dict):
            raise err("'region_values' must be a mapping code -> region name")
        opts["_region_table"] = {str(k).strip().upper(): str(v) for k, v in opts["region_values"].items()}
    if std_name in ("address", "addresses") and "kind" in opts:
        kinds = field_info(models.Address, "kind").literals or frozenset()
        if opts["kind"] not in kinds:
            raise err(f"address kind {opts['kind']!r} is not one of {sorted(kinds)}")
    if std_name == "const":
        opts["value"] = spec.const
        if spec.from_ is not None:
            raise err("a constant takes no 'from'")
        if info.literals is not None and spec.const not in info.literals:
            raise err(f"constant {spec.const!r} is not one of {allowed}")
        return CompiledField(name, info, std, opts)
    if std_name == "map" and "values" in opts:
        if not isinstance(opts["values"], dict):
            raise err("'values' must be a mapping raw -> canonical")
        opts["_table"] = {str(k).strip().lower(): v for k, v in opts["values"].items()}
        if info.literals is not None:
            bad = {v for v in (*opts["values"].values(), opts.get("default")) if v is not None} - info.literals
            if bad:
                raise err(f"value(s) {sorted(map(str, bad))} are not among {allowed}")
    if spec.from_ is None:
        raise err("needs 'from' (a path, a list of paths, or roles)")
    cf = CompiledField(name, info, std, opts, each=each)
    if spec.region_from is not None:
        if std_name not in ("phone", "phones"):
            raise err("'region_from' only applies to phone standardisers")
        cf.region = _compile_getter(spec.region_from, samples, lambda m: err(f"region_from: {m}"), True)
    if std.roles is None:
        if isinstance(spec.from_, dict):
            raise err(f"standardiser {std_name!r} takes one path (or a list of paths), not roles")
        cf.single = _compile_getter(spec.from_, samples, err, std.first_only)
    else:
        if not isinstance(spec.from_, dict):
            roles_txt = ", ".join(sorted(std.roles)) or "names of your choice"
            raise err(f"standardiser {std_name!r} takes roles ({roles_txt}) under 'from'")
        if not std.free_roles:
            unknown = set(spec.from_) - std.roles
            if unknown:
                raise err(f"standardiser {std_name!r} has no role(s) {sorted(unknown)} "
                          f"(roles: {', '.join(sorted(std.roles))})")
        missing = std.required_roles - set(spec.from_)
        if missing:
            raise err(f"standardiser {std_name!r} needs role(s) {sorted(missing)}")
        for role, path in spec.from_.items():
            cf.roles[role] = _compile_getter(path, samples, lambda m, _r=role: err(f"role '{_r}': {m}"),
                                             std.first_only)
    return cf


FORMULA_FLAG = "text.formula_like"


def _formula_inputs(inputs: Any) -> bool:
    values = inputs if isinstance(inputs, list) else [v for vs in inputs.values() for v in vs]
    for v in values:
        if v.__class__ is str and v and v[0] in FORMULA_STARTS and is_formula_like(v):
            return True
        if isinstance(v, list) and _formula_inputs(v):
            return True
    return False


def _formula_checked(std: Standardiser) -> Standardiser:
    """The standardiser plus the ``text.formula_like`` flag when a raw input would run as a spreadsheet
    formula (``=…``, ``@…``, ``-2+3+cmd|…``): whatever the standardiser makes of it, a steward should see
    that the source held it. Checked on the inputs so memoised results carry the flag too."""
    fn = std.fn

    def checked(fld: str, inputs: Any, ctx: Context, opts: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        upd, flags = fn(fld, inputs, ctx, opts)
        if inputs.__class__ is list:  # _formula_inputs inlined for the common case (runs on every memo miss)
            for v in inputs:
                if v.__class__ is str:
                    if v and v[0] in FORMULA_STARTS and is_formula_like(v):
                        return upd, (*flags, FORMULA_FLAG)
                elif isinstance(v, list) and _formula_inputs(v):
                    return upd, (*flags, FORMULA_FLAG)
            return upd, flags
        if _formula_inputs(inputs):
            flags = (*flags, FORMULA_FLAG)
        return upd, flags

    return replace(std, fn=checked)


def _check_required_fields(model: type[BaseModel], mapped: set[str], err: Any) -> None:
    for name, f in model.model_fields.items():
        if f.is_required() and name not in _ENGINE_FIELDS and name not in mapped:
            raise err(f"the {model.__name__} field {name!r} has no default and must be mapped")


def compile_target(kind: str, landing: str, lspec: LandingSpec, tspec: TargetSpec) -> CompiledTarget:
    model = ENTITY_MODELS.get(tspec.entity)
    if model is None:
        raise _fail(kind, landing, tspec.entity, None,
                    f"unknown canonical entity (known: {', '.join(ENTITY_MODELS)})")
    samples = [lspec.sample]
    fields: list[CompiledField] = []
    for name, raw in tspec.fields.items():

        def err(msg: str, _name: str = name) -> MappingError:
            return _fail(kind, landing, tspec.entity, _name, msg)

        fields.extend(_compile_field(name, raw, model, samples, err))
    mapped = {f.name for f in fields}

    def target_err(msg: str) -> MappingError:
        return _fail(kind, landing, tspec.entity, None, msg)

    _check_required_fields(model, mapped, target_err)
    for rule in [*tspec.required, *tspec.wanted]:
        if rule in _RULES:
            continue
        if rule not in model.model_fields:
            raise _fail(kind, landing, tspec.entity, rule,
                        f"'required' names an unknown field or rule (rules: {', '.join(sorted(_RULES))})")
        if rule not in mapped and rule not in _DERIVED:
            raise _fail(kind, landing, tspec.entity, rule, "is required but not mapped")
    # the national id cross-check needs birth date and gender computed first
    fields.sort(key=lambda f: f.name == "national_id")
    sid = None
    if tspec.source_id:
        sid = _compile_getter(tspec.source_id, samples,
                              lambda m: _fail(kind, landing, tspec.entity, "source_id", m))
    when = None
    if tspec.when:
        when = _compile_getter(tspec.when, samples, lambda m: _fail(kind, landing, tspec.entity, "when", m))
    return CompiledTarget(tspec.entity, model, fields, tuple(tspec.required), sid, tspec.source_id_prefix,
                          when, tspec.optional, tuple(tspec.wanted),
                          tuple((cf.run, cf.name, cf.info.literals) for cf in fields))


# --------------------------------------------------------------------------------------------------------------
# Applying


def _run_each(cf: CompiledField, node: Any, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
    std = cf.std
    assert std is not None and cf.each is not None
    values: list[Any] = []
    flags: list[str] = []
    extra: dict[str, Any] = {}
    for item in cf.each(node):
        upd, fl = _call(cf, std, item, ctx)
        flags.extend(fl)
        for k, x in upd.items():
            if k == cf.name:
                if isinstance(x, list):
                    values.extend(x)
                elif x is not None:
                    values.append(x)
            elif isinstance(x, list):
                extra[k] = extra.get(k, []) + x
            elif k not in extra:
                extra[k] = x
    if cf.info.is_list:
        return {cf.name: values, **extra}, tuple(flags)
    return {cf.name: values[0] if values else None, **extra}, tuple(flags)


def _bind(cf: CompiledField) -> CompiledField:
    """Specialise the per-record path of one field into a closure (the staging hot loop)."""
    if cf.nested is not None:
        plan = tuple((s.run, s.name) for s in cf.nested)  # sub-fields are bound already (_compile_field)
        cf.run = lambda node, ctx: _run_nested(cf, plan, node, ctx)
        return cf
    if cf.each is not None:
        cf.run = lambda node, ctx: _run_each(cf, node, ctx)
        return cf
    assert cf.std is not None
    fn, name, opts, single = cf.std.fn, cf.name, cf.options, cf.single
    if cf.region is None and single is None and cf.roles:
        roles = tuple(cf.roles.items())

        def run_roles(node: Any, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
            # _call for role-based fields (names, addresses), without its branches
            inputs = {role: g(node) for role, g in roles}
            if cf.memo is None:
                return fn(name, inputs, ctx, opts)
            return _memoised(cf, (ctx, *[_typed(v) for v in inputs.values()]), inputs, ctx)

        cf.run = run_roles
        return cf
    if cf.region is not None or single is None:
        std = cf.std
        cf.run = lambda node, ctx: _call(cf, std, node, ctx)
        return cf

    def run(node: Any, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
        inputs = single(node)
        memo = cf.memo
        if memo is None:
            return fn(name, inputs, ctx, opts)
        # _memo_key and the hit path of _memoised, inlined: this runs for every field of every record
        for v in inputs:
            if v.__class__ is not str:
                key: tuple[Any, ...] = (ctx, *[(x.__class__, x) for x in inputs])
                break
        else:
            key = (ctx, *inputs)
        try:
            hit = memo.get(key)
        except TypeError:  # unhashable input (a list or object reached by the path)
            return fn(name, inputs, ctx, opts)
        if hit is not None:
            cf.hits += 1
            return hit
        return _memoised(cf, key, inputs, ctx)

    cf.run = run
    return cf


_MEMO_MAX = 20_000
# after this many misses a field whose values hardly repeat (names, e-mails, ids) stops memoising
_MEMO_PROBE = 4_000


def _typed(values: list[Any]) -> tuple[Any, ...]:
    # 1 == 1.0 == True and 0 == False as dict keys: tag non-strings with their type so a memoised result
    # for sex=1 is never served for sex=True
    for v in values:
        if v.__class__ is not str:
            return tuple((v.__class__, v) for v in values)
    return tuple(values)


def _memo_key(ctx: Context, inputs: list[Any]) -> tuple[Any, ...]:
    return (ctx, *_typed(inputs))


def _record_region(cf: CompiledField, node: Any, ctx: Context) -> Context:
    assert cf.region is not None
    for v in cf.region(node):
        s = as_str(v)
        code = country_code(s) if s and len(s) <= 64 else None
        if code:
            return ctx._replace(phone_region=code) if code != ctx.phone_region else ctx
    return ctx


def _call(cf: CompiledField, std: Standardiser, node: Any, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
    if cf.region is not None:
        ctx = _record_region(cf, node, ctx)
    if cf.single is not None:
        inputs: Any = cf.single(node)
    elif cf.roles:
        inputs = {role: g(node) for role, g in cf.roles.items()}
    else:
        inputs = []
    if cf.memo is None:  # switched off: no key to build (names, streets: every value differs)
        return std.fn(cf.name, inputs, ctx, cf.options)
    if cf.single is not None:
        key: Any = _memo_key(ctx, inputs)
    elif cf.roles:
        key = (ctx, *[_typed(v) for v in inputs.values()])
    else:
        key = (ctx,)
    return _memoised(cf, key, inputs, ctx)


def _memoised(cf: CompiledField, key: tuple[Any, ...], inputs: Any, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Customer data repeats (cities, statuses, consent values, dates): memoise the adapter per field.
    Fields whose values hardly repeat switch the memo off after a probe, so it costs neither time nor
    memory there. Results are shared between records, so nothing downstream may mutate them."""
    memo = cf.memo
    assert memo is not None and cf.std is not None
    try:
        hit = memo.get(key)
    except TypeError:  # unhashable input (a list or object reached by the path)
        return cf.std.fn(cf.name, inputs, ctx, cf.options)
    if hit is not None:
        cf.hits += 1
        return hit
    cf.misses += 1
    if cf.misses >= _MEMO_PROBE and cf.hits * 4 < cf.misses:
        cf.memo = None  # under 20 % hits: not worth a dict look-up per record
        return cf.std.fn(cf.name, inputs, ctx, cf.options)
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    hit = memo[key] = cf.std.fn(cf.name, inputs, ctx, cf.options)
    return hit


def _run_nested(cf: CompiledField, plan: tuple[tuple[Any, str], ...], node: Any,
                ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A nested model (order lines …) per item; ``plan`` is (run, name) per sub-field of ``cf.nested``."""
    items = cf.each(node) if cf.each is not None else [node]
    values: list[dict[str, Any]] = []
    flags: list[str] = []
    for item in items:
        sub: dict[str, Any] = {}
        for run, name in plan:
            upd, fl = run(item, ctx)
            if fl:
                flags.extend(f"{name}.{c}" if "." not in c else c for c in fl)
            # first value wins, lists concatenate; never mutates ``upd`` or its values (memoised results
            # shared between records)
            for k, v in upd.items():
                old = sub.get(k)
                if old is None or (isinstance(old, list) and not old):
                    sub[k] = v
                elif isinstance(old, list) and isinstance(v, list) and v:
                    sub[k] = old + [x for x in v if x not in old]
        sub = {k: v for k, v in sub.items() if v is not None and not k.startswith("__")}
        if sub:
            values.append(sub)
    if cf.info.is_list:
        return {cf.name: values}, tuple(flags)
    return {cf.name: values[0] if values else None}, tuple(flags)


_INVALID_SUFFIXES = (".invalid", ".impossible", ".unparseable", ".checksum", ".possible", ".future", ".partial")


def _empty(v: Any) -> bool:
    return v is None or v == [] or v == {} or v == ""


class Mapper:
    """A compiled mapping for one source kind: ``map(landing_entity, source, source_id, payload, ctx)``."""

    def __init__(self, spec: MappingSpec) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.targets: dict[str, list[CompiledTarget]] = {}
        self.markers: dict[str, str | None] = {}
        for landing, lspec in spec.entities.items():
            if not lspec.records:
                raise _fail(spec.kind, landing, "?", None, "declares no records")
            self.targets[landing] = [compile_target(spec.kind, landing, lspec, t) for t in lspec.records]
            self.markers[landing] = lspec.malformed_marker

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(self.targets)

    def context(self, source: str, overrides: Mapping[str, Any] | None = None) -> Context:
        o = overrides or {}
        return Context(
            source=source,
            phone_region=str(o.get("phone_region") or self.spec.phone_region),
            dayfirst=bool(o["dayfirst"]) if o.get("dayfirst") is not None else self.spec.dayfirst,
            default_country=o.get("default_country", self.spec.default_country),
            today=o.get("today"),
        )

    def map(self, landing_entity: str, source_id: str, payload: Any, ctx: Context) -> MappingOutcome:
        """Map one landing payload. Never raises: problems become quarantine reasons or quality flags."""
        targets = self.targets.get(landing_entity)
        if targets is None:
            return MappingOutcome(reasons=["mapping.missing"],
                                  detail={"error": f"no mapping for entity {landing_entity!r} in {self.kind!r}"})
        if not isinstance(payload, dict):
            return MappingOutcome(reasons=["payload.malformed"],
                                  detail={"error": f"payload is {type(payload).__name__}, not an object"})
        marker = self.markers.get(landing_entity)
        if marker and payload.get(marker):
            return MappingOutcome(reasons=["payload.malformed"], detail={"error": str(payload.get(marker))[:200]})
        outcome = MappingOutcome()
        for t in targets:
            try:
                if t.when is not None and not t.when(payload):
                    continue
                if t.optional:
                    side = MappingOutcome()
                    self._map_target(t, source_id, payload, ctx, side)
                    if not side.reasons:
                        outcome.records.extend(side.records)
                    continue
                self._map_target(t, source_id, payload, ctx, outcome)
            except Exception as exc:  # a bug or pathological data must not lose the record
                outcome.reasons.append("payload.malformed")
                outcome.detail.setdefault("errors", []).append(f"{t.entity}: {type(exc).__name__}")
        if outcome.reasons:
            outcome.reasons = list(dict.fromkeys(outcome.reasons))
            outcome.records = []
        return outcome

    def _map_target(self, t: CompiledTarget, landing_sid: str, payload: dict, ctx: Context,
                    outcome: MappingOutcome) -> None:
        sid = landing_sid
        if t.source_id is not None:
            vals = t.source_id(payload)
            if not vals or isinstance(vals[0], dict | list):
                outcome.reasons.append("required.source_id_missing")
                return
            sid = str(vals[0])
        sid = f"{t.source_id_prefix}{sid}"
        out: dict[str, Any] = {"source": ctx.source, "source_id": sid}
        flags: dict[str, list[str]] = {}
        for run, name, literals in t.plan:
            upd, fl = run(payload, ctx)
            if literals is not None:
                v = upd.get(name)
                if v is not None and v not in literals:
                    upd = {**upd, name: None}
                    fl = (*fl, "value.invalid")
            if fl:
                flags.setdefault(name, []).extend(fl)
            # inline merge (never mutating memoised ``upd``): first value wins, lists concatenate
            for k, v in upd.items():
                old = out.get(k)
                if old is None or old == []:
                    out[k] = v
                elif v and old.__class__ is list and v.__class__ is list:
                    out[k] = old + [x for x in v if x not in old]
        if "__id_birth_date" in out or "__id_gender" in out:
            self._cross_check_id(out, flags)
        reasons = self._required(t, out, flags)
        if reasons:
            outcome.reasons.extend(reasons)
            outcome.detail.setdefault("fields", {}).update(
                {f: sorted(set(c)) for f, c in flags.items() if f in t.required or f in ("emails", "phones")}
            )
            return
        clean = {k: v for k, v in out.items() if v is not None}
        try:
            record = t.model.model_validate(clean).model_dump(mode="json")
        except ValidationError as exc:
            outcome.reasons.append("payload.malformed")
            outcome.detail.setdefault("validation", []).extend(
                f"{t.entity}.{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in exc.errors()[:10]
            )
            return
        cust = record.get("customer_source_id") if t.entity != "customers" else None
        quality = {f"{f}:{c}" for f, codes in flags.items() for c in codes}
        missing = [r.removeprefix("required.") for r in self._required_rules(t.wanted, out, flags)
                   if r.startswith("required.")] if t.wanted else None
        if missing:
            quality |= {"record:incomplete", *(f"record:{m}" for m in missing)}
        quality = sorted(quality)
        outcome.records.append(
            StagedOutput(t.entity, sid, f"{ctx.source}:{cust}" if cust else None, record, quality)
        )

    @staticmethod
    def _cross_check_id(out: dict[str, Any], flags: dict[str, list[str]]) -> None:
        id_birth = out.pop("__id_birth_date", None)
        id_gender = out.pop("__id_gender", None)
        if id_birth is not None:
            if out.get("birth_date") is None:
                out["birth_date"] = id_birth
                flags.setdefault("birth_date", []).append("birth_date.from_national_id")
            elif out["birth_date"] != id_birth:
                flags.setdefault("national_id", []).append("national_id.birth_date_mismatch")
        if id_gender is not None:
            if out.get("gender") is None:
                out["gender"] = id_gender
                flags.setdefault("gender", []).append("gender.from_national_id")
            elif out["gender"] != id_gender:
                flags.setdefault("national_id", []).append("national_id.gender_mismatch")

    @staticmethod
    def _required(t: CompiledTarget, out: dict[str, Any], flags: dict[str, list[str]]) -> list[str]:
        return Mapper._required_rules(t.required, out, flags)

    @staticmethod
    def _required_rules(rules: Iterable[str], out: dict[str, Any], flags: dict[str, list[str]]) -> list[str]:
        reasons: list[str] = []

        def invalid(fld: str) -> list[str]:
            return [c for c in flags.get(fld, ()) if c.endswith(_INVALID_SUFFIXES)]

        def places() -> list[Any]:
            return [a for a in out.get("addresses") or ()
                    if any((a.get(k) if isinstance(a, dict) else getattr(a, k, None))
                           for k in ("street", "city", "postal_code"))]

        for rule in rules:
            if rule == "reachable":  # a contact point or where they live
                if _empty(out.get("emails")) and _empty(out.get("phones")) and not places():
                    reasons.append("required.reachable_missing")
                    reasons.extend(invalid("phones") + invalid("emails"))
            elif rule == "identifiable":
                # something besides the name that tells the customer apart, as matching reads it: a contact point,
                # where they live, a birth date, an id number, a number of a possible length that failed validation
                if (_empty(out.get("emails")) and _empty(out.get("phones")) and not places()
                        and _empty(out.get("birth_date")) and _empty(out.get("national_id"))
                        and _empty(out.get("unverified_phones"))):
                    reasons.append("required.identifiable_missing")
                    reasons.extend(invalid("phones") + invalid("emails"))
            elif rule == "matchable":
                # anything matching compares to tell people together: a name or company, a contact point (a
                # number that failed validation too), an id number. Without one the record is nobody to link
                # (a city, a birth date alone)
                if (_empty(out.get("name")) and _empty(out.get("company")) and _empty(out.get("emails"))
                        and _empty(out.get("phones")) and _empty(out.get("unverified_phones"))
                        and _empty(out.get("national_id"))):
                    reasons.append("required.matchable_missing")
                    reasons.extend(invalid("name") + invalid("phones") + invalid("emails") + invalid("national_id"))
            elif rule == "contact":
                if _empty(out.get("emails")) and _empty(out.get("phones")):
                    reasons.append("required.contact_missing")
                    reasons.extend(invalid("phones") + invalid("emails"))
            elif rule == "name_or_company":
                if _empty(out.get("name")) and _empty(out.get("company")):
                    reasons.append("required.name_missing")
                    reasons.extend(invalid("name"))
            elif _empty(out.get(rule)):
                # the rule that broke, then why (phone.invalid, date.impossible …) when a value was there
                reasons.append(f"required.{rule}_missing")
                reasons.extend(invalid(rule))
        return reasons
