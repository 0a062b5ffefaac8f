"""Blocking recall of `hub dedupe` on the labelled sets: the share of true matching pairs that the blocking
rules propose as candidates (a pair never proposed can never be matched), per rule and for their union, with
the candidate pair count — the figure the matching issue asks to be reported.

    python bench/bench_blocking.py --size 100000 [--sets febrl3,customers,...]

Uses the data cache of bench/bench_dedupe.py (same files in bench/out), generating what is missing.
Writes bench/out/blocking.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def true_pairs(entity: np.ndarray, source: np.ndarray | None, n: int) -> np.ndarray:
    """Sorted unique ``lo * n + hi`` codes of all record pairs of one entity (across sources if given)."""
    eid = pd.factorize(entity)[0]
    order = np.argsort(eid, kind="stable")
    e = eid[order]
    parts = []
    k = 1
    while True:
        same = e[:-k] == e[k:]
        if not same.any():
            break
        a, b = order[:-k][same], order[k:][same]
        parts.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
        k += 1
    enc = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    if source is not None:
        enc = enc[source[enc // n] != source[enc % n]]
    return enc


def measure(name: str, frame: pd.DataFrame, link_only: bool) -> list[dict]:
    from hub.dedupe.blocking import DEFAULT_RULES, candidate_pairs, rule_pairs
    from hub.dedupe.prepare import prepare

    p = prepare(frame.drop(columns=["entity_id"]))
    truth = true_pairs(frame["entity_id"].astype(str).to_numpy(), p.source if link_only else None, p.n)
    rows = []
    ranks: dict[str, np.ndarray] = {}
    for rule in DEFAULT_RULES:
        enc = np.unique(rule_pairs(p, rule, ranks))
        if link_only and len(enc):
            enc = enc[p.source[enc // p.n] != p.source[enc % p.n]]
        rows.append({"set": name, "rule": rule.name, "pairs": len(enc),
                     "recall": float(np.isin(truth, enc).mean()) if len(truth) else 1.0})
    t = time.perf_counter()
    left, right, _ = candidate_pairs(p, DEFAULT_RULES, link_only=link_only)
    enc = left.astype(np.int64) * p.n + right
    rows.append({"set": name, "rule": "ALL (union)", "pairs": len(enc), "true_pairs": len(truth),
                 "recall": float(np.isin(truth, enc).mean()) if len(truth) else 1.0,
                 "seconds": time.perf_counter() - t})
    return rows


def main() -> int:
    from bench_dedupe import LINK_SETS, _cached, gen_worker, paths  # the dedupe bench owns the data cache

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--sets", default="febrl3,febrl4,customers,sparse,alt_febrl3,alt_febrl4,alt_customers,alt_sparse")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for name in [s for s in args.sets.split(",") if s]:
        if not _cached(name, args.size):
            gen_worker(name, args.size)
        frame = pd.read_parquet(paths(name, args.size).data).astype(str)
        rows += measure(name, frame, name in LINK_SETS)
        print(rows[-1], file=sys.stderr, flush=True)
    lines = [f"# Blocking recall of hub dedupe, {args.size:,} records per set", "",
             "| set | candidate pairs (union) | true pairs | blocking recall |", "|---|---|---|---|"]
    for r in rows:
        if r["rule"] == "ALL (union)":
            lines.append(f"| {r['set']} | {r['pairs']:,} | {r['true_pairs']:,} | {r['recall']:.4f} |")
    lines += ["", "Per rule (pairs proposed by the rule alone, recall of the rule alone):", "",
              "| set | rule | pairs | recall |", "|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['rule']} | {r['pairs']:,} | {r['recall']:.4f} |" for r in rows
              if r["rule"] != "ALL (union)"]
    text = "\n".join(lines) + "\n"
    (OUT / "blocking.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
