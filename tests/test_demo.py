"""`hub demo` end to end, as a user runs it: the whole graph through Dagster against the sandbox, twice.

The second run must be an incremental sync of unchanged sources: nothing new pulled, nothing pushed, and the
golden export identical. Runs on the embedded SQLite store and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HUB = str(Path(sys.executable).parent / "hub")


def _hub(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        [HUB, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"hub {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def _pulled(summary: str) -> dict[str, tuple[int, int, int]]:
    section = summary.split("Pulled", 1)[1].split("Staged", 1)[0]
    return {
        m.group(1): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
        for m in re.finditer(r"^\s+(\w+)\s+(\d+) /\s+(\d+) /\s+(\d+)", section, re.M)
    }


def _pushed(summary: str) -> dict[str, int]:
    section = summary.split("Pushed", 1)[1].split("Data-quality", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\w+)\s+(\d+):", section, re.M)}


# the sandbox systems whose customer records carry a person in the world's ground truth
TRUTH_OF = {"erp": ("erp", "party"), "webshop": ("webshop", "customer"), "social": ("wechat", "follower")}
# the pipeline's clusters against the sandbox's true person ids. Measured 2026-12-02 on the 300-customer world:
# pairwise precision 0.98, recall 0.67 (F1 0.795), B-cubed F1 0.919 — ERP/shop pairs 103 of 104, the misses are
# WeChat followers known by a nickname only. The floor fails when matching breaks, not when it moves by a hair.
QUALITY_FLOOR = {"pairwise_precision": 0.93, "pairwise_f1": 0.75, "bcubed_f1": 0.88}


def pipeline_quality(tmp_path: Path, xref_csv: str) -> dict[str, float]:
    """Cluster quality of the open xref rows (as `hub export xref` writes them) against the ground truth."""
    import pandas as pd

    from hub.dedupe.evaluate import cluster_metrics
    from hub.sandbox import ground_truth_map

    truth = ground_truth_map(tmp_path / ".hub" / "sandbox")
    pred, true = {}, {}
    for line in (tmp_path / xref_csv).read_text(encoding="utf-8").splitlines()[1:]:
        source, source_id, golden_id, _valid_from, valid_to = line.split(",")
        person = truth.get((*TRUTH_OF.get(source, ("", "")), source_id))
        if not valid_to and person is not None:
            pred[f"{source}:{source_id}"], true[f"{source}:{source_id}"] = golden_id, person
    assert len(pred) > 300, "the ground truth should cover the ERP, shop and social records"
    return cluster_metrics(pd.Series(pred), pd.Series(true))


def _run_twice(tmp_path: Path, env: dict[str, str] | None = None) -> None:
    first = _hub(tmp_path, "demo", "--customers", "300", env=env)
    pulled = _pulled(first)
    assert set(pulled) == {"erp", "webshop", "social", "callcenter"}, first
    assert all(new > 0 for new, _, _ in pulled.values()), first
    pushed = _pushed(first)
    assert pushed and sum(pushed.values()) > 0, first
    assert "Golden customers:" in first and "Data-quality report:" in first
    report = re.search(r"Data-quality report: (\S+)", first).group(1)
    assert Path(report).exists() and Path(report).stat().st_size > 1000
    _hub(tmp_path, "export", "golden", "--out", "golden1.csv", env=env)
    _hub(tmp_path, "export", "xref", "--out", "xref1.csv", env=env)
    quality = pipeline_quality(tmp_path, "xref1.csv")
    assert all(quality[k] >= floor for k, floor in QUALITY_FLOOR.items()), quality

    second = _hub(tmp_path, "demo", env=env)
    assert all(new == 0 and changed == 0 for new, changed, _ in _pulled(second).values()), second
    # the summary explains people vs golden customers in words
    assert "records were recognised as the same person and consolidated into" in first
    assert "matched no other record" in first
    # after two syncs the JSON twin holds every quality dimension with a score and a status, and two runs
    twin = json.loads(Path(report).with_suffix(".json").read_text(encoding="utf-8"))
    assert set(twin["dimensions"]) == {"completeness", "validity", "uniqueness", "consistency", "timeliness",
                                       "accuracy"}
    assert all("score" in d and d["status"] in ("green", "amber", "red", "none") for d in twin["dimensions"].values())
    assert len(twin["history"]) == 2 and twin["history"][-1]["trigger"] == "hub demo"
    assert sum(_pushed(second).values()) == 0, first + "\n\n" + second
    _hub(tmp_path, "export", "golden", "--out", "golden2.csv", env=env)
    _hub(tmp_path, "export", "xref", "--out", "xref2.csv", env=env)
    assert (tmp_path / "golden1.csv").read_bytes() == (tmp_path / "golden2.csv").read_bytes()
    assert (tmp_path / "xref1.csv").read_bytes() == (tmp_path / "xref2.csv").read_bytes()
    golden_rows = (tmp_path / "golden1.csv").read_text(encoding="utf-8").splitlines()
    assert 50 < len(golden_rows) - 1 < 300 * 2


def test_demo_twice_on_sqlite_is_incremental(tmp_path: Path) -> None:
    _run_twice(tmp_path, env={"HUB_DATABASE_URL": ""})
    _steward_and_preview(tmp_path, env={"HUB_DATABASE_URL": ""})


def _golden_of(tmp_path: Path, env: dict[str, str], keys: set[str]) -> dict[str, str]:
    _hub(tmp_path, "export", "xref", "--out", "xref_now.csv", env=env)
    out = {}
    for line in (tmp_path / "xref_now.csv").read_text(encoding="utf-8").splitlines()[1:]:
        source, source_id, golden_id, _valid_from, valid_to = line.split(",")
        if not valid_to and f"{source}:{source_id}" in keys:
            out[f"{source}:{source_id}"] = golden_id
    return out


def _steward_and_preview(tmp_path: Path, env: dict[str, str]) -> None:
    """A steward's "no-match" on a pair the model merged splits it on the next run and it stays split."""
    listing = _hub(tmp_path, "review", "list", "--limit", "5", env=env)
    assert "PAIR " in listing or "review queue is empty" in listing
    import sqlalchemy as sa

    from hub.store import Store, match_pair

    store = Store(f"sqlite:///{tmp_path / '.hub' / 'hub.db'}")
    with store.engine.connect() as conn:
        left, right = conn.execute(
            sa.select(match_pair.c.left_key, match_pair.c.right_key).where(match_pair.c.band == "match").limit(1)
        ).one()
    store.dispose()
    before = _golden_of(tmp_path, env, {left, right})
    assert before[left] == before[right]
    _hub(tmp_path, "review", "decide", f"{left}|{right}", "no-match", env=env)
    _hub(tmp_path, "demo", env=env)
    after = _golden_of(tmp_path, env, {left, right})
    assert after[left] != after[right]
    _hub(tmp_path, "demo", env=env)
    assert _golden_of(tmp_path, env, {left, right}) == after  # stays split

    rules = tmp_path / "rules.yaml"
    rules.write_text("survivorship:\n  default_rule: {strategy: most_recent}\n", encoding="utf-8")
    preview = _hub(tmp_path, "golden", "preview", "--rules", str(rules), env=env)
    assert "full_name" in preview or "no golden value would change" in preview.lower(), preview


@pytest.mark.postgres
def test_demo_twice_on_postgresql(tmp_path: Path, postgres_database_url: str) -> None:
    _run_twice(tmp_path, env={"HUB_DATABASE_URL": postgres_database_url})


def test_changes_in_every_source_are_picked_up_and_pushed_to_the_others(tmp_path: Path) -> None:
    """Between two syncs every sandbox system changes (new phone, moved address, new order, new follower, new
    calls): the next sync pulls those changes from each source and writes their effect back."""
    env = {"HUB_DATABASE_URL": ""}
    _hub(tmp_path, "demo", "--customers", "300", env=env)
    proc = subprocess.run(
        [sys.executable, "-m", "hub.sandbox", "mutate", str(tmp_path / ".hub" / "sandbox"), "--fraction", "0.1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    second = _hub(tmp_path, "demo", env=env)
    pulled = _pulled(second)
    for source, (new, changed, _) in pulled.items():
        assert new + changed > 0, f"{source} changes were not pulled:\n{second}"
    assert sum(_pushed(second).values()) > 0, second
