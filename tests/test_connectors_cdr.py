"""Asterisk CDR connector on a real drop folder: column variants, partial lines, rotation, kill/resume,
caller-directory push."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_connectors_base import DieAfter  # shared kill-between-pages wrapper

from hub.connectors.base import run_pull, run_push
from hub.connectors.cdr import AsteriskCdrConnector, parse_cdr_line
from hub.store import Store, push_outbox


def cdr_line(i: int, *, columns: int = 18, answered: bool = True, name: str = "Alice Wang") -> str:
    """A line exactly as cdr_csv writes it: strings quoted with "" escaping, ints bare, empty answer bare."""
    q = lambda s: '"' + str(s).replace('"', '""') + '"'  # noqa: E731
    answer = q(f"2024-05-06 10:{i % 60:02d}:07") if answered else ""
    base = [q(""), q(f"1380013{i:04d}"), q("2000"), q("from-internal"), q(f'"{name}" <1380013{i:04d}>'),
            q(f"PJSIP/trunk-{i:08x}"), q("PJSIP/2000-00000002"), q("Dial"), q("PJSIP/2000,30,tT"),
            q(f"2024-05-06 10:{i % 60:02d}:02"), answer, q(f"2024-05-06 10:{i % 60:02d}:40"),
            "38", "33" if answered else "0", q("ANSWERED" if answered else "NO ANSWER"), q("DOCUMENTATION")]
    if columns >= 18:
        base += [q(f"1714990502.{i}"), q("")]
    if columns == 21:
        base += [q(""), q(f"1714990502.{i}"), str(i % 3)]
    return ",".join(base) + "\n"


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path}/hub.db")


def test_parse_column_variants() -> None:
    r16 = parse_cdr_line(cdr_line(1, columns=16).rstrip("\n"))
    assert r16["clid"] == '"Alice Wang" <13800130001>' and r16["duration"] == 38 and "uniqueid" not in r16
    r18 = parse_cdr_line(cdr_line(2, answered=False).rstrip("\n"))
    assert r18["answer"] is None and r18["billsec"] == 0 and r18["uniqueid"] == "1714990502.2"
    assert r18["start"] == "2024-05-06T10:02:02"
    r21 = parse_cdr_line(cdr_line(3, columns=21).rstrip("\n"))
    assert r21["linkedid"] == "1714990502.3" and r21["sequence"] == 0
    bad = parse_cdr_line('"a","b"')
    assert bad["_malformed"] and bad["raw"] == '"a","b"'


def test_pull_partial_line_rotation_and_no_change(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "cdr"
    drop.mkdir()
    master = drop / "Master.csv"
    append(master, "".join(cdr_line(i) for i in range(5)))
    line5 = cdr_line(5)
    append(master, line5[:30])  # the PBX is mid-append
    conn = AsteriskCdrConnector(drop)
    s1 = run_pull(conn, store, "calls")
    assert s1.new == 5
    append(master, line5[30:] + cdr_line(6))
    # rotation: the old file is renamed with unread lines still in it; a new Master.csv starts
    append(master, cdr_line(7))
    master.rename(drop / "Master.csv.1")
    append(master, cdr_line(8, columns=21) + cdr_line(9, columns=16))
    s2 = run_pull(conn, store, "calls")
    assert s2.new == 5 and s2.changed == 0  # 5, 6, 7 from the rotated file, 8 and 9 from the new one
    ids = store.landed_ids("callcenter", "calls")
    assert {f"1714990502.{i}" for i in range(8)} <= ids and "1714990502.8:2" in ids
    assert len(ids) == 10
    s3 = run_pull(conn, store, "calls")
    assert (s3.new, s3.changed) == (0, 0)
    # copytruncate-style rotation: copy away, truncate in place. Re-read rows keep their ids -> unchanged.
    shutil.copy(master, drop / "Master.csv.2")
    master.write_text("")
    s4 = run_pull(conn, store, "calls")
    assert (s4.new, s4.changed) == (0, 0) and s4.unchanged == 2
    append(master, cdr_line(10))
    assert run_pull(conn, store, "calls").new == 1
    # deleting a rotated file shrinks the cursor
    (drop / "Master.csv.1").unlink()
    run_pull(conn, store, "calls")
    names = {v["name"] for v in store.get_cursor("callcenter", "calls")["files"].values()}
    assert names == {"Master.csv", "Master.csv.2"}


def test_kill_between_pages_resumes_exactly_once(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "cdr"
    drop.mkdir()
    append(drop / "Master.csv", "".join(cdr_line(i) for i in range(200)))
    conn = AsteriskCdrConnector(drop, page_bytes=4000)  # ~15 lines per page
    with pytest.raises(KeyboardInterrupt):
        run_pull(DieAfter(conn, 3), store, "calls")
    partial = len(store.landed_ids("callcenter", "calls"))
    assert 0 < partial < 200
    s = run_pull(conn, store, "calls")
    assert s.new == 200 - partial and s.changed == 0 and s.unchanged == 0
    with open(drop / "Master.csv", newline="") as fh:
        truth = {row[16] for row in csv.reader(fh)}
    assert store.landed_ids("callcenter", "calls") == truth


def test_push_directory_atomic_upsert_and_no_echo(tmp_path: Path, store: Store) -> None:
    drop = tmp_path / "cdr"
    drop.mkdir()
    append(drop / "Master.csv", "".join(cdr_line(i) for i in range(3)))
    conn = AsteriskCdrConnector(drop)
    run_pull(conn, store, "calls")
    store.enqueue_pushes("callcenter", "caller", [
        ("+8613800138000", "G000001", {"golden_id": "G000001", "display_name": "陈伟", "value_tier": "gold",
                                       "segment": "vip"}),
        ("+442079460000", "G000002", {"golden_id": "G000002", "display_name": "Bob Smith", "value_tier": "silver"}),
        ("13800138000", "G000003", {"golden_id": "G000003"}),  # not E.164 -> rejected, not retried
    ])
    stats = run_push(conn, store)
    assert (stats.ok, stats.rejected, stats.error) == (2, 1, 0)
    directory = conn.read_directory()
    assert directory["+8613800138000"]["display_name"] == "陈伟"
    assert directory["+442079460000"]["golden_id"] == "G000002"
    assert not list(drop.glob(".directory-*"))  # no temp file left behind
    # update one entry; the other stays
    store.enqueue_pushes("callcenter", "caller", [
        ("+8613800138000", "G000001", {"golden_id": "G000001", "display_name": "陈伟", "value_tier": "platinum"})])
    assert run_push(conn, store).ok == 1
    directory = conn.read_directory()
    assert directory["+8613800138000"]["value_tier"] == "platinum" and len(directory) == 2
    assert run_push(conn, store).sent == 0
    after = run_pull(conn, store, "calls")
    assert (after.new, after.changed) == (0, 0)  # the directory file is not mistaken for call data


def test_directory_rows_deleted_or_changed_by_someone_else_are_written_again(tmp_path: Path, store: Store) -> None:
    """No pull reads the directory: the push compares the file with what the hub wrote (drift) first."""
    drop = tmp_path / "cdr"
    drop.mkdir()
    conn = AsteriskCdrConnector(drop)
    numbers = [f"+86138001380{i:02d}" for i in range(10)]
    store.enqueue_pushes("callcenter", "caller", [
        (e164, f"G{i:06d}", {"golden_id": f"G{i:06d}", "display_name": f"客户{i}", "value_tier": "gold",
                             "consent_phone": "yes"}) for i, e164 in enumerate(numbers)])
    assert run_push(conn, store).ok == 10
    written = conn.read_directory()
    assert run_push(conn, store).sent == 0  # the file as the hub wrote it is no drift

    # someone deletes three rows and types over the golden id of two others
    edited = {e164: row for e164, row in written.items() if e164 not in numbers[:3]}
    for e164 in numbers[3:5]:
        edited[e164] = {**edited[e164], "golden_id": "G-TYPO"}
    with open(conn.directory_path, "w", newline="", encoding="utf-8") as fh:  # as a spreadsheet would save it
        out = csv.DictWriter(fh, fieldnames=["e164", *next(iter(edited.values())).keys() - {"e164"}])
        out.writeheader()
        out.writerows({**row, "e164": e164} for e164, row in edited.items())
    stats = run_push(conn, store)
    assert (stats.drift, stats.sent, stats.ok) == (5, 5, 5)
    assert conn.read_directory() == written
    causes = [c for (c,) in store.engine.connect().execute(
        sa.select(push_outbox.c.cause).where(push_outbox.c.status == "ok").order_by(push_outbox.c.id))]
    assert causes[-5:] == ["drift"] * 5
    assert run_push(conn, store).sent == 0


def test_directory_file_escapes_formulas_and_stays_idempotent(tmp_path: Path) -> None:
    """A display name a spreadsheet would run (=…, @…, -2+3+cmd|…) is written with a leading apostrophe
    (OWASP); E.164 numbers are left as they are; reading the directory back gives the original values, so an
    unchanged entry is not rewritten and an escaped value is never escaped twice."""
    from hub.store import OutboxItem

    drop = tmp_path / "cdr"
    drop.mkdir()
    conn = AsteriskCdrConnector(drop)
    names = {"+8613800138000": "=HYPERLINK(\"http://evil.example\",\"陈伟\")",
             "+8613900139000": "-2+3+cmd| /c calc'!A0", "+8613700137000": "王芳"}
    items = [OutboxItem(i, "callcenter", "caller", e164, f"G{i:06d}",
                        {"golden_id": f"G{i:06d}", "display_name": name, "segment": "@vip"}, 0)
             for i, (e164, name) in enumerate(names.items(), start=1)]
    assert {o.status for o in conn.push(items)} == {"ok"}
    with open(conn.directory_path, newline="", encoding="utf-8") as fh:
        rows = {r["e164"]: r for r in csv.DictReader(fh)}
    assert rows["+8613800138000"]["display_name"] == "'" + names["+8613800138000"]
    assert rows["+8613900139000"]["display_name"] == "'" + names["+8613900139000"]
    assert rows["+8613700137000"]["display_name"] == "王芳" and rows["+8613700137000"]["segment"] == "'@vip"
    assert set(rows) == set(names)  # "+86…" numbers are data, not formulas: not escaped
    assert {k: v["display_name"] for k, v in conn.read_directory().items()} == names
    before = conn.directory_path.stat().st_mtime_ns
    conn.push(items)  # nothing changed: the file is not rewritten
    assert conn.directory_path.stat().st_mtime_ns == before
    conn.push([items[2]._replace(id=9, payload={**items[2].payload, "display_name": "王芳芳"})])
    with open(conn.directory_path, newline="", encoding="utf-8") as fh:
        again = {r["e164"]: r for r in csv.DictReader(fh)}
    assert again["+8613800138000"]["display_name"] == rows["+8613800138000"]["display_name"]  # not '' twice


def test_a_directory_pushed_in_batches_is_the_file_one_push_of_it_writes(tmp_path: Path) -> None:
    """A large directory comes in batches, each replacing the whole file: the connector keeps the rows and their
    lines between batches (reading and rendering every row per batch grew with the square of the directory:
    1M numbers, 582 s), and what it writes is byte for byte what one push of the end state writes — new,
    changed and removed numbers, and a row someone edits in the file between two batches (read afresh)."""
    from hub.store import OutboxItem

    def item(i: int, n: int, **payload: str) -> OutboxItem:
        return OutboxItem(i, "callcenter", "caller", f"+86138{n:08d}", f"G{n:06d}",
                          {"golden_id": f"G{n:06d}", "display_name": f"客户{n}", "value_tier": "gold", **payload}, 0)

    drop = tmp_path / "cdr"
    drop.mkdir()
    conn = AsteriskCdrConnector(drop)
    final: dict[int, OutboxItem] = {}
    batches = [[item(i, n) for i, n in enumerate(range(900, 0, -3))],  # out of order: the file is sorted
               [item(1000 + n, n, value_tier="silver") for n in range(0, 900, 7)],  # changes and new numbers
               [item(2000 + n, n, display_name="=cmd|x") for n in range(1, 60, 2)]]
    for batch in batches:
        assert {o.status for o in conn.push(batch)} == {"ok"}
        final.update({int(it.target_id[-8:]): it for it in batch})
    # someone edits a row in the file (another inode: as an editor saves), then a batch removes some numbers
    text = conn.directory_path.read_text(encoding="utf-8").replace("客户900,", "客户九百,")
    edited = drop / "edited.csv"
    edited.write_text(text, encoding="utf-8")
    edited.replace(conn.directory_path)
    gone = [item(3000 + n, n)._replace(payload={"action": "withdraw"}) for n in range(0, 300, 9)]
    assert {o.status for o in conn.push(gone)} == {"ok"}
    assert conn.read_directory()["+8613800000900"]["display_name"] == "客户九百"  # the edit was read, kept
    for g in gone:
        final.pop(int(g.target_id[-8:]), None)

    fresh_drop = tmp_path / "fresh"
    fresh_drop.mkdir()
    fresh = AsteriskCdrConnector(fresh_drop)
    end = dict(final)
    end[900] = end[900]._replace(payload={**end[900].payload, "display_name": "客户九百"})
    assert {o.status for o in fresh.push(list(end.values()))} == {"ok"}
    assert conn.directory_path.read_bytes() == fresh.directory_path.read_bytes()
    assert AsteriskCdrConnector(drop).read_directory() == conn.read_directory()
