"""What the quality dimensions read of a golden customer, worked out once when the golden build writes it.

The consistency dimension compares every record of a golden customer of several records with the golden record
(name, birth date, national id), and the report's completeness counts the fields each golden record holds. Both
read JSON: every active golden record and every staged customer of such a golden customer, on every sync (at a
million people a pass over ~1.5M staged records and ~1M golden records after any change). The golden build has
those values in hand when it writes a golden record, so it keeps the figures in ``golden_customer.quality_facts``
(``golden_facts``), and the dimensions count the distinct texts from an index (``ix_golden_facts``).

The text is canonical JSON, the same for the same figures (most golden customers share a few texts):
``{"c": <golden_completeness as bits>}``, and for a golden customer of several records also ``"m"``: per source
``[records compared, records in conflict]``, and ``"k"``: how many of its records conflict on each field.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from rapidfuzz import fuzz

from hub.quality.completeness import COMPLETENESS_FIELDS, golden_completeness

_DIGITS = re.compile(r"[\d_\W]+", re.UNICODE)

# the keys of a staged customer record (and of a golden record, besides GOLDEN_KEYS_READ) the comparison reads
COMPARED_KEYS: tuple[Any, ...] = (("name", "name_key"), "name_key", "birth_date", "national_id")


def name_tokens(rec: Mapping[str, Any], memo: dict[str, list[str]] | None = None) -> list[str]:
    """The words of a record's romanised name key; ``memo`` (key -> words, shared and never changed) keeps the
    words of a name key met before."""
    name = rec.get("name") or {}
    key = str((name.get("name_key") if isinstance(name, Mapping) else None) or rec.get("name_key") or "")
    if memo is not None and key in memo:
        return memo[key]
    words = [t for t in _DIGITS.sub(" ", key.lower()).split() if t]
    if memo is not None:
        memo[key] = words
    return words


def names_agree(a: list[str], b: list[str]) -> bool:
    """Romanised name keys of two records could name the same person (a missing name never conflicts).

    Lenient on purpose: a shared word (surname or given name), the same letters split differently
    ('xubinhai' / 'binhai xu') or a near spelling all agree; only clearly different names conflict.
    """
    if not a or not b or set(a) & set(b):
        return True
    joined_a, joined_b = "".join(a), "".join(b)
    if joined_a in ("".join(b), "".join(reversed(b))) or joined_b in ("".join(a), "".join(reversed(a))):
        return True
    return fuzz.token_sort_ratio(" ".join(a), " ".join(b)) >= 80


def _conflicts(golden_birth: Any, golden_nid: Any, golden_words: list[str], member: Mapping[str, Any],
               memo: dict[str, list[str]] | None) -> list[str]:
    """The fields on which a record (its staged JSON, or as far as ``COMPARED_KEYS`` go) disagrees with its
    golden record (its birth date, national id and name words): birth date, national id, name (in that order)."""
    found = []
    birth = member.get("birth_date")
    if birth and golden_birth and str(birth) != str(golden_birth):
        found.append("birth_date")
    nid = member.get("national_id")
    if nid and golden_nid and nid != golden_nid:
        found.append("national_id")
    if not names_agree(name_tokens(member, memo), golden_words):
        found.append("name")
    return found


# the facts text of each distinct figure (completeness bits, per source [compared, in conflict], conflicts per
# field): most golden customers share a few, and encoding each was a third of working the facts out
_TEXTS: dict[tuple, str] = {}
_TEXTS_KEPT = 65536


def golden_facts(golden: Mapping[str, Any], members: Iterable[tuple[str, Mapping[str, Any]]],
                 memo: dict[str, list[str]] | None = None) -> str:
    """The ``quality_facts`` text of a golden record (its JSON) and its records, (source, staged JSON) each:
    only a golden customer of several records is compared with them."""
    complete = golden_completeness(golden)
    bits = sum(1 << i for i, f in enumerate(COMPLETENESS_FIELDS) if complete[f])
    members = list(members)
    per: dict[str, list[int]] = {}
    kinds: dict[str, int] = {}
    if len(members) < 2:  # most golden customers: nothing to compare
        key: tuple = (bits, (), ())
    else:
        birth, nid, words = golden.get("birth_date"), golden.get("national_id"), name_tokens(golden, memo)
        for source, member in members:
            found = _conflicts(birth, nid, words, member, memo)
            counts = per.get(source)
            if counts is None:
                counts = per[source] = [0, 0]
            counts[0] += 1
            if found:
                counts[1] += 1
                for kind in found:
                    kinds[kind] = kinds.get(kind, 0) + 1
        key = (bits, tuple(sorted((s, c, b) for s, (c, b) in per.items())), tuple(sorted(kinds.items())))
    text = _TEXTS.get(key)
    if text is None:
        facts: dict[str, Any] = {"c": bits}
        if per:
            facts["m"] = per
        if kinds:
            facts["k"] = kinds
        text = json.dumps(facts, sort_keys=True, separators=(",", ":"))
        if len(_TEXTS) < _TEXTS_KEPT:
            _TEXTS[key] = text
    return text


class FactsTally:
    """The figures of many golden customers from their ``quality_facts`` texts, each distinct text once."""

    def __init__(self) -> None:
        self.golden = 0
        self.present: Counter[str] = Counter()  # golden records holding each completeness field
        self.several = 0  # golden customers of several records
        self.with_conflicts = 0
        self.checked: Counter[str] = Counter()  # per source: records compared with their golden record
        self.conflicting: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()

    def add(self, text: str, n: int) -> None:
        """``n`` golden customers whose facts are ``text``."""
        facts = json.loads(text)
        self.golden += n
        bits = int(facts["c"])
        for i, f in enumerate(COMPLETENESS_FIELDS):
            if bits >> i & 1:
                self.present[f] += n
        per = facts.get("m")
        if per is None:
            return
        self.several += n
        if any(bad for _, bad in per.values()):
            self.with_conflicts += n
        for source, (checked, bad) in per.items():
            self.checked[source] += n * checked
            self.conflicting[source] += n * bad
        for kind, k in (facts.get("k") or {}).items():
            self.kinds[kind] += n * k
