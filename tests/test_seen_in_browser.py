"""What operations staff see, rendered by a real browser (headless Chromium): the report with every section
and chart laid out across the page width, and the Dagster UI's asset pages with the quality checks."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from browser import layout, screenshot
from test_report import seed_operations

from hub.quality.config import DIMENSIONS
from hub.quality.history import RunInfo
from hub.report import write_report
from hub.store import Store

SECTIONS = ["verdict", "dimensions", "history", "this-run", "trend", "landing", "staging", "quality-flags",
            "completeness", "matching", "golden-quality", "customer-base", "customer-360", "push", "privacy"]
CHARTS = [*(f"chart-{d}" for d in DIMENSIONS), "chart-volume", "chart-golden", "chart-push",
          "chart-value-pyramid", "chart-funnel", "chart-lifecycle"]


def test_the_report_in_chromium_shows_every_section_and_chart_across_the_page(sqlite_store: Store,
                                                                              tmp_path: Path) -> None:
    seed_operations(sqlite_store)
    out = tmp_path / "data_quality.html"
    write_report(sqlite_store, out, run=RunInfo("run-one", "hub demo", datetime.utcnow() - timedelta(seconds=30)))
    write_report(sqlite_store, out, run=RunInfo("run-two", "schedule full_sync_nightly",
                                                datetime.utcnow() - timedelta(seconds=20)))
    html = out.read_text(encoding="utf-8")
    toc = re.findall(r'<nav id="toc">.*?</nav>', html, re.S)[0]
    assert set(re.findall(r'href="#([\w-]+)"', toc)) == set(SECTIONS)  # contents name every section

    boxes = layout(tmp_path, out.name, [*(f"#{s}" for s in SECTIONS), *(f"#{c}" for c in CHARTS), "main",
                                        "nav#toc", "#dimension-table td.red, #dimension-table td.amber, "
                                        "#dimension-table td.green"])
    for section in SECTIONS:
        (w, h), = boxes[f"#{section}"]
        assert w > 900 and h > 40, (section, w, h)
    for chart in CHARTS:
        (w, h), = boxes[f"#{chart}"]
        assert w >= 300 and h >= 100, (chart, w, h)
    (main_w, _), = boxes["main"]
    (nav_w, _), = boxes["nav#toc"]
    page_w, page_h = boxes["__viewport"]
    assert main_w + nav_w >= 0.95 * page_w  # the page uses its full width (the old one used under half)
    assert boxes["#dimension-table td.red, #dimension-table td.amber, #dimension-table td.green"]  # coloured
    shot = screenshot(out.as_uri(), tmp_path / "report.png", height=1800)
    assert shot.stat().st_size > 50_000


_ASSETS = """{ assetNodes(assetKeys: [{path: ["golden_customers"]}, {path: ["data_quality_report"]},
                                {path: ["staged_records"]}, {path: ["raw_erp"]}]) {
  assetKey { path } groupName tags { key value }
  owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
  assetChecksOrError { ... on AssetChecks { checks { name blocking description
      executionForLatestMaterialization { status evaluation { success severity metadataEntries { label } } } } } }
  assetMaterializations(limit: 1) { metadataEntries { label __typename
      ... on FloatMetadataEntry { floatValue } ... on PathMetadataEntry { path } } }
} }"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_dagster_ui(tmp_path: Path, env: dict[str, str]) -> None:
    """After a demo sync in ``tmp_path``: the webserver's GraphQL (what the UI renders) holds every check's
    result, the scores as plottable floats and the report's path; the asset pages render in Chromium.
    Called by tests/test_quality_pipeline.py on the instance its syncs left (a third sync would cost minutes)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import requests
    from browser import chromium

    chromium()  # skip / fail early without a browser
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, **env}
    port = _free_port()

    def own_session() -> None:  # dagster's servers ignore inherited SIG_IGN (see dagster.md trap 3)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.setsid()

    ui = subprocess.Popen([str(bin_dir / "dagster-webserver"), "-m", "hub.definitions", "-h", "127.0.0.1",
                           "-p", str(port)], cwd=tmp_path, preexec_fn=own_session,  # noqa: PLW1509
                          env={**env, "DAGSTER_HOME": str(tmp_path / ".hub" / "dagster")},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                if requests.get(f"{base}/server_info", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert ui.poll() is None, "dagster-webserver exited"
            time.sleep(1)
        requests.post(f"{base}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30)
        data = requests.post(f"{base}/graphql", json={"query": _ASSETS}, timeout=120).json()["data"]
        nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}

        report = nodes["data_quality_report"]
        meta = {e["label"]: e for e in report["assetMaterializations"][0]["metadataEntries"]}
        for dim in ("completeness", "validity", "uniqueness", "consistency", "timeliness"):
            assert meta[f"score_{dim}"]["__typename"] == "FloatMetadataEntry", dim  # plotted over runs
        assert Path(meta["report"]["path"]).exists()  # the report is one click from its asset page
        assert not any(label.endswith(("_id", "_bytes")) or label == "match_run" for n in nodes.values()
                       for m in n["assetMaterializations"] for label in (e["label"] for e in m["metadataEntries"]))

        golden = {c["name"]: c for c in nodes["golden_customers"]["assetChecksOrError"]["checks"]}
        brake = golden["merge_split_brake"]
        assert brake["blocking"] and brake["executionForLatestMaterialization"]["evaluation"]["success"]
        staged = {c["name"]: c for c in nodes["staged_records"]["assetChecksOrError"]["checks"]}
        for name in ("completeness_erp", "validity_webshop", "duplicates_erp"):
            evaluation = staged[name]["executionForLatestMaterialization"]["evaluation"]
            assert "score" in {e["label"] for e in evaluation["metadataEntries"]}, name
        raw = {c["name"] for c in nodes["raw_erp"]["assetChecksOrError"]["checks"]}
        assert "freshness_erp" in raw
        for node in nodes.values():
            assert {t["key"] for t in node["tags"]} >= {"domain", "pii"} and node["owners"]

        for page, name in (("assets/data_quality_report", "report_asset"),
                           ("assets/golden_customers?view=checks", "golden_checks")):
            shot = screenshot(f"{base}/{page}", tmp_path / f"ui_{name}.png", budget_ms=20000)
            assert shot.stat().st_size > 50_000, name  # the page rendered, not an empty shell
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
