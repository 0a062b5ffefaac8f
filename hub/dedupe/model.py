"""A fitted matching model that outlives the records it was fitted on: store it, reload it, apply it elsewhere.

``FSModel`` (``scoring.py``) holds term frequencies as arrays aligned to one prepared batch's value codes.
``MatchModel`` keeps them keyed by a 64-bit hash of the *value* instead, so the same model scores a later
batch — new records against the rest, or a full rebuild — identically: a value seen once at fit time, or
never, gets the frequency of a value seen once. Values are hashed (pandas' SipHash), so a stored model holds
no names, phone numbers or e-mail addresses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hub.dedupe.compare import NameVocab
from hub.dedupe.prepare import Prepared
from hub.dedupe.scoring import FSModel

VOCAB_TF_KEYS = ("family", "given")  # term frequencies indexed by the shared name vocabulary


def tf_uniques(key: str, p: Prepared, vocab: NameVocab) -> np.ndarray:
    """The distinct values a term-frequency table of ``key`` is aligned to in one prepared batch."""
    return vocab.uniques if key in VOCAB_TF_KEYS else p.key(key).uniques


HASH_SLICE = 100_000  # values hashed at a time


def value_hashes(values: np.ndarray) -> np.ndarray:
    """Stable 64-bit hash of each value (the same in every process and run)."""
    if len(values) == 0:
        return np.empty(0, dtype=np.uint64)
    # categorize=False: the same hashes (categorising is pandas' shortcut for repeated values), but the values
    # hashed here are mostly distinct, where factorising first only costs (6x at 20k records). In slices: each
    # value's hash is its own, and a fixed-width text array of a million 100-character values is 0.4 GB
    values = np.asarray(values, dtype=object)
    out = np.empty(len(values), dtype=np.uint64)
    for a in range(0, len(values), HASH_SLICE):
        part = values[a:a + HASH_SLICE]
        # texts are hashed as they are: the round trip through numpy's text type only turns other values into
        # their text and drops trailing NULs (a third of the time, and a copy of every value)
        if not all(type(v) is str and v[-1:] != "\0" for v in part):
            part = part.astype(str).astype(object)
        out[a:a + HASH_SLICE] = pd.util.hash_array(part, categorize=False)
    return out


@dataclass
class TermFrequencies:
    """Relative frequency per value hash; ``default`` for a value not listed (seen once at fit time, or never)."""

    hashes: np.ndarray  # uint64, sorted
    freq: np.ndarray  # float64, aligned with hashes
    default: float

    def lookup(self, values: np.ndarray) -> np.ndarray:
        h = value_hashes(values)
        out = np.full(len(h), self.default, dtype=np.float64)
        if len(self.hashes) and len(h):
            pos = np.minimum(np.searchsorted(self.hashes, h), len(self.hashes) - 1)
            hit = self.hashes[pos] == h
            out[hit] = self.freq[pos[hit]]
        return out


@dataclass
class MatchModel:
    """Fellegi–Sunter parameters (m, u per comparison level, global and per-source-pair priors) plus term
    frequencies by value: everything ``score`` needs, independent of any batch of records."""

    fs: FSModel  # its ``tf`` is empty: see ``tf``
    tf: dict[str, TermFrequencies] = field(default_factory=dict)
    records: int = 0  # records it was fitted on
    pairs: int = 0  # candidate pairs it was fitted on
    match_rate: float = 0.0  # share of the candidate pairs that were auto-matches at fit time

    @classmethod
    def from_fit(cls, fs: FSModel, p: Prepared, vocab: NameVocab, pairs: int = 0, match_rate: float = 0.0
                 ) -> MatchModel:
        tables: dict[str, TermFrequencies] = {}
        for key, arr in fs.tf.items():
            arr = np.asarray(arr, dtype=np.float64)
            uniques = tf_uniques(key, p, vocab)
            if len(arr) != len(uniques):
                raise ValueError(f"term frequencies of {key!r} do not line up with the prepared values")
            nz = arr[arr > 0]
            once = float(nz.min()) if len(nz) else 0.0
            # every value whose frequency is not the default, zeros included: applied to the same records the
            # bound model scores exactly as the fitted one
            sel = np.flatnonzero(arr != once)
            h = value_hashes(uniques[sel])
            order = np.argsort(h, kind="stable")
            tables[key] = TermFrequencies(hashes=h[order], freq=arr[sel][order], default=once)
        bare = dataclasses.replace(fs, tf={}, group_prior=dict(fs.group_prior))
        return cls(fs=bare, tf=tables, records=p.n, pairs=pairs, match_rate=match_rate)

    @classmethod
    def from_weights(cls, weights: dict[str, dict[str, float]], prior_log2_odds: float) -> MatchModel:
        """A fixed-weight model: ``weights[field][level]`` in bits (levels not given weigh 0), no term-frequency
        adjustment, one prior. The same engine with weights chosen by hand instead of estimated."""
        from hub.dedupe.compare import FIELDS

        unknown = set(weights) - {f.name for f in FIELDS}
        if unknown:
            raise ValueError(f"unknown matching fields: {sorted(unknown)}")
        m, u = [], []
        for f in FIELDS:
            given = weights.get(f.name, {})
            bad = set(given) - set(f.labels)
            if bad:
                raise ValueError(f"unknown levels of {f.name}: {sorted(bad)}")
            m.append(np.array([2.0 ** float(given.get(lab, 0.0)) for lab in f.labels], dtype=np.float64))
            u.append(np.ones(len(f.labels), dtype=np.float64))
        fs = FSModel(m=m, u=u, prior_log2_odds=float(prior_log2_odds), lambda_candidates=0.0, em_iterations=0,
                     estimation="fixed")
        return cls(fs=fs)

    def forget(self, values: list[str]) -> int:
        """Take these values out of the term-frequency tables (an erased person's phone, e-mail…): they
        weigh as a value seen once from now on. Returns how many entries were removed."""
        h = value_hashes(np.asarray(sorted(set(values)), dtype=object))
        removed = 0
        for key, t in list(self.tf.items()):
            keep = ~np.isin(t.hashes, h)
            removed += int((~keep).sum())
            self.tf[key] = TermFrequencies(hashes=t.hashes[keep], freq=t.freq[keep], default=t.default)
        return removed

    def bind(self, p: Prepared, vocab: NameVocab) -> FSModel:
        """The model as an ``FSModel`` aligned to the value codes of ``p``."""
        arrays = {key: t.lookup(tf_uniques(key, p, vocab)) for key, t in self.tf.items()}
        return dataclasses.replace(self.fs, tf=arrays)

    # persistence ----------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        fs = self.fs
        return {
            "format": 2,
            "m": [np.asarray(x, dtype=np.float64).tolist() for x in fs.m],
            "u": [np.asarray(x, dtype=np.float64).tolist() for x in fs.u],
            "prior_log2_odds": float(fs.prior_log2_odds),
            "lambda_candidates": float(fs.lambda_candidates),
            "em_iterations": int(fs.em_iterations),
            "tf_u_floor": float(fs.tf_u_floor),
            "group_prior": {k: float(v) for k, v in fs.group_prior.items()},
            "estimation": fs.estimation,
            "diagnostics": [dict(x) for x in fs.diagnostics],
            "tf": {k: {"hashes": t.hashes.astype(np.uint64).tolist(), "freq": t.freq.tolist(),
                       "default": t.default} for k, t in self.tf.items()},
            "records": self.records,
            "pairs": self.pairs,
            "match_rate": self.match_rate,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MatchModel:
        if d.get("format") != 2:
            raise ValueError("stored matching model has an older format; retrain it")
        fs = FSModel(m=[np.asarray(x, dtype=np.float64) for x in d["m"]],
                     u=[np.asarray(x, dtype=np.float64) for x in d["u"]],
                     prior_log2_odds=float(d["prior_log2_odds"]), lambda_candidates=float(d["lambda_candidates"]),
                     em_iterations=int(d["em_iterations"]), tf_u_floor=float(d.get("tf_u_floor", 1e-7)),
                     group_prior=dict(d.get("group_prior") or {}), estimation=str(d.get("estimation", "em")),
                     diagnostics=list(d.get("diagnostics") or []))
        tf = {k: TermFrequencies(hashes=np.asarray(t["hashes"], dtype=np.uint64),
                                 freq=np.asarray(t["freq"], dtype=np.float64), default=float(t["default"]))
              for k, t in (d.get("tf") or {}).items()}
        return cls(fs=fs, tf=tf, records=int(d.get("records", 0)), pairs=int(d.get("pairs", 0)),
                   match_rate=float(d.get("match_rate", 0.0)))

    def as_dict(self) -> dict:
        """Readable parameters (m, u, match_weight per field and level; priors)."""
        return self.fs.as_dict()


def drift(old: MatchModel, new: MatchModel) -> dict[str, float]:
    """How far a retrained model moved: the largest change of a level's match weight (bits), of the global
    prior (bits) and of the auto-match rate among candidate pairs (absolute share)."""
    wo, wn = old.fs.level_weights(), new.fs.level_weights()
    weight_shift = max((float(np.max(np.abs(np.clip(a, -30, 30) - np.clip(b, -30, 30))))
                        for a, b in zip(wo, wn, strict=True) if len(a) == len(b)), default=0.0)
    return {
        "max_weight_shift_bits": round(weight_shift, 3),
        "prior_shift_bits": round(abs(float(old.fs.prior_log2_odds) - float(new.fs.prior_log2_odds)), 3),
        "match_rate_shift": round(abs(old.match_rate - new.match_rate), 4),
    }
