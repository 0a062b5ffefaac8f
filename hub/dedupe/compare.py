"""Field comparisons: each candidate pair gets one comparison_level per field.

Level -1 = missing on either side (no evidence). Level 0 is always the most different outcome;
the top level is exact agreement. String similarities are computed vectorised with rapidfuzz
``cpdist`` and only once per *distinct* (value, value) combination present in the pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from hub.dedupe.prepare import ADDRESS_KEYS, ALTERNATE_KEYS, KeyColumn, Prepared


@dataclass(frozen=True)
class FieldSpec:
    name: str
    labels: tuple[str, ...]  # index = comparison_level (0 = most different)
    tf_key: str | None = None  # key column whose value frequency adjusts the exact level
    conflict_level: int | None = None  # level that is hard evidence against a match (cannot-link)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("family_name", ("far", "weak", "close", "exact"), tf_key="family"),
    FieldSpec("given_name", ("far", "weak", "close", "exact"), tf_key="given", conflict_level=0),
    FieldSpec("birth_date", ("far", "two_edits", "close", "exact"), conflict_level=0),
    FieldSpec("national_id", ("far", "similar", "one_edit", "exact"), conflict_level=0),
    FieldSpec("phone", ("far", "same_subscriber", "one_edit", "exact"), tf_key="phone"),
    FieldSpec("email", ("far", "similar", "close", "exact"), tf_key="email"),
    # one address field: street, postcode and city are strongly correlated, and treating them as
    # independent fields lets EM mistake "same city" for "same person"
    FieldSpec("address", ("other_area", "same_area_street_differs", "same_area", "street_similar",
                          "street_close", "street_exact")),
    FieldSpec("gender", ("far", "exact")),
    FieldSpec("company", ("far", "close", "exact"), tf_key="company"),
)
FIELD_INDEX = {f.name: i for i, f in enumerate(FIELDS)}


CPDIST_WORKERS = -1  # rapidfuzz threads (-1 = all cores); 1 inside a forked comparison worker


def _pair_scores(ca: np.ndarray, cb: np.ndarray, ua: np.ndarray, ub: np.ndarray, scorer) -> np.ndarray:
    """scorer(ua[ca], ub[cb]) for every pair with both codes >= 0, computed once per distinct combo.
    Returns float32 with NaN where either side is missing."""
    out = np.full(len(ca), np.nan, dtype=np.float32)
    ok = (ca >= 0) & (cb >= 0)
    if not ok.any():
        return out
    a, b = ca[ok].astype(np.int64), cb[ok].astype(np.int64)
    combo = a * (len(ub) + 1) + b
    uniq, inv = np.unique(combo, return_inverse=True)
    qa, qb = uniq // (len(ub) + 1), uniq % (len(ub) + 1)
    vals = process.cpdist(list(ua[qa]), list(ub[qb]), scorer=scorer, workers=CPDIST_WORKERS, dtype=np.float32)
    out[ok] = np.asarray(vals, dtype=np.float32)[inv]
    return out


def _one_ends_the_other(a: str, b: str, **_) -> float:
    """1.0 where one value ends the other: a number with and without its country or trunk prefix, a year
    written in full and short (john.smith1985 / john.smith85)."""
    return float(a.endswith(b) or b.endswith(a))


def _same_key_sim(col: KeyColumn, i: np.ndarray, j: np.ndarray, scorer, identical: float = 1.0) -> np.ndarray:
    """Score on one key; identical codes short-cut to ``identical`` without calling the scorer."""
    ci, cj = col.codes[i], col.codes[j]
    out = np.full(len(i), np.nan, dtype=np.float32)
    both = (ci >= 0) & (cj >= 0)
    eq = both & (ci == cj)
    out[eq] = identical
    need = both & ~eq
    if need.any():
        out[need] = _pair_scores(ci[need], cj[need], col.uniques, col.uniques, scorer)
    return out


def _distance(col: KeyColumn, i: np.ndarray, j: np.ndarray, scorer=Levenshtein.distance) -> np.ndarray:
    """Edit distance (NaN where missing, 0 for identical codes)."""
    return _same_key_sim(col, i, j, scorer, identical=0.0)


def _code_eq(col: KeyColumn, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    ci, cj = col.codes[i], col.codes[j]
    return (ci >= 0) & (ci == cj)


def _levels(sim: np.ndarray, cuts: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Missing (NaN) -> -1, else the first matching (level, condition) from the top, default 0."""
    lv = np.zeros(len(sim), dtype=np.int8)
    for level, cond in reversed(cuts):  # apply lowest first so higher levels win
        lv[cond] = level
    lv[np.isnan(sim)] = -1
    return lv


@dataclass
class NameVocab:
    """Family and given keys re-coded into one shared vocabulary so they can be cross-compared
    (Chen Wei vs WEI CHEN: family of one = given of the other)."""

    fam: np.ndarray
    giv: np.ndarray
    canon: np.ndarray
    uniques: np.ndarray
    # per vocabulary entry: the Mandarin surnames (as small ids, -1 = none) a Cantonese / Hokkien / Wade-Giles
    # spelling stands for — Wong: wang, huang; a pinyin surname stands for itself
    alias_ids: np.ndarray | None = None  # (len(uniques), 3) int32
    romanised: np.ndarray | None = None  # entry is a non-Mandarin spelling (only such pairs need the check)

    @classmethod
    def build(cls, p: Prepared) -> NameVocab:
        fam, giv, can = p.key("family"), p.key("given"), p.key("given_canon")
        vocab = np.unique(np.concatenate([fam.uniques, giv.uniques, can.uniques]).astype(str)).astype(object)

        def recode(col: KeyColumn) -> np.ndarray:
            m = np.searchsorted(vocab.astype(str), col.uniques.astype(str)).astype(np.int32)
            return np.where(col.codes >= 0, m[np.maximum(col.codes, 0)] if len(m) else -1, -1).astype(np.int32)

        from hub.standardise import ROMANISED_SURNAME_PINYIN, surname_variants

        targets = sorted({t for ts in ROMANISED_SURNAME_PINYIN.values() for t in ts})
        tid = {t: k for k, t in enumerate(targets)}
        ids = np.full((len(vocab), 3), -1, dtype=np.int32)
        romanised = np.zeros(len(vocab), dtype=bool)
        for k, s in enumerate(vocab.tolist()):
            if s in ROMANISED_SURNAME_PINYIN:
                mandarin = [t for t in surname_variants(s)[1:] if t in tid][:3]
                ids[k, :len(mandarin)] = [tid[t] for t in mandarin]
                romanised[k] = True
            elif s in tid:
                ids[k, 0] = tid[s]
        return cls(fam=recode(fam), giv=recode(giv), canon=recode(can), uniques=vocab, alias_ids=ids,
                   romanised=romanised)


def _jw_codes(v: NameVocab, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.full(len(a), np.nan, dtype=np.float32)
    both = (a >= 0) & (b >= 0)
    eq = both & (a == b)
    out[eq] = 1.0
    need = both & ~eq
    if need.any():
        out[need] = _pair_scores(a[need], b[need], v.uniques, v.uniques, JaroWinkler.normalized_similarity)
    return out


def compare_names(v: NameVocab, i: np.ndarray, j: np.ndarray, p: Prepared | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(family_level, given_level, swapped) for pairs, choosing the better of the straight and the
    swapped name order per pair (pinyin names arrive in either order). With ``p``, a name part written in
    hanzi on both sides that differs in hanzi is at most ``weak`` however equal its pinyin (王伟 / 王薇)."""
    fi, fj, gi, gj = v.fam[i], v.fam[j], v.giv[i], v.giv[j]
    ff, gg = _jw_codes(v, fi, fj), _jw_codes(v, gi, gj)
    fg, gf = _jw_codes(v, fi, gj), _jw_codes(v, gi, fj)
    straight = np.nan_to_num(ff) + np.nan_to_num(gg)
    swapped = np.nan_to_num(fg) + np.nan_to_num(gf)
    swap = swapped > straight + 1e-6
    # Swapped and only one part agrees (Pham Neil / Vanessa Pham): either record may be the misparsed one,
    # so the agreeing token counts as the family name and the other as the given name — the reading that
    # claims less (a shared surname, different given names), not a rare "given name" Pham matched exactly.
    flip = swap & (np.nan_to_num(gf, nan=-1.0) > np.nan_to_num(fg, nan=-1.0)) & ~np.isnan(fg)
    fam_sim = np.where(flip, gf, np.where(swap, fg, ff))
    giv_sim = np.where(flip, fg, np.where(swap, gf, gg))
    # nickname equivalence (Bob ~ Robert) and initials (J ~ John) on the given side
    ci, cj = v.canon[i], v.canon[j]
    canon_eq = (ci >= 0) & (ci == cj) & ~swap
    # a nickname vs a typo'd full name (jenny ~ jeknifer): compare the canonical forms too
    canon_sim = np.where(swap, np.nan, np.minimum(_jw_codes(v, ci, cj), 0.99))  # agreement via nickname = close
    giv_sim = np.where(np.nan_to_num(canon_sim) > np.nan_to_num(giv_sim), canon_sim, giv_sim)
    # the token pairs behind each level: swapped, i's given name faces j's family name (flipped: the other
    # way round, see above)
    gi_s, gj_s = np.where(flip, fi, gi), np.where(flip, gj, np.where(swap, fj, gj))
    li = np.array([len(s) for s in v.uniques], dtype=np.int32) if len(v.uniques) else np.zeros(0, np.int32)
    first = np.array([s[:1] for s in v.uniques], dtype=object)
    both = (gi_s >= 0) & (gj_s >= 0)
    initial = np.zeros(len(i), dtype=bool)
    if both.any():
        a, b = gi_s[both], gj_s[both]
        initial[both] = ((li[a] == 1) | (li[b] == 1)) & (first[a] == first[b])
    # a family name given as an initial (Renee M.) faces the other record's family name
    fi_s, fj_s = np.where(flip, gi, fi), np.where(flip, fj, np.where(swap, gj, fj))
    both_f = (fi_s >= 0) & (fj_s >= 0)
    initial_f = np.zeros(len(i), dtype=bool)
    if both_f.any():
        a, b = fi_s[both_f], fj_s[both_f]
        initial_f[both_f] = ((li[a] == 1) | (li[b] == 1)) & (first[a] == first[b])
    fam_sim = np.where(initial_f & ~(fam_sim >= 0.80), 0.80, fam_sim)
    # a Cantonese / Hokkien / Wade-Giles spelling of the other record's surname (Wong / Huang, Chiang / Jiang)
    if v.alias_ids is not None and len(v.uniques):
        fa, fb = np.maximum(fi_s, 0), np.maximum(fj_s, 0)
        cand = np.flatnonzero(both_f & ~(fam_sim >= 0.92) & (v.romanised[fa] | v.romanised[fb]))
        if len(cand):
            ia, ib = v.alias_ids[fa[cand]], v.alias_ids[fb[cand]]
            hit = np.zeros(len(cand), dtype=bool)
            for x in range(3):
                for y in range(3):
                    hit |= (ia[:, x] >= 0) & (ia[:, x] == ib[:, y])
            fam_sim[cand[hit]] = 0.92
    fam_lv = _levels(fam_sim, [(3, fam_sim >= 1.0), (2, fam_sim >= 0.92), (1, fam_sim >= 0.80)])
    giv_lv = _levels(
        giv_sim,
        [(3, giv_sim >= 1.0), (2, (giv_sim >= 0.88) | canon_eq), (1, (giv_sim >= 0.70) | initial)],
    )
    if p is not None and "name_concat" in p.keys:
        _concatenated_names(v, p, i, j, fam_lv, giv_lv, swap)
    if p is not None:
        # Chinese names are compared as characters, not as strings of pinyin letters: 婉红 (wanhong) and 浩强
        # (haoqiang) are as different as two names get; a homophone in other characters (伟/玮, an input-method
        # slip, or 王伟/王薇, two people) is weak; a character-level near miss on one side only in pinyin is
        # still judged on the pinyin, but never as a merely "weak" look-alike
        for lv, key, init in ((fam_lv, "family_han", initial_f), (giv_lv, "given_han", initial)):
            col = p.key(key)
            ci, cj = col.codes[i], col.codes[j]
            both = (ci >= 0) & (cj >= 0) & ~swap
            differ = both & (ci != cj)
            lv[differ] = np.where(lv[differ] == 3, 1, 0)
            one = ((ci >= 0) | (cj >= 0)) & ~both
            lv[one & (lv == 1) & ~init] = 0
    return fam_lv, giv_lv, swap


MIN_CONCAT_LEN = 5  # "lina" is a given name as often as it is 李娜 run together


def _concatenated_names(v: NameVocab, p: Prepared, i: np.ndarray, j: np.ndarray, fam_lv: np.ndarray,
                        giv_lv: np.ndarray, swap: np.ndarray) -> None:
    """A one-word name that is the other record's full name run together in either order (xubopeng /
    徐博鹏, mingbinchau / Mingbin Chau): both name parts agree. Updates the levels in place."""
    lens = np.array([len(s) for s in v.uniques], dtype=np.int32) if len(v.uniques) else np.zeros(0, np.int32)
    fwd, rev = p.key("name_concat"), p.key("name_concat_rev")
    for a, b in ((i, j), (j, i)):
        fa, ga, fb, gb = v.fam[a], v.giv[a], v.fam[b], v.giv[b]
        tok = np.where(fa >= 0, fa, ga)
        sel = ((fa >= 0) != (ga >= 0)) & (fb >= 0) & (gb >= 0)
        sel[sel] = lens[tok[sel]] >= MIN_CONCAT_LEN
        if not sel.any():
            continue
        t, bb = tok[sel], b[sel]
        s1 = _pair_scores(t, fwd.codes[bb], v.uniques, fwd.uniques, JaroWinkler.normalized_similarity)
        s2 = _pair_scores(t, rev.codes[bb], v.uniques, rev.uniques, JaroWinkler.normalized_similarity)
        sim = np.fmax(s1, s2)
        lv = np.where(sim >= 1.0, 3, np.where(sim >= 0.96, 2, -2)).astype(np.int8)
        hit = np.flatnonzero(sel)[lv >= 0]
        lv = lv[lv >= 0]
        fam_lv[hit] = np.maximum(fam_lv[hit], lv)
        giv_lv[hit] = np.maximum(giv_lv[hit], lv)
        swap[hit] = False
    # two full names with the same letters split differently (Li Jie Zhang / 张丽洁 -> lijiezhang;
    # xinjuan chiang / Chiang Xin Juan): both parts agree
    fi, fj, ri = fwd.codes[i], fwd.codes[j], rev.codes[i]
    same = (fi >= 0) & (fj >= 0) & ((fi == fj) | (ri == fj)) & ((fam_lv < 3) | (giv_lv < 3))
    if same.any():
        full = (v.fam[i] >= 0) & (v.giv[i] >= 0) & (v.fam[j] >= 0) & (v.giv[j] >= 0)
        # both in hanzi: the characters decide (张丽洁 / 张立杰 share every pinyin letter)
        han_i = (p.key("family_han").codes[i] >= 0) | (p.key("given_han").codes[i] >= 0)
        han_j = (p.key("family_han").codes[j] >= 0) | (p.key("given_han").codes[j] >= 0)
        same &= full & ~(han_i & han_j)
        same[same] = lens[np.where(v.fam[i] >= 0, v.fam[i], 0)[same]] + lens[np.where(v.giv[i] >= 0, v.giv[i], 0)[same]] \
            >= MIN_CONCAT_LEN
        fam_lv[same] = 3
        giv_lv[same] = 3
        swap[same] = False


def compare_dates(col: KeyColumn, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """exact / close (one edit or day<->month swap) / two edits / far."""
    d = _distance(col, i, j, OSA.distance)
    # day<->month swap: the swapped spelling of the left date equals the right date
    sw = {v: k for k, v in enumerate(col.uniques.tolist())}
    swapped_code = np.array([sw.get(x[:4] + x[6:8] + x[4:6], -2) if len(x) == 8 else -2 for x in col.uniques.tolist()],
                            dtype=np.int64)
    ci, cj = col.codes[i], col.codes[j]
    swap = (ci >= 0) & (cj >= 0) & (ci != cj)
    swap[swap] = swapped_code[ci[swap]] == cj[swap]
    return _levels(d, [(3, d == 0), (2, (d == 1) | swap), (1, d == 2)])


def compare_address(p: Prepared, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    sc = p.key("street")
    st = _same_key_sim(sc, i, j, fuzz.ratio, identical=100.0)
    if "street_han" in p.keys:  # hanzi against Latin letters: the street is unknown, not different
        script = p.key("street_han").codes
        st[(script[i] >= 0) & (script[j] >= 0) & (script[i] != script[j])] = np.nan
    # words in another order (236 river street / 236 street river) are a close street, not a different one;
    # only where the plain ratio leaves room for that
    low = np.flatnonzero(st < 88)
    if len(low):
        st[low] = np.fmax(st[low], _same_key_sim(sc, i[low], j[low], fuzz.token_sort_ratio, identical=100.0))
    if "street_base" in p.keys:
        # the same building, one record with a room / apartment the other lacks (or another one): close
        same = _code_eq(p.key("street_base"), i, j) & (st < 100)
        st[same] = np.fmax(st[same], 92.0)
    if "street_number" in p.keys:
        # 17 / 2034 Market Street: one street, two addresses. Where every party lives on the same street the
        # house number is all an address says, so numbers more than one typo apart (57 / 5v7 is one) make the
        # streets at most similar
        differ = (_distance(p.key("street_number"), i, j, OSA.distance) >= 2) & ~np.isnan(st)
        st[differ] = np.minimum(st[differ], 87.0)
    if "street_group" in p.keys:
        # a street many different people are registered at (a company's site): it places a record in a group,
        # so it counts like the area it is in, never as one person's address
        # (two different sites still differ: records at two companies are not one person's)
        shared = p.key("street_group").codes
        st[((shared[i] >= 0) | (shared[j] >= 0)) & (st >= 70)] = np.nan
    city = _same_key_sim(p.key("city"), i, j, JaroWinkler.normalized_similarity)
    pc = _distance(p.key("postcode"), i, j, OSA.distance)
    area_known = ~np.isnan(city) | ~np.isnan(pc)
    same_area = (city >= 0.9) | (pc <= 1)
    lv = np.full(len(i), -1, dtype=np.int8)
    lv[area_known] = 0
    has_st = ~np.isnan(st)
    lv[same_area] = 2
    lv[same_area & has_st & (st < 70)] = 1
    lv[has_st & (st < 70) & ~area_known] = 0
    lv[has_st & (st >= 70)] = 3
    lv[has_st & (st >= 88)] = 4
    lv[has_st & (st >= 100)] = 5
    return lv


def compare_phones(p: Prepared, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """exact (or one number is the other plus a country / trunk prefix) / one_edit / same_subscriber (last 8
    digits) / far."""
    ph = p.key("phone")
    d = _distance(ph, i, j, OSA.distance)
    tail = _code_eq(p.key("phone_tail"), i, j)
    suffix = np.zeros(len(i), dtype=bool)
    cand = tail & (d > 0)
    if cand.any():  # one number is the other plus a country/trunk prefix
        suffix[cand] = _pair_scores(ph.codes[i][cand], ph.codes[j][cand], ph.uniques, ph.uniques,
                                    _one_ends_the_other) >= 1
    return _levels(d, [(3, (d == 0) | suffix), (2, d == 1), (1, tail)])


def _pair_view(p: Prepared, slots: Sequence[dict[str, KeyColumn]], names: Iterable[str], a: int, b: int
               ) -> Prepared:
    """The keys ``names`` of value ``a`` (0 = the first, else ``slots[a - 1]``) for records 0..n-1 and of value
    ``b`` for records n..2n-1, so the ordinary comparisons of (i, j + n) compare i's a-th value with j's b-th."""
    def col(s: int, k: str) -> KeyColumn:
        return p.key(k) if s == 0 else slots[s - 1][k]

    keys = {k: KeyColumn(codes=np.concatenate([col(a, k).codes, col(b, k).codes]), uniques=col(a, k).uniques)
            for k in names}
    return Prepared(n=2 * p.n, record_id=np.concatenate([p.record_id, p.record_id]),
                    source=np.concatenate([p.source, p.source]), keys=keys, source_names=p.source_names)


def slot_view(p: Prepared, a: int, b: int) -> Prepared:
    """The identifier keys of slot ``a`` (0 = the first value) for records 0..n-1 and of slot ``b`` for records
    n..2n-1: comparing (i, j + n) compares i's a-th phone / e-mail with j's b-th."""
    return _pair_view(p, p.slots, ALTERNATE_KEYS, a, b)


def _slot_has(p: Prepared, s: int) -> np.ndarray:
    keys = p.keys if s == 0 else p.slots[s - 1]
    return (keys["phone"].codes >= 0) | (keys["email"].codes >= 0)


def _best_over_slots(p: Prepared, i: np.ndarray, j: np.ndarray, out: np.ndarray, exact_only_reserved: bool
                     ) -> None:
    """Phone and e-mail levels as the best over every pair of the two records' values (their first and
    further phones / e-mails). Updates ``out`` in place."""
    kp, ke = FIELD_INDEX["phone"], FIELD_INDEX["email"]
    has = [_slot_has(p, s) for s in range(len(p.slots) + 1)]
    for a in range(len(has)):
        for b in range(len(has)):
            if a == 0 and b == 0:
                continue
            sel = np.flatnonzero(has[a][i] & has[b][j])
            if not len(sel):
                continue
            q = slot_view(p, a, b)
            ii, jj = i[sel], j[sel] + p.n
            lv_p, lv_e = compare_phones(q, ii, jj), compare_emails(q, ii, jj)
            if exact_only_reserved:
                _exact_only_if_reserved(q, "phone_reserved", lv_p, ii, jj)
                _exact_only_if_reserved(q, "email_reserved", lv_e, ii, jj)
            out[sel, kp] = np.maximum(out[sel, kp], lv_p)
            out[sel, ke] = np.maximum(out[sel, ke], lv_e)


def _address_view(p: Prepared, a: int, b: int) -> Prepared:
    """The address keys of address ``a`` (0 = the first) for records 0..n-1 and of address ``b`` for records
    n..2n-1: comparing (i, j + n) compares i's a-th address with j's b-th."""
    return _pair_view(p, p.address_slots, ADDRESS_KEYS, a, b)


def _best_address(p: Prepared, i: np.ndarray, j: np.ndarray, lv: np.ndarray) -> None:
    """The address level as the best over every pair of the two records' addresses (a shop customer's
    shipping address is the ERP party's home). Updates ``lv`` in place."""
    def has(s: int) -> np.ndarray:
        keys = p.keys if s == 0 else p.address_slots[s - 1]
        return (keys["street"].codes >= 0) | (keys["city"].codes >= 0) | (keys["postcode"].codes >= 0)

    held = [has(s) for s in range(len(p.address_slots) + 1)]
    for a in range(len(held)):
        for b in range(len(held)):
            if a == 0 and b == 0:
                continue
            sel = np.flatnonzero(held[a][i] & held[b][j])
            if len(sel):
                lv[sel] = np.maximum(lv[sel], compare_address(_address_view(p, a, b), i[sel], j[sel] + p.n))


def agreed_code(p: Prepared, key: str, i: np.ndarray, j: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """For pairs that agree exactly on ``key``: the code of a value both records hold (any of their first and
    further values), else the left record's first value; -1 elsewhere."""
    col = p.key(key)
    code = np.where(exact, col.codes[i], -1)
    if not p.slots or key not in p.slots[0]:
        return code
    cols = [col.codes] + [s[key].codes for s in p.slots]
    todo = exact & ~((col.codes[i] >= 0) & (col.codes[i] == col.codes[j]))
    for ca in cols:
        for cb in cols:
            hit = todo & (ca[i] >= 0) & (ca[i] == cb[j])
            code[hit] = ca[i][hit]
            todo &= ~hit
    return code


def compare_emails(p: Prepared, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """exact / close / similar / far. Close: the same mailbox at another provider (john.smith@gmail /
    john.smith@yahoo), the same name written with other separators or case (chloe.ryan / chloe_ryan), or one
    typo; similar: two typos. Name-derived addresses are look-alike by nature, so string similarity alone
    proves little: a different first letter (cgreen / jgreen) or different numbers (sjones28 / sjones49,
    wang.xin / wangxin72 — two namesakes who each picked one) is far. A number that ends the other
    (john.smith1985 / john.smith85) is not a different number."""
    em = p.key("email")
    d = _distance(em, i, j, OSA.distance)
    local = _code_eq(p.key("email_local"), i, j)
    stem_eq = _code_eq(p.key("email_stem"), i, j)
    dig = p.key("email_digits")
    di, dj = dig.codes[i], dig.codes[j]
    same_number = di == dj  # both without digits, or the same digits
    cand = np.flatnonzero(~same_number & (di >= 0) & (dj >= 0) & (d <= 2))
    if len(cand):
        same_number[cand] = _pair_scores(di[cand], dj[cand], dig.uniques, dig.uniques,
                                         _one_ends_the_other) >= 1
    first = np.zeros(len(i), dtype=bool)
    near = np.flatnonzero((d >= 1) & (d <= 2))
    if len(near):
        first[near] = _pair_scores(em.codes[i][near], em.codes[j][near], em.uniques, em.uniques,
                                   lambda a, b, **_: float(a[:1] == b[:1])) >= 1
    typo = first & same_number
    lv = _levels(d, [(3, d == 0), (2, local | (stem_eq & same_number) | ((d == 1) & typo)),
                     (1, (d == 2) & typo)])
    if "email_is_name" in p.keys:
        # robert.jones@gmail / robert.jones@icloud: two mailboxes named after the name, which is compared
        # on its own; namesakes each have one, so the pair adds no evidence either way
        dom = p.key("email_domain").codes
        named = p.key("email_is_name").codes
        other_box = (lv == 2) & (dom[i] != dom[j]) & ((named[i] >= 0) | (named[j] >= 0))
        lv[other_box] = -1
        # ming.zhang@ / min.zhang@ at one company: two mailboxes each named after its holder are as alike as
        # the names are, which are compared on their own — the near miss is no typo of one mailbox
        lv[(lv >= 1) & (lv <= 2) & (named[i] >= 0) & (named[j] >= 0) & ~stem_eq] = -1
    return lv


def _exact_only_if_reserved(p: Prepared, key: str, lv: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
    """A value from a range reserved for examples (customer00017@example.com, +1 415 555 0123) names a
    record, not a person: an exact copy is evidence, a near miss (customer00018) or a different value is not
    (no evidence either way). Updates ``lv`` in place."""
    if key not in p.keys:
        return
    codes = p.key(key).codes
    reserved = (codes[i] >= 0) | (codes[j] >= 0)
    lv[reserved & (lv >= 0) & (lv < 3)] = -1  # 3 = exact for both phone and e-mail


def compare_fields(p: Prepared, vocab: NameVocab, i: np.ndarray, j: np.ndarray, exact_only_reserved: bool = True
                   ) -> np.ndarray:
    """Comparison levels, shape (n_pairs, len(FIELDS)), int8, -1 = missing. ``exact_only_reserved=False`` keeps
    the near levels of reserved-range values (for u: how often random pairs agree exactly, whatever the
    value)."""
    out = np.empty((len(i), len(FIELDS)), dtype=np.int8)
    fam_lv, giv_lv, _ = compare_names(vocab, i, j, p)
    out[:, FIELD_INDEX["family_name"]] = fam_lv
    out[:, FIELD_INDEX["given_name"]] = giv_lv
    out[:, FIELD_INDEX["birth_date"]] = compare_dates(p.key("dob"), i, j)

    nid = p.key("national_id")
    d = _distance(nid, i, j, OSA.distance)
    # too different to be typos of one another: relative to length (two typo'd copies of a short id can
    # be 3 edits apart; two different 18-digit ids are ~10 apart)
    ln = np.array([len(x) for x in nid.uniques] or [0], dtype=np.int32)
    ci, cj = nid.codes[i], nid.codes[j]
    maxlen = np.where((ci >= 0) & (cj >= 0), np.maximum(ln[np.maximum(ci, 0)], ln[np.maximum(cj, 0)]), 0)
    far = d >= np.maximum(3, np.ceil(0.4 * maxlen - 1e-9))
    out[:, FIELD_INDEX["national_id"]] = _levels(d, [(3, d == 0), (2, d == 1), (1, ~far)])

    out[:, FIELD_INDEX["phone"]] = compare_phones(p, i, j)
    out[:, FIELD_INDEX["email"]] = compare_emails(p, i, j)
    for name in ("phone", "email"):
        # two different switchboards or team mailboxes (set aside as nobody's own): the records belong to two
        # different groups — two companies — which one person's records rarely do
        key = f"{name}_group"
        if key in p.keys:
            g = p.key(key).codes
            lv = out[:, FIELD_INDEX[name]]
            lv[(lv < 0) & (g[i] >= 0) & (g[j] >= 0) & (g[i] != g[j])] = 0
    for name in ("phone", "email") if exact_only_reserved else ():
        _exact_only_if_reserved(p, f"{name}_reserved", out[:, FIELD_INDEX[name]], i, j)
    if p.slots:
        _best_over_slots(p, i, j, out, exact_only_reserved)

    out[:, FIELD_INDEX["address"]] = compare_address(p, i, j)
    if p.address_slots:
        _best_address(p, i, j, out[:, FIELD_INDEX["address"]])

    for name, key in (("gender", "gender"),):
        col = p.key(key)
        ci, cj = col.codes[i], col.codes[j]
        lv = (ci == cj).astype(np.int8)
        lv[(ci < 0) | (cj < 0)] = -1
        out[:, FIELD_INDEX[name]] = lv

    s = _same_key_sim(p.key("company"), i, j, fuzz.token_set_ratio, identical=100.0)
    out[:, FIELD_INDEX["company"]] = _levels(s, [(2, s >= 100), (1, s >= 85)])
    return out


def tf_codes(p: Prepared, vocab: NameVocab, i: np.ndarray, j: np.ndarray, levels: np.ndarray) -> dict[str, np.ndarray]:
    """For TF-adjusted fields: the key code of the agreed value on exact pairs (else -1)."""
    out: dict[str, np.ndarray] = {}
    for f in FIELDS:
        if f.tf_key is None:
            continue
        col = f.tf_key
        k = FIELD_INDEX[f.name]
        exact = levels[:, k] == len(f.labels) - 1
        if col in ("family", "given"):
            # after a possible order swap the agreed value may sit in either slot: use the left record's
            # value that equals the right one
            fi, gi, fj, gj = vocab.fam[i], vocab.giv[i], vocab.fam[j], vocab.giv[j]
            # a one-word name (run together, or a lone part) takes the frequency of the full record's part
            one_i = (fi < 0) | (gi < 0)
            fi, gi = np.where(one_i, fj, fi), np.where(one_i, gj, gi)
            if col == "family":
                code = np.where(fi == fj, fi, np.where(fi == gj, fi, gi))
            else:
                code = np.where(gi == gj, gi, np.where(gi == fj, gi, fi))
            out[col] = np.where(exact, code, -1)
        else:
            out[col] = agreed_code(p, col, i, j, exact)
    # the same mailbox name at another provider (john.smith@gmail / john.smith@yahoo): as telling as the
    # local part is rare — namesakes' look-alike addresses share the common ones
    loc = p.key("email_local").codes
    close = (levels[:, FIELD_INDEX["email"]] == 2) & (loc[i] >= 0) & (loc[i] == loc[j])
    out["email_local"] = np.where(close, loc[i], -1)
    both = (levels[:, FIELD_INDEX["family_name"]] == 3) & (levels[:, FIELD_INDEX["given_name"]] == 3)
    nk = p.key("name_key").codes
    out["name_key"] = np.where(both & (nk[i] == nk[j]), nk[i], -1)
    return out
