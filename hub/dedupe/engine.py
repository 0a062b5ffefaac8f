"""The matching engine's public verbs — prepare, block, fit, score, cluster — and ``deduplicate``, which chains them.

``hub dedupe`` and the golden stage (``hub.golden.matching``) both call these; nothing else matches records.

* ``prepare_records(frame)`` -> ``Records``: standardised matching keys (+ the shared name vocabulary).
* ``block(records, settings, new=mask)`` -> ``Candidates``: every blocking rule with its own cap and window;
  with ``new``, only pairs that involve a new record (new records against the indexed rest).
* ``compare_pairs(records, left, right)`` -> comparison levels per field.
* ``fit(records, candidates, levels, settings)`` -> ``Fit``: u from random pairs, m by EM, term frequencies,
  global and per-source-pair priors; ``Fit.model`` is a ``MatchModel`` that can be stored and reloaded.
* ``score(fs, records, left, right, levels)`` -> ``Scores``: match_weight = prior + the per-field weights
  (``explain`` gives them), match_probability, conflict (cannot-link evidence).
* ``cluster_records(records, fs, left, right, scores, settings, must_link=, cannot_link=)`` -> a label per record:
  non-chaining, with steward must-/cannot-links.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hub.dedupe import compare as compare_mod
from hub.dedupe import estimation
from hub.dedupe.arrays import distinct
from hub.dedupe.blocking import DEFAULT_RULES, BlockingRule, candidate_pairs
from hub.dedupe.cluster import cluster as cluster_graph
from hub.dedupe.compare import FIELD_INDEX, FIELDS, NameVocab, compare_fields, tf_codes
from hub.dedupe.model import MatchModel
from hub.dedupe.parallel import fork_map, worker_count
from hub.dedupe.prepare import Prepared, prepare, standardise
from hub.dedupe.scoring import (
    OVERRIDE_BITS,
    FSModel,
    estimate_u,
    group_key,
    pair_prior,
    personal_evidence,
)
from hub.dedupe.scoring import score as score_levels

log = logging.getLogger(__name__)

CHUNK = 2_000_000  # pairs scored at a time
CMP_CHUNK = 1_000_000  # pairs compared at a time (a task of a comparison worker)
CMP_PARALLEL_MIN = 400_000  # pairs above which the comparison is split among the workers (fewer: threads only)
BAND_AUTO, BAND_REVIEW, BAND_NON = "auto_match", "review", "non_match"
BAND_BY_CODE = (BAND_NON, BAND_REVIEW, BAND_AUTO)  # the bands of ``Scores.band_codes``


@dataclass(frozen=True)
class DedupeSettings:
    auto_match: float = 0.5  # match_probability at or above which a pair links records
    review: float = 0.1  # between review and auto_match: kept for a human
    rules: tuple[BlockingRule, ...] = DEFAULT_RULES
    u_sample_pairs: int = 300_000
    joint_name_tf: bool = False  # full-name frequency instead of family x given (stricter on 王芳-type names)
    ambiguity_margin: float = 1.0  # bits; rivals weaker than a record's best candidate by more never count
    min_support: float = 0.5  # mean match_probability to merge two partial clusters (scorers without profiles)
    seed: int = 42
    workers: int = 0  # processes for standardising distinct values (0 = one per core, at most 4; 1 = none)


@dataclass
class DedupeResult:
    clusters: pd.DataFrame  # record_id, cluster_id
    model: FSModel
    stats: dict = field(default_factory=dict)
    _pairs_builder: Callable[[], pd.DataFrame] | None = None
    _pairs: pd.DataFrame | None = None

    @property
    def pairs(self) -> pd.DataFrame:
        """Scored candidate pairs with match_weight, match_probability, band, conflict and per-field
        ``<field>_level`` (comparison_level label) and ``<field>_weight`` columns. Built on first use."""
        if self._pairs is None and self._pairs_builder is not None:
            self._pairs = self._pairs_builder()
        return self._pairs if self._pairs is not None else pd.DataFrame()


def _random_pairs(p: Prepared, k: int, link_only: bool, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = p.n
    i = rng.integers(0, n, size=k)
    j = rng.integers(0, n, size=k)
    keep = i != j
    if link_only:
        keep &= p.source[i] != p.source[j]
    return i[keep].astype(np.int32), j[keep].astype(np.int32)


MAX_SOURCE_GROUPS = 12  # more sources than this (a file per batch, say): one global prior


def _pair_groups(p: Prepared, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Group of each pair = its unordered pair of sources (``lo * S + hi``), or None with many sources."""
    k = len(p.source_names)
    if k < 2 or k > MAX_SOURCE_GROUPS:
        return None, 1
    # 16 bits hold k * k: a group per pair is 2 bytes, not 8 (36M candidate pairs: 0.3 GB less, 1 GB fewer
    # temporaries, at the fit's high-water mark)
    a, b = p.source[left].astype(np.int16), p.source[right].astype(np.int16)
    lo = np.minimum(a, b)
    np.maximum(a, b, out=b)
    lo *= k
    lo += b
    return lo, k * k


PRIOR_PSEUDO_MATCHES = 2.0


def _fixed_point_prior(w: np.ndarray, total: float, start: float) -> float:
    """log2 prior odds ``pi`` that explains itself: with ``pi`` as the prior, the expected number of matches
    among the candidate pairs (their posterior sum) is ``pi * total`` — the share of matches among all
    pairs, pairs outside the candidates being non-matches. ``w``: the pairs' match weights without prior.
    Computed on a 1/32-bit histogram of ``w`` so that it costs nothing at 10M pairs. Shrunk towards the
    global prior ``start`` by PRIOR_PSEUDO_MATCHES matches' worth of pairs: a source of a dozen records
    cannot talk itself into "every candidate pair is a match"."""
    if len(w) == 0 or total < 1:
        return start
    pi0 = 2.0 ** start / (1.0 + 2.0 ** start)
    pseudo_pairs = PRIOR_PSEUDO_MATCHES / max(pi0, 1e-300)
    lo = float(np.floor(w.min()))
    idx = np.clip(((w - lo) * 32).astype(np.int64), 0, None)
    cnt = np.bincount(idx).astype(np.float64)
    nz = np.flatnonzero(cnt)
    centres, cnt = lo + (nz + 0.5) / 32, cnt[nz]
    logit = start
    for _ in range(200):
        expected = float((cnt / (1.0 + np.exp2(-np.clip(centres + logit, -60, 60)))).sum())
        expected = min(max(expected, 0.5), total / 2.0)
        share = (expected + PRIOR_PSEUDO_MATCHES) / (total + pseudo_pairs)
        new = float(np.log2(share / (1.0 - share)))
        if abs(new - logit) < 1e-4:
            return new
        logit = new
    return logit


def _group_priors(p: Prepared, group: np.ndarray | None, w: np.ndarray, link_only: bool, start: float
                  ) -> dict[str, float]:
    """log2 prior odds per source pair, each the self-consistent share of matches of its pairs."""
    if group is None:
        return {}
    k = len(p.source_names)
    sizes = np.bincount(p.source, minlength=k).astype(np.float64)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(k * k + 1))
    out: dict[str, float] = {}
    for a in range(k):
        for b in range(a, k):
            if link_only and a == b:
                continue
            total = sizes[a] * (sizes[a] - 1) / 2.0 if a == b else sizes[a] * sizes[b]
            if total < 1:
                continue
            g = a * k + b
            out[group_key(str(p.source_names[a]), str(p.source_names[b]))] = _fixed_point_prior(
                w[order[bounds[g]:bounds[g + 1]]], total, start)
    return out


def canonical_order(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """``frame`` sorted by record_id, and the positions that restore the input order (None: already sorted)."""
    rid = frame["record_id"].astype(str).to_numpy()
    order = np.argsort(rid, kind="stable")
    if (order == np.arange(len(order))).all():
        return frame, None
    return frame.iloc[order].reset_index(drop=True), np.argsort(order, kind="stable")


def duplicate_summary(n_records: int, n_clusters: int) -> dict:
    """How many duplicates the clustering found — none is a normal answer."""
    return {"duplicate_records": n_records - n_clusters, "duplicate_share": (n_records - n_clusters) / max(n_records, 1)}


def _source_pair_totals(p: Prepared) -> dict[str, float]:
    sizes = np.bincount(p.source, minlength=len(p.source_names)).astype(np.float64)
    names = [str(x) for x in p.source_names]
    return {group_key(names[a], names[b]): (sizes[a] * (sizes[a] - 1) / 2.0 if a == b else sizes[a] * sizes[b])
            for a in range(len(names)) for b in range(a, len(names))}


def total_pairs(p: Prepared, link_only: bool) -> float:
    if not link_only:
        return p.n * (p.n - 1) / 2.0
    sizes = np.bincount(p.source).astype(np.float64)
    return float((sizes.sum() ** 2 - (sizes**2).sum()) / 2.0)


def id_conflict(p: Prepared, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Pairs whose two records hold different *validated* national ids (``Prepared.validated_id``: checksummed
    resident ids, SSNs): two people, whatever else they share. A typo that still passes the checksum is one in
    eleven; namesakes of one city sharing a mailbox are not rarer, and an id of similar digits (same region,
    birth dates years apart) is no typo."""
    v = p.validated_id
    if v is None or not v.any():
        return np.zeros(len(left), dtype=bool)
    codes = p.key("national_id").codes
    return v[left] & v[right] & (codes[left] != codes[right])


def conflict_mask(levels: np.ndarray, contrib: np.ndarray, ids_differ: np.ndarray | None = None) -> np.ndarray:
    """Pairs with hard conflicting evidence (cannot-link): a personal field disagrees outright (different
    given names, birth dates or national ids) and the personal fields (``PERSONAL_FIELDS``: not shared by a
    household) taken together — the disagreement's own negative weight included — are more than
    ``-OVERRIDE_BITS`` against one person. A typo'd birth date with the same national
    id and given name is one person; different given names at one address and phone (a household) are
    not, however much the shared address, phone and surname add up to. ``ids_differ`` (``id_conflict``):
    pairs with two different validated national ids, a conflict that no other evidence overrides."""
    conflicted = np.zeros(levels.shape, dtype=bool)
    for k, f in enumerate(FIELDS):
        if f.conflict_level is not None:
            conflicted[:, k] = levels[:, k] == f.conflict_level
    soft = conflicted.any(axis=1) & (personal_evidence(contrib) < OVERRIDE_BITS)
    return soft if ids_differ is None else soft | ids_differ


TF_MIN_OTHERS = 0.25  # a value held only by one person's records: as if a quarter of a stranger shared it


def _identifier_tf(cnt: np.ndarray, key: str, model: FSModel, n: int, expected_matches: float) -> np.ndarray:
    """Relative frequency of an identifier value among the *other people's* records, for its TF weight.

    The plain count c/N overstates how often a stranger holds the value: it counts the record itself and
    the person's own other records (a phone on one ERP and one call-centre record of one customer has c = 2
    and no stranger holding it). Subtracted: the record, and the expected number of the person's other
    records that carry the same value (other records per record, from the model's match count, times the
    share that agree when both have the field)."""
    field = {"phone": "phone", "email": "email", "email_local": "email", "name_key": "given_name",
             "company": "company"}[key]
    # an organisation's name is one party name among all the parties (a handful of companies among persons
    # does not make "Acme Trading" common); identifiers are compared among their holders
    holders = max(float(n if key == "company" else cnt.sum()), 1.0)
    others_per_record = 2.0 * expected_matches / max(n, 1)
    own = others_per_record * float(model.m[FIELD_INDEX[field]][-1]) * holders / max(n, 1)
    others = np.where(cnt > 0, np.maximum(cnt - 1.0 - own, TF_MIN_OTHERS), 0.0)
    return others / holders


# -- the verbs -------------------------------------------------------------------------------------------------


@dataclass
class Records:
    """A prepared batch of records: matching keys (``p``) and the shared name vocabulary (``vocab``)."""

    p: Prepared
    vocab: NameVocab

    @property
    def n(self) -> int:
        return self.p.n

    @property
    def record_id(self) -> np.ndarray:
        return self.p.record_id

    @property
    def standardised(self) -> pd.DataFrame | None:
        """Per-record standardised values (``prepare_records(..., capture=True)``), else None."""
        return self.p.standardised

    def fingerprint(self) -> np.ndarray:
        """A 64-bit hash per record of everything comparing and scoring read about it (its source, every
        matching key, its name vocabulary entries): two runs that give a record the same fingerprint compare
        and score its pairs identically under one model. Batch-level decisions show up here too (a phone set
        aside as shared by many names changes the fingerprint of every record holding it)."""
        from hub.dedupe.model import value_hashes

        # value tables shared by several keys (slots, vocabulary) hashed once, and only the values some record
        # holds (a group key's table is its parent's, of which few values are a group's)
        hashed: dict[int, tuple[np.ndarray, np.ndarray]] = {}

        def per_record(codes: np.ndarray, uniques: np.ndarray) -> np.ndarray:
            got = hashed.get(id(uniques))
            if got is None:
                got = hashed[id(uniques)] = (np.zeros(len(uniques), dtype=np.uint64), np.zeros(len(uniques), bool))
            h, done = got
            out = np.zeros(len(codes), dtype=np.uint64)
            ok = codes >= 0
            held = codes[ok]
            if len(held):
                # the values some record holds and not yet hashed: a mark per value, not a sort of the codes
                # (np.unique of every key's codes was ~6 s of an incremental match run at 1.55M records)
                todo = np.zeros(len(uniques), dtype=bool)
                todo[held] = True
                todo = np.flatnonzero(todo & ~done)
                if len(todo):
                    h[todo] = value_hashes(np.asarray(uniques, dtype=object)[todo])
                    done[todo] = True
                out[ok] = h[held]
            return out

        mult = np.uint64(0x100000001B3)
        acc = per_record(self.p.source.astype(np.int64), np.asarray(self.p.source_names, dtype=object))
        cols = [(self.p.keys[k].codes, self.p.keys[k].uniques) for k in sorted(self.p.keys)]
        cols += [(slot[k].codes, slot[k].uniques) for slot in self.p.slots for k in sorted(slot)]
        cols += [(slot[k].codes, slot[k].uniques) for slot in self.p.address_slots for k in sorted(slot)]
        cols += [(self.vocab.fam, self.vocab.uniques), (self.vocab.giv, self.vocab.uniques),
                 (self.vocab.canon, self.vocab.uniques)]
        with np.errstate(over="ignore"):
            for codes, uniques in cols:
                acc = acc * mult + per_record(np.asarray(codes), uniques) + np.uint64(1)
            if self.p.validated_id is not None:  # a validated id conflicts where the same unchecked one does not
                acc = acc * mult + self.p.validated_id.astype(np.uint64) + np.uint64(1)
        return acc


def prepare_records(frame: pd.DataFrame, workers: int = 1, standardised: pd.DataFrame | None = None,
                    capture: bool = False, staged_phones: Collection[str] = (),
                    unverified_phones: Collection[str] = ()) -> Records:
    """Standardise ``frame`` (``record_id`` + canonical columns) into matching keys. ``capture``: keep the
    per-record standardised values (``Records.standardised``, one row per record, a pure function of the
    record); ``standardised``: such rows (of this or of earlier calls, in ``frame``'s row order) used instead
    of standardising again — a caller that keeps them per record prepares only its new records' values.
    ``staged_phones`` / ``unverified_phones``: phone values that are E.164 numbers the hub's staging gave, and
    that it could not validate (``prepare``)."""
    p = prepare(frame, workers=workers, standardised=standardised, capture=capture, staged_phones=staged_phones,
                unverified_phones=unverified_phones)
    return Records(p=p, vocab=NameVocab.build(p))


def standardise_records(frame: pd.DataFrame, staged_phones: Collection[str] = (),
                        unverified_phones: Collection[str] = ()) -> pd.DataFrame:
    """The per-record standardised values of ``frame`` (``record_id`` + canonical columns), one row per record,
    columns sorted by name: what ``prepare_records(frame, capture=True)`` keeps in ``Records.standardised``. A pure
    function of each record (any batch of records gives each of them the same row), so a caller can standardise
    records as they arrive (the hub's staging) and hand the rows to ``prepare_records(standardised=)`` later."""
    return standardise(frame, staged_phones=staged_phones, unverified_phones=unverified_phones)


@dataclass
class Candidates:
    """Candidate pairs as sorted index arrays (``left < right``) and per-rule pair counts."""

    left: np.ndarray  # int32
    right: np.ndarray  # int32
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.left)


def block(records: Records, settings: DedupeSettings | None = None, link_only: bool = False,
          new: np.ndarray | None = None, workers: int | None = None) -> Candidates:
    """Candidate pairs: the union of every blocking rule (``settings.rules``), each with its own cap and window
    (a block over its cap pairs only records within ``window`` in its sort order). With ``new`` (a boolean
    mask), only pairs with at least one new record: new records blocked against the indexed rest, exactly the
    pairs of a full run that a new record takes part in."""
    s = settings or DedupeSettings()
    w = worker_count(s.workers if workers is None else workers)
    mask = None if new is None else np.asarray(new, dtype=bool)
    if mask is not None and len(mask) != records.n:
        raise ValueError(f"new: {len(mask)} flags for {records.n} records")
    left, right, stats = candidate_pairs(records.p, s.rules, link_only=link_only, workers=w, new=mask)
    return Candidates(left=left, right=right, stats=stats)


def compare_pairs(records: Records, left: np.ndarray, right: np.ndarray, workers: int = 1) -> np.ndarray:
    """Comparison levels (pairs x ``FIELDS``, int8, -1 = missing), in chunks: bounded temporary memory whatever
    the number of pairs; the chunks of a large input are compared in forked workers (each with one rapidfuzz
    thread: the cores are taken by the workers)."""
    p, vocab = records.p, records.vocab
    levels = np.empty((len(left), len(FIELDS)), dtype=np.int8)
    parent = os.getpid()
    parallel = workers > 1 and len(left) > min(CMP_PARALLEL_MIN, 2 * CMP_CHUNK)
    # forked: at least one chunk per worker (1.5M pairs in chunks of 1M kept one core idle for a third of it);
    # levels are per pair, whatever the chunks
    size = min(CMP_CHUNK, -(-len(left) // workers)) if parallel else CMP_CHUNK

    def compare_at(a: int) -> np.ndarray:
        if os.getpid() != parent:
            compare_mod.CPDIST_WORKERS = 1
        return compare_fields(p, vocab, left[a:a + size], right[a:a + size])

    starts = list(range(0, len(left), size))
    for a, lv in zip(starts, fork_map(compare_at, starts, workers if parallel else 1), strict=True):
        levels[a:a + size] = lv
    return levels


def empty_model() -> FSModel:
    """Uninformative parameters (every level equally likely): for inputs with nothing to compare."""
    return FSModel(m=[np.full(len(f.labels), 1.0 / len(f.labels)) for f in FIELDS],
                   u=[np.full(len(f.labels), 1.0 / len(f.labels)) for f in FIELDS],
                   prior_log2_odds=0.0, lambda_candidates=0.0, em_iterations=0)


@dataclass
class Fit:
    """What ``fit`` learnt: ``fs`` aligned to the records it was fitted on, ``model`` to store and reload, and
    the candidates' match weights without prior and conflict flags (``score`` need not recompute them)."""

    fs: FSModel
    model: MatchModel
    weight_without_prior: np.ndarray  # float32, per candidate pair
    conflict: np.ndarray  # bool, per candidate pair


WEIGH_PARALLEL_MIN = 1_000_000  # pairs from which their weights are computed on several processes


def _weights(fs: FSModel, records: Records, left: np.ndarray, right: np.ndarray, levels: np.ndarray,
             workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(match weight without prior, conflict) of the pairs, a chunk at a time: bounded temporaries. From
    ``WEIGH_PARALLEL_MIN`` pairs the chunks go to ``workers`` forked processes, which write into the two
    arrays themselves (anonymous shared memory: no copy of a chunk's result is sent back or held). 100k
    customers' 2.3M candidate pairs: 1.15 s in one process, the fit's longest step."""
    p, vocab = records.p, records.vocab
    n = len(left)
    parallel = workers > 1 and n >= WEIGH_PARALLEL_MIN
    size = min(CHUNK, max(1, -(-n // workers))) if parallel else CHUNK
    w_np = _shared_empty(n, np.float32) if parallel else np.empty(n, dtype=np.float32)
    conflict = _shared_empty(n, np.bool_) if parallel else np.empty(n, dtype=bool)
    zero = np.zeros(1)

    def weigh(a: int) -> None:
        sl = slice(a, a + size)
        w, contrib = score_levels(fs, levels[sl], tf_codes(p, vocab, left[sl], right[sl], levels[sl]), zero)
        w_np[sl], conflict[sl] = w, conflict_mask(levels[sl], contrib, id_conflict(p, left[sl], right[sl]))

    starts = list(range(0, n, size))
    if parallel and len(starts) > 1:
        # every chunk in a child, ``workers`` at a time (a lead task here would leave one slot for the rest)
        fork_map(weigh, starts, workers, collect=False)
    else:
        for a in starts:
            weigh(a)
    return w_np, conflict


def _shared_empty(n: int, dtype: type) -> np.ndarray:
    """An uninitialised array that forked processes write into and this one reads (a MAP_SHARED anonymous
    mapping, inherited by ``fork``)."""
    import mmap

    return np.frombuffer(mmap.mmap(-1, max(1, n * np.dtype(dtype).itemsize)), dtype=dtype, count=n)


def fit(records: Records, cand: Candidates, levels: np.ndarray, settings: DedupeSettings | None = None,
        link_only: bool = False) -> Fit:
    """Estimate the model on ``records`` without labels: u from random pairs, m by EM on the candidate pairs,
    term frequencies of names and identifiers, the global prior and one prior per pair of sources."""
    s = settings or DedupeSettings()
    p, vocab = records.p, records.vocab
    left, right = cand.left, cand.right
    rng = np.random.default_rng(s.seed)
    ri, rj = _random_pairs(p, min(s.u_sample_pairs, max(20_000, int(total_pairs(p, link_only)))), link_only, rng)
    # u from the near levels of reserved-range values too (how often random pairs agree exactly, whatever the
    # value); the parameters from EM when its solution passes the checks of hub.dedupe.estimation
    random_levels = compare_fields(p, vocab, ri, rj, exact_only_reserved=False)
    u = estimate_u(random_levels)
    tot = max(total_pairs(p, link_only), 2.0)
    fitted = estimation.fit(levels, random_levels, u, tot, p.n, estimation.evidence_holders(p),
                            single_source=len(p.source_names) == 1)
    del random_levels
    fs = FSModel(m=fitted.m, u=u, prior_log2_odds=fitted.prior_log2_odds, lambda_candidates=fitted.lam,
                 em_iterations=fitted.iterations, estimation=fitted.estimation, diagnostics=fitted.diagnostics)
    expected_matches = max(fitted.expected_matches, 1.0)
    for key, codes in (("family", vocab.fam), ("given", vocab.giv)):
        cnt = np.bincount(codes[codes >= 0], minlength=len(vocab.uniques)).astype(np.float64)
        fs.tf[key] = cnt / max(cnt.sum(), 1.0)
    # a name word is as common as it is in either part (Li Chen: "chen" parsed as a given name is rare as
    # one, but not as a name)
    fs.tf["family"] = fs.tf["given"] = np.maximum(fs.tf["family"], fs.tf["given"])
    for key in ("phone", "email", "email_local", "company") + (("name_key",) if s.joint_name_tf else ()):
        cnt = p.value_counts(key).astype(np.float64)
        fs.tf[key] = _identifier_tf(cnt, key, fs, p.n, expected_matches)

    w_np, conflict = _weights(fs, records, left, right, levels, worker_count(s.workers))
    # priors per pair of sources, from the evidence of the candidate pairs themselves
    group, _ = _pair_groups(p, left, right)
    fs.group_prior = estimation.cap_source_pair_priors(
        _group_priors(p, group, w_np, link_only, fs.prior_log2_odds), _source_pair_totals(p), fitted.max_matches)
    del group
    model = MatchModel.from_fit(fs, p, vocab, pairs=len(left))
    return Fit(fs=fs, model=model, weight_without_prior=w_np, conflict=conflict)


def match_probability(match_weight: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp2(-np.clip(match_weight, -60, 60)))).astype(np.float32)


@dataclass
class Scores:
    """Scored pairs: ``match_weight`` = ``prior_weight`` + the per-field weights of ``explain``."""

    match_weight: np.ndarray  # float32
    match_probability: np.ndarray  # float32
    conflict: np.ndarray  # bool: hard personal disagreement, never an auto-match
    levels: np.ndarray  # int8 (pairs x FIELDS), -1 = missing

    def band(self, settings: DedupeSettings | None = None) -> np.ndarray:
        """``auto_match`` / ``review`` / ``non_match`` per pair (a conflict is never more than a non-match)."""
        return np.array(BAND_BY_CODE)[self.band_codes(settings)]

    def band_codes(self, settings: DedupeSettings | None = None) -> np.ndarray:
        """``band`` as int8 codes, indices into ``BAND_BY_CODE`` (0 non-match, 1 review, 2 auto-match): one byte
        per pair where the band's text takes 40 (1.2 GB for 30M candidate pairs)."""
        s = settings or DedupeSettings()
        prob = self.match_probability
        code = np.where(prob >= s.auto_match, np.int8(2), np.where(prob >= s.review, np.int8(1), np.int8(0)))
        code[self.conflict] = 0
        return code.astype(np.int8, copy=False)

    def auto(self, settings: DedupeSettings | None = None) -> np.ndarray:
        s = settings or DedupeSettings()
        return (self.match_probability >= s.auto_match) & ~self.conflict


def score(fs: FSModel, records: Records, left: np.ndarray, right: np.ndarray, levels: np.ndarray | None = None,
          fitted: Fit | None = None) -> Scores:
    """Score pairs with the (bound) model ``fs``; ``levels`` are compared when not given. With ``fitted`` (the
    ``Fit`` of these very candidates) the weights are not recomputed."""
    p = records.p
    if levels is None:
        levels = compare_pairs(records, left, right)
    if fitted is not None:
        mw, conflict = fitted.weight_without_prior.copy(), fitted.conflict
    else:
        mw, conflict = _weights(fs, records, left, right, levels)
    prob = np.empty(len(left), dtype=np.float32)
    for a in range(0, len(left), CHUNK):  # the prior's and the probability's temporaries a chunk at a time
        sl = slice(a, a + CHUNK)
        mw[sl] += pair_prior(fs, p.source_names, p.source[left[sl]], p.source[right[sl]]).astype(np.float32)
        prob[sl] = match_probability(mw[sl])
    return Scores(match_weight=mw, match_probability=prob, conflict=conflict, levels=levels)


def explain(fs: FSModel, records: Records, left: np.ndarray, right: np.ndarray, levels: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(prior weight per pair, per-field weight per pair and field): together they add up to match_weight."""
    p, vocab = records.p, records.vocab
    prior_w = pair_prior(fs, p.source_names, p.source[left], p.source[right])
    _, contrib = score_levels(fs, levels, tf_codes(p, vocab, left, right, levels), prior_w)
    return prior_w, contrib


def pair_scorer(fs: FSModel, records: Records) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """``(i, j) -> (match_weight, match_probability, conflict, levels, contributions, ids_differ)`` for any
    pairs: what clustering uses to judge every member pair of a component (``ids_differ``: ``id_conflict``)."""
    p, vocab = records.p, records.vocab

    def score_pairs(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
        i, j = i.astype(np.int32), j.astype(np.int32)
        lv = compare_fields(p, vocab, i, j)
        w, c = score_levels(fs, lv, tf_codes(p, vocab, i, j, lv), pair_prior(fs, p.source_names, p.source[i],
                                                                             p.source[j]))
        hard = id_conflict(p, i, j)
        return w, 1.0 / (1.0 + np.exp2(-np.clip(w, -60, 60))), conflict_mask(lv, c, hard), lv, c, hard

    return score_pairs


def cluster_records(records: Records, fs: FSModel, left: np.ndarray, right: np.ndarray, scores: Scores,
            settings: DedupeSettings | None = None, must_link: tuple[np.ndarray, np.ndarray] | None = None,
            cannot_link: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Cluster label per record (the smallest member index of its cluster) from the auto-match pairs, without
    chaining (``cluster.py``). Steward decisions as index pairs: ``must_link`` pairs are merged whatever the
    model says, ``cannot_link`` pairs never end up in one cluster (nor does a third record bridge them)."""
    s = settings or DedupeSettings()
    auto = scores.auto(s)
    return cluster_graph(records.n, left[auto].astype(np.int64), right[auto].astype(np.int64),
                           scores.match_weight[auto], pair_scorer(fs, records), min_support=s.min_support,
                           ambiguity_margin=s.ambiguity_margin, must_link=must_link, cannot_link=cannot_link)


def pairs_frame(records: Records, fs: FSModel, left: np.ndarray, right: np.ndarray, scores: Scores,
                labels: np.ndarray | None, settings: DedupeSettings | None = None) -> pd.DataFrame:
    """Scored pairs with ``<field>_level`` (comparison_level label) and ``<field>_weight`` columns; ``prior_weight``
    plus the ``<field>_weight`` columns add up to ``match_weight``."""
    p = records.p
    prior_w, contrib = explain(fs, records, left, right, scores.levels)
    band = scores.band(settings)
    data: dict[str, object] = {
        "record_id_l": p.record_id[left],
        "record_id_r": p.record_id[right],
        "match_weight": scores.match_weight.astype(np.float32),
        "match_probability": scores.match_probability.astype(np.float32),
        "prior_weight": np.round(prior_w, 3).astype(np.float32),
        "band": pd.Categorical(band, categories=[BAND_AUTO, BAND_REVIEW, BAND_NON]),
        "conflict": scores.conflict,
    }
    if labels is not None:
        data["same_cluster"] = labels[left] == labels[right]
    for k, f in enumerate(FIELDS):
        lab = np.array(("missing",) + f.labels, dtype=object)
        data[f"{f.name}_level"] = pd.Categorical.from_codes(scores.levels[:, k].astype(np.int16) + 1, categories=lab)
        data[f"{f.name}_weight"] = np.round(contrib[:, k], 3)
    return pd.DataFrame(data)


def deduplicate(
    frame: pd.DataFrame,
    link_only: bool = False,
    settings: DedupeSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> DedupeResult:
    """Cluster the records of ``frame`` (needs ``record_id``; canonical columns optional, raw values ok):
    prepare -> block -> compare -> fit -> score -> cluster.

    With ``link_only`` only records of different ``source`` values are compared (two-file linkage).
    """
    s = settings or DedupeSettings()
    step = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    stats: dict = {}
    if "record_id" not in frame.columns:
        raise ValueError("input has no record_id column")
    # one canonical order (by record_id) for everything that follows: the same records in any order give the same
    # random pairs, blocking windows, tie-breaks and so the same clusters; output in the input's order
    frame, restore = canonical_order(frame)
    step("standardise")
    records = prepare_records(frame, workers=s.workers)
    p = records.p
    stats["t_prepare"] = time.perf_counter() - t0

    if p.n < 2 or total_pairs(p, link_only) < 1:
        # nothing to compare (empty input, one record, or link-only with a single source)
        stats.update(n_records=p.n, n_clusters=p.n, t_total=time.perf_counter() - t0, **duplicate_summary(p.n, p.n))
        clusters = pd.DataFrame({"record_id": p.record_id, "cluster_id": p.record_id})
        if restore is not None:
            clusters = clusters.iloc[restore].reset_index(drop=True)
        return DedupeResult(clusters=clusters, model=empty_model(), stats=stats, _pairs=pd.DataFrame(
            columns=["record_id_l", "record_id_r", "match_weight", "match_probability", "band"]))

    step("blocking")
    workers = worker_count(s.workers)
    cand = block(records, s, link_only=link_only, workers=workers)
    left, right = cand.left, cand.right
    stats["blocking"] = cand.stats
    stats["t_blocking"] = time.perf_counter() - t0

    step("compare")
    levels = compare_pairs(records, left, right, workers)
    stats["t_compare"] = time.perf_counter() - t0

    step("estimate")
    fitted = fit(records, cand, levels, s, link_only=link_only)
    model = fitted.fs
    stats["t_estimate"] = time.perf_counter() - t0

    step("score")
    scores = score(model, records, left, right, levels, fitted=fitted)
    del fitted
    stats["t_score"] = time.perf_counter() - t0
    stats["pairs_auto_match"] = int(scores.auto(s).sum())

    step("cluster")
    labels = cluster_records(records, model, left, right, scores, s)
    clusters = pd.DataFrame({"record_id": p.record_id, "cluster_id": p.record_id[labels]})
    if restore is not None:
        clusters = clusters.iloc[restore].reset_index(drop=True)
    stats["n_records"] = p.n
    stats["n_clusters"] = int(len(distinct(labels)))
    stats.update(duplicate_summary(p.n, stats["n_clusters"]))
    stats["set_aside"] = dict(p.set_aside)
    stats["t_total"] = time.perf_counter() - t0

    return DedupeResult(clusters=clusters, model=model, stats=stats,
                        _pairs_builder=lambda: pairs_frame(records, model, left, right, scores, labels, s))


__all__ = [
    "BAND_AUTO", "BAND_BY_CODE", "BAND_NON", "BAND_REVIEW", "Candidates", "DedupeResult", "DedupeSettings", "FIELD_INDEX", "Fit",
    "MatchModel", "Records", "Scores", "block", "cluster_records", "compare_pairs", "conflict_mask", "deduplicate", "explain",
    "fit", "id_conflict", "pair_scorer", "pairs_frame", "prepare_records", "score", "worker_count",
]
