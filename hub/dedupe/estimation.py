"""Estimation that cannot say nonsense: EM, then checks that its match class is one person's records.

Unsupervised EM splits the candidate pairs into the two groups that explain their comparison patterns best.
On data with many duplicates that split is "same person / not". On data with none — the first sync of an
ERP, where every party is a different person and names come from a short list — the best split is
something else, e.g. "same given name / not", and the fitted model then says that an agreeing given name is
worth 15 bits and a different e-mail nothing. This module fits EM and then asks four questions of the
solution, each a statistical check rather than a rule about particular values:

* **Does strong-identifier agreement support the prior?** A person's records that both hold an e-mail, a
  phone or a national id share it at least ``MIN_IDENTIFIER_AGREEMENT`` of the time (people keep their
  number; a corrected typo is not a different number). So ``D`` candidate pairs agreeing on an identifier
  that a share ``c`` of pairs can hold bound the number of matching pairs: ``M <= (D + 1) / (c * a)``.
  Splink derives its prior from deterministic rules the same way (and refuses data where they find
  nothing); here the bound caps the prior always, and an EM solution far above it is rejected.
* **Is the match class explained by one low-cardinality field?** If most of the evidence that makes EM's
  matches matches comes from one field that random pairs share often (a given name among sixteen), the
  class is "people with that name", not "one person".
* **Do the matches agree on their names?** A person's records rarely carry outright different family or
  given names (typos, nicknames and scripts are levels of their own); a class where most do holds records
  that share a house or a phone, not one person's records.
* **Do the matches keep one birth date and one national id?** A person's records that both hold a birth date
  (or an id) rarely hold two people's — typos are levels of their own. A class where many do is "shares a
  name and a mailbox" (namesakes given one name-derived e-mail, at a million customers more such pairs than
  true duplicates), and a model fitted on it charges a contradicting birth date about one bit, not twelve.
* **Are there enough confident pairs to learn from?** Fewer than ``MIN_ANCHORS`` pairs whose names agree
  *and* that share an identifier or a birth date leave EM nothing real to learn the m-probabilities from.

A solution that fails a check is replaced by conservative parameters (``CONSERVATIVE_M``: what a match
typically looks like, no data needed) with the prior capped by the identifier bound; the model says so in
``FSModel.estimation`` and ``FSModel.diagnostics``, which the CLI prints and the pipeline reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hub.dedupe.compare import FIELD_INDEX, FIELDS
from hub.dedupe.prepare import Prepared
from hub.dedupe.scoring import STRONG_IDENTIFIERS, constrain_identifiers, em_fit

MIN_IDENTIFIER_AGREEMENT = 0.3  # share of a person's record pairs holding an identifier that agree on it
MIN_COVERAGE = 0.05  # share of record pairs that can both hold an identifier for its bound to count
BOUND_SLACK_BITS = 1.0  # EM's prior may exceed the identifier bound by this much before it is rejected
DOMINANT_SHARE = 0.5  # one field giving more than this share of the match class's evidence ...
LOW_CARDINALITY_U = 0.02  # ... that random pairs share more often than this: the class is that field
MAX_NAME_DISAGREEMENT = 0.5  # a person's records have outright different family or given names less often
MAX_IDENTITY_DISAGREEMENT = 0.3  # a person's record pairs hold two people's birth dates / ids less often
IDENTITY_FIELDS = ("birth_date", "national_id")
MIN_IDENTITY_SUPPORT = 30.0  # matches holding the field on both sides needed to judge it
MIN_ANCHORS = 30  # confident pairs (names agree + identifier or birth date agrees) EM needs to learn from
NO_IDENTIFIER_MATCH_SHARE = 0.1  # without identifiers, conservative parameters assume <= 0.1 matches/record

# What the record pairs of one person look like, with no data to learn from: names and birth dates mostly
# agree, identifiers agree when both are held (less so for e-mail and phone, which people change), addresses
# often. Levels as in compare.FIELDS (far ... exact).
CONSERVATIVE_M: dict[str, tuple[float, ...]] = {
    # a typo usually leaves a name "close"; "weak" (Emma / Mia, an initial) is rare for one person — and is how
    # two members of a household who share a house and a surname look
    "family_name": (0.03, 0.02, 0.10, 0.85),
    "given_name": (0.04, 0.02, 0.12, 0.82),
    "birth_date": (0.03, 0.02, 0.05, 0.90),
    "national_id": (0.03, 0.02, 0.05, 0.90),
    "phone": (0.20, 0.03, 0.02, 0.75),
    "email": (0.20, 0.02, 0.08, 0.70),
    "address": (0.08, 0.07, 0.10, 0.05, 0.10, 0.60),
    "gender": (0.03, 0.97),
    "company": (0.15, 0.15, 0.70),
}


@dataclass
class Fit:
    m: list[np.ndarray]
    lam: float  # share of matches among the candidate pairs
    iterations: int
    prior_log2_odds: float  # over all record pairs
    max_matches: float | None  # identifier bound on the number of matching pairs (None: no identifier held)
    estimation: str = "em"  # or "conservative"
    diagnostics: list[dict] = field(default_factory=list)

    @property
    def expected_matches(self) -> float:
        return self._total * 2.0 ** self.prior_log2_odds / (1.0 + 2.0 ** self.prior_log2_odds)

    _total: float = 0.0


def _log2_odds(matches: float, total: float) -> float:
    matches = min(max(matches, 1e-3), total / 2.0)
    return float(np.log2(matches / max(total - matches, 1.0)))


def _agrees(levels: np.ndarray, name: str) -> np.ndarray:
    """Deterministic agreement on a person-level field: an identifier exact or one typo away, a birth date
    exact, a street address exact."""
    k = FIELD_INDEX[name]
    top = len(FIELDS[k].labels) - 1
    return levels[:, k] >= (top - 1 if name in STRONG_IDENTIFIERS else top)


DETERMINISTIC_FIELDS = (*STRONG_IDENTIFIERS, "birth_date", "address")
MIN_ANY_AGREEMENT = 0.5  # a person's record pairs have alike names and share a deterministic field this often ...
DETERMINISTIC_RECALL = 0.8
MAX_CHANCE_AGREEMENT = 0.01  # a field that more random pairs agree on is no deterministic evidence  # ... and typically this often (the prior of conservative parameters)


def _names_alike(levels: np.ndarray) -> np.ndarray:
    """Family and given name at least weakly alike (typos, nicknames, initials, scripts), or for
    organisations the company name."""
    return ((levels[:, FIELD_INDEX["family_name"]] >= 1) & (levels[:, FIELD_INDEX["given_name"]] >= 1)) \
        | (levels[:, FIELD_INDEX["company"]] >= 1)


def _excess(agree: np.ndarray, chance: float) -> float:
    """Agreeing candidate pairs beyond what chance gives (random pairs agree at rate ``chance``)."""
    return max(float(agree.sum()) - chance * len(agree), 0.0)


def identifier_bound(levels: np.ndarray, random_levels: np.ndarray, held: dict[str, np.ndarray]
                     ) -> tuple[float | None, float | None, dict]:
    """(bound, estimate, detail): an upper bound on the number of matching pairs from deterministic
    agreement among the candidate pairs (see module doc), and the deterministic estimate of that number
    (Splink's prior from deterministic rules, with the recall of conservative parameters). ``held``: per
    record, whether it holds a value of the field that can be evidence. Agreement is counted beyond chance
    (a street everyone shares is no agreement). None where no field is held widely enough."""
    best, detail = None, {}
    for name in STRONG_IDENTIFIERS:
        coverage = float(held[name].mean()) ** 2 if name in held else 0.0
        if coverage < MIN_COVERAGE:
            continue
        agree = _excess(_agrees(levels, name), float(_agrees(random_levels, name).mean()))
        bound = (agree + 1.0) / (coverage * MIN_IDENTIFIER_AGREEMENT)
        detail[name] = {"agreeing_pairs": round(agree, 1), "coverage": round(coverage, 4),
                        "max_matches": round(bound, 1)}
        best = bound if best is None else min(best, bound)
    # fields that random pairs rarely agree on (a street everyone shares is no evidence of anything)
    fields = [f for f in DETERMINISTIC_FIELDS if f in held and len(random_levels)
              and float(_agrees(random_levels, f).mean()) < MAX_CHANCE_AGREEMENT]
    estimate = None
    if fields:
        any_held = np.zeros(len(held[fields[0]]), dtype=bool)
        for f in fields:
            any_held |= held[f]
        coverage = float(any_held.mean()) ** 2
        if coverage >= MIN_COVERAGE:
            # a deterministic rule as Splink would write it: the names alike and one such field the same
            agree_c = np.zeros(len(levels), dtype=bool)
            agree_r = np.zeros(len(random_levels), dtype=bool)
            for f in fields:
                agree_c |= _agrees(levels, f)
                agree_r |= _agrees(random_levels, f)
            agree_c &= _names_alike(levels)
            agree_r &= _names_alike(random_levels)
            agree = _excess(agree_c, float(agree_r.mean()) if len(agree_r) else 0.0)
            bound = (agree + 1.0) / (coverage * MIN_ANY_AGREEMENT)
            estimate = (agree + 1.0) / (coverage * DETERMINISTIC_RECALL)
            detail["any"] = {"agreeing_pairs": round(agree, 1), "coverage": round(coverage, 4),
                             "max_matches": round(bound, 1)}
            best = bound if best is None else min(best, bound)
    return best, estimate, detail


def _anchors(pat: np.ndarray, counts: np.ndarray) -> float:
    fam, giv = pat[:, FIELD_INDEX["family_name"]], pat[:, FIELD_INDEX["given_name"]]
    names = (fam >= 2) & (giv >= 2)
    ident = np.zeros(len(pat), dtype=bool)
    for name in (*STRONG_IDENTIFIERS, "birth_date"):
        k = FIELD_INDEX[name]
        ident |= pat[:, k] == len(FIELDS[k].labels) - 1
    return float(counts[names & ident].sum())


def _dominant_field(trace: dict, u_random: list[np.ndarray]) -> tuple[str, float] | None:
    """The field that explains EM's match class when it is a low-cardinality one: (name, share)."""
    pat, counts, post = trace["pat"], trace["counts"], trace["post"]
    wm = post * counts
    if wm.sum() <= 0:
        return None
    contrib = np.zeros(len(FIELDS))
    for k in range(len(FIELDS)):
        col = pat[:, k]
        ok = col >= 0
        w = np.log2(trace["m_em"][k] / trace["u_free"][k])
        contrib[k] = float((wm[ok] * w[col[ok]]).sum() / wm.sum())
    pos = np.maximum(contrib, 0.0)
    if pos.sum() <= 0:
        return None
    k = int(np.argmax(pos))
    share = float(pos[k] / pos.sum())
    if share > DOMINANT_SHARE and float(u_random[k][-1]) > LOW_CARDINALITY_U:
        return FIELDS[k].name, share
    return None


def _identity_disagreement(trace: dict, m: list[np.ndarray]) -> list[tuple[str, float, float]]:
    """(field, share, support) per field of IDENTITY_FIELDS whose farthest level holds more than
    MAX_IDENTITY_DISAGREEMENT of the fitted match class (``m``: what scoring would use), where at least
    MIN_IDENTITY_SUPPORT expected matches hold it on both sides."""
    pat, wm = trace["pat"], trace["post"] * trace["counts"]
    out = []
    for name in IDENTITY_FIELDS:
        k = FIELD_INDEX[name]
        support = float(wm[pat[:, k] >= 0].sum())
        share = float(m[k][0])
        if support >= MIN_IDENTITY_SUPPORT and share > MAX_IDENTITY_DISAGREEMENT:
            out.append((name, share, support))
    return out


def conservative_m(u: list[np.ndarray], single_source: bool = False) -> list[np.ndarray]:
    m = [np.array(CONSERVATIVE_M[f.name], dtype=np.float64) for f in FIELDS]
    # "same area, a street unknown" (missing, or a company's site that places a record in a group) says that
    # the area agrees, no more and no less: what one person's records typically look like cannot say how
    # often streets are unknown in this data
    k, side = FIELD_INDEX["address"], 2
    ma, ua = m[k] / m[k].sum(), u[k]
    want = ua[side] / max(1.0 - ua[0], 1e-9) * (1.0 - ma[0])
    rest = 1.0 - ma[side]
    others = np.arange(len(ma)) != side
    ma[others] *= (1.0 - want) / max(rest, 1e-12)
    ma[side] = want
    m[k] = ma
    return constrain_identifiers([x / x.sum() for x in m], u, single_source)


def fit(levels: np.ndarray, random_levels: np.ndarray, u: list[np.ndarray], total_pairs: float, n_records: int,
        held: dict[str, np.ndarray], single_source: bool = False) -> Fit:
    """m, prior and diagnostics for the candidate pairs' comparison ``levels`` (see module doc);
    ``random_levels``: comparisons of random pairs (what chance agreement looks like); ``held``: per
    deterministic field, which records hold a value that can be evidence."""
    total = max(total_pairs, 2.0)
    diagnostics: list[dict] = []
    bound, estimate, bound_detail = identifier_bound(levels, random_levels, held)
    if len(levels) == 0:
        m = conservative_m(u, single_source)
        prior = _log2_odds(1.0, total)
        return Fit(m, 0.0, 0, prior, bound, "conservative", [], _total=total)
    trace: dict = {}
    m, lam_g, iters = em_fit(levels, u, trace=trace)
    lam = float(lam_g[0])
    em_matches = max(lam * len(levels), 1.0)
    em_prior = _log2_odds(em_matches, total)
    degenerate = False
    if bound is not None:
        bound_prior = _log2_odds(bound, total)
        if em_prior > bound_prior + BOUND_SLACK_BITS:
            degenerate = True
            diagnostics.append({
                "code": "prior_unsupported",
                "message": f"EM's match class holds {em_matches:,.0f} pairs, but strong identifiers support at most "
                           f"{bound:,.0f}: too many for the identifiers the records share",
                "em_matches": round(em_matches, 1), "max_matches": round(bound, 1), "identifiers": bound_detail})
    dominant = _dominant_field(trace, u)
    if dominant is not None:
        degenerate = True
        diagnostics.append({
            "code": "match_class_one_field",
            "message": f"EM's match class is explained by one low-cardinality field ({dominant[0]}, "
                       f"{dominant[1]:.0%} of its evidence): it groups records by that value, not by person",
            "field": dominant[0], "share": round(dominant[1], 3)})
    differ = {f: float(trace["m_em"][FIELD_INDEX[f]][0]) for f in ("family_name", "given_name")}
    if max(differ.values()) > MAX_NAME_DISAGREEMENT:
        degenerate = True
        name, share = max(differ.items(), key=lambda kv: kv[1])
        diagnostics.append({
            "code": "match_class_names_differ",
            "message": f"in {share:.0%} of EM's matches the {name.replace('_', ' ')} differs outright: the class "
                       "holds records that share something else (a house, a phone), not one person's records",
            "field": name, "share": round(share, 3)})
    for name, share, support in _identity_disagreement(trace, m):
        degenerate = True
        diagnostics.append({
            "code": "match_class_identity_differs",
            "message": f"in {share:.0%} of EM's matches that both hold a {name.replace('_', ' ')} it is a different "
                       "one: the class holds records that share a name and a mailbox or phone, not one person's "
                       "records",
            "field": name, "share": round(share, 3), "support": round(support, 1)})
    anchors = _anchors(trace["pat"], trace["counts"])
    if anchors < MIN_ANCHORS:
        degenerate = True
        diagnostics.append({
            "code": "few_confident_pairs",
            "message": f"only {anchors:.0f} pairs agree on their names and on an identifier or birth date "
                       f"(EM needs {MIN_ANCHORS}): too few duplicates to learn from",
            "confident_pairs": int(anchors)})
    if not degenerate:
        m = constrain_identifiers(m, u, single_source)
        prior = em_prior if bound is None else min(em_prior, _log2_odds(bound, total))
        return Fit(m, lam, iters, prior, bound, "em", diagnostics, _total=total)
    m = conservative_m(u, single_source)
    if estimate is not None:
        prior = _log2_odds(min(estimate, bound if bound is not None else estimate), total)
        cap = estimate
    else:
        cap = NO_IDENTIFIER_MATCH_SHARE * n_records
        prior = _fixed_point_prior(trace["pat"], trace["counts"], m, u, total, _log2_odds(cap, total))
    diagnostics.append({
        "code": "conservative_parameters",
        "message": "estimated parameters rejected; conservative parameters used, the prior from deterministic "
                   "agreement (a match needs an identifier, a birth date or an address besides the name)",
        "expected_matches": round(cap, 1)})
    lam = min(2.0 ** prior * total / max(len(levels), 1), 1.0)
    return Fit(m, lam, iters, prior, bound, "conservative", diagnostics, _total=total)


def _fixed_point_prior(pat: np.ndarray, counts: np.ndarray, m: list[np.ndarray], u: list[np.ndarray],
                       total: float, cap: float) -> float:
    """The prior that explains itself under the given m/u (expected matches among the candidates =
    prior share of all pairs), started from and never above ``cap``."""
    w = np.zeros(len(pat))
    for k in range(len(FIELDS)):
        col = pat[:, k]
        ok = col >= 0
        w[ok] += np.log2(m[k] / u[k])[col[ok]]
    logit = cap
    for _ in range(100):
        expected = float((counts / (1.0 + np.exp2(-np.clip(w + logit, -60, 60)))).sum())
        new = min(_log2_odds(max(expected, 1.0), total), cap)
        if abs(new - logit) < 1e-4:
            break
        logit = new
    return logit


def evidence_holders(p: Prepared) -> dict[str, np.ndarray]:
    """Per deterministic field, the records holding a value that can be evidence (a reserved-range e-mail or
    phone compares only to its exact copy, so it does not count as held)."""
    out = {}
    for name, key in (("email", "email"), ("phone", "phone"), ("national_id", "national_id"),
                      ("birth_date", "dob"), ("address", "street")):
        held = p.key(key).codes >= 0
        if f"{key}_reserved" in p.keys:
            held &= p.key(f"{key}_reserved").codes < 0
        out[name] = held
    return out


def cap_source_pair_priors(priors: dict[str, float], pair_totals: dict[str, float], max_matches: float | None
                           ) -> dict[str, float]:
    """No pair of sources holds more matches than the identifier bound allows for the whole input."""
    if max_matches is None:
        return priors
    return {key: min(v, _log2_odds(max_matches, pair_totals[key])) if key in pair_totals else v
            for key, v in priors.items()}
