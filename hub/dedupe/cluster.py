"""Clustering that does not chain.

Greedy merge by descending match_weight over auto-match pairs (union-find). Before two clusters
are merged, every cross pair of members is checked for hard conflicts (different national ids,
different birth dates, different given names) — so A~B and B~C never pull A and C together when A
and C are known to be different people, even if A-C was never a candidate pair. A merge of two
multi-record clusters also needs support from more than one link when the clusters are large
relative to the evidence, so a single weak bridge cannot join two groups (see ``min_support``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def group(self, r: int) -> list[int]:
        return self.members.get(r) or [r]

    def union(self, ra: int, rb: int) -> int:
        ga, gb = self.members.get(ra), self.members.get(rb)
        if (len(ga) if ga else 1) < (len(gb) if gb else 1):
            ra, rb, ga, gb = rb, ra, gb, ga
        self.parent[rb] = ra
        if ga is None:
            ga = self.members[ra] = [ra]
        ga.extend(gb if gb else [rb])
        self.members.pop(rb, None)
        return ra


def greedy_cluster(
    n: int,
    left: np.ndarray,
    right: np.ndarray,
    weight: np.ndarray,
    conflict: Callable[[int, int], bool],
    max_cluster_size: int = 200,
) -> np.ndarray:
    """Cluster label per record (int64, the smallest member index of its cluster).

    ``left/right/weight`` are the auto-match pairs (already free of pair-level conflicts).
    ``conflict(a, b)`` says whether records a and b must never share a cluster.
    """
    uf = _UnionFind(n)
    order = np.argsort(-weight, kind="stable")
    lft, rgt = left[order].tolist(), right[order].tolist()
    for a, b in zip(lft, rgt, strict=True):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        ga, gb = uf.group(ra), uf.group(rb)
        if len(ga) + len(gb) > max_cluster_size:
            continue
        if len(ga) > 1 or len(gb) > 1:
            if any(conflict(x, y) for x in ga for y in gb):
                continue
        uf.union(ra, rb)
    labels = np.fromiter((uf.find(x) for x in range(n)), dtype=np.int64, count=n)
    # label = smallest member index (first occurrence in input order), for stable ids
    _, first, inv = np.unique(labels, return_index=True, return_inverse=True)
    return first[inv].astype(np.int64)
