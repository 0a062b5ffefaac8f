"""Steward review: the queue of review-band pairs and the decisions that always win over the model.

A decision is stored once per unordered pair (keys sorted) in ``review_decision``. On every later match run
``match``  is a must-link (the model can never split the pair) and ``no-match`` a cannot-link (the pair is
never put in one golden record again, whatever the scores say).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.store import Store, match_pair, review_decision, staged_record, xref

Decision = Literal["match", "no-match"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def pair_key(a: str, b: str) -> tuple[str, str]:
    """Pairs are unordered: stored and looked up with the smaller record key first."""
    return (a, b) if a <= b else (b, a)


def parse_pair(text: str) -> tuple[str, str]:
    """``"erp:1|webshop:7"`` (the PAIR argument of ``hub review decide``) -> ("erp:1", "webshop:7")."""
    left, sep, right = text.partition("|")
    if not sep or not left.strip() or not right.strip():
        raise ValueError(f"a pair is written LEFT_KEY|RIGHT_KEY, not {text!r}")
    return pair_key(left.strip(), right.strip())


@dataclass(frozen=True)
class ReviewItem:
    left_key: str
    right_key: str
    match_weight: float
    match_probability: float
    explanation: dict
    left_golden_id: str | None
    right_golden_id: str | None
    left_record: dict | None
    right_record: dict | None

    @property
    def pair(self) -> str:
        """The PAIR argument of ``hub review decide``."""
        return f"{self.left_key}|{self.right_key}"


def _undecided() -> sa.ColumnElement[bool]:
    """Review-band pairs no steward has decided."""
    decided = sa.select(review_decision.c.left_key).where(
        review_decision.c.left_key == match_pair.c.left_key, review_decision.c.right_key == match_pair.c.right_key
    )
    return sa.and_(match_pair.c.band == "review", ~sa.exists(decided))


def pending_reviews(store: Store) -> int:
    """How many pairs await a steward's decision (``review_queue(limit=None)`` holds as many)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(match_pair).where(_undecided())).scalar_one()


def review_queue(store: Store, limit: int | None = 50) -> list[ReviewItem]:
    """Undecided review-band pairs, most uncertain first (probability closest to 0.5), with both records."""
    q = (
        sa.select(match_pair)
        .where(_undecided())
        .order_by(sa.func.abs(match_pair.c.match_probability - 0.5), match_pair.c.left_key, match_pair.c.right_key)
    )
    if limit:
        q = q.limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(q).all()
        keys = sorted({k for r in rows for k in (r.left_key, r.right_key)})
        records = _records(conn, keys)
        goldens = _current_golden(conn, keys)
    return [
        ReviewItem(
            left_key=r.left_key,
            right_key=r.right_key,
            match_weight=r.match_weight,
            match_probability=r.match_probability,
            explanation=r.explanation or {},
            left_golden_id=goldens.get(r.left_key),
            right_golden_id=goldens.get(r.right_key),
            left_record=records.get(r.left_key),
            right_record=records.get(r.right_key),
        )
        for r in rows
    ]


def _records(conn: Connection, keys: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for i in range(0, len(keys), 500):
        for k, rec in conn.execute(
            sa.select(staged_record.c.record_key, staged_record.c.record).where(
                staged_record.c.entity == "customers", staged_record.c.record_key.in_(keys[i : i + 500])
            )
        ):
            out[k] = rec
    return out


def _current_golden(conn: Connection, keys: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(keys), 500):
        for k, g in conn.execute(
            sa.select(xref.c.record_key, xref.c.golden_id).where(
                xref.c.valid_to.is_(None), xref.c.record_key.in_(keys[i : i + 500])
            )
        ):
            out[k] = g
    return out


def decide(
    store: Store, left_key: str, right_key: str, decision: Decision, by: str | None = None, note: str | None = None
) -> None:
    """Record (or replace) a steward decision. It takes effect on the next match_and_cluster run."""
    if decision not in ("match", "no-match"):
        raise ValueError(f"decision must be 'match' or 'no-match', not {decision!r}")
    if left_key == right_key:
        raise ValueError("a pair needs two different record keys")
    lk, rk = pair_key(left_key, right_key)
    now = _now()
    with store.begin() as conn:
        known = conn.execute(
            sa.select(sa.func.count()).select_from(staged_record).where(
                staged_record.c.entity == "customers", staged_record.c.record_key.in_((lk, rk))
            )
        ).scalar_one()
        if known != 2:
            raise KeyError(f"unknown customer record key in pair {lk}|{rk}")
        updated = conn.execute(
            review_decision.update()
            .where(review_decision.c.left_key == lk, review_decision.c.right_key == rk)
            .values(decision=decision, decided_by=by, note=note, decided_at=now)
        ).rowcount
        if not updated:
            conn.execute(
                review_decision.insert().values(
                    left_key=lk, right_key=rk, decision=decision, decided_by=by, note=note, decided_at=now
                )
            )


@dataclass(frozen=True)
class Constraints:
    must_link: list[tuple[str, str]]
    cannot_link: list[tuple[str, str]]
    decided_at: dict[tuple[str, str], datetime]

    def cannot_set(self) -> set[tuple[str, str]]:
        return {pair_key(a, b) for a, b in self.cannot_link}


def load_constraints(conn: Connection) -> Constraints:
    must, cannot, at = [], [], {}
    for lk, rk, d, when in conn.execute(
        sa.select(
            review_decision.c.left_key, review_decision.c.right_key, review_decision.c.decision,
            review_decision.c.decided_at,
        )
    ):
        p = pair_key(lk, rk)
        (must if d == "match" else cannot).append(p)
        at[p] = when
    return Constraints(sorted(must), sorted(cannot), at)
