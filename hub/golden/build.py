"""build_golden: clusters -> persistent golden ids, xref, id history and golden_customer rows.

Incremental by default: only clusters with a record whose cluster label or content changed since the last
build (``match_record.changed_run``), plus records that disappeared, are rebuilt — closed over the old golden
records they touch so merges and splits see every member. A change of the survivorship rules (fingerprint)
forces a full pass.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.dedupe.parallel import fork_map, lead_share, worker_count
from hub.golden.config import SurvivorshipConfig, load_survivorship
from hub.golden.ids import IdAssignment, assign_golden_ids
from hub.golden.matching import _chunks, last_run
from hub.golden.survivorship import MemberFacts, Survived, Survivor, staged_member
from hub.golden.tables import match_record, match_run
from hub.models import FieldLineage, GoldenCustomer
from hub.privacy.tombstones import removal_reasons
from hub.quality.golden_facts import golden_facts
from hub.store import (
    Store,
    as_text,
    bound_time,
    chunked,
    gc_paused,
    golden_customer,
    golden_id_history,
    insert_rows,
    json_bytes,
    json_text_param,
    json_value,
    select_in,
    staged_record,
    xref,
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class GoldenStats:
    mode: str
    clusters_affected: int = 0
    records_affected: int = 0
    golden_active: int = 0
    golden_written: int = 0  # golden rows inserted or whose values/lineage changed
    golden_unchanged: int = 0
    minted: int = 0
    merged: int = 0  # ids retired as aliases of a surviving id
    retired_empty: int = 0  # ids retired because no source record is left (history says why)
    splits: int = 0
    records_moved: int = 0
    xref_opened: int = 0
    xref_closed: int = 0
    match_run: int | None = None
    note: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        lines = [f"**build_golden** ({self.mode}) in {self.seconds:.2f}s", "", "| metric | value |", "|---|---|"]
        for k in ("golden_active", "clusters_affected", "records_affected", "golden_written", "golden_unchanged",
                  "minted", "merged", "retired_empty", "splits", "records_moved", "xref_opened", "xref_closed"):
            lines.append(f"| {k} | {getattr(self, k)} |")
        if self.note:
            lines.append(f"\n{self.note}")
        return "\n".join(lines)


# -- loading helpers ------------------------------------------------------------------------------------------------


def _open_xref(conn: Connection, *, records: Iterable[str] | None = None, golden_ids: Iterable[str] | None = None
               ) -> list[tuple[str, str, datetime]]:
    q = sa.select(xref.c.record_key, xref.c.golden_id, xref.c.valid_from).where(xref.c.valid_to.is_(None))
    if records is not None:
        return [tuple(r) for r in select_in(conn, q, xref.c.record_key, records)]
    if golden_ids is not None:
        return [tuple(r) for r in select_in(conn, q, xref.c.golden_id, golden_ids)]
    return [tuple(r) for r in conn.execute(q)]


def _clusters_of(conn: Connection, *, records: Iterable[str] | None = None, labels: Iterable[str] | None = None
                 ) -> list[tuple[str, str]]:
    q = sa.select(match_record.c.record_key, match_record.c.cluster_key)
    if records is not None:
        return [tuple(r) for r in select_in(conn, q, match_record.c.record_key, records)]
    if labels is not None:
        return [tuple(r) for r in select_in(conn, q, match_record.c.cluster_key, labels)]
    return [tuple(r) for r in conn.execute(q)]


def _affected(conn: Connection, since_run: int) -> tuple[dict[str, str], list[tuple[str, str, datetime]]]:
    """Closure of dirty records over old golden ids and new clusters: (record -> cluster, open xref rows)."""
    dirty = set(conn.execute(
        sa.select(match_record.c.record_key).where(match_record.c.changed_run > since_run)
    ).scalars())
    vanished = set(conn.execute(
        sa.select(xref.c.record_key).where(
            xref.c.valid_to.is_(None),
            ~sa.exists(sa.select(match_record.c.record_key).where(match_record.c.record_key == xref.c.record_key)),
        )
    ).scalars())
    records = dirty | vanished
    cluster_of: dict[str, str] = {}
    xrows: dict[str, tuple[str, str, datetime]] = {}
    seen_gids: set[str] = set()
    seen_labels: set[str] = set()
    frontier = set(records)
    while frontier:
        cluster_of.update(_clusters_of(conn, records=frontier))
        for row in _open_xref(conn, records=frontier):
            xrows[row[0]] = row
        gids = {xrows[r][1] for r in frontier if r in xrows} - seen_gids
        labels = {cluster_of[r] for r in frontier if r in cluster_of} - seen_labels
        seen_gids |= gids
        seen_labels |= labels
        nxt: set[str] = set()
        for row in _open_xref(conn, golden_ids=gids):
            xrows[row[0]] = row
            nxt.add(row[0])
        for r, c in _clusters_of(conn, labels=labels):
            cluster_of[r] = c
            nxt.add(r)
        frontier = nxt - records
        records |= frontier
    return cluster_of, list(xrows.values())


def _member(key: str, source: str, text: Any, staged_at: datetime | None) -> MemberFacts:
    # no quality flags: survivorship validates a member's values themselves (see survivorship._validated)
    return staged_member(key, source, json_value(text), (), staged_at)


def _members(conn: Connection, keys: Iterable[str]) -> dict[str, MemberFacts]:
    # the record as its stored text, parsed here (the JSON type's json.loads was a third of loading the members)
    q = sa.select(
        staged_record.c.record_key, staged_record.c.source, as_text(staged_record.c.record, conn.dialect.name),
        staged_record.c.staged_at,
    ).where(staged_record.c.entity == "customers")
    return {k: _member(k, src, rec, at) for k, src, rec, at in select_in(conn, q, staged_record.c.record_key, keys)}


def golden_hash(record: dict, lineage: dict) -> str:
    """Hash of golden values + lineage without decision times: unchanged hash = nothing to write downstream."""
    stable = {f: {k: v for k, v in lin.items() if k != "decided_at"} for f, lin in lineage.items()}
    return _undated_hash(record, stable)


def _undated_hash(record: dict, undated_lineage: dict, plain: bool = False) -> str:
    """``golden_hash`` of lineage entries that have no ``decided_at`` (``Survivor.survive_undated``)."""
    # payload_hash's bytes; plain: the quality score is the only float, orjson is tried without a walk
    return hashlib.sha256(json_bytes({"record": record, "lineage": undated_lineage}, sort_keys=True,
                                     floatless=plain)).hexdigest()


def _column_json(obj: Any, plain: bool) -> str:
    """The text the store writes for a JSON column value; ``plain`` (``Survived.plain``): the quality score is
    its only float, so orjson is tried without walking the value first."""
    return json_bytes(obj, floatless=plain, errors="surrogatepass").decode("utf-8", "surrogatepass")


def pack_lineage(lineage: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The stored form of a golden record's lineage (``golden_customer.lineage``): each deciding record once
    (``records``: record key, source, source_updated_at), each field its record's index and rule, and its
    decision time only where it is not the record's ``decided_at`` (the first field's; a build decides every
    value at once, a later one keeps the time of the values it did not change). Written out, the same record
    key, source and times were repeated under every field: 1.9 KB of a golden row's 2.9 (100k people: 190 MB
    of the golden stage's 350 MB written, twice with the WAL). ``unpack_lineage`` gives the entries back."""
    records: dict[tuple[Any, Any, Any], int] = {}
    fields: dict[str, list[Any]] = {}
    decided: Any = None
    for k, (f, e) in enumerate(lineage.items()):
        by = (e["record_key"], e["source"], e["source_updated_at"])
        i = records.get(by)
        if i is None:
            i = records[by] = len(records)
        at = e.get("decided_at")
        if k == 0:
            decided = at
        fields[f] = [i, e["rule"]] if at == decided else [i, e["rule"], at]
    return {"decided_at": decided, "records": [list(by) for by in records], "fields": fields}


def unpack_lineage(stored: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Field -> FieldLineage JSON (record_key, source, rule, source_updated_at, decided_at) of a stored
    ``golden_customer.lineage`` (``pack_lineage``); {} for none (an erased or retired golden record)."""
    if not stored:
        return {}
    records, decided = stored["records"], stored["decided_at"]
    out: dict[str, dict[str, Any]] = {}
    for f, v in stored["fields"].items():
        key, source, updated = records[v[0]]
        out[f] = {"record_key": key, "source": source, "rule": v[1], "source_updated_at": updated,
                  "decided_at": v[2] if len(v) > 2 else decided}
    return out


def _field_value(record: dict, lineage_field: str) -> Any:
    name, _, idx = lineage_field.partition("[")
    if name.startswith("consent."):
        return (record.get("consent") or {}).get(name.split(".", 1)[1])
    v = record.get(name)
    if idx:
        i = int(idx.rstrip("]"))
        return v[i] if isinstance(v, list) and i < len(v) else None
    return v


def _carry_decided_at(new_rec: dict, new_lin: dict, old_rec: dict | None, old_lin: dict | None) -> None:
    """Keep the original decision time of every golden value whose winner and value did not change."""
    if not old_rec or not old_lin:
        return
    for f, lin in new_lin.items():
        o = old_lin.get(f)
        if (
            o
            and o.get("record_key") == lin["record_key"]
            and o.get("rule") == lin["rule"]
            and o.get("source_updated_at") == lin["source_updated_at"]
            and _field_value(old_rec, f) == _field_value(new_rec, f)
        ):
            lin["decided_at"] = o.get("decided_at")


# -- the entry point ------------------------------------------------------------------------------------------------


def build_golden(
    store: Store,
    survivorship_cfg: SurvivorshipConfig | dict | None = None,
    mode: Literal["incremental", "full"] = "incremental",
    *,
    workers: int = 0,
) -> GoldenStats:
    """Turn the current clusters into golden customers with persistent ids, xref, history and lineage.

    ``workers``: processes for survivorship (0 = one per core, at most 4; 1 = this process only). A build of
    fewer than ``_PARALLEL_MIN`` clusters runs in this process; the stored result is the same either way."""
    with gc_paused():
        return _build_golden(store, survivorship_cfg, mode, workers)


def _build_golden(
    store: Store,
    survivorship_cfg: SurvivorshipConfig | dict | None,
    mode: Literal["incremental", "full"],
    workers: int,
) -> GoldenStats:
    t0 = time.perf_counter()
    cfg = load_survivorship(survivorship_cfg)
    fp = cfg.fingerprint()
    stats = GoldenStats(mode=mode)
    with store.engine.connect() as conn:
        m_run = last_run(conn, "match")
        prev = last_run(conn, "golden")
        if m_run is None:
            stats.note = "no match run yet: run match_and_cluster first"
            return stats
        if mode == "incremental" and (prev is None or prev.config_hash != fp):
            mode = stats.mode = "full"
            stats.note = "first build" if prev is None else "survivorship rules changed: full pass"
        if mode == "full":
            cluster_of = dict(_clusters_of(conn))
            xrows = _open_xref(conn)
        else:
            cluster_of, xrows = _affected(conn, prev.upto_run or 0)
        old_gids = sorted({g for _, g, _ in xrows})
        created_at = {}
        for g, at in select_in(conn, sa.select(golden_customer.c.golden_id, golden_customer.c.created_at),
                               golden_customer.c.golden_id, old_gids):
            created_at[g] = at
    stats.timings["load"] = round(time.perf_counter() - t0, 3)
    stats.match_run = m_run.id

    # lists, not sets: a full build holds one per cluster and one per old golden id (a set of one or two
    # record keys takes 216 bytes, a list 72); the keys of cluster_of are distinct
    clusters: dict[str, list[str]] = defaultdict(list)
    for r, c in cluster_of.items():
        clusters[c].append(r)
    stats.clusters_affected = len(clusters)
    stats.records_affected = len(cluster_of)
    del cluster_of  # a full build holds one entry per record in each of these: free them as soon as they are used
    old_members: dict[str, list[str]] = defaultdict(list)
    member_since: dict[str, datetime] = {}
    old_of: dict[str, str] = {}
    times: dict[datetime, datetime] = {}  # one object per distinct valid_from (a build opens rows at one time)
    for r, g, since in xrows:
        old_members[g].append(r)
        member_since[r] = times.setdefault(since, since)
        old_of[r] = g
    del times
    # a record with two open xref rows (not written by this code) must count once per id, as a set would
    one_row_each = len(old_of) == len(xrows)
    if not one_row_each:
        for g, rs in old_members.items():
            old_members[g] = list(dict.fromkeys(rs))
    del xrows

    now = _now()
    with store.begin() as conn:
        run_id = conn.execute(
            match_run.insert().values(kind="golden", mode=mode, config_hash=fp, upto_run=m_run.id, started_at=now)
        ).inserted_primary_key[0]
        at = bound_time(conn, now)
        plan = assign_golden_ids(clusters, old_members, created_at, member_since,
                                 lambda n: store.mint_golden_ids(conn, n),
                                 old_of=old_of if one_row_each else None)
        del old_members, member_since
        stats.timings["ids"] = round(time.perf_counter() - t0, 3)
        # the id bookkeeping (retired ids, xref, history) does not depend on survivorship: it is written while
        # the workers run survivorship for their clusters
        _write_golden(conn, plan.cluster_ids, clusters, cfg, now, stats, workers=workers,
                      meanwhile=_write_ids(conn, plan, old_of, now, at, stats))
        stats.timings["survivorship"] = round(time.perf_counter() - t0, 3)
        stats.golden_active = conn.execute(
            sa.select(sa.func.count()).select_from(golden_customer).where(golden_customer.c.status == "active")
        ).scalar_one()
        stats.seconds = round(time.perf_counter() - t0, 3)
        conn.execute(match_run.update().where(match_run.c.id == run_id).values(finished_at=_now(),
                                                                                stats=stats.as_dict()))
    return stats


def _write_ids(conn: Connection, plan: IdAssignment, old_of: dict[str, str], now: datetime, at: Any,
               stats: GoldenStats) -> Iterator[None]:
    """Retire ids, close and open xref rows and write the id history of ``plan``: a step per statement or batch
    of rows (``_write_golden`` runs them between its rounds' other work); done when exhausted."""
    # retired ids stay as aliases; resolve() follows merged_into
    for g, survivor in sorted(plan.retired.items()):
        conn.execute(
            golden_customer.update()
            .where(golden_customer.c.golden_id == g)
            .values(status="retired", merged_into=survivor, updated_at=now)
        )
        yield
        if survivor is None:
            stats.retired_empty += 1
        else:
            stats.merged += 1
    stats.minted = len(plan.minted)

    # xref: close the row of every record that moved or vanished, open one for every moved or new record.
    # Only records with an open row (old_of: every open row of the affected records) have one to close.
    moved = sorted(r for r, g in plan.record_ids.items() if old_of.get(r) != g)
    vanished = sorted(set(old_of) - set(plan.record_ids))
    closing = sorted({r for r in moved if r in old_of} | set(vanished))
    for chunk in _chunks(closing):
        conn.execute(
            xref.update()
            .where(xref.c.record_key.in_(chunk), xref.c.valid_to.is_(None))
            .values(valid_to=now)
        )
        yield
    stats.xref_closed = len(closing)
    del closing

    def opened() -> Iterator[tuple]:
        for r in moved:
            source, _, source_id = r.partition(":")
            yield r, source, source_id, plan.record_ids[r], at, None

    # rows made a batch at a time: a first build opens one per record
    for chunk in chunked(opened(), 5000):
        insert_rows(conn, xref, _XREF_COLUMNS, chunk)
        yield
    stats.xref_opened = len(moved)

    # why records left: a source delete / deactivation (tombstone), else no longer staged (quarantined...)
    why = removal_reasons(conn, vanished)
    removed = [(old_of[r], "record_removed", None, r, why.get(r, "no longer staged"), at) for r in vanished]
    left: dict[str, list[str]] = defaultdict(list)
    for r in vanished:
        left[old_of[r]].append(f"{r} {why.get(r, 'no longer staged')}")
    events = (
        (e.golden_id, e.event, e.related_golden_id, e.record_key,
         (f"{e.reason}: {'; '.join(sorted(left[e.golden_id]))}"
          if e.event == "retired" and e.related_golden_id is None and left.get(e.golden_id)
          else e.reason),
         at)
        for e in plan.events
    )
    # a batch at a time, as the xref rows: a first build mints one id per cluster
    for chunk in chunked(itertools.chain(events, removed), 5000):
        insert_rows(conn, golden_id_history, _HISTORY_COLUMNS, chunk)
        yield
    stats.splits = sum(1 for e in plan.events if e.event == "split")
    stats.records_moved = sum(1 for e in plan.events if e.event == "record_moved")


_GOLDEN_COLUMNS = ("golden_id", "status", "merged_into", "record", "lineage", "quality_score", "record_hash",
                   "created_at", "updated_at", "quality_facts")
_XREF_COLUMNS = ("record_key", "source", "source_id", "golden_id", "valid_from", "valid_to")
_HISTORY_COLUMNS = ("golden_id", "event", "related_golden_id", "record_key", "reason", "at")


# Survivorship is pure Python, one cluster at a time (a first build at 100k records: 68k clusters). The clusters
# go in rounds, in golden id order; each round is split between this process (the first, smaller share: it also
# writes) and forked workers, which inherit the round's staged rows and return the rows to write. This process
# meanwhile writes the previous round's rows and its own, and reads the next round's members: golden_customer
# rows are inserted in golden id order, as one process would. A round bounds the staged JSON held at once.
_ROUND = 16384  # clusters per round
_PARALLEL_MIN = 2000  # below this many clusters forking costs more than it saves
_LEAD_SHARE = 0.5  # this process's share of a round, relative to one worker's (it also loads and writes)

_StagedRow = tuple[str, str, Any, datetime | None]  # source, record JSON, staged_at


@dataclass
class _Part:
    """What survivorship of some clusters gives: rows to insert (JSON encoded), goldens that replace a stored
    one (their decision times are carried over from the stored lineage when written), goldens whose record is
    unchanged but whose quality facts are not (a record's value that no golden value shows changed), unchanged
    goldens."""

    inserts: list[tuple] = field(default_factory=list)
    updates: list[tuple[str, Survived, str, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    records: int = 0  # the members survived
    seconds: float = 0.0  # the time it took (to balance the next round's shares)


def _load_round(conn: Connection, part: list[tuple[str, str]], clusters: dict[str, list[str]]
                ) -> tuple[dict[str, _StagedRow], dict[str, tuple[str | None, str, str | None]]]:
    """The staged rows of the round's members (parsed by whoever runs their survivorship) and the stored
    (record_hash, status, quality_facts) of the round's golden ids."""
    q = sa.select(
        staged_record.c.record_key, staged_record.c.source, as_text(staged_record.c.record, conn.dialect.name),
        staged_record.c.staged_at,
    ).where(staged_record.c.entity == "customers")
    rows = {k: (src, rec, at) for k, src, rec, at in
            select_in(conn, q, staged_record.c.record_key, (r for c, _ in part for r in clusters[c]))}
    # the stored hash decides whether a golden changed; its record and lineage (large JSON) are read only for
    # the goldens that did (to carry their decision times), not for every unchanged one
    gc = golden_customer.c
    old = {g: (h, status, facts) for g, h, status, facts in select_in(
        conn, sa.select(gc.golden_id, gc.record_hash, gc.status, gc.quality_facts), gc.golden_id,
        [g for _, g in part])}
    return rows, old


def _survive_part(part: list[tuple[str, str]], clusters: dict[str, list[str]], rows: dict[str, _StagedRow],
                  old: dict[str, tuple[str | None, str, str | None]], survivor: Survivor, now: datetime, at: Any
                  ) -> _Part:
    out = _Part()
    t0 = time.perf_counter()
    memo: dict[str, list[str]] = {}  # name key -> its words, for the quality facts
    for c, g in part:
        keys = [r for r in sorted(clusters[c]) if r in rows]
        staged = [json_value(rows[r][1]) for r in keys]
        ms = [staged_member(r, rows[r][0], rec, (), rows[r][2]) for r, rec in zip(keys, staged, strict=True)]
        out.records += len(ms)
        if not ms:
            continue
        # hash the lineage before it gets its decision time: the same hash as golden_hash of the dated
        # lineage, without copying every entry to drop decided_at
        golden = survivor.survive_undated(g, ms)
        h = _undated_hash(golden.record, golden.lineage, golden.plain)
        facts = golden_facts(golden.record, [(rows[r][0], rec) for r, rec in zip(keys, staged, strict=True)], memo)
        o = old.get(g)
        if o is not None and o[0] == h and o[1] == "active":
            if o[2] == facts:
                out.unchanged += 1
            else:  # not a change of the golden customer: its record, hash and times stay
                out.facts.append((g, facts))
            continue
        survivor.stamp_decided(golden.lineage, now)  # every value of this build is decided at `now`
        if o is None:
            out.inserts.append((g, "active", None, _column_json(golden.record, golden.plain),
                                _column_json(pack_lineage(golden.lineage), golden.plain), golden.quality_score, h,
                                at, at, facts))
        else:
            out.updates.append((g, golden, h, facts))
    out.seconds = time.perf_counter() - t0
    return out


def _store_part(conn: Connection, part: _Part, now: datetime, stats: GoldenStats) -> None:
    stats.golden_unchanged += part.unchanged + len(part.facts)
    old_values = {
        row.golden_id: row
        for row in select_in(conn, sa.select(golden_customer.c.golden_id, golden_customer.c.record,
                                             golden_customer.c.lineage), golden_customer.c.golden_id,
                             [g for g, *_ in part.updates])
    }
    updates = []
    for g, golden, h, facts in part.updates:
        rec, lin = golden.record, golden.lineage
        o = old_values.get(g)
        if o is not None:
            _carry_decided_at(rec, lin, o.record, unpack_lineage(o.lineage))
        updates.append({"b_gid": g, "status": "active", "merged_into": None,
                        "j_record": _column_json(rec, golden.plain),
                        "j_lineage": _column_json(pack_lineage(lin), golden.plain),
                        "quality_score": golden.quality_score, "record_hash": h, "updated_at": now,
                        "quality_facts": facts})
    insert_rows(conn, golden_customer, _GOLDEN_COLUMNS, part.inserts)
    if updates:
        encoded = {"record": json_text_param(conn, "j_record"), "lineage": json_text_param(conn, "j_lineage")}
        conn.execute(
            golden_customer.update()
            .where(golden_customer.c.golden_id == sa.bindparam("b_gid"))
            .values({**{k: sa.bindparam(k) for k in updates[0] if k not in ("b_gid", "j_record", "j_lineage")},
                     **encoded}),
            updates,
        )
    if part.facts:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == sa.bindparam("b_gid"))
                     .values(quality_facts=sa.bindparam("b_facts")),
                     [{"b_gid": g, "b_facts": facts} for g, facts in part.facts])
    stats.golden_written += len(part.inserts) + len(updates)


def _split(part: list[tuple[str, str]], workers: int, own: float | None = None,
           weight: Callable[[tuple[str, str]], int] | None = None) -> list[list[tuple[str, str]]]:
    """This process's share first (``own`` units of work, else by ``_LEAD_SHARE``), then one equal share per
    other worker. A cluster is ``weight(cluster)`` units of work (``_write_golden`` weighs a cluster by its
    records: survivorship's time grows with them, ~0.1 ms each), else one."""
    if workers < 2:
        return [part]
    # cum[i]: the work of the first i clusters
    cum = [0, *itertools.accumulate(weight(c) if weight is not None else 1 for c in part)]
    total = cum[-1]
    if own is None:
        own = total * _LEAD_SHARE / (_LEAD_SHARE + workers - 1)
    own = max(0.0, min(own, total))
    step = (total - own) / (workers - 1)
    # the clusters up to each cut make (about) its work
    bounds = [0, *(bisect.bisect_left(cum, own + step * i) for i in range(workers - 1)), len(part)]
    shares = [part[a:b] for a, b in itertools.pairwise(bounds)]
    return [shares[0]] + [share for share in shares[1:] if share]


def _write_golden(
    conn: Connection,
    cluster_ids: dict[str, str],
    clusters: dict[str, list[str]],
    cfg: SurvivorshipConfig,
    now: datetime,
    stats: GoldenStats,
    *,
    workers: int = 0,
    meanwhile: Iterator[None] | None = None,
) -> None:
    """Survivorship of every cluster and its golden_customer row. ``meanwhile``: other writes of this build, a
    step at a time, run in this process while the workers survive their share of a round (all of them before
    this returns)."""
    items = sorted(cluster_ids.items(), key=lambda kv: kv[1])
    survivor = Survivor(cfg)
    at = bound_time(conn, now)
    n = worker_count(workers) if len(items) >= _PARALLEL_MIN else 1
    rounds = [items[i : i + _ROUND] for i in range(0, len(items), _ROUND)]
    steps = meanwhile

    def run_steps(until: float) -> None:
        """Steps of ``meanwhile`` until ``until`` (perf_counter), at least one."""
        nonlocal steps
        while steps is not None:
            try:
                next(steps)
            except StopIteration:
                steps = None
            if time.perf_counter() >= until:
                return

    if not rounds:
        run_steps(float("inf"))
        return
    loaded = _load_round(conn, rounds[0], clusters)
    pending: list[_Part] = []  # the workers' share of the previous round: written before this round's own
    # this process also writes the parts, runs steps of ``meanwhile`` and loads the next round while the workers
    # survive theirs: its share of the next round is sized by what the last one took (with a fixed share it
    # waited for the workers; ``meanwhile`` run whole in the first round made the workers wait for it: 160k
    # records' xref and history, ~0.9 s of a 1.1 s round)
    # shares are measured in records, not clusters: survivorship's time grows with a cluster's records, and the
    # large clusters are not spread evenly over a round (100k people: a worker with the round's last clusters
    # needed 0.17 ms a cluster, this process with its first 0.25, and waited ~0.8 s a round for it)
    own: float | None = None
    per_record = 0.0  # seconds this process took to survive a record, in the last round it had any
    extra = 0.0  # seconds this process spent on other work in the last round
    per_worker = 0.0  # seconds a worker took to survive a record, in the last round

    def weight(item: tuple[str, str]) -> int:
        return len(clusters[item[0]])

    records = [sum(map(weight, part)) for part in rounds]  # per round
    for k, part in enumerate(rounds):
        rows, old = loaded

        def work(share: list[tuple[str, str]], rows: dict = rows, old: dict = old) -> _Part:
            return _survive_part(share, clusters, rows, old, survivor, now, at)

        def lead(share: list[tuple[str, str]], k: int = k, work: Callable = work,
                 size: int = records[k], per_worker: float = per_worker) -> None:
            nonlocal loaded, pending, per_record, extra
            t0 = time.perf_counter()
            mine = work(share)
            t1 = time.perf_counter()
            if mine.records:
                per_record = mine.seconds / mine.records
            for p in pending:
                _store_part(conn, p, now, stats)
            pending = []
            _store_part(conn, mine, now, stats)
            # until the workers are expected to be done with their share
            t2 = time.perf_counter()
            run_steps(t0 + (per_worker or per_record) * (size - mine.records) / max(n - 1, 1))
            stepped = time.perf_counter() - t2
            loaded = _load_round(conn, rounds[k + 1], clusters) if k + 1 < len(rounds) else ({}, {})
            # what this process did besides surviving: the steps of ``meanwhile`` count while any are left
            # (its share shrinks to leave them room), not once they are done (160k records: the round after
            # the last step had the share of a round with steps, and the workers' 0.9 s longer)
            extra = time.perf_counter() - t1 - (stepped if steps is None else 0.0)

        pending = fork_map(work, _split(part, n, own, weight), n, lead=lead, collect=False)[1:]
        if k + 1 < len(rounds):
            # a forked worker survives a record more slowly than this process (its first touch of each page
            # it writes copies the page: 100k people, ~15 % slower): the next shares follow both rates
            done = sum(p.records for p in pending)
            per_worker = sum(p.seconds for p in pending) / done if done else per_record
            nxt = records[k + 1]
            own = nxt * lead_share(n, per_record * nxt, extra, worker_s=per_worker * nxt)
    for p in pending:
        _store_part(conn, p, now, stats)
    run_steps(float("inf"))


# -- reading golden records -------------------------------------------------------------------------------------------


def resolve(store: Store, golden_id: str) -> str | None:
    """The active golden id a (possibly retired) id stands for today; None if it was retired without heir.

    Raises KeyError for an id the hub never minted.
    """
    seen: set[str] = set()
    cur = golden_id
    with store.engine.connect() as conn:
        while True:
            row = conn.execute(
                sa.select(golden_customer.c.status, golden_customer.c.merged_into).where(
                    golden_customer.c.golden_id == cur
                )
            ).first()
            if row is None:
                raise KeyError(f"unknown golden id {cur}")
            if row.status == "active":
                return cur
            if row.merged_into is None or cur in seen:
                return None
            seen.add(cur)
            cur = row.merged_into


def load_golden(store: Store, golden_id: str) -> GoldenCustomer | None:
    """The golden customer (record + lineage) of an id, following merges; None if retired without heir."""
    gid = resolve(store, golden_id)
    if gid is None:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(golden_customer.c.record, golden_customer.c.lineage).where(golden_customer.c.golden_id == gid)
        ).first()
    lineage = {k: FieldLineage.model_validate(v) for k, v in unpack_lineage(row.lineage).items()}
    return GoldenCustomer.model_validate({**row.record, "lineage": lineage})


def golden_membership(store: Store) -> dict[str, frozenset[str]]:
    """Active golden id -> its current source record keys (from the open xref rows)."""
    out: dict[str, set[str]] = defaultdict(set)
    with store.engine.connect() as conn:
        for r, g in conn.execute(sa.select(xref.c.record_key, xref.c.golden_id).where(xref.c.valid_to.is_(None))):
            out[g].add(r)
    return {g: frozenset(rs) for g, rs in out.items()}


def golden_id_of(store: Store, record_key: str, at: datetime | None = None) -> str | None:
    """The golden id a source record belonged to now (or at ``at``), from xref."""
    q = sa.select(xref.c.golden_id).where(xref.c.record_key == record_key)
    if at is None:
        q = q.where(xref.c.valid_to.is_(None))
    else:
        q = q.where(xref.c.valid_from <= at, sa.or_(xref.c.valid_to.is_(None), xref.c.valid_to > at))
    with store.engine.connect() as conn:
        return conn.execute(q.order_by(xref.c.id.desc()).limit(1)).scalar()
