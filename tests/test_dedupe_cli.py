"""`hub dedupe` through a real subprocess: outputs, record ids kept as text, error exits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from hub.dedupe import synthetic as syn
from hub.dedupe.cli import main


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.dedupe.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_clusters_csv_and_pairs(tmp_path: Path):
    df = syn.customers(300, seed=5).drop(columns=["entity_id"])
    df.loc[0, "record_id"] = "007"
    src = tmp_path / "in.csv"
    df.to_csv(src, index=False)
    out, pairs = tmp_path / "out.csv", tmp_path / "pairs.csv"
    r = _cli(str(src), "--out", str(out), "--pairs", str(pairs))
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["record_id", "cluster_id"]
    assert sorted(got.record_id) == sorted(df.record_id.astype(str)) and "007" in set(got.record_id)
    pr = pd.read_csv(pairs, dtype=str, keep_default_na=False)
    assert {"record_id_l", "record_id_r", "match_weight", "match_probability", "band", "phone_level",
            "phone_weight"} <= set(pr.columns)


def test_cli_parquet_and_link_only(tmp_path: Path):
    df = syn.febrl_like(300, link=True, seed=9).drop(columns=["entity_id"]).astype(str)
    src = tmp_path / "in.parquet"
    df.to_parquet(src)
    out = tmp_path / "out.csv"
    r = _cli(str(src), "--out", str(out), "--link-only")
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out, dtype=str)
    assert len(got) == len(df) and got.cluster_id.nunique() < len(df)


def test_cli_errors_exit_2_with_one_line(tmp_path: Path, capsys):
    no_id = tmp_path / "noid.csv"
    no_id.write_text("full_name,phone\nA,1\n", encoding="utf-8")
    dup = tmp_path / "dup.csv"
    dup.write_text("record_id,full_name\n1,A\n1,B\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"record_id,full_name\n1,\xff\xfe\xfa\n")
    # one real subprocess (exit status as the shell sees it), the rest in-process through the same main()
    r = _cli(str(dup), "--out", str(tmp_path / "o.csv"))
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "duplicate" in lines[0], r.stderr
    for path, word in ((no_id, "record_id"), (bad, "UTF-8"), (tmp_path / "missing.csv", "no such file")):
        assert main([str(path), "--out", str(tmp_path / "o.csv")]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and word in err[0], err


def test_cli_warns_when_the_input_has_fewer_than_two_usable_columns(tmp_path: Path, capsys):
    thin = tmp_path / "thin.csv"
    thin.write_text("record_id,full_name,姓名,notes\n1,Wei Chen,陈伟,a\n2,Wei Chen,陈伟,b\n3,Li Na,李娜,\n",
                    encoding="utf-8")
    r = _cli(str(thin), "--out", str(tmp_path / "o.csv"))
    assert r.returncode == 0, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warning) == 1 and "1 usable column(s) (full_name)" in warning[0] and "姓名, notes" in warning[0]
    # an empty canonical column is not evidence either; two filled ones are enough
    thin.write_text("record_id,full_name,phone\n1,Wei Chen,\n2,Li Na,\n", encoding="utf-8")
    assert main([str(thin), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 0
    assert "1 usable column(s) (full_name)" in capsys.readouterr().err
    thin.write_text("record_id,full_name,phone\n1,Wei Chen,13800138000\n2,Li Na,\n", encoding="utf-8")
    assert main([str(thin), "--out", str(tmp_path / "o.csv"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
