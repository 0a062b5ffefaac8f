"""The caller-lookup API through HTTP: a real uvicorn server on a free port, on SQLite and PostgreSQL.

The store holds the golden records and 360 views the pipeline builds (seeded in the stores' table shapes, then
``build_360`` and ``refresh_lookup_index`` — the stage functions the Dagster assets run).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import sqlalchemy as sa
import uvicorn
from conftest import fresh_postgres_database
from test_customer360_data import AS_OF, golden, insert_golden, insert_history, seed_demo

from hub.config import ServeConfig
from hub.customer360 import build_360
from hub.lookup import refresh_lookup_index, remove_from_lookup_index
from hub.lookup.access import AuditLog, TokenRegistry, parse_tokens
from hub.lookup.api import create_app
from hub.models import Address
from hub.store import Store, golden_customer, lookup_key

PBX = "pbx-0123456789abcdef"
DESK = "desk-fedcba9876543210"
TINY = "tiny-limit-token-000"
TOKENS = f"pbx:{PBX},desk:{DESK},tiny:{TINY}"
P1 = "+8613800138000"  # G1 陈伟's mobile (seed_demo)
HOUSEHOLD = "+862162345678"  # the landline of G5 and G6


def seed_lookup_world(store: Store) -> None:
    """seed_demo (G1 陈伟 in Shanghai, G2 Anna Schmidt, G3 李娜, G4 retired) + a household and a merged id."""
    seed_demo(store)
    with store.begin() as conn:  # G1 lives in Shanghai
        rec = conn.execute(sa.select(golden_customer.c.record).where(golden_customer.c.golden_id == "G000000001")
                           ).scalar_one()
        rec["address"] = Address(kind="home", city="上海市", region="上海市", country="CN").model_dump(mode="json")
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000001").values(record=rec))
    insert_golden(store, [
        golden("G000000005", "王芳", ["erp:20"], phones=[HOUSEHOLD, "+8613700001111"]),
        golden("G000000006", "张伟", ["erp:21"], phones=["+8613700002222", HOUSEHOLD]),
    ])
    insert_golden(store, [golden("G000000007", "Chen Wei", ["webshop:77"])], status="retired")
    with store.begin() as conn:
        conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000007")
                     .values(merged_into="G000000001"))
    insert_history(store, [("G000000001", "merged", "G000000007"), ("G000000007", "retired", "G000000001")])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_api(store: Store, audit_path: Path, **settings: Any) -> Iterator[str]:
    """The API on a real uvicorn server in a thread; yields its base URL."""
    cfg = ServeConfig(**{"token_rate_limits": {"tiny": "3/minute"}, "rate_limit": "1000/second",
                         "screen_pop_url": "https://crm.example/customers/{golden_id}", **settings})
    app = create_app(store, cfg, TokenRegistry(parse_tokens(TOKENS)), AuditLog(audit_path))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One seeded store and server per backend for the read-only tests of this module."""
    tmp = tmp_path_factory.mktemp("lookup")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp / 'hub.db'}"
        else:
            url = stack.enter_context(fresh_postgres_database())
        store = Store(url)
        stack.callback(store.dispose)
        seed_lookup_world(store)
        build_360(store, {}, as_of=AS_OF)
        refresh_lookup_index(store)
        with running_api(store, tmp / "audit.jsonl") as base:
            yield base, tmp / "audit.jsonl"


def get(base: str, path: str, token: str | None = PBX, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(base + path, headers=headers, params=params or None, timeout=10)


def caller(base: str, number: str, **params: Any) -> requests.Response:
    return get(base, "/v1/callers/" + quote(number, safe=""), **params)


# ------------------------------------------------------------------------------------------------- callers

@pytest.mark.parametrize("number, extension", [
    ("+8613800138000", None),                # E.164
    ("138 0013 8000", None),                 # national, spaces
    ("138-0013-8000", None),                 # national, dashes
    ("13800138000", None),
    ("008613800138000", None),               # international prefix 00
    ("0086 138 0013 8000", None),
    ("+86 138 0013 8000", None),             # +86 with spaces
    ("(+86) 138-0013-8000", None),
    ("１３８００１３８０００", None),           # full-width digits
    ("＋８６ １３８ ００１３ ８０００", None),
    ("+86 138 0013 8000 ext. 12", "12"),      # with an extension
    ("13800138000转12", "12"),
    ("+8613800138000;ext=7", "7"),
    ("tel:+86-138-0013-8000", None),
])
def test_every_phone_format_finds_the_same_customer(api: tuple[str, Path], number: str,
                                                    extension: str | None) -> None:
    base, _ = api
    r = caller(base, number)
    assert r.status_code == 200, r.text
    card = r.json()
    assert card["golden_id"] == "G000000001" and card["number"] == P1 and card["extension"] == extension
    assert card["display_name"] == "陈伟" and card["value_tier"] == "platinum" and card["segment"] == "vip"
    assert card["consent"]["social"] is False
    assert card["orders_count"] == 7 and card["recent_orders"][0]["order_number"] == "WC-1009"
    assert [s["status"] for s in card["open_shipments"]] == ["shipped"]
    assert len(card["recent_calls"]) == 2 and card["recent_calls"][0]["occurred_at"].startswith("2026-10-01")
    assert card["screen_pop_url"] == "https://crm.example/customers/G000000001"


def test_unknown_and_unassigned_numbers_are_404(api: tuple[str, Path]) -> None:
    base, _ = api
    for number in ("+8613700000000", "+14155550123", "1001"):  # valid but nobody's, another country, an extension
        r = caller(base, number)
        assert r.status_code == 404 and r.json()["error"] == "not_found", number


def test_a_household_number_answers_with_every_holder(api: tuple[str, Path]) -> None:
    base, _ = api
    r = caller(base, "021 6234 5678")
    assert r.status_code == 200
    body = r.json()
    assert [m["golden_id"] for m in body["matches"]] == ["G000000005", "G000000006"]
    assert body["number"] == HOUSEHOLD and body["display_name"] == "王芳 / 张伟"
    # the dialplan line names the household and pops no single customer
    assert caller(base, HOUSEHOLD, format="asterisk").text == "王芳 / 张伟|||"


def test_asterisk_format_is_one_line_of_four_fields(api: tuple[str, Path]) -> None:
    base, _ = api
    r = caller(base, "13800138000", format="asterisk")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert r.text == "陈伟|G000000001|platinum|https://crm.example/customers/G000000001"
    # errors stay JSON without the separator: CUT(HUB,|,2) is empty, so the dialplan falls through
    r = caller(base, "+8613700000000", format="asterisk")
    assert r.status_code == 404 and "|" not in r.text


# ------------------------------------------------------------------------------------------------ customers

def test_a_merged_away_id_answers_with_its_survivor(api: tuple[str, Path]) -> None:
    base, _ = api
    r = get(base, "/v1/customers/G000000007")
    assert r.status_code == 200
    assert r.json()["golden_id"] == "G000000001" and r.json()["requested_id"] == "G000000007"
    direct = get(base, "/v1/customers/G000000001").json()
    assert "requested_id" not in direct and direct["profile"]["full_name"] == "陈伟"
    assert direct["orders_count"] == 7
    # retired without heir, never minted
    for gid in ("G000000004", "G000999999"):
        assert get(base, f"/v1/customers/{gid}").status_code == 404


# ---------------------------------------------------------------------------------------------------- search

@pytest.mark.parametrize("params", [
    {"email": "chen.wei@example.cn"},
    {"email": " Chen.Wei@EXAMPLE.cn "},
    {"name": "陈伟"},
    {"name": "陳偉", "city": "Shanghai"},
    {"name": "WEI CHEN", "city": "上海"},
    {"name": "Chen, Wei", "city": "上海市"},
])
def test_search_by_email_and_by_name_in_any_script(api: tuple[str, Path], params: dict[str, str]) -> None:
    base, _ = api
    r = get(base, "/v1/search", **params)
    assert r.status_code == 200, r.text
    assert [h["golden_id"] for h in r.json()["results"]] == ["G000000001"]
    assert r.json()["truncated"] is False


def test_search_finds_nobody_in_another_city(api: tuple[str, Path]) -> None:
    base, _ = api
    assert get(base, "/v1/search", name="Chen Wei", city="Beijing").json()["results"] == []


# ----------------------------------------------------------------------------------------------------- access

def test_a_missing_or_wrong_token_gets_401(api: tuple[str, Path]) -> None:
    base, _ = api
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {PBX}x"},
                    {"Authorization": f"Basic {PBX}"}, {"Authorization": "Bearer"}):
        r = requests.get(base + "/v1/callers/" + quote(P1), headers=headers, timeout=10)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", headers
        assert "陈伟" not in r.text
    assert requests.get(base + "/v1/search", params={"name": "陈伟"}, timeout=10).status_code == 401
    assert requests.get(base + "/healthz", timeout=10).json()["status"] == "ok"  # no token needed
    assert "/v1/callers/{phone}" in requests.get(base + "/openapi.json", timeout=10).json()["paths"]


def test_the_rate_limit_is_per_token(api: tuple[str, Path]) -> None:
    base, _ = api
    codes = [get(base, "/v1/customers/G000000001", token=TINY).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = get(base, "/v1/customers/G000000001", token=TINY)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "rate_limited"
    assert get(base, "/v1/customers/G000000001", token=DESK).status_code == 200  # other tokens unaffected


@pytest.mark.parametrize("path", [
    "/v1/callers/abc",                                   # letters
    "/v1/callers/" + "1" * 200,                          # 200 digits
    "/v1/callers/" + "1" * 40,                           # too many digits, short enough
    "/v1/callers/" + quote("1' OR '1'='1", safe=""),     # SQL-looking
    "/v1/callers/" + quote("13800138000; DROP TABLE lookup_key; --", safe=""),
    "/v1/callers/%FF%FE%FD",                             # broken UTF-8, percent-encoded
    "/v1/callers/138%00138",                             # control character
    "/v1/callers/%20",                                   # blank
    "/v1/customers/" + quote("G1' OR 1=1 --", safe=""),
    "/v1/customers/%C3%28",
    "/v1/search?email=not-an-email",
    "/v1/search?email=%FF%FE",
    "/v1/search?name=" + quote("'; DROP TABLE customer_360; --"),
    "/v1/search?name=%E9%99",                            # truncated UTF-8 sequence
    "/v1/search?name=" + "a" * 500,
    "/v1/search?city=Shanghai",                          # city alone
    "/v1/search",                                        # nothing to search by
    "/v1/search?name=Chen&limit=abc",
    "/v1/search?name=Chen&limit=100000",
])
def test_bad_input_gets_400_with_a_message(api: tuple[str, Path], path: str) -> None:
    base, _ = api
    r = requests.get(base + path, headers={"Authorization": f"Bearer {PBX}"}, timeout=10)
    assert r.status_code == 400, (path, r.status_code, r.text)
    body = r.json()
    assert body["error"] == "bad_request" and len(body["detail"]) > 10
    assert "Traceback" not in r.text and "DROP" not in r.text  # the input is never echoed


def test_raw_broken_utf8_in_the_request_line_is_refused_not_crashed(api: tuple[str, Path]) -> None:
    base, _ = api
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET /v1/callers/\xff\xfe138 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + PBX.encode()
                  + b"\r\nConnection: close\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert caller(base, P1).status_code == 200  # the server is still answering
    with socket.create_connection((host, int(port)), timeout=10):
        pass


def test_sql_looking_input_changes_nothing(api: tuple[str, Path]) -> None:
    base, _ = api
    get(base, "/v1/search", name="x'); DELETE FROM lookup_key; --")
    assert caller(base, P1).status_code == 200


def test_the_audit_log_names_token_and_golden_ids_never_the_number(api: tuple[str, Path]) -> None:
    base, audit = api
    caller(base, "138 0013 8000")
    get(base, "/v1/search", token=DESK, name="陈伟")
    requests.get(base + "/v1/callers/" + quote(P1), timeout=10)
    time.sleep(0.3)  # written by a background thread
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert {"token": "pbx", "endpoint": "callers", "status": 200, "golden_ids": ["G000000001"]}.items() <= \
        next(e for e in reversed(lines) if e["token"] == "pbx" and e["endpoint"] == "callers"
             and e["status"] == 200).items()
    assert any(e["token"] == "desk" and e["endpoint"] == "search" and e["golden_ids"] == ["G000000001"]
               for e in lines)
    assert any(e["token"] == "-" and e["status"] == 401 for e in lines)
    text = audit.read_text(encoding="utf-8")
    assert all(re.match(r"\d{4}-\d\d-\d\dT", e["at"]) for e in lines)
    for secret in ("13800138000", "138 0013", "陈伟", "Chen", PBX, DESK):
        assert secret not in text


# ------------------------------------------------------------------------------- freshness (its own store)

def test_the_index_follows_every_sync_and_erasure(store: Store, tmp_path: Path) -> None:
    seed_lookup_world(store)
    build_360(store, {}, as_of=AS_OF)
    first = refresh_lookup_index(store)
    assert first.mode == "full" and first.customers == 5 and first.keys_written > 10
    assert refresh_lookup_index(store).indexed == 0  # nothing changed: nothing re-keyed

    with running_api(store, tmp_path / "audit.jsonl") as base:
        assert caller(base, "+4915112345678").json()["golden_id"] == "G000000002"
        # Anna gets a new number; 李娜 (G3) is retired (all her records deleted)
        with store.begin() as conn:
            rec = conn.execute(sa.select(golden_customer.c.record)
                               .where(golden_customer.c.golden_id == "G000000002")).scalar_one()
            rec["phones"], rec["primary_phone"] = ["+4917612345678"], "+4917612345678"
            # stamped as the golden stage stamps every record it changes (the 360 build rebuilds by it)
            changed_at = datetime.now(UTC).replace(tzinfo=None)
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000002")
                         .values(record=rec, updated_at=changed_at))
            conn.execute(golden_customer.update().where(golden_customer.c.golden_id == "G000000003")
                         .values(status="retired", updated_at=changed_at))
        build_360(store, {}, as_of=AS_OF)
        stats = refresh_lookup_index(store)
        assert (stats.mode, stats.indexed, stats.removed, stats.customers) == ("incremental", 1, 1, 4)
        assert caller(base, "+4915112345678").status_code == 404
        assert caller(base, "+49 176 12345678").json()["golden_id"] == "G000000002"
        assert caller(base, "+8613912345678").status_code == 404
        assert get(base, "/v1/search", name="李娜").json()["results"] == []

        # erasure: out of the index at once, before any sync
        assert remove_from_lookup_index(store, ["G000000001"]) == 1
        assert caller(base, P1).status_code == 404
        assert get(base, "/v1/search", email="chen.wei@example.cn").json()["results"] == []
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(lookup_key)
                                .where(lookup_key.c.golden_id == "G000000001")).scalar_one() == 0


def test_postgresql_lookups_survive_a_dropped_connection_and_a_lost_store_is_503(tmp_path: Path) -> None:
    """The PostgreSQL read path keeps its own connection: a server that drops it (restart, idle timeout) costs
    one reconnect, not an error; a store that is gone answers 503 without details, and the API stays up."""
    with fresh_postgres_database() as url:
        store = Store(url)
        try:
            seed_lookup_world(store)
            build_360(store, {}, as_of=AS_OF)
            refresh_lookup_index(store)
            with running_api(store, tmp_path / "audit.jsonl") as base:
                assert caller(base, P1).json()["golden_id"] == "G000000001"
                database = sa.engine.make_url(url).database
                with store.engine.connect() as conn:  # what a server restart does to the API's connection
                    killed = conn.execute(sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).scalar_one()
                assert killed >= 1
                assert caller(base, P1).json()["golden_id"] == "G000000001"

                store.dispose()
                admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE "{database}" WITH (FORCE)'))
                admin.dispose()
                gone = caller(base, P1)
                assert gone.status_code == 503 and gone.json()["error"] == "store_unavailable"
                assert database not in gone.text and "Traceback" not in gone.text
                assert get(base, "/healthz").status_code == 503
        finally:
            store.dispose()


# ---------------------------------------------------------------------------------------- command and dialplan

def test_hub_serve_refuses_to_run_without_tokens(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    r = subprocess.run([sys.executable, "-m", "hub.cli", "serve", "--port", str(_free_port())], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "HUB_API_TOKENS" in r.stderr
    r = subprocess.run([sys.executable, "-m", "hub.cli", "serve"],
                       env={**env, "HUB_API_TOKENS": "pbx:s3cr3t-value,bad name:0th3r-s3cr3t"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "entry 2" in r.stderr
    assert "s3cr3t" not in r.stderr  # a token never appears in a message


DIALPLAN = Path(__file__).parents[1] / "hub" / "lookup" / "asterisk" / "extensions_hub.conf"


def test_the_shipped_dialplan_asks_the_url_this_api_answers(api: tuple[str, Path]) -> None:
    """Asterisk is not packaged for this machine: the dialplan's own CURL() request is replayed with curl
    (libcurl, as func_curl uses) and its CUT()/FIELDQTY() reading of the answer is checked."""
    base, _ = api
    text = DIALPLAN.read_text(encoding="utf-8")
    url = re.search(r"CURL\((\$\{HUB_URL\}\S*?format=asterisk)\)", text).group(1)
    header = re.search(r"CURLOPT\(httpheader\)=(Authorization: Bearer \$\{HUB_API_TOKEN\})", text).group(1)
    assert "${URIENCODE(${CALLERID(num)})}" in url and "format=asterisk" in url
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")

    def dial(callerid_num: str) -> str:
        asked = url.replace("${HUB_URL}", base).replace("${URIENCODE(${CALLERID(num)})}", quote(callerid_num, safe=""))
        return subprocess.run([curl, "-s", "-H", header.replace("${HUB_API_TOKEN}", PBX), asked],
                              capture_output=True, text=True, timeout=30).stdout

    answer = dial("013800138000".removeprefix("0"))  # what a trunk delivers: national digits
    fields = answer.split("|")
    assert len(fields) == 4 and fields[:3] == ["陈伟", "G000000001", "platinum"]  # FIELDQTY(HUB,|) = 4
    assert fields[3] == "https://crm.example/customers/G000000001"
    assert len(dial("+8613700000000").split("|")) == 1  # unknown: one field, the dialplan falls through
