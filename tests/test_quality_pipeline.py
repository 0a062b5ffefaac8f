"""The brake through the real pipeline, as an operator meets it: a sync whose consolidation is more than the
data supports stops before any push and says why in the summary, the report and `hub quality status`; a
person releases it and the next sync pushes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from test_seen_in_browser import check_dagster_ui

HUB = str(Path(sys.executable).parent / "hub")


def _run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env})


def test_the_brake_stops_the_push_until_a_person_releases_it_and_the_ui_shows_the_checks(tmp_path: Path) -> None:
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "hub" / "hub.default.yaml").read_text())
    # a strict deployment: any consolidation without an agreeing identifier needs a person's look
    cfg["quality"]["brake"].update({"max_unsupported_share": 0.0, "min_consolidated": 1})
    cfg["quality"]["sources"]["social"].pop("max_unsupported_share")
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    env = {"HUB_DATABASE_URL": "", "HUB_CONFIG": str(tmp_path / "hub.yaml")}

    first = _run(tmp_path, "demo", "--customers", "80", env=env)
    assert first.returncode == 1, first.stdout + first.stderr[-3000:]
    out = first.stdout
    assert "PUSHES STOPPED" in out and "without any agreeing identifier" in out, out
    assert "hub quality release" in out
    pushed = out.split("Pushed", 1)[1].split("Data-quality", 1)[0]
    assert not any(ch.isdigit() for ch in pushed), out  # nothing was written back to any system
    report = Path(out.split("Data-quality report: ", 1)[1].split()[0])
    html = report.read_text(encoding="utf-8")
    assert 'id="brake"' in html and "Pushes stopped: waiting for a person" in html
    assert json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))["brake"]["stopped"] is True

    status = _run(tmp_path, "quality", "status", env=env)
    assert status.returncode == 3 and "HOLDING" in status.stdout

    released = _run(tmp_path, "quality", "release", "--by", "anna", "--note", "checked a sample", env=env)
    assert released.returncode == 0 and "next sync pushes" in released.stdout
    after = _run(tmp_path, "demo", env=env)
    assert after.returncode == 0, after.stdout + after.stderr[-3000:]
    assert "PUSHES STOPPED" not in after.stdout
    pushed = after.stdout.split("Pushed", 1)[1].split("Data-quality", 1)[0]
    assert any(int(w.rstrip(":")) > 0 for w in pushed.split() if w.rstrip(":").isdigit()), after.stdout
    twin = json.loads(report.with_suffix(".json").read_text(encoding="utf-8"))
    assert twin["brake"]["stopped"] is False and len(twin["history"]) == 2
    # every dimension with a score and a status after two syncs
    assert all("score" in d and d["status"] in ("green", "amber", "red", "none") for d in twin["dimensions"].values())

    check_dagster_ui(tmp_path, env)


def _reshape_like_a_real_erp(erp_db: Path) -> int:
    """Distinct parties, a dozen names ('散客', 'Walk-in Customer' …), one placeholder e-mail for all, a phone
    for a third of them, no ids: the shape of the ERP whose first sync merged 1,501 parties into 219."""
    import sqlite3

    names = ["客户", "散客", "Walk-in Customer", "个人客户", "张伟", "王芳", "李娜", "刘洋", "Cash Sale", "零售客户",
             "陈静", "杨帆"]
    con = sqlite3.connect(erp_db)
    ids = [r[0] for r in con.execute("select id from party_party order by id")]
    for i, pid in enumerate(ids):
        con.execute("update party_party set name=? where id=?", (names[i % len(names)], pid))
    con.execute("delete from party_contact_mechanism where type='email'")
    con.execute("delete from party_identifier")
    con.execute("delete from party_contact_mechanism where type in ('phone','mobile') and party % 3 != 0")
    top = con.execute("select coalesce(max(id), 0) from party_contact_mechanism").fetchone()[0]
    con.executemany("insert into party_contact_mechanism (id, party, type, value, active, create_date, write_date)"
                    " values (?, ?, 'email', 'noemail@company.example', 1, '2025-01-01 00:00:00',"
                    " '2025-01-01 00:00:00')", [(top + n + 1, pid) for n, pid in enumerate(ids)])
    con.commit()
    con.close()
    return len(ids)


def test_a_first_erp_sync_folding_distinct_parties_never_reaches_the_erp(tmp_path: Path) -> None:
    """The issue's case through the real matcher: whatever it makes of these parties, a consolidation the data
    does not support must not be written back."""
    world = subprocess.run([sys.executable, "-m", "hub.sandbox", "create", str(tmp_path / ".hub" / "sandbox"),
                            "--customers", "600"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert world.returncode == 0, world.stderr
    parties = _reshape_like_a_real_erp(tmp_path / ".hub" / "sandbox" / "erp.sqlite")
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "hub" / "hub.default.yaml").read_text())
    cfg["sources"] = {"erp": cfg["sources"]["erp"]}
    cfg["push"]["targets"] = ["erp"]
    (tmp_path / "hub.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    env = {"HUB_DATABASE_URL": "", "HUB_CONFIG": str(tmp_path / "hub.yaml")}
    sync = _run(tmp_path, "demo", env=env)
    out = sync.stdout
    golden = int(out.split(" became ", 1)[1].split()[0].replace(",", ""))
    if golden < 0.7 * parties:  # more than 30 % of distinct parties folded into others
        assert sync.returncode == 1 and "PUSHES STOPPED" in out, out
        assert "without any agreeing identifier" in out
        pushed = out.split("Pushed", 1)[1].split("Data-quality", 1)[0]
        assert not any(ch.isdigit() for ch in pushed), out
    else:  # a matcher that keeps them apart needs no brake
        assert sync.returncode == 0, out + sync.stderr[-2000:]
