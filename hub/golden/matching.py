"""Matching for golden records: full rebuild or incremental, always obeying steward decisions.

Candidate pairs are the pairs of records sharing a key of the persisted blocking index (``match_block``)
whose block holds at most ``block_cap`` records; pairs are scored pairwise (fixed weights, or the dedupe
engine with parameters frozen at training time) and clustered per connected component of match edges.

Incremental: new, changed and deleted staged customer records are found by hash comparison with
``match_record``; their block keys are replaced; only pairs involving them (plus pairs of blocks whose size
crossed the cap) are re-scored; the affected set K is closed under match edges, steward must-links and the
previous clusters and re-clustered. Because every step is pairwise or per component, the result equals a
full rebuild on the same data (tested, and checked by bench/bench_golden.py).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz
from sqlalchemy.engine import Connection

from hub.golden.clustering import greedy_clusters
from hub.golden.features import Features, features_of, hash_keys, hex_key
from hub.golden.review import Constraints, load_constraints, pair_key
from hub.golden.tables import match_block, match_model, match_record, match_run
from hub.store import Store, chunked, match_pair, staged_record

log = logging.getLogger(__name__)

CHUNK = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    return chunked(items, size)


# -- settings -----------------------------------------------------------------------------------------------------


class ExactSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match_threshold: float = 8.0  # match_weight (bits) at or above which a pair links records
    review_threshold: float = 3.0  # between review and match: a steward decides


class MatchSettings(BaseModel):
    """The golden stage's keys in the ``matching`` section (other keys belong to the engine and are ignored)."""

    model_config = ConfigDict(extra="ignore")
    engine: Literal["auto", "dedupe", "exact"] = "auto"
    block_cap: int = Field(24, ge=2)  # a block key shared by more records is too common to link anything
    # an incremental run whose affected set exceeds this share of all records runs as a full rebuild
    full_rebuild_share: float = Field(0.3, gt=0, le=1)
    exact: ExactSettings = Field(default_factory=ExactSettings)
    auto_match: float | None = None  # dedupe engine: match_probability thresholds (engine defaults if None)
    review: float | None = None


def load_match_settings(cfg: MatchSettings | dict | None) -> MatchSettings:
    if isinstance(cfg, MatchSettings):
        return cfg
    return MatchSettings.model_validate(cfg or {})


# -- matchers -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairRow:
    left_key: str
    right_key: str
    match_weight: float
    match_probability: float
    band: str  # match | review | non_match
    explanation: dict


def _prob(weight: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-max(min(weight, 60.0), -60.0)))


@dataclass
class ExactBatch:
    keys: list[str]
    feats: dict[str, Features]


class ExactMatcher:
    """Exact key matcher: E.164 phone, e-mail match key, national id blocks; fixed Fellegi–Sunter-style weights.

    Pairwise and deterministic. Used when the dedupe engine is unavailable (``engine: exact``), and as the
    reference for the id-lifecycle tests.
    """

    name = "exact"
    # match weights in bits per comparison level (agreement / disagreement / missing = 0)
    WEIGHTS = {
        "phone": (6.0, -1.0),
        "email": (8.0, -1.0),
        "national_id": (10.0, -12.0),
        "birth_date": (3.0, -6.0),
    }

    def __init__(self, settings: MatchSettings) -> None:
        self.s = settings

    def item(self, key: str, rec: dict) -> Features:
        return features_of(rec)

    def batch(self, items: dict[str, Features], model: Any) -> ExactBatch:
        return ExactBatch(sorted(items), items)

    def train(self, b: ExactBatch) -> None:
        return None  # fixed weights: nothing to estimate

    def block_pairs(self, b: ExactBatch) -> tuple[np.ndarray, np.ndarray]:
        pos: list[int] = []
        raw: list[str] = []
        for i, k in enumerate(b.keys):
            f = b.feats[k]
            keys = {f"p:{p}" for p in f.phones} | {f"e:{e}" for e in f.email_keys}
            if f.national_id:
                keys.add(f"n:{f.national_id}")
            for key in sorted(keys):
                pos.append(i)
                raw.append(key)
        return np.asarray(pos, dtype=np.int64), hash_keys(raw)

    def _score(self, a: Features, b: Features) -> tuple[float, dict]:
        expl: dict[str, dict] = {}
        total = 0.0

        def level(fieldname: str, agree: bool | None) -> None:
            nonlocal total
            if agree is None:
                expl[fieldname] = {"level": "missing", "weight": 0.0}
                return
            w = self.WEIGHTS[fieldname][0 if agree else 1]
            expl[fieldname] = {"level": "exact" if agree else "different", "weight": w}
            total += w

        level("phone", bool(set(a.phones) & set(b.phones)) if a.phones and b.phones else None)
        level("email", bool(set(a.email_keys) & set(b.email_keys)) if a.email_keys and b.email_keys else None)
        level("national_id", a.national_id == b.national_id if a.national_id and b.national_id else None)
        level("birth_date", a.birth_date == b.birth_date if a.birth_date and b.birth_date else None)
        if a.name_key and b.name_key:
            sim = fuzz.token_sort_ratio(a.name_key, b.name_key)
            if sim == 100:
                lvl, w = "exact", 5.0
            elif sim >= 90:
                lvl, w = "close", 4.0
            elif sim >= 70:
                lvl, w = "far", 0.0
            else:
                lvl, w = "different", -4.0
            expl["name"] = {"level": lvl, "weight": w, "similarity": round(sim, 1)}
            total += w
        else:
            expl["name"] = {"level": "missing", "weight": 0.0}
        return total, expl

    def _band(self, weight: float) -> str:
        if weight >= self.s.exact.match_threshold:
            return "match"
        if weight >= self.s.exact.review_threshold:
            return "review"
        return "non_match"

    def score(self, b: ExactBatch, pairs: list[tuple[str, str]]) -> list[PairRow]:
        """Scored match/review pairs (non-matches are dropped: they never influence clustering)."""
        out = []
        for lk, rk in pairs:
            w, expl = self._score(b.feats[lk], b.feats[rk])
            band = self._band(w)
            if band != "non_match":
                out.append(PairRow(lk, rk, w, _prob(w), band, expl))
        return out

    def cluster(
        self, b: ExactBatch, edges: Iterable[tuple[str, str, float]], constraints: Constraints
    ) -> tuple[dict[str, str], list[tuple[str, str]]]:
        return greedy_clusters(b.keys, edges, constraints.must_link, constraints.cannot_link)


def block_keys(matcher: Any, b: Any) -> dict[str, set[str]]:
    """record_key -> its block keys (hex of the 64-bit hash, as stored in match_block)."""
    pos, keys = matcher.block_pairs(b)
    out: dict[str, set[str]] = {k: set() for k in b.keys}
    for i, key in zip(pos.tolist(), keys.tolist(), strict=True):
        out[b.keys[i]].add(hex_key(key))
    return out


def candidate_codes(pos: np.ndarray, keys: np.ndarray, n: int, cap: int) -> np.ndarray:
    """Candidate pairs as sorted unique codes ``i * n + j`` (i < j positions): every pair of records sharing
    a block of at most ``cap`` records. int64 codes keep millions of pairs in a few dozen MB."""
    if not len(pos):
        return np.empty(0, dtype=np.int64)
    codes, _ = pd.factorize(keys)
    order = np.lexsort((pos, codes))
    codes_s, pos_s = codes[order], pos[order]
    bounds = np.flatnonzero(np.diff(codes_s)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(codes_s)]])
    sizes = ends - starts
    buf = array("q")
    for st, en in zip(starts[(sizes >= 2) & (sizes <= cap)].tolist(), ends[(sizes >= 2) & (sizes <= cap)].tolist(),
                      strict=True):
        members = pos_s[st:en].tolist()
        buf.extend(a * n + c for a, c in combinations(members, 2) if a != c)
    return np.unique(np.frombuffer(buf, dtype=np.int64)) if len(buf) else np.empty(0, dtype=np.int64)


def make_matcher(settings: MatchSettings) -> Any:
    engine = settings.engine
    if engine == "auto":
        try:  # the engine pieces the adapter uses
            import hub.dedupe.cluster
            import hub.dedupe.compare
            import hub.dedupe.engine
            import hub.dedupe.prepare
            import hub.dedupe.scoring  # noqa: F401

            engine = "dedupe"
        except ImportError:
            engine = "exact"
    if engine == "dedupe":
        from hub.golden.engine_adapter import EngineMatcher

        return EngineMatcher(settings)
    return ExactMatcher(settings)


# -- stats --------------------------------------------------------------------------------------------------------


@dataclass
class MatchStats:
    mode: str
    matcher: str
    run_id: int = 0
    records_total: int = 0
    records_new_or_changed: int = 0
    records_deleted: int = 0
    records_rematched: int = 0
    pairs_scored: int = 0
    pairs_match: int = 0
    pairs_review: int = 0
    clusters: int = 0
    records_reclustered: int = 0  # records whose cluster or content changed (dirty for build_golden)
    refused_must_links: int = 0
    fallback_reason: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        lines = [
            f"**match_and_cluster** ({self.mode}, matcher `{self.matcher}`, run {self.run_id}) in {self.seconds:.2f}s",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for k in ("records_total", "records_new_or_changed", "records_deleted", "records_rematched",
                  "pairs_scored", "pairs_match", "pairs_review", "clusters", "records_reclustered",
                  "refused_must_links"):
            lines.append(f"| {k} | {getattr(self, k)} |")
        if self.fallback_reason:
            lines.append(f"\nRan as full rebuild: {self.fallback_reason}")
        return "\n".join(lines)


# -- store access ---------------------------------------------------------------------------------------------------


def _staged_customers(conn: Connection, keys: list[str] | None = None) -> Iterator[Any]:
    cols = (staged_record.c.record_key, staged_record.c.record, staged_record.c.record_hash)
    if keys is None:
        q = sa.select(*cols).where(staged_record.c.entity == "customers")
        yield from conn.execution_options(yield_per=5000).execute(q)
        return
    for chunk in _chunks(keys):
        yield from conn.execute(
            sa.select(*cols).where(staged_record.c.entity == "customers", staged_record.c.record_key.in_(chunk))
        )


def last_run(conn: Connection, kind: str) -> Any:
    return conn.execute(
        sa.select(match_run)
        .where(match_run.c.kind == kind, match_run.c.finished_at.is_not(None))
        .order_by(match_run.c.id.desc())
        .limit(1)
    ).first()


def _block_rows_for_records(conn: Connection, keys: Iterable[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for chunk in _chunks(list(keys)):
        out.extend(conn.execute(
            sa.select(match_block.c.block_key, match_block.c.record_key).where(match_block.c.record_key.in_(chunk))
        ).tuples())
    return out


def _block_sizes(conn: Connection, block_keys: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(sorted(set(block_keys))):
        out.update((b, n) for b, n in conn.execute(
            sa.select(match_block.c.block_key, sa.func.count())
            .where(match_block.c.block_key.in_(chunk))
            .group_by(match_block.c.block_key)
        ))
    return out


def _block_members(conn: Connection, block_keys: Iterable[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for chunk in _chunks(sorted(set(block_keys))):
        out.extend(conn.execute(
            sa.select(match_block.c.block_key, match_block.c.record_key).where(match_block.c.block_key.in_(chunk))
        ).tuples())
    return out


def _cluster_mates(conn: Connection, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    labels: set[str] = set()
    for chunk in _chunks(keys):
        labels.update(conn.execute(
            sa.select(match_record.c.cluster_key).where(match_record.c.record_key.in_(chunk))
        ).scalars())
    out: set[str] = set()
    for chunk in _chunks(sorted(labels)):
        out.update(conn.execute(
            sa.select(match_record.c.record_key).where(match_record.c.cluster_key.in_(chunk))
        ).scalars())
    return out


def _pair_neighbours(conn: Connection, keys: list[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(keys):
        out.update(conn.execute(
            sa.select(match_pair.c.right_key).where(match_pair.c.band == "match", match_pair.c.left_key.in_(chunk))
        ).scalars())
        out.update(conn.execute(
            sa.select(match_pair.c.left_key).where(match_pair.c.band == "match", match_pair.c.right_key.in_(chunk))
        ).scalars())
    return out


# -- the entry point ------------------------------------------------------------------------------------------------


def match_and_cluster(
    store: Store,
    matching_cfg: MatchSettings | dict | None = None,
    mode: Literal["incremental", "full"] = "incremental",
    retrain: bool = False,
) -> MatchStats:
    """Match staged customer records into clusters (match_pair rows + match_record cluster labels).

    ``incremental`` re-matches only what new/changed/deleted records and new steward decisions affect; it
    runs as ``full`` when there is no previous run, the matcher changed, or the affected set is too large.
    The engine's parameters are trained on the first full run (or when ``retrain``) and then frozen, so a
    full rebuild and an incremental run score every pair identically.
    """
    t0 = time.perf_counter()
    settings = load_match_settings(matching_cfg)
    matcher = make_matcher(settings)
    stats = MatchStats(mode=mode, matcher=matcher.name)
    with store.engine.connect() as conn:
        prev = last_run(conn, "match")
        model = None if retrain else _load_model(conn, matcher)
    if mode == "incremental":
        if prev is None:
            stats.fallback_reason = "no previous match run"
        elif prev.matcher != matcher.name:
            stats.fallback_reason = f"matcher changed ({prev.matcher} -> {matcher.name})"
        elif matcher.name == "dedupe" and model is None:
            stats.fallback_reason = "no trained engine model"
        if stats.fallback_reason:
            mode = stats.mode = "full"
    if mode == "incremental":
        try:
            _incremental(store, matcher, settings, model, prev, stats, t0)
        except _TooLarge as exc:
            stats.fallback_reason = str(exc)
            mode = stats.mode = "full"
    if mode == "full":
        _full(store, matcher, settings, model, stats, t0)
    stats.seconds = round(time.perf_counter() - t0, 3)
    log.info("match_and_cluster %s (%s): %d records re-matched in %.2fs", stats.mode, stats.matcher,
             stats.records_rematched, stats.seconds)
    return stats


class _TooLarge(Exception):
    pass


def _load_model(conn: Connection, matcher: Any) -> Any:
    if matcher.name != "dedupe":
        return None
    row = conn.execute(
        sa.select(match_model.c.params).where(match_model.c.matcher == matcher.name)
        .order_by(match_model.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    from hub.golden.engine_adapter import EngineModel

    return EngineModel.from_json(row[0])


def _items(rows: Iterable[Any], matcher: Any) -> tuple[dict[str, Any], dict[str, str]]:
    items: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    for key, rec, h in rows:
        items[key] = matcher.item(key, rec)
        hashes[key] = h
    return items, hashes


def _pair_dicts(pairs: Iterable[PairRow], now: datetime) -> list[dict]:
    return [
        {
            "left_key": p.left_key,
            "right_key": p.right_key,
            "match_weight": float(p.match_weight),
            "match_probability": float(p.match_probability),
            "band": p.band,
            "explanation": p.explanation,
            "scored_at": now,
        }
        for p in pairs
        if p.band != "non_match"  # non-matches do not influence clustering: not stored
    ]


def _start_run(conn: Connection, kind: str, mode: str, matcher: str, started: datetime) -> int:
    return conn.execute(
        match_run.insert().values(kind=kind, mode=mode, matcher=matcher, started_at=started)
    ).inserted_primary_key[0]


def _finish_run(conn: Connection, run_id: int, stats: dict, **values: Any) -> None:
    conn.execute(match_run.update().where(match_run.c.id == run_id).values(finished_at=_now(), stats=stats,
                                                                            **values))


def _full(store: Store, matcher: Any, settings: MatchSettings, model: Any, stats: MatchStats, t0: float) -> None:
    started = _now()
    with store.engine.connect() as conn:
        items, hashes = _items(_staged_customers(conn), matcher)
        constraints = load_constraints(conn)
        old = {k: (h, c, r) for k, h, c, r in conn.execute(
            sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
                      match_record.c.changed_run)
        ).tuples()}
    stats.timings["load"] = round(time.perf_counter() - t0, 3)
    keys = sorted(items)
    batch = matcher.batch(items, model)
    del items  # the batch holds what scoring needs; at a million records every copy counts
    trained = None
    if model is None and keys:
        trained = matcher.train(batch)
        stats.timings["train"] = round(time.perf_counter() - t0, 3)
    if hasattr(batch, "frame"):
        batch.frame = None  # only training reads the raw frame
    pos, bkeys = matcher.block_pairs(batch)
    codes = candidate_codes(pos, bkeys, len(keys), settings.block_cap)
    scored: list[PairRow] = []
    n = len(keys)
    for start in range(0, len(codes), 200_000):  # bounded memory: only match/review pairs are kept
        part = codes[start : start + 200_000]
        scored.extend(matcher.score(batch, [(keys[c // n], keys[c % n]) for c in part.tolist()]))
    edges = [(p.left_key, p.right_key, p.match_weight) for p in scored if p.band == "match"]
    stats.timings["score"] = round(time.perf_counter() - t0, 3)
    clusters, refused = matcher.cluster(batch, edges, constraints)
    stats.timings["cluster"] = round(time.perf_counter() - t0, 3)
    now = _now()
    with store.begin() as conn:
        run_id = _start_run(conn, "match", "full", matcher.name, started)
        if trained is not None:
            conn.execute(match_model.insert().values(matcher=matcher.name, trained_at=now, records=len(keys),
                                                     params=trained.to_json()))
        conn.execute(match_pair.delete())
        conn.execute(match_block.delete())
        conn.execute(match_record.delete())
        for chunk in _chunks(_pair_dicts(scored, now), 5000):
            conn.execute(match_pair.insert(), chunk)
        for start in range(0, len(pos), 20000):  # streamed: 10+ keys per record would not fit as dicts
            conn.execute(match_block.insert(), [
                {"block_key": hex_key(bk), "record_key": keys[i]}
                for i, bk in zip(pos[start : start + 20000].tolist(), bkeys[start : start + 20000].tolist(),
                                 strict=True)
            ])
        dirty = 0
        for chunk in _chunks(keys, 10000):
            rec_rows = []
            for k in chunk:
                o = old.get(k)
                if o is not None and o[0] == hashes[k] and o[1] == clusters[k]:
                    changed_run = o[2]
                else:
                    changed_run, dirty = run_id, dirty + 1
                rec_rows.append({"record_key": k, "record_hash": hashes[k], "cluster_key": clusters[k],
                                 "changed_run": changed_run, "matched_at": now})
            conn.execute(match_record.insert(), rec_rows)
        stats.run_id = run_id
        stats.records_total = len(keys)
        stats.records_new_or_changed = sum(1 for k in keys if k not in old or old[k][0] != hashes[k])
        stats.records_deleted = len(set(old) - set(keys))
        stats.records_rematched = len(keys)
        stats.records_reclustered = dirty
        stats.pairs_scored = len(codes)
        stats.pairs_match = len(edges)
        stats.pairs_review = sum(1 for p in scored if p.band == "review")
        stats.refused_must_links = len(refused)
        stats.clusters = len(set(clusters.values()))
        _finish_run(conn, run_id, stats.as_dict())
    stats.timings["write"] = round(time.perf_counter() - t0, 3)


def _incremental(
    store: Store, matcher: Any, settings: MatchSettings, model: Any, prev: Any, stats: MatchStats, t0: float
) -> None:
    started = _now()
    cap = settings.block_cap
    with store.engine.connect() as conn:
        # new or changed: hash differs from what the last run matched (robust to clock skew, unlike staged_at)
        changed_q = (
            sa.select(staged_record.c.record_key, staged_record.c.record, staged_record.c.record_hash)
            .select_from(staged_record.outerjoin(match_record, match_record.c.record_key == staged_record.c.record_key))
            .where(
                staged_record.c.entity == "customers",
                sa.or_(match_record.c.record_key.is_(None), match_record.c.record_hash != staged_record.c.record_hash),
            )
        )
        c_items, c_hashes = _items(conn.execute(changed_q), matcher)
        deleted = set(conn.execute(
            sa.select(match_record.c.record_key).where(
                ~sa.exists(
                    sa.select(staged_record.c.record_key).where(
                        staged_record.c.entity == "customers", staged_record.c.record_key == match_record.c.record_key
                    )
                )
            )
        ).scalars())
        constraints = load_constraints(conn)
        total = conn.execute(
            sa.select(sa.func.count()).select_from(staged_record).where(staged_record.c.entity == "customers")
        ).scalar_one()
    decision_ends = {k for p, at in constraints.decided_at.items() if at >= prev.started_at for k in p}
    stats.records_total = total
    stats.records_new_or_changed = len(c_items)
    stats.records_deleted = len(deleted)
    stats.timings["detect"] = round(time.perf_counter() - t0, 3)
    if not c_items and not deleted and not decision_ends:
        with store.begin() as conn:
            stats.run_id = _start_run(conn, "match", "incremental", matcher.name, started)
            _finish_run(conn, stats.run_id, stats.as_dict())
        return

    changed = set(c_items)
    limit = max(int(settings.full_rebuild_share * total), 1)
    if len(changed) > limit:
        raise _TooLarge(f"too large a change ({len(changed)} of {total} records)")
    c_batch = matcher.batch(c_items, model)
    new_blocks = block_keys(matcher, c_batch)
    with store.begin() as conn:  # one transaction: a failure leaves the previous state intact
        run_id = _start_run(conn, "match", "incremental", matcher.name, started)
        # 1. the blocking index: replace the keys of changed and deleted records
        old_rows = _block_rows_for_records(conn, changed | deleted)
        for chunk in _chunks(sorted(changed | deleted)):
            conn.execute(match_block.delete().where(match_block.c.record_key.in_(chunk)))
        ins = [{"block_key": b, "record_key": k} for k, bs in new_blocks.items() for b in bs]
        for chunk in _chunks(ins, 10000):
            conn.execute(match_block.insert(), chunk)
        delta: dict[str, int] = defaultdict(int)
        for b, _k in old_rows:
            delta[b] -= 1
        for bs in new_blocks.values():
            for b in bs:
                delta[b] += 1
        sizes = _block_sizes(conn, delta)
        # blocks whose size crossed the cap change which *unchanged* pairs are candidates
        crossing = [b for b, d in delta.items() if (sizes.get(b, 0) <= cap) != (sizes.get(b, 0) - d <= cap)]
        linkable = [b for bs in new_blocks.values() for b in bs if sizes.get(b, 0) <= cap]
        members: dict[str, list[str]] = defaultdict(list)
        for b, k in _block_members(conn, set(linkable) | set(crossing)):
            members[b].append(k)

        # 2. candidate pairs to (re)score: changed x their block partners, and all pairs of crossing blocks
        cand: set[tuple[str, str]] = set()
        for k, bs in new_blocks.items():
            for b in bs:
                if sizes.get(b, 0) <= cap:
                    cand.update(pair_key(k, m) for m in members[b] if m != k)
        x_members = sorted({k for b in crossing for k in members[b]} - changed)
        x_blocks: dict[str, set[str]] = defaultdict(set)
        for b, k in _block_rows_for_records(conn, x_members):
            x_blocks[k].add(b)
        sizes.update(_block_sizes(conn, {b for bs in x_blocks.values() for b in bs} - set(sizes)))
        x_set = set(x_members)
        x_index: dict[str, list[str]] = defaultdict(list)
        for k in x_members:
            for b in x_blocks[k]:
                if sizes.get(b, 0) <= cap:
                    x_index[b].append(k)
        for ms in x_index.values():
            cand.update(pair_key(a, c) for a, c in combinations(sorted(ms), 2))

        # 3. drop stale pairs (any end changed/deleted, or both ends in a crossing block) and remember who
        #    was linked to whom: those records' clusters may split
        touched = sorted(changed | deleted)
        seeds: set[str] = set(changed) | decision_ends | x_set
        for chunk in _chunks(touched):
            seeds.update(conn.execute(sa.select(match_pair.c.right_key).where(match_pair.c.left_key.in_(chunk)))
                         .scalars())
            seeds.update(conn.execute(sa.select(match_pair.c.left_key).where(match_pair.c.right_key.in_(chunk)))
                         .scalars())
            conn.execute(match_pair.delete().where(match_pair.c.left_key.in_(chunk)))
            conn.execute(match_pair.delete().where(match_pair.c.right_key.in_(chunk)))
        for chunk in _chunks(x_members):
            conn.execute(match_pair.delete().where(match_pair.c.left_key.in_(chunk),
                                                   match_pair.c.right_key.in_(x_members)))

        # 4. score the candidates with the frozen model and store them
        partners = sorted({k for p in cand for k in p} - changed)
        items = dict(c_items)
        hashes = dict(c_hashes)
        more, more_h = _items(_staged_customers(conn, partners), matcher)
        items.update(more)
        hashes.update(more_h)
        cand_l = sorted(p for p in cand if p[0] in items and p[1] in items)
        batch = matcher.batch({k: items[k] for k in {k for p in cand_l for k in p} | changed}, model)
        scored = matcher.score(batch, cand_l)
        now = _now()
        for chunk in _chunks(_pair_dicts(scored, now), 5000):
            conn.execute(match_pair.insert(), chunk)
        seeds.update(k for p in scored if p.band == "match" for k in (p.left_key, p.right_key))
        stats.pairs_scored = len(cand_l)
        stats.pairs_match = sum(1 for p in scored if p.band == "match")
        stats.pairs_review = sum(1 for p in scored if p.band == "review")
        stats.timings["score"] = round(time.perf_counter() - t0, 3)

        # 5. the affected set K: closed under match edges, must-links and previous clusters
        seeds |= _cluster_mates(conn, seeds | deleted)
        seeds -= deleted
        must_adj: dict[str, set[str]] = defaultdict(set)
        for a, b in constraints.must_link:
            must_adj[a].add(b)
            must_adj[b].add(a)
        affected = set(seeds)
        frontier = sorted(seeds)
        while frontier:
            nxt = _pair_neighbours(conn, frontier)
            nxt |= {n for k in frontier for n in must_adj.get(k, ())}
            nxt -= affected | deleted
            nxt |= _cluster_mates(conn, nxt) - affected - deleted
            affected |= nxt
            frontier = sorted(nxt)
            if len(affected) > limit:
                raise _TooLarge(f"affected component too large ({len(affected)} of {total} records)")
        stats.timings["closure"] = round(time.perf_counter() - t0, 3)

        # 6. re-cluster K from its stored match edges, exactly as a full run clusters each component
        more, more_h = _items(_staged_customers(conn, sorted(affected - set(items))), matcher)
        items.update(more)
        hashes.update(more_h)
        affected &= set(items)  # a staged row deleted meanwhile is picked up by the next run
        keys = sorted(affected)
        edges: list[tuple[str, str, float]] = []
        for chunk in _chunks(keys):
            for lk, rk, w in conn.execute(
                sa.select(match_pair.c.left_key, match_pair.c.right_key, match_pair.c.match_weight).where(
                    match_pair.c.band == "match", match_pair.c.left_key.in_(chunk)
                )
            ):
                if rk in affected:
                    edges.append((lk, rk, w))
        k_batch = matcher.batch({k: items[k] for k in keys}, model)
        clusters, refused = matcher.cluster(k_batch, edges, constraints)
        stats.timings["cluster"] = round(time.perf_counter() - t0, 3)

        # 7. cluster labels; a record is dirty for build_golden when its content or cluster changed
        old: dict[str, tuple[str, str, int]] = {}
        for chunk in _chunks(sorted(affected | deleted)):
            for k, h, c, r in conn.execute(
                sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
                          match_record.c.changed_run).where(match_record.c.record_key.in_(chunk))
            ).tuples():
                old[k] = (h, c, r)
        writes = []
        for k in keys:
            o = old.get(k)
            if o is not None and o[0] == hashes[k] and o[1] == clusters[k]:
                continue
            writes.append({"record_key": k, "record_hash": hashes[k], "cluster_key": clusters[k],
                           "changed_run": run_id, "matched_at": now})
        for chunk in _chunks(sorted(deleted | {w["record_key"] for w in writes})):
            conn.execute(match_record.delete().where(match_record.c.record_key.in_(chunk)))
        for chunk in _chunks(writes, 5000):
            conn.execute(match_record.insert(), chunk)
        stats.run_id = run_id
        stats.records_rematched = len(keys)
        stats.records_reclustered = len(writes) + len(deleted)
        stats.refused_must_links = len(refused)
        stats.clusters = len(set(clusters.values()))
        _finish_run(conn, run_id, stats.as_dict())
    stats.timings["write"] = round(time.perf_counter() - t0, 3)
