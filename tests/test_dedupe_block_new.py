"""``block(records, new=mask)``: new records blocked against the indexed rest gives exactly the pairs of a full
blocking that involve a new record — for every rule with its own cap and window, sorted neighbourhoods and
capped blocks included — on the shapes the engine meets: staged customers of the golden stage (several phones,
e-mails and addresses, shared landlines) and the CLI's synthetic customers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hub.dedupe import DedupeSettings, block, prepare_records
from hub.dedupe import synthetic as syn
from hub.golden.matching import engine_frame
from hub.golden.synthetic import stage_records, synthetic_records
from hub.store import Store, staged_record


def _staged_frame(store: Store, people: int) -> pd.DataFrame:
    stage_records(store, synthetic_records(people, seed=3))
    with store.engine.connect() as conn:
        return engine_frame(sorted(map(tuple, conn.execute(
            sa.select(staged_record.c.record_key, staged_record.c.record)
            .where(staged_record.c.entity == "customers")))))


def _masks(n: int, cand_left: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    busiest = np.bincount(cand_left, minlength=n).argsort()[-40:]  # records in the largest (capped) blocks
    out = {"none": np.zeros(n, dtype=bool), "all": np.ones(n, dtype=bool), "one": np.zeros(n, dtype=bool),
           "1%": rng.random(n) < 0.01, "20%": rng.random(n) < 0.2, "busiest": np.zeros(n, dtype=bool),
           "last": np.zeros(n, dtype=bool)}
    out["one"][n // 2] = True
    out["busiest"][busiest] = True
    out["last"][-5:] = True
    return out


def _check(records, settings: DedupeSettings) -> int:
    full = block(records, settings, workers=1)
    compared = 0
    for name, mask in _masks(records.n, full.left).items():
        part = block(records, settings, new=mask, workers=1)
        want = mask[full.left] | mask[full.right]
        assert np.array_equal(part.left, full.left[want]), name
        assert np.array_equal(part.right, full.right[want]), name
        assert part.stats["total"] == int(want.sum())
        compared += int(want.sum())
    return compared


# tight caps and wide windows: most blocks are over their cap, so the windows of the sorted blocks decide
TIGHT = DedupeSettings(rules=tuple(replace(r, cap=min(r.cap, 3) if r.cap else 0, window=r.window + 2)
                                   for r in DedupeSettings().rules))


@pytest.mark.parametrize("settings", [DedupeSettings(), TIGHT], ids=["default", "tight-caps"])
def test_new_against_the_rest_on_staged_customers(sqlite_store: Store, settings: DedupeSettings) -> None:
    records = prepare_records(_staged_frame(sqlite_store, 3000))
    assert records.n > 4000
    assert _check(records, settings) > 1000


@pytest.mark.parametrize("settings", [DedupeSettings(), TIGHT], ids=["default", "tight-caps"])
def test_new_against_the_rest_on_cli_customers(settings: DedupeSettings) -> None:
    frame = syn.customers(3000, seed=17).drop(columns=["entity_id"]).astype(str)
    records = prepare_records(frame)
    assert _check(records, settings) > 1000


def test_link_only_and_a_wrong_mask() -> None:
    frame = syn.customers(800, seed=2).drop(columns=["entity_id"]).astype(str)
    frame["source"] = np.where(np.arange(len(frame)) % 3 == 0, "erp", "shop")  # two files linked
    records = prepare_records(frame)
    full = block(records, link_only=True, workers=1)
    assert len(full) > 100
    mask = np.zeros(records.n, dtype=bool)
    mask[::7] = True
    part = block(records, link_only=True, new=mask, workers=1)
    want = mask[full.left] | mask[full.right]
    assert np.array_equal(part.left, full.left[want]) and np.array_equal(part.right, full.right[want])
    with pytest.raises(ValueError):
        block(records, new=mask[:-1])
