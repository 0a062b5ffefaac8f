"""Clustering that does not chain.

1. Connected components of the auto-match graph give the *possible* clusters.
2. Inside every component of 3+ records, ALL member pairs are scored (also those blocking never
   proposed), vectorised in one batch, with their per-field comparison levels and weights.
3. Ambiguous links are dropped: a record that matches clearly different people about equally well joins
   none of them (``_drop_ambiguous``).
4. Greedy merge by descending match_weight inside each component: two partial clusters merge only if,
   compared as two *profiles* (per field, the best comparison over their cross pairs), they are a match
   (weight >= 0) and not in conflict (their cross pairs disagree on personal fields — given name, birth
   date, id, e-mail — on average). A sparse record that matches two different people (陈伟 + a city) joins
   at most one of them instead of bridging both into one cluster, and a household stays apart however
   strongly its members share an address, a landline and a surname.
5. Two different *validated* national ids (checksummed resident ids, SSNs) in a cross pair: never merged,
   whatever the profiles add up to (namesakes of one city sharing a mailbox hold two ids).
6. Steward decisions: a must-link pair is an edge that always wins (merged first, without the profile check);
   a cannot-link pair is never in one cluster, and no merge brings its two records together.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hub.dedupe.arrays import distinct
from hub.dedupe.compare import FIELDS
from hub.dedupe.scoring import OVERRIDE_BITS as _OVERRIDE_BITS
from hub.dedupe.scoring import personal_evidence

_CONFLICT_FIELDS = np.array([k for k, f in enumerate(FIELDS) if f.conflict_level is not None], dtype=np.int64)
_CONFLICT_LEVELS = np.array([f.conflict_level for f in FIELDS if f.conflict_level is not None], dtype=np.int64)


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    parent = list(range(n))

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.fromiter((find(x) for x in range(n)), dtype=np.int64, count=n)


def _cut_oversized(n: int, left: np.ndarray, right: np.ndarray, weight: np.ndarray, max_component: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the weakest edges of components larger than ``max_component`` (a tenth of them per round) until
    none is: a chain of thousands of records is held together by its weakest links, and the parts it falls
    into are what exhaustive clustering can then judge."""
    keep = np.ones(len(left), dtype=bool)
    for _ in range(200):
        comp = _components(n, left[keep], right[keep])
        sizes = np.bincount(comp, minlength=n)
        over = keep & (sizes[comp[left]] > max_component)
        if not over.any():
            break
        # per oversized component, its weakest tenth of edges goes
        idx = np.flatnonzero(over)
        c = comp[left[idx]]
        order = np.lexsort((weight[idx], c))
        idx, c = idx[order], c[order]
        start = np.searchsorted(c, c, side="left")
        cnt = np.bincount(c, minlength=n)[c]
        rank = np.arange(len(idx)) - start
        keep[idx[rank < np.maximum(1, cnt // 10)]] = False
    return left[keep], right[keep], weight[keep]


def _all_pairs_by_group(members: np.ndarray, group: np.ndarray, max_k: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs within groups (members sorted by group)."""
    ls, rs = [], []
    for k in range(1, max_k):
        same = group[:-k] == group[k:]
        if not same.any():
            break
        ls.append(members[:-k][same])
        rs.append(members[k:][same])
    if not ls:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(ls), np.concatenate(rs)


JOIN_BASE, JOIN_RIVAL = 2.0, 1.0
# a pair under this match_probability (about 10 bits against) is two people: a rival in the ambiguity rule.
# (1 % put a person whose landline and mobile differ — name, birth date and address the same — on the edge)
RIVAL_PROBABILITY = 0.001
MUST_LINK_WEIGHT = 1e9  # edge weight of a steward's must-link: merged before any model edge
BATCH_PAIRS = 1_000_000
MERGE_RULE = "profile"  # "mean_probability": the pairwise rule, used when the scorer gives no profiles


def _drop_ambiguous(edges: list[tuple[int, int, float]], pair_info: dict, margin: float
                    ) -> list[tuple[int, int, float]]:
    """Remove the links of a record to candidates that are clearly different people (a conflict or a
    match_probability under RIVAL_PROBABILITY) unless its best candidate wins clearly: by odds, O_best > 2 + the
    sum of the rival people's odds — the point where joining the best one is expected to reproduce more true
    clusters exactly than leaving the record on its own (a wrong guess breaks two clusters). Rival records
    that are one person (their pair is a likely match) count once. ``margin`` (bits) bounds which rivals
    count: ones weaker than the best by more than ``margin`` never do. The record's other links (to records
    of the same person as none of the rivals) are kept."""
    nbrs: dict[int, list[tuple[float, int]]] = {}
    for a, b, w in edges:
        nbrs.setdefault(a, []).append((w, b))
        nbrs.setdefault(b, []).append((w, a))

    def info(x: int, y: int):
        return pair_info.get((x, y) if x < y else (y, x))

    drop: set[tuple[int, int]] = set()
    for r, lst in nbrs.items():
        if len(lst) < 2:
            continue
        lst.sort(reverse=True)
        w1, x1 = lst[0]
        rivals: list[list[tuple[float, int]]] = []  # one list of (weight, record) per rival person
        for w, x in lst[1:]:
            if w < w1 - margin:
                break
            ix = info(x1, x)
            if ix is None or not (ix[1] or ix[0] < RIVAL_PROBABILITY):
                continue
            for person in rivals:
                iy = info(person[0][1], x)
                if iy is not None and not iy[1] and iy[0] >= 0.5:
                    person.append((w, x))
                    break
            else:
                rivals.append([(w, x)])
        if not rivals:
            continue
        odds_best = float(np.exp2(min(w1, 60.0)))
        odds_rivals = float(sum(np.exp2(min(person[0][0], 60.0)) for person in rivals))
        losers = [x for person in rivals for _, x in person]
        if odds_best <= JOIN_BASE + JOIN_RIVAL * odds_rivals:
            losers.append(x1)
        for x in losers:
            drop.add((r, x) if r < x else (x, r))
    if not drop:
        return edges
    return [e for e in edges if ((e[0], e[1]) if e[0] < e[1] else (e[1], e[0])) not in drop]


def _profile_weight(lv: np.ndarray, ct: np.ndarray, prior: np.ndarray, cross: list[int]) -> tuple[float, bool]:
    """(match weight, conflict) of two clusters as two profiles.

    Weight: per field, the best comparison among the cross pairs where both sides have the field (a
    caller's phone meets the ERP record's phone, the shop record's e-mail meets the web account's), so a
    record that agrees strongly with one member and merely holds other fields than the rest is not held
    back by pairs that have nothing to compare. Conflict: some cross pair disagrees on a personal field and
    the personal evidence of the cross pairs is, on average, against one person — two members of a
    household disagree pair after pair; one badly typo'd duplicate among good ones does not."""
    idx = np.asarray(cross, dtype=np.int64)
    levels, contrib = lv[idx], ct[idx]
    present = levels >= 0
    best = np.where(present, contrib, -np.inf).max(axis=0)
    best[~present.any(axis=0)] = 0.0
    disagree = (levels[:, _CONFLICT_FIELDS] == _CONFLICT_LEVELS).any(axis=1)
    conflict = bool(disagree.any()) and float(personal_evidence(contrib).mean()) < _OVERRIDE_BITS
    return float(prior[idx].max() + best.sum()), conflict


def cluster(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    score_pairs: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    min_support: float = 0.5,
    max_component: int = 400,
    ambiguity_margin: float = 3.0,
    must_link: tuple[np.ndarray, np.ndarray] | None = None,
    cannot_link: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Cluster label per record (the smallest member index of its cluster).

    ``left/right/weight``: auto-match pairs (free of pair-level conflicts).
    ``score_pairs(i, j) -> (match_weight, match_probability, conflict[, levels, contributions[, ids_differ]])``
    scores arbitrary pairs; with the per-field levels and contributions, merges are judged on cluster profiles;
    two partial clusters with a cross pair in ``ids_differ`` (different validated national ids) never merge.
    A component larger than ``max_component`` (namesakes and shared numbers chaining thousands of sparse
    records at 1M) is first cut at its weakest links until every part can be checked exhaustively.
    ``must_link`` / ``cannot_link``: steward decisions as index pairs (see the module docstring).
    """
    cannot: set[tuple[int, int]] = set()
    if cannot_link is not None and len(cannot_link[0]):
        a, b = np.asarray(cannot_link[0], np.int64), np.asarray(cannot_link[1], np.int64)
        cannot = set(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist(), strict=True))
        drop = np.array([(x, y) in cannot for x, y in zip(np.minimum(left, right).tolist(),
                                                           np.maximum(left, right).tolist(), strict=True)], dtype=bool)
        left, right, weight = left[~drop], right[~drop], weight[~drop]
    if must_link is not None and len(must_link[0]):
        a, b = np.asarray(must_link[0], np.int64), np.asarray(must_link[1], np.int64)
        keep = a != b
        lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
        left = np.concatenate([left.astype(np.int64), lo])
        right = np.concatenate([right.astype(np.int64), hi])
        weight = np.concatenate([np.asarray(weight, dtype=np.float64), np.full(len(lo), MUST_LINK_WEIGHT)])
    left, right, weight = _cut_oversized(n, left, right, weight, max_component)
    comp = _components(n, left, right)
    labels = np.arange(n, dtype=np.int64)
    if len(left) == 0:
        return labels
    sizes = np.bincount(comp, minlength=n)
    # size-2 components: the single auto-match pair is the cluster
    two = sizes[comp[left]] == 2
    if cannot:  # a two-record component linked by a must-link that a cannot-link forbids: stays apart
        two &= ~np.array([(min(x, y), max(x, y)) in cannot for x, y in zip(left.tolist(), right.tolist(),
                                                                           strict=True)], dtype=bool)
    labels[right[two]] = np.minimum(left[two], right[two])
    labels[left[two]] = np.minimum(left[two], right[two])

    big = np.flatnonzero(sizes[comp] >= 3)
    if len(big) == 0:
        return labels
    order = big[np.argsort(comp[big], kind="stable")]
    grp = comp[order]
    in_big = sizes[comp[left]] >= 3
    el, er, ew = left[in_big], right[in_big], weight[in_big]
    ec = comp[el]
    eorder = np.lexsort((-ew, ec))
    el, er, ec, ew = el[eorder], er[eorder], ec[eorder], ew[eorder]
    # components in batches of about BATCH_PAIRS member pairs: scoring every pair of every component at
    # once would hold tens of millions of pairs (with their per-field levels) at 1M sparse records
    comps, c_start, c_count = np.unique(grp, return_index=True, return_counts=True)
    cum = np.cumsum(c_count.astype(np.int64) * (c_count - 1) // 2)
    batch_of = cum // BATCH_PAIRS
    for b in distinct(batch_of).tolist():
        sel = np.flatnonzero(batch_of == b)
        lo_m, hi_m = int(c_start[sel[0]]), int(c_start[sel[-1]] + c_count[sel[-1]])
        _cluster_batch(order[lo_m:hi_m], grp[lo_m:hi_m], comp, el, er, ew, ec, score_pairs, labels,
                       min_support, ambiguity_margin, cannot)
    return labels


def _cluster_batch(members: np.ndarray, member_comp: np.ndarray, comp: np.ndarray, el: np.ndarray, er: np.ndarray,
                   ew: np.ndarray, ec: np.ndarray, score_pairs: Callable, labels: np.ndarray,
                   min_support: float, ambiguity_margin: float, cannot: set[tuple[int, int]] | None = None
                   ) -> None:
    """Greedy, profile-checked merging inside each component of one batch; writes ``labels``."""
    sizes = np.bincount(member_comp - member_comp.min())
    pi, pj = _all_pairs_by_group(members, member_comp, int(sizes.max()))
    lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
    scored = score_pairs(lo, hi)
    mw, prob, conf = scored[:3]
    # per-field comparison levels and weight contributions, when the scorer gives them: a merge is then
    # judged on the two clusters' combined profiles, not pair by pair
    lv, ct = (scored[3], scored[4]) if len(scored) >= 5 and MERGE_RULE == "profile" else (None, None)
    # pairs with two different validated national ids: two people, whatever the profiles say
    hard = scored[5] if len(scored) >= 6 else np.zeros(len(mw), dtype=bool)
    del scored
    pc = comp[lo]
    porder = np.argsort(pc, kind="stable")
    lo, hi, mw, prob, conf, pc = lo[porder], hi[porder], mw[porder], prob[porder], conf[porder], pc[porder]
    hard = hard[porder]
    if lv is not None:
        lv, ct = lv[porder], ct[porder].astype(np.float32)
        prior = (mw - ct.sum(axis=1, dtype=np.float64)).astype(np.float32)
    comps = distinct(pc)
    p_start = np.searchsorted(pc, comps)
    p_end = np.searchsorted(pc, comps, side="right")
    e_start = np.searchsorted(ec, comps)
    e_end = np.searchsorted(ec, comps, side="right")
    for ps, pe, es, ee in zip(p_start.tolist(), p_end.tolist(), e_start.tolist(), e_end.tolist(), strict=True):
        pair_info = {
            (a, b): (pr, cf, w, k, hd)
            for a, b, pr, cf, w, k, hd in zip(lo[ps:pe].tolist(), hi[ps:pe].tolist(), prob[ps:pe].tolist(),
                                              conf[ps:pe].tolist(), mw[ps:pe].tolist(), range(ps, pe),
                                              hard[ps:pe].tolist(), strict=True)
        }
        edges = list(zip(el[es:ee].tolist(), er[es:ee].tolist(), ew[es:ee].tolist(), strict=True))
        if ambiguity_margin > 0:
            must = [e for e in edges if e[2] >= MUST_LINK_WEIGHT]
            edges = _drop_ambiguous(edges, pair_info, ambiguity_margin)
            if must:  # a steward's must-link is never ambiguous
                edges = must + [e for e in edges if e[2] < MUST_LINK_WEIGHT]
        member_of: dict[int, list[int]] = {}
        for a, b, _w in edges:
            ga, gb = member_of.get(a), member_of.get(b)
            if ga is not None and ga is gb:
                continue
            ga = ga or [a]
            gb = gb or [b]
            ok, total, cnt = True, 0.0, 0
            cross: list[int] = []
            for x in ga:
                for y in gb:
                    key = (x, y) if x < y else (y, x)
                    if cannot and key in cannot:
                        ok = False
                        break
                    info = pair_info[key]
                    if info[1] and lv is None:  # with profiles, conflicts are judged per cluster below
                        ok = False
                        break
                    if info[4] and _w < MUST_LINK_WEIGHT:  # no profile outweighs two validated ids
                        ok = False
                        break
                    total += info[0]
                    cross.append(info[3])
                    cnt += 1
                if not ok:
                    break
            if not ok:
                continue
            if _w >= MUST_LINK_WEIGHT:
                pass  # a steward's decision: no profile check
            elif lv is not None:
                weight_ab, conflict_ab = _profile_weight(lv, ct, prior, cross)
                if weight_ab < 0 or conflict_ab:
                    continue
            elif total / cnt < min_support:
                continue
            merged = ga + gb
            for x in merged:
                member_of[x] = merged
        seen: set[int] = set()
        for grp_list in member_of.values():
            if id(grp_list) in seen:
                continue
            seen.add(id(grp_list))
            labels[grp_list] = min(grp_list)
