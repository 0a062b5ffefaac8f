"""The hub.dedupe engine as a *local* matcher with frozen parameters, so incremental == full rebuild.

``hub.dedupe.deduplicate`` estimates its Fellegi–Sunter parameters (u from random pairs, m by EM, term
frequencies, prior) on the frame it is given and blocks with sorted neighbourhoods — both depend on the whole
data set. For golden records we therefore split the engine in two:

* **train** (full runs, when there is no model yet or ``retrain=True``): run ``deduplicate`` on all staged
  customers and keep its ``FSModel`` with the term frequencies re-keyed by *value* (persisted in
  ``match_model``);
* **apply** (every run): the engine's own standardisation (``prepare``), comparison levels
  (``compare_fields``), scoring (``score`` + conflict mask) and non-chaining clustering (``cluster``) on
  any subset of records, with the frozen model and exact, capped block keys built from the engine's
  blocking rules (no sorted neighbourhood, which is not local).

Every step of *apply* is a function of the pair (or of one auto-match component), which is what lets an
incremental run re-match only the affected records and still equal a full rebuild.
Uses engine internals (``hub.dedupe.{prepare,compare,scoring,cluster,engine}``); an engine API for
"score these pairs with this model" would replace them (requested from the engine owner).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hub.golden.clustering import apply_constraints
from hub.golden.features import ENGINE_COLUMNS, engine_row, hash_keys
from hub.golden.review import Constraints

_VOCAB_TF_KEYS = ("family", "given")  # term frequencies the engine indexes by its shared name vocabulary


@dataclass
class EngineModel:
    """Frozen engine parameters: the FSModel fields plus value-keyed term frequencies."""

    fields: dict[str, Any]  # FSModel scalar/array fields except tf
    tf: dict[str, dict[str, float]]  # tf key -> value -> relative frequency (values seen at least twice)
    tf_default: dict[str, float]  # relative frequency of a value seen once (or never)
    records: int = 0

    def to_json(self) -> dict:
        def enc(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, list | tuple):
                return [enc(x) for x in v]
            if isinstance(v, np.generic):
                return v.item()
            return v

        return {"fields": {k: enc(v) for k, v in self.fields.items()}, "tf": self.tf, "tf_default": self.tf_default,
                "records": self.records}

    @classmethod
    def from_json(cls, d: dict) -> EngineModel:
        return cls(fields=d["fields"], tf=d["tf"], tf_default=d["tf_default"], records=d.get("records", 0))


def _fs_model(model: EngineModel, tf_arrays: dict[str, np.ndarray]) -> Any:
    from hub.dedupe.scoring import FSModel

    kw: dict[str, Any] = {}
    for f in dataclasses.fields(FSModel):
        if f.name == "tf" or f.name not in model.fields:
            continue
        v = model.fields[f.name]
        kw[f.name] = [np.asarray(x, dtype=np.float64) for x in v] if f.name in ("m", "u") else v
    return FSModel(tf=tf_arrays, **kw)


@dataclass
class EngineBatch:
    keys: list[str]
    pos: dict[str, int]
    frame: pd.DataFrame | None  # dropped after training
    p: Any  # hub.dedupe.prepare.Prepared
    vocab: Any  # hub.dedupe.compare.NameVocab
    fs: Any = None  # FSModel re-indexed to this batch's codes


class EngineMatcher:
    """Local, frozen-parameter use of the hub.dedupe engine (see module docstring)."""

    name = "dedupe"

    def __init__(self, settings: Any) -> None:
        from hub.dedupe import DedupeSettings

        self.s = settings
        # no forked standardiser workers inside a Dagster step (a fork next to the run's own threads is not safe)
        kw: dict[str, Any] = {"workers": 1}
        if settings.auto_match is not None:
            kw["auto_match"] = settings.auto_match
        if settings.review is not None:
            kw["review"] = settings.review
        self.ds = DedupeSettings(**kw)

    # records ---------------------------------------------------------------------------------------------------

    def item(self, key: str, rec: dict) -> tuple:
        return engine_row(key, rec)

    def batch(self, items: dict[str, tuple], model: EngineModel | None) -> EngineBatch:
        from hub.dedupe.compare import NameVocab
        from hub.dedupe.prepare import prepare

        keys = sorted(items)
        frame = pd.DataFrame([items[k] for k in keys], columns=list(ENGINE_COLUMNS), dtype=str)
        p = prepare(frame)
        b = EngineBatch(keys, {k: i for i, k in enumerate(keys)}, frame, p, NameVocab.build(p))
        if model is not None:
            self.attach(b, model)
        return b

    def attach(self, b: EngineBatch, model: EngineModel) -> None:
        tf_arrays: dict[str, np.ndarray] = {}
        for key, table in model.tf.items():
            uniques = b.vocab.uniques if key in _VOCAB_TF_KEYS else b.p.key(key).uniques
            default = model.tf_default.get(key, 0.0)
            tf_arrays[key] = np.array([table.get(str(u), default) for u in uniques], dtype=np.float64)
        b.fs = _fs_model(model, tf_arrays)

    # training --------------------------------------------------------------------------------------------------

    def train(self, b: EngineBatch) -> EngineModel:
        """Fit the engine on this batch (all records) and freeze its parameters by value."""
        from hub.dedupe import deduplicate

        res = deduplicate(b.frame, settings=self.ds)
        fs = res.model
        tf: dict[str, dict[str, float]] = {}
        tf_default: dict[str, float] = {}
        for key, arr in (fs.tf or {}).items():
            uniques = b.vocab.uniques if key in _VOCAB_TF_KEYS else b.p.key(key).uniques
            arr = np.asarray(arr, dtype=np.float64)
            if len(arr) != len(uniques):
                raise RuntimeError(f"engine term frequencies for {key!r} do not line up with its vocabulary")
            nz = arr[arr > 0]
            once = float(nz.min()) if len(nz) else 0.0  # a value seen once
            tf_default[key] = once
            sel = np.flatnonzero(arr > once * 1.5)
            tf[key] = {str(uniques[i]): float(arr[i]) for i in sel}
        fields = {f.name: getattr(fs, f.name) for f in dataclasses.fields(fs) if f.name != "tf"}
        model = EngineModel(fields=fields, tf=tf, tf_default=tf_default, records=len(b.keys))
        self.attach(b, model)
        return model

    # blocking / scoring / clustering ----------------------------------------------------------------------------

    def block_pairs(self, b: EngineBatch) -> tuple[np.ndarray, np.ndarray]:
        """(record position, hashed block key) for every key of every record, vectorised per rule."""
        from hub.dedupe.blocking import DEFAULT_RULES, rule_key_strings

        pos_parts: list[np.ndarray] = []
        key_parts: list[np.ndarray] = []
        for rule in DEFAULT_RULES:
            if not rule.keys:  # a global sorted neighbourhood is not local: skip it
                continue
            pos, text = rule_key_strings(b.p, rule)
            if not len(pos):
                continue
            pos_parts.append(pos)
            key_parts.append(hash_keys(rule.name + ":" + pd.Series(text, dtype=object).astype(str)))
        if not pos_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
        return np.concatenate(pos_parts), np.concatenate(key_parts)

    def _score_idx(self, b: EngineBatch, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
        from hub.dedupe.compare import compare_fields, tf_codes
        from hub.dedupe.engine import conflict_mask
        from hub.dedupe.scoring import pair_prior, score

        levels = compare_fields(b.p, b.vocab, i, j)
        prior = pair_prior(b.fs, b.p.source_names, b.p.source[i], b.p.source[j])
        mw, contrib = score(b.fs, levels, tf_codes(b.p, b.vocab, i, j, levels), prior)
        prob = 1.0 / (1.0 + np.exp2(-np.clip(mw, -60, 60)))
        return mw, prob, conflict_mask(levels, contrib), levels, contrib

    def score(self, b: EngineBatch, pairs: list[tuple[str, str]]) -> list:
        """Scored match/review pairs (non-matches are dropped: they never influence clustering)."""
        from hub.dedupe.compare import FIELDS
        from hub.golden.matching import PairRow

        if not pairs:
            return []
        i = np.array([b.pos[a] for a, _ in pairs], dtype=np.int32)
        j = np.array([b.pos[c] for _, c in pairs], dtype=np.int32)
        mw, prob, conflict, levels, contrib = self._score_idx(b, i, j)
        out = []
        labels = [("missing",) + f.labels for f in FIELDS]
        for n, (a, c) in enumerate(pairs):
            if conflict[n] or prob[n] < self.ds.review:
                band = "non_match"
            else:
                band = "match" if prob[n] >= self.ds.auto_match else "review"
            if band == "non_match":
                continue
            expl = {f.name: {"level": labels[k][int(levels[n, k]) + 1], "weight": round(float(contrib[n, k]), 3)}
                    for k, f in enumerate(FIELDS)}
            if conflict[n]:
                expl["conflict"] = True
            out.append(PairRow(a, c, float(mw[n]), float(prob[n]), band, expl))
        return out

    def cluster(
        self, b: EngineBatch, edges: Iterable[tuple[str, str, float]], constraints: Constraints
    ) -> tuple[dict[str, str], list[tuple[str, str]]]:
        from hub.dedupe.cluster import cluster

        if not b.keys:
            return {}, []
        edges = sorted(edges, key=lambda e: (b.pos[e[0]], b.pos[e[1]]))
        left = np.array([b.pos[a] for a, _, _ in edges], dtype=np.int64)
        right = np.array([b.pos[c] for _, c, _ in edges], dtype=np.int64)
        weight = np.array([w for _, _, w in edges], dtype=np.float64)

        def score_pairs(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
            return self._score_idx(b, i.astype(np.int32), j.astype(np.int32))

        labels = cluster(len(b.keys), left, right, weight, score_pairs, min_support=self.ds.min_support,
                         ambiguity_margin=self.ds.ambiguity_margin)
        groups: dict[int, list[str]] = {}
        for k, lab in zip(b.keys, labels.tolist(), strict=True):
            groups.setdefault(lab, []).append(k)
        clusters = {k: min(ms) for ms in groups.values() for k in ms}
        return apply_constraints(clusters, edges, constraints.must_link, constraints.cannot_link)


def cluster_frame(frame: pd.DataFrame, matching_cfg: Any = None) -> pd.DataFrame:
    """Run the golden stage's local engine pipeline (train, block, score, cluster) on a canonical frame.

    Same input as ``hub.dedupe.deduplicate`` (``record_id`` + canonical columns); returns record_id,
    cluster_id. Used to check that the local, frozen-parameter pipeline keeps the engine's quality.
    """
    from hub.golden.matching import candidate_codes, load_match_settings

    settings = load_match_settings(matching_cfg)
    m = EngineMatcher(settings)
    fr = frame.astype(str).reindex(columns=list(ENGINE_COLUMNS), fill_value="")
    items = {str(r[0]): tuple(r) for r in fr.itertuples(index=False)}
    b = m.batch(items, None)
    m.train(b)
    codes = candidate_codes(*m.block_pairs(b), len(b.keys), settings.block_cap)
    pairs = [(b.keys[c // len(b.keys)], b.keys[c % len(b.keys)]) for c in codes.tolist()]
    edges = [(p.left_key, p.right_key, p.match_weight) for p in m.score(b, pairs) if p.band == "match"]
    clusters, _ = m.cluster(b, edges, Constraints([], [], {}))
    return pd.DataFrame({"record_id": b.keys, "cluster_id": [clusters[k] for k in b.keys]})
