"""Asterisk ``cdr_csv`` drop folder: writes ``Master.csv`` byte-for-byte like ``cdr/cdr_csv.c``.

No header row; string fields wrapped in ``"`` with embedded quotes doubled; ``duration``/``billsec``
(and ``sequence``) bare integers; an unanswered call's ``answer`` is an empty *unquoted* field.
Column count per config: 16 (defaults), 18 (``loguniqueid`` + ``loguserfield``, the shipped sample and
the default here) or 21 (``newcdrcolumns=yes``: peeraccount, linkedid, sequence).  Times are
``%Y-%m-%d %H:%M:%S`` in UTC (``usegmtime=yes``, as in ``cdr.conf.sample``) or local time.
With ``accountlogs`` (default on), rows with an accountcode are also appended to ``<accountcode>.csv``.

Rotation is logrotate's job, not Asterisk's: ``rotate("numbered")`` gives ``Master.csv.1`` (older files
shift to ``.2`` …), ``rotate("dated")`` gives ``Master.csv-YYYYMMDD`` (logrotate ``dateext``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path

COLUMNS_16 = ("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
              "start", "answer", "end", "duration", "billsec", "disposition", "amaflags")
COLUMNS_18 = COLUMNS_16 + ("uniqueid", "userfield")
COLUMNS_21 = COLUMNS_18 + ("peeraccount", "linkedid", "sequence")
COLUMNS = {16: COLUMNS_16, 18: COLUMNS_18, 21: COLUMNS_21}
_INT_FIELDS = {"duration", "billsec", "sequence"}
_TIME_FIELDS = {"start", "answer", "end"}


def _quote(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def format_cdr_line(row: dict, columns: int = 18, utc_offset: timedelta = timedelta(0)) -> str:
    """One CDR record as ``cdr_csv`` writes it (without the trailing newline)."""
    out = []
    for name in COLUMNS[columns]:
        v = row.get(name)
        if name in _INT_FIELDS:
            out.append(str(int(v or 0)))
        elif name in _TIME_FIELDS:
            # a zero timestamp becomes an empty, unquoted field
            out.append(_quote((v + utc_offset).strftime("%Y-%m-%d %H:%M:%S")) if isinstance(v, datetime) else "")
        else:
            out.append(_quote("" if v is None else str(v)))
    return ",".join(out)


class CdrDropFolder:
    """The ``/var/log/asterisk/cdr-csv/`` folder of one Asterisk box."""

    def __init__(self, directory: Path, columns: int = 18, usegmtime: bool = True, accountlogs: bool = True,
                 local_utc_offset: timedelta = timedelta(hours=8)):
        if columns not in COLUMNS:
            raise ValueError("cdr_csv writes 16, 18 or 21 columns")
        self.dir = Path(directory)
        self.columns = columns
        self.accountlogs = accountlogs
        self.offset = timedelta(0) if usegmtime else local_utc_offset
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def master(self) -> Path:
        return self.dir / "Master.csv"

    def append(self, rows: Iterable[dict]) -> int:
        """Append calls (open, append, close — as cdr_csv does per record). Returns rows written."""
        lines: list[str] = []
        per_account: dict[str, list[str]] = {}
        for r in rows:
            line = format_cdr_line(r, self.columns, self.offset) + "\n"
            lines.append(line)
            if self.accountlogs and r.get("accountcode"):
                per_account.setdefault(str(r["accountcode"]), []).append(line)
        with self.master.open("a", encoding="utf-8", newline="") as fh:
            fh.writelines(lines)
        for acct, acct_lines in per_account.items():
            with (self.dir / f"{acct}.csv").open("a", encoding="utf-8", newline="") as fh:
                fh.writelines(acct_lines)
        return len(lines)

    def rotate(self, style: str = "numbered", today: date | None = None) -> Path | None:
        """Move ``Master.csv`` aside like logrotate; the next ``append`` starts a fresh file."""
        if not self.master.exists():
            return None
        if style == "dated":
            target = self.dir / f"Master.csv-{(today or date.today()):%Y%m%d}"
            n = 1
            while target.exists():  # several rotations on one day
                target = self.dir / f"Master.csv-{(today or date.today()):%Y%m%d}.{n}"
                n += 1
        elif style == "numbered":
            existing = sorted((int(p.suffix[1:]) for p in self.dir.glob("Master.csv.*") if p.suffix[1:].isdigit()),
                              reverse=True)
            for n in existing:
                (self.dir / f"Master.csv.{n}").rename(self.dir / f"Master.csv.{n + 1}")
            target = self.dir / "Master.csv.1"
        else:
            raise ValueError("style must be 'numbered' or 'dated'")
        self.master.rename(target)
        return target
