"""`hub import FILE --source NAME --mapping M`: a CSV or XLSX file becomes a source like any other.

Spreadsheets as people send them are read without losing a row:

* **Encoding** — a byte-order mark decides (UTF-8, UTF-16 LE/BE); else UTF-8 when the file's non-ASCII lines
  are UTF-8; else the detector (charset-normalizer), preferring the legacy encoding of the mapping's country
  (GB18030 for CN, Big5 for TW/HK) when the detector finds it plausible. ``--encoding`` forces one. A row
  whose bytes do not decode (or are UTF-8 inside a legacy-encoded file) goes to quarantine with its raw
  bytes; the rest of the file is imported.
* **Structure** — the delimiter (``,`` ``;`` tab ``|``) is detected; a first row without any column name the
  mapping knows is refused (``--no-header --columns …`` reads a headerless file, ``--columns`` alone renames
  a header row); duplicate names are kept apart (``phone``, ``phone.2``); unnamed columns keep their values
  (``column_7``); rows with more cells than the header keep the extra ones (``_extra``) and are reported;
  an unterminated quote is reported and its line read on its own, so it cannot swallow the rows after it;
  a cell over Excel's own limit (32,767 characters) quarantines its row only. XLSX: every sheet (or
  ``--sheet``), merged cells copied into every cell they cover, dates as ISO dates, formulas as their cached
  values (a formula saved without one is reported).
* **Nothing silently lost** — every row read is staged, quarantined (with reasons) or skipped (empty, or an
  exact repeat of an earlier row); the sum is checked against the store, printed and kept in
  ``file_import``. A row without a key gets one derived from its content, so re-importing a re-sorted file
  changes nothing.
* **Formula injection** — cells exported by the hub with an escaping apostrophe (``'=…``) are read back
  without it; formula-like values are flagged ``text.formula_like`` by the mapping stage.

Exit codes: 0 every row staged or skipped for a stated reason; 1 some rows are in quarantine or the file has
structural problems (both listed); 2 the file or the options cannot be used — nothing was imported; 3 the
counts do not add up (a defect: the report says by how much).
"""

from __future__ import annotations

import base64
import codecs
import csv
import hashlib
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.standardise.text import is_formula_like, unescape_cell
from hub.store import LandingRecord, Store, chunked, file_import, payload_hash, quarantine, staged_record

KEY_CANDIDATES = ("record_id", "customer_id", "id")
ROW_FIELD = "_row"  # row number in the file: shown in reports, excluded from the payload hash
SHEET_FIELD = "_sheet"  # XLSX sheet name: like the row number, where the row was, not what it says
EXTRA_FIELD = "_extra"  # cells beyond the header's width
FILE_QUARANTINE_PREFIX = "file:"  # quarantine ids of rows refused before landing (decoding, size, duplicates)
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell: anything longer never came from a spreadsheet
PAGE = 1000
DELIMITERS = (",", ";", "\t", "|")
EXIT_OK, EXIT_ROWS, EXIT_UNUSABLE, EXIT_COUNTS = 0, 1, 2, 3
_REPORT_LIMIT = 50

# Legacy encodings Excel and WPS write by default, by the mapping's country.
REGIONAL_ENCODING = {"CN": "gb18030", "SG": "gb18030", "TW": "cp950", "HK": "big5hkscs", "MO": "big5hkscs",
                     "JP": "shift_jis", "KR": "euc_kr"}
_DETECT_CANDIDATES = ["utf_8", "gb18030", "big5", "cp1252", "shift_jis", "euc_kr"]
_CODEC_FOR = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "cp950", "ascii": "utf-8", "utf_8": "utf-8"}
_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_HEADER_JUNK_RE = re.compile("[\ufeff\u200b-\u200f\u2060\u00a0]")


class ImportFileError(ValueError):
    """The file as a whole cannot be used (not a row-level problem); nothing is imported."""


# --------------------------------------------------------------------------------------------------------------
# Reading: bytes -> rows


@dataclass(slots=True)
class FileRow:
    """One data row of the file. ``reason`` set: refused before landing (quarantined with ``detail``)."""

    number: int  # line (CSV) or row (XLSX) where the row starts, as a spreadsheet user counts
    cells: dict[str, Any]  # column -> non-empty text (``_extra`` -> list of extra cells)
    sheet: str | None = None
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.cells and self.reason is None

    @property
    def where(self) -> str:
        return f"{self.sheet}!row {self.number}" if self.sheet else f"row {self.number}"


@dataclass
class FileContent:
    """What was read from a file: rows plus how it was read and what was wrong with its structure."""

    file_format: str  # csv | xlsx
    rows: list[FileRow] = field(default_factory=list)
    encoding: str | None = None  # codec used (CSV)
    encoding_how: str = ""  # "byte-order mark", "detected", "forced", …
    delimiter: str | None = None
    columns: list[str] = field(default_factory=list)  # every column name in use (all sheets)
    unnamed: dict[str, str] = field(default_factory=dict)  # column_N -> where its header cell was empty
    sheet_columns: dict[str | None, list[str]] = field(default_factory=dict)  # per sheet (None: CSV)
    problems: list[str] = field(default_factory=list)  # structural problems: exit 1
    notes: list[str] = field(default_factory=list)  # how the file was read: informative


def _known_names(known: Iterable[str]) -> dict[str, str]:
    return {_header_key(k): k for k in known}


def _header_key(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _clean_header(raw: Any) -> str:
    text = _HEADER_JUNK_RE.sub("", str(raw) if raw is not None else "")
    return unicodedata.normalize("NFC", text).strip()


def header_names(raw: Sequence[Any], known: dict[str, str], where: str, content: FileContent) -> list[str]:
    """Column names for a header row: known names in their canonical spelling, empty ones as ``column_N``,
    repeated ones kept apart as ``name.2``, ``name.3``."""
    names: list[str] = []
    counts: Counter = Counter()
    firsts: dict[str, int] = {}
    for i, cell in enumerate(raw, start=1):
        name = _clean_header(cell)
        if not name:
            name = f"column_{i}"
            content.unnamed.setdefault(name, f"{where}, column {i}")
        else:
            name = known.get(_header_key(name), name)
        counts[name] += 1
        if counts[name] > 1:
            alias = f"{name}.{counts[name]}"
            while alias in firsts:  # a file with both "phone.2" and two "phone" columns
                counts[name] += 1
                alias = f"{name}.{counts[name]}"
            content.notes.append(f"{where}: duplicate column name {name!r} (columns {firsts[name]} and {i}): "
                                 f"both kept, the second as {alias!r}")
            name = alias
        firsts.setdefault(name, i)
        names.append(name)
    return names


def _check_header(names: list[str], known: dict[str, str], where: str) -> None:
    if not any(n in known.values() for n in names):
        expected = ", ".join(sorted(n for n in known.values() if not re.search(r"\.\d+$", n))[:12])
        raise ImportFileError(
            f"{where}: the first row holds no column name the mapping knows ({expected}, …) — it looks like "
            "data, not a header. A file without a header row: --no-header --columns NAME,NAME,… "
            "(one name per column); a header with other names: --columns NAME,NAME,… to rename it"
        )


def _cell_text(value: Any) -> str | None:
    """A spreadsheet cell as text: dates ISO, whole numbers without '.0', booleans TRUE/FALSE."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, datetime):
        text = value.date().isoformat() if value.time() == time.min else value.isoformat()
    elif isinstance(value, date | time):
        text = value.isoformat()
    elif isinstance(value, timedelta):
        text = str(value)
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e17 else format(value, ".15g")
    else:
        text = str(value)
    text = text.strip()
    return text or None


def _row_cells(values: Sequence[Any], names: list[str]) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """(cells, problems, oversized) for one row's values against the header names."""
    cells: dict[str, Any] = {}
    problems: list[str] = []
    oversized: dict[str, Any] = {}
    for name, value in zip(names, values, strict=False):
        text = _cell_text(value)
        if text is None:
            continue
        if "\x00" in text:
            text = text.replace("\x00", "")
            problems.append(f"NUL characters removed from column {name!r}")
            if not text.strip():
                continue
        if len(text) > MAX_CELL_CHARS:
            oversized[name] = {"length": len(text), "sha256": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()}
            text = text[:1000] + "…"
        cells[name] = unescape_cell(text)
    extra = [t for t in map(_cell_text, values[len(names):]) if t is not None]
    if extra:
        cells[EXTRA_FIELD] = [unescape_cell(t) for t in extra]
        problems.append(f"{len(values)} cells, the header has {len(names)}: the extra cells are kept as {EXTRA_FIELD}")
    return cells, problems, oversized


def _oversized_row(row: FileRow, oversized: dict[str, Any]) -> None:
    row.reason = "cell.oversized"
    row.detail = {"columns": oversized, "limit": MAX_CELL_CHARS}


# -- CSV --------------------------------------------------------------------------------------------------------


def decode_text(data: bytes, forced: str | None, region: str | None) -> tuple[str, str, str]:
    """(text, codec, how): the file decoded with undecodable bytes as lone surrogates (``surrogateescape``),
    so one bad row can be found and kept as bytes while the rest is read."""
    if forced:
        try:
            codec = codecs.lookup(forced).name
        except LookupError:
            raise ImportFileError(f"--encoding {forced!r}: unknown encoding") from None
        if codec in ("utf-8", "utf-8-sig"):
            codec = "utf-8"
            data = data.removeprefix(codecs.BOM_UTF8)
        elif codec == "utf-16":
            codec, data = _utf16_order(data)
        return data.decode(codec, "surrogateescape"), codec, "forced"
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "surrogateescape"), "utf-8", "byte-order mark"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec, body = _utf16_order(data)
        return body.decode(codec, "surrogateescape"), codec, "byte-order mark"
    head = data[:65536]
    if head and head.count(0) * 4 > len(head):  # UTF-16 without a BOM: every other byte of ASCII is NUL
        even = head[0::2].count(0)
        codec = "utf-16-be" if even > head[1::2].count(0) else "utf-16-le"
        return data.decode(codec, "surrogateescape"), codec, "detected (no byte-order mark)"
    good = bad = 0
    foreign: list[bytes] = []
    for line in data.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError:
            bad += 1
            if sum(map(len, foreign)) < 262_144:
                foreign.append(line)
    if bad == 0 or good > bad:  # UTF-8 (or ASCII); the few bad lines are quarantined
        return data.decode("utf-8", "surrogateescape"), "utf-8", "detected"
    codec = _detect(b"\n".join(foreign), region)
    return data.decode(codec, "surrogateescape"), codec, "detected"


def _utf16_order(data: bytes) -> tuple[str, bytes]:
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", data[2:]
    return "utf-16-le", data.removeprefix(codecs.BOM_UTF16_LE)


def _detect(sample: bytes, region: str | None) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample, cp_isolation=_DETECT_CANDIDATES))
    found = [_CODEC_FOR.get(m.encoding, m.encoding) for m in matches]
    preferred = REGIONAL_ENCODING.get((region or "").upper())
    # short samples are ambiguous (two hanzi in GBK also read as EUC-KR): the mapping's country breaks ties
    if preferred and any(codecs.lookup(f).name == codecs.lookup(preferred).name or
                         (preferred == "cp950" and f in ("cp950", "big5hkscs")) for f in found):
        return preferred
    if found:
        return codecs.lookup(found[0]).name
    # the detector gives up on samples with control characters: take the first that decodes the sample
    for codec in dict.fromkeys([preferred or "gb18030", "gb18030", "cp950", "shift_jis", "cp1252"]):
        try:
            sample.decode(codec)
        except UnicodeDecodeError:
            continue
        return codec
    return "utf-8"  # nothing fits: every non-UTF-8 row is quarantined with its bytes


def _physical_lines(text: str) -> list[str]:
    # only CR/LF end a line (str.splitlines would also split on \x0b, \x1c, \u2028 … inside cells)
    return _LINE_RE.findall(text)


def _delimiter(lines: list[str], known: dict[str, str], width: int | None) -> str:
    """The delimiter that splits the header into the most known column names (or, without a header, gives
    the most records of the given width); then the one on which most records agree about their width."""
    sample = lines[:100]

    def score(d: str) -> tuple[int, int, int]:
        try:
            records = [r for r in csv.reader(sample, delimiter=d) if any(c.strip() for c in r)]
        except csv.Error:
            return (0, 0, 0)
        widths = [len(r) for r in records if len(r) > 1]
        if not widths:
            return (0, 0, 0)
        common, agree = Counter(widths).most_common(1)[0]
        if width is not None:
            fits = sum(w == width for w in widths)
        else:
            fits = sum(_header_key(_clean_header(c)) in known for c in records[0])
        return (fits, agree, common)

    best = max(DELIMITERS, key=score)
    return best if score(best) > (0, 0, 0) else ","


class _Feed:
    """The file's physical lines for csv.reader, with a position that recovery can move."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _literal_cells(line: str, delimiter: str) -> list[str]:
    """One line read on its own: what the line of an unterminated quote most likely held (the cells before
    the stray quote as quoted, the rest split at the delimiters)."""
    cells = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
    if cells and delimiter in cells[-1]:
        cells = cells[:-1] + cells[-1].split(delimiter)
    return cells


def _swallowed(record: list[str], width: int, delimiter: str) -> bool:
    """A quoted value over several lines that is really an unterminated quote eating the rows after it."""
    # a legitimate multi-line value (an address over two lines) rarely holds many delimiters on one line;
    # swallowed rows hold about as many as the header
    need = max(1, width // 2)
    return any(ln.count(delimiter) >= need for cell in record if "\n" in cell or "\r" in cell
               for ln in re.split(r"\r\n|\r|\n", cell))


def read_csv(path: Path, data: bytes, *, known: dict[str, str], encoding: str | None, region: str | None,
             columns: list[str] | None, no_header: bool) -> FileContent:
    content = FileContent("csv")
    text, codec, how = decode_text(data, encoding, region)
    content.encoding, content.encoding_how = codec, how
    lines = _physical_lines(text)
    if not lines or not any(ln.strip() for ln in lines):
        raise ImportFileError(f"{path.name}: the file is empty")
    csv.field_size_limit(sys.maxsize)  # cells over the limit are quarantined per row below, not fatal
    delimiter = _delimiter(lines, known, len(columns) if no_header and columns else None)
    content.delimiter = delimiter
    feed = _Feed(lines)
    # strict: a quote that closes anywhere but before a delimiter or a line end is an error we recover from
    # (it is how an unterminated quote that ran into a later quoted cell shows)
    reader = csv.reader(feed, delimiter=delimiter, strict=True)
    names: list[str]
    if no_header:
        assert columns
        names = header_names(columns, known, "--columns", content)
    else:
        try:
            first = next(reader, [])
        except csv.Error:
            first, feed.pos = _literal_cells(lines[0], delimiter), 1
            reader = csv.reader(feed, delimiter=delimiter, strict=True)
        if _SURROGATE_RE.search("".join(first)):
            raise ImportFileError(f"{path.name}: the header row does not decode as {codec}; "
                                  "give the encoding with --encoding")
        names = header_names(first if columns is None else columns, known, "header", content)
        if columns is not None and len(columns) != len(first):
            raise ImportFileError(f"--columns names {len(columns)} columns but the header row has {len(first)}")
        _check_header(names, known, path.name)
    content.columns = list(names)
    content.sheet_columns[None] = list(names)
    width = len(names)
    while feed.pos < len(lines):
        start = feed.pos
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error:
            content.problems.append(f"line {start + 1}: unterminated or stray quote (the quoted value does not "
                                    "end before a delimiter): the line is read on its own, the lines after it "
                                    "as rows")
            record, feed.pos = _literal_cells(lines[start], delimiter), start + 1
            reader = csv.reader(feed, delimiter=delimiter, strict=True)
        if feed.pos - start > 1 and _swallowed(record, width, delimiter):
            content.problems.append(f"line {start + 1}: unterminated quote (it ran to line {feed.pos}): "
                                    "the line is read on its own, the lines after it as rows")
            record, feed.pos = _literal_cells(lines[start], delimiter), start + 1
            reader = csv.reader(feed, delimiter=delimiter, strict=True)
        content.rows.append(_csv_row(start + 1, record, names, codec, content, lines[start:feed.pos]))
    while content.rows and content.rows[-1].empty:  # trailing blank lines are not rows
        content.rows.pop()
    return content


def _csv_row(number: int, record: list[str], names: list[str], codec: str, content: FileContent,
             raw_lines: list[str]) -> FileRow:
    joined = "".join(raw_lines)
    if _SURROGATE_RE.search(joined):
        raw = joined.encode(codec, "surrogateescape")
        readable = [c.encode(codec, "surrogateescape").decode(codec, "replace") for c in record]
        cells, _, _ = _row_cells(readable, names)
        return FileRow(number, cells, reason="encoding.undecodable",
                       detail={"encoding": codec, "raw_base64": base64.b64encode(raw).decode("ascii")})
    if not codec.startswith(("utf-8", "utf-16")) and not joined.isascii():
        raw = joined.encode(codec, "surrogateescape")
        try:
            as_utf8 = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # valid UTF-8 with non-ASCII in a GB18030 / Big5 file: a row pasted from elsewhere
            record = next(csv.reader(_physical_lines(as_utf8), delimiter=content.delimiter or ","), [])
            cells, _, _ = _row_cells(record, names)
            return FileRow(number, cells, reason="encoding.mixed",
                           detail={"encoding": codec, "raw_base64": base64.b64encode(raw).decode("ascii")})
    cells, problems, oversized = _row_cells(record, names)
    content.problems.extend(f"line {number}: {p}" for p in problems)
    row = FileRow(number, cells)
    if oversized:
        _oversized_row(row, oversized)
    return row


# -- XLSX -------------------------------------------------------------------------------------------------------


def read_xlsx(path: Path, *, known: dict[str, str], sheet: str | None, columns: list[str] | None,
              no_header: bool) -> FileContent:
    from openpyxl import load_workbook

    content = FileContent("xlsx")
    try:
        book = load_workbook(path, data_only=True)  # cached values of formulas; full mode knows merged cells
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - any parser error means the file is unreadable
        raise ImportFileError(f"{path.name}: not a readable XLSX file ({type(exc).__name__})") from exc
    try:
        sheets = book.worksheets
        if sheet is not None:
            sheets = [ws for ws in sheets if ws.title == sheet]
            if not sheets:
                raise ImportFileError(f"--sheet {sheet!r}: no such sheet (sheets: "
                                      f"{', '.join(ws.title for ws in book.worksheets)})")
        named = [ws.title for ws in sheets]
        for ws in sheets:
            _read_sheet(ws, formulas[ws.title], content, known=known, columns=columns, no_header=no_header,
                        label=ws.title if len(book.worksheets) > 1 else None, file_name=path.name)
        if not any(not r.empty for r in content.rows) and not content.columns:
            raise ImportFileError(f"{path.name}: no sheet holds any data ({', '.join(named)})")
    finally:
        book.close()
        formulas.close()
    return content


def _read_sheet(ws: Any, formula_ws: Any, content: FileContent, *, known: dict[str, str],
                columns: list[str] | None, no_header: bool, label: str | None, file_name: str) -> None:
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    merged = list(ws.merged_cells.ranges)
    for rng in merged:  # a merged range shows its top-left value in every cell it covers
        value = ws.cell(rng.min_row, rng.min_col).value
        for r in range(rng.min_row, rng.max_row + 1):
            while len(grid) < r:
                grid.append([])
            row = grid[r - 1]
            row.extend([None] * (rng.max_col - len(row)))
            for c in range(rng.min_col, rng.max_col + 1):
                row[c - 1] = value
    while grid and all(_cell_text(v) is None for v in grid[-1]):
        grid.pop()
    where = f"sheet {ws.title!r}"
    if not grid:
        content.notes.append(f"{where} is empty")
        return
    if merged:
        content.notes.append(f"{where}: {len(merged)} merged cell range(s): the value is read into every cell")
    _note_uncached_formulas(formula_ws, grid, where, content)
    if no_header:
        assert columns
        names = header_names(columns, known, "--columns", content)
        body, first_number = grid, 1
    else:
        head = grid[0] if columns is None else columns
        names = header_names(head, known, where, content)
        if columns is not None and len(columns) != len(grid[0]):
            raise ImportFileError(f"--columns names {len(columns)} columns but {where} has {len(grid[0])}")
        _check_header(names, known, f"{file_name} {where}")
        body, first_number = grid[1:], 2
    content.columns.extend(n for n in names if n not in content.columns)
    content.sheet_columns[label] = list(names)
    for offset, values in enumerate(body):
        number = first_number + offset
        cells, problems, oversized = _row_cells(values, names)
        content.problems.extend(f"{where} row {number}: {p}" for p in problems)
        row = FileRow(number, cells, sheet=label)
        if oversized:
            _oversized_row(row, oversized)
        content.rows.append(row)


def _note_uncached_formulas(formula_ws: Any, grid: list[list[Any]], where: str, content: FileContent) -> None:
    missing: list[str] = []
    for r, row in enumerate(formula_ws.iter_rows(), start=1):
        for cell in row:
            if getattr(cell, "data_type", None) != "f":
                continue
            c = cell.column
            value = grid[r - 1][c - 1] if r <= len(grid) and c <= len(grid[r - 1]) else None
            if value is None:
                missing.append(f"{cell.column_letter}{r}")
    if missing:
        content.problems.append(
            f"{where}: {len(missing)} formula cell(s) saved without a calculated value, read as empty "
            f"({', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}); open and save the file in Excel "
            "or WPS to store the values"
        )


def read_file(path: Path, *, known: Iterable[str], encoding: str | None = None, region: str | None = None,
              no_header: bool = False, columns: Sequence[str] | None = None,
              sheet: str | None = None) -> FileContent:
    """Read a CSV/TSV or XLSX file into rows (see the module docstring for what is detected and how)."""
    if no_header and not columns:
        raise ImportFileError("--no-header needs --columns NAME,NAME,… (one name per column)")
    cols = [c.strip() for c in columns] if columns is not None else None
    names = _known_names(known)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        if encoding:
            raise ImportFileError("--encoding applies to CSV files; XLSX files are always Unicode")
        return read_xlsx(path, known=names, sheet=sheet, columns=cols, no_header=no_header)
    if suffix == ".xls":
        raise ImportFileError(f"{path.name}: the old binary Excel format (.xls) is not read; "
                              "save it as .xlsx or CSV in Excel or WPS")
    if suffix not in (".csv", ".txt", ".tsv"):
        raise ImportFileError(f"{path.name}: unsupported file type {suffix!r} (CSV, TSV or XLSX)")
    if sheet is not None:
        raise ImportFileError("--sheet applies to XLSX files")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path.name}: cannot read the file ({exc.strerror})") from None
    return read_csv(path, data, known=names, encoding=encoding, region=region, columns=cols,
                    no_header=no_header)


def read_rows(path: Path, **options: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, {column: value}) for every non-empty data row that decoded — for quick looks and tests."""
    for row in read_file(path, **options).rows:
        if not row.empty and row.reason is None:
            yield row.number, row.cells


# --------------------------------------------------------------------------------------------------------------
# Importing: rows -> landing, quarantine, staging; the accounting


@dataclass
class RowError:
    row: str  # where: "row 5" / "Sheet2!row 5"
    source_id: str
    reasons: list[str]
    number: int = 0


@dataclass
class ImportStats:
    file_name: str = ""
    file_format: str = ""
    encoding: str | None = None
    encoding_how: str = ""
    delimiter: str | None = None
    rows: int = 0  # rows read (data rows, blank ones between them included)
    staged: int = 0
    quarantined: int = 0
    skipped: Counter = field(default_factory=Counter)  # why -> rows
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    keyless: int = 0
    formula_like: int = 0  # rows with a cell a spreadsheet would run as a formula
    key: str | None = None
    unread_columns: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def unaccounted(self) -> int:
        return self.rows - self.staged - self.quarantined - self.skipped_total

    @property
    def exit_code(self) -> int:
        if self.unaccounted:
            return EXIT_COUNTS
        return EXIT_ROWS if self.quarantined or self.problems else EXIT_OK

    def report(self, limit: int = _REPORT_LIMIT) -> str:
        how = f"{self.file_format.upper()}"
        if self.encoding:
            how += f", encoding {self.encoding.upper()} ({self.encoding_how})"
        if self.delimiter:
            how += f", delimiter {self.delimiter!r}"
        lines = [f"{self.file_name}: {how}"]
        lines += [f"  {n}" for n in self.notes[:limit]]
        if self.unread_columns:
            lines.append("  columns the mapping does not read (kept in the raw record): "
                         + ", ".join(self.unread_columns))
        if self.keyless:
            lines.append(f"  {self.keyless} row(s) without {self.key or 'a key column'}: keyed by their content "
                         "(re-importing the same rows, in any order, changes nothing)")
        if self.formula_like:
            lines.append(f"  {self.formula_like} row(s) hold values a spreadsheet would run as formulas: flagged "
                         "text.formula_like, escaped on every export")
        for p in self.problems[:limit]:
            lines.append(f"  problem: {p}")
        if len(self.problems) > limit:
            lines.append(f"  … and {len(self.problems) - limit} more problems")
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        lines.append(
            f"{self.rows} rows read = {self.staged} staged + {self.quarantined} quarantined + "
            f"{self.skipped_total} skipped{f' ({skipped})' if skipped else ''}; "
            f"landing: {self.new} new, {self.changed} changed, {self.unchanged} unchanged"
        )
        for err in self.errors[:limit]:
            lines.append(f"  {err.row} ({err.source_id}): {', '.join(err.reasons)}")
        if len(self.errors) > limit:
            lines.append(f"  … and {len(self.errors) - limit} more rows in quarantine")
        if self.unaccounted:
            lines.append(f"COUNTS DO NOT ADD UP: {self.unaccounted:+d} rows unaccounted for (a defect: please "
                         "report it with this output)")
        return "\n".join(lines)


def content_key(cells: dict[str, Any]) -> str:
    """A key from the row's content, not its position: the same row anywhere in the file gets the same key."""
    return "row-" + payload_hash(cells)[:16]


def _repeats_header(cells: dict[str, Any]) -> bool:
    """A row that repeats the header (files concatenated with their headers)."""
    return len(cells) > 1 and EXTRA_FIELD not in cells and all(
        isinstance(v, str) and _header_key(v) == _header_key(re.sub(r"\.\d+$", "", k)) for k, v in cells.items())


def import_records(
    store: Store,
    path: Path,
    *,
    source: str,
    mapping: str,
    key: str | None = None,
    encoding: str | None = None,
    no_header: bool = False,
    columns: Sequence[str] | None = None,
    sheet: str | None = None,
    workers: int = 1,
) -> ImportStats:
    """Land the file's rows as ``source``'s records and stage them (``workers``: the staging processes, as
    ``hub.staging.stage_pending`` takes them)."""
    from hub.mappings import load_mapping
    from hub.staging import stage_pending

    started = datetime.now(UTC).replace(tzinfo=None)
    mapper = load_mapping(mapping)
    entity = mapper.entities[0]
    sample = mapper.spec.entities[entity].sample
    read_names = set(sample) if isinstance(sample, dict) else set()
    known = read_names | set(KEY_CANDIDATES)
    content = read_file(path, known=known, encoding=encoding, region=mapper.spec.default_country,
                        no_header=no_header, columns=columns, sheet=sheet)
    if key is not None and key not in content.columns:
        raise ImportFileError(f"--key {key!r}: no such column (columns: {', '.join(content.columns)})")
    # the key column: --key, else per sheet the first of record_id / customer_id / id it has
    keys = {sh: key or next((c for c in KEY_CANDIDATES if c in cols), None)
            for sh, cols in content.sheet_columns.items()}
    key = key or next((k for k in keys.values() if k), None)
    stats = ImportStats(file_name=path.name, file_format=content.file_format, encoding=content.encoding,
                        encoding_how=content.encoding_how, delimiter=content.delimiter, key=key,
                        problems=content.problems, notes=content.notes)
    used = {c for r in content.rows for c in r.cells}
    stats.unread_columns = [c for c in content.columns if c in used and c not in known]
    stats.notes += [f"{where} has no name: its values are kept as {name!r}"
                    for name, where in content.unnamed.items() if name in used]
    file_hash = hashlib.sha256(path.read_bytes()).hexdigest()

    seen: dict[str, tuple[FileRow, str]] = {}
    landed: dict[str, FileRow] = {}
    refused: dict[str, FileRow] = {}
    page: list[LandingRecord] = []
    for row in content.rows:
        stats.rows += 1
        if row.empty:
            stats.skipped["empty row"] += 1
            continue
        if row.reason is not None:
            qid = f"{FILE_QUARANTINE_PREFIX}{row.reason}-{payload_hash([row.cells, row.detail])[:16]}"
            if qid in refused:
                stats.skipped["exact repeat of an earlier row"] += 1
            else:
                refused[qid] = row
            continue
        if _repeats_header(row.cells):
            stats.skipped["repeated header row"] += 1
            continue
        if any(is_formula_like(v) for v in row.cells.values()):
            stats.formula_like += 1
        h = payload_hash(row.cells)
        row_key = keys.get(row.sheet)
        sid = str(row.cells.get(row_key) or "") if row_key else ""
        if not sid:
            sid = "row-" + h[:16]  # = content_key(row.cells)
            stats.keyless += 1 if row_key else 0
        if sid in seen:
            first, first_hash = seen[sid]
            if first_hash == h:
                stats.skipped["exact repeat of an earlier row"] += 1
                continue
            row.reason, row.detail = "key.duplicate", {"first": first.where}
            refused[f"{FILE_QUARANTINE_PREFIX}{sid}#dup-{h[:12]}"] = row
            continue
        seen[sid] = (row, h)
        landed[sid] = row
        payload = {**row.cells, ROW_FIELD: row.number}
        if row.sheet:
            payload[SHEET_FIELD] = row.sheet
        # where the row is in the file is not content: moving it is not a change
        page.append(LandingRecord(sid, payload, h))
        if len(page) >= PAGE:
            _land(store, source, entity, page, file_hash, stats)
            page = []
    _land(store, source, entity, page, file_hash, stats)
    _quarantine_refused(store, source, entity, path.name, file_hash, refused)
    # the accounting needs where each landed row was, not its cells: the file's rows are let go before staging
    # (forked staging workers copy the pages of whatever this process holds that they allocate beside)
    placed = {sid: (row.where, row.number) for sid, row in landed.items()}
    del content, seen, landed, page
    stage_pending(store, {mapping: mapper}, {source: {"mapping": mapping}}, workers=workers)
    _account(store, mapper, source, entity, placed, refused, stats)
    _record_run(store, stats, source=source, mapping=mapping, file_hash=file_hash, started=started)
    return stats


def _land(store: Store, source: str, entity: str, page: list[LandingRecord], file_hash: str,
          stats: ImportStats) -> None:
    if not page:
        return
    counts = store.land_page(source, entity, page, {"file_sha256": file_hash})
    stats.new += counts.new
    stats.changed += counts.changed
    stats.unchanged += counts.unchanged


def _quarantine_refused(store: Store, source: str, entity: str, file_name: str, file_hash: str,
                        refused: dict[str, FileRow]) -> None:
    """Rows refused before landing go straight to quarantine (with reason, row and raw bytes where the
    bytes were the problem). Entries from an earlier import of this file name that the file no longer
    produces are removed: the corrected file clears them."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.begin() as conn:
        old = conn.execute(
            sa.select(quarantine.c.id, quarantine.c.source_id, quarantine.c.detail).where(
                quarantine.c.source == source, quarantine.c.entity == entity,
                quarantine.c.source_id.like(f"{FILE_QUARANTINE_PREFIX}%"))
        ).all()
        stale = [qid for qid, sid, detail in old
                 if (detail or {}).get("file") == file_name or sid in refused]
        for part in chunked(stale, 500):
            conn.execute(quarantine.delete().where(quarantine.c.id.in_(part)))
        rows = [
            {"source": source, "entity": entity, "source_id": qid, "reasons": [row.reason],
             "detail": {"file": file_name, "file_sha256": file_hash, "row": row.number, "sheet": row.sheet,
                        **row.detail},
             "payload": {**row.cells, ROW_FIELD: row.number}, "payload_hash": payload_hash(row.cells),
             "quarantined_at": now}
            for qid, row in refused.items()
        ]
        if rows:
            conn.execute(quarantine.insert(), rows)


def _account(store: Store, mapper: Any, source: str, entity: str, landed: dict[str, tuple[str, int]],
             refused: dict[str, FileRow], stats: ImportStats) -> None:
    """Count from the store, not from intentions: staged = rows with a staged record now, quarantined =
    rows with a quarantine entry now. Anything else is unaccounted for. ``landed``: per landed row's id where
    it was (``FileRow.where``, ``FileRow.number``)."""
    target = next((t for t in mapper.targets[entity] if t.source_id is None and not t.optional), None)
    prefix = target.source_id_prefix if target else ""
    staged_keys: set[str] = set()
    held: dict[str, list[str]] = {}
    with store.engine.connect() as conn:
        sids = sorted(landed)
        for part in chunked(sids, 500):
            if target is not None:
                keys = [f"{source}:{prefix}{s}" for s in part]
                staged_keys.update(conn.execute(
                    sa.select(staged_record.c.record_key).where(
                        staged_record.c.entity == target.entity, staged_record.c.record_key.in_(keys))
                ).scalars())
            for sid, reasons in conn.execute(
                sa.select(quarantine.c.source_id, quarantine.c.reasons).where(
                    quarantine.c.source == source, quarantine.c.entity == entity, quarantine.c.source_id.in_(part))
            ):
                held[sid] = list(reasons or [])
        for part in chunked(sorted(refused), 500):
            for sid, reasons in conn.execute(
                sa.select(quarantine.c.source_id, quarantine.c.reasons).where(
                    quarantine.c.source == source, quarantine.c.entity == entity, quarantine.c.source_id.in_(part))
            ):
                held[sid] = list(reasons or [])
    for sid, (where, number) in landed.items():
        if sid in held:
            stats.quarantined += 1
            stats.errors.append(RowError(where, sid, held[sid], number))
        elif target is None or f"{source}:{prefix}{sid}" in staged_keys:
            stats.staged += 1
    for qid, row in refused.items():
        if qid in held:
            stats.quarantined += 1
            reasons = held[qid]
            if row.reason == "key.duplicate":
                reasons = [f"key.duplicate (first at {row.detail.get('first')})"]
            elif row.reason == "cell.oversized":
                cols = row.detail.get("columns", {})
                sizes = ", ".join(f"{c}: {v['length']:,} characters" for c, v in cols.items())
                reasons = [f"cell.oversized ({sizes}; the limit is {MAX_CELL_CHARS:,})"]
            elif row.reason and row.reason.startswith("encoding."):
                reasons = [f"{row.reason} (not {row.detail.get('encoding')}; raw bytes kept in quarantine)"]
            shown = str(row.cells.get(stats.key) or "") if stats.key else ""
            stats.errors.append(RowError(row.where, shown or qid.removeprefix(FILE_QUARANTINE_PREFIX), reasons,
                                         row.number))
    stats.errors.sort(key=lambda e: (e.row.rpartition("!")[0], e.number))


def _record_run(store: Store, stats: ImportStats, *, source: str, mapping: str, file_hash: str,
                started: datetime) -> None:
    with store.begin() as conn:
        conn.execute(file_import.insert().values(
            source=source, mapping=mapping, file_name=stats.file_name[:255], file_sha256=file_hash,
            file_format=stats.file_format, encoding=stats.encoding, rows_read=stats.rows, staged=stats.staged,
            quarantined=stats.quarantined, skipped=stats.skipped_total, skipped_reasons=dict(stats.skipped),
            problems=stats.problems[:1000], exit_code=stats.exit_code, started_at=started,
            finished_at=datetime.now(UTC).replace(tzinfo=None),
        ))


def import_file(store: Store, path: Path, *, source: str, mapping: str, key: str | None = None,
                encoding: str | None = None, no_header: bool = False, columns: Sequence[str] | None = None,
                sheet: str | None = None, workers: int = 1) -> int:
    """CLI entry: prints the report; returns the exit code (0, 1, 2 or 3: see the module docstring)."""
    from hub.mappings import MappingError

    if not path.is_file():
        print(f"hub import: {path}: no such file", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        stats = import_records(store, path, source=source, mapping=mapping, key=key, encoding=encoding,
                               no_header=no_header, columns=columns, sheet=sheet, workers=workers)
    except (ImportFileError, MappingError) as exc:
        print(f"hub import: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(stats.report())
    return stats.exit_code
