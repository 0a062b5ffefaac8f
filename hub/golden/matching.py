"""Matching for golden records: full rebuild or incremental, always obeying steward decisions.

Incremental design ("re-match the closed affected component"): new, changed and deleted staged customer
records are found by hash comparison with ``match_record``; their block keys in the persisted blocking index
(``match_block``) are replaced; the affected set K grows from them through every block (at most
``block_cap`` records) that they share, through stored match pairs, steward must-links and the previous
clusters, until it is closed. K is then matched and clustered exactly like a full run would do it, and only
K's pairs and cluster labels are replaced. With the ``exact`` matcher (pairwise scores, component-local
clustering) this is provably the same result as a full rebuild; with the ``dedupe`` engine the engine is
re-run on K's records (see README: its EM parameters are re-estimated on K).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz
from sqlalchemy.engine import Connection

from hub.golden.clustering import apply_constraints, greedy_clusters
from hub.golden.features import Features, engine_row, features_of
from hub.golden.review import Constraints, load_constraints, pair_key
from hub.golden.tables import ensure_tables, match_block, match_record, match_run
from hub.store import Store, match_pair, staged_record

log = logging.getLogger(__name__)

CHUNK = 500


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- settings -----------------------------------------------------------------------------------------------------


class ExactSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match_threshold: float = 8.0  # match_weight (bits) at or above which a pair links records
    review_threshold: float = 3.0  # between review and match: a steward decides


class MatchSettings(BaseModel):
    """The golden stage's keys in the ``matching`` section (other keys belong to the engine and are ignored)."""

    model_config = ConfigDict(extra="ignore")
    engine: Literal["auto", "dedupe", "exact"] = "auto"
    block_cap: int = Field(50, ge=2)  # a block key shared by more records is too common to link anything
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


@dataclass
class MatchOutput:
    pairs: list[PairRow]
    clusters: dict[str, str]  # record_key -> cluster_key (smallest record key of the cluster)
    refused_must_links: list[tuple[str, str]]
    scored: int = 0


def _prob(weight: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-max(min(weight, 60.0), -60.0)))


class ExactMatcher:
    """Exact key matcher: E.164 phone, e-mail match key, national id blocks; fixed Fellegi–Sunter-style weights.

    Pairwise and deterministic, so incremental matching equals a full rebuild exactly. Used when the
    dedupe engine is unavailable, and as the reference for the id-lifecycle tests.
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

    def block_keys(self, f: Features) -> set[str]:
        keys = {f"p:{p}" for p in f.phones} | {f"e:{e}" for e in f.email_keys}
        if f.national_id:
            keys.add(f"n:{f.national_id}")
        return keys

    def needs_rows(self) -> bool:
        return False

    def score(self, a: Features, b: Features) -> tuple[float, dict]:
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

    def band(self, weight: float) -> str:
        if weight >= self.s.exact.match_threshold:
            return "match"
        if weight >= self.s.exact.review_threshold:
            return "review"
        return "non_match"

    def match(
        self,
        keys: list[str],
        feats: dict[str, Features],
        rows: dict[str, tuple] | None,
        blocks: dict[str, list[str]],
        sizes: dict[str, int],
        constraints: Constraints,
    ) -> MatchOutput:
        cand: set[tuple[str, str]] = set()
        for b, members in blocks.items():
            if 2 <= len(members) and sizes.get(b, len(members)) <= self.s.block_cap:
                cand.update(pair_key(x, y) for x, y in combinations(sorted(members), 2))
        pairs: list[PairRow] = []
        edges: list[tuple[str, str, float]] = []
        for lk, rk in sorted(cand):
            w, expl = self.score(feats[lk], feats[rk])
            band = self.band(w)
            if band == "non_match":
                continue
            pairs.append(PairRow(lk, rk, w, _prob(w), band, expl))
            if band == "match":
                edges.append((lk, rk, w))
        clusters, refused = greedy_clusters(keys, edges, constraints.must_link, constraints.cannot_link)
        return MatchOutput(pairs, clusters, refused, scored=len(cand))


class EngineMatcher(ExactMatcher):
    """The hub.dedupe engine (blocking, FS/EM scoring, non-chaining clustering) + steward constraints."""

    name = "dedupe"

    def block_keys(self, f: Features) -> set[str]:
        # the persisted index only bounds the affected component; the engine does its own blocking
        keys = super().block_keys(f)
        if f.name_key and f.birth_date:
            keys.add(f"nd:{f.name_key}|{f.birth_date}")
        return keys

    def needs_rows(self) -> bool:
        return True

    def match(
        self,
        keys: list[str],
        feats: dict[str, Features],
        rows: dict[str, tuple] | None,
        blocks: dict[str, list[str]],
        sizes: dict[str, int],
        constraints: Constraints,
    ) -> MatchOutput:
        import pandas as pd

        from hub.dedupe import DedupeSettings, deduplicate
        from hub.golden.features import ENGINE_COLUMNS

        assert rows is not None
        frame = pd.DataFrame([rows[k] for k in keys], columns=list(ENGINE_COLUMNS), dtype=str)
        kw: dict[str, Any] = {}
        if self.s.auto_match is not None:
            kw["auto_match"] = self.s.auto_match
        if self.s.review is not None:
            kw["review"] = self.s.review
        res = deduplicate(frame, settings=DedupeSettings(**kw))
        clusters = dict(zip(res.clusters["record_id"].astype(str), res.clusters["cluster_id"].astype(str),
                            strict=True))
        pf = res.pairs
        pairs: list[PairRow] = []
        edges: list[tuple[str, str, float]] = []
        if len(pf):
            level_cols = [c for c in pf.columns if c.endswith("_level")]
            keep = pf[pf["band"].astype(str) != "non_match"]
            for rec in keep.to_dict("records"):
                lk, rk = pair_key(str(rec["record_id_l"]), str(rec["record_id_r"]))
                band = "match" if str(rec["band"]) == "auto_match" else "review"
                expl = {
                    c[: -len("_level")]: {"level": str(rec[c]), "weight": float(rec[c[: -len("_level")] + "_weight"])}
                    for c in level_cols
                }
                w = float(rec["match_weight"])
                pairs.append(PairRow(lk, rk, w, float(rec["match_probability"]), band, expl))
                if band == "match":
                    edges.append((lk, rk, w))
        final, refused = apply_constraints(clusters, edges, constraints.must_link, constraints.cannot_link)
        return MatchOutput(pairs, final, refused, scored=len(pf))


def make_matcher(settings: MatchSettings) -> ExactMatcher:
    engine = settings.engine
    if engine == "auto":
        try:
            import hub.dedupe  # noqa: F401

            engine = "dedupe" if hasattr(hub.dedupe, "deduplicate") else "exact"
        except ImportError:
            engine = "exact"
    return EngineMatcher(settings) if engine == "dedupe" else ExactMatcher(settings)


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
) -> MatchStats:
    """Match staged customer records into clusters (match_pair rows + match_record cluster labels).

    ``incremental`` re-matches only the closed component affected by new/changed/deleted records and new
    steward decisions; it runs as ``full`` when there is no previous run, the matcher changed, or the
    affected set is too large to be worth it.
    """
    t0 = time.perf_counter()
    ensure_tables(store)
    settings = load_match_settings(matching_cfg)
    matcher = make_matcher(settings)
    stats = MatchStats(mode=mode, matcher=matcher.name)
    with store.engine.connect() as conn:
        prev = last_run(conn, "match")
    if mode == "incremental":
        if prev is None:
            stats.fallback_reason = "no previous match run"
        elif prev.matcher != matcher.name:
            stats.fallback_reason = f"matcher changed ({prev.matcher} -> {matcher.name})"
        if stats.fallback_reason:
            mode = stats.mode = "full"
    if mode == "incremental":
        done = _incremental(store, matcher, settings, prev, stats, t0)
        if not done:
            mode = stats.mode = "full"
    if mode == "full":
        _full(store, matcher, stats, t0)
    stats.seconds = round(time.perf_counter() - t0, 3)
    return stats


def _load(
    rows: Iterable[Any], matcher: ExactMatcher
) -> tuple[dict[str, Features], dict[str, tuple] | None, dict[str, str]]:
    feats: dict[str, Features] = {}
    hashes: dict[str, str] = {}
    engine_rows: dict[str, tuple] | None = {} if matcher.needs_rows() else None
    for key, rec, h in rows:
        feats[key] = features_of(rec)
        hashes[key] = h
        if engine_rows is not None:
            engine_rows[key] = engine_row(key, rec)
    return feats, engine_rows, hashes


def _pair_dicts(pairs: list[PairRow], now: datetime) -> list[dict]:
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
    ]


def _start_run(conn: Connection, kind: str, mode: str, matcher: str, started: datetime) -> int:
    return conn.execute(
        match_run.insert().values(kind=kind, mode=mode, matcher=matcher, started_at=started)
    ).inserted_primary_key[0]


def _finish_run(conn: Connection, run_id: int, stats: dict, **values: Any) -> None:
    conn.execute(match_run.update().where(match_run.c.id == run_id).values(finished_at=_now(), stats=stats,
                                                                            **values))


def _full(store: Store, matcher: ExactMatcher, stats: MatchStats, t0: float) -> None:
    started = _now()
    with store.engine.connect() as conn:
        feats, rows, hashes = _load(_staged_customers(conn), matcher)
        constraints = load_constraints(conn)
        old = {k: (h, c, r) for k, h, c, r in conn.execute(
            sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
                      match_record.c.changed_run)
        ).tuples()}
    stats.timings["load"] = round(time.perf_counter() - t0, 3)
    blocks: dict[str, list[str]] = defaultdict(list)
    for k in sorted(feats):
        for b in matcher.block_keys(feats[k]):
            blocks[b].append(k)
    sizes = {b: len(m) for b, m in blocks.items()}
    keys = sorted(feats)
    out = matcher.match(keys, feats, rows, blocks, sizes, constraints)
    stats.timings["match"] = round(time.perf_counter() - t0, 3)
    now = _now()
    with store.begin() as conn:
        run_id = _start_run(conn, "match", "full", matcher.name, started)
        conn.execute(match_pair.delete())
        conn.execute(match_block.delete())
        conn.execute(match_record.delete())
        for chunk in _chunks(_pair_dicts(out.pairs, now), 5000):
            conn.execute(match_pair.insert(), chunk)
        block_rows = [{"block_key": b, "record_key": k} for b, ms in blocks.items() for k in ms]
        for chunk in _chunks(block_rows, 10000):
            conn.execute(match_block.insert(), chunk)
        rec_rows, dirty = [], 0
        for k in keys:
            o = old.get(k)
            if o is not None and o[0] == hashes[k] and o[1] == out.clusters[k]:
                changed_run = o[2]
            else:
                changed_run, dirty = run_id, dirty + 1
            rec_rows.append({"record_key": k, "record_hash": hashes[k], "cluster_key": out.clusters[k],
                             "changed_run": changed_run, "matched_at": now})
        for chunk in _chunks(rec_rows, 10000):
            conn.execute(match_record.insert(), chunk)
        stats.run_id = run_id
        stats.records_total = len(keys)
        stats.records_new_or_changed = sum(1 for k in keys if k not in old or old[k][0] != hashes[k])
        stats.records_deleted = len(set(old) - set(feats))
        stats.records_rematched = len(keys)
        stats.records_reclustered = dirty
        _fill_pair_stats(stats, out)
        stats.clusters = len(set(out.clusters.values()))
        _finish_run(conn, run_id, stats.as_dict())
    stats.timings["write"] = round(time.perf_counter() - t0, 3)


def _fill_pair_stats(stats: MatchStats, out: MatchOutput) -> None:
    stats.pairs_scored = out.scored
    stats.pairs_match = sum(1 for p in out.pairs if p.band == "match")
    stats.pairs_review = sum(1 for p in out.pairs if p.band == "review")
    stats.refused_must_links = len(out.refused_must_links)


def _incremental(
    store: Store, matcher: ExactMatcher, settings: MatchSettings, prev: Any, stats: MatchStats, t0: float
) -> bool:
    """Returns False when the caller should run a full rebuild instead."""
    started = _now()
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
        c_feats, c_rows, c_hashes = _load(conn.execute(changed_q), matcher)
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
    new_decision_ends = {k for p, at in constraints.decided_at.items() if at >= prev.started_at for k in p}
    stats.records_total = total
    stats.records_new_or_changed = len(c_feats)
    stats.records_deleted = len(deleted)
    if not c_feats and not deleted and not new_decision_ends:
        with store.begin() as conn:
            stats.run_id = _start_run(conn, "match", "incremental", matcher.name, started)
            _finish_run(conn, stats.run_id, stats.as_dict())
        return True

    try:
        _rematch(store, matcher, settings, stats, t0, started, c_feats, c_rows, c_hashes, deleted,
                 new_decision_ends, constraints, total)
    except _TooLarge as exc:
        stats.fallback_reason = str(exc)
        return False
    return True


class _TooLarge(Exception):
    pass


def _rematch(
    store: Store,
    matcher: ExactMatcher,
    settings: MatchSettings,
    stats: MatchStats,
    t0: float,
    started: datetime,
    c_feats: dict[str, Features],
    c_rows: dict[str, tuple] | None,
    c_hashes: dict[str, str],
    deleted: set[str],
    new_decision_ends: set[str],
    constraints: Constraints,
    total: int,
) -> None:
    cap = settings.block_cap
    changed = set(c_feats)
    new_blocks = {k: matcher.block_keys(f) for k, f in c_feats.items()}
    with store.begin() as conn:
        run_id = _start_run(conn, "match", "incremental", matcher.name, started)
        old_rows = _block_rows_for_records(conn, changed | deleted)
        for chunk in _chunks(sorted(changed | deleted)):
            conn.execute(match_block.delete().where(match_block.c.record_key.in_(chunk)))
        ins = [{"block_key": b, "record_key": k} for k, bs in new_blocks.items() for b in bs]
        for chunk in _chunks(ins, 10000):
            conn.execute(match_block.insert(), chunk)

        # blocks that gained or lost members; members matter if the block is (or was) small enough to link
        delta: dict[str, int] = defaultdict(int)
        for b, _k in old_rows:
            delta[b] -= 1
        for _k, bs in new_blocks.items():
            for b in bs:
                delta[b] += 1
        sizes = _block_sizes(conn, delta)
        linked = [b for b, d in delta.items() if min(sizes.get(b, 0), sizes.get(b, 0) - d) <= cap]
        seeds = changed | new_decision_ends | {k for _b, k in _block_members(conn, linked)}
        seeds |= _cluster_mates(conn, seeds | deleted)
        seeds -= deleted

        # grow K until closed under small blocks, stored match pairs, must-links and previous clusters
        must_adj: dict[str, set[str]] = defaultdict(set)
        for a, b in constraints.must_link:
            must_adj[a].add(b)
            must_adj[b].add(a)
        affected = set(seeds)
        frontier = sorted(seeds)
        record_blocks: dict[str, set[str]] = defaultdict(set)
        seen_blocks: set[str] = set()
        limit = max(int(settings.full_rebuild_share * total), 1)
        while frontier:
            rows = _block_rows_for_records(conn, frontier)
            for b, k in rows:
                record_blocks[k].add(b)
            fresh = {b for b, _ in rows} - seen_blocks
            seen_blocks |= fresh
            sizes.update(_block_sizes(conn, fresh))
            nxt = {k for _b, k in _block_members(conn, [b for b in fresh if sizes.get(b, 0) <= cap])}
            nxt |= _pair_neighbours(conn, frontier)
            nxt |= {n for k in frontier for n in must_adj.get(k, ())}
            nxt |= _cluster_mates(conn, nxt - affected)
            nxt -= affected | deleted
            affected |= nxt
            frontier = sorted(nxt)
            if len(affected) > limit:
                # rolls back the block-index changes too: the full rebuild redoes them
                raise _TooLarge(f"affected component too large ({len(affected)} of {total} records)")
        stats.timings["closure"] = round(time.perf_counter() - t0, 3)

        # load the unchanged members of K and match K exactly as a full run would
        rest = sorted(affected - changed)
        feats, rows_e, hashes = _load(_staged_customers(conn, rest), matcher)
        feats.update(c_feats)
        hashes.update(c_hashes)
        if rows_e is not None and c_rows is not None:
            rows_e.update(c_rows)
        missing = affected - set(feats)
        if missing:  # staged rows deleted while we ran: let the next run pick them up
            affected -= missing
        blocks: dict[str, list[str]] = defaultdict(list)
        for k in sorted(affected):
            for b in record_blocks.get(k, ()):
                blocks[b].append(k)
        keys = sorted(affected)
        out = matcher.match(keys, feats, rows_e, blocks, sizes, constraints)
        stats.timings["match"] = round(time.perf_counter() - t0, 3)

        now = _now()
        gone = sorted(affected | deleted)
        for chunk in _chunks(gone):
            conn.execute(match_pair.delete().where(match_pair.c.left_key.in_(chunk)))
            conn.execute(match_pair.delete().where(match_pair.c.right_key.in_(chunk)))
        for chunk in _chunks(_pair_dicts(out.pairs, now), 5000):
            conn.execute(match_pair.insert(), chunk)
        old: dict[str, tuple[str, str, int]] = {}
        for chunk in _chunks(gone):
            for k, h, c, r in conn.execute(
                sa.select(match_record.c.record_key, match_record.c.record_hash, match_record.c.cluster_key,
                          match_record.c.changed_run).where(match_record.c.record_key.in_(chunk))
            ).tuples():
                old[k] = (h, c, r)
        writes, dirty = [], 0
        for k in keys:
            o = old.get(k)
            if o is not None and o[0] == hashes[k] and o[1] == out.clusters[k]:
                continue
            dirty += 1
            writes.append({"record_key": k, "record_hash": hashes[k], "cluster_key": out.clusters[k],
                           "changed_run": run_id, "matched_at": now})
        for chunk in _chunks(sorted(deleted | {w["record_key"] for w in writes})):
            conn.execute(match_record.delete().where(match_record.c.record_key.in_(chunk)))
        for chunk in _chunks(writes, 5000):
            conn.execute(match_record.insert(), chunk)
        stats.run_id = run_id
        stats.records_rematched = len(keys)
        stats.records_reclustered = dirty + len(deleted)
        _fill_pair_stats(stats, out)
        stats.clusters = len(set(out.clusters.values()))
        _finish_run(conn, run_id, stats.as_dict())
    stats.timings["write"] = round(time.perf_counter() - t0, 3)
