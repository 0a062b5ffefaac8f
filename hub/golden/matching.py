"""Matching for golden records: the hub.dedupe engine's public verbs plus the store-side bookkeeping.

Every run hands all staged customer records to the engine — ``prepare_records`` (its standardised keys; the
engine rows and standardised values of unchanged records come from a cache in ``match_record``),
``block`` (every rule with its own cap and window, sorted neighbourhoods included), ``score`` with a stored
``MatchModel`` (fitted once by ``fit``, or a fixed-weight configuration), ``cluster_records`` (non-chaining,
steward must-/cannot-links). What the golden stage keeps is bookkeeping: which records changed, which pairs to
re-score, which components to re-cluster, and the store tables (``match_pair``, ``match_record``,
``match_run``, ``match_model``).

Incremental: a record is *changed* when its staged content or its matching keys differ from the last run
(``match_record.record_hash`` holds a digest of them and of its candidate partners). Compared and scored are the
candidate pairs with a changed end and those that were not candidates in the last run (``match_candidates``
holds that run's pairs and bands); every other pair keeps its stored score, and a pair that left the set its
row no more. The affected set K (changed records, the ends of match edges that appeared or went, steward
decisions made since the last run) is closed in memory under match edges, must-links and previous clusters and
re-clustered from the match pairs stored inside it. Scores are a function of the pair and the frozen model, clusters a function of each component:
the result equals a full rebuild (tested in tests/test_golden_incremental.py and test_golden_engine.py).
A run whose inputs are the last run's (staged customers' count and newest staged_at, model, steward decisions,
settings, matching code) and that finds the match state as that run left it ends at once (``_unchanged_run``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.dedupe.arrays import distinct
from hub.golden.config import MatchSettings, load_match_settings
from hub.golden.review import load_constraints
from hub.golden.tables import match_model, match_record, match_run
from hub.heap import trim_heap
from hub.store import (
    Store,
    as_text,
    bound_time,
    chunked,
    gc_paused,
    insert_rows,
    json_text,
    json_value,
    match_candidates,
    match_pair,
    select_in,
    staged_record,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from hub.dedupe import DedupeSettings, MatchModel, Records

log = logging.getLogger(__name__)

CHUNK = 500
SCORE_CHUNK = 500_000  # candidate pairs compared and scored at a time (bounded memory)
# candidate pairs to score from which the comparison is forked to the workers; fewer are compared here (the
# comparer's threads take both cores). A fork of the stage's process (~3 GB at 1.5M records) copies every page
# the workers touch: 1.55M synthetic records after a 1 % change, 784k pairs: the stage's peak 4.0 -> 3.3 GB,
# the step ~3 s shorter
SCORE_FORK_MIN = 4_000_000


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    return chunked(items, size)


# -- settings -----------------------------------------------------------------------------------------------------

# The fixed-weight configuration of the engine (``engine: fixed``): weights in bits per comparison level, chosen
# by hand instead of estimated — identifiers decide, names and dates support. With the prior of -8 bits a pair
# needs 8 bits of evidence to link (an e-mail, or a phone with a name) and about 5 to be reviewed.
FIXED_WEIGHTS: dict[str, dict[str, float]] = {
    "family_name": {"far": -2.0, "weak": 0.0, "close": 2.0, "exact": 3.0},
    "given_name": {"far": -3.0, "weak": 0.0, "close": 2.0, "exact": 3.0},
    "birth_date": {"far": -6.0, "two_edits": -1.0, "close": 1.0, "exact": 3.0},
    "national_id": {"far": -12.0, "similar": -2.0, "one_edit": 4.0, "exact": 10.0},
    "phone": {"far": -1.0, "same_subscriber": 2.0, "one_edit": 1.0, "exact": 6.0},
    "email": {"far": -1.0, "similar": 1.0, "close": 2.0, "exact": 8.0},
    "address": {"other_area": -1.0, "same_area_street_differs": -0.5, "same_area": 0.5, "street_similar": 2.0,
                "street_close": 3.0, "street_exact": 4.0},
    "company": {"close": 1.0, "exact": 2.0},
}
FIXED_PRIOR = -8.0


# -- the engine's input -------------------------------------------------------------------------------------------

FURTHER_VALUES = 3  # a record's 2nd..4th phone, e-mail and address go to the engine as phone_2.. / street_2..
ADDRESS_PARTS = ("street", "city", "region", "postal_code")
ENGINE_COLUMNS = (
    "record_id", "source", "full_name", "given_name", "family_name", "company", "email", "phone", "birth_date",
    "gender", "national_id", "national_id_type", "street", "city", "region", "postal_code", "country",
    *(f"{kind}_{k}" for kind in ("phone", "email") for k in range(2, 2 + FURTHER_VALUES)),
    *(f"{part}_{k}" for k in range(2, 2 + FURTHER_VALUES) for part in ADDRESS_PARTS),
)


def engine_row(record_key: str, rec: dict) -> tuple:
    """One row of the engine's input from a staged customer record (staging's standardised values): every
    phone, e-mail and address (up to 1 + FURTHER_VALUES of each; the numbers staging could not validate after
    the valid ones, as `hub dedupe` reads them from a file; so are a birth date, a national id and a postcode
    staging could not verify) and the kind of the national id staging validated (two different validated ids
    are two people to the engine)."""
    phones = [p.get("e164") for p in rec.get("phones") or () if isinstance(p, dict) and p.get("e164")]
    phones += [p for p in rec.get("unverified_phones") or () if p]
    emails = [e for e in rec.get("emails") or () if e]
    # a postcode staging could not verify for the address's country is handed over as written
    held = [dict(a, postal_code=a.get("postal_code") or a.get("unverified_postal_code"))
            for a in rec.get("addresses") or () if isinstance(a, dict) and any(a.get(k) for k in ADDRESS_PARTS)]
    addresses = list(dict.fromkeys(tuple(a.get(k) or "" for k in ADDRESS_PARTS) for a in held))
    addr = held[0] if held else {}
    phones, emails = list(dict.fromkeys(phones)), list(dict.fromkeys(emails))
    further = [(v[k] if k < len(v) else "") for v in (phones, emails) for k in range(1, 1 + FURTHER_VALUES)]
    further += [(addresses[k][x] if k < len(addresses) else "") for k in range(1, 1 + FURTHER_VALUES)
                for x in range(len(ADDRESS_PARTS))]
    return (
        record_key, rec.get("source") or "", rec.get("full_name") or "", rec.get("given_name") or "",
        rec.get("family_name") or "", rec.get("company") or "", emails[0] if emails else "",
        phones[0] if phones else "", rec.get("birth_date") or rec.get("unverified_birth_date") or "",
        rec.get("gender") or "", rec.get("national_id") or rec.get("unverified_national_id") or "",
        rec.get("national_id_type") or "",  # staging types only an id it validated
        addr.get("street") or "", addr.get("city") or "", addr.get("region") or "",
        addr.get("postal_code") or "", addr.get("country") or "", *further,
    )


# the staged record's fields ``engine_row`` reads (tests/test_matching_derive.py checks it reads no other): a full
# run reads only these of each record's JSON (about a third of its bytes)
ENGINE_FIELDS = ("source", "full_name", "given_name", "family_name", "company", "emails", "phones",
                 "unverified_phones", "birth_date", "unverified_birth_date", "gender", "national_id",
                 "national_id_type", "unverified_national_id", "addresses")


def engine_frame(rows: Iterable[tuple[str, dict]]) -> pd.DataFrame:
    """The engine's input frame (all strings, '' = missing) for (record_key, staged record JSON) items."""
    return pd.DataFrame([engine_row(k, r) for k, r in rows], columns=list(ENGINE_COLUMNS), dtype=str)


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
    timings: dict[str, float] = field(default_factory=dict)  # cumulative wall s at the end of each step
    cpu: dict[str, float] = field(default_factory=dict)  # cumulative CPU s (this process) at the same points
    records_dirty: int = 0  # records whose content or candidate partners changed
    model: dict = field(default_factory=dict)  # estimation, priors of the model used (no values)
    inputs: str = ""  # digest of what the run matched (``_inputs_digest``): equal next time = nothing to do
    stored: str = ""  # digest of the match state the run left (``_stored_digest``): changed outside a run = redo
    unchanged: bool = False  # nothing changed since the last run: it ended without matching

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
        if self.unchanged:
            lines.append("\nNothing changed since the last match run (staged customers, model, steward "
                         "decisions, settings): kept its result.")
        if self.fallback_reason:
            lines.append(f"\nRan as full rebuild: {self.fallback_reason}")
        return "\n".join(lines)


def _cpu_s() -> float:
    """CPU seconds of this process and of the engine workers it forked and waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _mark(stats: MatchStats, step: str, t0: float, c0: float) -> None:
    stats.timings[step] = round(time.perf_counter() - t0, 3)
    stats.cpu[step] = round(_cpu_s() - c0, 3)


# -- store access ---------------------------------------------------------------------------------------------------


def last_run(conn: Connection, kind: str) -> Any:
    return conn.execute(
        sa.select(match_run)
        .where(match_run.c.kind == kind, match_run.c.finished_at.is_not(None))
        .order_by(match_run.c.id.desc())
        .limit(1)
    ).first()


def latest_model(conn: Connection, matcher: str) -> tuple[int, datetime, MatchModel] | None:
    """(id, trained_at, model) of the newest stored model of this matcher; None: none yet, or stored in a
    format the engine no longer reads (then it is refitted)."""
    row = conn.execute(
        sa.select(match_model.c.id, match_model.c.trained_at, match_model.c.params)
        .where(match_model.c.matcher == matcher).order_by(match_model.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    from hub.dedupe import MatchModel

    try:
        return row[0], row[1], MatchModel.from_json(row[2])
    except (ValueError, KeyError, TypeError):
        log.warning("stored matching model is in an older format: it is refitted")
        return None


def load_model(conn: Connection, matcher: str) -> MatchModel | None:
    """The newest stored model of this matcher (None: none yet, or stored in a format the engine dropped)."""
    got = latest_model(conn, matcher)
    return got[2] if got else None


# -- the entry point ------------------------------------------------------------------------------------------------


@dataclass
class _Population:
    """All staged customer records, prepared once by the engine, in record-key order. ``input_hash`` /
    ``row_text``: what ``match_record`` caches of each record's engine input; ``derived``: the records whose row
    was not found in that cache (or stale there): derived in this run from the staged JSON, or read off the
    standardised row staging kept."""

    keys: list[str]
    staged_hash: np.ndarray  # bytes per record (``_digest_column``; b"" = none)
    records: Records | None  # None once clustered (memory: the writes do not need it)
    input_hash: np.ndarray  # bytes per record (b"" = never cached: no staged hash)
    row_text: _RowTexts
    derived: np.ndarray  # bool per record

    def input_hash_of(self, i: int) -> str | None:
        return self.input_hash[i].decode("utf-8") or None


def _digest_column(texts: Sequence[Any], width: int | None = None) -> np.ndarray:
    """Hash digests as one array of fixed-width bytes: half a Python string's size and no object per record
    (a dict and lists of them were ~1 GB through the match stage at two million records). b"" for None or "".
    Without ``width`` every text comes back as it was (UTF-8; a digest ends in no NUL, which the array would
    drop); with it, a text of another width or not ASCII is b"" too (it equals no hash of this width)."""
    if width is None:
        return np.array([(t or "").encode("utf-8") for t in texts], dtype=bytes)
    return np.array([t.encode("ascii") if isinstance(t, str) and len(t) == width and t.isascii() else b""
                     for t in texts], dtype=f"S{width}")


class _RowTexts:
    """The population's cache rows (``_pack`` texts, ~400 bytes a record) held compressed between preparing and
    writing: Zstandard (level 1) in slices of ``PACK_CHUNK`` rows, each slice one text and the rows' end offsets.
    Held as Python strings they were a tenth of the match stage's high-water mark (blocking, comparing and fitting
    come between); compressed a fifth of that. Read in index order (the writes go through the records in key
    order), so one slice is decompressed at a time. (zlib at level 1, before: 3.5x the time to compress, 5x to
    decompress and a tenth larger; 160k records: 0.5 s of the prepare step.)"""

    def __init__(self, parts: Iterable[Sequence[str]]) -> None:
        """``parts``: the rows in slices of ``PACK_CHUNK`` (the last one shorter), each compressed as it comes
        (a caller that builds the rows slice by slice never holds them all as strings)."""
        self._rows = PACK_CHUNK  # rows per slice, fixed for the life of the object
        self._slices: list[tuple[bytes, int, np.ndarray]] = []  # (compressed, its size uncompressed, row ends)
        for part in parts:
            ends = np.cumsum([len(t) for t in part], dtype=np.int64)
            data = "".join(part).encode("utf-8", "surrogatepass")
            self._slices.append((_row_codec().compress(data, asbytes=True), len(data), ends))
        self._open: tuple[int, str] = (-1, "")

    def __getitem__(self, i: int) -> str:
        s, j = divmod(i, self._rows)
        blob, size, ends = self._slices[s]
        if self._open[0] != s:
            self._open = (s, _row_codec().decompress(blob, decompressed_size=size, asbytes=True)
                          .decode("utf-8", "surrogatepass"))
        return self._open[1][int(ends[j - 1]) if j else 0:int(ends[j])]


@functools.cache
def _row_codec() -> Any:
    """The codec of ``_RowTexts`` (Arrow's Zstandard: a module-level one, so that a population pickles)."""
    import pyarrow as pa

    return pa.Codec("zstd", compression_level=1)


@functools.cache
def _engine_signature() -> str:
    """Digest of the code that turns a staged record into the engine's input and standardised values
    (``engine_row``, the engine's ``prepare``, ``hub.standardise``): cached rows of another version are stale
    and derived again, so a cached row is always what this code would derive."""
    h = hashlib.sha256((inspect.getsource(engine_row) + repr(ENGINE_COLUMNS)).encode())
    files = [Path(importlib.util.find_spec("hub.dedupe.prepare").origin)]
    for loc in importlib.util.find_spec("hub.standardise").submodule_search_locations:
        files += sorted(f for f in Path(loc).rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    # the libraries the standardisers and comparisons call: an upgrade can change a derived value or a level
    h.update(repr([_version(p) for p in _ENGINE_LIBRARIES]).encode())
    return h.hexdigest()[:16]


_ENGINE_LIBRARIES = ("phonenumbers", "pypinyin", "opencc", "rapidfuzz", "email-validator", "pycountry",
                     "python-dateutil", "numpy", "pandas")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


INPUT_HASH_WIDTH = 32  # hex digits of match_record.input_hash


def _input_hash(staged_hash: str) -> str | None:
    """Key of a cached engine row: the record's staged hash under this engine-row code (None: no hash, never
    cached)."""
    if not staged_hash:
        return None
    return hashlib.sha256(f"{_engine_signature()}|{staged_hash}".encode()).hexdigest()[:INPUT_HASH_WIDTH]


PACK_CHUNK = 50_000  # records whose cache rows are packed at a time
_SEP = "\x1f"  # the unit separator between a cached row's values


def _pack(values: Sequence[str]) -> str:
    """A cached row as text: "|" and the values joined by the unit separator (splitting is ten times faster
    than JSON), or JSON when a value holds the separator itself."""
    joined = _SEP.join(values)
    if joined.count(_SEP) != max(len(values) - 1, 0):  # a value holds the separator (one C scan, not one per value)
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return "|" + joined


def _unpack(text: str) -> list[str]:
    return text[1:].split(_SEP) if text.startswith("|") else json.loads(text)


# where a row's phone numbers are among its values (ENGINE_COLUMNS without record_id): the first, then the further
_PHONE_SLOTS = tuple(ENGINE_COLUMNS.index(c) - 1 for c in ("phone", *(f"phone_{k}" for k in
                                                                      range(2, 2 + FURTHER_VALUES))))


def staged_engine_rows(items: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str | None, str | None]]:
    """What staging keeps with each customer record, ``(record_hash, record)``, for the match stage
    (``staged_record.engine_input`` / ``engine_row``): the key the text is valid under (``_input_hash`` of the
    record's hash: another record, or other engine code, makes it stale) and the text, packed (``_pack``): how
    many of the record's phone numbers staging validated (they come first: ``_PhoneVerdicts`` is read off it),
    its engine row (``engine_row``) and the engine's standardised values of that row (``standardise_records`` of
    the batch, a pure function of each record: the match stage prepares such a record without standardising it
    again, as it does a record whose row ``match_record`` caches). (None, None) where a value is no string: the
    match stage derives that row from the JSON."""
    from hub.dedupe import standardise_records

    out: list[tuple[str | None, str | None]] = [(None, None)] * len(items)
    at: list[int] = []
    heads: list[tuple[str | None, int]] = []
    rows: list[tuple] = []
    verdicts = _PhoneVerdicts()  # staging's verdicts on the batch's numbers, as the match stage collects them
    for k, (record_hash, record) in enumerate(items):
        row = engine_row("", record)[1:]
        if not all(type(v) is str for v in row):
            continue
        valid = verdicts.note(record)
        at.append(k)
        heads.append((_input_hash(record_hash), min(len(dict.fromkeys(v for v in valid if v)), len(_PHONE_SLOTS))))
        rows.append(row)
    if not rows:
        return out
    frame = _fresh_frame(rows, None, list(ENGINE_COLUMNS[1:]), [str(k) for k in at])
    std = standardise_records(frame, staged_phones=verdicts.valid, unverified_phones=verdicts.unverified)
    for k, (input_hash, valid_slots), row, values in zip(at, heads, rows, std.to_numpy(dtype=object).tolist(),
                                                         strict=True):
        if all(type(v) is str for v in values):
            out[k] = (input_hash, _pack([str(valid_slots), *row, *values]))
    return out


_ENGINE_WIDTH = len(ENGINE_COLUMNS) - 1  # values of an engine row (without record_id)


def _kept_row(text: str) -> tuple[str | None, list[str], list[str], str | None]:
    """A kept engine row (``staged_engine_rows``): first the row packed as ``_engine_rows`` packs it and its
    validated and its unverified phone numbers, when staging kept the engine row alone (as before it kept the
    standardised values); last the row with the engine's standardised values after it, packed as
    ``match_record`` caches it, when staging kept them (then the others are None and empty: the engine takes
    the record's standardised values as they are, its phone numbers are judged already)."""
    if text.startswith("|") and text.count(_SEP) > _ENGINE_WIDTH:
        # the standardised values are kept: the text after the phone count is all the match stage reads of it
        # (not split: 160k records, 0.6 s)
        return None, [], [], "|" + text[text.index(_SEP) + 1:]
    values = _unpack(text)
    valid_slots, row = int(values[0]), values[1:]
    phones = [row[j] for j in _PHONE_SLOTS]
    packed = "|" + text[len(values[0]) + 2:] if text.startswith("|") else _pack(row)
    valid, unverified = phones[:valid_slots], [p for p in phones[valid_slots:] if p]
    return (packed, valid, unverified, None) if len(row) == _ENGINE_WIDTH else (None, valid, unverified, packed)


def _split_columns(text: list[str], idx: np.ndarray, width: int) -> list[pa.ChunkedArray] | None:
    """The packed rows ``idx`` of ``text`` column by column as Arrow strings, split by Arrow a slice at a time: no
    Python object per value (196k records' 66 values were 3.8M str objects and 0.38 GB with their pointer arrays,
    all alive at once). A column is its slices' arrays as they were taken (one array each, concatenated, was a
    second copy of every column at the end: ~0.4 GB at 614k records).
    None when a row is stored as JSON (a value holds the separator, or is no string)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[list[pa.Array]] = [[] for _ in range(width)]
    for a in range(0, len(idx), PACK_CHUNK):
        part = [text[i] for i in idx[a:a + PACK_CHUNK].tolist()]
        if not all(t[:1] == "|" for t in part):
            return None
        # the values after the leading "|" that marks a packed row
        values = pc.split_pattern(pc.utf8_slice_codeunits(pa.array(part, type=pa.large_string()), 1), _SEP)
        del part
        lengths = pc.list_value_length(values).to_numpy()
        if len(lengths) and (lengths.min() != width or lengths.max() != width):
            return None
        # each row's values follow one another: value j of every row is every width-th from j
        flat = values.flatten()
        del values
        for j in range(width):
            parts[j].append(flat.take(pa.array(np.arange(j, len(flat), width, dtype=np.int64))))
    return [pa.chunked_array(c, type=pa.large_string()) for c in parts]


def _as_given(values: Any) -> Any:
    """A column as a frame keeps it: an object array stays objects (pandas would infer strings of it)."""
    return pd.Series(values, dtype=object, copy=False) if isinstance(values, np.ndarray) else values


def _cached_columns(text: list[str], idx: np.ndarray, width: int) -> list[Any]:
    """The cached rows ``idx`` of ``text`` column by column, ``width`` values per row: Arrow-backed string
    arrays (``_split_columns``) when every row is packed, else object arrays (``_object_columns``)."""
    split = _split_columns(text, idx, width)
    if split is not None:
        return [pd.array(c, dtype=str) for c in split]
    return _object_columns(text, idx, width)


def _object_columns(text: list[str], idx: np.ndarray, width: int) -> list[np.ndarray]:
    """The cached rows ``idx`` of ``text`` column by column as object arrays, packed or JSON rows alike: a slice
    of rows is joined and split at once (a split per row and a frame built from row lists cost twice as much)."""
    cols = [np.empty(len(idx), dtype=object) for _ in range(width)]
    for a in range(0, len(idx), PACK_CHUNK):
        part = [text[i] for i in idx[a:a + PACK_CHUNK].tolist()]
        flat = _SEP.join([t[1:] for t in part]).split(_SEP) if all(t[:1] == "|" for t in part) else []
        if len(flat) != len(part) * width:  # a row stored as JSON (a value holds the separator)
            flat = []
            for t in part:
                values = _unpack(t)
                if len(values) != width:
                    raise ValueError(f"a cached engine row has {len(values)} values, not {width}")
                flat += values
        for j in range(width):
            cols[j][a:a + len(part)] = np.array(flat[j::width], dtype=object)
    return cols


DERIVE_PARALLEL_MIN = 20_000  # records derived from staged JSON below which one process is faster than forking


@dataclass
class _PhoneVerdicts:
    """What staging judged of the derived records' phone numbers: the engine keys them without standardising
    them again (``prepare_records(staged_phones=, unverified_phones=)``)."""

    valid: set[str] = field(default_factory=set)  # the E.164 numbers staging gave (``phones``)
    unverified: set[str] = field(default_factory=set)  # the numbers it could not validate, as written

    def note(self, record: dict[str, Any]) -> list[str]:
        """Add a staged record's numbers (its E.164 ``phones``, its ``unverified_phones``); its valid ones back."""
        valid = [p["e164"] for p in record.get("phones") or () if isinstance(p, dict) and type(p.get("e164")) is str]
        self.valid.update(valid)
        self.unverified.update(p for p in record.get("unverified_phones") or () if type(p) is str)
        return valid

    @staticmethod
    def union(parts: Iterable[_PhoneVerdicts]) -> _PhoneVerdicts:
        out = _PhoneVerdicts()
        for p in parts:
            out.valid |= p.valid
            out.unverified |= p.unverified
        return out


def _engine_rows(items: Iterable[tuple[str, str | bytes]]) -> tuple[list[str | tuple], _PhoneVerdicts]:
    """The engine rows (without record_key) of (record_key, staged JSON text) items, each packed (``_pack``)
    when all its values are strings, else as derived; and staging's verdicts on their phone numbers. The text is
    the record's JSON object, or the JSON array of its ``ENGINE_FIELDS`` (``_staged_fields``)."""
    out: list[str | tuple] = []
    phones = _PhoneVerdicts()
    for key, raw in items:
        rec = json_value(raw)
        if type(rec) is list:  # the fields' values (a missing one is null: ``engine_row`` reads both as absent)
            rec = dict(zip(ENGINE_FIELDS, rec, strict=True))
        phones.note(rec)
        row = engine_row(key, rec)[1:]
        try:
            out.append(_pack(row))
        except TypeError:  # joining met a value that is no string
            out.append(row)
    return out, phones


def _derive_rows(conn: Connection, keys: list[str], population: int, workers: int, store: Store | None = None,
                 inputs: Sequence[str] | None = None
                 ) -> tuple[list[str | tuple | None], _PhoneVerdicts, list[str | None]]:
    """``_engine_rows`` of the staged customer records ``keys`` (sorted), in their order: the rows staging kept
    (``staged_engine_rows``) where they are valid under ``inputs`` (per key its ``_input_hash``; None: worked out
    here), the others derived from the staged JSON (``_derive_from_json``); None where staging kept the row with
    the engine's standardised values: that text (``match_record``'s cache text) is the third list's, per key."""
    if not keys:
        return [], _PhoneVerdicts(), []
    rows: list[str | tuple | None] = [""] * len(keys)
    whole: list[str | None] = [None] * len(keys)
    phones = _PhoneVerdicts()
    found = np.zeros(len(keys), dtype=bool)
    at = {k: i for i, k in enumerate(keys)}
    sr = staged_record.c
    q = sa.select(sr.record_key, sr.record_hash, sr.engine_input, sr.engine_row).where(
        sr.entity == "customers", sr.engine_input.is_not(None))
    # most records: one scan beats hundreds of IN lists
    kept = (conn.execution_options(yield_per=10_000).execute(q) if 2 * len(keys) >= population
            else select_in(conn, q, sr.record_key, keys))
    for key, record_hash, engine_input, text in kept:
        i = at.get(key)
        if i is None or engine_input != (_input_hash(record_hash) if inputs is None else inputs[i]):
            continue
        rows[i], valid, unverified, whole[i] = _kept_row(text)
        phones.valid.update(valid)
        phones.unverified.update(unverified)
        found[i] = True
    del at
    if found.all():
        return rows, phones, whole
    missing = np.flatnonzero(~found)
    derived, more = _derive_from_json(conn, [keys[i] for i in missing.tolist()], population, workers, store)
    for i, row in zip(missing.tolist(), derived, strict=True):
        rows[i] = row
    return rows, _PhoneVerdicts.union([phones, more]), whole


def _derive_from_json(conn: Connection, keys: list[str], population: int, workers: int, store: Store | None = None
                      ) -> tuple[list[str | tuple], _PhoneVerdicts]:
    """``_engine_rows`` of the staged customer records ``keys`` (sorted), in their order. Read as JSON text
    (the store decodes it as the column would: ``json_value``), decoded in ``workers`` processes: decoding and
    walking ~1 KB of JSON per record is most of what a full run's reading costs, all of it in one process.
    ``store``: the one ``conn`` is of, for the workers' own connections (None or in memory: derived here)."""
    from hub.dedupe.parallel import fork_map

    if not keys:
        return [], _PhoneVerdicts()
    q = sa.select(staged_record.c.record_key, _staged_fields(conn.dialect.name)).where(
        staged_record.c.entity == "customers")
    tasks = max(1, min(workers, len(keys) // DERIVE_PARALLEL_MIN + 1))
    size = -(-len(keys) // tasks)
    if 2 * len(keys) >= population:  # most records: scans beat hundreds of IN lists
        # each process scans a range of record keys on its own connection, deriving as it reads: no record's
        # text is held for the whole range, nor passes from one process to another (a parent that read the
        # workers' shares before forking them held them, and each worker copied the pages of its share as it
        # read them: 1.55M synthetic records on PostgreSQL, the derive's peak 3.7 -> 1.8 GB). Ranges in the
        # database's order (its collation need not be Python's): every record is in exactly one, whatever the order
        wanted = set(keys)
        if store is None or store.in_memory:
            tasks = 1
        cuts = [keys[a] for a in range(size, len(keys), size)][:tasks - 1]
        ranges = list(zip([None, *cuts], [*cuts, None], strict=True))

        def scan(c: Connection, lo: str | None, hi: str | None) -> Iterator[tuple[str, Any]]:
            part = q if lo is None else q.where(staged_record.c.record_key >= lo)
            part = part if hi is None else part.where(staged_record.c.record_key < hi)
            return ((k, t) for k, t in c.execution_options(yield_per=10_000).execute(part) if k in wanted)

        def derived(items: Iterator[tuple[str, Any]]) -> tuple[list[str], list[str | tuple], _PhoneVerdicts]:
            got: list[str] = []

            def noted() -> Iterator[tuple[str, Any]]:
                for item in items:
                    got.append(item[0])
                    yield item

            rows, phones = _engine_rows(noted())
            return got, rows, phones

        def in_worker(bounds: tuple[str | None, str | None]) -> Any:
            with store.own_copy() as own, own.engine.connect() as c:
                return derived(scan(c, *bounds))

        parts = fork_map(in_worker, ranges, tasks, lead=lambda bounds: derived(scan(conn, *bounds)), collect=False)
        del wanted
        at = {k: i for i, k in enumerate(keys)}
        out: list[str | tuple] = [""] * len(keys)
        for got, rows, _ in parts:
            for k, row in zip(got, rows, strict=True):
                out[at[k]] = row
        return out, _PhoneVerdicts.union(phones for _, _, phones in parts)
    raw: dict[str, str] = {}
    for chunk in _chunks(keys):
        raw.update(conn.execute(q.where(staged_record.c.record_key.in_(chunk))).all())
    items = [(k, raw[k]) for k in keys]
    del raw
    parts = fork_map(_engine_rows, [items[a:a + size] for a in range(0, len(items), size)], tasks,
                     lead=_engine_rows, collect=False)
    return [row for part, _ in parts for row in part], _PhoneVerdicts.union(phones for _, phones in parts)


def _staged_fields(dialect: str) -> Any:
    """The staged record's text for ``_engine_rows``. On SQLite the JSON array of its ``ENGINE_FIELDS``, as bytes
    (``as_text``): SQLite parses the JSON in C, and Python decodes a third of the bytes (reading and decoding
    100k records: 1.9 s CPU instead of 2.9). The whole record where SQLite would read it otherwise than
    ``json_value`` (NaN, which SQLite 3.42+ takes for null, or invalid JSON). Elsewhere the record's text."""
    record = staged_record.c.record
    if dialect != "sqlite":
        return as_text(record, dialect)
    text = sa.type_coerce(record, sa.Text)  # the stored text as it is (SQLite parses one text once per row)
    plain = sa.and_(sa.func.json_valid(text) == 1, sa.func.instr(text, sa.literal("NaN", sa.Text)) == 0)
    fields = sa.func.json_extract(text, *(sa.literal(f'$."{f}"', sa.Text) for f in ENGINE_FIELDS))
    return sa.cast(sa.case((plain, fields), else_=text), sa.LargeBinary)


def _fresh_frame(rows: list, cols: dict[str, np.ndarray] | None, names: list[str], keys: list[str]) -> pd.DataFrame:
    """The engine's input frame of derived records: from their columns (``cols``), else from their rows."""
    frame = pd.DataFrame(rows if cols is None else cols, columns=names, dtype=str)
    frame.insert(0, "record_id", pd.Series(keys, dtype=str))
    return frame


def _packed_more(packed: list[str], values: pd.DataFrame) -> list[str] | None:
    """``_pack_more`` of each packed row of ``packed`` and the same row of ``values``, joined by Arrow a column at
    a time (160k records: 0.9 s of Python a row at a time); None where that would not give ``_pack_more``'s text
    (a row stored as JSON, a value that is no string or holds the separator, a lone surrogate): then a row at a
    time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not packed or values.shape[1] == 0:
        return None
    try:
        base = pa.array(packed, type=pa.large_string())
        cols = [pa.array(values[c].to_numpy(dtype=object), type=pa.large_string()) for c in values.columns]
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return None
    if not pc.all(pc.starts_with(base, "|")).as_py():
        return None
    for c in cols:
        if c.null_count or pc.any(pc.match_substring(c, _SEP)).as_py():
            return None
    return pc.binary_join_element_wise(base, *cols, pa.scalar(_SEP, type=pa.large_string())).to_pylist()


def _pack_more(packed: str, values: list[str]) -> str:
    """``_pack`` of the values of the packed row ``packed`` followed by ``values``."""
    more = _SEP.join(values)
    if packed.startswith("|") and more.count(_SEP) == max(len(values) - 1, 0):  # no value holds the separator
        return packed + _SEP + more if values else packed
    return _pack([*_unpack(packed), *values])


@dataclass
class _Stored:
    """The ``match_record`` rows before this run, by column, in record-key order (Python's): a dict of a tuple
    of four strings per record held ~0.4 KB a record through the whole stage (63 MB at 160k records, ~0.8 GB at
    two million). ``record_hash`` / ``input_hash``: ASCII bytes (b"" = none, or a hash of another width);
    ``cluster``: per record an index into ``clusters`` (the distinct cluster keys)."""

    keys: list[str]
    record_hash: np.ndarray
    cluster: np.ndarray
    clusters: np.ndarray
    input_hash: np.ndarray

    def positions(self, keys: Sequence[str]) -> np.ndarray:
        """Per key of ``keys``, its index among the stored keys; -1 where it has no row."""
        if not self.keys:
            return np.full(len(keys), -1, dtype=np.int64)
        return pd.Index(self.keys).get_indexer(keys)

    def cluster_key(self, j: int) -> str:
        return self.clusters[self.cluster[j]]


def _match_state(conn: Connection) -> _Stored:
    """One read of ``match_record``: its rows by column (``_Stored``), without the cached engine rows (the child
    that prepares the population reads those: ``_read_cached_rows``; ~400 B a record, they never enter the
    stage's own heap)."""
    mr = match_record.c
    cols = [mr.record_key, mr.record_hash, mr.cluster_key, mr.input_hash]
    keys: list[str] = []
    hashes: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    code_of: dict[str, int] = {}
    for part in conn.execution_options(yield_per=10_000).execute(sa.select(*cols)).partitions():
        keys.extend(r[0] for r in part)
        hashes.append(_digest_column([r[1] for r in part], MATCH_HASH_WIDTH))
        inputs.append(_digest_column([r[3] for r in part], INPUT_HASH_WIDTH))
        codes.append(np.array([code_of.setdefault(r[2], len(code_of)) for r in part], dtype=np.int32))
    clusters = np.empty(len(code_of), dtype=object)
    clusters[:] = list(code_of)
    del code_of
    order = np.argsort(np.array(keys, dtype=object), kind="stable") if keys else np.zeros(0, dtype=np.int64)

    def joined(parts: list[np.ndarray], dtype: str) -> np.ndarray:
        return np.concatenate(parts)[order] if parts else np.zeros(0, dtype=dtype)

    stored = _Stored(keys=[keys[i] for i in order.tolist()],
                     record_hash=joined(hashes, f"S{MATCH_HASH_WIDTH}"), cluster=joined(codes, "int32"),
                     clusters=clusters, input_hash=joined(inputs, f"S{INPUT_HASH_WIDTH}"))
    return stored


def _load_population(conn: Connection, use_cache: bool = True, workers: int = 1, store: Store | None = None
                     ) -> _Population:
    """Every staged customer prepared by the engine. A record's engine row and standardised values come from
    the cache in ``match_record`` when its staged hash is the one they were derived from (unchanged records are
    neither read from the staged JSON nor standardised again), else from the standardised row staging kept with
    the record (``staged_engine_rows``), else from the staged JSON; the engine then prepares the whole population
    from the standardised values (decisions about shared values are the batch's). ``use_cache=False`` (a full
    rebuild) takes every record from staging, without the cache. ``store``: the one
    ``conn`` is of, for the processes that derive records on connections of their own (None: derived here)."""
    from hub.dedupe import prepare_records
    from hub.standardise import clear_caches

    staged = sorted(map(tuple, conn.execution_options(yield_per=10_000).execute(
        sa.select(staged_record.c.record_key, staged_record.c.record_hash)
        .where(staged_record.c.entity == "customers"))))
    keys = [k for k, _ in staged]
    shash = _digest_column([h for _, h in staged])
    del staged
    want = _digest_column([_input_hash(h.decode("utf-8")) for h in shash.tolist()], INPUT_HASH_WIDTH)
    n = len(keys)
    text: list[str] = [""] * n
    derived = np.ones(n, dtype=bool)
    if use_cache:
        _read_cached_rows(conn, keys, want, text, derived)
    uncached = derived.copy()  # their cache rows are written after this run (``_refresh_cache``)
    width = len(ENGINE_COLUMNS) - 1
    names = list(ENGINE_COLUMNS[1:])
    cached_rows: _RowTexts | None = None  # the cached rows, compressed once split into columns
    new_idx = np.flatnonzero(derived)
    eng, phones, whole = _derive_rows(conn, [keys[i] for i in new_idx.tolist()], n, workers, store,
                                      inputs=[w.decode("ascii") for w in want[new_idx].tolist()])
    # the records staging kept standardised (``staged_engine_rows``) are prepared from those values, as cached
    # ones are: only the others are standardised here
    given = [j for j, w in enumerate(whole) if w is not None]
    if given:
        for j in given:
            text[new_idx[j]] = whole[j]
        derived[new_idx[given]] = False
        eng = [row for row, w in zip(eng, whole, strict=True) if w is None]
        new_idx = np.flatnonzero(derived)
    del whole
    packed = all(isinstance(r, str) for r in eng)
    fresh_cols = None
    if packed:  # split column by column at once
        fresh_cols = dict(zip(names, _cached_columns(eng, np.arange(len(eng)), width), strict=True))
        # the rows' texts are read again only to make the cache rows, after the engine's prepare: compressed
        # meanwhile (464k records: ~160 MB as strings, a fourth of that compressed)
        eng = _RowTexts(eng[a:a + PACK_CHUNK] for a in range(0, len(eng), PACK_CHUNK))
    else:  # a value that is no string: the rows as they were derived (pandas converts it as it always did)
        eng = [r if isinstance(r, tuple) else tuple(_unpack(r)) for r in eng]
    if derived.all():
        frame = _fresh_frame(eng, fresh_cols, names, keys)
        del fresh_cols
        records = prepare_records(frame, workers=workers, capture=True, staged_phones=phones.valid,
                                  unverified_phones=phones.unverified)
        new_std = records.standardised
    else:
        fresh = _fresh_frame(eng, fresh_cols, names, [keys[i] for i in new_idx.tolist()])
        del fresh_cols
        new_std = prepare_records(fresh, workers=workers, capture=True, staged_phones=phones.valid,
                                  unverified_phones=phones.unverified).standardised
        std_names = list(new_std.columns)
        old_idx = np.flatnonzero(~derived)
        split = _split_columns(text, old_idx, width + len(std_names))
        cols: list[Any] = split if split is not None else _object_columns(text, old_idx, width + len(std_names))
        # the cached rows are read again only to make the cache rows, after the engine's prepare: compressed
        # meanwhile, as the derived ones are (1.96M records: ~1 GB as strings beside the columns and the prepare)
        cached_rows = _RowTexts(text[a:a + PACK_CHUNK] for a in range(0, n, PACK_CHUNK))
        del text
        # where each record's value is in the cached values followed by the derived ones
        order = np.empty(n, dtype=np.int64)
        order[old_idx] = np.arange(len(old_idx))
        order[new_idx] = len(old_idx) + np.arange(len(new_idx))

        def merged(j: int, new_values: np.ndarray) -> Any:
            """Column ``j`` of every record: Arrow strings when the cached and the derived values all are
            strings (no Python object per value), else an object array (the values as they are)."""
            old, cols[j] = cols[j], None  # memory: one copy of each column at a time
            if not isinstance(old, np.ndarray) and all(type(v) is str for v in new_values.tolist()):
                import pyarrow as pa

                both = pa.chunked_array([*old.chunks, pa.array(new_values, type=pa.large_string())])
                return pd.array(both.take(pa.array(order)), dtype=str)
            col = np.empty(n, dtype=object)
            col[old_idx] = old if isinstance(old, np.ndarray) else old.to_numpy(zero_copy_only=False)
            col[new_idx] = new_values
            return col

        frame = pd.DataFrame({"record_id": keys, **{c: merged(j, fresh[c].to_numpy(dtype=object))
                                                    for j, c in enumerate(names)}}, dtype=str)
        # Arrow-backed where every value is a string: the engine reads a column at a time as objects
        # (``prepare(standardised=)``), the same values
        std = pd.DataFrame({c: _as_given(merged(width + j, new_std[c].to_numpy(dtype=object)))
                            for j, c in enumerate(std_names)})
        del fresh, cols
        records = prepare_records(frame, workers=workers, standardised=std)
        del std
    # memory, at the match step's high-water mark (the cache rows are built next): the standardisers' memoised
    # results are of no further use in this run (nothing after matching standardises; 300k records: ~125 MB),
    # and packed rows hold every value the frame's cells do
    clear_caches()
    if packed:
        del frame
    records.p.standardised = None  # not needed any more (memory)

    def cache_rows() -> Iterator[list[str]]:
        """The population's cache rows in slices of PACK_CHUNK, each compressed (``_RowTexts``) before the next
        is made: the rows of the records derived now (engine row, then standardised values) are made here, so
        that neither they nor the values as Python objects exist for every record at once (a full run derives
        them all: at 1.5M records the rows held as strings put the prepare step's high-water mark 0.4 GB higher)."""
        for a in range(0, n, PACK_CHUNK):
            lo, hi = np.searchsorted(new_idx, [a, a + PACK_CHUNK])  # the records of the slice derived now
            # the cached rows (those derived now are blank, and are filled in below)
            part = ([cached_rows[i] for i in range(a, min(a + PACK_CHUNK, n))] if cached_rows is not None
                    else [""] * (min(a + PACK_CHUNK, n) - a))
            joined = _packed_more([eng[k] for k in range(lo, hi)], new_std.iloc[lo:hi]) if packed else None
            if joined is not None:
                for i, row in zip(new_idx[lo:hi].tolist(), joined, strict=True):
                    part[i - a] = row
                del joined
                yield part
                continue
            std_vals = new_std.iloc[lo:hi].astype(object).to_numpy()
            if not packed:
                rows = frame.iloc[new_idx[lo:hi], 1:].astype(object).to_numpy()
            for j, i in enumerate(new_idx[lo:hi].tolist()):
                if packed:  # the engine row's text as derived, the standardised values after it
                    part[i - a] = _pack_more(eng[lo + j], std_vals[j].tolist())
                else:
                    part[i - a] = _pack([*rows[j].tolist(), *std_vals[j].tolist()])
            yield part

    # nothing derived here (every row cached or kept standardised by staging): the rows are the cached ones
    row_text = cached_rows if cached_rows is not None and not len(new_idx) else _RowTexts(cache_rows())
    trim_heap()  # the standardisers' and the frames' temporaries: blocking and comparing come next
    return _Population(keys=keys, staged_hash=shash, records=records, input_hash=want, row_text=row_text,
                       derived=uncached)


def _read_cached_rows(conn: Connection, keys: list[str], want: np.ndarray, text: list[str], derived: np.ndarray
                      ) -> None:
    """Fill ``text`` (per record of ``keys``) with the engine rows ``match_record`` caches where they were derived
    from the staged hash the record has now (``want``: per record its ``_input_hash``), and clear ``derived``
    there. Read in the table's order and placed by key (an index over ``keys``): no dict of every cached row
    (key, input hash and row as Python objects: ~0.3 KB a record beside the texts)."""
    mr = match_record.c
    at = pd.Index(keys)
    q = sa.select(mr.record_key, mr.input_hash, mr.engine_row).where(mr.input_hash.is_not(None))
    for part in conn.execution_options(yield_per=10_000).execute(q).partitions():
        pos = at.get_indexer([r[0] for r in part])
        for i, (_, input_hash, row) in zip(pos.tolist(), part, strict=True):
            if i >= 0 and row and want[i] and want[i] == input_hash.encode("ascii", "replace"):
                text[i] = row
                derived[i] = False


POPULATION_APART_MIN = 200_000  # staged customers from which the population is prepared in a child of its own


def _population_apart(store: Store, use_cache: bool, workers: int) -> _Population:
    """``_load_population`` in a forked child on its own connection, the population sent back here. Preparing
    leaves this process's heap fragmented around the records it keeps (the staged JSON, the engine's input
    frame, the standardisers' caches and the cached engine rows come and go between them: ~200 MB of free but
    resident holes at 460k records), and every later step (blocking, comparing, fitting, clustering, writing)
    ran on top of them, its forked workers copying the pages they touched. Received, the population is laid
    out compactly: 1.96M records (1M people), every step after preparing 1.7-2.8 GB lower (the fit's 6.9 ->
    4.1 GB); 460k records, pickling and unpickling ~2 s. Fewer than ``POPULATION_APART_MIN`` staged customers
    are prepared here: the holes are small (160k records: the stage process's peak RSS 725 -> 885 MB) and the
    child and its pickle cost more than they save (0.4-0.6 s of a 16 s stage). An in-memory SQLite store (a
    second connection would open another database) is prepared here."""
    def prepare(own: Store) -> _Population:
        with own.engine.connect() as conn:
            return _load_population(conn, use_cache=use_cache, workers=workers, store=own)

    with store.engine.connect() as conn:
        staged = conn.execute(sa.select(sa.func.count()).select_from(staged_record)
                              .where(staged_record.c.entity == "customers")).scalar_one()
    if staged < POPULATION_APART_MIN:
        return prepare(store)
    pop = store.run_apart(prepare, spill=True)  # through a file: the child is gone before it is read
    trim_heap()
    return pop


def _refresh_cache(conn: Connection, pop: _Population, written: set[str], stored: _Stored, at: np.ndarray) -> int:
    """Store the engine rows derived in this run for records whose match_record row was not rewritten anyway
    (content unchanged, but the cache was missing or of an older engine-row version). ``stored``: the
    match_record rows before this run; ``at``: per record of ``pop`` its index among them (-1: none)."""
    todo = [{"b_key": k, "input_hash": ih, "engine_row": pop.row_text[i]}
            for i in np.flatnonzero(pop.derived).tolist()
            if (k := pop.keys[i]) not in written and at[i] >= 0 and (ih := pop.input_hash_of(i)) is not None
            and stored.input_hash[at[i]] != ih.encode("ascii")]
    for chunk in _chunks(todo, 5000):
        conn.execute(match_record.update().where(match_record.c.record_key == sa.bindparam("b_key"))
                     .values(input_hash=sa.bindparam("input_hash"), engine_row=sa.bindparam("engine_row")),
                     list(chunk))
    return len(todo)


def _fit_model(records: Records, cand: Any, ds: DedupeSettings, levels: np.ndarray | None = None
               ) -> tuple[MatchModel, tuple[np.ndarray, ...]]:
    """Fit the engine on every candidate pair (``levels``: their comparison levels, when compared already); the
    model remembers its auto-match share (for drift checks).
    Also returns the pairs' (match_weight, match_probability, conflict, levels): a full run scores the same
    pairs with the stored model bound to the same records, which scores them exactly as the fitted one
    (``MatchModel.from_fit``; tests/test_golden_engine.py checks the stage against ``hub dedupe``), so it
    neither compares nor scores them again."""
    from hub.dedupe import compare_pairs, fit, score, worker_count

    if levels is None:
        levels = compare_pairs(records, cand.left, cand.right, worker_count(ds.workers))
    fitted = fit(records, cand, levels, ds)
    scores = score(fitted.fs, records, cand.left, cand.right, levels, fitted=fitted)
    model = fitted.model
    model.match_rate = float(scores.auto(ds).mean()) if len(cand) else 0.0
    return model, (scores.match_weight, scores.match_probability, scores.conflict, scores.levels)


def _store_model(conn: Connection, matcher: str, model: MatchModel, records: int) -> int:
    return conn.execute(match_model.insert().values(matcher=matcher, trained_at=_now(), records=records,
                                                    params=model.to_json())).inserted_primary_key[0]


def _partner_digest(n: int, left: np.ndarray, right: np.ndarray, keys: list[str]) -> np.ndarray:
    """Per record, an order-free digest of its candidate partners' keys (sum of their 64-bit hashes)."""
    from hub.dedupe.model import value_hashes

    h = value_hashes(np.asarray(keys, dtype=object))
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add.at(out, left, h[right])
        np.add.at(out, right, h[left])
    return out


MATCH_HASH_WIDTH = 48  # hex digits of a match hash: 32 of content, 16 of partners


def _match_hashes(pop: _Population, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """What ``match_record.record_hash`` holds: 32 hex digits of the record's content (staged hash + matching
    keys), then 16 of its candidate partners. Content decides whether its pairs score differently; partners
    whether it gained or lost candidate pairs (a sorted-neighbourhood window or a capped block moved).
    As one array of ASCII texts (``_hash_changes`` compares them): the worker that makes them beside the fit holds
    and sends one buffer, not a list of a Python string per record and its pickle (~0.25 GB at 1.5M)."""
    fp = pop.records.fingerprint()
    partners = _partner_digest(len(pop.keys), left, right, pop.keys)
    out = bytearray(MATCH_HASH_WIDTH * len(pop.keys))
    for a in range(0, len(pop.keys), PACK_CHUNK):
        b = min(a + PACK_CHUNK, len(pop.keys))
        out[a * MATCH_HASH_WIDTH:b * MATCH_HASH_WIDTH] = "".join(
            hashlib.sha256(b"%s|%016x" % (h, x)).hexdigest()[:32] + f"{y:016x}"
            for h, x, y in zip(pop.staged_hash[a:b].tolist(), fp[a:b].tolist(), partners[a:b].tolist(), strict=True)
        ).encode("ascii")
    return np.frombuffer(out, dtype=f"S{MATCH_HASH_WIDTH}")


def _hash_changes(stored: np.ndarray, at: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per record (bool each): its content changed (the first 32 digits of its match hash differ from its stored
    row's, or it has none), its candidate partners changed (the last 16). ``stored``: the stored rows' hashes,
    ``at``: each record's stored row (-1 none), ``hashes``: this run's (``_match_hashes``)."""
    w = MATCH_HASH_WIDTH
    before = np.zeros(len(hashes), dtype=f"S{w}")  # b"": no row, never equal to a hash
    before[at >= 0] = stored[at[at >= 0]]
    # as bytes per record (a short "S" value is padded with NULs here, which no hex digit equals)
    old_b = before.view(np.uint8).reshape(len(before), w)
    new_b = np.ascontiguousarray(hashes, dtype=f"S{w}").view(np.uint8).reshape(len(hashes), w)
    return (old_b[:, :32] != new_b[:, :32]).any(axis=1), (old_b[:, 32:] != new_b[:, 32:]).any(axis=1)


def _beside(main: Callable[[], Any], side: Callable[[], Any], workers: int) -> tuple[Any, Any]:
    """(``main()``, ``side()``): ``side`` in a forked worker while this process runs ``main`` (in turn here when
    ``workers`` < 2)."""
    from hub.dedupe.parallel import fork_map

    got = fork_map(lambda f: f(), [main, side], workers, lead=lambda f: f())
    return got[0], got[1]


def _score(fs: Any, records: Records, left: np.ndarray, right: np.ndarray,
           levels: np.ndarray | None = None, workers: int = 1) -> tuple[np.ndarray, ...]:
    """(match_weight, match_probability, conflict, levels) of the pairs, in bounded chunks (``levels``: the
    pairs' comparison levels when they were compared already)."""
    from hub.dedupe import compare_pairs, score

    parts = []
    for a in range(0, len(left), SCORE_CHUNK):
        lft, rgt = left[a:a + SCORE_CHUNK], right[a:a + SCORE_CHUNK]
        lv = compare_pairs(records, lft, rgt, workers) if levels is None else levels[a:a + SCORE_CHUNK]
        s = score(fs, records, lft, rgt, lv)
        parts.append((s.match_weight, s.match_probability, s.conflict, s.levels))
    if not parts:
        from hub.dedupe import FIELDS

        return (np.empty(0, np.float32), np.empty(0, np.float32), np.empty(0, bool),
                np.empty((0, len(FIELDS)), np.int8))
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))


def _rescore(fs: Any, records: Records, left: np.ndarray, right: np.ndarray, want: np.ndarray,
             have: np.ndarray, scored: tuple[np.ndarray, ...], workers: int = 1) -> tuple[np.ndarray, ...]:
    """Scores of the candidate pairs ``want`` (sorted indices into left/right), taken from ``scored`` (the
    scores of the sorted indices ``have``) where they were scored already, compared and scored otherwise."""
    at = np.searchsorted(have, want)
    known = at < len(have)
    known[known] = have[at[known]] == want[known]
    rest = want[~known]
    fresh = _score(fs, records, left[rest], right[rest], workers=workers)
    out = []
    for k, col in enumerate(scored):
        got = np.empty((len(want), *col.shape[1:]), dtype=col.dtype)
        got[known] = col[at[known]]
        got[~known] = fresh[k]
        out.append(got)
    return tuple(out)


def _match_edges_inside(conn: Connection, pos: dict[str, int], inside: set[str]
                        ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """(left, right, scores) of the stored match-band pairs with both ends in ``inside``, sorted by index as
    candidate pairs are: what ``cluster_records`` reads of them (weights and probabilities as scored; a match
    pair is never a conflict). Levels are not stored and not needed there (zeros)."""
    from hub.dedupe import FIELDS

    got: list[tuple[int, int, float, float]] = []
    # the band is tested here, not in SQL: with it in the WHERE clause SQLite looked the pairs up through
    # (band, scored_at) and read every match pair for each list of 1,000 keys (300k people, 9,408 records
    # re-clustered: 10 reads of 347k pairs, 3 s; quadratic), instead of the primary key's (left_key, ...)
    q = sa.select(match_pair.c.left_key, match_pair.c.right_key, match_pair.c.match_weight,
                  match_pair.c.match_probability, match_pair.c.band)
    for chunk in _chunks(sorted(inside)):
        for a, b, w, pr, band in conn.execute(q.where(match_pair.c.left_key.in_(chunk))):
            if band == "match" and b in inside:
                got.append((pos[a], pos[b], w, pr))
    got.sort()
    m = len(got)
    lft = np.fromiter((g[0] for g in got), dtype=np.int32, count=m)
    rgt = np.fromiter((g[1] for g in got), dtype=np.int32, count=m)
    mw = np.fromiter((g[2] for g in got), dtype=np.float64, count=m).astype(np.float32)
    prob = np.fromiter((g[3] for g in got), dtype=np.float64, count=m).astype(np.float32)
    return lft, rgt, (mw, prob, np.zeros(m, dtype=bool), np.zeros((m, len(FIELDS)), dtype=np.int8))


# -- the last run's candidate pairs ----------------------------------------------------------------------------------

CAND_PART_BYTES = 8 << 20  # bytes of the packed candidate set per match_candidates row (MariaDB sends at most 16 MB a packet by default)


@dataclass
class _CandidateSet:
    """Candidate pairs of a run as sorted index arrays into that run's sorted record keys, and their bands
    (``Scores.band_codes``: 2 auto-match, 1 review, 0 non-match)."""

    left: np.ndarray  # int32
    right: np.ndarray  # int32
    band: np.ndarray  # int8


def _keys_digest(keys: Sequence[str]) -> str:
    """Digest of a sorted key list: the stored indices are valid only against the keys they were taken from."""
    h = hashlib.sha256(f"{len(keys)}".encode())
    for a in range(0, len(keys), 100_000):
        h.update(b"\x01" + "\x00".join(keys[a:a + 100_000]).encode())
    return h.hexdigest()


def _sorted_pairs(left: np.ndarray, right: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes left * n + right, the order that sorts them); the order is None when they are sorted already (the
    engine's candidates are)."""
    code = left.astype(np.int64) * max(n, 1) + right
    if len(code) < 2 or bool((code[1:] > code[:-1]).all()):
        return code, None
    order = np.argsort(code, kind="stable")
    return code[order], order


def _store_candidates(conn: Connection, run_id: int, keys: Sequence[str], left: np.ndarray, right: np.ndarray,
                      band: np.ndarray) -> None:
    """Replace the stored candidate set with this run's (``keys``: the sorted record keys, as match_record holds
    them after the run): per record its number of pairs as left end, then the right ends and the bands."""
    n = len(keys)
    _, order = _sorted_pairs(left, right, n)
    if order is not None:
        left, right, band = left[order], right[order], band[order]
    counts = np.bincount(left, minlength=n).astype(np.int32) if len(left) else np.zeros(n, np.int32)
    # compressed piece by piece from the arrays' own buffers: one concatenated copy of them was ~600 MB at the
    # end of a 1M run (the stream decompresses to the same bytes)
    comp = zlib.compressobj(1)
    data = b"".join([comp.compress(np.ascontiguousarray(a, dtype=t)) for a, t in
                     ((counts, np.int32), (right, np.int32), (band, np.int8))] + [comp.flush()])
    digest = _keys_digest(keys)
    conn.execute(match_candidates.delete())
    for part, a in enumerate(range(0, max(len(data), 1), CAND_PART_BYTES)):
        conn.execute(match_candidates.insert().values(part=part, run_id=run_id, keys_digest=digest, records=n,
                                                      pairs=len(left), data=data[a:a + CAND_PART_BYTES]))


def _load_candidates(conn: Connection, keys: Sequence[str]) -> _CandidateSet | None:
    """The stored candidate set when its indices point into ``keys`` (the sorted match_record keys now); None:
    none stored (a run before migration 0013), or match_record changed outside a match run since."""
    rows = conn.execute(sa.select(match_candidates.c.keys_digest, match_candidates.c.records,
                                  match_candidates.c.pairs, match_candidates.c.data)
                        .order_by(match_candidates.c.part)).all()
    if not rows or rows[0][1] != len(keys) or len({r[0] for r in rows}) != 1 or rows[0][0] != _keys_digest(keys):
        return None
    n, m = rows[0][1], rows[0][2]
    parts = [r[3] for r in rows]
    del rows
    raw = zlib.decompress(b"".join(parts))
    del parts
    if len(raw) != 4 * n + 5 * m:
        return None
    left = np.repeat(np.arange(n, dtype=np.int32), np.frombuffer(raw, np.int32, n, 0))
    right = np.frombuffer(raw, np.int32, m, 4 * n)  # read-only views of ``raw``: no second copy
    band = np.frombuffer(raw, np.int8, m, 4 * (n + m))
    return _CandidateSet(left=left, right=right, band=band)


def forget_records(conn: Connection, erased: Iterable[str]) -> int:
    """Take erased records out of the match state that outlives their rows: call in the erasure's transaction,
    before their ``match_record`` rows go. The stored candidate set drops the pairs with an erased end and its
    indices move onto the keys that remain, so the next match run is still incremental (the set no longer
    fitting the keys made it a full one: at a million customers every erasure cost a full match). A record
    that was a candidate partner of an erased one is marked changed (its digest blanked): the next run scores
    its pairs and re-clusters it as a full run would. Returns the partners marked."""
    gone = set(erased)
    keys = sorted(k for (k,) in conn.execute(sa.select(match_record.c.record_key)))
    if not gone.intersection(keys):
        return 0
    stored = _load_candidates(conn, keys)
    if stored is None:  # nothing usable stored: the next run is a full one anyway
        return 0
    run_id = conn.execute(sa.select(match_candidates.c.run_id).limit(1)).scalar_one()
    drop = np.array([k in gone for k in keys], dtype=bool)
    touched = drop[stored.left] | drop[stored.right]
    partners = np.union1d(stored.left[touched], stored.right[touched])
    partners = partners[~drop[partners]]
    shift = np.cumsum(~drop, dtype=np.int64) - 1  # old index -> index among the remaining keys
    keep = ~touched
    left, right = shift[stored.left[keep]].astype(np.int32), shift[stored.right[keep]].astype(np.int32)
    _store_candidates(conn, run_id, [k for k, d in zip(keys, drop.tolist(), strict=True) if not d],
                      left, right, stored.band[keep])
    marked = [keys[i] for i in partners.tolist()]
    for chunk in _chunks(marked):
        conn.execute(match_record.update().where(match_record.c.record_key.in_(chunk)).values(record_hash=""))
    return len(marked)


CANDIDATE_RECORDS = 1 << 17  # records whose candidate pairs are compared with the last run's at a time


def _compare_candidates(prior: _CandidateSet, remap: np.ndarray, content: np.ndarray, left: np.ndarray,
                        right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This run's candidate pairs (``left``/``right``, indices into the records now) against the last run's
    (``prior``, indices into the records then; ``remap``: per record then its index now, -1 gone; ``content``:
    per record now, whether its content changed). Returns

    * ``band_all`` (int8 per pair now): its band in the last run, 0 where it was no candidate then;
    * ``sel`` (sorted indices of pairs now): the pairs to score again: a changed end, or no candidate then;
    * ``redo`` (bool per pair then): scored again or gone: a changed or deleted end, or no longer a candidate;
    * ``gone`` (indices of pairs then): no longer candidates though both ends are unchanged.

    Compared a range of records at a time (both sets are sorted by left end, then right; the map from the
    records then to those now keeps their order): the codes of both sets at once were five arrays of 8 bytes
    a pair beside the sets (32M pairs at a million people: ~1.3 GB of the stage's high-water mark)."""
    n = len(content)
    if len(left) > 1 and bool((left[1:] < left[:-1]).any()):  # not the engine's order: compare them sorted
        order = np.lexsort((right, left))
        band_sorted, sel_sorted, redo, gone = _compare_candidates(prior, remap, content, left[order], right[order])
        band_all = np.empty_like(band_sorted)
        band_all[order] = band_sorted
        return band_all, np.sort(order[sel_sorted]), redo, gone
    band_all = np.zeros(len(left), dtype=np.int8)
    redo = np.ones(len(prior.right), dtype=bool)  # pairs with an end gone stay True
    sel_parts: list[np.ndarray] = []
    gone_parts: list[np.ndarray] = []
    # per record then, the index now of the last one kept up to it (non-decreasing): records then whose index
    # now is in a range are one run of them
    mono = np.maximum.accumulate(remap) if len(remap) else remap
    for a in range(0, n, CANDIDATE_RECORDS):
        b = min(a + CANDIDATE_RECORDS, n)
        ps, pe = np.searchsorted(left, [a, b])
        ja, jb = np.searchsorted(mono, [a, b])
        os_, oe = np.searchsorted(prior.left, [ja, jb])
        ol, orr = remap[prior.left[os_:oe]], remap[prior.right[os_:oe]]
        alive = (ol >= 0) & (orr >= 0)  # both ends still staged
        r = ~alive
        r[alive] = content[ol[alive]] | content[orr[alive]]
        kept = os_ + np.flatnonzero(alive)  # the pairs then behind ``old_code``
        old_code = ol[alive].astype(np.int64) * n + orr[alive]
        del ol, orr, alive
        if len(old_code) > 1 and bool((old_code[1:] <= old_code[:-1]).any()):  # kept in order: never, but cheap
            o = np.argsort(old_code, kind="stable")
            old_code, kept = old_code[o], kept[o]
        cl, cr = left[ps:pe], right[ps:pe]
        cur_code = cl.astype(np.int64) * n + cr
        # one lookup each way: every code is in each set once, so the pairs then that a pair now found are
        # the ones still candidates
        was = np.zeros(len(cur_code), dtype=bool)
        still = np.zeros(len(old_code), dtype=bool)
        if len(old_code):
            hit = np.minimum(np.searchsorted(old_code, cur_code), len(old_code) - 1)
            was = old_code[hit] == cur_code
            hit = hit[was]
            still[hit] = True
            band_all[ps:pe][was] = prior.band[kept[hit]]
            del hit
        sel_parts.append(ps + np.flatnonzero(content[cl] | content[cr] | ~was))
        g = kept[~still]
        g = g[~r[g - os_]]  # left the set between two unchanged records (the rest go with their end)
        r[g - os_] = True
        redo[os_:oe] = r
        gone_parts.append(g)
    sel = np.concatenate(sel_parts) if sel_parts else np.empty(0, dtype=np.int64)
    gone = np.concatenate(gone_parts) if gone_parts else np.empty(0, dtype=np.int64)
    return band_all, sel, redo, gone


def _closure(n: int, edge_l: np.ndarray, edge_r: np.ndarray, group: np.ndarray, seeds: np.ndarray,
             seed_groups: np.ndarray) -> np.ndarray:
    """Records reachable from the seeds (bool per record) over edges between records and the membership of
    records in groups (``group``: per record its group, -1 none; a group links all its members). Breadth-first
    over an adjacency in arrays: the work is the reached part's edges, not the population's."""
    has = np.flatnonzero(group >= 0)
    n_nodes = n + (int(group.max()) + 1 if len(has) else 0)
    src = np.concatenate([edge_l, edge_r, has, n + group[has]]).astype(np.int64)
    dst = np.concatenate([edge_r, edge_l, n + group[has], has]).astype(np.int64)
    order = np.argsort(src, kind="stable")
    dst = dst[order]
    indptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n_nodes), out=indptr[1:])
    seen = np.zeros(n_nodes, bool)
    seen[:n] = seeds
    seed_groups = seed_groups[(seed_groups >= 0) & (seed_groups < n_nodes - n)]
    seen[n + seed_groups] = True
    frontier = np.flatnonzero(seen)
    while len(frontier):
        starts, cnt = indptr[frontier], indptr[frontier + 1] - indptr[frontier]
        total = int(cnt.sum())
        if not total:
            break
        idx = np.repeat(starts - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
        nxt = distinct(dst[idx])
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = nxt
    return seen[:n]


ROW_CHUNK = 5000  # match_pair rows built (with their explanation) and inserted at a time


def _pair_row_chunks(fs: Any, pop: _Population, left: np.ndarray, right: np.ndarray,
                     scored: tuple[np.ndarray, ...], band: np.ndarray, now: Any) -> Iterator[list[tuple]]:
    """match_pair rows of the match / review pairs in chunks of ROW_CHUNK, built as they are inserted (a row
    with its explanation is ~2 KB of Python objects: all of them at once cost gigabytes at 1M records), with
    the explanation: the prior and every field's level and weight — ``prior.weight`` + the fields' weights ==
    ``match_weight``."""
    keep = np.flatnonzero(band > 0)
    for a in range(0, len(keep), ROW_CHUNK):
        yield _pair_rows(fs, pop, left, right, scored, band, now, keep[a:a + ROW_CHUNK])


def _explanation_heads() -> tuple[str, list[list[str]]]:
    """The explanation's JSON text up to the prior's weight, and per field and level code (-1 = missing, at 0)
    the text up to that field's weight: as the store writes the explanation's dict (``json_text``)."""
    from hub.dedupe import FIELDS

    prior = "{" + json_text("prior") + ':{"level":' + json_text("source pair") + ',"weight":'
    return prior, [["," + json_text(f.name) + ':{"level":' + json_text(label) + ',"weight":'
                    for label in ("missing",) + f.labels] for f in FIELDS]


def _pair_rows(fs: Any, pop: _Population, left: np.ndarray, right: np.ndarray, scored: tuple[np.ndarray, ...],
               band: np.ndarray, now: Any, keep: np.ndarray) -> list[tuple]:
    """match_pair rows of the pairs ``keep`` (indices into left/right, match or review band; ``band``: the
    pairs' ``Scores.band_codes``), tuples in the order of ``PAIR_COLUMNS`` (``now``: from ``hub.store.bound_time``): the
    explanation as the JSON text the store would write for its dict, put together from text pieces (a dict per
    field and pair, encoded by the store, cost three times as much); a pair with a weight that is no finite
    number goes through the dict and ``json_text``."""
    from hub.dedupe import FIELDS, explain

    mw, prob, conflict, levels = scored
    if not len(keep):
        return []
    lk, rk = left[keep], right[keep]
    prior, contrib = explain(fs, pop.records, lk, rk, levels[keep])
    head, heads = _explanation_heads()
    finite = (np.isfinite(prior) & np.isfinite(contrib).all(axis=1)).tolist()
    # Python lists up front (the same floats as float() of each element): element access on arrays, row by row,
    # was most of this function's time
    keys = pop.keys
    out = []
    for lft, rgt, w, pr, bd, pw, lv, cw, ok in zip(lk.tolist(), rk.tolist(), mw[keep].tolist(), prob[keep].tolist(),
                                                  (band[keep] == 2).tolist(), prior.tolist(), levels[keep].tolist(),
                                                  contrib.tolist(), finite, strict=True):
        if ok:  # repr is how JSON writes a finite float
            text = head + repr(round(pw, 3)) + "}" + "".join(
                [h[c + 1] + repr(round(x, 3)) + "}" for h, c, x in zip(heads, lv, cw, strict=True)]) + "}"
        else:
            expl: dict[str, Any] = {"prior": {"level": "source pair", "weight": round(pw, 3)}}
            for k, f in enumerate(FIELDS):
                expl[f.name] = {"level": (("missing",) + f.labels)[lv[k] + 1], "weight": round(cw[k], 3)}
            text = json_text(expl)
        out.append((keys[lft], keys[rgt], w, pr, "match" if bd else "review", text, now))
    return out


PAIR_COLUMNS = ("left_key", "right_key", "match_weight", "match_probability", "band", "explanation", "scored_at")
RECORD_COLUMNS = ("record_key", "record_hash", "cluster_key", "changed_run", "matched_at", "input_hash", "engine_row")


def _inputs_state(conn: Connection, settings: MatchSettings, constraints: Any) -> list:
    """What a match run reads besides the records' content and the model, read at its start: the staged
    customers' count and newest ``staged_at`` (staging stamps every record it writes; a deleted one lowers the
    count), the steward decisions, the settings and the matching code."""
    count, newest = conn.execute(sa.select(sa.func.count(), sa.func.max(staged_record.c.staged_at))
                                 .where(staged_record.c.entity == "customers")).one()
    return [count, str(newest), constraints.must_link, constraints.cannot_link,
            sorted((f"{a}\x00{b}", str(t)) for (a, b), t in constraints.decided_at.items()),
            settings.model_dump(mode="json"), _engine_signature(), _matching_code()]


@functools.cache
def _matching_files() -> str:
    """Digest of the engine's and this module's source: new matching code matches again."""
    h = hashlib.sha256()
    for f in sorted(Path(importlib.util.find_spec("hub.dedupe").origin).parent.glob("*.py")) + [Path(__file__)]:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _matching_code() -> str:
    """``_matching_files`` and the engine verbs this run calls (one replaced at run time is other code)."""
    import hub.dedupe as engine

    verbs = [getattr(engine, v) for v in ("prepare_records", "block", "compare_pairs", "fit", "score",
                                         "cluster_records", "explain")]
    return _matching_files() + "|" + "|".join(f"{f.__module__}.{f.__qualname__}" for f in verbs)


def _stored_digest(conn: Connection) -> str:
    """Digest of the match state's shape: match_record and match_pair row counts and the stored candidate set's
    run and key digest. Different from what the last run left: the state was changed outside a match run (a
    record's match state or the candidate set deleted), and the run is not skipped."""
    records = conn.execute(sa.select(sa.func.count()).select_from(match_record)).scalar_one()
    pairs = conn.execute(sa.select(sa.func.count()).select_from(match_pair)).scalar_one()
    cand = conn.execute(sa.select(match_candidates.c.part, match_candidates.c.run_id, match_candidates.c.keys_digest,
                                  match_candidates.c.records, match_candidates.c.pairs)
                        .order_by(match_candidates.c.part)).all()
    text = json.dumps([records, pairs, [list(r) for r in cand]], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _inputs_digest(state: list, model_id: int | None) -> str:
    """Digest of ``_inputs_state`` and the model in use: equal to the last run's, matching would store what is
    stored."""
    text = json.dumps([*state, model_id], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _index_pairs(pos: dict[str, int], pairs: Iterable[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    got = [(pos[a], pos[b]) for a, b in pairs if a in pos and b in pos]
    return (np.array([a for a, _ in got], dtype=np.int64), np.array([b for _, b in got], dtype=np.int64))


# the cyclic collector is paused over a run (``gc_paused``): preparing, blocking and writing a population allocate
# millions of acyclic tuples, lists and dicts beside the run's large live heap, and each burst made the collector
# walk that heap again (100k records: ~1 of 15 CPU s of this process)
@gc_paused()
def match_and_cluster(
    store: Store,
    matching_cfg: MatchSettings | dict | None = None,
    mode: Literal["incremental", "full"] = "incremental",
    retrain: bool = False,
) -> MatchStats:
    """Match staged customer records into clusters (match_pair rows + match_record cluster labels).

    ``incremental`` re-scores only pairs of dirty records and re-clusters only what they (and new steward
    decisions) affect; it runs as ``full`` when there is no previous run or model, the matcher changed or the
    model was retrained. The ``dedupe`` model is fitted on the first run (or with ``retrain``) and then frozen,
    so a full rebuild and an incremental run score every pair identically.
    """
    from hub.dedupe import MatchModel, block, cluster_records, compare_pairs, worker_count

    t0, c0 = time.perf_counter(), _cpu_s()
    settings = load_match_settings(matching_cfg)
    ds = settings.engine_settings()
    workers = worker_count(ds.workers)
    matcher = settings.matcher
    stats = MatchStats(mode=mode, matcher=matcher)
    started = _now()

    with store.engine.connect() as conn:
        prev = last_run(conn, "match")
        latest = None if retrain or matcher == "fixed" else latest_model(conn, matcher)
        constraints = load_constraints(conn)
        inputs = _inputs_state(conn, settings, constraints)
        stats.inputs = _inputs_digest(inputs, 0 if matcher == "fixed" else latest[0] if latest else None)
        if mode == "incremental" and (latest is not None or matcher == "fixed") and prev is not None \
                and prev.matcher == matcher and (prev.stats or {}).get("inputs") == stats.inputs \
                and (prev.stats or {}).get("stored") == _stored_digest(conn):
            return _unchanged_run(store, stats, prev, started, t0)
        old = _match_state(conn)  # the cached engine rows are read by the population's child
    pop = _population_apart(store, use_cache=mode != "full", workers=workers)
    old_keys = old.keys  # what the stored candidate indices point into
    records, keys, n = pop.records, pop.keys, len(pop.keys)
    at = old.positions(keys)  # per record its stored row (-1: none)
    stats.records_total = n
    _mark(stats, "prepare", t0, c0)

    cand = block(records, ds, workers=workers) if n >= 2 else None
    left = cand.left if cand is not None else np.empty(0, np.int32)
    right = cand.right if cand is not None else np.empty(0, np.int32)
    _mark(stats, "block", t0, c0)

    trained = False
    hashes: np.ndarray | None = None  # the match hashes (``_match_hashes``: ASCII bytes)
    fit_scored = None  # scores and levels of every candidate pair when this run fitted the model on them
    if matcher == "fixed":
        model, model_id = MatchModel.from_weights(FIXED_WEIGHTS, FIXED_PRIOR), 0
    elif latest is None:
        if cand is not None and len(left):
            # comparing takes both cores; fitting one: the match hashes (they need only the records and the
            # candidate pairs) are computed on the other core meanwhile, not beside the comparison (three
            # processes on two cores)
            levels = compare_pairs(records, left, right, workers)
            (model, fit_scored), raw_hashes = _beside(lambda: _fit_model(records, cand, ds, levels),
                                                      lambda: _match_hashes(pop, left, right), workers)
            hashes = raw_hashes
            del levels
        else:
            from hub.dedupe import empty_model

            model = MatchModel(fs=empty_model())
        with store.begin() as conn:
            model_id = _store_model(conn, matcher, model, n)
        stats.inputs = _inputs_digest(inputs, model_id)  # the model this run's result was scored with
        trained = True
        _mark(stats, "train", t0, c0)
    else:
        model_id, _, model = latest
    fs = model.bind(records.p, records.vocab)
    stats.model = {"model_id": model_id, "estimation": fs.estimation,
                   "prior_log2_odds": round(float(fs.prior_log2_odds), 3)}

    prior = None  # read only now: not held while the engine blocks (memory)
    if mode == "incremental" and prev is not None:
        with store.engine.connect() as conn:
            prior = _load_candidates(conn, old_keys)
    if mode == "incremental":
        if prev is None:
            stats.fallback_reason = "no previous match run"
        elif prev.matcher != matcher:
            stats.fallback_reason = f"matcher changed ({prev.matcher} -> {matcher})"
        elif trained or (prev.stats or {}).get("model", {}).get("model_id") != model_id:
            stats.fallback_reason = "the model was (re)trained"
        elif prior is None:
            stats.fallback_reason = "the last run's candidate pairs are not stored (or match_record changed since)"
    full = mode == "full" or stats.fallback_reason is not None
    stats.mode = "full" if full else "incremental"

    if hashes is None:
        hashes = _match_hashes(pop, left, right)
    staged_again = np.zeros(len(old_keys), dtype=bool)
    staged_again[at[at >= 0]] = True
    gone_rows = np.flatnonzero(~staged_again)  # the stored rows of records no longer staged
    deleted = {old_keys[j] for j in gone_rows.tolist()}
    del staged_again
    content, moved = _hash_changes(old.record_hash, at, hashes)
    dirty = np.ones(n, dtype=bool) if full else content | moved
    del moved
    stats.records_new_or_changed = int(content.sum())
    stats.records_dirty = int(dirty.sum())
    stats.records_deleted = len(deleted)
    decision_ends = set() if prev is None else {
        k for p, at in constraints.decided_at.items() if at >= prev.started_at for k in p}

    if not full and not dirty.any() and not deleted and not decision_ends:
        with store.begin() as conn:
            stats.run_id = _start_run(conn, "match", "incremental", matcher, started)
            _refresh_cache(conn, pop, set(), old, at)
            stats.stored = _stored_digest(conn)
            _finish_run(conn, stats.run_id, stats.as_dict())
        stats.seconds = round(time.perf_counter() - t0, 3)
        return stats

    # 1. score the candidate pairs that can score differently from the last run (all in a full run): those
    #    with a changed end, and those that were not candidates in the last run (the stored candidate set says
    #    which). Every other pair was scored in the last run with the same two fingerprints: its band holds.
    #    ``band_all``: every candidate pair's band after this run (stored as the next run's candidate set).
    sel: np.ndarray | None = None  # the pairs scored again (None: every candidate pair, a full run)
    if not full:
        assert prior is not None
        remap = np.full(len(old_keys), -1, dtype=np.int32)  # a stored row's record now (-1: not staged)
        remap[at[at >= 0]] = np.flatnonzero(at >= 0)
        band_all, sel, redo, gone = _compare_candidates(prior, remap, content, left, right)
        del remap
    # a full run scores every pair: the candidate arrays themselves, not a copy (32M pairs at 1M: 256 MB)
    sl, sr = (left, right) if full else (left[sel], right[sel])
    # a run that fitted the model is a full one (every candidate pair), scored by the fit already
    scored = fit_scored if full and fit_scored is not None else _score(
        fs, records, sl, sr, workers=workers if len(sl) >= SCORE_FORK_MIN else 1)
    del fit_scored
    from hub.dedupe import Scores

    band = Scores(*scored).band_codes(ds)  # 2 auto-match, 1 review, 0 non-match
    if full:
        band_all = band.astype(np.int8, copy=False)  # band is not written to: one array for both
    else:
        band_all[sel] = band
    now = _now()
    auto = np.flatnonzero(band == 2)
    stats.pairs_scored = len(left) if sel is None else len(sel)
    stats.pairs_match = len(auto)
    stats.pairs_review = int((band == 1).sum())
    _mark(stats, "score", t0, c0)

    # record key -> index: made only now (a dict of every key is ~80 bytes a record, held through the fit)
    pos = {k: i for i, k in enumerate(keys)}
    with store.begin() as conn:  # one transaction: a failure leaves the previous state intact
        run_id = _start_run(conn, "match", stats.mode, matcher, started)
        # 2. replace the stored pairs of dirty and deleted records. Affected: records whose content changed and
        #    the ends of every match edge that appeared or went (a record that only gained or lost candidate
        #    partners changes nothing unless its match edges did)
        if full:
            conn.execute(match_pair.delete())
            seeds: set[str] = set(keys)
        else:
            # the stored pairs scored again above or gone: those with a changed or deleted end, and those
            # between two unchanged records that left the candidate set (the last run's set has their bands)
            touched = sorted({keys[i] for i in np.flatnonzero(content).tolist()} | deleted)
            oe = np.flatnonzero(redo & (prior.band == 2))
            old_edges = {(old_keys[a], old_keys[b])
                         for a, b in zip(prior.left[oe].tolist(), prior.right[oe].tolist(), strict=True)}
            og = gone[prior.band[gone] > 0]
            between = list(zip([old_keys[a] for a in prior.left[og].tolist()],
                               [old_keys[b] for b in prior.right[og].tolist()], strict=True))
            del prior, redo, gone, og, oe
            for chunk in _chunks(touched):
                conn.execute(match_pair.delete().where(match_pair.c.left_key.in_(chunk)))
                conn.execute(match_pair.delete().where(match_pair.c.right_key.in_(chunk)))
            for chunk in _chunks(between, 5000):
                conn.execute(match_pair.delete().where(match_pair.c.left_key == sa.bindparam("a"),
                                                       match_pair.c.right_key == sa.bindparam("b")),
                             [{"a": a, "b": b} for a, b in chunk])
            new_edges = {(keys[a], keys[b]) for a, b in zip(sl[auto].tolist(), sr[auto].tolist(), strict=True)}
            seeds = {keys[i] for i in np.flatnonzero(content).tolist()} | decision_ends
            seeds.update(k for e in old_edges ^ new_edges for k in e)
        bound_now = bound_time(conn, now)

        def write_pairs(pl: np.ndarray, pr: np.ndarray, ps: tuple[np.ndarray, ...], pb: np.ndarray) -> None:
            for chunk in _pair_row_chunks(fs, pop, pl, pr, ps, pb, bound_now):
                insert_rows(conn, match_pair, PAIR_COLUMNS, chunk)

        must = _index_pairs(pos, constraints.must_link)
        cannot = _index_pairs(pos, constraints.cannot_link)
        labels: np.ndarray | None = None
        if full:
            # only the match and review pairs are written, and clustering reads the auto-match pairs only
            # (``cluster_records``): every other pair's scores and levels go first (36M candidate pairs: ~0.6 GB
            # of the high-water mark after the fit). A full run clusters every record on them, which needs
            # nothing stored: in a forked worker while this process writes the pairs (160k records: 0.5 s and
            # 0.7 s, one after the other before)
            keep = np.flatnonzero(band > 0)
            sl, sr, band = sl[keep], sr[keep], band[keep]
            scored = tuple(col[keep] for col in scored)
            auto = np.flatnonzero(band == 2)
            del keep
            _, labels = _beside(functools.partial(write_pairs, sl, sr, scored, band), functools.partial(
                cluster_records, records, fs, sl[auto], sr[auto], Scores(*(col[auto] for col in scored)), ds,
                must_link=must, cannot_link=cannot), workers)
        else:
            write_pairs(sl, sr, scored, band)

        # 3. the affected set K: closed under match edges, must-links and previous clusters
        limit = max(int(settings.full_rebuild_share * n), 1)
        if full:
            affected = set(keys)
        else:
            # in memory: the match edges after this run (every candidate pair's band is known), must-links
            # between staged records, and the previous clusters (from the match_record rows read at the start;
            # this run writes them only below); a deleted record's previous cluster is a seed
            group = (np.where(at >= 0, old.cluster[np.maximum(at, 0)], -1).astype(np.int64) if len(old.keys)
                     else np.full(n, -1, dtype=np.int64))
            # the seeds with a stored row that are no longer staged are the deleted records
            seed_groups = old.cluster[gone_rows].astype(np.int64)
            seed_mask = np.zeros(n, dtype=bool)
            seed_mask[[pos[k] for k in seeds if k in pos]] = True
            must_l, must_r = _index_pairs(pos, constraints.must_link)
            edge = np.flatnonzero(band_all == 2)
            reached = _closure(n, np.concatenate([left[edge], must_l]), np.concatenate([right[edge], must_r]),
                               group, seed_mask, seed_groups)
            affected = {keys[i] for i in np.flatnonzero(reached).tolist()}
            del group, reached
            if len(affected) > limit:  # re-clustering everything gives the same answer, and is cheaper now
                stats.fallback_reason = f"too large an affected set ({len(affected)} of {n} records)"
                stats.mode = "full"
                affected = set(keys)
        _mark(stats, "closure", t0, c0)

        # 4. re-cluster K with the engine: the candidate pairs inside K, exactly as a full run sees them (a
        #    full run clustered everyone above)
        kmask = np.zeros(n, dtype=bool)
        kmask[[pos[k] for k in affected]] = True
        if labels is None:
            if len(affected) == n:  # every pair was scored above
                kl, kr = left, right
                k_scored = _rescore(fs, records, left, right, np.arange(len(left)), sel, scored, workers)
            else:
                # clustering reads only the auto-match pairs: inside K they are the match pairs stored now (the
                # ones kept from the last run and the ones just written), in the order a full run gives them
                kl, kr, k_scored = _match_edges_inside(conn, pos, affected)
            labels = cluster_records(records, fs, kl, kr, Scores(*k_scored), ds, must_link=must, cannot_link=cannot)
            del kl, kr, k_scored
        clusters = {keys[i]: keys[int(labels[i])] for i in np.flatnonzero(kmask).tolist()}
        stats.refused_must_links = sum(1 for a, b in constraints.must_link
                                       if a in clusters and b in clusters and clusters[a] != clusters[b])
        _mark(stats, "cluster", t0, c0)
        # memory, at the write's high-water mark: the scores, levels and prepared records are of no further use
        # (the writes below need keys, hashes, clusters and the candidate arrays only)
        del labels, scored, sl, sr, band, auto
        records = fs = pop.records = None  # type: ignore[assignment]
        trim_heap()

        # 5. cluster labels; a record is dirty for build_golden when its content or cluster changed
        writes = []
        for k in sorted(affected):
            i = pos[k]
            j = int(at[i])
            if j >= 0 and old.record_hash[j] == hashes[i] and old.cluster_key(j) == clusters[k]:
                continue
            writes.append((k, hashes[i].decode("ascii"), clusters[k], run_id, bound_now, pop.input_hash_of(i),
                           pop.row_text[i]))
        written = {w[0] for w in writes}
        # only records that have a row (a first run's table is empty: no deletes at all)
        for chunk in _chunks(sorted(deleted | {k for k in written if at[pos[k]] >= 0})):
            conn.execute(match_record.delete().where(match_record.c.record_key.in_(chunk)))
        for chunk in _chunks(writes, 5000):
            insert_rows(conn, match_record, RECORD_COLUMNS, chunk)
        # a record whose partners moved but whose cluster stayed keeps its row: its digest is brought up to
        # date all the same, or a partner that leaves and comes back in a later run would look unmoved then
        stale = [{"b_key": keys[i], "record_hash": hashes[i].decode("ascii")} for i in np.flatnonzero(dirty).tolist()
                 if keys[i] not in written and at[i] >= 0 and old.record_hash[at[i]] != hashes[i]]
        for chunk in _chunks(stale, 5000):
            conn.execute(match_record.update().where(match_record.c.record_key == sa.bindparam("b_key"))
                         .values(record_hash=sa.bindparam("record_hash")), list(chunk))
        _refresh_cache(conn, pop, written, old, at)
        _store_candidates(conn, run_id, keys, left, right, band_all)
        stats.run_id = run_id
        stats.records_rematched = len(affected)
        stats.records_reclustered = len(writes) + len(deleted)
        stats.clusters = len(set(clusters.values()))
        stats.stored = _stored_digest(conn)
        _finish_run(conn, run_id, stats.as_dict())
    _mark(stats, "write", t0, c0)
    stats.seconds = round(time.perf_counter() - t0, 3)
    log.info("match_and_cluster %s (%s): %d records re-matched in %.2fs", stats.mode, stats.matcher,
             stats.records_rematched, stats.seconds)
    return stats


def _unchanged_run(store: Store, stats: MatchStats, prev: Any, started: datetime, t0: float) -> MatchStats:
    """A run that found nothing changed since ``prev`` (same inputs, and the match state as ``prev`` left it):
    recorded as a run (the next one compares with it) that keeps ``prev``'s result — the stored pairs, clusters
    and candidate set stay as they are, which is what matching the same input again would store."""
    before = prev.stats or {}
    stats.mode = "incremental"
    stats.unchanged = True
    stats.model = dict(before.get("model") or {})
    stats.records_total = int(before.get("records_total") or 0)
    stats.clusters = int(before.get("clusters") or 0)
    stats.stored = str(before.get("stored") or "")
    with store.begin() as conn:
        stats.run_id = _start_run(conn, "match", "incremental", stats.matcher, started)
        stats.seconds = round(time.perf_counter() - t0, 3)
        _finish_run(conn, stats.run_id, stats.as_dict())
    log.info("match_and_cluster: nothing changed since run %d", prev.id)
    return stats


@dataclass
class ModelStats:
    """What the match_model asset did: kept the model, (re)fitted it, and how far a refit moved it."""

    # trained (no model yet) | retrained | kept | fixed (hand-set weights: nothing to fit) | deferred (no model yet,
    # and the match step of the same run fits it)
    action: str
    reason: str
    model_id: int = 0
    records: int = 0
    pairs: int = 0
    estimation: str = ""
    match_rate: float = 0.0
    age_days: float = 0.0  # of the model in use before this run
    drift: dict[str, float] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)  # the drift limits a refit exceeded
    seconds: float = 0.0
    # what the estimation checks found (hub.dedupe.estimation): "code: message", field names and counts only
    diagnostics: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        lines = [f"**match_model**: {self.action} — {self.reason}", "", "| metric | value |", "|---|---|"]
        for k in ("model_id", "records", "pairs", "estimation", "match_rate", "age_days"):
            lines.append(f"| {k} | {getattr(self, k)} |")
        lines += [f"| drift {k} | {v} |" for k, v in self.drift.items()]
        if self.diagnostics:
            lines.append("\nEstimation checks: " + "; ".join(self.diagnostics))
        if self.drifted:
            lines.append(f"\nDrift beyond the limits: {', '.join(self.drifted)}. Matching re-scores and "
                         "re-clusters everything on its next run; golden ids of unchanged clusters stay.")
        return "\n".join(lines)


def _diagnostic_lines(fs: Any) -> list[str]:
    """The estimation checks' findings of a model as "code: message" (field names and counts, no values)."""
    return [f"{d.get('code')}: {d.get('message')}" for d in fs.diagnostics]


@gc_paused()
def train_model(store: Store, matching_cfg: MatchSettings | dict | None = None, force: bool = False,
                matching_follows: bool = False) -> ModelStats:
    """The match_model stage: refit the engine on all staged customers when there is no model, the model is
    older than ``retrain_days`` or ``force`` (the weekly schedule), and compare the refit with the model it
    replaces (parameter and match-rate shift). The next match run sees a new model and re-scores and
    re-clusters everything; build_golden's id rules keep every unchanged cluster's golden id.

    ``matching_follows``: ``match_and_cluster`` runs next on the same records (the match_pairs step of the same
    run). With no model yet it fits the first one itself — the same fit of the same population
    (``_fit_model`` after ``_load_population`` and ``block``), stored the same way — so the first sync prepares
    and blocks every customer once instead of twice (at 1M people: match_model took 661 s before match_pairs
    prepared and blocked them all again). A refit of an existing model is not deferred (its drift is this
    stage's to report)."""
    from hub.dedupe import block, drift, worker_count

    t0 = time.perf_counter()
    settings = load_match_settings(matching_cfg)
    if settings.matcher == "fixed":
        return ModelStats(action="fixed", reason="hand-set weights (engine: fixed): nothing to fit")
    with store.engine.connect() as conn:
        latest = latest_model(conn, settings.matcher)
        now = _now()
        age = (now - latest[1]).total_seconds() / 86400 if latest else 0.0
        if latest is not None and not force and age < settings.retrain_days:
            return ModelStats(action="kept", reason=f"the model is {age:.1f} days old; refitted every "
                              f"{settings.retrain_days:g} days", model_id=latest[0], records=latest[2].records,
                              pairs=latest[2].pairs, estimation=latest[2].fs.estimation,
                              diagnostics=_diagnostic_lines(latest[2].fs),
                              match_rate=round(latest[2].match_rate, 4), age_days=round(age, 2))
        if latest is None and matching_follows and not force:
            return ModelStats(action="deferred", reason="no model yet: the match step of this run fits the first "
                              "one on the same records (one preparation of every customer instead of two)")
        pop = _load_population(conn, workers=worker_count(settings.workers), store=store)
    ds = settings.engine_settings()
    n = len(pop.keys)
    if n < 2:
        return ModelStats(action="kept", reason="fewer than two staged customers: nothing to fit on",
                          model_id=latest[0] if latest else 0)
    cand = block(pop.records, ds)
    model, _ = _fit_model(pop.records, cand, ds)
    moved = drift(latest[2], model) if latest else {}
    limits = settings.drift.model_dump()
    drifted = [k for k, v in moved.items() if v > limits.get(k, float("inf"))]
    with store.begin() as conn:
        model_id = _store_model(conn, settings.matcher, model, n)
    stats = ModelStats(action="retrained" if latest else "trained",
                       reason=("forced (schedule or operator)" if force else f"older than {settings.retrain_days:g}"
                               " days") if latest else "no model yet", model_id=model_id, records=n,
                       pairs=len(cand), estimation=model.fs.estimation, match_rate=round(model.match_rate, 4),
                       age_days=round(age, 2), drift=moved, drifted=drifted,
                       seconds=round(time.perf_counter() - t0, 3),
                       diagnostics=_diagnostic_lines(model.fs))
    if drifted:
        log.warning("match model drift beyond the limits: %s", ", ".join(drifted))
    return stats


def _start_run(conn: Connection, kind: str, mode: str, matcher: str, started: datetime) -> int:
    return conn.execute(
        match_run.insert().values(kind=kind, mode=mode, matcher=matcher, started_at=started)
    ).inserted_primary_key[0]


def _finish_run(conn: Connection, run_id: int, stats: dict, **values: Any) -> None:
    conn.execute(match_run.update().where(match_run.c.id == run_id).values(finished_at=_now(), stats=stats,
                                                                            **values))
