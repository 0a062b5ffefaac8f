"""Blocking: candidate pairs as the union of several keyed blocks, with caps.

A block whose key is shared by more than ``cap`` records (a company switchboard, a default e-mail,
a very common name) is not expanded to all its pairs: its records are sorted by ``sort`` and only
pairs within ``window`` positions are kept (sorted neighbourhood inside the block). This bounds the
pair count at O(n * cap) per rule whatever the data looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hub.dedupe.arrays import distinct
from hub.dedupe.parallel import fork_map
from hub.dedupe.prepare import KeyColumn, Prepared, _combine

PARALLEL_MIN_RECORDS = 100_000  # smaller inputs block faster in one process than forking


@dataclass(frozen=True)
class BlockingRule:
    name: str
    keys: tuple[str, ...]  # empty tuple = one global block (pure sorted neighbourhood)
    sort: str = "name_sort"
    cap: int = 24
    window: int = 4
    # "deletions": one key only; a record is in the block of its value and of every value with one character
    # deleted, so ids and phones one typo apart (substituted, inserted, dropped or swapped digit) still meet
    variants: str = ""
    one_word: bool = False  # keep only pairs where a record's name is one word (no family or no given part)


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("phone", ("phone_tail",), sort="name_sort", cap=16, window=3),
    BlockingRule("email", ("email",), sort="name_sort", cap=16, window=3),
    BlockingRule("national_id", ("national_id",), sort="name_sort", cap=12, window=3),
    BlockingRule("national_id~1", ("national_id",), sort="name_sort", cap=12, window=3, variants="deletions"),
    BlockingRule("phone~1", ("phone",), sort="name_sort", cap=8, window=2, variants="deletions"),
    BlockingRule("given+birth_year", ("given", "birth_year"), sort="name_sort"),
    BlockingRule("family+birth_year", ("family", "birth_year"), sort="name_sort_rev"),
    BlockingRule("name_key+birth_year", ("name_key", "birth_year"), sort="dob"),
    BlockingRule("name_key+city", ("name_key", "city"), sort="dob", cap=24),
    BlockingRule("family+given_canon", ("family", "given_canon"), sort="dob", cap=24),
    BlockingRule("dob+given_init", ("dob", "given_init"), sort="name_sort"),
    BlockingRule("dob+family_init", ("dob", "family_init"), sort="name_sort_rev"),
    BlockingRule("family+postcode", ("family", "postcode"), sort="name_sort_rev", cap=12, window=3),
    BlockingRule("given+postcode", ("given", "postcode"), sort="name_sort", cap=12, window=3),
    BlockingRule("street+postcode", ("street", "postcode"), sort="name_sort", cap=16),
    # an ERP that keeps no postcode: the house and the city (a typo'd name still meets its own address)
    BlockingRule("street+city", ("street", "city"), sort="name_sort", cap=16),
    BlockingRule("dob+postcode", ("dob", "postcode"), sort="name_sort"),
    BlockingRule("given+city", ("given", "city"), sort="name_sort_rev", cap=12, window=3),
    BlockingRule("family+city", ("family", "city"), sort="name_sort", cap=12, window=3),
    # one-word names run together (xubopeng, mingbinchau) meet the full name in either order
    BlockingRule("name_concat", ("name_concat",), sort="dob", cap=12, window=3, one_word=True),
    BlockingRule("name_concat_rev", ("name_concat_rev",), sort="dob", cap=12, window=3, one_word=True),
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


MIN_DELETION_LEN = 6  # shorter values have too many neighbours one deletion away


_HASH_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier of the variants' polynomial hash


def _row_hashes(cp: np.ndarray, powers: np.ndarray) -> np.ndarray:
    """64-bit polynomial hash of each row of code points (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        return (cp.astype(np.uint64) * powers[None, : cp.shape[1]]).sum(axis=1, dtype=np.uint64)


def deletion_variants(col: KeyColumn, table: VariantTable | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(record index, variant code, variant ids) — a row for every record's value and each of its distinct
    one-character deletions; ``ids[code]`` is the variant's 64-bit hash, the same in every batch of records.
    ``table``: ``variant_table(col.uniques)`` when the caller has it (several slots share one value table).

    Vectorised on a (values x length) array of code points: 1M phone numbers have ~12M variants, which as
    Python strings cost ~1 GB per rule (twice over when the rules run in two workers). Two different
    variants share a hash with probability ~2^-64: at worst one extra candidate pair, which the comparison
    then judges."""
    cnt, start, vcode, ids = table if table is not None else variant_table(col.uniques)
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    rec = np.flatnonzero(col.codes >= 0)
    rec = rec[cnt[col.codes[rec]] > 0]
    c = col.codes[rec]
    reps = cnt[c]
    # position of each row inside its record's run of variants
    offs = np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
    rows = np.repeat(start[c], reps) + offs
    return np.repeat(rec, reps).astype(np.int64), vcode[rows], ids


# per distinct value: its number of variants, the start of its run of rows, then per row the variant code, and
# the variants' 64-bit hashes (code -> hash)
VariantTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def variant_table(uniques: np.ndarray) -> VariantTable:
    """The one-character deletions of every distinct value (of MIN_DELETION_LEN or more characters): computed
    once per value table and shared by every slot that codes its values in it."""
    cnt0 = np.zeros(len(uniques), dtype=np.int64)
    empty = (cnt0, cnt0, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64))
    if len(uniques) == 0:
        return empty
    arr = np.asarray(uniques, dtype=str)
    lens = np.char.str_len(arr)
    eligible = np.flatnonzero(lens >= MIN_DELETION_LEN)
    if not len(eligible):
        return empty
    width = arr.dtype.itemsize // 4
    cp = np.zeros((len(eligible), width + 1), dtype=np.uint32)  # zero-padded, one spare column
    cp[:, :width] = arr[eligible].view(np.uint32).reshape(len(eligible), width)
    del arr
    powers = np.cumprod(np.full(width + 1, _HASH_MULT, dtype=np.uint64), dtype=np.uint64)
    le = lens[eligible]
    owners, hashes = [eligible], [_row_hashes(cp[:, :width], powers)]  # the value itself
    for k in range(width):
        sel = np.flatnonzero(le > k)
        if not len(sel):
            break
        owners.append(eligible[sel])
        hashes.append(_row_hashes(np.concatenate([cp[sel, :k], cp[sel, k + 1:]], axis=1), powers))
    own, hv = np.concatenate(owners), np.concatenate(hashes)
    del owners, hashes, cp
    o = np.lexsort((hv, own))
    own, hv = own[o], hv[o]
    keep = np.ones(len(own), dtype=bool)
    keep[1:] = (own[1:] != own[:-1]) | (hv[1:] != hv[:-1])  # 1122 minus either 1 is one variant
    own, hv = own[keep], hv[keep]
    vcode, ids = pd.factorize(hv)
    cnt = np.bincount(own, minlength=len(uniques))
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    return cnt, start, vcode.astype(np.int64), np.asarray(ids, dtype=np.uint64)


def rule_keys(p: Prepared, rule: BlockingRule) -> tuple[np.ndarray, np.ndarray]:
    """(record index, block key code) rows of one keyed rule; a record has several rows with variants, and
    one per further phone / e-mail for a rule on one identifier key."""
    slot_cols = [s[rule.keys[0]] for s in p.slots] if len(rule.keys) == 1 and p.slots and \
        rule.keys[0] in p.slots[0] else []
    if rule.variants == "deletions":
        if not slot_cols:
            rec, code, _ = deletion_variants(p.key(rule.keys[0]))
            return rec, code
        recs, hashes = [], []
        first = p.key(rule.keys[0])
        table = variant_table(first.uniques)  # computed once: the slots code their values in the same table
        for col in [first, *slot_cols]:
            rec, code, ids = deletion_variants(col, table if col.uniques is first.uniques else None)
            recs.append(rec)
            hashes.append(ids[code])
        code, _ = pd.factorize(np.concatenate(hashes))
        return np.concatenate(recs), code.astype(np.int64)
    if slot_cols:  # one value table for every slot: codes are block keys
        codes = np.concatenate([p.key(rule.keys[0]).codes, *(c.codes for c in slot_cols)]).astype(np.int64)
        rec = np.flatnonzero(codes >= 0)
        return (rec % p.n).astype(np.int64), codes[rec]
    key = _combine(*(p.key(k) for k in rule.keys)).codes.astype(np.int64)
    rec = np.flatnonzero(key >= 0)
    return rec.astype(np.int64), key[rec]


def rule_key_strings(p: Prepared, rule: BlockingRule) -> tuple[np.ndarray, np.ndarray]:
    """(record index, block key text) rows of one keyed rule — the same blocks as :func:`rule_keys`, spelled
    as values so that they mean the same in another batch of records (the golden stage's block index)."""
    if rule.variants == "deletions":
        rec, code, ids = deletion_variants(p.key(rule.keys[0]))
        return rec, np.char.mod("%016x", ids[code]).astype(object)
    cols = [p.key(k).values() for k in rule.keys]
    ok = np.ones(p.n, dtype=bool)
    for c in cols:
        ok &= c != ""
    joined = pd.Series(cols[0][ok]).astype(str)
    for c in cols[1:]:
        joined = joined + "|" + pd.Series(c[ok]).astype(str).to_numpy()
    return np.flatnonzero(ok).astype(np.int64), joined.to_numpy(dtype=object)


def _block_pairs(rec: np.ndarray, key: np.ndarray, srt: np.ndarray, n: int, cap: int, window: int,
                 new: np.ndarray | None = None) -> np.ndarray:
    """Pairs of records sharing a key, encoded ``lo * n + hi``; a block over ``cap`` pairs only records
    within ``window`` positions in ``srt`` order. With ``new`` (bool per record): only the pairs with a new
    record, from the blocks holding one (whole, so that positions and sizes are the full run's)."""
    if new is not None:
        rows = new[rec]
        if not rows.any():
            return np.empty(0, dtype=np.int64)
        if not rows.all():
            keep = np.isin(key, distinct(key[rows]))
            rec, key = rec[keep], key[keep]
    if len(rec) < 2:
        return np.empty(0, dtype=np.int64)
    o = np.lexsort((srt[rec], key))
    order, g = rec[o], key[o]
    _, start, counts = np.unique(g, return_index=True, return_counts=True)
    size = np.repeat(counts, counts)  # block size at each sorted position
    off = np.arange(len(order)) - np.repeat(start, counts)  # position inside its block
    if new is not None:
        return _pairs_of_new(order, size, off, new, n, cap, window)
    # positions that still have a partner k places further on; shrinks quickly as k grows, so the
    # cost is O(pairs) rather than O(n * cap)
    active = np.flatnonzero(size > 1)
    out = []
    k = 0
    while len(active):
        k += 1
        active = active[(size[active] - off[active] - 1 >= k) & ((size[active] <= cap) | (k <= window))]
        if not len(active):
            break
        a, b = order[active], order[active + k]
        keep = a != b
        lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        out.append(lo.astype(np.int64) * n + hi)
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def _pairs_of_new(order: np.ndarray, size: np.ndarray, off: np.ndarray, new: np.ndarray, n: int, cap: int,
                  window: int) -> np.ndarray:
    """The pairs of :func:`_block_pairs` that have a new record, from the sorted blocks (``order``; ``size``
    and ``off``: block size and position inside the block per sorted position): for each new record's
    position, the partners k places before and after it — every k in a block within the cap, up to
    ``window`` in one over it."""
    q = np.flatnonzero(new[order])
    reach = np.where(size[q] <= cap, size[q] - 1, np.minimum(window, size[q] - 1))
    out = []
    for k in range(1, int(reach.max(initial=0)) + 1):
        live = reach >= k
        if not live.any():
            break
        fwd = q[live & (size[q] - off[q] - 1 >= k)]
        bwd = q[live & (off[q] >= k)]
        a = np.concatenate([order[fwd], order[bwd - k]])
        b = np.concatenate([order[fwd + k], order[bwd]])
        keep = a != b
        lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        out.append(lo.astype(np.int64) * n + hi)
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def rule_pairs(p: Prepared, rule: BlockingRule, ranks: dict[str, np.ndarray], new: np.ndarray | None = None
               ) -> np.ndarray:
    """Candidate pairs of one rule, encoded as ``lo * n + hi`` (int64, may contain duplicates). With ``new``
    (bool per record), only those with a new record."""
    n = p.n
    if rule.sort not in ranks:
        ranks[rule.sort] = _rank(p.key(rule.sort))
    srt = ranks[rule.sort]
    if rule.keys:
        rec, key = rule_keys(p, rule)
    else:
        rec = np.flatnonzero(srt >= 0)  # global sorted neighbourhood only over records having the sort key
        key = np.zeros(len(rec), dtype=np.int64)
    if rule.one_word:
        one = (p.key("family").codes < 0) | (p.key("given").codes < 0)
        blocks = distinct(key[one[rec]])
        keep = np.isin(key, blocks)  # only blocks holding a one-word name can give such a pair
        rec, key = rec[keep], key[keep]
        enc = _block_pairs(rec, key, srt, n, rule.cap, rule.window, new)
        return enc[one[enc // n] | one[enc % n]]
    return _block_pairs(rec, key, srt, n, rule.cap, rule.window, new)


def candidate_pairs(
    p: Prepared, rules: tuple[BlockingRule, ...] = DEFAULT_RULES, link_only: bool = False, workers: int = 1,
    new: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Union of all rules' pairs as sorted (left, right) index arrays, plus per-rule pair counts. With
    ``workers`` > 1 and a large input, the rules run in forked processes. With ``new`` (bool per record),
    only the pairs that have a new record — exactly those of the full union — generated from the blocks
    and sort-order windows the new records are in, not from every block."""
    # sort orders up front, in this process: forked workers then share them instead of each sorting (and
    # copying on write) the key strings again
    ranks: dict[str, np.ndarray] = {key: _rank(p.key(key)) for key in dict.fromkeys(r.sort for r in rules)}

    def one_rule(rule: BlockingRule) -> np.ndarray:
        enc = rule_pairs(p, rule, ranks, new)
        if link_only and len(enc):
            enc = enc[p.source[enc // p.n] != p.source[enc % p.n]]
        return enc

    parts = fork_map(one_rule, list(rules), workers if p.n >= PARALLEL_MIN_RECORDS else 1)
    stats = {rule.name: int(len(enc)) for rule, enc in zip(rules, parts, strict=True)}
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
