"""``Model.model_validate(value).model_dump(mode="json")`` without pydantic, for values already in that form.

The 360 view is assembled from the hub's own JSON (staged records and golden records, each written by
``model_dump(mode="json")``) and figures computed in ``hub.customer360``; validating every view with pydantic
and dumping it again was the largest single cost of the stage. A writer made here by ``model_writer`` walks the
model's fields in order and returns what validate + dump would, taking a value only in the form the dump
itself writes (exact types; decimals, dates and times as the canonical text ``str(Decimal)`` /
``isoformat()``); anything else — another type or spelling pydantic would coerce, an unknown or missing
required field, a value pydantic would reject — raises ``Slow``, and the caller validates with the model as
before (same result, same errors). Floats are taken only where orjson writes them as ``json.dumps`` does
(``hub.store.orjson_exact``), so a written value can be hashed and stored by orjson without walking it.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter

from hub.store import orjson_exact

Writer = Callable[[Any], Any]


class Slow(Exception):
    """A value the fast writer does not take as it is: validate it with the model instead."""


def _str(v: Any) -> Any:
    if type(v) is str:
        return v
    raise Slow


def _int(v: Any) -> Any:
    # bool is an int subclass (excluded by the exact type); pydantic takes ints of any size, orjson only 64-bit
    # ones (json_bytes falls back to the standard encoder there)
    if type(v) is int:
        return v
    raise Slow


def _bool(v: Any) -> Any:
    if type(v) is bool:
        return v
    raise Slow


def _float(v: Any) -> Any:
    # NaN / infinities are dumped as null by pydantic: not taken; nor floats orjson writes otherwise than json.dumps
    if type(v) is float and math.isfinite(v) and orjson_exact(v):
        return v
    raise Slow


def _decimal(v: Any) -> Any:
    t = type(v)
    if t is str:
        try:
            d = Decimal(v)
        except InvalidOperation:
            raise Slow from None
        if d.is_finite() and str(d) == v:  # " 1.5", "1e2", "1_000", "NaN": pydantic reads them, writes otherwise
            return v
        raise Slow
    if t is Decimal and v.is_finite():
        return str(v)
    raise Slow


def _datetime(v: Any) -> Any:
    t = type(v)
    if t is str:
        try:
            dt = datetime.fromisoformat(v)
        except ValueError:
            raise Slow from None
        # naive, seconds or microseconds: the text pydantic writes for the value it reads ("...Z", "+08:00",
        # "10:00", ".123" are read and written otherwise)
        if dt.tzinfo is None and dt.isoformat() == v:
            return v
        raise Slow
    if t is datetime and v.tzinfo is None:
        return v.isoformat()
    raise Slow


def _date(v: Any) -> Any:
    if type(v) is str:
        try:
            d = date.fromisoformat(v)
        except ValueError:
            raise Slow from None
        if d.isoformat() == v:
            return v
    raise Slow


def _optional(inner: Writer) -> Writer:
    def write(v: Any) -> Any:
        return None if v is None else inner(v)
    return write


def _literal(allowed: frozenset[str]) -> Writer:
    def write(v: Any) -> Any:
        if type(v) is str and v in allowed:
            return v
        raise Slow
    return write


def list_writer(item: Writer) -> Writer:
    """A list of ``item``s (exactly a list)."""
    def write(v: Any) -> Any:
        if type(v) is not list:  # a tuple or set pydantic would take: validated instead
            raise Slow
        return [item(x) for x in v]
    return write


_SCALARS: dict[Any, Writer] = {str: _str, int: _int, bool: _bool, float: _float, Decimal: _decimal,
                               datetime: _datetime, date: _date}


def field_writer(annotation: Any) -> Writer:
    """The writer of one annotation; TypeError for an annotation it does not know (made at import: a model
    that gains a new kind of field fails loudly, never silently)."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(args) == 2 and len(rest) == 1:
            return _optional(field_writer(rest[0]))
        raise TypeError(f"no fast writer for {annotation!r}")
    if origin is Literal:
        values = get_args(annotation)
        if all(type(x) is str for x in values):
            return _literal(frozenset(values))
        raise TypeError(f"no fast writer for {annotation!r}")
    if origin is list:
        (item,) = get_args(annotation)
        return list_writer(field_writer(item))
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_writer(annotation)
    raise TypeError(f"no fast writer for {annotation!r}")


_MISSING = object()


def model_writer(model: type[BaseModel], *, exclude: Iterable[str] = (), ignore_extra: bool = False,
                 writers: Mapping[str, Writer] | None = None) -> Writer:
    """``model.model_validate(v).model_dump(mode="json", exclude=set(exclude))`` for a dict ``v`` in dump form
    (else ``Slow``). ``exclude``d fields must be absent from ``v`` (they are not checked). ``ignore_extra``:
    keys that are no field are dropped (for the callers that filtered them out before validating); else they
    raise ``Slow`` (the models forbid extra fields). ``writers``: a field's own writer instead of its
    annotation's (a nested model dumped with exclusions)."""
    excluded = frozenset(exclude)
    ns: dict[str, Any] = {"Slow": Slow, "M": _MISSING, "names": frozenset(model.model_fields), "excluded": excluded}
    # the writer is generated as one function per model: type checks of plain fields inline (a call per field
    # cost more than pydantic's own validation)
    code = ["def write(v):", "    if type(v) is not dict: raise Slow"]
    if not ignore_extra:
        code.append("    if not v.keys() <= names: raise Slow")
    if excluded:
        code.append("    if not excluded.isdisjoint(v): raise Slow")
    code += ["    g = v.get", "    out = {}"]
    for i, (name, info) in enumerate(model.model_fields.items()):
        if info.alias not in (None, name):
            raise TypeError(f"{model.__name__}.{name}: an alias; no fast writer")
        if name in excluded:
            continue
        if info.is_required():
            missing = "raise Slow"  # the model's error
        else:
            default = TypeAdapter(info.annotation).dump_python(info.get_default(call_default_factory=True),
                                                                mode="json")
            if type(default) in (list, dict):
                ns[f"D{i}"] = default
                missing = f"out[{name!r}] = D{i}.copy()"  # a fresh copy: no two records share a mutable default
            elif default is None or type(default) in (str, int, bool):
                missing = f"out[{name!r}] = {default!r}"
            else:
                raise TypeError(f"{model.__name__}.{name}: default {default!r}")
        annotation, optional = _unwrap_optional(info.annotation)
        plain = _PLAIN.get(annotation)
        own = (writers or {}).get(name)
        code.append(f"    x = g({name!r}, M)")
        if own is None and (plain is not None or get_origin(annotation) is Literal):
            if plain is not None:
                check = f"type(x) is {plain}"
            else:
                ns[f"L{i}"] = frozenset(get_args(annotation))
                if not all(type(a) is str for a in ns[f"L{i}"]):
                    raise TypeError(f"no fast writer for {annotation!r}")
                check = f"type(x) is str and x in L{i}"
            if optional:
                check = f"x is None or {check}"
            code += [f"    if {check}: out[{name!r}] = x", f"    elif x is M: {missing}", "    else: raise Slow"]
        else:
            ns[f"W{i}"] = own or field_writer(annotation)
            code += [f"    if x is M: {missing}"]
            if optional and own is None:
                code += [f"    elif x is None: out[{name!r}] = None"]
            code += [f"    else: out[{name!r}] = W{i}(x)"]
    code.append("    return out")
    exec("\n".join(code), ns)  # noqa: S102 - generated from the model's own field names and types
    write: Writer = ns["write"]
    return write


# types whose values pydantic takes and dumps unchanged when they are exactly of the type (bool is no int here)
_PLAIN = {str: "str", int: "int", bool: "bool"}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(args) == 2 and len(rest) == 1:
            return rest[0], True
        raise TypeError(f"no fast writer for {annotation!r}")
    return annotation, False
