"""`hub import` as a user runs it: row-level errors with row numbers, nothing dropped, re-import is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from openpyxl import Workbook

from hub.store import Store, landing, quarantine, staged_record

HUB = str(Path(sys.executable).parent / "hub")

ROWS = [
    ["record_id", "full_name", "email", "phone", "birth_date", "gender", "city", "notes"],
    ["C-1", "陳偉", "Chen.Wei@Example.com", "+86 138-0013-8000", "1985年3月7日", "男", "南京", "vip"],
    ["C-2", "WEI CHEN", "", "１３８００１３８０００", "1985/3/7", "M", "Nanjing", ""],
    ["C-3", "", "", "not a phone", "", "", "", "no name, no contact"],
    ["C-4", "Robert Smith", "bob@example.com", "", "1985-02-30", "", "London", "impossible date"],
    ["C-1", "Duplicate Key", "dup@example.com", "", "", "", "", "same id as row 2"],
]


def _hub(cwd: Path, db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HUB_DATABASE_URL": db})


def _write_csv(path: Path) -> None:
    path.write_text("\n".join(",".join(r) for r in ROWS) + "\n", encoding="utf-8")


def test_csv_import_reports_rows_and_loses_nothing(tmp_path: Path, store_url: str) -> None:
    src = tmp_path / "crm.csv"
    _write_csv(src)
    proc = _hub(tmp_path, store_url, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 1, proc.stderr  # some rows are in quarantine: the exit code says so
    out = proc.stdout
    assert "row 4 (C-3): " in out and "required.name_missing" in out
    assert "row 6 (C-1): key.duplicate (first at row 2)" in out
    store = Store(store_url)
    with store.engine.connect() as conn:
        landed = conn.execute(sa.select(sa.func.count()).select_from(landing)).scalar_one()
        staged = dict(conn.execute(sa.select(staged_record.c.source_id, staged_record.c.record)).all())
        held = {r.source_id: r.reasons for r in conn.execute(sa.select(quarantine))}
    # five data rows: four landed (one per key), the duplicate kept in quarantine — none dropped
    assert landed == 4
    assert set(staged) | set(held) == {"C-1", "C-2", "C-3", "C-4", "C-1#row6"}
    assert staged["C-1"]["phones"][0]["e164"] == "+8613800138000"
    assert staged["C-2"]["phones"][0]["e164"] == "+8613800138000"
    assert staged["C-1"]["name"]["name_key"] == staged["C-2"]["name"]["name_key"] == "chen wei"
    assert staged["C-4"].get("birth_date") is None  # bad optional field: kept, nulled, flagged
    assert "required.name_missing" in held["C-3"]
    store.dispose()

    again = _hub(tmp_path, store_url, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert "0 new, 0 changed, 4 unchanged" in again.stdout


def test_xlsx_import(tmp_path: Path) -> None:
    book = Workbook()
    for row in ROWS[:3]:
        book.active.append(row)
    src = tmp_path / "crm.xlsx"
    book.save(src)
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    proc = _hub(tmp_path, db, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 rows read: 2 new" in proc.stdout


def test_unreadable_file_and_bad_mapping_are_clear_errors(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    bad = tmp_path / "x.csv"
    bad.write_bytes(b"record_id,full_name\n1,\xff\xfe\n")
    proc = _hub(tmp_path, db, "import", str(bad), "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr
    _write_csv(bad)
    proc = _hub(tmp_path, db, "import", str(bad), "--source", "crm", "--mapping", "no_such_mapping")
    assert proc.returncode == 2 and "no_such_mapping" in proc.stderr
