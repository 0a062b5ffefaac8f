"""Fellegi–Sunter scoring with parameters estimated without labels.

* u (P(level | non-match)) from comparisons of random record pairs — random pairs are almost all
  non-matches, so this needs no labels and is not biased by blocking.
* m (P(level | match)) by EM over the candidate pairs: a two-class mixture whose non-match class
  has its own free distribution (candidate non-matches agree on a blocking key far more often than
  random pairs, so the random-pair u would mislabel them as matches inside EM).
* Term-frequency adjustment of exact levels: agreeing on a rare name/phone is stronger evidence
  than agreeing on 王伟 or a shared switchboard: weight = log2(m_exact / tf(value)).
* The prior is the expected share of matches among *all* record pairs, so a match_weight of 0
  (probability 0.5) means "as likely a match as not" independent of the blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hub.dedupe.compare import FIELDS


@dataclass
class FSModel:
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior_log2_odds: float
    lambda_candidates: float
    em_iterations: int
    tf: dict[str, np.ndarray] = field(default_factory=dict)  # key -> relative frequency per code
    tf_u_floor: float = 1e-7
    # prior per source pair ("erp|social" -> log2 odds): records of two systems match far more often than
    # two records of one system that has few duplicates; pairs of an unknown pair of sources use the global prior
    group_prior: dict[str, float] = field(default_factory=dict)
    # how the parameters were obtained: "em", or "conservative" when the EM solution failed the checks of
    # hub.dedupe.estimation; diagnostics: what those checks found ({"code", "message", ...numbers})
    estimation: str = "em"
    diagnostics: list[dict] = field(default_factory=list)

    def level_weights(self) -> list[np.ndarray]:
        return [np.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    def as_dict(self) -> dict:
        out = {"prior_log2_odds": self.prior_log2_odds, "lambda_candidates": self.lambda_candidates,
               "em_iterations": self.em_iterations, "source_pair_prior_log2_odds": dict(self.group_prior),
               "estimation": self.estimation, "diagnostics": [dict(d) for d in self.diagnostics], "fields": {}}
        for f, m, u in zip(FIELDS, self.m, self.u, strict=True):
            out["fields"][f.name] = {
                lab: {"m": float(mi), "u": float(ui), "match_weight": float(np.log2(mi / ui))}
                for lab, mi, ui in zip(f.labels, m, u, strict=True)
            }
        return out


def estimate_u(levels: np.ndarray, pseudo: float = 0.5) -> list[np.ndarray]:
    """u per field from the comparison levels of random pairs (Laplace-smoothed)."""
    out = []
    for k, f in enumerate(FIELDS):
        col = levels[:, k]
        cnt = np.bincount(col[col >= 0], minlength=len(f.labels)).astype(np.float64)
        out.append((cnt + pseudo) / (cnt.sum() + pseudo * len(cnt)))
    return out


def _initial_m(n_levels: int) -> np.ndarray:
    # most mass on exact, a little on near levels: the usual starting point that sends EM to the
    # "matches agree" mode rather than a household/non-household split
    m = np.array([0.5**(n_levels - 1 - lv) for lv in range(n_levels)], dtype=np.float64)
    m[-1] *= 4
    return m / m.sum()


def _seed_posterior(pat: np.ndarray) -> np.ndarray:
    """Starting E-step without labels: pairs whose names are close AND that agree exactly on at least
    one identifying field are probable matches. This only picks EM's starting point (the "same person"
    mode rather than, say, a "same city" mode); all parameters are then re-estimated from the data."""
    from hub.dedupe.compare import FIELD_INDEX

    fam, giv = pat[:, FIELD_INDEX["family_name"]], pat[:, FIELD_INDEX["given_name"]]
    names_close = (fam >= 2) & (giv >= 2)
    strong = np.zeros(len(pat), dtype=bool)
    for name in ("birth_date", "national_id", "phone", "email"):
        strong |= pat[:, FIELD_INDEX[name]] == len(FIELDS[FIELD_INDEX[name]].labels) - 1
    strong |= pat[:, FIELD_INDEX["address"]] >= 4
    return np.where(names_close & strong, 0.95, 0.02)


def em_fit(levels: np.ndarray, u_random: list[np.ndarray], max_iter: int = 40, tol: float = 1e-5,
           trace: dict | None = None) -> tuple[list[np.ndarray], np.ndarray, int]:
    """EM on the distinct comparison patterns of candidate pairs. Returns (m, [lambda], iters), lambda being
    the share of matches among the candidate pairs. (Priors per pair of sources are not fitted here: with
    weak evidence a group's EM share collapses; ``engine._group_priors`` solves them afterwards.) ``trace``,
    when given, receives the patterns, their counts, the final posterior and the free non-match u — what
    ``hub.dedupe.estimation`` needs to tell whether the match class is one person's records."""
    nf = len(FIELDS)
    radix = np.array([len(f.labels) + 1 for f in FIELDS], dtype=np.int64)
    mult = np.cumprod(np.concatenate([[1], radix[:-1]]))
    code = np.zeros(len(levels), dtype=np.int64)
    for k in range(nf):  # column by column: a (pairs x fields) int64 temporary would cost 1 GB at 1M
        code += (levels[:, k].astype(np.int64) + 1) * mult[k]
    uniq, counts = np.unique(code, return_counts=True)
    pat = ((uniq[:, None] // mult[None, :]) % radix[None, :]).astype(np.int64) - 1  # (P, nf)
    counts = counts.astype(np.float64)

    m = [_initial_m(len(f.labels)) for f in FIELDS]
    u = [x.copy() for x in u_random]
    lam = 0.05
    it = 0
    post = _seed_posterior(pat)
    for it in range(1, max_iter + 1):  # noqa: B007
        if it > 1:
            lm = np.zeros(len(uniq))
            lu = np.zeros(len(uniq))
            for k in range(nf):
                col = pat[:, k]
                ok = col >= 0
                lm[ok] += np.log(m[k][col[ok]])
                lu[ok] += np.log(u[k][col[ok]])
            logit = np.log(lam) - np.log1p(-lam) + lm - lu
            post = 1.0 / (1.0 + np.exp(-np.clip(logit, -700, 700)))
        wm, wu = post * counts, (1 - post) * counts
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        delta = abs(new_lam - lam)
        lam = new_lam
        for k, f in enumerate(FIELDS):
            col = pat[:, k]
            ok = col >= 0
            nm = np.bincount(col[ok], weights=wm[ok], minlength=len(f.labels)) + 1e-3
            nu = np.bincount(col[ok], weights=wu[ok], minlength=len(f.labels)) + 1e-3
            new_m = nm / nm.sum()
            delta = max(delta, float(np.abs(new_m - m[k]).max()))
            m[k], u[k] = new_m, nu / nu.sum()
        if delta < tol and it > 2:
            break
    if trace is not None:
        trace.update(pat=pat, counts=counts, post=post, u_free=[x.copy() for x in u], m_em=[x.copy() for x in m])
    m = _personal_m(pat, counts, m, u, lam)
    # Fields seen (non-missing) on too few probable matches keep a conservative prior m: EM cannot
    # learn them, e.g. birth dates held by only one source of a multi-source set.
    for k, f in enumerate(FIELDS):
        col = pat[:, k]
        support = float((post * counts)[col >= 0].sum())
        if support < 30:
            m[k] = _prior_m(len(f.labels))
    return m, np.array([lam]), it


PERSONAL_FIELDS = ("given_name", "birth_date", "national_id", "email")
OVERRIDE_BITS = -3.0  # net personal evidence (bits) at or above which a disagreement is not a conflict


def personal_evidence(contrib: np.ndarray) -> np.ndarray:
    """Net personal evidence per pair (bits): the sum of the personal fields' weight contributions. (Counting
    an agreeing given name at half — namesakes share it — helped customer sets by 0.002 cluster F1 and cost
    FEBRL-style sets, where it is what outweighs a typo'd id, as much; it counts in full.)"""
    from hub.dedupe.compare import FIELD_INDEX

    return contrib[:, [FIELD_INDEX[name] for name in PERSONAL_FIELDS]].astype(np.float64).sum(axis=1)
PERSONAL_LOGIT = float(np.log(99.0))


def _personal_m(pat: np.ndarray, counts: np.ndarray, m: list[np.ndarray], u: list[np.ndarray], lam: float,
                min_support: float = 30.0) -> list[np.ndarray]:
    """m of the conflict fields (given name, birth date, national id) re-read from pairs that the *other
    personal* fields alone make near-certain matches.

    EM's match class also takes in the members of a household — same surname, address and landline — and
    then learns that matches often have different given names and birth dates, which would let households
    merge. Pairs that agree on another person's own identifiers (e-mail, id, birth date) are not
    households; among them, how often a given name or birth date still differs is the real typo rate."""
    from hub.dedupe.compare import FIELD_INDEX

    personal = [FIELD_INDEX[n] for n in PERSONAL_FIELDS]
    contrib = np.zeros((len(pat), len(personal)), dtype=np.float64)
    for c, k in enumerate(personal):
        col = pat[:, k]
        ok = col >= 0
        contrib[ok, c] = np.log(m[k][col[ok]]) - np.log(u[k][col[ok]])
    base = np.log(lam) - np.log1p(-lam) + contrib.sum(axis=1)
    out = list(m)
    for c, k in enumerate(personal):
        f = FIELDS[k]
        if f.conflict_level is None:
            continue
        col = pat[:, k]
        sel = (col >= 0) & (base - contrib[:, c] > PERSONAL_LOGIT)
        w = counts[sel]
        if w.sum() < min_support:
            # too few pairs to tell: a conservative prior rather than EM's household-tainted estimate
            out[k] = _prior_m(len(f.labels))
            continue
        cnt = np.bincount(col[sel], weights=w, minlength=len(f.labels)) + 0.5
        out[k] = cnt / cnt.sum()
    # the family name likewise: a class of pairs that share a house (an address shared by chance, a
    # household) learns that "matches" have different surnames; the pairs that the personal fields make
    # certain say how often one person's surname really differs
    k = FIELD_INDEX["family_name"]
    col = pat[:, k]
    sel = (col >= 0) & (base > PERSONAL_LOGIT)
    if counts[sel].sum() >= min_support:
        cnt = np.bincount(col[sel], weights=counts[sel], minlength=len(FIELDS[k].labels)) + 0.5
        out[k] = cnt / cnt.sum()
    return out


def _prior_m(n_levels: int) -> np.ndarray:
    m = np.array([0.02] + [0.05] * (n_levels - 2) + [0.0], dtype=np.float64)
    m[-1] = 1.0 - m.sum()
    return m


def _pool_adjacent(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Isotonic likelihood ratio: adjacent levels whose ratio m/u falls with the level are pooled into one
    ratio (sum m / sum u) until the ratios rise with the level (pool-adjacent-violators). m stays a
    distribution: each pool keeps its total m, spread in proportion to u."""
    blocks: list[list[float]] = []  # [m_sum, u_sum, first level, last level]
    for k in range(len(m)):
        blocks.append([float(m[k]), float(u[k]), k, k])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] >= blocks[-1][0] * blocks[-2][1]:
            b = blocks.pop()
            blocks[-1][0] += b[0]
            blocks[-1][1] += b[1]
            blocks[-1][3] = b[3]
    out = np.empty(len(m), dtype=np.float64)
    for msum, usum, a, b in blocks:
        out[a:b + 1] = u[a:b + 1] * (msum / usum)
    return out


def monotone_weights(m: list[np.ndarray], u: list[np.ndarray]) -> list[np.ndarray]:
    """Make match weights non-decreasing with the comparison level (a closer value is never worse evidence
    than a farther one), keeping every m a distribution: levels that EM noise (or a level random pairs
    almost never reach, whose u is ~0) put out of order are pooled into one weight."""
    out = []
    for f, mk, uk in zip(FIELDS, m, u, strict=True):
        mk, uk = np.asarray(mk, dtype=np.float64), np.asarray(uk, dtype=np.float64)
        chain = np.array(LEVEL_CHAINS.get(f.name, range(len(mk))), dtype=np.int64)
        res = mk.copy()
        res[chain] = _pool_adjacent(mk[chain], uk[chain])
        side = np.setdiff1d(np.arange(len(mk)), chain)
        if len(side):  # a level off the chain is at least as good as the chain's worst
            floor = res[chain[0]] / uk[chain[0]]
            res[side] = np.maximum(res[side], uk[side] * floor)
            res /= res.sum()
        out.append(res)
    return out


# Levels that are ordered by closeness, per field (default: all, in order). The address level "same_area"
# (one street unknown) is no less similar than "street_similar" (both known, alike): it is only ordered
# above a different area.
LEVEL_CHAINS = {"address": (0, 1, 3, 4, 5)}


STRONG_IDENTIFIERS = ("national_id", "phone", "email")
MIN_DISAGREE_BITS = 1.0  # a strong identifier that both records hold and that differs costs at least this


def constrain_identifiers(m: list[np.ndarray], u: list[np.ndarray], single_source: bool = False
                          ) -> list[np.ndarray]:
    """Parameters that cannot say nonsense: agreeing on an identifier (e-mail, phone, national id) is never
    evidence against one person (exact weight >= 0) and differing on one that both records hold is never
    free (far weight <= -MIN_DISAGREE_BITS); mass moved to satisfy a bound goes to / comes from the exact
    level. With one source, an unknown street is no evidence beyond the agreeing area (across sources it is:
    the systems that keep no street — social, call centre — hold people's second records). The result is made
    monotone again."""
    from hub.dedupe.compare import FIELD_INDEX

    out = [np.asarray(x, dtype=np.float64).copy() for x in m]
    for name in STRONG_IDENTIFIERS:
        k = FIELD_INDEX[name]
        mk, uk = out[k], u[k]
        cap = uk[0] * 2.0 ** -MIN_DISAGREE_BITS
        if mk[0] > cap:
            mk[-1] += mk[0] - cap
            mk[0] = cap
        if mk[-1] < uk[-1]:
            need = uk[-1] - mk[-1]
            for lv in range(len(mk) - 1):  # take it from the farthest levels first
                take = min(need, max(mk[lv] - 1e-6, 0.0))
                mk[lv] -= take
                mk[-1] += take
                need -= take
        out[k] = mk / mk.sum()
    # "same area, one street unknown" says only that the area agrees: never more than an agreeing area is
    # worth (where everyone lives in one city, nothing) — a missing street is not evidence of a match
    k, side = FIELD_INDEX["address"], 2
    if not single_source:
        return monotone_weights(out, u)
    mk, uk = out[k], u[k]
    cap = uk[side] / max(1.0 - uk[0], 1e-9)
    if mk[side] > cap:
        rest = 1.0 - mk[side]
        mk[side] = cap
        others = np.arange(len(mk)) != side
        mk[others] *= (1.0 - cap) / max(rest, 1e-12)
    return monotone_weights(out, u)


def score(model: FSModel, levels: np.ndarray, tf_codes: dict[str, np.ndarray], prior: np.ndarray | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """(match_weight, per-field weight contributions) for comparison levels. ``prior``: log2 prior odds per
    pair (see :func:`pair_prior`); the model's global prior when omitted."""
    contrib = np.zeros(levels.shape, dtype=np.float32)
    for k, f in enumerate(FIELDS):
        w = np.log2(model.m[k] / model.u[k]).astype(np.float32)
        col = levels[:, k]
        ok = col >= 0
        contrib[ok, k] = w[col[ok]]
        if f.tf_key is not None and f.tf_key in tf_codes and f.tf_key in model.tf:
            codes = tf_codes[f.tf_key]
            sel = codes >= 0
            if sel.any():
                tf = np.maximum(model.tf[f.tf_key][codes[sel]], model.tf_u_floor)
                contrib[sel, k] = np.log2(model.m[k][-1] / tf).astype(np.float32)
    if "email_local" in tf_codes and "email_local" in model.tf:
        from hub.dedupe.compare import FIELD_INDEX

        ke = FIELD_INDEX["email"]
        codes = tf_codes["email_local"]
        sel = codes >= 0
        if sel.any():
            tf = np.maximum(model.tf["email_local"][codes[sel]], model.tf_u_floor)
            w_close = np.log2(model.m[ke][2] / tf)
            w_exact = float(np.log2(model.m[ke][-1] / model.u[ke][-1]))
            contrib[sel, ke] = np.minimum(w_close, w_exact).astype(np.float32)
    # Full-name frequency: given names are not independent of family names (王芳, 张伟, John Smith are
    # far more common than tf(family) * tf(given) says), so when both agree exactly the pair gets the
    # weight of the joint name frequency; the correction is booked on the given_name column.
    if "name_key" in tf_codes and "name_key" in model.tf:
        from hub.dedupe.compare import FIELD_INDEX

        kf, kg = FIELD_INDEX["family_name"], FIELD_INDEX["given_name"]
        codes = tf_codes["name_key"]
        sel = codes >= 0
        if sel.any():
            tf = np.maximum(model.tf["name_key"][codes[sel]], model.tf_u_floor)
            joint = np.log2(model.m[kf][-1] * model.m[kg][-1] / tf)
            contrib[sel, kg] = (joint - contrib[sel, kf]).astype(np.float32)
    base = model.prior_log2_odds if prior is None else prior
    mw = base + contrib.sum(axis=1, dtype=np.float64)
    return mw, contrib


def group_key(a: str, b: str) -> str:
    """Name of the (unordered) pair of sources of a record pair."""
    return f"{a}|{b}" if a <= b else f"{b}|{a}"


def pair_prior(model: FSModel, source_names: np.ndarray, si: np.ndarray, sj: np.ndarray) -> np.ndarray:
    """log2 prior odds of every pair from its two records' source codes (``source_names[code]``)."""
    k = len(source_names)
    table = np.full(k * k, model.prior_log2_odds, dtype=np.float64)
    if model.group_prior:
        for a in range(k):
            for b in range(k):
                v = model.group_prior.get(group_key(str(source_names[a]), str(source_names[b])))
                if v is not None:
                    table[a * k + b] = v
    return table[si.astype(np.int64) * k + sj.astype(np.int64)]
