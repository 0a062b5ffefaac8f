"""Blocking: candidate pairs as the union of several keyed blocks, with caps.

A block whose key is shared by more than ``cap`` records (a company switchboard, a default e-mail,
a very common name) is not expanded to all its pairs: its records are sorted by ``sort`` and only
pairs within ``window`` positions are kept (sorted neighbourhood inside the block). This bounds the
pair count at O(n * cap) per rule whatever the data looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub.dedupe.prepare import KeyColumn, Prepared, _combine


@dataclass(frozen=True)
class BlockingRule:
    name: str
    keys: tuple[str, ...]  # empty tuple = one global block (pure sorted neighbourhood)
    sort: str = "name_sort"
    cap: int = 24
    window: int = 4


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("phone", ("phone_tail",), sort="name_sort", cap=16, window=3),
    BlockingRule("email", ("email",), sort="name_sort", cap=16, window=3),
    BlockingRule("national_id", ("national_id",), sort="name_sort", cap=12, window=3),
    BlockingRule("name_key+birth_year", ("name_key", "birth_year"), sort="dob"),
    BlockingRule("name_key+city", ("name_key", "city"), sort="dob", cap=24),
    BlockingRule("family+given_canon", ("family", "given_canon"), sort="dob", cap=24),
    BlockingRule("dob+given_init", ("dob", "given_init"), sort="name_sort"),
    BlockingRule("dob+family_init", ("dob", "family_init"), sort="name_sort_rev"),
    BlockingRule("family+postcode", ("family", "postcode"), sort="name_sort_rev", cap=12, window=3),
    BlockingRule("given+postcode", ("given", "postcode"), sort="name_sort", cap=12, window=3),
    BlockingRule("street+postcode", ("street", "postcode"), sort="name_sort", cap=16),
    BlockingRule("dob+postcode", ("dob", "postcode"), sort="name_sort"),
    BlockingRule("given+city", ("given", "city"), sort="name_sort_rev", cap=12, window=3),
    BlockingRule("family+city", ("family", "city"), sort="name_sort", cap=12, window=3),
    BlockingRule("sn:name", (), sort="name_sort", cap=0, window=2),
    BlockingRule("sn:name_rev", (), sort="name_sort_rev", cap=0, window=2),
)


def _rank(col: KeyColumn) -> np.ndarray:
    """Per-record lexicographic rank of the key value (missing sorts first)."""
    order = np.argsort(col.uniques.astype(str), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    if len(rank) == 0:
        return np.full(len(col.codes), -1, dtype=np.int64)
    return np.where(col.codes >= 0, rank[np.maximum(col.codes, 0)], -1)


def rule_pairs(p: Prepared, rule: BlockingRule, ranks: dict[str, np.ndarray]) -> np.ndarray:
    """Candidate pairs of one rule, encoded as ``lo * n + hi`` (int64, may contain duplicates)."""
    n = p.n
    if rule.keys:
        key = _combine(*(p.key(k) for k in rule.keys)).codes.astype(np.int64)
    else:
        key = np.zeros(n, dtype=np.int64)
    if rule.sort not in ranks:
        ranks[rule.sort] = _rank(p.key(rule.sort))
    srt = ranks[rule.sort]
    idx = np.flatnonzero(key >= 0)
    if not rule.keys:
        idx = idx[srt[idx] >= 0]  # global sorted neighbourhood only over records having the sort key
    if len(idx) < 2:
        return np.empty(0, dtype=np.int64)
    order = idx[np.lexsort((srt[idx], key[idx]))]
    g = key[order]
    _, start, counts = np.unique(g, return_index=True, return_counts=True)
    size = np.repeat(counts, counts)  # block size at each sorted position
    off = np.arange(len(order)) - np.repeat(start, counts)  # position inside its block
    # positions that still have a partner k places further on; shrinks quickly as k grows, so the
    # cost is O(pairs) rather than O(n * cap)
    active = np.flatnonzero(size > 1)
    out = []
    k = 0
    while len(active):
        k += 1
        active = active[(size[active] - off[active] - 1 >= k) & ((size[active] <= rule.cap) | (k <= rule.window))]
        if not len(active):
            break
        a, b = order[active], order[active + k]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        out.append(lo.astype(np.int64) * n + hi)
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def candidate_pairs(
    p: Prepared, rules: tuple[BlockingRule, ...] = DEFAULT_RULES, link_only: bool = False
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Union of all rules' pairs as sorted (left, right) index arrays, plus per-rule pair counts."""
    ranks: dict[str, np.ndarray] = {}
    parts, stats = [], {}
    for rule in rules:
        enc = rule_pairs(p, rule, ranks)
        if link_only and len(enc):
            enc = enc[p.source[enc // p.n] != p.source[enc % p.n]]
        stats[rule.name] = int(len(enc))
        parts.append(enc)
    enc = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    parts.clear()  # free the per-rule arrays before sorting (peak memory at 1M records)
    enc.sort()
    if len(enc):
        keep = np.empty(len(enc), dtype=bool)
        keep[0] = True
        np.not_equal(enc[1:], enc[:-1], out=keep[1:])
        enc = enc[keep]
        del keep
    stats["total"] = int(len(enc))
    left = (enc // p.n).astype(np.int32)
    enc -= left.astype(np.int64) * p.n
    return left, enc.astype(np.int32), stats
