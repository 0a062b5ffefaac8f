"""Asterisk CDR connector: tails ``Master.csv`` (cdr_csv format) in a drop folder, and writes the PBX's
caller-lookup directory back into the same folder.

Pull: ``Master.csv`` has no header; 16, 18 or 21 columns depending on ``loguniqueid``/``loguserfield``/
``newcdrcolumns``. The cursor keeps a byte offset per file, keyed by device+inode with a fingerprint of the
file's first bytes, so a rename-rotation (Master.csv -> Master.csv.1) finishes the old file from where we
stopped and starts the new one at 0; a truncation (copytruncate) or an inode reused by a new file restarts at
0 — re-read rows keep their source_id and land as unchanged. A partial last line stays for the next read.

Push (target ``callcenter``): upserts rows of ``directory.csv`` (e164, golden_id, display_name, value_tier,
segment, consent_phone, consent_sms) and replaces the file atomically, so the PBX never reads a half-written
directory. Cells a spreadsheet would run as formulas are written with a leading apostrophe (OWASP) and read back
without it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.connectors.base import Page, PushOutcome, held_value, landing_record, read_complete_lines, removal
from hub.standardise.text import escape_cell, unescape_cell
from hub.store import LandingRecord, OutboxItem

BASE_COLUMNS: tuple[str, ...] = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)
NEW_COLUMNS: tuple[str, ...] = ("peeraccount", "linkedid", "sequence")
# Column layouts by count (cdr_csv appends uniqueid, then userfield, then the post-1.8 columns, each only when
# its flag is on). 16/18/21 are the documented ones; the others are the remaining flag combinations.
LAYOUTS: dict[int, tuple[str, ...]] = {
    16: BASE_COLUMNS,
    17: BASE_COLUMNS + ("uniqueid",),
    18: BASE_COLUMNS + ("uniqueid", "userfield"),
    19: BASE_COLUMNS + NEW_COLUMNS,
    20: BASE_COLUMNS + ("uniqueid",) + NEW_COLUMNS,
    21: BASE_COLUMNS + ("uniqueid", "userfield") + NEW_COLUMNS,
}
_INT_COLUMNS = frozenset({"duration", "billsec", "sequence"})
_TIME_COLUMNS = frozenset({"start", "answer", "end"})
# consent_phone / consent_sms: "yes" | "no" | "" (unknown) — whether the customer may be called / texted
DIRECTORY_COLUMNS: tuple[str, ...] = ("e164", "golden_id", "display_name", "value_tier", "segment",
                                      "consent_phone", "consent_sms")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FINGERPRINT_BYTES = 1024


def parse_cdr_line(line: str, tz: ZoneInfo | None = None) -> dict:
    """One cdr_csv line -> a payload dict (ints as ints, times as ISO strings, unanswered answer = None).

    A line with an unknown column count comes back as ``{"_malformed": ..., "raw": line}`` so the mapping
    stage can quarantine it instead of it vanishing here.
    """
    fields = next(csv.reader([line]), [])
    cols = LAYOUTS.get(len(fields))
    if cols is None:
        return {"_malformed": f"unexpected column count {len(fields)}", "raw": line}
    row: dict = {}
    for name, value in zip(cols, fields, strict=True):
        if name in _INT_COLUMNS:
            row[name] = int(value) if value.strip().lstrip("-").isdigit() else (value or None)
        elif name in _TIME_COLUMNS:
            row[name] = _iso_time(value, tz)
        else:
            row[name] = value
    return row


def _iso_time(value: str, tz: ZoneInfo | None) -> str | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)  # "%Y-%m-%d %H:%M:%S"; ~50x faster than strptime
    except ValueError:
        return value  # keep what the PBX wrote; mapping decides
    return (dt.replace(tzinfo=tz) if tz else dt).isoformat()


def call_source_id(row: dict, raw: str) -> str:
    """Stable per call: the PBX's uniqueid (+ sequence when logged), else a hash of the raw row."""
    uid = row.get("uniqueid")
    if uid:
        seq = row.get("sequence")
        return f"{uid}:{seq}" if seq not in (None, "") else str(uid)
    return "h:" + hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


def _fingerprint(path: Path, length: int) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha1(fh.read(length)).hexdigest()


def _entry_view(row: dict) -> dict:
    return {k: held_value(row.get(k)) for k in DIRECTORY_COLUMNS if k != "e164"}


class AsteriskCdrConnector:
    """Pull ``calls`` from ``Master.csv`` (+ rotated siblings); push the caller directory (target callcenter)."""

    entities: tuple[str, ...] = ("calls",)
    # the directory file is rewritten once per push() call: a large batch keeps that to a few rewrites
    push_batch_size = 20_000

    def __init__(
        self,
        drop_dir: str | os.PathLike[str],
        *,
        system: str = "callcenter",
        timezone: str | None = None,
        page_bytes: int = 1 << 20,
        file_prefix: str = "Master",
        directory_name: str = "directory.csv",
    ) -> None:
        self.drop_dir = Path(drop_dir)
        self.system = system
        # cdr_csv writes local time unless usegmtime=yes; with a zone configured times get an offset
        self.tz = ZoneInfo(timezone) if timezone else None
        self.page_bytes = page_bytes
        self.file_prefix = file_prefix
        self.directory_path = self.drop_dir / directory_name
        # the directory as this connector last read or wrote it: (file signature, rows, their CSV lines (None
        # until it writes them), keys in file order). A push of a million numbers comes in batches, each
        # rewriting the whole file: reading and rendering every row again per batch made the push grow with the
        # square of the directory (1M: 582 s)
        self._kept: tuple[tuple[int, int, int], dict[str, dict], dict[str, str] | None, list[str]] | None = None

    # -- pull -------------------------------------------------------------------------------------------------

    def _cdr_files(self) -> list[tuple[Path, os.stat_result]]:
        """Master.csv and its rotated siblings, oldest first (rotated files before the live one)."""
        found = []
        for p in self.drop_dir.iterdir():
            if not p.name.startswith(self.file_prefix) or p.suffix in (".gz", ".bz2", ".xz", ".tmp"):
                continue
            if p.is_file():
                found.append((p, p.stat()))
        live = f"{self.file_prefix}.csv"
        found.sort(key=lambda fs: (fs[0].name == live, fs[1].st_mtime_ns, fs[0].name))
        return found

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        if entity != "calls":
            raise ValueError(f"unknown entity {entity!r}")
        files: dict[str, dict] = dict((cursor or {}).get("files", {}))
        present: set[str] = set()
        for path, st in self._cdr_files():
            key = f"{st.st_dev}:{st.st_ino}"
            present.add(key)
            state = files.get(key)
            offset = 0
            if state and st.st_size >= state["offset"] and _fingerprint(path, state["fp_len"]) == state["fp"]:
                offset = state["offset"]
            while offset < st.st_size:
                lines, new_offset = read_complete_lines(path, offset, self.page_bytes)
                if new_offset == offset:
                    break  # only a partial line so far: the PBX is mid-append
                records = self._records(lines)
                fp_len = min(_FINGERPRINT_BYTES, new_offset)
                files[key] = {"offset": new_offset, "fp": _fingerprint(path, fp_len), "fp_len": fp_len,
                              "name": path.name}
                offset = new_offset
                yield Page(records, {"files": dict(files)})
        gone = set(files) - present
        if gone:  # rotated away and deleted: forget them so the cursor does not grow forever
            for key in gone:
                files.pop(key)
            yield Page([], {"files": dict(files)})

    def _records(self, lines: list[bytes]) -> list[LandingRecord]:
        out = []
        for raw_b in lines:
            raw = raw_b.decode("utf-8", errors="replace").rstrip("\r")
            if not raw.strip():
                continue
            row = parse_cdr_line(raw, self.tz)
            out.append(landing_record(call_source_id(row, raw), row))
        return out

    # -- push -------------------------------------------------------------------------------------------------

    def _signature(self) -> tuple[int, int, int] | None:
        """What tells the directory file apart from another version of it (None: there is none)."""
        try:
            st = self.directory_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def read_directory(self) -> dict[str, dict]:
        """The current caller directory, keyed by E.164 (a new dict: the caller may change it; the rows are shared
        and must not be changed in place)."""
        signature = self._signature()
        if signature is None:
            return {}
        if self._kept is not None and self._kept[0] == signature:  # the file as this connector left it
            return dict(self._kept[1])
        with open(self.directory_path, newline="", encoding="utf-8") as fh:
            # cells were escaped against formula injection when written (see _write_directory)
            rows = {row["e164"]: {k: unescape_cell(v or "") for k, v in row.items()} for row in csv.DictReader(fh)}
        self._kept = (signature, rows, None, [])  # the lines are rendered when it is first written
        return dict(rows)

    def held_view(self, item: OutboxItem) -> dict | None:
        """The directory row of the number once ``item`` is applied; None when the number is removed."""
        p = item.payload or {}
        if removal(p):
            return None
        return _entry_view({"golden_id": item.golden_id or p.get("golden_id"), **p})

    def holdings(self) -> dict[str, dict]:
        """Every number's directory row as the file holds it now (no pull reads the directory: the push
        verifies it against what the hub wrote, ``verify_holdings``)."""
        return {e164: _entry_view(row) for e164, row in self.read_directory().items()}

    def held(self, items: list[OutboxItem]) -> dict[int, dict | None]:
        """The directory row each number has now; None = not in the directory."""
        directory = self.read_directory()
        return {it.id: _entry_view(directory[it.target_id]) if it.target_id in directory else None
                for it in items}

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
        directory, lines, order = self._take_directory()
        outcomes: list[PushOutcome] = []
        touched: set[str] = set()
        for item in items:
            e164 = (item.target_id or "").strip()
            if not _E164.match(e164):
                outcomes.append(PushOutcome(item.id, "rejected", "target_id is not an E.164 number"))
                continue
            p = item.payload or {}
            if removal(p):
                if directory.pop(e164, None) is not None:
                    touched.add(e164)
                outcomes.append(PushOutcome(item.id, "ok"))
                continue
            row = {
                "e164": e164,
                "golden_id": item.golden_id or p.get("golden_id") or "",
                "display_name": p.get("display_name") or "",
                "value_tier": p.get("value_tier") or "",
                "segment": p.get("segment") or "",
                "consent_phone": p.get("consent_phone") or "",
                "consent_sms": p.get("consent_sms") or "",
            }
            if directory.get(e164) != row:
                directory[e164] = row
                touched.add(e164)
            outcomes.append(PushOutcome(item.id, "ok"))
        if touched:
            try:
                self._write_directory(directory, lines, order, touched)
            except OSError as exc:
                return [PushOutcome(o.outbox_id, "error", f"directory write failed: {type(exc).__name__}")
                        if o.status == "ok" else o for o in outcomes]
        else:
            self._keep(directory, lines, order)
        return outcomes

    def _take_directory(self) -> tuple[dict[str, dict], dict[str, str] | None, list[str]]:
        """(rows, their CSV lines in the file or None when not known, keys in file order) of the directory now,
        for this connector to change: what it kept of the file it last wrote or read when that is still the
        file (the cache is given up meanwhile), else the file read afresh."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == self._signature():
            _, rows, lines, order = kept
            return rows, lines, order
        return self.read_directory(), None, []

    def _keep(self, rows: dict[str, dict], lines: dict[str, str] | None, order: list[str]) -> None:
        signature = self._signature()
        if signature is not None:
            self._kept = (signature, rows, lines, order)

    def _write_directory(self, directory: dict[str, dict], lines: dict[str, str] | None = None,
                         order: list[str] | None = None, touched: set[str] | None = None) -> None:
        """Replace the file with ``directory``. ``lines`` / ``order``: every row's CSV line and the keys in file
        order as the file holds them now, ``touched``: the keys changed since (only those are rendered again;
        without them every row is)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=DIRECTORY_COLUMNS, extrasaction="ignore", lineterminator="\n")

        def line(row: dict) -> str:
            # a display name like "=HYPERLINK(...)" must not run when someone opens the directory in a
            # spreadsheet: OWASP escaping (E.164 numbers are left as they are)
            buf.seek(0)
            buf.truncate()
            writer.writerow({k: escape_cell(str(v)) for k, v in row.items()})
            return buf.getvalue()

        if lines is None or order is None or touched is None:
            lines = {key: line(row) for key, row in directory.items()}
            order = sorted(lines)
        else:
            # the new keys sorted and merged in: two sorted runs, which sort() merges in one pass
            added = sorted(k for k in touched if k in directory and k not in lines)
            removed = {k for k in touched if k not in directory and k in lines}
            for k in touched:
                if k in directory:
                    lines[k] = line(directory[k])
                else:
                    lines.pop(k, None)
            if removed:
                order = [k for k in order if k not in removed]
            if added:
                order = order + added
                order.sort()
        header = ",".join(DIRECTORY_COLUMNS) + "\n"
        # write beside the target, fsync, then rename: the PBX sees either the old or the new file, whole
        self._kept = None
        fd, tmp = tempfile.mkstemp(prefix=".directory-", suffix=".tmp", dir=self.drop_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(header)
                fh.write("".join([lines[k] for k in order]))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.directory_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._keep(directory, lines, order)
