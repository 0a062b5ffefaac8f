"""`hub import FILE --source NAME --mapping M`: a CSV or XLSX file becomes a source like any other.

Every row is landed (payload = the row's non-empty cells, plus its row number for error reports) under
``source = NAME`` and staged with mapping ``M``; a row that fails a required rule is reported with its row
number and reasons and kept in quarantine — nothing is silently dropped. The record key is the ``--key``
column (default: the first of record_id / customer_id / id present), else a hash of the row's content, so
re-importing the same file changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.store import LandingRecord, Store, payload_hash, quarantine

KEY_CANDIDATES = ("record_id", "customer_id", "id")
ROW_FIELD = "_row"  # row number in the file: shown in reports, excluded from the payload hash
PAGE = 1000


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not a row-level problem)."""


@dataclass
class RowError:
    row: int
    source_id: str
    reasons: list[str]


@dataclass
class ImportStats:
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    staged: int = 0
    quarantined: int = 0
    errors: list[RowError] = field(default_factory=list)

    def report(self, limit: int = 50) -> str:
        lines = [
            f"{self.rows} rows read: {self.new} new, {self.changed} changed, {self.unchanged} unchanged; "
            f"{self.staged} staged, {self.quarantined} in quarantine"
        ]
        for err in self.errors[:limit]:
            lines.append(f"  row {err.row} ({err.source_id}): {', '.join(err.reasons)}")
        if len(self.errors) > limit:
            lines.append(f"  … and {len(self.errors) - limit} more rows with errors")
        return "\n".join(lines)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    text = str(value).strip()
    return text or None


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet user counts it, {column: non-empty value}) for every data row."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any parser error means the file is unreadable
            raise ImportFileError(f"{path}: not a readable XLSX file ({type(exc).__name__})") from exc
        rows = book.active.iter_rows(values_only=True)
        header = [(_clean(h) or "") for h in next(rows, ())]
        if not any(header):
            raise ImportFileError(f"{path}: the first row must hold column names")
        for number, values in enumerate(rows, start=2):
            row = {h: v for h, v in zip(header, map(_clean, values), strict=False) if h and v is not None}
            if row:
                yield number, row
        book.close()
        return
    if suffix not in (".csv", ".txt", ".tsv"):
        raise ImportFileError(f"{path}: unsupported file type {suffix!r} (CSV or XLSX)")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            handle.seek(0)
            # the header line decides the delimiter: spreadsheets export ',' or ';' (locale) or tabs
            delimiter = max(",;\t|", key=first.count) if first else ","
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip() for h in next(reader, [])]
            if not any(header):
                raise ImportFileError(f"{path}: the first line must hold column names")
            for values in reader:
                number = reader.line_num
                row = {h: v for h, v in zip(header, map(_clean, values), strict=False) if h and v is not None}
                if len(values) > len(header):
                    row["_extra_cells"] = str(len(values) - len(header))
                if row:
                    yield number, row
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a readable CSV file ({exc})") from exc


def _row_id(row: dict[str, str], key: str | None) -> str | None:
    if key:
        return row.get(key)
    return "row-" + payload_hash(row)[:16]


def import_records(
    store: Store, path: Path, *, source: str, mapping: str, key: str | None = None
) -> ImportStats:
    from hub.mappings import load_mapping
    from hub.staging import stage_pending

    mapper = load_mapping(mapping)
    entity = mapper.entities[0]
    ctx = mapper.context(source)
    rows = list(read_rows(path))
    if key is None and rows:
        present = set().union(*(r.keys() for _, r in rows))
        key = next((c for c in KEY_CANDIDATES if c in present), None)
    stats = ImportStats(rows=len(rows))
    seen: dict[str, int] = {}
    page: list[LandingRecord] = []
    duplicates: list[tuple[int, str, dict]] = []
    file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
    for number, row in rows:
        sid = _row_id(row, key)
        if not sid:
            sid = f"row-{number}"
            stats.errors.append(RowError(number, sid, [f"required.key_missing ({key})"]))
        elif sid in seen:
            duplicates.append((number, sid, row))
            stats.errors.append(RowError(number, sid, [f"key.duplicate (first at row {seen[sid]})"]))
            continue
        seen[sid] = number
        outcome = mapper.map(entity, sid, row, ctx)
        if outcome.reasons:
            stats.errors.append(RowError(number, sid, outcome.reasons))
        payload = {**row, ROW_FIELD: number}
        # the row number is not content: moving a row in the file is not a change
        page.append(LandingRecord(sid, payload, payload_hash(row)))
        if len(page) >= PAGE:
            _land(store, source, entity, page, file_hash, stats)
            page = []
    _land(store, source, entity, page, file_hash, stats)
    _quarantine_duplicates(store, source, entity, duplicates)
    staging = stage_pending(store, {mapping: mapper}, {source: {"mapping": mapping}})
    stats.staged = staging.staged
    with store.engine.connect() as conn:
        stats.quarantined = conn.execute(
            sa.select(sa.func.count()).select_from(quarantine).where(quarantine.c.source == source)
        ).scalar_one()
    stats.errors.sort(key=lambda e: e.row)
    return stats


def _land(store: Store, source: str, entity: str, page: list[LandingRecord], file_hash: str,
          stats: ImportStats) -> None:
    if not page:
        return
    counts = store.land_page(source, entity, page, {"file_sha256": file_hash})
    stats.new += counts.new
    stats.changed += counts.changed
    stats.unchanged += counts.unchanged


def _quarantine_duplicates(store: Store, source: str, entity: str, rows: list[tuple[int, str, dict]]) -> None:
    """A second row with the same key cannot be landed beside the first: keep it in quarantine instead."""
    if not rows:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.begin() as conn:
        for number, sid, row in rows:
            qid = f"{sid}#row{number}"
            conn.execute(quarantine.delete().where(
                quarantine.c.source == source, quarantine.c.entity == entity, quarantine.c.source_id == qid))
            conn.execute(quarantine.insert().values(
                source=source, entity=entity, source_id=qid, reasons=["key.duplicate"],
                detail={"row": number}, payload=row, payload_hash=payload_hash(row), quarantined_at=now))


def import_file(store: Store, path: Path, *, source: str, mapping: str, key: str | None = None) -> int:
    """CLI entry: prints the row-level report; exit 1 when any row went to quarantine, 2 if unreadable."""
    from hub.mappings import MappingError

    if not path.exists():
        print(f"hub import: {path}: no such file", file=sys.stderr)
        return 2
    try:
        stats = import_records(store, path, source=source, mapping=mapping, key=key)
    except (ImportFileError, MappingError) as exc:
        print(f"hub import: {exc}", file=sys.stderr)
        return 2
    print(stats.report())
    return 1 if stats.errors else 0
