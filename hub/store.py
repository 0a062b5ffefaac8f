"""The hub store: every stage's durable state in one SQL database (SQLAlchemy 2 Core).

Embedded default: SQLite at ``.hub/hub.db``; ``HUB_DATABASE_URL`` selects PostgreSQL (or any SQLAlchemy URL).
The schema is versioned with Alembic (``hub/migrations``); opening a store upgrades it in place.

Tables, in flow order:
  landing            raw payloads per (source, entity, source_id) with payload hash — what connectors pulled
  sync_state         connector cursors, saved in the same transaction as the page they follow
  staged_record      canonical records (customers, orders, shipments, interactions) after standardisation
  quarantine         records that failed a required rule, with machine-readable reason codes and raw payload
  match_pair         scored candidate pairs with match weight and per-field explanation
  review_decision    steward decisions on pairs (always win over the model)
  golden_customer    golden records with field lineage and quality score
  golden_id_history  every golden-id lifecycle event (minted, merged, split, retired, record moved)
  golden_id_sequence monotonic counter, so golden ids are never reused
  xref               source record <-> golden id over time (valid_from / valid_to)
  customer_360       the 360 view per golden id
  push_outbox        what must be written back to each target system, one row per target record
  push_result        row-level result log of every push attempt
  push_state         last payload successfully pushed per target record (diff-only pushes)
  quality_run        one row per data-quality report: dimension scores and run figures (history charts)
  push_brake         merge/split brake evaluations before pushes; a tripped brake waits for a release
  customer_base_snapshot  RFM segment / value tier / lifecycle per golden id at the last report
  lookup_key         caller-lookup index: hashed phone / e-mail / name(+city) key -> golden id (hub/lookup)
  lookup_record      the customer_360 hash each golden id's lookup keys were derived from (incremental upkeep)
  file_import        one row per `hub import` run: rows read = staged + quarantined + skipped, problems found
  source_tombstone   source records found deleted / deactivated / unfollowed by an id-only sweep (hub.privacy)
  suppression        salted hashes of erased people's phones, e-mails, ids and source keys: never staged again
  erasure            one non-personal audit row per erasure request (time, reason, counts)
  sync_lock          who holds the store's one-sync-at-a-time lock (run id, job, host, pid, since when)
  source_health      each source's latest pull outcome (ok / failed + redacted error): failed sources skip push
"""

from __future__ import annotations

import gc
import hashlib
import io
import itertools
import json
import logging
import os
import re
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.mysql import DOUBLE, LONGBLOB, LONGTEXT
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles

DEFAULT_DB_PATH = Path(".hub") / "hub.db"

metadata = sa.MetaData()
# A double on every backend: MySQL's plain FLOAT is single precision (7 digits: money, probabilities). Whether
# Dagster's storage module (which compiles Float to FLOAT(32), a double) was imported must not decide the schema.
REAL = sa.Float().with_variant(DOUBLE(asdecimal=False), "mysql", "mariadb")
# text without a length limit on every backend: MariaDB's TEXT holds 64 KB (an engine row holding a pasted document
# as a name was refused there, "Data too long")
LONG_TEXT = sa.Text().with_variant(LONGTEXT(), "mysql", "mariadb")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_dt(value: Any) -> datetime | None:
    """ISO string / datetime -> naive UTC datetime (the hub stores naive UTC everywhere); None for nothing or
    what is not a time (a cursor's or a column's value as the driver or JSON gives it)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def _ts(name: str, **kw: Any) -> sa.Column:
    return sa.Column(name, sa.DateTime(), **kw)


landing = sa.Table(
    "landing",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    # hash of the payload the staging stage last processed: staging is incremental on this difference
    sa.Column("staged_hash", sa.String(64), nullable=True),
    # the hub's own fields as the source holds them (golden id, segment...), last seen by a pull or written
    # by a push; None when the connector does not report them (migration 0007). Not part of payload_hash.
    sa.Column("hub_state", sa.JSON, nullable=True),
    sa.Column("hub_state_hash", sa.String(64), nullable=True),
    _ts("first_landed_at", nullable=False),
    _ts("landed_at", nullable=False),
    # when a pull (or the first landing) last saw hub_state change; a push's own record of what it wrote leaves it
    # alone. An incremental push plan checks those records for drift (0033); null: landed before 0033
    _ts("held_at", nullable=True),
    sa.UniqueConstraint("source", "entity", "source_id", name="uq_landing_record"),
)
# with landed_at and first_landed_at (0020): the report's records and newest landing per source, and what landed
# since the last run, read this index instead of every landed row. staged_hash last (0029): staging sets it on
# every row, and an entry keyed by it moved to a random place of the index (1M landed rows: ~10 % of staging)
sa.Index("ix_landing_pending", landing.c.source, landing.c.entity, landing.c.landed_at, landing.c.first_landed_at,
         landing.c.staged_hash)
# staging pages through a source by id (hub/staging.py): without it SQLite sorts the whole source per page
sa.Index("ix_landing_source_id", landing.c.source, landing.c.id)


def landing_unstaged() -> sa.ColumnElement[bool]:
    """Landing rows staging has still to read: never staged, or their payload changed since (the condition of
    ``ix_landing_unstaged``: a query must state it in these words for SQLite to use that index)."""
    return sa.or_(landing.c.staged_hash.is_(None), landing.c.staged_hash != landing.c.payload_hash)


# the rows an incremental stage reads, by source in id order (0028): a partial index of the unstaged rows only,
# where the database has partial indexes (MariaDB: all of them). Through ix_landing_source_id each page read
# every landed row of the source, payload and all, to compare its two hashes (1M people: 14.5 GB read from
# disk for 27k changed records)
sa.Index("ix_landing_unstaged", landing.c.source, landing.c.id, sqlite_where=landing_unstaged(),
         postgresql_where=landing_unstaged())
# the newest target record landed per entity (the push plan's mark) and those landed since (0016)
sa.Index("ix_landing_first_landed", landing.c.entity, landing.c.first_landed_at)
# retention prunes the payloads that expired since its last pass, not by reading every landed row (0023)
sa.Index("ix_landing_landed", landing.c.landed_at)
# the push plan's drift check and each pulled page's lookup read the hashes from here, not from the rows (0026)
sa.Index("ix_landing_held", landing.c.source, landing.c.entity, landing.c.source_id, landing.c.payload_hash,
         landing.c.hub_state_hash)
# the records whose hub fields a pull saw change since the last plan: its drift check looks at those (0033). The
# time first: no other query picks it (led by source and entity, SQLite took it for theirs)
sa.Index("ix_landing_held_at", landing.c.held_at, landing.c.source, landing.c.entity, landing.c.source_id)

sync_state = sa.Table(
    "sync_state",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.JSON, nullable=True),
    _ts("updated_at", nullable=False),
)

staged_record = sa.Table(
    "staged_record",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("record_key", sa.String(320), primary_key=True),  # "<source>:<source_id>"
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("customer_key", sa.String(320), nullable=True),  # owning customer record for orders etc.
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("quality_flags", sa.JSON, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    _ts("staged_at", nullable=False),
    # which fields a customer record holds (hub.quality.completeness.profile_bits), written with the record by
    # staging: the quality dimensions count records by it in SQL instead of decoding every record (0027). Null
    # for other entities and for rows written otherwise; the dimensions fill those in
    sa.Column("quality_profile", sa.Integer, nullable=True),
    # the strong identifiers of a customer record as hashes (hub.quality.identifiers.identifier_digests), written
    # with the record by staging: the brake counts how many records hold each without decoding every record
    # (0030). Null for other entities and for rows written otherwise; the brake computes and keeps those
    sa.Column("identifier_hashes", sa.LargeBinary, nullable=True),
    # the matching engine's input row of a customer record and the engine's standardised values of it
    # (hub.golden.matching.staged_engine_rows), written with the record by staging, and the key they are valid
    # under (the record's hash under the engine's code): a match run reads them instead of decoding the record's
    # JSON and standardising its values (0032; rows of older code hold the input row alone). Null for other entities and for rows
    # written otherwise, and stale under other code; the match stage derives those from the JSON
    sa.Column("engine_input", sa.String(32), nullable=True),
    sa.Column("engine_row", LONG_TEXT, nullable=True),
)
# the dimensions count customers per source and profile from the index alone (0027)
sa.Index("ix_staged_profile", staged_record.c.entity, staged_record.c.source, staged_record.c.quality_profile)
sa.Index("ix_staged_customer_key", staged_record.c.entity, staged_record.c.customer_key)
sa.Index("ix_staged_at", staged_record.c.entity, staged_record.c.staged_at)
# records per source staged since the last run (0020); staged_at first: with source first SQLite read the flag
# lists per source through it, fetching every row out of order instead of scanning the table
sa.Index("ix_staged_source", staged_record.c.staged_at, staged_record.c.source)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),  # list of codes, e.g. ["required.name_missing"]
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    _ts("quarantined_at", nullable=False),
    sa.UniqueConstraint("source", "entity", "source_id", name="uq_quarantine_record"),
)

match_pair = sa.Table(
    "match_pair",
    metadata,
    sa.Column("left_key", sa.String(320), primary_key=True),
    sa.Column("right_key", sa.String(320), primary_key=True),
    sa.Column("match_weight", REAL, nullable=False),
    sa.Column("match_probability", REAL, nullable=False),
    sa.Column("band", sa.String(16), nullable=False),  # match | review | non_match
    sa.Column("explanation", sa.JSON, nullable=False),  # {field: {"level": ..., "weight": ...}}
    _ts("scored_at", nullable=False),
)
# with scored_at (0020): the report's pairs scored per band (since the last run) and newest score read the index
sa.Index("ix_match_pair_band", match_pair.c.band, match_pair.c.scored_at)

review_decision = sa.Table(
    "review_decision",
    metadata,
    sa.Column("left_key", sa.String(320), primary_key=True),
    sa.Column("right_key", sa.String(320), primary_key=True),
    sa.Column("decision", sa.String(16), nullable=False),  # match | no-match
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    _ts("decided_at", nullable=False),
)

golden_customer = sa.Table(
    "golden_customer",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # active | retired
    sa.Column("merged_into", sa.String(32), nullable=True),
    sa.Column("record", sa.JSON, nullable=True),
    sa.Column("lineage", sa.JSON, nullable=True),
    sa.Column("quality_score", REAL, nullable=True),
    sa.Column("record_hash", sa.String(64), nullable=True),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    # what the quality dimensions read of it, kept by the golden build (hub/quality/golden_facts.py; 0035)
    sa.Column("quality_facts", sa.Text, nullable=True),
)
# (status, golden_id) since migration 0019: "active golden customers of this chunk of ids" (the 360 build) had
# SQLite read every active golden customer per chunk through (status) alone. With updated_at, created_at and
# quality_score (0020) the report's counts ("active", "new / changed since the last run", newest change) and its
# quality histogram read this index, not every golden record (4.7 GB at a million people)
sa.Index("ix_golden_status", golden_customer.c.status, golden_customer.c.golden_id, golden_customer.c.updated_at,
         golden_customer.c.created_at, golden_customer.c.quality_score)
sa.Index("ix_golden_updated", golden_customer.c.updated_at)  # newest change / changed since a mark (0015)
# the active golden customers counted per distinct quality_facts text from the index alone (0035); MySQL indexes
# a prefix of a text column
sa.Index("ix_golden_facts", golden_customer.c.status, golden_customer.c.quality_facts,
         mysql_length={"quality_facts": 255})

golden_id_history = sa.Table(
    "golden_id_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("golden_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("related_golden_id", sa.String(32), nullable=True),
    sa.Column("record_key", sa.String(320), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    _ts("at", nullable=False),
)
sa.Index("ix_golden_history_id", golden_id_history.c.golden_id)

golden_id_sequence = sa.Table(
    "golden_id_sequence",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("next_value", sa.Integer, nullable=False),
)

xref = sa.Table(
    "xref",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("record_key", sa.String(320), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("golden_id", sa.String(32), nullable=False),
    _ts("valid_from", nullable=False),
    _ts("valid_to", nullable=True),
)
sa.Index("ix_xref_record", xref.c.record_key, xref.c.valid_to)
sa.Index("ix_xref_golden", xref.c.golden_id)
sa.Index("ix_xref_valid_from", xref.c.valid_from)  # links opened / closed since a mark (0015)
# closed links only (migration 0018): an index holding the open rows (valid_to NULL, most of the table) made
# SQLite search "valid_to IS NULL AND golden_id IN (...)" through it, i.e. read every open link per chunk of
# golden ids (the 360 build at 1M people: 1,500+ s, superlinear); MySQL has no partial index and plans by its
# statistics
_CLOSED = xref.c.valid_to.is_not(None)
sa.Index("ix_xref_valid_to", xref.c.valid_to, sqlite_where=_CLOSED, postgresql_where=_CLOSED)

customer_360 = sa.Table(
    "customer_360",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("record_hash", sa.String(64), nullable=False),
    _ts("updated_at", nullable=False),
)
sa.Index("ix_customer_360_updated", customer_360.c.updated_at)  # views rewritten since a mark (0015)
# every view's record hash without reading the views (0022): the caller index finds the views it has not indexed
# as they are (it read every view, 4.5 GB at 1M people, in every sync). A wider ix_customer_360_updated would not
# do: SQLite cannot tell a JSON column's size and then scans the table for count(*), max(updated_at)
sa.Index("ix_customer_360_hash", customer_360.c.golden_id, customer_360.c.record_hash)

# What the last 360 build was built from, so the next one rebuilds the affected golden customers only:
# which staged order / shipment / interaction belonged to whom (a record that moves names its old owner too),
# and per golden customer what the RFM ranking and the value / lifecycle figures need (the quintiles are
# re-ranked over these rows, not over every customer's orders).
customer_360_link = sa.Table(
    "customer_360_link",
    metadata,
    sa.Column("entity", sa.String(32), primary_key=True),
    sa.Column("record_key", sa.String(320), primary_key=True),
    sa.Column("golden_id", sa.String(32), primary_key=True),
    # an interaction's kind ("call", "social_follow", ...; "" for orders and shipments): the build counts linked
    # calls and social events from the links alone (0024; joined to the staged JSON for it, the count read
    # every interaction's record: ~2 of the 12 minutes of the 360 build at a million people)
    sa.Column("kind", sa.String(32), nullable=False, server_default=""),
)
sa.Index("ix_customer_360_link_golden", customer_360_link.c.golden_id)
# one entity's links of a chunk of golden ids (the 360 build's chunks; migration 0019): through the primary key
# (entity, ...) SQLite read every link of the entity per chunk
sa.Index("ix_customer_360_link_entity_golden", customer_360_link.c.entity, customer_360_link.c.golden_id,
         customer_360_link.c.record_key)
customer_360_rank = sa.Table(
    "customer_360_rank",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("first_order_at", sa.DateTime(), nullable=True),
    sa.Column("last_order_at", sa.DateTime(), nullable=True),
    sa.Column("frequency", sa.Integer, nullable=False),
    sa.Column("monetary", REAL, nullable=False),
    sa.Column("duplicate_orders", sa.Integer, nullable=False),
    # derived at the last build (as_of and the population's ranks): a change rewrites the view
    sa.Column("recency_days", sa.Integer, nullable=True),
    sa.Column("r_score", sa.Integer, nullable=True),
    sa.Column("f_score", sa.Integer, nullable=True),
    sa.Column("m_score", sa.Integer, nullable=True),
    sa.Column("lifecycle", sa.String(16), nullable=True),
    # the view as written (None: its golden record failed validation, no view)
    sa.Column("value_tier", sa.String(16), nullable=True),
    sa.Column("segment", sa.String(64), nullable=True),
)

push_outbox = sa.Table(
    "push_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(255), nullable=False),
    sa.Column("golden_id", sa.String(32), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    # pending | sending (claimed, handed to the target, result not recorded yet) | ok | rejected | error
    # | superseded
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_reason", sa.Text, nullable=True),
    _ts("created_at", nullable=False),
    _ts("updated_at", nullable=False),
    # claim of the pusher that sends the row (claim_token()), when, and in which run (migration 0007)
    sa.Column("claimed_by", sa.String(96), nullable=True),
    _ts("claimed_at", nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("cause", sa.String(16), nullable=True),  # change | create | remove | drift | erase
)
# the waiting rows of a target in id order, as claims read them (migration 0017 added id: PostgreSQL's index
# entries of one status are not in id order otherwise; SQLite's and InnoDB's end with the key anyway); cause
# (0021): the report's rows per target and status of a cause read the index alone
sa.Index("ix_outbox_pending", push_outbox.c.target, push_outbox.c.status, push_outbox.c.id, push_outbox.c.cause)
# retention deletes finished rows older than its period: those, not every row (0021)
sa.Index("ix_outbox_updated", push_outbox.c.updated_at, push_outbox.c.status)
# diff-only planning looks rows up per target record (migration 0002)
sa.Index("ix_outbox_target_record", push_outbox.c.target, push_outbox.c.entity, push_outbox.c.target_id)
# a plan's creates (empty target_id) per golden id (0034)
sa.Index("ix_outbox_golden", push_outbox.c.golden_id, push_outbox.c.target, push_outbox.c.entity,
         push_outbox.c.target_id)

push_result = sa.Table(
    "push_result",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", sa.Integer, nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    _ts("at", nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("attempt", sa.Integer, nullable=True),
    sa.Column("changes", sa.JSON, nullable=True),  # {field: [before, after]} of the fields the row changed
)
# with status (0021): results per target and status read the index alone
sa.Index("ix_push_result_target", push_result.c.target, push_result.c.at, push_result.c.status)
# results since the last run (the report) and older than the retention period (0021): rows in the order written
sa.Index("ix_push_result_at", push_result.c.at, push_result.c.target, push_result.c.status)
sa.Index("ix_push_result_outbox", push_result.c.outbox_id)

push_state = sa.Table(
    "push_state",
    metadata,
    sa.Column("target", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(255), primary_key=True),
    sa.Column("golden_id", sa.String(32), nullable=False),
    sa.Column("payload_hash", sa.String(64), nullable=False),
    _ts("pushed_at", nullable=False),
    # hash of what the target holds once that payload is applied (the connector's held view): a later pull
    # showing a different hub_state in landing is drift, repaired by pushing again
    sa.Column("held_hash", sa.String(64), nullable=True),
)
# what the hub wrote for given golden customers (an incremental plan's changed ones, an erased person's): 0025
sa.Index("ix_push_state_golden", push_state.c.target, push_state.c.golden_id)
# the push states written since the last plan: its drift check looks at those records (0033). The time first: led
# by target and entity, SQLite took it for the lookups by golden id (ix_push_state_golden)
sa.Index("ix_push_state_pushed", push_state.c.pushed_at, push_state.c.target, push_state.c.entity,
         push_state.c.target_id)


# Matching state (migration 0003), owned by hub/golden: the persisted blocking index, per-record match state,
# match/golden runs and the frozen scoring parameters of the engine.
match_block = sa.Table(
    "match_block",
    metadata,
    sa.Column("block_key", sa.String(400), primary_key=True),  # hashed: no personal data in the index
    sa.Column("record_key", sa.String(320), primary_key=True),
)
sa.Index("ix_match_block_record", match_block.c.record_key)

match_record = sa.Table(
    "match_record",
    metadata,
    sa.Column("record_key", sa.String(320), primary_key=True),
    sa.Column("record_hash", sa.String(64), nullable=False),
    sa.Column("cluster_key", sa.String(320), nullable=False),
    sa.Column("changed_run", sa.Integer, nullable=False),
    sa.Column("matched_at", sa.DateTime(), nullable=False),
    # the engine's input row of the record (JSON list, personal data: erased with the row) and a digest of the
    # staged hash and engine-row code it was derived from: unchanged records are not re-read from staging
    sa.Column("input_hash", sa.String(32), nullable=True),
    sa.Column("engine_row", LONG_TEXT, nullable=True),
)
sa.Index("ix_match_record_cluster", match_record.c.cluster_key)
sa.Index("ix_match_record_changed", match_record.c.changed_run)

match_run = sa.Table(
    "match_run",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # match | golden
    sa.Column("mode", sa.String(16), nullable=False),  # full | incremental
    sa.Column("matcher", sa.String(32), nullable=True),
    sa.Column("config_hash", sa.String(64), nullable=True),
    sa.Column("upto_run", sa.Integer, nullable=True),  # golden runs: the match run they consumed
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("finished_at", sa.DateTime(), nullable=True),
    sa.Column("stats", sa.JSON, nullable=True),
)

match_model = sa.Table(
    "match_model",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("matcher", sa.String(32), nullable=False),
    sa.Column("trained_at", sa.DateTime(), nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),  # frozen scoring parameters (m/u, prior, term frequencies)
)

# The candidate pairs of the last match run (migration 0013): record indices into the sorted match_record keys
# of that run (no personal data) and each pair's band, packed and split into parts. An incremental run scores
# only the pairs that are not among them (or have a changed end) and drops the match pairs that left the set.
match_candidates = sa.Table(
    "match_candidates",
    metadata,
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("keys_digest", sa.String(64), nullable=False),  # of the record keys the indices point into
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("pairs", sa.Integer, nullable=False),
    # LONGBLOB on MySQL/MariaDB: its plain BLOB holds 64 KB, a part up to CAND_PART_BYTES
    sa.Column("data", sa.LargeBinary().with_variant(LONGBLOB(), "mysql", "mariadb"), nullable=False),
)


# Data-quality state (migration 0004), owned by hub/quality: the history of runs the report charts, the push
# brake's evaluations and releases, and the customer-base position per golden customer at the last report
# (RFM movement between runs).
quality_run = sa.Table(
    "quality_run",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("trigger", sa.String(64), nullable=True),
    sa.Column("started_at", sa.DateTime(), nullable=True),
    sa.Column("finished_at", sa.DateTime(), nullable=False),
    sa.Column("seconds", REAL, nullable=True),
    sa.Column("status", sa.String(8), nullable=False),  # green | amber | red | none
    sa.Column("scores", sa.JSON, nullable=False),  # {dimension: {"score": x, "status": s, "sources": {...}}}
    sa.Column("figures", sa.JSON, nullable=False),  # this run's counts and the store's totals
)
sa.Index("ix_quality_run_finished", quality_run.c.finished_at)

push_brake = sa.Table(
    "push_brake",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("golden_run", sa.Integer, nullable=False),  # the match_run (kind golden) evaluated
    sa.Column("status", sa.String(16), nullable=False),  # passed | tripped | released
    sa.Column("evaluated_at", sa.DateTime(), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),  # plain-language sentences, no personal data
    sa.Column("figures", sa.JSON, nullable=False),
    sa.Column("released_at", sa.DateTime(), nullable=True),
    sa.Column("released_by", sa.String(128), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)
sa.Index("ix_push_brake_status", push_brake.c.status)

# What the report's customer base and 360 figures and the push plan's caller directory read of each 360 view,
# kept per golden customer and brought up to date from the views rewritten since (hub/c360_summary.py): a sync
# that changed a few customers reads those, not every view's JSON.
customer_360_summary = sa.Table(
    "customer_360_summary",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("segment", sa.String(64), nullable=True),
    sa.Column("value_tier", sa.String(16), nullable=True),
    sa.Column("lifecycle", sa.String(16), nullable=True),
    sa.Column("rfm_segment", sa.String(32), nullable=False),
    sa.Column("frequency", sa.Integer, nullable=False),
    sa.Column("monetary", REAL, nullable=False),
    sa.Column("region", sa.String(255), nullable=True),
    sa.Column("sources", sa.Text, nullable=False),  # JSON list, as the profile lists them
    sa.Column("has_orders", sa.Boolean, nullable=False),
    sa.Column("has_calls", sa.Boolean, nullable=False),
    sa.Column("has_social", sa.Boolean, nullable=False),
    *(sa.Column(f"consent_{ch}", sa.Boolean, nullable=True) for ch in ("email", "sms", "phone", "social", "post")),
    _ts("view_updated_at", nullable=False),  # the view's updated_at when summarised: the newest is the mark
)
sa.Index("ix_customer_360_summary_view", customer_360_summary.c.view_updated_at)
customer_360_phone = sa.Table(
    "customer_360_phone",
    metadata,
    sa.Column("golden_id", sa.String(32), nullable=False),
    sa.Column("phone", sa.String(255), nullable=False),
    sa.PrimaryKeyConstraint("golden_id", "phone"),
)
sa.Index("ix_customer_360_phone", customer_360_phone.c.phone)

customer_base_snapshot = sa.Table(
    "customer_base_snapshot",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("rfm_segment", sa.String(32), nullable=False),
    sa.Column("value_tier", sa.String(16), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
)
file_import = sa.Table(
    "file_import",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("mapping", sa.String(255), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("file_format", sa.String(16), nullable=False),  # csv | xlsx
    sa.Column("encoding", sa.String(64), nullable=True),
    sa.Column("rows_read", sa.Integer, nullable=False),  # = staged + quarantined + skipped when exit_code < 3
    sa.Column("staged", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("skipped_reasons", sa.JSON, nullable=False),  # {"empty row": 2, ...}
    sa.Column("problems", sa.JSON, nullable=False),  # structural findings: line numbers and column names only
    sa.Column("exit_code", sa.Integer, nullable=False),
    _ts("started_at", nullable=False),
    _ts("finished_at", nullable=False),
)
sa.Index("ix_file_import_source", file_import.c.source, file_import.c.started_at)

# match_pair is looked up by either end when growing an affected component
sa.Index("ix_match_pair_right_key", match_pair.c.right_key)


# Caller-lookup index (migration 0005), owned by hub/lookup: keys are 64-bit blake2b hashes of the standardised
# phone / e-mail / name(+city) keys, so the index itself holds no personal data.
lookup_key = sa.Table(
    "lookup_key",
    metadata,
    sa.Column("key_hash", sa.BigInteger, primary_key=True),
    sa.Column("golden_id", sa.String(32), primary_key=True),
)
sa.Index("ix_lookup_key_golden", lookup_key.c.golden_id)

lookup_record = sa.Table(
    "lookup_record",
    metadata,
    sa.Column("golden_id", sa.String(32), primary_key=True),
    sa.Column("record_hash", sa.String(64), nullable=False),  # customer_360.record_hash the keys come from
    sa.Column("keys_version", sa.String(16), nullable=False),  # fingerprint of the key derivation
    sa.Column("indexed_at", sa.DateTime(), nullable=False),
)


# Personal-data lifecycle (migration 0008), owned by hub/privacy.
source_tombstone = sa.Table(
    "source_tombstone",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),  # landing entity
    sa.Column("source_id", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # deleted | deactivated | unfollowed
    _ts("detected_at", nullable=False),
    _ts("applied_at", nullable=True),  # when staging retired the record's staged rows
)

suppression = sa.Table(
    "suppression",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),  # HMAC-SHA256(salt, "<kind>:<normalised value>")
    sa.Column("kind", sa.String(16), nullable=False),  # phone | email | national_id | source_key
    sa.Column("erasure_id", sa.String(32), nullable=True),
    _ts("created_at", nullable=False),
)

erasure = sa.Table(
    "erasure",
    metadata,
    sa.Column("erasure_id", sa.String(32), primary_key=True),  # E000000001
    sa.Column("status", sa.String(16), nullable=False),  # pushing | done
    sa.Column("selector", sa.String(16), nullable=False),  # golden_id | phone | email | record (never the value)
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("counts", sa.JSON, nullable=False),  # {"hub": {table: rows}, "systems": {target: records}}
    _ts("requested_at", nullable=False),
    _ts("finished_at", nullable=True),
)

# Run safety (migration 0009), owned by hub/sync_lock.py and hub/source_health.py.
sync_lock = sa.Table(
    "sync_lock",
    metadata,
    # who holds the store's sync lock; the lock itself is the database's (PostgreSQL advisory lock) or the
    # operating system's (a file lock beside a SQLite store), so it is released when its holder dies
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("job", sa.String(128), nullable=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    _ts("started_at", nullable=False),
)

source_health = sa.Table(
    "source_health",
    metadata,
    # the outcome of each source's latest pull: a failed source is not pushed to until a pull succeeds
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # ok | failed
    sa.Column("error", sa.Text, nullable=True),  # exception class + redacted message (no personal data)
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    _ts("checked_at", nullable=False),
    _ts("last_ok_at", nullable=True),
    _ts("failing_since", nullable=True),
)


# --------------------------------------------------------------------------------------------------------------
# Value types shared with connectors and stages


class LandingRecord(NamedTuple):
    source_id: str
    payload: dict
    payload_hash: str
    hub_state: dict | None = None  # the hub's own fields as the source holds them; None = not reported
    # the payload as ``json_text`` writes it, when the connector encoded it already (connectors.base
    # landing_record): land_page stores this text and does not encode the payload again
    payload_text: str | None = None


def _payload_text(rec: LandingRecord) -> str:
    return rec.payload_text if rec.payload_text is not None else json_text(rec.payload)


def json_text_param(conn: Connection, name: str) -> Any:
    """A bound parameter carrying JSON text (``json_text``) into a JSON column, not encoded again (the column
    type would encode the text as a JSON string); PostgreSQL needs the cast from text."""
    p = sa.bindparam(name, type_=sa.Text)
    return sa.cast(p, sa.JSON()) if conn.dialect.name == "postgresql" else p


def insert_rows(conn: Connection, table: sa.Table, names: Sequence[str], rows: Sequence[tuple]) -> None:
    """INSERT ``rows``: tuples in the order of ``names``, JSON columns as the text the store writes
    (``json_text`` / ``json_bytes``), times from ``bound_time``. On SQLite straight to the driver's
    executemany (``execute_rows``): SQLAlchemy's processing of every parameter of every row cost about as much
    as the insert itself (landing pages; 243k golden, xref and history rows and 154k match rows at 100k
    customers). Elsewhere SQLAlchemy's executemany, which batches rows into multi-row INSERTs (the drivers' own
    executemany sends one statement per row)."""
    if len(rows) >= COPY_MIN_ROWS and on_psycopg2(conn):
        text = _copy_text(rows)
        if text is not None:
            prep = conn.dialect.identifier_preparer
            with driver_cursor(conn) as cursor:
                cursor.copy_expert(f"COPY {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) "
                                   "FROM STDIN", io.StringIO(text))
            return
    values = {n: json_text_param(conn, f"p_{n}") if isinstance(table.c[n].type, sa.JSON)
              else sa.bindparam(f"p_{n}", type_=table.c[n].type) for n in names}
    execute_rows(conn, table.insert().values(values), [f"p_{n}" for n in names], rows)


def on_psycopg2(conn: Connection) -> bool:
    """A PostgreSQL store through psycopg2: ``driver_cursor`` can COPY and ``update_from_values`` runs."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg2"


@contextmanager
def driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the driver's own connection under ``conn``, in its transaction, closed afterwards: for what
    SQLAlchemy has no statement for (psycopg2's COPY and execute_values)."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def update_from_values(conn: Connection, statement: str, rows: Sequence[tuple], params: Sequence[Any] = (),
                       page_size: int = 1000) -> None:
    """psycopg2: ``statement``, an ``UPDATE ... FROM (VALUES {rows}) AS v (...) ...`` with ``%s`` for each of
    ``params``, run once per page of ``rows`` (psycopg2's execute_values): one statement for a page, where an
    executemany sent one per row (most of what PostgreSQL did in a first staging's landing marks and in the
    pushes' notes on landing records, bench/pg_activity.py at 100k people)."""
    from psycopg2.extras import execute_values

    with driver_cursor(conn) as cursor:
        text = cursor.mogrify(statement.replace("{rows}", "_ROWS_"), tuple(params) or None).decode()
        execute_values(cursor, text.replace("%", "%%").replace("_ROWS_", "%s"), rows, page_size=page_size)


# rows from which insert_rows sends PostgreSQL a COPY instead of multi-row INSERTs: psycopg2 quotes every value of
# those into the statement's text in Python, and the server parses it (see _copy_text)
COPY_MIN_ROWS = 100
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]").search  # one scan in C: most values need no escape (translate is slow)


def _copy_text(rows: Sequence[tuple]) -> str | None:
    """``rows`` in COPY's text format (tab-separated, ``\\N`` for NULL, backslash escapes), or None when a value
    is of a type this does not write as the driver would bind it (those rows go through INSERTs). Strings (JSON
    columns' text included), integers, floats (repr: the same double), decimals, booleans, naive datetimes,
    dates and bytes (bytea). 40k staged records, three rounds each: INSERTs 2.6-2.9 s wall, COPY 1.2-1.45 s."""
    lines: list[str] = []
    for row in rows:
        fields: list[str] = []
        for v in row:
            if v is None:
                fields.append("\\N")
            elif v.__class__ is str:
                fields.append(v.translate(_COPY_ESCAPES) if _COPY_SPECIAL(v) else v)
            elif v.__class__ is bool:
                fields.append("t" if v else "f")
            elif v.__class__ in (int, float, Decimal):
                fields.append(repr(v) if v.__class__ is float else str(v))
            elif v.__class__ is datetime and v.tzinfo is None:
                fields.append(v.isoformat(sep=" "))
            elif v.__class__ is date:
                fields.append(v.isoformat())
            elif v.__class__ is bytes:  # bytea's hex input, its backslash escaped for COPY
                fields.append("\\\\x" + v.hex())
            else:
                return None
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def execute_rows(conn: Connection, stmt: Any, names: Sequence[str], rows: Sequence[tuple],
                 fixed: Mapping[str, Any] | None = None) -> int:
    """executemany of ``stmt`` (an UPDATE or INSERT whose every bound parameter is a named ``bindparam``): one
    tuple per row, values in the order of ``names``, as ``insert_rows`` takes them (times from ``bound_time``,
    JSON as text through ``json_text_param``); ``fixed``: parameters with one value for every row. On SQLite
    straight to the driver's executemany (SQLAlchemy's processing of each row's parameters cost more than
    the statement: recording 79k push results). Returns the rows matched."""
    if not rows:
        return 0
    fixed = fixed or {}
    if conn.dialect.name == "sqlite":
        compiled = stmt.compile(dialect=conn.dialect)
        at = {n: i for i, n in enumerate(names)}
        slots = [(at[n], None) if n in at else (-1, fixed[n]) for n in compiled.positiontup]
        if [i for i, _ in slots] == list(range(len(names))):  # the rows are the parameters as they are
            return conn.exec_driver_sql(str(compiled), list(rows)).rowcount
        params = [tuple(r[i] if i >= 0 else v for i, v in slots) for r in rows]
        return conn.exec_driver_sql(str(compiled), params).rowcount
    return conn.execute(stmt, [{**fixed, **dict(zip(names, r, strict=True))} for r in rows]).rowcount


def bound_time(conn: Connection, ts: datetime) -> Any:
    """``ts`` as a value of a row sent straight to the driver's executemany: on SQLite the text SQLAlchemy's
    DateTime stores, elsewhere the datetime (SQLAlchemy binds it)."""
    if conn.dialect.name != "sqlite":
        return ts
    process = sa.DateTime().dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(ts) if process is not None else ts


_LANDING_INSERT = ("source", "entity", "source_id", "payload", "payload_hash", "staged_hash", "hub_state",
                   "hub_state_hash", "first_landed_at", "landed_at", "held_at")


def _insert_landing(conn: Connection, source: str, entity: str, rows: list[tuple], now: datetime) -> None:
    """INSERT new landing rows ``(source_id, payload text, payload hash, hub_state text, hub_state hash)``."""
    ts = bound_time(conn, now)
    insert_rows(conn, landing, _LANDING_INSERT, [(source, entity, sid, text, h, None, hub, hh, ts, ts,
                                                  None if hh is None else ts) for sid, text, h, hub, hh in rows])


# records to check for drift from which the plan joins every push state of the target with its landing record
# instead of looking each one up (50k people, the first plan after a first sync's pushes: 1.6 s CPU by key,
# 1.0 s joined)
DRIFT_BY_KEY_MAX = 20_000


class LandingCounts(NamedTuple):
    new: int
    changed: int
    unchanged: int


class OutboxItem(NamedTuple):
    id: int
    target: str
    entity: str
    target_id: str
    golden_id: str
    payload: dict
    attempts: int


_OUTBOX_ITEM = (push_outbox.c.id, push_outbox.c.target, push_outbox.c.entity, push_outbox.c.target_id,
                push_outbox.c.golden_id, push_outbox.c.payload, push_outbox.c.attempts)


# what recording a push result reads of its outbox row (not the payload)
_RECORDED = (push_outbox.c.id, push_outbox.c.target, push_outbox.c.entity, push_outbox.c.target_id,
             push_outbox.c.golden_id, push_outbox.c.payload_hash, push_outbox.c.status, push_outbox.c.attempts,
             push_outbox.c.claimed_by, push_outbox.c.run_id)
_OUTBOX_INSERT = ("target", "entity", "target_id", "golden_id", "payload", "payload_hash", "status", "attempts",
                  "created_at", "updated_at", "cause")
_RESULT_COLUMNS = ("outbox_id", "target", "target_id", "status", "reason", "at", "run_id", "attempt", "changes")
_PUSH_STATE_INSERT = ("target", "entity", "target_id", "golden_id", "payload_hash", "held_hash", "pushed_at")
_PUSH_STATE_UPDATE = (
    push_state.update()
    .where(push_state.c.target == sa.bindparam("b_target"), push_state.c.entity == sa.bindparam("b_entity"),
           push_state.c.target_id == sa.bindparam("b_tid"))
    .values(golden_id=sa.bindparam("b_gid"), payload_hash=sa.bindparam("b_hash"), held_hash=sa.bindparam("b_held"),
            pushed_at=sa.bindparam("b_at", type_=push_state.c.pushed_at.type)),
    ("b_gid", "b_hash", "b_held", "b_at", "b_target", "b_entity", "b_tid"),
)


def _record_outbox(conn: Connection, token: str | None, rows: list[tuple]) -> int:
    """Close (ok, rejected) or release (error) outbox rows: ``(status, reason, at, claimed_by, run_id, id)``
    each; with ``token`` only rows that pusher still holds. Returns the rows changed.

    Off SQLite one UPDATE per outcome and IN list of ids: a batch's rows share their outcome but for the id,
    and row by row (executemany in pages) a first push of 100k directory rows sent 100k statements to
    PostgreSQL. SQLite takes the rows as they are (the driver's executemany of one prepared statement)."""
    if conn.dialect.name != "sqlite":
        groups: dict[tuple, list[int]] = {}
        for *values, oid in rows:
            groups.setdefault(tuple(values), []).append(oid)
        done = 0
        for (status, reason, at, claim, run), ids in groups.items():
            for part in chunked(ids, IN_LIST):
                where = [push_outbox.c.id.in_(part)]
                if token is not None:
                    where += [push_outbox.c.claimed_by == token, push_outbox.c.status == "sending"]
                done += conn.execute(push_outbox.update().where(*where).values(
                    status=status, attempts=push_outbox.c.attempts + sa.literal_column("1"), last_reason=reason,
                    updated_at=at, claimed_at=sa.null(), claimed_by=claim, run_id=run)).rowcount
        return done
    guard = [push_outbox.c.id == sa.bindparam("b_id")]
    if token is not None:
        guard += [push_outbox.c.claimed_by == sa.bindparam("b_token"), push_outbox.c.status == sa.bindparam("b_sending")]
    stmt = push_outbox.update().where(*guard).values(
        status=sa.bindparam("b_status"), attempts=push_outbox.c.attempts + sa.literal_column("1"),
        last_reason=sa.bindparam("b_reason"), updated_at=sa.bindparam("b_at", type_=push_outbox.c.updated_at.type),
        claimed_at=sa.null(),
        # an error row keeps its pusher's token: that run does not claim it again
        claimed_by=sa.bindparam("b_claim"), run_id=sa.bindparam("b_run"))
    return execute_rows(conn, stmt, ("b_status", "b_reason", "b_at", "b_claim", "b_run", "b_id"), rows,
                        {"b_token": token, "b_sending": "sending"} if token is not None else None)


def _record_held(conn: Connection, source: str, rows: list[tuple]) -> None:
    """What the hub just wrote onto the landing records of ``source`` it tracks: ``(hub_state JSON text,
    its hash, source id)`` each."""
    if on_psycopg2(conn) and len(rows) > 1:  # a page per statement; the last row of a source id wins, as row by row
        last = {sid: (state, state_hash) for state, state_hash, sid in rows}
        update_from_values(
            conn, "UPDATE landing SET hub_state = CAST(v.state AS JSON), hub_state_hash = v.state_hash "
                  "FROM (VALUES {rows}) AS v (state, state_hash, sid) WHERE landing.source = %s "
                  "AND landing.entity = ANY(%s) AND landing.source_id = v.sid AND landing.hub_state_hash IS NOT NULL",
            [(state, state_hash, sid) for sid, (state, state_hash) in last.items()], (source, list(WRITABLE_ENTITIES)))
        return
    entities = {f"b_entity{i}": e for i, e in enumerate(WRITABLE_ENTITIES)}
    stmt = (
        landing.update()
        # an OR, not IN: an expanding IN cannot run as executemany
        .where(landing.c.source == sa.bindparam("b_source"),
               sa.or_(*(landing.c.entity == sa.bindparam(k) for k in entities)),
               landing.c.source_id == sa.bindparam("b_sid"), landing.c.hub_state_hash.is_not(None))
        .values(hub_state=json_text_param(conn, "b_state"), hub_state_hash=sa.bindparam("b_state_hash"))
    )
    execute_rows(conn, stmt, ("b_state", "b_state_hash", "b_sid"), rows, {"b_source": source, **entities})


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# json.dumps with options builds a new encoder per call (a third of the cost of encoding a record): one each
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default).encode
_STORED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default).encode


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no whitespace) — the basis of every hash in the hub."""
    return _CANONICAL(obj)


# what retention leaves of a landing / quarantine payload past its retention period (key and hash are kept)
PRUNED: dict[str, Any] = {"_pruned": True}


def is_pruned(payload: Any) -> bool:
    return payload == PRUNED


def payload_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj``: its bytes written by orjson wherever orjson writes the same
    (``json_bytes``; the stdlib's encoder was the largest single cost of hashing a 360 view or a push payload)."""
    return hashlib.sha256(json_bytes(obj, sort_keys=True)).hexdigest()


def jsonable(obj: Any) -> Any:
    """Round-trip through canonical JSON so dates/decimals are stored as strings on every backend."""
    return json.loads(canonical_json(obj))


def record_key(source: str, source_id: str) -> str:
    return f"{source}:{source_id}"


def default_database_url() -> str:
    url = os.environ.get("HUB_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{DEFAULT_DB_PATH}"


# sync_state row per source: the mapping its rows were staged with (hub.staging); its updated_at is when a
# changed mapping re-staged the source
STAGING_MAPPING_ENTITY = "_staging_mapping"


def read_cursor(conn: Connection, source: str, entity: str) -> dict | None:
    """The sync_state cursor of (source, entity) inside the caller's connection, or None."""
    return conn.execute(sa.select(sync_state.c.cursor).where(
        sync_state.c.source == source, sync_state.c.entity == entity)).scalar_one_or_none()


def write_cursor(conn: Connection, source: str, entity: str, cursor: dict | None) -> None:
    """Replace (or create) the sync_state cursor of (source, entity) inside the caller's transaction."""
    updated = conn.execute(
        sync_state.update()
        .where(sync_state.c.source == source, sync_state.c.entity == entity)
        .values(cursor=cursor, updated_at=_now())
    ).rowcount
    if not updated:
        conn.execute(sync_state.insert().values(source=source, entity=entity, cursor=cursor, updated_at=_now()))


def table_fingerprint(conn: Connection, *stmts: Any, extra: Sequence[Any] = ()) -> str:
    """A digest of ``extra`` and the one row each statement answers (counts and newest change times of the
    tables a derived figure reads): equal while those tables did not change. No record is read."""
    return payload_hash([*(str(v) for v in extra), *(str(v) for stmt in stmts for v in conn.execute(stmt).one())])


def xref_marks() -> list[Any]:
    """Statements that together tell whether the cross-references changed (for ``table_fingerprint``): rows,
    newest id, newest link opened, newest closed. One at a time each is an index lookup (the closed ones through
    the partial ix_xref_valid_to); one statement with the four aggregates read every row of xref."""
    return [sa.select(sa.func.count()).select_from(xref), sa.select(sa.func.max(xref.c.id)),
            sa.select(sa.func.max(xref.c.valid_from)),
            sa.select(sa.func.max(xref.c.valid_to)).where(xref.c.valid_to.is_not(None))]


def newest_xref_change(conn: Connection) -> tuple[Any, Any]:
    """(newest valid_from, newest valid_to) of the cross-references: each an index lookup (see ``xref_marks``)."""
    _, _, opened, closed = xref_marks()
    return conn.execute(opened).scalar(), conn.execute(closed).scalar()


def chunked(items: Iterable[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items (bounded IN lists and batched writes everywhere); an
    iterator that is not a sequence (rows made as they are written) is taken a batch at a time."""
    if isinstance(items, Sequence):
        for start in range(0, len(items), size):
            yield items[start : start + size]
        return
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


IN_LIST = 500  # values per IN list: well below every backend's parameter limit (SQLite's 32,766, MySQL's 65,535)


def select_in(conn: Connection, query: Any, column: Any, values: Iterable[Any], size: int = IN_LIST) -> Iterator[Any]:
    """The rows of ``query`` whose ``column`` is one of ``values``, as bounded IN lists (distinct values, sorted,
    ``size`` at a time; ``values`` is read at the call). Each list's rows are fetched at once: iterating a result
    fetches row by row."""
    wanted = sorted(set(values))
    return (row for part in chunked(wanted, size) for row in conn.execute(query.where(column.in_(part))).all())


def not_among(column: Any, values: sa.Select, dialect: str) -> sa.ColumnElement[bool]:
    """``column`` is none of the values ``values`` (a SELECT of one column) gives. Off SQLite a NOT EXISTS
    correlated on that column, which PostgreSQL plans as an anti join: ``NOT IN (SELECT ...)`` is none there
    (NULL semantics), it ran as a hashed subplan while the values fit in work_mem and as a scan of all of them
    per row beyond (300k people: 370k active golden ids, a 360 build stuck for minutes in one SELECT). On SQLite
    the NOT IN: it lists the values once, where its NOT EXISTS looked each one up (and read the golden row for
    its status, or walked every active customer per push state)."""
    if dialect == "sqlite":
        return column.not_in(values)
    return ~sa.exists(values.where(values.selected_columns[0] == column))


def as_text(column: Any, dialect: str) -> Any:
    """A JSON column as its stored text, not decoded by the driver or the column type: on SQLite as bytes (the
    driver's UTF-8 decoding to str would only be undone for orjson), elsewhere as text. ``json_value`` reads it."""
    return sa.cast(column, sa.LargeBinary if dialect == "sqlite" else sa.Text)


class JsonPaths:
    """Values at paths of a JSON column, read the way that costs least on each database. MariaDB extracts each
    path in SQL. SQLite extracts them all in one ``json_extract`` (one parse of the document per row, not one
    per path: the quality dimensions' four paths of 98k staged customers ~1.0 -> ~0.75 s), as a JSON array decoded
    here. PostgreSQL parses a ``json`` column's whole text again for every path read from it (ten paths of the
    2.6 KB 360 views of 100k people: 10.4 s in the server, the text alone 0.85 s), so there the text is read
    once (``columns`` is one column then) and the paths are taken from its value here.
    ``paths``: (key or tuple of keys, kind), kind "string" (``as_string``: a value that is no string as its JSON
    text), "integer" or "json" (the value)."""

    def __init__(self, column: Any, paths: Sequence[tuple[str | tuple[str, ...], str]], dialect: str) -> None:
        self.paths = [((p,) if isinstance(p, str) else tuple(p), kind) for p, kind in paths]
        # "text": the document, decoded here; "array": SQLite's values of every path as one JSON array (a
        # single path would come back as its value, not in an array); "sql": one column per path
        self.mode = ("text" if dialect == "postgresql" else
                     "array" if dialect == "sqlite" and len(self.paths) > 1 else "sql")
        if self.mode == "text":
            self.columns: list[Any] = [as_text(column, dialect)]
        elif self.mode == "array":
            selectors = [sa.literal("$" + "".join(f".{json.dumps(k, ensure_ascii=False)}" for k in path), sa.Text)
                         for path, _ in self.paths]
            self.columns = [sa.cast(sa.func.json_extract(sa.type_coerce(column, sa.Text), *selectors),
                                    sa.LargeBinary)]
        else:
            self.columns = [self._sql(column, path, kind) for path, kind in self.paths]

    @staticmethod
    def _sql(column: Any, path: tuple[str, ...], kind: str) -> Any:
        value = column[path if len(path) > 1 else path[0]]
        return value.as_string() if kind == "string" else value.as_integer() if kind == "integer" else value

    def values(self, row: Sequence[Any]) -> list[Any]:
        """The paths' values from the ``columns`` part of a row."""
        if self.mode == "sql":
            return list(row)
        if self.mode == "array":
            found = json_value(row[0]) or [None] * len(self.paths)  # SQL NULL: no document
        else:
            doc = json_value(row[0])
            found = []
            for path, _ in self.paths:
                value = doc
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                found.append(value)
        out: list[Any] = []
        for (_, kind), value in zip(self.paths, found, strict=True):
            if value is not None and kind == "string" and not isinstance(value, str):
                value = json_text(value)  # ->> of a number, a boolean, an object
            elif value is not None and kind == "integer":
                value = int(value)
            out.append(value)
        return out


@contextmanager
def gc_paused(freeze: bool = False, sweep: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector over a bulk pass (a context manager or a decorator); reference counting
    still frees everything. A pass over the store allocates millions of short-lived acyclic containers (staged
    JSON, member facts, identifier tuples, row dicts) beside a large live heap, and each allocation burst made
    the collector traverse it again and again (golden build at 20k: 8.1 -> 6.0 CPU s; the brake at 100k ~0.9 of
    3.4 s; staging's mapping loop ~40 %). At the end the youngest generation is collected once (with the
    collector off, everything the pass allocated is still there; a full collection would also walk the caller's
    long-lived heap), or with ``freeze`` the young generations are collected and what is still alive is moved out
    of later collections (staging's adapter memos: long-lived by design).

    ``sweep=False`` (with ``freeze``): no collection before the freeze, which walked everything the pass left
    alive (staging: a read's mapped rows; ~6 % of its CPU) to find garbage cycles a pass should not make. What
    cycles it did make stay frozen until the caller unfreezes (staging: after each source)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            # the pass's garbage cycles first: frozen, they stayed until the end of staging (at 100k people
            # staging's main process grew to 1.3 GB instead of 1.0)
            if sweep:
                gc.collect(1)
            gc.freeze()
        if was_enabled:
            gc.enable()
            if not freeze:
                gc.collect(0)

# outbox rows that still have to reach the target
LIVE_STATUSES = ("pending", "error", "sending")
# landing entities whose records exist as such in the source system (the ones the hub writes back to)
WRITABLE_ENTITIES = ("customers", "followers")
# a claim whose pusher cannot be checked (another host) is taken over after this long without a result
CLAIM_LEASE_SECONDS = 15 * 60
_HOST = socket.gethostname()


def _group_keys(keys: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], list[str]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for target, entity, tid in keys:
        grouped.setdefault((target, entity), []).append(tid)
    return grouped


def claim_token() -> str:
    """A pusher's claim on outbox rows: host, process id and a nonce (several pushes in one process)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_is_stale(token: str | None, claimed_at: datetime | None, now: datetime,
                   lease_seconds: float = CLAIM_LEASE_SECONDS) -> bool:
    """Did the pusher holding this claim die? On this host: its process is gone. Elsewhere (or a process of
    ours that lives on): the lease ran out."""
    host, _, rest = (token or "").partition(":")
    pid = rest.partition(":")[0]
    if host == _HOST and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # alive, someone else's
    if claimed_at is None:
        return True
    if isinstance(claimed_at, str):
        claimed_at = datetime.fromisoformat(claimed_at)
    return (now - claimed_at).total_seconds() > lease_seconds


class Store:
    """One hub database. Cheap to construct; the schema is upgraded with Alembic on open."""

    def __init__(self, url: str | None = None, *, migrate: bool = True, echo: bool = False) -> None:
        self.url = url or default_database_url()
        if self.url.startswith("sqlite:///") and not self.url.startswith("sqlite:///:memory:"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = _make_engine(self.url, echo=echo)
        self._keepers: dict[str, StatisticsKeeper] = {}
        if migrate:
            upgrade(self.engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def in_memory(self) -> bool:
        """An in-memory SQLite database: another connection (a forked worker's own) would open another one."""
        u = self.url
        return u.startswith("sqlite://") and (u in ("sqlite://", "sqlite:///") or ":memory:" in u
                                              or "mode=memory" in u)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def refresh_statistics(self, *tables: sa.Table) -> None:
        """PostgreSQL: ANALYZE ``tables`` after a stage wrote many of their rows, or (none named) every table of
        the store changed by at least ``ANALYZE_AFTER_ROWS`` rows and a tenth of its rows since its last
        analysis (autovacuum's rule, run when the stage is done). Autovacuum may be off (it is on this
        project's test machine) or behind a bulk load, and with no statistics the planner searched a page's
        landing rows by (source, entity) only and filtered every row of it: 100k people, an incremental pull,
        71 ms per 500 ids against 6.6 ms after ANALYZE (the shop pull: 50 s for 7 s of CPU). A table loaded in
        bulk that autovacuum would vacuum but will not (it is off) gets VACUUM (ANALYZE) instead
        (``_UNVACUUMED_LOADS``). Elsewhere nothing (SQLite's plans here come from its indexes)."""
        if self.dialect != "postgresql":
            return
        with self.engine.begin() as conn:
            names = [t.name for t in tables] if tables else list(conn.execute(sa.text(
                "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND n_mod_since_analyze >= GREATEST(:least, 0.1 * n_live_tup) ORDER BY relname"),
                {"least": ANALYZE_AFTER_ROWS}).scalars())
            vacuum = set(conn.execute(_UNVACUUMED_LOADS, {"names": names, "least": ANALYZE_AFTER_ROWS}).scalars()) \
                if names else set()
            for name in names:
                if name not in vacuum:
                    conn.exec_driver_sql(f'ANALYZE "{name}"')
        if vacuum:
            # VACUUM runs outside a transaction block
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name in sorted(vacuum):
                    conn.exec_driver_sql(f'VACUUM (ANALYZE) "{name}"')

    def statistics_keeper(self, table: sa.Table) -> StatisticsKeeper:
        """The ``StatisticsKeeper`` of ``table`` (one per table and store): told the rows written into it, it
        keeps the table's statistics up to date while it grows (PostgreSQL; elsewhere it does nothing). The
        store tells it of its own bulk writes: landed records, queued pushes, push states and results."""
        if table.name not in self._keepers:
            self._keepers[table.name] = StatisticsKeeper(self, table)
        return self._keepers[table.name]

    def dispose(self) -> None:
        self.engine.dispose()

    def run_apart(self, fn: Callable[[Store], Any], *, spill: bool = False) -> Any:
        """``fn(store)`` in a forked child process on its own connection to this store, its result returned
        here (``hub.dedupe.parallel.run_forked``; ``spill``: a large result through an unnamed temporary file
        read after the child has exited).

        A run's steps share one process (the in-process executor): a stage that holds every record's values
        (staging, matching, survivorship, the 360 view, the push plan) left its heap resident and fragmented under
        every later stage's own high-water mark (100k people: 0.77 GB resident after staging against 0.23 GB
        before it, about a sixth of the match stage's peak at a million). In a child, it leaves with the child.
        An in-memory SQLite store (another connection would open another database) runs ``fn(self)`` here."""
        from hub.dedupe.parallel import run_forked

        if self.in_memory:
            return fn(self)

        def in_child() -> Any:
            with self.own_copy() as own:
                return fn(own)

        return run_forked(in_child, spill=spill)

    @contextmanager
    def own_copy(self) -> Iterator[Store]:
        """This store on connections of the calling process's own, disposed after: a forked process must not use
        the pooled connections it inherited. Not for an in-memory store (another connection opens another
        database)."""
        own = Store(self.url, migrate=False)
        try:
            yield own
        finally:
            own.dispose()

    def release_caches(self) -> None:
        """Close the pooled connections of an SQLite store: each holds a page cache of up to
        ``SQLITE_CACHE_KIB`` in this process (the next statement opens a new one, ~1 ms; the OS keeps the file's
        pages). A server database keeps its caches in the server: nothing to do."""
        if self.engine.dialect.name == "sqlite":
            self.engine.dispose()

    # -- sync state / landing ---------------------------------------------------------------------------------

    def get_cursor(self, source: str, entity: str) -> dict | None:
        with self.engine.connect() as conn:
            return read_cursor(conn, source, entity)

    def save_cursor(self, source: str, entity: str, cursor: dict | None) -> None:
        """Replace a cursor outside a page (a connector noting what its own push wrote, see
        ``run_push``); pages save theirs with ``land_page``."""
        with self.engine.begin() as conn:
            write_cursor(conn, source, entity, cursor)

    def land_page(
        self, source: str, entity: str, records: Sequence[LandingRecord], cursor: dict | None
    ) -> LandingCounts:
        """Upsert one page of raw payloads and save the cursor that follows it, in ONE transaction.

        A record's ``hub_state`` (the hub's own fields as the source holds them) is kept up to date even when
        the payload hash is unchanged: the hash leaves hub fields out (echo suppression), the drift check
        of the push plan needs them."""
        new = changed = unchanged = 0
        now = _now()
        # last occurrence wins when a page repeats a record (overlap windows do that)
        by_id: dict[str, LandingRecord] = {}
        for rec in records:
            by_id[str(rec.source_id)] = rec
        with self.engine.begin() as conn:
            existing: dict[str, tuple[str, str | None]] = {}
            ids = list(by_id)
            for chunk in chunked(ids, 500):
                for sid, h, hs in conn.execute(
                    sa.select(landing.c.source_id, landing.c.payload_hash, landing.c.hub_state_hash).where(
                        landing.c.source == source,
                        landing.c.entity == entity,
                        landing.c.source_id.in_(chunk),
                    )
                ):
                    existing[sid] = (h, hs)
            inserts: list[tuple] = []
            updates, held = [], []
            for sid, rec in by_id.items():
                held_hash = None if rec.hub_state is None else payload_hash(rec.hub_state)
                old = existing.get(sid)
                if old is None:
                    # (None is stored as JSON null, as the JSON column type writes it)
                    inserts.append((sid, _payload_text(rec), rec.payload_hash, json_text(rec.hub_state), held_hash))
                    continue
                if old[0] != rec.payload_hash:
                    updates.append({"b_sid": sid, "payload": _payload_text(rec), "payload_hash": rec.payload_hash})
                else:
                    unchanged += 1
                if held_hash is not None and held_hash != old[1]:
                    held.append({"b_sid": sid, "hub_state": rec.hub_state, "hub_state_hash": held_hash})
            if inserts:
                _insert_landing(conn, source, entity, inserts, now)
                new = len(inserts)
            where = (landing.c.source == source, landing.c.entity == entity,
                     landing.c.source_id == sa.bindparam("b_sid"))
            if updates:
                conn.execute(
                    landing.update()
                    .where(*where)
                    .values(payload=json_text_param(conn, "payload"), payload_hash=sa.bindparam("payload_hash"),
                            landed_at=now),
                    updates,
                )
                changed = len(updates)
            if held:  # held_at: the push plan's drift check looks at these records
                conn.execute(landing.update().where(*where).values(
                    hub_state=sa.bindparam("hub_state"), hub_state_hash=sa.bindparam("hub_state_hash"),
                    held_at=now), held)
            write_cursor(conn, source, entity, cursor)
        # a first pull fills it from empty, each source and entity in turn
        self.statistics_keeper(landing).wrote(new, {"source": source, "entity": entity})
        return LandingCounts(new, changed, unchanged)

    def landed_ids(self, source: str, entity: str) -> set[str]:
        with self.engine.connect() as conn:
            return {
                r[0]
                for r in conn.execute(
                    sa.select(landing.c.source_id).where(landing.c.source == source, landing.c.entity == entity)
                )
            }

    def landing_counts(self, source: str | None = None) -> dict[tuple[str, str], int]:
        """Landed records per (source, entity); of one ``source`` only when given (a pull's figures: the index
        range of that source instead of every landed record, 4 x 0.5 s at 300k people)."""
        q = sa.select(landing.c.source, landing.c.entity, sa.func.count()).group_by(landing.c.source, landing.c.entity)
        if source is not None:
            q = q.where(landing.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return {(s, e): n for s, e, n in rows}

    # -- push outbox --------------------------------------------------------------------------------------------

    def enqueue_push(
        self, target: str, entity: str, target_id: str, golden_id: str, payload: dict
    ) -> bool:
        """Queue a write-back unless the target already holds exactly this payload (diff-only, idempotent).

        Returns True when a new outbox row was created. A pending row for the same target record is
        replaced (only the newest desired state is ever sent).
        """
        return self.enqueue_pushes(target, entity, [(target_id, golden_id, payload)]) == 1

    def enqueue_pushes(
        self, target: str, entity: str, items: Iterable[tuple[str, str, dict]], *,
        force: Iterable[str] = (), cause: str = "change",
    ) -> int:
        """Queue desired states; returns how many rows were queued.

        A row is skipped when the target already holds this payload (push_state), when the same payload
        was refused before, or when a live row (pending, in error, or being sent) carries it already.
        ``force`` target ids are queued although push_state says the target holds the payload: a pull saw
        that it does not any more (drift); their rows get cause 'drift'.
        """
        items = list(items)
        if not items:
            return 0
        forced = {str(t) for t in force}
        now = _now()
        queued = 0
        with self.engine.begin() as conn:
            state: dict[str, str] = {}
            rejected: set[tuple[str, str]] = set()
            live: dict[str, list[tuple[int, str, str]]] = {}
            ids = [str(t) for t, _, _ in items]
            for chunk in chunked(ids, 500):
                for tid, h in conn.execute(
                    sa.select(push_state.c.target_id, push_state.c.payload_hash).where(
                        push_state.c.target == target,
                        push_state.c.entity == entity,
                        push_state.c.target_id.in_(chunk),
                    )
                ):
                    state[tid] = h
                # the records' rows by (target, entity, target_id), their status tested here: with the status
                # in the WHERE clause SQLite walked (target, status) — every waiting or refused row of the
                # target for each 500 ids, quadratic once a target that was down has a backlog
                for oid, tid, h, status in conn.execute(
                    sa.select(push_outbox.c.id, push_outbox.c.target_id, push_outbox.c.payload_hash,
                              push_outbox.c.status).where(
                        push_outbox.c.target == target,
                        push_outbox.c.entity == entity,
                        push_outbox.c.target_id.in_(chunk),
                    )
                ):
                    if status == "rejected":  # not offered again until the desired state changes
                        rejected.add((tid, h))
                    elif status in LIVE_STATUSES:
                        live.setdefault(tid, []).append((oid, h, status))
            inserts, supersede = [], []
            at = bound_time(conn, now)
            for target_id, golden_id, payload in items:
                tid = str(target_id)
                h = payload_hash(payload)
                rows = live.get(tid, [])
                # a row being sent is never superseded: its result is recorded (or reconciled) first
                waiting = [oid for oid, _, status in rows if status != "sending"]
                if tid not in forced and (state.get(tid) == h or (tid, h) in rejected):
                    supersede += waiting  # desired state already reached: an older pending row is obsolete
                    continue
                if any(old_h == h for _, old_h, _ in rows):
                    continue
                supersede += waiting
                # drift: queued only because a pull saw the target lose what push_state says it holds
                inserts.append((target, entity, tid, golden_id, json_text(payload), h, "pending", 0, at, at,
                                "drift" if tid in forced and state.get(tid) == h else cause))
            for chunk in chunked(supersede, 500):
                conn.execute(push_outbox.update().where(push_outbox.c.id.in_(chunk))
                             .values(status="superseded", updated_at=now))
            # tuples to the driver's executemany on SQLite (insert_rows): SQLAlchemy's per-row processing of
            # eleven parameters cost about as much as planning the rows
            insert_rows(conn, push_outbox, _OUTBOX_INSERT, inserts)
            queued = len(inserts)
        # each target and entity is a part of the table of its own (see StatisticsKeeper)
        self.statistics_keeper(push_outbox).wrote(queued, {"target": target, "entity": entity})
        return queued

    def pending_pushes(self, target: str, limit: int | None = None) -> list[OutboxItem]:
        """Rows waiting to be sent (pending, or in error from an earlier attempt), oldest first."""
        q = (
            sa.select(*_OUTBOX_ITEM)
            .where(push_outbox.c.target == target, push_outbox.c.status.in_(("pending", "error")))
            .order_by(push_outbox.c.id)
        )
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [OutboxItem(*row) for row in conn.execute(q)]

    def holdings(self, target: str, source: str, target_ids: Sequence[str], entities: Iterable[str] | None = None
                 ) -> tuple[dict[str, dict], dict[str, tuple[str, dict]]]:
        """What the hub knows these target records hold: (the hub_state of their landing records in
        ``source``, where a connector reports one; the golden id and payload last pushed ok to each of the
        others). ``entities``: the outbox entities of these records (a pusher's batch), else any."""
        # a record's rows are searched by (target, entity, target_id), ix_outbox_target_record, and their status
        # is read off the rows: with "status = 'ok'" in the query SQLite searched (target, status) and read every
        # row pushed ok to the target for each batch, quadratic over a first sync's pushes (1M people: half the
        # samples of the call center's push, growing)
        pushed = push_outbox.c.target == target
        if entities is not None:
            pushed = sa.and_(pushed, push_outbox.c.entity.in_(sorted(set(entities))))
        states: dict[str, dict] = {}
        last: dict[str, tuple[str, dict]] = {}
        with self.engine.connect() as conn:
            for chunk in chunked(list(target_ids), 500):
                for sid, state in conn.execute(
                    sa.select(landing.c.source_id, landing.c.hub_state).where(
                        landing.c.source == source, landing.c.entity.in_(WRITABLE_ENTITIES),
                        landing.c.source_id.in_(chunk), landing.c.hub_state_hash.is_not(None))
                ):
                    states[sid] = state
                # the last payload pushed counts only where no landing record says what the target holds
                rest = [tid for tid in chunk if tid not in states]
                if not rest:
                    continue
                rows = conn.execute(
                    sa.select(push_outbox.c.id, push_outbox.c.status, push_outbox.c.target_id,
                              push_outbox.c.golden_id, push_outbox.c.payload)
                    .where(pushed, push_outbox.c.target_id.in_(rest))).all()
                for _, status, tid, gid, payload in sorted(rows, key=itemgetter(0)):  # the last push wins
                    if status == "ok":
                        last[tid] = (gid, payload)
        return states, last

    def drifted_records(self, target: str, entity: str, source: str,
                        since: tuple[datetime | None, datetime | None] | None = None) -> set[str]:
        """Target records whose hub fields, as the last pull of ``source`` saw them, differ from what the hub
        last wrote there (push_state.held_hash): changed or removed by someone else, or lost by the target.

        ``since`` (the newest ``landing.held_at`` and ``push_state.pushed_at`` when the last check ran, None
        where there was none; the push plan keeps them with its marks): only the records that can have
        drifted, or stayed drifted, since are checked — those whose hub fields a pull saw change or whose push
        state a push wrote after those times, and those with an outbox row waiting or refused (a drift found
        before and not yet repaired). Every other record compares as it did then, and then it was not drifted or
        its repair was queued and went through. None: every push state of the target (the join of all of them
        with their landing records, each plan, was the largest statement of an incremental sync). A pull
        committed while a plan takes its marks can be stamped before them (as for the plan's other marks): runs
        do not overlap under ``hub sync``'s lock."""
        ps, lnd, ob = push_state.c, landing.c, push_outbox.c
        q = (sa.select(ps.target_id)
             .join(landing, sa.and_(lnd.source == source, lnd.entity.in_(WRITABLE_ENTITIES),
                                    lnd.source_id == ps.target_id))
             .where(ps.target == target, ps.entity == entity, ps.held_hash.is_not(None),
                    lnd.hub_state_hash.is_not(None), lnd.hub_state_hash != ps.held_hash))
        with self.engine.connect() as conn:
            if since is None:
                return {r[0] for r in conn.execute(q)}
            held, pushed = since
            # a range of each time-led index (None: nothing then, every row since), source and target picked
            # here: with them in the query SQLite (unanalysed) preferred an equality on source and entity, which
            # reads every row of the source
            ids: set[str] = {sid for src, ent, sid in conn.execute(sa.select(lnd.source, lnd.entity, lnd.source_id)
                             .where(lnd.held_at > held if held is not None else lnd.held_at.is_not(None)))
                             if src == source and ent in WRITABLE_ENTITIES}
            ids.update(tid for tgt, ent, tid in conn.execute(sa.select(ps.target, ps.entity, ps.target_id).where(
                ps.pushed_at > pushed if pushed is not None else ps.pushed_at.is_not(None)))
                if tgt == target and ent == entity)
            ids.update(conn.execute(sa.select(ob.target_id).where(
                ob.target == target, ob.entity == entity, ob.status.in_((*LIVE_STATUSES, "rejected")))).scalars())
            ids.discard("")
            if len(ids) > DRIFT_BY_KEY_MAX:  # after a first sync's pushes, say: the one join reads less
                return {r[0] for r in conn.execute(q)}
            return {r[0] for r in select_in(conn, q, ps.target_id, ids)}

    def drifted_holdings(self, target: str, holdings: Mapping[str, dict | None]
                         ) -> dict[str, list[tuple[str, str, dict]]]:
        """For a target the hub cannot pull but can read whole (the PBX directory file): the records whose
        hub fields, as ``holdings`` (target id -> held view, None = not there) shows them, differ from what
        the hub last wrote (push_state.held_hash). Per entity, ``(target_id, golden_id, last payload pushed
        ok)`` to queue again — leaving out records with a live outbox row (that row writes them anyway)."""
        out: dict[str, list[tuple[str, str, dict]]] = {}
        with self.engine.connect() as conn:
            drifted = []
            for entity, tid, gid, held in conn.execute(
                sa.select(push_state.c.entity, push_state.c.target_id, push_state.c.golden_id, push_state.c.held_hash)
                .where(push_state.c.target == target, push_state.c.held_hash.is_not(None))
            ):
                seen = holdings.get(tid)
                if seen is None or payload_hash(seen) != held:
                    drifted.append((entity, tid, gid))
            for chunk in chunked(drifted, 500):
                ids = [tid for _, tid, _ in chunk]
                live = {r[0] for r in conn.execute(
                    sa.select(push_outbox.c.target_id).where(
                        push_outbox.c.target == target, push_outbox.c.target_id.in_(ids),
                        push_outbox.c.status.in_(("pending", "error", "sending"))))}
                last: dict[str, dict] = {}
                for tid, payload in conn.execute(
                    sa.select(push_outbox.c.target_id, push_outbox.c.payload)
                    .where(push_outbox.c.target == target, push_outbox.c.status == "ok",
                           push_outbox.c.target_id.in_(ids)).order_by(push_outbox.c.id)
                ):
                    last[tid] = payload
                for entity, tid, gid in chunk:
                    if tid not in live and tid in last:
                        out.setdefault(entity, []).append((tid, gid, last[tid]))
        return out

    def claim_pushes(self, target: str, token: str, limit: int, run_id: str | None = None, *,
                     after: int = 0) -> list[OutboxItem]:
        """Atomically claim up to ``limit`` waiting rows of ``target`` for the pusher ``token``: they move to
        'sending' before anything is sent, so two pushers never send the same row. ``after``: only rows of a
        higher id (a pusher walks on from its last claim, see ``run_push``).

        One UPDATE picks and flips the rows (on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets a concurrent
        claimer take the next rows instead of waiting; SQLite serialises writers), then the rows this token
        holds are read back."""
        by = push_outbox.c
        # a row this pusher already tried and recorded as 'error' waits for the next run
        retryable = sa.or_(by.claimed_by.is_(None), by.claimed_by != token)
        claimable = sa.or_(by.status == "pending", sa.and_(by.status == "error", retryable))
        # The waiting rows come from two walks of ix_outbox_pending (target, status, id), pending and retryable
        # error rows, each in id order. For the OR of `claimable` SQLite walked every row of the target (sent ones
        # too) and sorted the waiting ones, and PostgreSQL walked the primary key past every sent row: per claim,
        # so a push cost the square of its outbox.
        pending = sa.select(by.id).where(by.target == target, by.status == "pending", by.id > after)
        retry = sa.select(by.id).where(by.target == target, by.status == "error", retryable, by.id > after)
        if self.dialect == "sqlite":
            # a merge of the two walks: the same rows in the same order (SQLite serialises writers)
            waiting = sa.union_all(pending, retry).order_by("id").limit(limit)
        elif self.dialect == "postgresql":
            # each walk locks its rows as it goes and steps over rows another claimer holds (SKIP LOCKED inside
            # the walk: locking after the walk left a second claimer the first one's rows, all skipped, and
            # nothing); FOR UPDATE takes no UNION, so the walks are CTEs. Rows a walk locked beyond the first
            # `limit` stay waiting and are unlocked at commit.
            walks = [walk.order_by(by.id).limit(limit).with_for_update(skip_locked=True).cte(name)
                     for walk, name in ((pending, "pending_walk"), (retry, "retry_walk"))]
            mine = sa.union_all(*(sa.select(walk.c.id) for walk in walks)).subquery("mine")
            waiting = sa.select(mine.c.id).order_by(mine.c.id).limit(limit)
        else:
            waiting = (sa.select(by.id).where(by.target == target, claimable, by.id > after)
                       .order_by(by.id).limit(limit))
            if self.dialect in ("mysql", "mariadb"):
                # neither takes LIMIT in an IN subquery nor a subquery on the table being updated: a derived table
                # (materialised first) does both; the UPDATE re-checks `claimable` on the rows it locks
                waiting = sa.select(waiting.subquery("waiting").c.id)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                push_outbox.update()
                .where(push_outbox.c.id.in_(waiting.scalar_subquery()), claimable)
                .values(status="sending", claimed_by=token, claimed_at=now, run_id=run_id, updated_at=now)
            )
            rows = conn.execute(
                sa.select(*_OUTBOX_ITEM)
                .where(push_outbox.c.target == target, push_outbox.c.status == "sending", push_outbox.c.id > after,
                       push_outbox.c.claimed_by == token, push_outbox.c.claimed_at == now)
                .order_by(push_outbox.c.id)
            ).all()
        return [OutboxItem(*row) for row in rows]

    def take_over_in_doubt(self, target: str, token: str, run_id: str | None = None,
                           lease_seconds: float = CLAIM_LEASE_SECONDS) -> list[OutboxItem]:
        """Rows of ``target`` left 'sending' by a pusher that died between sending and recording: claimed
        for ``token`` (each only if its claim did not change meanwhile) so the caller can check what the
        target holds before sending any of them again."""
        with self.engine.connect() as conn:
            claims = conn.execute(
                sa.select(push_outbox.c.id, push_outbox.c.claimed_by, push_outbox.c.claimed_at)
                .where(push_outbox.c.target == target, push_outbox.c.status == "sending")
            ).all()
        now = _now()
        stale = [(oid, by) for oid, by, at in claims if by != token and claim_is_stale(by, at, now, lease_seconds)]
        if not stale:
            return []
        with self.engine.begin() as conn:
            for oid, by in stale:
                conn.execute(
                    push_outbox.update()
                    .where(push_outbox.c.id == oid, push_outbox.c.status == "sending",
                           push_outbox.c.claimed_by == by)
                    .values(claimed_by=token, claimed_at=now, run_id=run_id, updated_at=now)
                )
            rows = conn.execute(
                sa.select(*_OUTBOX_ITEM)
                .where(push_outbox.c.id.in_([oid for oid, _ in stale]), push_outbox.c.claimed_by == token)
                .order_by(push_outbox.c.id)
            ).all()
        return [OutboxItem(*row) for row in rows]

    def record_push_result(self, outbox_id: int, status: str, reason: str | None = None) -> None:
        """Log one row's outcome. 'ok'/'rejected' close the outbox row; 'error' keeps it for the next run."""
        self.record_push_results([(outbox_id, status, reason)])

    def record_push_results(
        self,
        outcomes: Iterable[tuple[int, str, str | None]],
        *,
        token: str | None = None,
        run_id: str | None = None,
        changes: Mapping[int, dict] | None = None,
        held: Mapping[int, dict | None] | None = None,
        held_source: str | None = None,
    ) -> int:
        """Record each row's outcome in the outbox and the push log (push_result), in one transaction.

        'ok'/'rejected' close a row; 'error' makes it wait for the next run. With ``token``, only rows that
        pusher still holds are recorded (another run may have taken over a stale claim). ``changes`` are the
        field-level before/after per row for the log. ``held`` is what the target holds once an ok row is
        applied (the connector's held view): its hash goes to push_state (the drift check compares pulls
        with it), and, with ``held_source``, onto the landing record of that source (the hub knows what it
        just wrote, before the next pull sees it). Returns the rows recorded.

        Statements are multi-row (executemany): recording costs a few statements per batch, not per row.
        """
        outcomes = list(outcomes)
        if not outcomes:
            return 0
        for _, status, _ in outcomes:
            if status not in ("ok", "rejected", "error"):
                raise ValueError(f"push status must be ok, rejected or error, not {status!r}")
        now = _now()
        with self.engine.begin() as conn:
            rows: dict[int, Any] = {}
            # the columns recording needs, not the payload: decoding every row's payload JSON cost more than
            # the writes below
            q = sa.select(*_RECORDED).where(push_outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)))
            if self.dialect == "postgresql":
                q = q.with_for_update()  # nobody takes these rows over while we record them
            for chunk in chunked([o[0] for o in outcomes], 500):
                for row in conn.execute(q, {"b_ids": list(chunk)}):
                    rows[row.id] = row
            missing = [oid for oid, _, _ in outcomes if oid not in rows]
            if missing:
                raise KeyError(f"no outbox row {missing[0]}")
            if token is not None:  # another pusher took a stale claim over: its run records that row
                outcomes = [o for o in outcomes if rows[o[0]].claimed_by == token and rows[o[0]].status == "sending"]
            if not outcomes:
                return 0
            at = bound_time(conn, now)
            done = _record_outbox(conn, token, [
                (status, reason, at, token if status == "error" else None, run_id or rows[oid].run_id, oid)
                for oid, status, reason in outcomes])
            if token is not None and self.engine.dialect.supports_sane_multi_rowcount and done != len(outcomes):
                # a claim changed hands between our read and write: record nothing; the rows stay in doubt
                # and the next run reconciles them against the target
                raise RuntimeError("outbox claims changed while recording push results")
            changed = changes or {}
            insert_rows(conn, push_result, _RESULT_COLUMNS, [
                (oid, rows[oid].target, rows[oid].target_id, status, reason, at, run_id or rows[oid].run_id,
                 rows[oid].attempts + 1, json_text(changed.get(oid)))  # None as JSON null, as the JSON type writes it
                for oid, status, reason in outcomes])
            # a create has no target id yet: its record arrives with the next pull and is then tracked
            ok = [rows[oid] for oid, status, _ in outcomes if status == "ok" and rows[oid].target_id]
            views = {row.id: (held or {}).get(row.id) for row in ok}
            hashes = {oid: None if view is None else payload_hash(view) for oid, view in views.items()}
            self._save_push_states(conn, ok, hashes, at)
            if held_source:
                _record_held(conn, held_source, [(json_text(views[row.id]), hashes[row.id], row.target_id)
                                                 for row in ok if views[row.id] is not None])
        # a first push fills push_state from empty, and each batch looks its records up there: unanalyzed,
        # PostgreSQL filtered every state of the target per 500 ids (130k states: 28 ms a lookup, 2.9 analyzed)
        # per target: the pushes run one target after another, and the second target's part of the table is
        # as new to the statistics as the whole table was to the first
        for target, n in Counter(row.target for row in ok).items():
            self.statistics_keeper(push_state).wrote(n, {"target": target})
        for target, n in Counter(rows[oid].target for oid, _, _ in outcomes).items():
            self.statistics_keeper(push_result).wrote(n, {"target": target})
        return len(outcomes)

    def _save_push_states(self, conn: Connection, rows: list[Any], held_hashes: Mapping[int, str | None],
                          at: Any) -> None:
        """push_state of each (target, entity, target id) = the payload just pushed ok (last one wins); ``at``
        from ``bound_time``."""
        latest = {(r.target, r.entity, r.target_id): r for r in rows}
        existing: set[tuple[str, str, str]] = set()
        for (target, entity), keys in _group_keys(latest).items():
            for chunk in chunked(keys, 500):
                existing.update((target, entity, tid) for (tid,) in conn.execute(
                    sa.select(push_state.c.target_id).where(push_state.c.target == target,
                                                            push_state.c.entity == entity,
                                                            push_state.c.target_id.in_(chunk))))
        values = [(r.golden_id, r.payload_hash, held_hashes.get(r.id), at, t, e, tid)
                  for (t, e, tid), r in latest.items()]
        execute_rows(conn, *_PUSH_STATE_UPDATE, [v for v in values if v[4:] in existing])
        insert_rows(conn, push_state, _PUSH_STATE_INSERT, [v[4:] + v[:4] for v in values if v[4:] not in existing])

    # -- golden ids -----------------------------------------------------------------------------------------

    def mint_golden_ids(self, conn: Connection, count: int, prefix: str = "G") -> list[str]:
        """Reserve ``count`` new golden ids inside the caller's transaction; ids are never reused."""
        if count <= 0:
            return []
        row = conn.execute(
            sa.select(golden_id_sequence.c.next_value).where(golden_id_sequence.c.name == "golden")
        ).first()
        start = row[0] if row else 1
        if row:
            conn.execute(
                golden_id_sequence.update()
                .where(golden_id_sequence.c.name == "golden")
                .values(next_value=start + count)
            )
        else:
            conn.execute(golden_id_sequence.insert().values(name="golden", next_value=start + count))
        return [f"{prefix}{n:09d}" for n in range(start, start + count)]



@compiles(sa.DateTime, "mysql")
@compiles(sa.DateTime, "mariadb")
def _mysql_datetime(type_: sa.DateTime, compiler: Any, **kw: Any) -> str:
    # MySQL's DATETIME keeps whole seconds: outbox claims are read back by their exact claim time, and
    # change marks compare stamps finer than a second. Microseconds, as SQLite and PostgreSQL keep them.
    return "DATETIME(6)"


@compiles(sa.Float, "mysql")
@compiles(sa.Float, "mariadb")
def _mysql_float(type_: sa.Float, compiler: Any, **kw: Any) -> str:
    # the migrations' Float columns (see REAL): a double, imported Dagster or not
    return "DOUBLE"

# --------------------------------------------------------------------------------------------------------------
# Engine and migrations


def _json_serializer(obj: Any) -> str:
    # JSON columns are serialised once, here: dates and decimals become strings on every backend; compact
    # separators (', ' and ': ' were ~10 % of a stored record)
    return _STORED(obj)


# Integers of 19 or more digits: orjson reads those beyond 64 bits as floats, json.loads exactly. A text with a
# run of 19 ASCII digits anywhere (in a string too: on the safe side) is read by json.loads. Found by a byte
# translation and a substring search: a regular expression over ~1 KB of mostly non-ASCII text cost three times
# the orjson decode itself. JSON text holds no raw NUL, so only a digit run reads as _LONG_RUN.
_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", b"\0" * 10)
_LONG_RUN = b"\0" * 19


def json_value(text: str | bytes | bytearray | memoryview | None) -> Any:
    """A JSON column's value as json.loads reads it, with orjson (about 3x faster) wherever the two agree: what
    orjson rejects (NaN, Infinity, lone surrogates) and long integers are read by json.loads. SQL NULL (None)
    stays None, for a column read as its text (``as_text``)."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            raw = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: only json.loads reads it
            return json.loads(text)
    else:
        raw = bytes(text)
    if _LONG_RUN not in raw.translate(_DIGITS_TO_NUL):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, infinities, ...: json.loads reads them
    return json.loads(text if isinstance(text, str) else raw.decode())


def json_text(obj: Any) -> str:
    """The text the store writes for a JSON column value (for a writer that encodes it itself): written by
    orjson wherever it writes the same text (``json_bytes``; a lone surrogate is kept as the standard encoder
    writes it). Recording 79k push results encoded their changes and held views: 2.4 s by json.dumps alone."""
    return json_bytes(obj, errors="surrogatepass").decode("utf-8", "surrogatepass")


# Floats orjson writes as json.dumps does (repr): outside this range repr switches to exponent notation at other
# points than orjson (1e-05 vs 0.00001), and orjson writes NaN / infinities as null.
_FLOAT_LOW, _FLOAT_HIGH = 1e-4, 1e16
# the leaf types orjson writes exactly as json.dumps does (public: the SQL ERP pull checks whole columns)
ORJSON_LEAVES = frozenset({str, int, bool, type(None)})
_STR = frozenset({str})
# a type orjson would write its own way (datetime, dataclass, str/int/dict subclass) raises instead
ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def orjson_exact(obj: Any) -> bool:
    """Does orjson write ``obj`` byte for byte as the store's ``json.dumps`` (``json_text``; with
    ``OPT_SORT_KEYS`` as ``canonical_json``)? True for trees of exactly dict (str keys) / list / tuple / str / int
    / bool / None and floats in the range above. Integers beyond 64 bits and lone surrogates make orjson raise
    (``json_bytes`` falls back). The types of a container's members are collected by ``set(map(type, ...))``
    (in C): a loop over every value in Python cost as much as the encoding it saves."""
    t = type(obj)
    if t is dict:
        if not set(map(type, obj)) <= _STR:
            return False
        members: Any = obj.values()
    elif t is list or t is tuple:
        members = obj
    elif t is float:
        return obj == 0.0 or _FLOAT_LOW <= abs(obj) < _FLOAT_HIGH
    else:
        return t in ORJSON_LEAVES
    if set(map(type, members)) <= ORJSON_LEAVES:
        return True
    for v in members:
        if type(v) not in ORJSON_LEAVES and not orjson_exact(v):
            return False
    return True


def json_bytes(obj: Any, *, sort_keys: bool = False, floatless: bool = False, errors: str = "strict") -> bytes:
    """``json_text(obj)`` (with ``sort_keys``: ``canonical_json(obj)``) as UTF-8, written by orjson (several
    times faster) wherever it writes the same bytes. ``floatless``: the caller knows ``obj`` holds no float
    orjson writes otherwise (none: a record of a float-free model; or only floats ``orjson_exact`` accepts: a
    value it walked already, a golden record whose only float is its rounded quality score), so orjson is tried
    without walking it — any other difference makes orjson raise under ``ORJSON_STRICT`` and the standard
    encoder writes it. ``errors``: how the standard encoder's
    text is encoded (``surrogatepass`` keeps a lone surrogate, as staged hashes always have)."""
    if floatless or orjson_exact(obj):
        try:
            return orjson.dumps(obj, option=ORJSON_STRICT | orjson.OPT_SORT_KEYS if sort_keys else ORJSON_STRICT)
        except TypeError:  # orjson.JSONEncodeError: beyond 64 bits, a lone surrogate, a type it writes otherwise
            pass
    return (canonical_json(obj) if sort_keys else _json_serializer(obj)).encode("utf-8", errors)


# The store's statements carry personal data (payloads, names, numbers): a failed statement's parameters must
# never reach an exception text (Dagster stores those) and SQLAlchemy never logs rows, whatever the root level.
SQL_PRIVACY: dict[str, Any] = {"hide_parameters": True}
if logging.getLogger("sqlalchemy.engine").level == logging.NOTSET:
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


# SQLite's page cache per connection (KiB; SQLite's default is 2,000 KiB): a sync's writes land on random
# pages of the big tables' B-trees, and with the default cache a page was read back and spilled to the WAL
# again for nearly every row. 2M rows inserted in random key order into a two-index table (600 MB):
# 31.9 / 33.2 s -> 24.6 s with 64 MiB (22.4 s with 256 MiB). At 100k people no stage measured differs (the
# tables fit the OS cache and the stages are CPU-bound in Python); the 1M run is where it should show. It fills only
# as pages are read, once per pooled connection.
SQLITE_CACHE_KIB = 65_536
# SQLite's page size for a new store (bytes; SQLite's default is 4,096). A golden customer's row (record and
# lineage JSON, ~2.5 KB) filled a 4 KB page alone, wasting 40 % of it; staged records and 360 views are ~1-2 KB.
# Measured on this machine: 100k people through `hub import` + matching + golden, store 944 -> 812 MB; the
# golden_customer table alone 395 -> 287 MB, its insert + commit (the WAL checkpoint) 2.2-2.9 -> 1.2-1.3 s;
# staging 200k people (1.1M landing rows, two workers): 8.7 -> 7.4 GB written, store 3.50 -> 3.05 GB, CPU the
# same (268 / 267 s). An existing store keeps the page size it was made with (only VACUUM changes it).
SQLITE_PAGE_SIZE = 16_384
# The tables among :names that autovacuum would vacuum for their inserts but will not (off for the server or the
# table): loaded in bulk with few dead rows since. Until a vacuum marks their pages all-visible, every count and
# every index-only read of them visits the rows themselves (1M people, autovacuum off: the staged records'
# counts and newest staging times, which the later stages take as fingerprints, read the 5 GB table each time,
# ~3 minutes of database time a full and an incremental sync; after a vacuum, 6.6 s on a warm cache, such a count
# read 1.8k pages instead of 654k). A vacuum after an insert-only load reads the table once and touches no index;
# a table with many dead rows (a stage that updated its rows) is left to the
# operator's vacuum: removing them walks every index (landing after staging: 4M dead rows, 7 indexes).
_UNVACUUMED_LOADS = sa.text(
    "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
    "WHERE s.schemaname = current_schema() AND s.relname = ANY(:names) "
    "AND (current_setting('autovacuum') = 'off' OR EXISTS (SELECT 1 FROM unnest(c.reloptions) o "
    "     WHERE lower(o) IN ('autovacuum_enabled=false', 'autovacuum_enabled=off', 'autovacuum_enabled=0'))) "
    "AND s.n_ins_since_vacuum >= GREATEST(:least, 0.2 * s.n_live_tup) "
    "AND s.n_dead_tup < 50 + 0.2 * s.n_live_tup")

# rows a pull or staging wrote before the store refreshes the table's statistics (Store.refresh_statistics)
ANALYZE_AFTER_ROWS = 5000


class StatisticsKeeper:
    """PostgreSQL: ANALYZE a table while a stage fills it, whenever the rows written since its last analysis
    reach as many as it held then (and ``ANALYZE_AFTER_ROWS``): a dozen analyses from empty to ten million
    rows. ``Store.refresh_statistics`` runs after a stage; a table that grows from empty inside one stage had no
    statistics until then, and its lookups were planned for an empty table: a first staging at 100k people
    searched each chunk's 500 record keys through (entity, staged_at) and read every staged customer, 237 ms a
    chunk against 4.7 ms through the primary key. Autovacuum would analyze it too, but asynchronously, and it
    may be off. Elsewhere nothing (SQLite's plans here come from its indexes).

    The same holds for a part of a table (a ``group``: landing's rows of one source and entity): a pull that
    fills a new part of a large table grows it by far less than the table held, but the statistics know the
    part as empty, so each page's lookup of its ids was planned for one row and walked every row of the part
    landed so far (a 1M first sync on PostgreSQL: the shop's customers landed at 10,000 records/s at first,
    1,500/s at 150k). A group is analyzed on the same rule, against the rows the planner expects it to hold."""

    def __init__(self, store: Store, table: sa.Table) -> None:
        self.store, self.table = store, table
        self.active = store.dialect == "postgresql"
        self._held = self._written = 0
        # per group (column, value pairs): [rows the planner expected it to hold at the last analysis, written since]
        self._groups: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        if self.active:
            with store.engine.connect() as conn:  # -1: never analyzed
                self._held = max(0, int(conn.execute(sa.text(
                    "SELECT reltuples FROM pg_class WHERE oid = to_regclass(:name)"),
                    {"name": table.name}).scalar() or 0))

    def wrote(self, rows: int, group: Mapping[str, Any] | None = None) -> None:
        """``rows`` rows of the table were written (and committed) since the last call; ``group``: all of them
        have these column values."""
        if not self.active:
            return
        self._written += rows
        due = self._written >= max(ANALYZE_AFTER_ROWS, self._held)
        if group:
            key = tuple(sorted(group.items()))
            part = self._groups.get(key)
            if part is None:
                part = self._groups[key] = [self._expected(group), 0]
            part[1] += rows
            due = due or part[1] >= max(ANALYZE_AFTER_ROWS, part[0])
        if due:
            self.store.refresh_statistics(self.table)
            self._held += self._written
            self._written = 0
            for part in self._groups.values():
                part[0] += part[1]
                part[1] = 0

    def _expected(self, group: Mapping[str, Any]) -> int:
        """The rows the planner expects the table to hold with ``group``'s values (its statistics, not a count)."""
        query = sa.select(sa.literal(1)).select_from(self.table).where(
            *(self.table.c[col] == value for col, value in group.items()))
        with self.store.engine.connect() as conn:
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])


def _make_engine(url: str, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, echo=echo, connect_args={"timeout": 60}, json_serializer=_json_serializer, json_deserializer=json_value, **SQL_PRIVACY
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            # before anything is written (switching to WAL writes the header): a no-op on an existing store
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            # WAL lets the Dagster UI / exports read while a run writes
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cur.close()

        return engine
    options: dict[str, Any] = {}
    if sa.engine.make_url(url).get_driver_name() == "psycopg2":
        # UPDATE / DELETE executemany in pages (psycopg2's execute_batch) instead of one round trip per row: a
        # pull's landing, the golden stage's xref and the pushes' outbox bookkeeping update rows by the
        # thousand (100k people on PostgreSQL: the incremental shop pull 51.6 s wall for 6.9 s CPU). 20k
        # rows updated by primary key: 2.25 -> 0.36 s. Such an executemany reports no row count then
        # (supports_sane_multi_rowcount is False; the one reader, Store.record_push_results, checks it).
        options["executemany_mode"] = "values_plus_batch"
    return sa.create_engine(url, echo=echo, pool_pre_ping=True, json_serializer=_json_serializer,
                            json_deserializer=json_value, **options, **SQL_PRIVACY)


MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None, url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (in place; safe to call on every open)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(engine)
    script = ScriptDirectory.from_config(cfg)

    def up_to_date() -> bool:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return revision == "head" and current == script.get_current_head()

    if up_to_date():
        return
    with _migration_lock(engine):  # two processes opening a new store at once: one migrates, one waits
        if not up_to_date():
            command.upgrade(cfg, revision)


MIGRATION_LOCK_KEY = int.from_bytes(b"hubmigr", "big")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    backend = engine.url.get_backend_name()
    database = engine.url.database
    if backend == "sqlite" and database and database != ":memory:":
        import fcntl

        fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the lock
    elif backend == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                conn.commit()
    else:
        yield


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
