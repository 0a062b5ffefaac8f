"""Data checks run before the hub writes anything back (wired as Dagster asset checks in hub/assets.py): golden
layer consistency, quarantine rate, outbox targets, golden-id uniqueness, a check per quality dimension per
source (scores from hub/quality/dimensions.py) and the blocking merge/split brake (hub/quality/brake.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from hub.store import Store, chunked, golden_customer, push_outbox, quarantine, staged_record, xref


@dataclass
class CheckOutcome:
    passed: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head = "**passed**" if self.passed else "**failed**"
        rows = "\n".join(f"- {p}" for p in self.problems[:20])
        return f"{head}\n\n{rows}" if rows else head


def _records_with_several_open_xrefs() -> Any:
    """Record keys with more than one open xref row (both golden checks count them)."""
    return (sa.select(xref.c.record_key).where(xref.c.valid_to.is_(None)).group_by(xref.c.record_key)
            .having(sa.func.count() > 1).subquery())


def golden_consistency(store: Store) -> CheckOutcome:
    """Every staged customer has exactly one open xref to an active golden id; no national-id conflicts."""
    # counted in SQL (no record of the population in memory: at a million customers the staged records alone
    # decoded to several GB); each finding names its first key as an example
    sr, x, gc = staged_record.c, xref.c, golden_customer.c
    customers = sr.entity == "customers"
    is_open = x.valid_to.is_(None)
    linked = sa.exists().where(x.record_key == sr.record_key, is_open)
    several = _records_with_several_open_xrefs()
    # the open links' golden ids less the active ones: the active ids come off ix_golden_status (status,
    # golden_id) alone; a NOT EXISTS per link read each golden row for its status (at a million customers a
    # random read of each of ~1M rows of 4 KB: most of the check's minute)
    dangling_ids = sa.except_(sa.select(x.golden_id).where(is_open),
                              sa.select(gc.golden_id).where(gc.status == "active")).subquery()
    nid, nid_type = sr.record["national_id"].as_string(), sr.record["national_id_type"].as_string()
    holders = (sa.select(x.golden_id).select_from(staged_record)
               .join(xref, sa.and_(x.record_key == sr.record_key, is_open))
               .where(customers, nid.is_not(None), nid != "",
                      # an identifier of an undeclared kind ("other") is unchecked: a typo in it is no conflict
                      sa.or_(nid_type.is_(None), nid_type != "other"))
               .group_by(x.golden_id).having(sa.func.count(sa.distinct(nid)) > 1).subquery())
    with store.engine.connect() as conn:
        staged = conn.execute(sa.select(sa.func.count()).where(customers)).scalar_one()
        n_unmapped, first_unmapped = conn.execute(
            sa.select(sa.func.count(), sa.func.min(sr.record_key)).where(customers, ~linked)).one()
        n_multiple, first_multiple = conn.execute(
            sa.select(sa.func.count(), sa.func.min(several.c.record_key))).one()
        n_dangling, first_dangling = conn.execute(
            sa.select(sa.func.count(), sa.func.min(dangling_ids.c.golden_id))).one()
        n_conflicts, first_conflict = conn.execute(
            sa.select(sa.func.count(), sa.func.min(holders.c.golden_id))).one()
    problems = []
    if n_unmapped:
        problems.append(f"{n_unmapped} staged customer records without a golden id (e.g. {first_unmapped})")
    if n_multiple:
        problems.append(f"{n_multiple} records with more than one open xref row (e.g. {first_multiple})")
    if n_dangling:
        problems.append(f"{n_dangling} xref rows point at retired or missing golden ids (e.g. {first_dangling})")
    if n_conflicts:
        problems.append(f"{n_conflicts} golden records hold two different national ids (e.g. {first_conflict})")
    return CheckOutcome(
        passed=not problems,
        metadata={
            "staged_customers": staged,
            "unmapped_records": n_unmapped,
            "records_with_multiple_xref": n_multiple,
            "dangling_xref_golden_ids": n_dangling,
            "national_id_conflicts": n_conflicts,
        },
        problems=problems,
    )


def quarantine_rate(store: Store, max_rate: float = 0.10) -> CheckOutcome:
    with store.engine.connect() as conn:
        staged = dict(
            conn.execute(
                sa.select(staged_record.c.source, sa.func.count())
                .where(staged_record.c.entity == "customers")
                .group_by(staged_record.c.source)
            ).all()
        )
        held = dict(
            conn.execute(
                sa.select(quarantine.c.source, sa.func.count())
                .where(quarantine.c.entity.in_(("customers", "followers")))
                .group_by(quarantine.c.source)
            ).all()
        )
    problems, meta = [], {}
    for source in sorted(set(staged) | set(held)):
        total = staged.get(source, 0) + held.get(source, 0)
        rate = held.get(source, 0) / total if total else 0.0
        meta[f"quarantine_rate_{source}"] = round(rate, 4)
        if rate > max_rate:
            problems.append(f"{source}: {rate:.1%} of customer records in quarantine (limit {max_rate:.0%})")
    return CheckOutcome(passed=not problems, metadata=meta, problems=problems)


def outbox_targets(store: Store, may_create: frozenset[str] = frozenset()) -> CheckOutcome:
    """Rows without a target record are creates: only targets configured with create_missing may have them."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(push_outbox.c.target, sa.func.count())
            .where(push_outbox.c.status.in_(("pending", "error")), push_outbox.c.target_id == "")
            .group_by(push_outbox.c.target)
        ).all()
    bad = {t: n for t, n in rows if t not in may_create}
    problems = [f"{n} pending rows for {t} with no target record (create not supported)" for t, n in bad.items()]
    return CheckOutcome(passed=not bad, metadata={"rows_without_target": sum(bad.values())}, problems=problems)


# -- quality dimensions and the push brake (hub/quality) -------------------------------------------------------


@dataclass(frozen=True)
class DimensionCheck:
    """One asset check on one dimension of one source (or overall: ``source`` None)."""

    name: str
    asset: str
    dimension: str
    source: str | None
    description: str


def dimension_checks(sources: list[str], customer_sources: list[str]) -> list[DimensionCheck]:
    """The checks for every dimension per source; completeness and duplicates only where a source has customers."""
    out = []
    for s in sources:
        out.append(DimensionCheck(
            f"freshness_{s}", f"raw_{s}", "timeliness", s,
            f"Age of the newest data from `{s}` against its expected age (hub.yaml quality.expected_age_hours): "
            "warns past the amber threshold, errors past red — a sync that silently stopped shows here."))
        out.append(DimensionCheck(
            f"validity_{s}", "staged_records", "validity", s,
            f"Share of `{s}`'s records staged without quarantine or an invalid value, against the validity "
            "thresholds of hub.yaml quality."))
    for s in customer_sources:
        out.append(DimensionCheck(
            f"completeness_{s}", "staged_records", "completeness", s,
            f"Share of `{s}`'s customer records holding the expected fields (name, e-mail, phone, birth date, "
            "address as configured per source)."))
        out.append(DimensionCheck(
            f"duplicates_{s}", "staged_records", "uniqueness", s,
            f"Duplicate rate inside `{s}` itself: its customer records that share a golden customer with another "
            f"record of `{s}` (guest checkouts excluded) — duplicates the source system should merge."))
    out.append(DimensionCheck(
        "cross_source_consistency", "golden_customers", "consistency", None,
        "Golden customers whose records disagree on name, birth date or national id (conflicts across sources)."))
    out.append(DimensionCheck(
        "possible_duplicates", "steward_review_queue", "uniqueness", None,
        "Golden customers waiting in the steward queue as a possible duplicate of another, as a share of all."))
    out.append(DimensionCheck(
        "steward_agreement", "steward_review_queue", "accuracy", None,
        "Steward decisions that agree with the model (accuracy proxy); no decisions yet passes with a note."))
    return out


def dimension_outcome(check: DimensionCheck, dimensions: dict[str, Any]) -> tuple[CheckOutcome, str]:
    """Green passes; amber fails with WARN; red fails with ERROR; no data passes. Returns (outcome, severity)."""
    d = dimensions[check.dimension]
    entry = d["sources"].get(check.source) if check.source else d
    if entry is None or entry.get("score") is None:
        return CheckOutcome(True, {"applies": False}, []), "WARN"
    score, status, t = entry["score"], entry["status"], entry["thresholds"]
    meta: dict[str, Any] = {"score": float(score), "threshold_green": float(t["green"]),
                            "threshold_amber": float(t["amber"])}
    for key, value in entry.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key not in ("score",):
            meta[key] = float(value) if isinstance(value, float) else int(value)
    problems = [] if status == "green" else [
        f"{check.dimension} {'of ' + check.source if check.source else 'overall'} is {score:g} ({status}; green "
        f"from {t['green']:g}, amber from {t['amber']:g}). {d['verdict']}"]
    return CheckOutcome(status == "green", meta, problems), "ERROR" if status == "red" else "WARN"


def brake_outcome(store: Store, quality: Any) -> CheckOutcome:
    """The blocking merge/split brake: fails while a person has not released a run that changed too much."""
    from hub.quality.brake import evaluate

    result = evaluate(store, quality)
    f = result.figures
    meta: dict[str, Any] = {}
    for key in ("merge_split_share", "unsupported_share"):
        if key in f:
            meta[key] = float(f[key])
    for key in ("golden_customers_merged_or_split", "accepted_golden_customers", "records_consolidated",
                "records_consolidated_unsupported"):
        if key in f:
            meta[key] = int(f[key])
    problems = list(result.reasons) if result.stopped else []
    if result.stopped:
        meta["release"] = f"Pushes wait for a person. To accept: {result.release_command}"
    return CheckOutcome(not result.stopped, meta, problems)


def golden_ids_unique(store: Store) -> CheckOutcome:
    """Each source record belongs to one golden id; every retired id resolves to an active one (no cycles)."""
    gc = golden_customer.c
    several = _records_with_several_open_xrefs()
    with store.engine.connect() as conn:
        multiple = conn.execute(sa.select(sa.func.count()).select_from(several)).scalar_one()
        # only retired ids and where their chains end are looked at, not every golden customer
        successor = dict(conn.execute(sa.select(gc.golden_id, gc.merged_into)
                                      .where(gc.status == "retired", gc.merged_into.is_not(None))).all())
        ends: dict[str, str] = {}
        for start in successor:
            seen, cur = set(), start
            while cur in successor and cur not in seen:
                seen.add(cur)
                cur = successor[cur]
            ends[start] = cur
        wanted = sorted(set(ends.values()))
        status: dict[str, str] = {}
        for part in chunked(wanted, 500):
            status.update(conn.execute(sa.select(gc.golden_id, gc.status).where(gc.golden_id.in_(part))).all())
    broken = sum(1 for end in ends.values() if status.get(end) != "active")
    problems = []
    if multiple:
        problems.append(f"{multiple} source records belong to more than one golden id at once")
    if broken:
        problems.append(f"{broken} retired golden ids do not lead to an active golden customer")
    return CheckOutcome(not problems, {"records_with_several_golden_ids": multiple,
                                       "retired_ids_unresolvable": broken,
                                       "retired_ids": len(successor)}, problems)


def run_checks_apart(store: Store, runs: Sequence[Callable[[Store], Any]]) -> list[Any]:
    """Each ``run(store)`` in a forked child on a connection of its own, two at a time (order kept: the first
    ones start first).

    Checks are independent and most are one process's work (the brake in Python, the consistency checks in the
    database): run one after another, one core idled through each (100k people: the brake 1.6 s, the
    consistency check 0.7 s). In children, what they read (the brake: every open link, 2.1 GB at a million
    people) leaves with them. An in-memory SQLite store (another connection opens another database) runs them
    here."""
    from hub.dedupe.parallel import fork_map

    if store.in_memory:
        return [run(store) for run in runs]
    if len(runs) == 1:
        return [store.run_apart(runs[0])]

    def apart(run: Callable[[Store], Any]) -> Any:
        with store.own_copy() as own:
            return run(own)

    return fork_map(apart, list(runs), 2)
