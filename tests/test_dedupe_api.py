"""The engine's public verbs: a fitted model stored and reloaded scores exactly as the fitted one, on the same
records and on any subset of them; steward must-/cannot-links bind the clustering; explanations add up."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hub.dedupe import (
    DedupeSettings,
    MatchModel,
    block,
    cluster_records,
    compare_pairs,
    deduplicate,
    explain,
    fit,
    prepare_records,
    score,
    standardise_records,
)
from hub.dedupe import synthetic as syn


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return syn.customers(1200, seed=31).astype(str)


@pytest.fixture(scope="module")
def fitted(frame):
    records = prepare_records(frame.drop(columns=["entity_id"]))
    cand = block(records)
    levels = compare_pairs(records, cand.left, cand.right)
    f = fit(records, cand, levels)
    return records, cand, levels, f


def test_verbs_reproduce_deduplicate(frame, fitted):
    records, cand, levels, f = fitted
    scores = score(f.fs, records, cand.left, cand.right, levels, fitted=f)
    labels = cluster_records(records, f.fs, cand.left, cand.right, scores)
    res = deduplicate(frame.drop(columns=["entity_id"]))
    assert (res.clusters["cluster_id"].to_numpy() == records.record_id[labels]).all()


def test_stored_model_scores_like_the_fitted_one(fitted):
    records, cand, levels, f = fitted
    reloaded = MatchModel.from_json(json.loads(json.dumps(f.model.to_json())))
    bound = reloaded.bind(records.p, records.vocab)
    a = score(f.fs, records, cand.left, cand.right, levels, fitted=f)
    b = score(bound, records, cand.left, cand.right, levels)
    assert np.array_equal(a.match_weight, b.match_weight)
    assert np.array_equal(a.conflict, b.conflict)
    # the stored model holds no value in clear text
    text = json.dumps(f.model.to_json())
    assert records.p.key("phone").uniques[0] not in text


def test_subset_scores_like_the_whole(frame, fitted):
    """New records against the rest: a batch of a subset, scored with the stored model, gives every pair the
    weight it has in the whole population."""
    records, cand, levels, f = fitted
    full = score(f.fs, records, cand.left, cand.right, levels, fitted=f)
    sub_ids = set(frame["record_id"].iloc[::3]) | set(frame["record_id"].iloc[1::3])
    sub = prepare_records(frame[frame["record_id"].isin(sub_ids)].drop(columns=["entity_id"]))
    pos = {r: k for k, r in enumerate(sub.record_id.tolist())}
    rid = records.record_id
    keep = np.array([rid[a] in pos and rid[b] in pos for a, b in zip(cand.left, cand.right, strict=True)])
    i = np.array([pos[r] for r in rid[cand.left[keep]]], dtype=np.int32)
    j = np.array([pos[r] for r in rid[cand.right[keep]]], dtype=np.int32)
    s = score(f.model.bind(sub.p, sub.vocab), sub, i, j)
    # batch-level decisions (a phone held by two families in the whole population, by one in the subset) change
    # a record's fingerprint: every pair whose records keep theirs scores as in the whole
    fp_full, fp_sub = records.fingerprint(), sub.fingerprint()
    same = (fp_full[cand.left[keep]] == fp_sub[i]) & (fp_full[cand.right[keep]] == fp_sub[j])
    assert same.mean() > 0.99, same.mean()
    assert np.allclose(s.match_weight[same], full.match_weight[keep][same], atol=1e-4)


def test_explanation_adds_up(fitted):
    records, cand, levels, f = fitted
    scores = score(f.fs, records, cand.left, cand.right, levels, fitted=f)
    prior, contrib = explain(f.fs, records, cand.left, cand.right, levels)
    assert np.allclose(prior + contrib.sum(axis=1), scores.match_weight, atol=1e-3)


def test_block_new_records_against_the_rest(fitted):
    records, cand, _, _ = fitted
    new = np.zeros(records.n, dtype=bool)
    new[::50] = True
    part = block(records, new=new)
    expect = new[cand.left] | new[cand.right]
    assert np.array_equal(part.left, cand.left[expect]) and np.array_equal(part.right, cand.right[expect])


def test_steward_links_bind_the_clustering():
    rows = [
        {"record_id": "a", "full_name": "Chen Wei", "phone": "+86 138 0013 8000", "email": "chen.wei@example.com"},
        {"record_id": "b", "full_name": "陈伟", "phone": "13800138000", "email": "chen.wei@example.com"},
        {"record_id": "c", "full_name": "Maria Lopez", "city": "Madrid"},
        {"record_id": "d", "full_name": "Jan Novak", "city": "Praha"},
    ]
    background = syn.customers(300, seed=9).drop(columns=["entity_id"]).astype(str)
    records = prepare_records(pd.concat([pd.DataFrame(rows), background]).fillna("").astype(str))
    cand = block(records)
    levels = compare_pairs(records, cand.left, cand.right)
    f = fit(records, cand, levels)
    scores = score(f.fs, records, cand.left, cand.right, levels, fitted=f)
    s = DedupeSettings()
    free = cluster_records(records, f.fs, cand.left, cand.right, scores, s)
    assert free[0] == free[1] and free[2] != free[3]
    bound = cluster_records(records, f.fs, cand.left, cand.right, scores, s,
                    must_link=(np.array([2]), np.array([3])), cannot_link=(np.array([0]), np.array([1])))
    assert bound[0] != bound[1]
    assert bound[2] == bound[3]


def test_further_phones_and_emails_are_compared_and_blocked_on() -> None:
    """phone_2.. / email_2.. columns: a record's further values meet and agree with another record's first."""
    import pandas as pd

    from hub.dedupe import deduplicate

    people = [("Anna", "Schmidt"), ("Wei", "Chen"), ("John", "Miller"), ("Maria", "Garcia"), ("Kenji", "Sato")]
    rows = []
    for k, (g, f) in enumerate(people * 40):
        n = k // len(people)
        rows.append({"record_id": f"a{k:04d}", "source": "erp", "given_name": g, "family_name": f"{f}{n}",
                     "phone": f"+8613{k:09d}", "phone_2": f"+491701{k:06d}", "email": f"{g}.{k}@a.example.org",
                     "email_2": f"{g}.{f}{k}@mail.de"})
        rows.append({"record_id": f"b{k:04d}", "source": "shop", "given_name": g, "family_name": f"{f}{n}",
                     "phone": f"+491701{k:06d}" if k % 2 else "", "email": "" if k % 2 else f"{g}.{f}{k}@mail.de"})
    res = deduplicate(pd.DataFrame(rows))
    label = dict(zip(res.clusters["record_id"], res.clusters["cluster_id"], strict=True))
    linked = sum(label[f"a{k:04d}"] == label[f"b{k:04d}"] for k in range(len(rows) // 2))
    assert linked == len(rows) // 2
    pairs = res.pairs.set_index(["record_id_l", "record_id_r"])
    assert pairs.loc[("a0001", "b0001"), "phone_level"] == "exact"
    assert pairs.loc[("a0000", "b0000"), "email_level"] == "exact"


def test_further_addresses_are_compared() -> None:
    """street_2 / city_2 / postal_code_2 …: a record's further address (a shop's shipping address, an ERP party's
    second site) agrees with another record's first address as the best agreement of any two of them."""
    import pandas as pd

    from hub.dedupe import deduplicate

    given = ["Anna", "Wei", "John", "Maria", "Kenji"]
    family = ("Schmidt Chen Miller Garcia Sato Novak Okafor Jensen Rossi Dubois Kowalski Nakamura Silva Murphy "
              "Larsen Horvat Petrov Yilmaz Haddad Lindqvist").split()
    streets = ("Lindenstrasse Hafenweg Rosenallee Bergstrasse Muehlenweg Kastanienallee Seeweg Birkenweg "
               "Ahornplatz Eichendorffstrasse").split()
    cities = [("Berlin", "10115"), ("Hamburg", "20095"), ("Munich", "80331"), ("Cologne", "50667")]
    rows = []
    for k in range(len(given) * len(family)):
        g, f = given[k % len(given)], family[k // len(given)]
        home, work = cities[k % 4], cities[(k + 1) % 4]
        rows.append({"record_id": f"a{k:04d}", "given_name": g, "family_name": f,
                     "street": f"{k + 1} {streets[k % 10]}", "city": home[0], "postal_code": home[1],
                     "street_2": f"{k + 200} {streets[(k + 3) % 10]}", "city_2": work[0], "postal_code_2": work[1]})
        rows.append({"record_id": f"b{k:04d}", "given_name": g, "family_name": f,
                     "street": f"{k + 200} {streets[(k + 3) % 10]}", "city": work[0], "postal_code": work[1]})
    pairs = deduplicate(pd.DataFrame(rows)).pairs.set_index(["record_id_l", "record_id_r"])
    assert (pairs.loc[[(f"a{k:04d}", f"b{k:04d}") for k in range(len(rows) // 2)], "address_level"]
            == "street_exact").all()


def test_a_comparison_under_two_chunks_is_split_among_the_workers(frame, fitted, monkeypatch) -> None:
    """Between CMP_PARALLEL_MIN pairs and two chunks the pairs go to the workers in one share each (a first
    match run at 100k customers compared its 1.45M pairs in one process), with the levels of one process."""
    import hub.dedupe.engine as eng

    records, cand, levels, _ = fitted
    calls: list[tuple[int, int]] = []
    real = eng.fork_map

    def watched(fn, tasks, workers, **kw):
        calls.append((len(tasks), workers))
        return real(fn, tasks, workers, **kw)

    monkeypatch.setattr(eng, "fork_map", watched)
    monkeypatch.setattr(eng, "CMP_PARALLEL_MIN", len(cand) // 2)
    assert len(cand) < 2 * eng.CMP_CHUNK
    split = compare_pairs(records, cand.left, cand.right, workers=2)
    assert calls == [(2, 2)]
    assert np.array_equal(split, levels)
    calls.clear()
    monkeypatch.setattr(eng, "CMP_PARALLEL_MIN", len(cand))  # fewer pairs: one process (rapidfuzz's threads)
    assert np.array_equal(compare_pairs(records, cand.left, cand.right, workers=2), levels)
    assert calls == [(1, 1)]


def test_standardised_records_are_each_records_own_and_prepare_as_the_raw_frame() -> None:
    """standardise_records gives each record the standardised row prepare_records(capture=True) gives it, in
    whatever batch it comes (mixed-script names, further phones, e-mails and addresses included); preparing from
    those rows gives the keys preparing the raw frame gives."""
    frame = syn.customers(900, seed=41).drop(columns=["entity_id"]).astype(str)
    frame["phone_2"] = frame["phone"].iloc[::-1].to_numpy()
    frame["email_2"] = np.where(np.arange(len(frame)) % 3 == 0, frame["email"].iloc[::-1].to_numpy(), "")
    frame["street_2"] = np.where(np.arange(len(frame)) % 4 == 0, "张江路339号", "")
    frame["city_2"] = np.where(np.arange(len(frame)) % 4 == 0, "上海", "")
    whole = prepare_records(frame, capture=True)
    cuts = (0, 1, 400, len(frame))
    rows = pd.concat([standardise_records(frame.iloc[a:b].reset_index(drop=True))
                      for a, b in zip(cuts, cuts[1:], strict=False)], ignore_index=True)
    assert list(rows.columns) == list(whole.standardised.columns)
    assert rows.astype(str).equals(whole.standardised.astype(str))
    assert (rows["name_family"] != "").sum() > 1000 and (rows["street_2"] != "").sum() > 300
    again = prepare_records(frame, standardised=rows)
    assert again.p.keys.keys() == whole.p.keys.keys()
    for name, col in whole.p.keys.items():
        assert np.array_equal(col.values(), again.p.keys[name].values()), name
