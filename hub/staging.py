"""The staging stage: landing payloads -> canonical ``staged_record`` rows, or ``quarantine``.

Incremental: only landing rows whose ``payload_hash`` differs from their ``staged_hash`` are read; after a
chunk is processed its rows get ``staged_hash = payload_hash`` in the same transaction as the staged and
quarantine writes, so a crash mid-run loses nothing and redoes at most one chunk.

Per landing row, exactly one of:
  staged       its canonical record(s) are new or changed and were upserted;
  unchanged    the canonical record(s) came out byte-identical to what is staged (nothing written, so
               downstream incremental matching does not see a change);
  quarantined  a required rule failed: a ``quarantine`` row with reason codes and the raw payload replaces
               any staged record of it. A quarantined record that later stages cleanly leaves quarantine.
So staged + quarantined covers every landed row (never silent loss).

Records the source deleted or deactivated (tombstones of the id-only sweep, ``hub.privacy.tombstones``) are
retired first: their staged and quarantine rows go, and a tombstoned landing row is never staged again
until its record is back at the source. A landing row whose records carry an erased person's phone, e-mail,
national id or owner (``hub.privacy.suppression``) is *suppressed*: never staged, its payload deleted and its
source key listed so the next pull does not land it again.

Speed (bench/bench_staging.py): landing rows are read in large batches; the mapping, the JSON decoding of the
payloads and the encoding and hashing of the records run on ``workers`` processes (this one and forked
children, ``hub.dedupe.parallel.fork_map`` with a lead task) while this process writes the previous batch.
Only this process writes. The output does not depend on the number of workers.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import time
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Connection

from hub.dedupe.parallel import fork_map, lead_share, worker_count
from hub.golden.matching import staged_engine_rows
from hub.mappings import ENTITY_MODELS, Mapper, MappingError, MappingOutcome, load_mapping
from hub.privacy import suppression
from hub.privacy.tombstones import apply_tombstones, live_tombstone
from hub.quality.completeness import customer_profile, profile_bits
from hub.quality.identifiers import identifier_digests
from hub.standardise import clear_caches
from hub.store import (
    ANALYZE_AFTER_ROWS,
    STAGING_MAPPING_ENTITY,
    Store,
    bound_time,
    chunked,
    gc_paused,
    insert_rows,
    is_pruned,
    json_bytes,
    json_value,
    landing,
    landing_unstaged,
    on_psycopg2,
    payload_hash,
    quarantine,
    staged_record,
    update_from_values,
)

log = logging.getLogger(__name__)

CHUNK_SIZE = 2000
_IN_CHUNK = 500  # bound IN (...) lists: SQLite's variable limit, PostgreSQL plan size

# Demo source names -> mapping kind, used when no `sources` configuration is given.
DEFAULT_SOURCES: dict[str, dict[str, Any]] = {
    "erp": {"kind": "sql_erp", "mapping": "sql_erp_sandbox"},
    "webshop": {"kind": "woocommerce"},
    "social": {"kind": "wechat"},
    "wechat": {"kind": "wechat"},  # the WeChat connector's default system name
    "callcenter": {"kind": "asterisk_cdr"},
    "tryton": {"kind": "tryton"},
}
_CONTEXT_KEYS = ("phone_region", "dayfirst", "default_country")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(slots=True)
class EntityStats:
    source: str
    entity: str
    records_in: int = 0
    staged: int = 0
    unchanged: int = 0
    quarantined: int = 0
    released: int = 0  # left quarantine because they now stage cleanly
    records_written: int = 0  # canonical records upserted (one landing row may feed several)
    reasons: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)


@dataclass(slots=True)
class StagingStats:
    """Counts per (source, landing entity), for Dagster metadata and the data-quality report."""

    rows: dict[tuple[str, str], EntityStats] = field(default_factory=dict)
    seconds: float = 0.0
    full: bool = False
    restaged_sources: list[str] = field(default_factory=list)  # fully re-staged: their mapping changed
    retired: int = 0  # records retired because their source deleted / deactivated them (tombstones)
    suppressed: int = 0  # landing rows of erased people: dropped, never staged

    def row(self, source: str, entity: str) -> EntityStats:
        key = (source, entity)
        if key not in self.rows:
            self.rows[key] = EntityStats(source, entity)
        return self.rows[key]

    def _total(self, attr: str, source: str | None = None) -> int:
        return sum(getattr(r, attr) for r in self.rows.values() if source is None or r.source == source)

    @property
    def records_in(self) -> int:
        return self._total("records_in")

    @property
    def staged(self) -> int:
        return self._total("staged")

    @property
    def unchanged(self) -> int:
        return self._total("unchanged")

    @property
    def quarantined(self) -> int:
        return self._total("quarantined")

    @property
    def released(self) -> int:
        return self._total("released")

    @property
    def records_per_second(self) -> float:
        return self.records_in / self.seconds if self.seconds > 0 else 0.0

    def per_source(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.rows.values():
            s = out.setdefault(r.source, {"records_in": 0, "staged": 0, "unchanged": 0, "quarantined": 0,
                                          "released": 0, "reasons": Counter()})
            for k in ("records_in", "staged", "unchanged", "quarantined", "released"):
                s[k] += getattr(r, k)
            s["reasons"].update(r.reasons)
        return out

    def top_reasons(self, n: int = 5, source: str | None = None) -> list[tuple[str, int]]:
        c: Counter = Counter()
        for r in self.rows.values():
            if source is None or r.source == source:
                c.update(r.reasons)
        return c.most_common(n)

    def markdown(self) -> str:
        lines = [
            f"**Staging** ({'full re-stage' if self.full else 'incremental'}): {self.records_in} landing rows "
            f"in {self.seconds:.2f}s ({self.records_per_second:,.0f}/s) — {self.staged} staged, "
            f"{self.unchanged} unchanged, {self.quarantined} quarantined, {self.released} released from quarantine",
            "",
            *([f"Mapping changed, fully re-staged: {', '.join(self.restaged_sources)}", ""]
              if self.restaged_sources else []),
            *([f"Retired {self.retired} records their source deleted or deactivated", ""] if self.retired else []),
            *([f"Suppressed {self.suppressed} records of erased people (never staged)", ""]
              if self.suppressed else []),
            "| source | entity | in | staged | unchanged | quarantined | released | top reasons |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for (source, entity), r in sorted(self.rows.items()):
            top = ", ".join(f"`{code}` {n}" for code, n in r.reasons.most_common(3)) or "—"
            lines.append(f"| {source} | {entity} | {r.records_in} | {r.staged} | {r.unchanged} | "
                         f"{r.quarantined} | {r.released} | {top} |")
        flags: Counter = Counter()
        for r in self.rows.values():
            flags.update(r.flags)
        if flags:
            lines += ["", "Top quality flags (field:code): " +
                      ", ".join(f"`{code}` {n}" for code, n in flags.most_common(8))]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    mapper: Mapper
    overrides: dict[str, Any]


def _cfg_get(cfg: Any, key: str) -> Any:
    if isinstance(cfg, Mapping):
        return cfg.get(key)
    return getattr(cfg, key, None)


def _explicit(cfg: Any) -> dict[str, Any]:
    """Context settings the configuration sets explicitly (else the mapping's declared defaults apply)."""
    if isinstance(cfg, Mapping):
        return {k: cfg[k] for k in _CONTEXT_KEYS if k in cfg}
    fields_set = getattr(cfg, "model_fields_set", set())
    return {k: getattr(cfg, k) for k in _CONTEXT_KEYS if k in fields_set}


def resolve_sources(
    sources_config: Mapping[str, Any] | None,
    mappings: Mapping[str, Mapper] | None = None,
    present: Iterable[str] = (),
) -> dict[str, _Source]:
    """Source name -> (mapper, context overrides). Unknown mapping names raise MappingError (config bug)."""
    cfgs: Mapping[str, Any] = sources_config or {n: c for n, c in DEFAULT_SOURCES.items() if n in set(present)}
    loaded: dict[str, Mapper] = dict(mappings or {})
    out: dict[str, _Source] = {}
    for name, cfg in cfgs.items():
        if _cfg_get(cfg, "enabled") is False:
            continue
        mname = _cfg_get(cfg, "mapping") or _cfg_get(cfg, "kind") or name
        if mname == "sql_erp" and "sql_erp" not in loaded:
            # every SQL ERP has its own tables: guessing the sandbox's declaration would misread a real one
            raise MappingError(
                f"source {name!r}: kind sql_erp needs `mapping:` naming the declaration of its tables "
                "(e.g. sql_erp_sandbox for the built-in sandbox)"
            )
        if mname not in loaded:
            loaded[mname] = load_mapping(mname)
        out[name] = _Source(name, loaded[mname], _explicit(cfg))
    return out


# --------------------------------------------------------------------------------------------------------------
# The stage


def stage_pending(
    store: Store,
    mappings: Mapping[str, Mapper] | None = None,
    sources_config: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    workers: int = 1,
) -> StagingStats:
    """Stage every landing row whose payload changed since it was last staged.

    ``workers``: processes that map a large backlog (0 = one per core, at most 4; 1 = in this process only,
    the default; the staged_records asset passes hub.yaml ``staging.workers``, whose comment has the measured
    trade-off; bench/bench_staging.py --workers N measures it). The output is the same whatever the number."""
    return _run(store, mappings, sources_config, full=False, chunk_size=chunk_size, workers=workers)


def stage_all(
    store: Store,
    mappings: Mapping[str, Mapper] | None = None,
    sources_config: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    workers: int = 1,
) -> StagingStats:
    """Re-stage every landing row (after a mapping or standardiser change). Unchanged output writes nothing."""
    return _run(store, mappings, sources_config, full=True, chunk_size=chunk_size, workers=workers)


def _run(
    store: Store,
    mappings: Mapping[str, Mapper] | None,
    sources_config: Mapping[str, Any] | None,
    *,
    full: bool,
    chunk_size: int,
    workers: int,
) -> StagingStats:
    started = time.perf_counter()
    stats = StagingStats(full=full)
    with store.engine.connect() as conn:
        present = [r[0] for r in conn.execute(sa.select(landing.c.source).distinct())]
    sources = resolve_sources(sources_config, mappings, present)
    sup = suppression.load(store)
    for name in sorted(set(present) & set(sources)):
        try:
            _run_source(store, sources[name], stats, sup, full=full, chunk_size=chunk_size,
                        workers=worker_count(workers))
        finally:
            # back to normal collection: what the source's passes froze unswept (see _stage_source) is
            # collectable again (not collected here: a full collection walks the whole heap, ~0.4 s a source)
            gc.unfreeze()
    # the standardisers' memoised results are this batch's (each cache holds up to 200k values: ~0.5 GB of
    # small objects after 100k people's sources) and nothing after staging standardises that many values; a
    # sync's later stages run in this process and would start above them (matching clears them too, later)
    clear_caches()
    if stats.staged + stats.quarantined >= ANALYZE_AFTER_ROWS:
        store.refresh_statistics(staged_record, landing, quarantine)
    stats.seconds = time.perf_counter() - started
    log.info("staging: %d in, %d staged, %d unchanged, %d quarantined, %d released in %.2fs",
             stats.records_in, stats.staged, stats.unchanged, stats.quarantined, stats.released, stats.seconds)
    return stats


def _run_source(store: Store, src: _Source, stats: StagingStats, sup: suppression.Suppressor, *, full: bool,
                chunk_size: int, workers: int) -> None:
    fingerprint = mapping_fingerprint(src)
    previous = store.get_cursor(src.name, STAGING_MAPPING_ENTITY) or {}
    # a changed declaration (or phone region / date order) re-stages the whole source by itself
    changed = bool(previous) and previous.get("fingerprint") != fingerprint
    if changed and not full:
        stats.restaged_sources.append(src.name)
    with store.begin() as conn:
        stats.retired += apply_tombstones(conn, src.name, derived_keys(src.mapper)).records
    _stage_source(store, src, stats, sup, full=full or changed, chunk_size=chunk_size, workers=workers)
    if previous.get("fingerprint") != fingerprint:
        _save_fingerprint(store, src.name, fingerprint)


def derived_keys(mapper: Mapper) -> dict[str, list[tuple[str, str]]]:
    """Per landing entity, the (staged entity, source-id prefix) of the records a landing row of it produces
    under its own id (``<source>:<prefix><landing source_id>``)."""
    return {entity: [(t.entity, t.source_id_prefix) for t in targets if t.source_id is None]
            for entity, targets in mapper.targets.items()}


def mapping_fingerprint(src: _Source) -> str:
    ctx = src.mapper.context(src.name, src.overrides)
    return payload_hash({"mapping": src.mapper.spec.model_dump(mode="json", by_alias=True),
                         "context": [ctx.phone_region, ctx.dayfirst, ctx.default_country]})


def _save_fingerprint(store: Store, source: str, fingerprint: str) -> None:
    store.save_cursor(source, STAGING_MAPPING_ENTITY, {"fingerprint": fingerprint})


def _stage_source(store: Store, src: _Source, stats: StagingStats, sup: suppression.Suppressor, *, full: bool,
                  chunk_size: int, workers: int) -> None:
    ctx = src.mapper.context(src.name, src.overrides)
    # with several workers a read covers one task of PARALLEL_TASK_ROWS rows per worker: the adapter memos
    # start cold in every forked task, and under ~5k rows the warm-up costs more than the second core gives
    batch = max(chunk_size, workers * PARALLEL_TASK_ROWS) if workers > 1 else chunk_size
    payload = _payload_text(store.engine.dialect.name)
    pending: list[_Mapped] = []  # mapped, not yet written: written while the next read is being mapped
    lead = 1.0 / workers  # this process's share of a read's mapping (it also writes; see lead_share)
    write_s = 0.0

    def write() -> None:
        nonlocal write_s
        started = time.perf_counter()
        for start in range(0, len(pending), chunk_size):
            part = pending[start:start + chunk_size]
            with gc_paused(freeze=True, sweep=False), store.begin() as conn:
                inserted = _write_chunk(conn, src, _suppress(conn, src, part, stats, sup), stats)
            # a first stage fills staged_record from empty, and each source adds to the table's part of an entity
            # (the ERP's customers after the call center's): PostgreSQL's plans of the lookups above need
            # statistics of both (planned for one row, a chunk's lookup walked every staged customer: 443 ms)
            for entity, n in inserted.items():
                store.statistics_keeper(staged_record).wrote(n, {"entity": entity})
        pending.clear()
        write_s = time.perf_counter() - started

    last_id = 0
    while True:
        q = (
            sa.select(landing.c.id, landing.c.entity, landing.c.source_id, payload, landing.c.payload_hash,
                      landing.c.staged_hash)
            .where(landing.c.source == src.name, landing.c.id > last_id, ~live_tombstone())
            .order_by(landing.c.id)
            .limit(batch)
        )
        if not full:
            q = q.where(landing_unstaged())  # through ix_landing_unstaged: the unstaged rows only
        with store.engine.connect() as conn:
            rows = conn.execute(q).all()
        if not rows:
            break
        last_id = rows[-1][0]
        # frozen unswept: a sweep walked all of a read's mapped rows to find garbage cycles the mapping makes
        # none of (~6 % of staging's CPU); the few it might are collectable again after the source (_run)
        with gc_paused(freeze=True, sweep=False):
            # the rows read before are written (in order: their writes never touch these rows) while forked
            # workers map these; the mapping reads nothing from the store
            mapped, map_s = _map_rows(src.mapper, rows, ctx, read_workers(rows, workers), lead, write)
        pending.extend(mapped)
        if map_s:
            # at least a fifth: its caches, which every worker starts from, stay warm
            lead = lead_share(workers, map_s / max(1, round(lead * len(rows))) * len(rows), write_s, floor=0.2)
        if len(rows) < batch:
            break
    write()


def read_workers(rows: Sequence[Any], workers: int) -> int:
    """The processes that map one read: ``workers`` when most of its rows were never staged (a first stage:
    their records are inserted, and the writing of the previous read overlaps the mapping), else this one.
    Measured on the shared 2-core machine (20k people, bench/bench_staging.py): a second worker took a first
    stage from 121 to 87 s wall (17 % more CPU) but a restage, whose unchanged output writes nothing, from 36
    to 53 s (the workers' results cross a pipe for nothing to write)."""
    if workers < 2:
        return 1
    first = sum(1 for row in rows if row[-1] is None)  # the landing row's staged_hash: never staged
    return workers if 2 * first >= len(rows) else 1


def _payload_text(dialect: str) -> Any:
    """The payload column read as its JSON text: decoded by ``json.loads`` (what the store's engine does) in the
    mapping worker, so that decoding, a fifth of staging's reading, runs on every core."""
    if dialect == "postgresql":  # psycopg2 decodes json columns itself; the text of a json value is verbatim
        return sa.cast(landing.c.payload, sa.Text).label("payload")
    return sa.type_coerce(landing.c.payload, sa.Text).label("payload")  # SQLite, MariaDB: stored as text


# (landing row, its outcome, per record: (record_hash, record JSON, quality_flags JSON))
_Mapped = tuple[Any, MappingOutcome, list[tuple[str, str, str]]]

# rows one forked mapping task takes (see _stage_source); a smaller read maps in this process
PARALLEL_TASK_ROWS = 10_000


def _map_one(mapper: Mapper, rows: Sequence[Any], ctx: Any) -> list[_Mapped | None]:
    """Per landing row read with its payload as JSON text: ``(row, outcome, encoded records)`` (hashed and
    encoded here: in the worker, when forked), or None for a payload retention pruned (not staged again: its staged record
    stays as it was). The row, ``(id, entity, source_id, payload, payload_hash, staged_hash is current)``, keeps
    its decoded payload only when quarantined (the one place it is written)."""
    out: list[_Mapped | None] = []
    for lid, entity, sid, text, phash, staged_hash in rows:
        # the store's own reading of a JSON column (json.loads' values, with orjson where the two agree)
        payload = json_value(text) if text.__class__ is str else text
        if is_pruned(payload):
            out.append(None)
            continue
        oc = mapper.map(entity, sid, payload, ctx)
        out.append(((lid, entity, sid, payload if oc.reasons else None, phash, staged_hash == phash), oc,
                    [_encoded(rec) for rec in oc.records]))
    _with_engine_rows(out)
    return out


def _with_engine_rows(mapped: list[_Mapped | None]) -> None:
    """Fill in the engine rows of the customer records among ``mapped`` (``staged_engine_rows``: the engine
    standardises the batch's values here, in the mapping worker, and the match stage reads them instead)."""
    at = [(k, j) for k, m in enumerate(mapped) if m is not None
          for j, rec in enumerate(m[1].records) if rec.entity == "customers"]
    if not at:
        return
    try:
        kept = staged_engine_rows([(mapped[k][2][j][0], mapped[k][1].records[j].record) for k, j in at])
    except Exception as exc:  # noqa: BLE001 — kept rows are a head start, not the records: stage them without
        # the type only: a message may quote a value
        log.warning("engine rows of %d staged customers not kept (%s): the match stage derives them",
                    len(at), type(exc).__name__)
        return
    for (k, j), (engine_input, engine_text) in zip(at, kept, strict=True):
        mapped[k][2][j] = (*mapped[k][2][j][:5], engine_input, engine_text)


def _map_rows(mapper: Mapper, rows: Sequence[Any], ctx: Any, workers: int, lead: float,
              meanwhile: Callable[[], None]) -> tuple[list[_Mapped], float]:
    """``_map_one`` over ``rows``, in order, and the seconds this process spent mapping its share (0 when it
    mapped everything). A large read is split: this process maps the first ``lead`` of it and ``workers - 1``
    forked ones the rest in equal parts, started before ``meanwhile`` runs here. The mapping is pure (its
    memos and the standardisers' caches are caches only), so where it runs does not change a byte of the
    output."""
    if workers < 2 or len(rows) < PARALLEL_TASK_ROWS:
        meanwhile()
        results = _map_one(mapper, rows, ctx)
        took = 0.0
    else:
        first = max(1, round(lead * len(rows)))
        size = -(-(len(rows) - first) // (workers - 1))
        parts = [rows[:first], *(rows[i:i + size] for i in range(first, len(rows), size))]
        timed: list[float] = []

        def lead_part(part: Sequence[Any]) -> list[_Mapped | None]:
            started = time.perf_counter()
            out = _map_one(mapper, part, ctx)
            timed.append(time.perf_counter() - started)
            return out

        # this process maps the first part itself (its standardiser caches stay warm; each child starts from
        # them: running every part in a child doubled the CPU), after forking the children and running meanwhile
        chunks = fork_map(lambda part: _map_one(mapper, part, ctx), parts, workers, lead=lead_part,
                          meanwhile=meanwhile, collect=False)
        results = [r for chunk in chunks for r in chunk]
        took = timed[0]
    return [r for r in results if r is not None], took


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterable[Sequence[Any]]:
    return chunked(items, size)


def _holds_float(tp: Any, seen: set[Any] | None = None) -> bool:
    """Whether a value of the annotation ``tp`` can hold a float anywhere (nested models, lists, dicts, Any)."""
    seen = set() if seen is None else seen
    if tp is float or tp is Any or tp is object:
        return True
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp in seen:
            return False
        seen.add(tp)
        return any(_holds_float(f.annotation, seen) for f in tp.model_fields.values())
    return any(_holds_float(a, seen) for a in typing.get_args(tp) if not isinstance(a, str | int | bool))


# canonical entities whose records hold no float: json_bytes tries orjson on them without walking the record
_FLOATLESS = frozenset(e for e, model in ENTITY_MODELS.items() if not _holds_float(model))


def _encoded(rec: Any) -> tuple[str, str, str, int | None, bytes | None, str | None, str | None]:
    """``(record_hash, record JSON, quality_flags JSON, quality_profile, identifier_hashes, engine_input,
    engine_row)``: each value encoded once, for the hash
    and for the write (the JSON columns take the text as it is, see ``_write_chunk``). The hash is of the JSON
    list ``[record, quality_flags, customer_key]``, which is those encodings joined by commas in brackets.
    Records are JSON-native values in model field order, so the plain (unsorted) encoding is deterministic.
    ``quality_profile``: which fields a customer record holds (``profile_bits``); ``identifier_hashes``: its strong
    identifiers (``identifier_digests``, which the brake counts); ``engine_input`` / ``engine_row``: None here,
    the matching engine's input row and standardised values for a customer record (``_with_engine_rows`` fills
    them in a batch at a time: the match stage reads them instead of deriving and standardising them);
    None for other entities."""
    fast = rec.entity in _FLOATLESS
    record = json_bytes(rec.record, floatless=fast, errors="surrogatepass")
    flags = json_bytes(rec.quality_flags, floatless=True, errors="surrogatepass")
    key = rec.customer_key
    key_text = b"null" if key is None else json_bytes(key, floatless=True, errors="surrogatepass")
    blob = b"".join((b"[", record, b",", flags, b",", key_text, b"]"))
    customer = rec.entity == "customers"
    profile = profile_bits(customer_profile(rec.record)) if customer else None
    record_hash = hashlib.sha256(blob).hexdigest()
    # the engine rows are made a batch at a time (``_with_engine_rows``)
    return (record_hash, record.decode("utf-8", "surrogatepass"), flags.decode("utf-8", "surrogatepass"), profile,
            identifier_digests(rec.record) if customer else None, None, None)


# staged_record writes with the record and its flags bound as the JSON text _encoded made (a plain text
# parameter: the column stores it as the JSON type's own bind would, without encoding the record again). Rows
# are tuples in the order of these names: new ones through hub.store.insert_rows, updates through _executemany
_STAGED_SET = ("source", "source_id", "customer_key", "record", "quality_flags", "record_hash", "staged_at",
               "quality_profile", "identifier_hashes", "engine_input", "engine_row")
_STAGED_INSERT_COLS = ("entity", "record_key", *_STAGED_SET)
_STAGED_UPDATE_COLS = (*_STAGED_SET, "entity", "record_key")  # SET ..., WHERE entity, record_key
_STAGED_VALUES = {
    **{c: sa.bindparam(f"v_{c}", type_=staged_record.c[c].type)
       for c in ("source", "source_id", "customer_key", "record_hash", "staged_at", "quality_profile",
                 "identifier_hashes", "engine_input", "engine_row")},
    "record": sa.bindparam("v_record", type_=sa.Text()),
    "quality_flags": sa.bindparam("v_quality_flags", type_=sa.Text()),
}
_STAGED_UPDATE = (staged_record.update()
                  .where(staged_record.c.entity == sa.bindparam("v_entity"),
                         staged_record.c.record_key == sa.bindparam("v_record_key"))
                  .values(_STAGED_VALUES))
_LANDING_DONE = (landing.update().where(landing.c.id == sa.bindparam("v_id"))
                 .values(staged_hash=sa.bindparam("v_staged_hash")))
# the same statements as SQLite's driver takes them: positional, in the order of the tuples
_SQLITE_SQL = {
    "update": (f"UPDATE staged_record SET {', '.join(f'{c} = ?' for c in _STAGED_SET)} "
               "WHERE entity = ? AND record_key = ?"),
    "done": "UPDATE landing SET staged_hash = ? WHERE id = ?",
}
_STATEMENTS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "update": (_STAGED_UPDATE, tuple(f"v_{c}" for c in _STAGED_UPDATE_COLS)),
    "done": (_LANDING_DONE, ("v_staged_hash", "v_id")),
}


def _executemany(conn: Connection, kind: str, rows: list[tuple[Any, ...]]) -> None:
    """Run one of ``_STATEMENTS`` for ``rows`` (tuples; times from ``hub.store.bound_time``). On SQLite the rows go
    straight to the driver's executemany: SQLAlchemy's processing of every parameter of every row (a dict per
    row, compiled parameters, processors) cost more CPU than the driver's executemany itself. The landing marks
    on PostgreSQL (psycopg2): one UPDATE ... FROM VALUES per chunk (``hub.store.update_from_values``). Elsewhere
    SQLAlchemy's executemany, which batches rows into multi-row statements (the drivers' own executemany sends
    one statement per row). Every column is a string, or JSON bound as its text, or the time: the same bytes
    stored either way."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_SQL[kind], rows)
        return
    if kind == "done" and on_psycopg2(conn):
        # one statement per chunk: a statement per landing row was 39 of 63 samples of what PostgreSQL did in a
        # first staging at 100k people (bench/pg_activity.py)
        update_from_values(conn, "UPDATE landing SET staged_hash = v.h FROM (VALUES {rows}) AS v (h, id) "
                                 "WHERE landing.id = v.id", rows, page_size=len(rows))
        return
    stmt, keys = _STATEMENTS[kind]
    conn.execute(stmt, [dict(zip(keys, r, strict=True)) for r in rows])


def _suppress(conn: Connection, src: _Source, outcomes: list[_Mapped], stats: StagingStats,
              sup: suppression.Suppressor) -> list[_Mapped]:
    """Drop the landing rows of erased people: payload deleted, earlier staged / quarantine rows removed, and
    the source key listed (the next pull leaves it out). Returns the outcomes to stage."""
    if sup.empty:
        return outcomes
    keep, dropped = [], []
    for mapped in outcomes:
        oc = mapped[1]
        hit = next((why for rec in oc.records
                    if (why := "record" if sup.listed("record", suppression.record_value(
                        rec.entity, f"{src.name}:{rec.source_id}"))
                        else sup.record_listed(rec.entity, rec.record, rec.customer_key))), None)
        (dropped if hit else keep).append(mapped)
    if not dropped:
        return outcomes
    source = src.name
    keys = []
    for (lid, lentity, sid, *_), oc, _ in dropped:
        conn.execute(landing.delete().where(landing.c.id == lid))
        conn.execute(quarantine.delete().where(quarantine.c.source == source, quarantine.c.entity == lentity,
                                               quarantine.c.source_id == sid))
        for rec in oc.records:
            conn.execute(staged_record.delete().where(staged_record.c.entity == rec.entity,
                                                      staged_record.c.record_key == f"{source}:{rec.source_id}"))
        keys.append(("landing", suppression.landing_key(source, lentity, sid)))
    suppression.add(conn, sup, keys, None)
    stats.suppressed += len(dropped)
    return keep


def _staged_hashes(conn: Connection, entity: str, keys: Sequence[str]) -> Sequence[Any]:
    """``(record_key, record_hash)`` of the staged records among ``keys``. On SQLite as plain SQL to the driver:
    SQLAlchemy's compiling of a 500-value IN list per chunk cost more than the query."""
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql(
            "SELECT record_key, record_hash FROM staged_record WHERE entity = ? AND record_key IN "
            f"({', '.join('?' * len(keys))})", (entity, *keys)).all()
    return conn.execute(_STAGED_HASHES, {"b_entity": entity, "b_keys": list(keys)}).all()


# built once, with expanding parameters: a statement built per chunk compiled its IN list every time and left
# garbage cycles (SQLAlchemy's cloned bind parameters, each with its 500 values) for the collector to find
_STAGED_HASHES = sa.select(staged_record.c.record_key, staged_record.c.record_hash).where(
    staged_record.c.entity == sa.bindparam("b_entity"),
    staged_record.c.record_key.in_(sa.bindparam("b_keys", expanding=True)))
_IN_QUARANTINE = sa.select(quarantine.c.id, quarantine.c.source_id).where(
    quarantine.c.source == sa.bindparam("b_source"), quarantine.c.entity == sa.bindparam("b_entity"),
    quarantine.c.source_id.in_(sa.bindparam("b_sids", expanding=True)))


def _write_chunk(conn: Connection, src: _Source, outcomes: list[_Mapped], stats: StagingStats) -> Counter[str]:
    """Write one chunk's staged records, quarantine rows and landing marks; returns the staged records
    inserted per entity."""
    source = src.name
    now = _now()
    bound_now = bound_time(conn, now)
    # -- what is staged / quarantined already for the rows of this chunk
    keys_by_entity: dict[str, set[str]] = {}
    for row, oc, _ in outcomes:
        for rec in oc.records:
            keys_by_entity.setdefault(rec.entity, set()).add(f"{source}:{rec.source_id}")
        if oc.reasons:  # the stale staged records of a now-quarantined row are removed below
            for t in src.mapper.targets.get(row[1], ()):
                if t.source_id is None:
                    keys_by_entity.setdefault(t.entity, set()).add(f"{source}:{t.source_id_prefix}{row[2]}")
    existing: dict[tuple[str, str], str] = {}
    for entity, keys in keys_by_entity.items():
        for part in _chunks(sorted(keys)):
            for rk, h in _staged_hashes(conn, entity, part):
                existing[(entity, rk)] = h
    in_quarantine: dict[tuple[str, str], int] = {}
    landing_ids = sorted({(row[1], row[2]) for row, _, _ in outcomes})
    by_entity: dict[str, list[str]] = {}
    for ent, sid in landing_ids:
        by_entity.setdefault(ent, []).append(sid)
    for ent, sids in by_entity.items():
        for part in _chunks(sids):
            for qid, sid in conn.execute(_IN_QUARANTINE, {"b_source": source, "b_entity": ent, "b_sids": list(part)}):
                in_quarantine[(ent, sid)] = qid

    inserts: list[tuple[Any, ...]] = []  # rows of _STAGED_INSERT_COLS
    updates: list[tuple[Any, ...]] = []  # rows of _STAGED_UPDATE_COLS
    deletes: list[dict[str, Any]] = []
    q_inserts: list[dict[str, Any]] = []
    q_updates: list[dict[str, Any]] = []
    q_release: list[int] = []
    done: list[tuple[str, int]] = []  # (staged_hash, landing id)
    seen: set[tuple[str, str]] = set()  # a chunk may produce one record key twice (last one wins)
    for row, oc, encoded in outcomes:
        lid, lentity, sid, payload, phash, current = row
        st = stats.row(source, lentity)
        st.records_in += 1
        if not current:  # a full restage of an unchanged payload: its staged_hash is this hash already
            done.append((phash, lid))
        qid = in_quarantine.get((lentity, sid))
        if oc.reasons:
            st.quarantined += 1
            st.reasons.update(oc.reasons)
            values = {"reasons": oc.reasons, "detail": oc.detail or None, "payload": payload,
                      "payload_hash": phash, "quarantined_at": now}
            if qid is None:
                q_inserts.append({"source": source, "entity": lentity, "source_id": sid, **values})
            else:
                q_updates.append({"b_qid": qid, **values})
            for t in src.mapper.targets.get(lentity, ()):
                if t.source_id is None:
                    key = (t.entity, f"{source}:{t.source_id_prefix}{sid}")
                    if key in existing:
                        deletes.append({"b_entity": key[0], "b_key": key[1]})
                        existing.pop(key)
            continue
        if qid is not None:
            q_release.append(qid)
            st.released += 1
        changed = False
        for rec, (h, record_json, flags_json, profile, identifiers, engine_input, engine_text) in zip(
                oc.records, encoded, strict=True):
            rk = f"{source}:{rec.source_id}"
            st.flags.update(rec.quality_flags)
            key = (rec.entity, rk)
            old = existing.get(key)
            if old == h:
                continue
            changed = True
            values = (source, rec.source_id, rec.customer_key, record_json, flags_json, h, bound_now, profile,
                      identifiers, engine_input, engine_text)
            if old is None and key not in seen:
                inserts.append((rec.entity, rk, *values))
            else:
                updates.append((*values, rec.entity, rk))
            existing[key] = h
            seen.add(key)
        if changed:
            st.staged += 1
            st.records_written += sum(1 for _ in oc.records)
        else:
            st.unchanged += 1

    # duplicates inside one chunk (same key twice) were turned into updates above
    insert_rows(conn, staged_record, _STAGED_INSERT_COLS, inserts)
    _executemany(conn, "update", updates)
    if deletes:
        conn.execute(
            staged_record.delete().where(staged_record.c.entity == sa.bindparam("b_entity"),
                                         staged_record.c.record_key == sa.bindparam("b_key")),
            deletes,
        )
    if q_inserts:
        conn.execute(quarantine.insert(), q_inserts)
    if q_updates:
        conn.execute(
            quarantine.update()
            .where(quarantine.c.id == sa.bindparam("b_qid"))
            .values({k: sa.bindparam(k) for k in ("reasons", "detail", "payload", "payload_hash",
                                                   "quarantined_at")}),
            q_updates,
        )
    for part in _chunks(q_release):
        conn.execute(quarantine.delete().where(quarantine.c.id.in_(part)))
    # every row of the chunk may have been suppressed, or already have its staged_hash: then nothing runs
    _executemany(conn, "done", done)
    return Counter(row[0] for row in inserts)
