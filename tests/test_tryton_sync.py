"""The whole hub against a real Tryton server, as a user runs it: ``hub sync`` in a folder whose ``hub.yaml``
holds only a ``tryton`` source — the full flow (pull, stage, match, golden records, 360, push, report); the
figures are read back from the run in the Dagster instance the command used (what the UI shows).

The Tryton server holds parties of shapes the hub was not designed around: a company, a party without any
contact mechanism or address, a switched-off party, 'other' / 'fax' / 'skype' contact mechanisms, a party
with two addresses in two countries, names in Chinese only. Then:

1. the first sync gives every customer party exactly one golden id in Tryton;
2. a second sync sends nothing and does not even read the parties again (the hub's own writes are no change);
3. five parties changed and three added are picked up, and the new ones get their golden ids;
4. golden ids removed in Tryton by someone else (a clerk deleting the identifier in the party form) are seen
   by the next pull, pushed again, and the data-quality report counts the drift.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tryton_harness as harness

from hub.connectors.tryton import GOLDEN_ID_PREFIX

# overlap_minutes 0: the seeding happened seconds ago, and the default overlap (5 minutes, for late commits of
# long transactions) would read every seeded party again on each sync — unchanged, but not what is measured
HUB_YAML = """\
sources:
  tryton:
    kind: tryton
    url_env: HUB_TRYTON_URL
    database_env: HUB_TRYTON_DATABASE
    user_env: HUB_TRYTON_USER
    password_env: HUB_TRYTON_PASSWORD
    options:
      overlap_minutes: 0
push:
  targets: [tryton]
"""

HUB = str(Path(sys.executable).parent / "hub")


def unusual_parties(rpc: harness.RawRpc) -> dict[str, int]:
    """Parties of shapes the seed does not make; returns their ids by what they are."""
    cn = rpc.search("country.country", [["code", "=", "CN"]], limit=1)[0]
    us = rpc.search("country.country", [["code", "=", "US"]], limit=1)[0]
    made = rpc.create("party.party", [
        {"name": "深圳市腾达科技有限公司",  # a company: no person, a switchboard, a fax and a website
         "addresses": [["create", [{"street": "科技园南区 18 栋", "city": "深圳", "postal_code": "518057",
                                     "country": cn}]]],
         "contact_mechanisms": [["create", [{"type": "phone", "value": "+86 755 8601 1234"},
                                            {"type": "fax", "value": "+86 755 8601 1235"},
                                            {"type": "website", "value": "https://tenda.example.cn"}]]],
         "identifiers": [["create", [{"type": None, "code": "USCC-91440300MA5F"}]]]},
        {"name": "欧阳娜娜"},  # nothing but a name: no address, no contact mechanism
        {"name": "司马光",  # switched off in the ERP (below: Tryton creates parties active)
         "contact_mechanisms": [["create", [{"type": "mobile", "value": "+86 139 1000 2000"}]]]},
        {"name": "诸葛亮",  # only 'other' and 'skype' contact mechanisms
         "contact_mechanisms": [["create", [{"type": "other", "value": "微信: kongming_181"},
                                            {"type": "skype", "value": "kongming.zhuge"}]]]},
        {"name": "Li Wei 李伟",  # two addresses in two countries
         "addresses": [["create", [{"street": "1号 人民大道", "city": "上海", "postal_code": "200003", "country": cn},
                                   {"street": "500 Grant Ave", "city": "San Francisco", "postal_code": "94108",
                                    "country": us}]]],
         "contact_mechanisms": [["create", [{"type": "email", "value": "li.wei@example.com"}]]]},
    ])
    out = dict(zip(["company", "bare", "inactive", "other_contacts", "two_addresses"], made, strict=True))
    rpc.write("party.party", [out["inactive"]], {"active": False})
    return out


@pytest.fixture(scope="module")
def tryton() -> Iterator[harness.TrytonServer]:
    with harness.running_server(parties=30, sales=12) as server:
        server.unusual = unusual_parties(server.rpc())  # type: ignore[attr-defined]
        yield server


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory, tryton: harness.TrytonServer) -> Path:
    work = tmp_path_factory.mktemp("tryton-sync")
    (work / "hub.yaml").write_text(HUB_YAML, encoding="utf-8")
    return work


def sync(workdir: Path, server: harness.TrytonServer, *, password: str | None = None,
         url: str | None = None) -> subprocess.CompletedProcess:
    """``hub sync`` in the user's folder (its hub.yaml, its .hub store and Dagster instance)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "HUB_CONFIG", "HUB_DATABASE_URL")}
    env.update({"HUB_TRYTON_URL": url or server.url, "HUB_TRYTON_DATABASE": server.database,
                "HUB_TRYTON_USER": server.username, "HUB_TRYTON_PASSWORD": password or server.password})
    return subprocess.run([HUB, "sync"], cwd=workdir, env=env, capture_output=True, text=True, timeout=1200)


def last_run(workdir: Path) -> dict[str, dict]:
    """Asset -> metadata of the newest run in the folder's Dagster instance."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(workdir / ".hub" / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        out = {}
        for rec in records:
            mat = rec.event_log_entry.dagster_event.event_specific_data.materialization
            out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        return out


def ok_sync(workdir: Path, server: harness.TrytonServer) -> dict:
    proc = sync(workdir, server)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return last_run(workdir)


def golden_ids(server: harness.TrytonServer) -> dict[int, list[str]]:
    """party id -> the hub golden ids it carries (customers only: the ERP's own company party left out)."""
    rpc = server.rpc()
    own = {r["party"] for r in rpc.search_read("company.company", [], ["party"])}
    rpc.context["active_test"] = False
    rows = rpc.search_read("party.party", [["id", "not in", sorted(own)]], ["identifiers.code"])
    return {r["id"]: [i["code"][len(GOLDEN_ID_PREFIX):] for i in r["identifiers."]
                      if i["code"].startswith(GOLDEN_ID_PREFIX)] for r in rows}


def report(workdir: Path) -> dict:
    return json.loads((workdir / ".hub" / "reports" / "data_quality.json").read_text(encoding="utf-8"))


def drift_of(workdir: Path) -> tuple[int, int]:
    """(drift found, drift repaired) for Tryton in the data-quality report."""
    (target,) = [t for t in report(workdir)["push"]["targets"] if t["target"] == "tryton"]
    return target["drift_found"], target["drift_repaired"]


def test_tryton_end_to_end(workdir: Path, tryton: harness.TrytonServer) -> None:
    unusual = tryton.unusual  # type: ignore[attr-defined]
    rpc = tryton.rpc()

    # 1. first sync: every customer party, of whatever shape, carries exactly one golden id
    first = ok_sync(workdir, tryton)
    held = golden_ids(tryton)
    parties = len(held)
    assert first["raw_tryton"]["new"] >= parties  # customers, plus orders and shipments
    active = {pid for pid, ids in held.items() if pid != unusual["inactive"]}
    assert all(len(held[pid]) == 1 for pid in active), {p: held[p] for p in active if len(held[p]) != 1}
    for kind in ("company", "bare", "other_contacts", "two_addresses"):
        assert len(held[unusual[kind]]) == 1, kind
    # a switched-off party is no active customer: the hub does not write to it
    assert held[unusual["inactive"]] == []
    assert first["push_tryton"]["sent"] == first["push_tryton"]["ok"] == len(active)

    # 2. nothing changed: nothing is sent, and the parties the hub wrote are not read again
    second = ok_sync(workdir, tryton)
    raw = second["raw_tryton"]
    assert (raw["new"], raw["changed"]) == (0, 0), raw
    assert raw["unchanged"] <= 2, raw  # at most the rows at the high-water mark itself (the window's bound)
    assert second["push_tryton"]["sent"] == 0
    assert golden_ids(tryton) == held

    # 3. five parties changed (name, e-mail, address, phone, switched off), three added
    a, b, c, d, e = sorted(active - set(unusual.values()))[:5]
    rpc.write("party.party", [a], {"name": "欧阳修 (改名)"})
    rpc.create("party.contact_mechanism", [{"party": b, "type": "email", "value": "b.new@example.cn"}])
    addr = rpc.search("party.address", [["party", "=", c]], limit=1)
    rpc.write("party.address", addr, {"street": "99号 长安街", "city": "北京"})
    mech = rpc.search("party.contact_mechanism", [["party", "=", d]], limit=1)
    rpc.write("party.contact_mechanism", mech, {"value": "+86 138 0013 9999"})
    rpc.write("party.party", [e], {"active": False})
    added = harness.create_parties(rpc, 3, start=800)
    third = ok_sync(workdir, tryton)
    raw = third["raw_tryton"]
    assert raw["new"] >= 3 and raw["changed"] >= 5, raw
    after = golden_ids(tryton)
    assert all(len(after[pid]) == 1 for pid in added), {p: after[p] for p in added}
    assert third["push_tryton"]["ok"] >= 3
    assert after[a] == held[a]  # a rename is no new customer
    # the switched-off party left the hub's customers: what the hub wrote on it is taken off
    assert after[e] == []

    # 4. a clerk deletes the golden id of four parties in the party form (a party write: its date moves)
    victims = sorted(pid for pid in active - {a, b, c, d, e} if after[pid])[:4]
    for pid in victims:
        ident = rpc.search("party.identifier", [["party", "=", pid], ["code", "like", GOLDEN_ID_PREFIX + "%"]])
        rpc.write("party.party", [pid], {"identifiers": [["delete", ident]]})
    assert all(golden_ids(tryton)[pid] == [] for pid in victims)
    fourth = ok_sync(workdir, tryton)
    assert fourth["push_tryton"]["sent"] == 4, fourth["push_tryton"]
    assert fourth["push_outbox"]["drift"] == 4  # this run's plan: four drifted records re-pushed
    assert drift_of(workdir) == (4, 4)  # the report: drift found and repaired, over the store's history
    repaired = golden_ids(tryton)
    assert all(repaired[pid] == after[pid] for pid in victims)

    # and then all is quiet again
    fifth = ok_sync(workdir, tryton)
    assert fifth["push_tryton"]["sent"] == 0 and fifth["push_outbox"]["drift"] == 0
    assert drift_of(workdir) == (4, 4)


def run_failures(workdir: Path) -> dict[str, str]:
    """Step -> error message of the failed steps of the newest run (what the UI shows for them); a source that
    could not be read does not fail its step (the others go on, hub/source_health.py): its pull's failed
    ``pull_succeeded`` check carries the error."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(workdir / ".hub" / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
        out = {}
        for r in records:
            error, messages = r.event_log_entry.dagster_event.step_failure_data.error, []
            while error is not None:  # Dagster's wrapper first, then the hub's own error as its cause
                messages.append(error.message)
                error = error.cause
            out[r.event_log_entry.dagster_event.step_key] = "\n".join(messages)
        checks = instance.get_records_for_run(run.run_id,
                                              of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
        for r in checks:
            evaluation = r.event_log_entry.dagster_event.event_specific_data
            if not evaluation.passed:
                out[evaluation.asset_key.to_user_string()] = "\n".join(
                    str(v.value) for v in evaluation.metadata.values())
        return out


def all_run_text(workdir: Path) -> str:
    """Every message of the newest run's event log (errors with their causes included)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(workdir / ".hub" / "dagster")) as instance:
        run = instance.get_runs(limit=1)[0]
        return "\n".join(str(r.event_log_entry) for r in instance.get_records_for_run(run.run_id).records)


def test_unreachable_tryton_fails_the_sync_at_once_naming_source_and_host(
        tmp_path: Path, tryton: harness.TrytonServer) -> None:
    (tmp_path / "hub.yaml").write_text(HUB_YAML, encoding="utf-8")
    port = harness.free_port()  # nothing listens there
    proc = sync(tmp_path, tryton, url=f"http://127.0.0.1:{port}/")
    assert proc.returncode == 1, proc.stderr[-3000:]
    failures = run_failures(tmp_path)
    assert "raw_tryton" in failures, failures
    assert (f"tryton: cannot reach 127.0.0.1:{port} (connection refused) — gave up after 2 attempts"
            in failures["raw_tryton"]), failures
    # and the user sees it as it happens, on the step's line
    assert f"tryton: cannot reach 127.0.0.1:{port} (connection refused)" in proc.stderr
    for text in (proc.stdout, proc.stderr, all_run_text(tmp_path)):
        assert tryton.password not in text


def test_wrong_tryton_password_fails_clearly_without_printing_it(
        tmp_path: Path, tryton: harness.TrytonServer) -> None:
    # a throwaway user: failed logins make Tryton throttle the login they were for
    rpc = tryton.rpc()
    rpc.create("res.user", [{"name": "Hub sync", "login": "hub-sync", "password": "the-right-one-2718"}])
    (tmp_path / "hub.yaml").write_text(HUB_YAML, encoding="utf-8")
    env_user = tryton.username
    tryton.username = "hub-sync"
    try:
        proc = sync(tmp_path, tryton, password="a-wrong-secret-3141")
    finally:
        tryton.username = env_user
    assert proc.returncode == 1, proc.stderr[-3000:]
    failures = run_failures(tmp_path)
    host = tryton.url.split("//", 1)[1]
    assert (f"tryton: Tryton refused the login of user 'hub-sync' to database '{tryton.database}' at {host} "
            "(wrong user name or password)") in failures.get("raw_tryton", ""), failures
    assert "tryton: Tryton refused the login of user 'hub-sync'" in proc.stderr
    for text in (proc.stdout, proc.stderr, all_run_text(tmp_path)):
        assert "a-wrong-secret-3141" not in text
