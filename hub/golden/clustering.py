"""Clustering with steward constraints (pure functions).

``greedy_clusters`` merges by descending match weight (must-links first, as infinite weight) and refuses any
merge that would put a cannot-link pair in one cluster. The result depends only on the edges inside each
connected component, which is what makes incremental re-clustering of affected components equal to a full
rebuild. ``apply_constraints`` repairs an engine's clustering the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hub.golden.review import pair_key

INF = float("inf")


class _UF:
    def __init__(self, nodes: Iterable[str]) -> None:
        self.parent = {n: n for n in nodes}
        self.members: dict[str, set[str]] = {n: {n} for n in self.parent}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> str:
        ra, rb = self.find(a), self.find(b)
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        return ra


def greedy_clusters(
    nodes: Iterable[str],
    edges: Iterable[tuple[str, str, float]],
    must_link: Iterable[tuple[str, str]] = (),
    cannot_link: Iterable[tuple[str, str]] = (),
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Cluster ``nodes``; returns (record_key -> cluster_key, must-links refused because of a cannot-link).

    cluster_key is the smallest record key of the cluster, so labels are deterministic.
    """
    nodes = set(nodes)
    uf = _UF(nodes)
    forbidden: dict[str, set[str]] = defaultdict(set)  # root -> records it must never contain
    for a, b in cannot_link:
        if a in nodes and b in nodes:
            forbidden[a].add(b)
            forbidden[b].add(a)
    ordered = sorted(
        [(INF, *pair_key(a, b)) for a, b in must_link if a in nodes and b in nodes]
        + [(w, *pair_key(a, b)) for a, b, w in edges if a in nodes and b in nodes],
        key=lambda e: (-e[0], e[1], e[2]),
    )
    refused: list[tuple[str, str]] = []
    for w, a, b in ordered:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        fa, fb = forbidden.get(ra), forbidden.get(rb)
        small, other_forbidden = (uf.members[ra], fb) if len(uf.members[ra]) <= len(uf.members[rb]) else (
            uf.members[rb], fa)
        if other_forbidden and not other_forbidden.isdisjoint(small):
            if w == INF:
                refused.append((a, b))
            continue
        root = uf.union(ra, rb)
        merged = (fa or set()) | (fb or set())
        forbidden.pop(ra, None)
        forbidden.pop(rb, None)
        if merged:
            forbidden[root] = merged
    return _labels(uf), refused


def _labels(uf: _UF) -> dict[str, str]:
    out: dict[str, str] = {}
    for members in uf.members.values():
        label = min(members)
        for m in members:
            out[m] = label
    return out


def apply_constraints(
    clusters: dict[str, str],
    positive_edges: Iterable[tuple[str, str, float]],
    must_link: Iterable[tuple[str, str]],
    cannot_link: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Make an engine's clustering obey steward decisions.

    A cluster holding a cannot-link pair is re-clustered greedily from its own positive edges; then each
    must-link joins the two clusters unless that would reunite a cannot-link pair.
    """
    must_link, cannot_link = list(must_link), list(cannot_link)
    by_label: dict[str, set[str]] = defaultdict(set)
    for k, lab in clusters.items():
        by_label[lab].add(k)
    broken = {clusters[a] for a, b in cannot_link if a in clusters and b in clusters and clusters[a] == clusters[b]}
    out: dict[str, str] = {}
    edges_by_label: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for a, b, w in positive_edges:
        la = clusters.get(a)
        if la is not None and la in broken and clusters.get(b) == la:
            edges_by_label[la].append((a, b, w))
    for lab, members in by_label.items():
        if lab in broken:
            sub, _ = greedy_clusters(members, edges_by_label[lab], must_link, cannot_link)
            out.update(sub)
        else:
            label = min(members)
            out.update((m, label) for m in members)
    # now the must-links, on the cluster level, with the same cannot-link guard
    nodes = sorted(set(out.values()))
    cannot_lab = [(out[a], out[b]) for a, b in cannot_link if a in out and b in out]
    must_lab = [(out[a], out[b]) for a, b in must_link if a in out and b in out and out[a] != out[b]]
    merged, _ = greedy_clusters(nodes, [], must_lab, cannot_lab)
    final: dict[str, str] = {}
    groups: dict[str, list[str]] = defaultdict(list)
    for k, lab in out.items():
        groups[merged[lab]].append(k)
    for members in groups.values():
        label = min(members)
        final.update((m, label) for m in members)
    refused = [(a, b) for a, b in must_link if a in final and b in final and final[a] != final[b]]
    return final, refused
