"""Field paths into source payloads: parsing, fast evaluation and validation against a sample shape.

Grammar (one path)::

    billing.first_name                      nested keys
    contact_mechanisms[type=email].value    list items whose ``type`` is ``email`` (fan-out)
    contact_mechanisms[type=phone|mobile]   several accepted values
    line_items[].sku                        every item of a list
    line_items[0].sku                       one item by index
    ['addresses.'][].city                   a key that itself contains dots (Tryton's ``"addresses."``)
    [dcontext=from-internal].dst            a condition on an object: ``dst`` only when it matches

Alternatives are written ``first_name | billing.first_name``: values of the first alternative come first,
so a scalar field takes the first non-empty one and a list field gets them all, in order.

A path evaluates to a *list* of non-empty values (``None`` and ``""`` dropped), because a path through a
list fans out. Evaluation never raises on any payload: a path that does not fit the data yields ``[]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_KEY_RE = re.compile(r"[A-Za-z_$@][A-Za-z0-9_\-$@]*")
_QUOTED_RE = re.compile(r"\[\s*'([^']+)'\s*\]|\[\s*\"([^\"]+)\"\s*\]")
_SELECTOR_RE = re.compile(r"\[([^\]'\"]*)\]")
_FILTER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_\-.]*)\s*=\s*([^=]+?)\s*$")


class PathError(ValueError):
    """A path that cannot be parsed, or that does not exist in the declared sample payload."""


@dataclass(frozen=True, slots=True)
class Key:
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class AllItems:
    pass


@dataclass(frozen=True, slots=True)
class Filter:
    key: str
    values: frozenset[str]


Step = Key | Index | AllItems | Filter


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets and quotes (``|`` also separates filter values inside ``[...]``)."""
    parts, depth, quote, buf = [], 0, "", []
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_path(text: str) -> tuple[Step, ...]:
    """Parse one path (no ``|`` alternatives) into steps; raises PathError when malformed."""
    if not isinstance(text, str) or not text.strip():
        raise PathError(f"empty path {text!r}")
    s = text.strip()
    steps: list[Step] = []
    pos = 0
    expect_key = True  # at the start and after a '.'
    while pos < len(s):
        ch = s[pos]
        if ch == "[":
            m = _QUOTED_RE.match(s, pos)
            if m:
                steps.append(Key(m.group(1) or m.group(2)))
                pos = m.end()
                expect_key = False
                continue
            m = _SELECTOR_RE.match(s, pos)
            if not m:
                raise PathError(f"malformed selector in path {text!r} at position {pos}")
            sel = m.group(1).strip()
            if not steps and (sel == "" or sel.lstrip("-").isdigit()):
                raise PathError(f"path {text!r} starts with a list selector; name the list first")
            if sel == "":
                steps.append(AllItems())
            elif sel.lstrip("-").isdigit():
                steps.append(Index(int(sel)))
            else:
                fm = _FILTER_RE.match(sel)
                if not fm:
                    raise PathError(f"malformed filter [{sel}] in path {text!r} (expected [key=value|value])")
                values = frozenset(v.strip() for v in fm.group(2).split("|") if v.strip())
                if not values:
                    raise PathError(f"filter [{sel}] in path {text!r} has no value")
                steps.append(Filter(fm.group(1), values))
            pos = m.end()
            expect_key = False
            continue
        if ch == ".":
            if expect_key:
                raise PathError(f"unexpected '.' in path {text!r} at position {pos}")
            pos += 1
            expect_key = True
            if pos >= len(s):
                raise PathError(f"path {text!r} ends with '.'")
            continue
        if not expect_key:
            raise PathError(f"expected '.' or '[' in path {text!r} at position {pos}")
        m = _KEY_RE.match(s, pos)
        if not m:
            raise PathError(f"malformed key in path {text!r} at position {pos}")
        steps.append(Key(m.group(0)))
        pos = m.end()
        expect_key = False
    if expect_key:
        raise PathError(f"path {text!r} is incomplete")
    return tuple(steps)


def parse_alternatives(text: str) -> tuple[tuple[Step, ...], ...]:
    """Parse ``a | b | c`` into one step tuple per alternative."""
    if not isinstance(text, str):
        raise PathError(f"a path must be a string, not {type(text).__name__}")
    alts = [p.strip() for p in _split_top(text, "|")]
    if any(not a for a in alts):
        raise PathError(f"empty alternative in path {text!r}")
    return tuple(parse_path(a) for a in alts)


def _match(value: Any, accepted: frozenset[str]) -> bool:
    if value is None or isinstance(value, dict | list):
        return False
    if isinstance(value, bool):
        return ("true" if value else "false") in accepted
    return str(value) in accepted


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _step_fn(step: Step) -> Callable[[list[Any]], list[Any]]:
    if isinstance(step, Key):
        name = step.name

        def key(nodes: list[Any]) -> list[Any]:
            return [n[name] for n in nodes if isinstance(n, dict) and name in n]

        return key
    if isinstance(step, Index):
        i = step.index

        def index(nodes: list[Any]) -> list[Any]:
            out = []
            for n in nodes:
                if isinstance(n, list) and -len(n) <= i < len(n):
                    out.append(n[i])
            return out

        return index
    if isinstance(step, AllItems):

        def all_items(nodes: list[Any]) -> list[Any]:
            out: list[Any] = []
            for n in nodes:
                if isinstance(n, list):
                    out.extend(n)
            return out

        return all_items
    fkey, accepted = step.key, step.values

    def filt(nodes: list[Any]) -> list[Any]:
        out = []
        for n in nodes:
            if isinstance(n, list):
                out.extend(it for it in n if isinstance(it, dict) and _match(it.get(fkey), accepted))
            elif isinstance(n, dict) and _match(n.get(fkey), accepted):
                out.append(n)  # a condition on an object
        return out

    return filt


Getter = Callable[[Any], list[Any]]


def _compile_one(steps: tuple[Step, ...]) -> Getter:
    # Fast path for the most common shape: plain nested keys without lists.
    if all(isinstance(s, Key) for s in steps):
        names = tuple(s.name for s in steps)  # type: ignore[union-attr]
        if len(names) == 1:
            (only,) = names

            def one(payload: Any) -> list[Any]:
                if not isinstance(payload, dict):
                    return []
                v = payload.get(only)
                if v is None or (v.__class__ is str and not v.strip()):
                    return []
                return [v]

            return one

        def plain(payload: Any) -> list[Any]:
            node = payload
            for name in names:
                if not isinstance(node, dict):
                    return []
                node = node.get(name)
            if node is None or (node.__class__ is str and not node.strip()):
                return []
            return [node]

        return plain
    list_steps = [i for i, st in enumerate(steps) if not isinstance(st, Key)]
    if len(list_steps) == 1 and isinstance(steps[list_steps[0]], Filter | AllItems):
        return _compile_list_path(steps, list_steps[0])
    fns = tuple(_step_fn(s) for s in steps)

    def general(payload: Any) -> list[Any]:
        nodes = [payload]
        for fn in fns:
            nodes = fn(nodes)
            if not nodes:
                return nodes
        return [n for n in nodes if not _empty(n)]

    return general


def _walk(names: tuple[str, ...], node: Any) -> Any:
    for name in names:
        if node.__class__ is not dict:
            return None
        node = node.get(name)
    return node


def _compile_list_path(steps: tuple[Step, ...], at: int) -> Getter:
    """``a.b[key=x|y].c`` / ``a[].c`` in one pass over the list (meta_data, contact mechanisms …)."""
    prefix = tuple(s.name for s in steps[:at])  # type: ignore[union-attr]
    suffix = tuple(s.name for s in steps[at + 1 :])  # type: ignore[union-attr]
    sel = steps[at]
    fkey = sel.key if isinstance(sel, Filter) else None
    accepted = sel.values if isinstance(sel, Filter) else frozenset()

    def list_path(payload: Any) -> list[Any]:
        node = _walk(prefix, payload)
        if node.__class__ is dict and fkey is not None:
            items = [node] if _match(node.get(fkey), accepted) else []  # a condition on an object
        elif node.__class__ is list:
            items = node
        else:
            return []
        out: list[Any] = []
        for it in items:
            if fkey is not None:
                if it.__class__ is not dict:
                    continue
                v = it.get(fkey)
                if not (v in accepted if v.__class__ is str else _match(v, accepted)):
                    continue
            x = _walk(suffix, it) if suffix else it
            if x is not None and not (x.__class__ is str and not x.strip()):
                out.append(x)
        return out

    return list_path


def compile_path(text: str, first: bool = False) -> Getter:
    """Compile ``a | b`` into a function payload -> list of non-empty values (never raises on data).

    ``first=True``: stop at the first alternative that yields something (for single-valued reads)."""
    getters = tuple(_compile_one(alt) for alt in parse_alternatives(text))
    if len(getters) == 1:
        return getters[0]
    if first:

        def first_hit(payload: Any) -> list[Any]:
            for g in getters:
                got = g(payload)
                if got:
                    return got
            return []

        return first_hit

    def alternatives(payload: Any) -> list[Any]:
        out: list[Any] = []
        for g in getters:
            out += g(payload)
        return out

    return alternatives


def _describe(steps: tuple[Step, ...], upto: int) -> str:
    parts: list[str] = []
    for s in steps[:upto]:
        if isinstance(s, Key):
            parts.append(("." if parts else "") + (s.name if _KEY_RE.fullmatch(s.name) else f"['{s.name}']"))
        elif isinstance(s, Index):
            parts.append(f"[{s.index}]")
        elif isinstance(s, AllItems):
            parts.append("[]")
        else:
            parts.append(f"[{s.key}={'|'.join(sorted(s.values))}]")
    return "".join(parts) or "<payload>"


def check_shape(text: str, samples: list[Any]) -> list[Any]:
    """Walk ``text`` through the sample payload(s) by key *existence* (values may be null in a sample).

    Returns the sample nodes the path reaches (used to validate paths relative to an ``each`` list).
    Raises PathError naming the first step that does not exist, with the keys that do.
    """
    reached: list[Any] = []
    for steps in parse_alternatives(text):
        nodes = list(samples)
        for i, step in enumerate(steps):
            where = _describe(steps, i)
            if isinstance(step, Key):
                dicts = [n for n in nodes if isinstance(n, dict)]
                if not dicts:
                    raise PathError(f"'{where}' is not an object in the sample payload (cannot read {step.name!r})")
                nxt = [d[step.name] for d in dicts if step.name in d]
                if not any(step.name in d for d in dicts):
                    known = sorted({k for d in dicts for k in d})
                    raise PathError(
                        f"unknown field {step.name!r} at '{where}' (sample has: {', '.join(known[:40])})"
                    )
                nodes = nxt
            elif isinstance(step, Filter) and any(isinstance(n, dict) for n in nodes):
                dicts = [n for n in nodes if isinstance(n, dict)]
                if not any(step.key in d for d in dicts):
                    known = sorted({k for d in dicts for k in d})
                    raise PathError(f"condition key {step.key!r} not in '{where}' (it has: {', '.join(known[:40])})")
                nodes = dicts
            else:
                lists = [n for n in nodes if isinstance(n, list)]
                if not lists:
                    raise PathError(f"'{where}' is not a list in the sample payload")
                items = [it for lst in lists for it in lst]
                if not items:
                    raise PathError(f"list '{where}' is empty in the sample payload; give it one item")
                if isinstance(step, Filter):
                    dict_items = [it for it in items if isinstance(it, dict)]
                    if not any(step.key in it for it in dict_items):
                        known = sorted({k for it in dict_items for k in it})
                        raise PathError(
                            f"filter key {step.key!r} not in the items of '{where}' (items have: {', '.join(known)})"
                        )
                    matching = [it for it in dict_items if _match(it.get(step.key), step.values)]
                    # the sample need not contain every filtered value: the item shape is what matters
                    nodes = matching or dict_items
                else:
                    nodes = items
        reached.extend(nodes)
    return reached
