"""Quality metrics against ground truth: pairwise and cluster precision/recall/F1, blocking recall."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def _pairs_in(labels: np.ndarray) -> float:
    _, c = np.unique(labels, return_counts=True)
    return float((c * (c - 1) // 2).sum())


def cluster_metrics(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """``predicted`` and ``truth`` map record_id -> cluster/entity id.

    pairwise_*: over record pairs placed together; cluster_*: share of predicted clusters that equal a
    true cluster exactly (precision) and of true clusters reproduced exactly (recall); bcubed_*: per-record
    overlap of predicted and true cluster, averaged over records."""
    t = truth.reindex(predicted.index).astype(str).to_numpy()
    p = predicted.astype(str).to_numpy()
    pc = pd.factorize(p)[0].astype(np.int64)
    tc = pd.factorize(t)[0].astype(np.int64)
    both = pc * (tc.max() + 1) + tc
    tp = _pairs_in(both)
    pred_pairs, true_pairs = _pairs_in(pc), _pairs_in(tc)
    pp = tp / pred_pairs if pred_pairs else 1.0
    pr = tp / true_pairs if true_pairs else 1.0
    # exact cluster agreement: a predicted cluster is correct iff its members are exactly one true cluster
    df = pd.DataFrame({"p": pc, "t": tc})
    pred_sets = df.groupby("p")["t"].agg(lambda s: (s.iloc[0], len(s)) if s.nunique() == 1 else None)
    true_size = df.groupby("t").size()
    correct = sum(1 for v in pred_sets if v is not None and true_size[v[0]] == v[1])
    cp = correct / len(pred_sets) if len(pred_sets) else 1.0
    cr = correct / len(true_size) if len(true_size) else 1.0
    # B-cubed: per record, the share of its predicted cluster that is its true cluster and vice versa
    n_both = np.bincount(pd.factorize(both)[0])[pd.factorize(both)[0]].astype(np.float64)
    n_pred = np.bincount(pc)[pc].astype(np.float64)
    n_true = np.bincount(tc)[tc].astype(np.float64)
    bp = float((n_both / n_pred).mean()) if len(pc) else 1.0
    br = float((n_both / n_true).mean()) if len(pc) else 1.0
    return {
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": _f1(bp, br),
        "pairwise_precision": pp, "pairwise_recall": pr, "pairwise_f1": _f1(pp, pr),
        "cluster_precision": cp, "cluster_recall": cr, "cluster_f1": _f1(cp, cr),
        "true_pairs": true_pairs, "predicted_pairs": pred_pairs,
    }


def pair_recall(left_ids: np.ndarray, right_ids: np.ndarray, truth: pd.Series, link_sources: pd.Series | None = None
                ) -> float:
    """Share of true matching pairs present among (left_ids, right_ids) — blocking recall."""
    t = truth.astype(str)
    ent_l = t.reindex(left_ids).to_numpy()
    ent_r = t.reindex(right_ids).to_numpy()
    found = float((ent_l == ent_r).sum())
    if link_sources is None:
        total = _pairs_in(pd.factorize(t.to_numpy())[0])
    else:
        df = pd.DataFrame({"e": t.to_numpy(), "s": link_sources.reindex(t.index).astype(str).to_numpy()})
        per = df.groupby(["e", "s"]).size().unstack(fill_value=0).to_numpy().astype(float)
        total = float(((per.sum(axis=1) ** 2 - (per**2).sum(axis=1)) / 2).sum())
    return found / total if total else 1.0
