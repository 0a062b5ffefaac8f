"""Matching engine on labelled synthetic data: quality floors, non-chaining, explanation, link-only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hub.dedupe import DedupeSettings, deduplicate
from hub.dedupe import synthetic as syn
from hub.dedupe.blocking import candidate_pairs
from hub.dedupe.evaluate import cluster_metrics, pair_recall
from hub.dedupe.prepare import prepare


def _run(df: pd.DataFrame, link_only: bool = False):
    df = df.astype(str)
    res = deduplicate(df.drop(columns=["entity_id"]), link_only=link_only)
    pred = pd.Series(res.clusters["cluster_id"].to_numpy(), index=res.clusters["record_id"].to_numpy())
    return res, cluster_metrics(pred, syn.truth_of(df))


@pytest.fixture(scope="module")
def febrl_link():
    return syn.febrl_like(2000, link=True, seed=101)


@pytest.fixture(scope="module")
def customers():
    return syn.customers(1500, seed=102)


def test_two_file_linkage_pairwise_f1(febrl_link):
    res, m = _run(febrl_link, link_only=True)
    assert m["pairwise_precision"] >= 0.998, m
    assert m["pairwise_f1"] >= 0.995, m
    # link-only: never a pair inside one file
    src = dict(zip(febrl_link["record_id"], febrl_link["source"], strict=True))
    pairs = res.pairs
    assert len(pairs) and all(src[a] != src[b] for a, b in zip(pairs.record_id_l, pairs.record_id_r, strict=True))


def test_typo_dedup_cluster_f1():
    df = syn.febrl_like(800, 1200, 5, seed=103)
    _, m = _run(df)
    assert m["pairwise_precision"] >= 0.995, m
    assert m["cluster_f1"] >= 0.98, m


def test_customers_with_households_and_namesakes(customers):
    _, m = _run(customers)
    assert m["pairwise_precision"] >= 0.98, m
    assert m["cluster_f1"] >= 0.97, m


def test_sparse_multisource_floor():
    _, m = _run(syn.sparse_multisource(1500, seed=104))
    assert m["pairwise_precision"] >= 0.88, m
    assert m["cluster_f1"] >= 0.83, m


def test_blocking_recall_and_caps(customers):
    df = customers.astype(str)
    p = prepare(df.drop(columns=["entity_id"]))
    left, right, stats = candidate_pairs(p)
    rec = pair_recall(p.record_id[left], p.record_id[right], syn.truth_of(df))
    assert rec >= 0.98, (rec, stats)
    # a switchboard number shared by 500 records must not yield 500*499/2 pairs
    big = pd.DataFrame({"record_id": [f"r{k}" for k in range(500)], "phone": ["+86 21 6234 5678"] * 500,
                        "full_name": [f"Person {k}" for k in range(500)]})
    pb = prepare(big)
    _, _, st = candidate_pairs(pb)
    assert st["phone"] <= 500 * 4, st


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).fillna("").astype(str)


BACKGROUND = syn.customers(600, seed=7).drop(columns=["entity_id"])


def _clusters_of(rows: list[dict]) -> dict[str, str]:
    df = pd.concat([_frame(rows), BACKGROUND.astype(str)], ignore_index=True).fillna("")
    res = deduplicate(df)
    return dict(zip(res.clusters.record_id, res.clusters.cluster_id, strict=True))


def test_mixed_scripts_link_and_namesakes_do_not():
    c = _clusters_of([
        {"record_id": "x1", "full_name": "陳偉", "phone": "+86 138-0013-8000", "city": "上海", "birth_date": "1985-03-07"},
        {"record_id": "x2", "full_name": "陈伟", "phone": "13800138000", "city": "上海市"},
        {"record_id": "x3", "full_name": "Chen Wei", "phone": "0086 138 0013 8000", "email": "chenwei85@qq.com"},
        {"record_id": "x4", "full_name": "WEI CHEN", "email": "chenwei85@qq.com", "birth_date": "1985年3月7日"},
        # namesakes: same common name and city, different birth dates and ids
        {"record_id": "n1", "full_name": "王伟", "city": "北京", "birth_date": "1980-01-02",
         "national_id": "110101198001021234", "phone": "13911110000"},
        {"record_id": "n2", "full_name": "王偉", "city": "北京", "birth_date": "1992-07-15",
         "national_id": "110105199207159876", "phone": "13922220000"},
    ])
    assert c["x1"] == c["x2"] == c["x3"] == c["x4"]
    assert c["n1"] != c["n2"]


def test_household_members_stay_apart_and_do_not_chain():
    c = _clusters_of([
        # household: same surname, street, landline; different given names and birth dates
        {"record_id": "h1", "full_name": "张伟", "street": "上海市南京路100号", "city": "上海", "phone": "021 6234 5678",
         "birth_date": "1960-05-01"},
        {"record_id": "h2", "full_name": "张芳", "street": "上海市南京路100号", "city": "上海", "phone": "021 6234 5678",
         "birth_date": "1962-08-11"},
        {"record_id": "h3", "full_name": "张伟", "street": "上海市南京路100号", "city": "上海", "phone": "+86 21 6234 5678"},
        # a bridge record: name only + city, could attach to either Zhang Wei or nobody
        {"record_id": "h4", "full_name": "Zhang Fang", "city": "Shanghai", "phone": "021-62345678"},
    ])
    assert c["h1"] != c["h2"]
    assert c["h3"] != c["h2"]
    assert not (c["h4"] == c["h1"] and c["h4"] == c["h2"])  # never both via the bridge


def test_pairs_explain_every_weight(customers):
    res = deduplicate(customers.drop(columns=["entity_id"]).astype(str))
    pairs = res.pairs
    wcols = [c for c in pairs.columns if c.endswith("_weight") and c not in ("match_weight", "prior_weight")]
    lcols = [c for c in pairs.columns if c.endswith("_level")]
    assert len(wcols) == len(lcols) >= 8
    total = pairs[wcols].sum(axis=1).to_numpy() + pairs["prior_weight"].to_numpy()
    assert np.allclose(total, pairs["match_weight"].to_numpy(), atol=0.05)
    assert set(pairs["band"].unique()) <= {"auto_match", "review", "non_match"}
    assert ((pairs["match_probability"] >= 0) & (pairs["match_probability"] <= 1)).all()
    # missing comparisons carry no weight
    for lc in lcols:
        miss = pairs[lc] == "missing"
        assert (pairs.loc[miss, lc.replace("_level", "_weight")] == 0).all()


def test_thresholds_are_settings(customers):
    df = customers.drop(columns=["entity_id"]).astype(str)
    strict = deduplicate(df, settings=DedupeSettings(auto_match=0.999999))
    loose = deduplicate(df)
    assert strict.clusters.cluster_id.nunique() >= loose.clusters.cluster_id.nunique()


@pytest.mark.parametrize("rows", [
    [],
    [{"record_id": "1", "full_name": "Alice Wong"}],
    [{"record_id": "1", "full_name": "Alice Wong", "phone": "123456789"},
     {"record_id": "2", "full_name": "Bob Smith", "phone": "987654321"}],
])
def test_tiny_inputs(rows):
    df = pd.DataFrame(rows, columns=["record_id", "full_name", "phone"]).fillna("")
    res = deduplicate(df)
    assert list(res.clusters.record_id) == list(df.record_id)
    assert res.clusters.cluster_id.nunique() == len(df)
    assert isinstance(res.pairs, pd.DataFrame)


# Floors on the independently written generator (hub.dedupe.synthetic_alt: FEBRL dsgen-style corruption,
# IME homophones, swapped name fields, shared mailboxes, WeChat nicknames) — data the engine was not
# designed against; a change that only helps our own generator shows up here.
@pytest.mark.parametrize(("kind", "size", "link_only", "metric", "floor"), [
    ("febrl_link", 2000, True, "pairwise_f1", 0.99),
    ("febrl_dedup", 3000, False, "cluster_f1", 0.985),
    ("customers_single_source", 1500, False, "cluster_f1", 0.91),
    ("sparse_multisource", 1500, False, "bcubed_f1", 0.90),
])
def test_independent_generator_floors(kind, size, link_only, metric, floor):
    from hub.dedupe import synthetic_alt as alt

    df = getattr(alt, kind)(size, seed=41).astype(str)
    res = deduplicate(df.drop(columns=["entity_id"]), link_only=link_only)
    pred = pd.Series(res.clusters["cluster_id"].to_numpy(), index=res.clusters["record_id"].to_numpy())
    m = cluster_metrics(pred, alt.truth_of(df))
    assert m[metric] >= floor, m
