"""Persistent golden ids: map new clusters onto existing golden ids (pure; the lifecycle is in README.md).

Rules
- each old golden id *prefers* the new cluster holding most of its current members (ties: the part holding
  its longest-standing member, then the smallest record key) — so a split keeps the id on the larger/older part;
- a new cluster preferred by several old ids keeps the oldest one (created first, then smallest id) and the
  others are retired as aliases ``merged_into`` it;
- a cluster nobody prefers gets a freshly minted id (a split-off part or a brand-new customer);
- an old id left without any source record is retired without successor.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)  # slots: a first build makes one per golden id
class IdEvent:
    golden_id: str
    event: str  # minted | merged | split | retired | record_moved
    related_golden_id: str | None = None
    record_key: str | None = None
    reason: str | None = None


@dataclass
class IdAssignment:
    cluster_ids: dict[str, str]  # cluster_key -> golden_id
    retired: dict[str, str | None]  # golden_id -> surviving golden_id (None: no records left)
    minted: list[str] = field(default_factory=list)
    events: list[IdEvent] = field(default_factory=list)
    record_ids: dict[str, str] = field(default_factory=dict)  # record_key -> new golden_id


_FAR_PAST = datetime.min


def assign_golden_ids(
    clusters: Mapping[str, Collection[str]],
    old_members: Mapping[str, Collection[str]],
    created_at: Mapping[str, datetime],
    member_since: Mapping[str, datetime],
    mint: Callable[[int], list[str]],
    old_of: Mapping[str, str] | None = None,
) -> IdAssignment:
    """Assign golden ids to ``clusters`` (cluster_key -> record keys).

    ``old_members``: every affected old golden id -> all of its current record keys (records that are no
    longer staged simply do not appear in any cluster). ``created_at``: when each old id was minted;
    ``member_since``: since when each record belongs to its current golden id (xref valid_from).
    ``old_of``: record key -> its old golden id, the inverse of ``old_members`` (the caller may have it: a
    full build then holds one such map, not two); derived from ``old_members`` when not given.
    Clusters and old members may be any collections of distinct record keys.
    """
    record_cluster = {r: c for c, rs in clusters.items() for r in rs}
    if old_of is None:
        old_of = {r: g for g, rs in old_members.items() for r in rs}

    def age(g: str) -> tuple[datetime, str]:
        return (created_at.get(g, _FAR_PAST), g)

    preferred: dict[str, str] = {}
    parts: dict[str, list[str]] = {}
    for g in sorted(old_members):
        in_clusters = {record_cluster.get(r) for r in old_members[g]}
        in_clusters.discard(None)
        if len(in_clusters) <= 1:  # most ids: every remaining member in one cluster, nothing to rank
            if in_clusters:
                preferred[g] = in_clusters.pop()
                parts[g] = [preferred[g]]
            continue
        counts = Counter(record_cluster[r] for r in old_members[g] if r in record_cluster)
        oldest: dict[str, tuple[datetime, str]] = {}
        for r in old_members[g]:
            c = record_cluster.get(r)
            if c is not None:
                key = (member_since.get(r, _FAR_PAST), r)
                if c not in oldest or key < oldest[c]:
                    oldest[c] = key
        ranked = sorted(counts, key=lambda c: (-counts[c], oldest[c]))
        preferred[g] = ranked[0]
        parts[g] = ranked

    claimants: dict[str, list[str]] = defaultdict(list)
    for g, c in preferred.items():
        claimants[c].append(g)

    result = IdAssignment(cluster_ids={}, retired={})
    to_mint: list[str] = []
    for c in sorted(clusters):
        cl = sorted(claimants.get(c, ()), key=age)
        if cl:
            keeper = cl[0]
            result.cluster_ids[c] = keeper
            for g in cl[1:]:
                result.retired[g] = keeper
                result.events.append(IdEvent(keeper, "merged", g, None, f"absorbed {g}: clusters merged"))
                result.events.append(IdEvent(g, "retired", keeper, None, f"merged into {keeper}"))
        else:
            to_mint.append(c)
    new_ids = mint(len(to_mint)) if to_mint else []
    if len(new_ids) != len(to_mint):
        raise RuntimeError("mint returned the wrong number of golden ids")
    for c, g in zip(to_mint, new_ids, strict=True):
        result.cluster_ids[c] = g
        result.minted.append(g)
        sources = sorted({old_of[r] for r in clusters[c] if r in old_of})
        if sources:
            reason = "split from " + ", ".join(sources)
        else:
            reason = "new customer"
        result.events.append(IdEvent(g, "minted", sources[0] if sources else None, None, reason))
    for g in sorted(old_members):
        if g not in preferred:
            result.retired[g] = None
            result.events.append(IdEvent(g, "retired", None, None, "no source records left"))
            continue
        if len(parts[g]) > 1:
            for c in parts[g][1:]:
                other = result.cluster_ids[c]
                if other != result.cluster_ids[preferred[g]]:
                    result.events.append(
                        IdEvent(g, "split", other, None, f"records of {g} now belong to {other}")
                    )
    moved: list[str] = []
    for r, c in record_cluster.items():
        g = result.cluster_ids[c]
        result.record_ids[r] = g
        prev = old_of.get(r)
        if prev is not None and prev != g:
            moved.append(r)
    # in record order: record_cluster's order can follow set iteration, which differs between processes
    for r in sorted(moved):
        g, prev = result.record_ids[r], old_of[r]
        result.events.append(IdEvent(g, "record_moved", prev, r, f"record moved from {prev} to {g}"))
    return result
