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
