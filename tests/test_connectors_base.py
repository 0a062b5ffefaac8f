"""The connector base against a tiny real HTTP server on 127.0.0.1: retries, timeouts, truncated bodies,
rate limiting, paging helpers, and the pull/push drivers against a real Store."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from hub.connectors.base import (
    Page,
    PushOutcome,
    SourceAuthError,
    SourceUnavailable,
    TokenBucket,
    fetch_json,
    iter_keyset,
    iter_next_token,
    iter_page_number,
    landing_record,
    make_session,
    read_complete_lines,
    run_pull,
    run_push,
)
from hub.store import OutboxItem, Store


class QuietHTTPServer(ThreadingHTTPServer):
    """A test server whose handler threads die quietly: a client that hung up (a killed process, a test's
    timeout) must not print socketserver's traceback into whichever test runs next on this worker."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return


class ScriptedServer:
    """Answers each path from a script of faults, then with the normal answer. Counts every hit."""

    def __init__(self) -> None:
        self.script: dict[str, list[dict]] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                path, _, query = self.path.partition("?")
                with outer.lock:
                    outer.hits[path] = outer.hits.get(path, 0) + 1
                    step = outer.script.get(path, []).pop(0) if outer.script.get(path) else {}
                if step.get("delay"):
                    time.sleep(step["delay"])
                status = step.get("status", 200)
                if path == "/items":
                    page = int(dict(p.split("=") for p in query.split("&") if p).get("page", 1))
                    data = [{"id": i} for i in range((page - 1) * 3 + 1, min(page * 3, 7) + 1)]
                    body = json.dumps(data).encode()
                    headers = {"X-WP-TotalPages": "3", "X-WP-Total": "7"}
                else:
                    body = json.dumps(step.get("body", {"ok": True, "path": path})).encode()
                    headers = {}
                headers.update(step.get("headers", {}))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                if step.get("truncate"):
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def fast_session(**kw: object) -> requests.Session:
    return make_session(**kw)  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_429_honours_retry_after(server: ScriptedServer) -> None:
    server.script["/a"] = [{"status": 429, "headers": {"Retry-After": "1"}}]
    t0 = time.perf_counter()
    body, resp = fetch_json(fast_session(), "GET", server.url + "/a")
    assert body == {"ok": True, "path": "/a"}
    assert server.hits["/a"] == 2
    assert time.perf_counter() - t0 >= 0.95  # waited as the server asked, not the tiny backoff


def test_5xx_burst_then_success(server: ScriptedServer) -> None:
    server.script["/b"] = [{"status": 503}, {"status": 500}, {"status": 502}]
    body, _ = fetch_json(fast_session(), "GET", server.url + "/b", wait_initial=0.01)
    assert body["ok"] and server.hits["/b"] == 4


def test_one_retry_layer_a_5xx_burst_longer_than_the_attempts_gives_up_clearly(server: ScriptedServer) -> None:
    server.script["/c"] = [{"status": 500}] * 10
    with pytest.raises(SourceUnavailable) as info:
        fetch_json(fast_session(), "GET", server.url + "/c", source="webshop", wait_initial=0.01, attempts=3)
    # exactly `attempts` requests: the session does not retry inside the retries
    assert server.hits["/c"] == 3
    host = server.url.split("//", 1)[1]
    assert str(info.value).startswith(f"webshop: {host} answered HTTP 500 — gave up after 3 attempts")


def test_retry_budget_is_bounded_in_time(server: ScriptedServer) -> None:
    # the server asks for a wait longer than the call's whole budget: no point waiting, it gives up now
    server.script["/late"] = [{"status": 503, "headers": {"Retry-After": "3600"}}]
    with pytest.raises(SourceUnavailable, match="answered HTTP 503 — gave up after 1 attempt "):
        fetch_json(fast_session(), "GET", server.url + "/late", source="shop", max_seconds=30)
    assert server.hits["/late"] == 1


def test_unreachable_source_fails_at_once_naming_source_and_host_not_the_secret(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    session = fast_session(auth=("ck_key", "cs_TOPSECRET"))
    with pytest.raises(SourceUnavailable) as info:
        fetch_json(session, "GET", f"http://127.0.0.1:{port}/wp-json/wc/v3/customers",
                   params={"consumer_secret": "cs_TOPSECRET"}, source="webshop", wait_initial=0.01)
    message = str(info.value)
    # one retry for a source that does not answer at all, never a retry storm
    assert message.startswith(f"webshop: cannot reach 127.0.0.1:{port} (connection refused) — gave up after "
                              "2 attempts"), message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained URL with the query
    assert "TOPSECRET" not in message and "TOPSECRET" not in caplog.text
    assert "/wp-json" not in message


def test_unknown_host_is_named_as_such() -> None:
    with pytest.raises(SourceUnavailable, match=r"^erp: cannot reach no-such-host\.invalid:8000 \(host name not found\)"):
        fetch_json(fast_session(), "GET", "http://no-such-host.invalid:8000/rpc/", source="erp", wait_initial=0.01)


@pytest.mark.parametrize("status", [401, 403])
def test_wrong_credentials_are_not_retried_and_the_secret_is_not_printed(server: ScriptedServer, status: int) -> None:
    server.script["/auth"] = [{"status": status, "body": {"code": "woocommerce_rest_authentication_error"}}] * 5
    with pytest.raises(SourceAuthError) as info:
        fetch_json(fast_session(auth=("ck_key", "cs_TOPSECRET")), "GET", server.url + "/auth",
                   params={"consumer_secret": "cs_TOPSECRET"}, source="webshop", wait_initial=0.01)
    assert server.hits["/auth"] == 1
    assert f"refused the credentials (HTTP {status})" in str(info.value)
    assert "TOPSECRET" not in str(info.value)


def test_read_timeout_is_retried(server: ScriptedServer) -> None:
    server.script["/slow"] = [{"delay": 1.0}]
    body, _ = fetch_json(fast_session(timeout=(2.0, 0.3)), "GET", server.url + "/slow")
    assert body["ok"] and server.hits["/slow"] == 2


def test_truncated_body_is_retried(server: ScriptedServer) -> None:
    server.script["/t"] = [{"truncate": True}, {"truncate": True}]
    body, _ = fetch_json(fast_session(), "GET", server.url + "/t", wait_initial=0.01)
    assert body == {"ok": True, "path": "/t"} and server.hits["/t"] == 3


def test_retry_logs_do_not_carry_query_strings(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    server.script["/q"] = [{"delay": 0.6}, {"status": 503}]
    caplog.set_level(logging.DEBUG)
    fetch_json(fast_session(timeout=(2.0, 0.3)), "GET", server.url + "/q", params={"access_token": "SECRET123"},
               source="social", wait_initial=0.01)
    assert "social: 127.0.0.1" in caplog.text and "read timed out; retrying" in caplog.text
    assert "answered HTTP 503; retrying" in caplog.text
    assert "SECRET123" not in caplog.text


def test_client_error_is_not_retried(server: ScriptedServer) -> None:
    server.script["/bad"] = [{"status": 400, "body": {"code": "rest_invalid_param"}}]
    with pytest.raises(requests.HTTPError):
        fetch_json(fast_session(), "GET", server.url + "/bad", wait_initial=0.01)
    assert server.hits["/bad"] == 1


def test_rate_limit_spaces_requests(server: ScriptedServer) -> None:
    session = fast_session(rate_limit=20, burst=1)
    t0 = time.perf_counter()
    for _ in range(11):
        session.get(server.url + "/r")
    # 11 requests with a bucket of 1 at 20/s: at least 10 waits of 50 ms
    assert time.perf_counter() - t0 >= 0.45
    assert server.hits["/r"] == 11


def test_token_bucket_with_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(rate=2, capacity=2, clock=lambda: now[0], sleep=sleep)
    for _ in range(6):
        bucket.acquire()
    assert now[0] == pytest.approx(2.0)  # 2 from the burst, 4 more at 2/s


def test_iter_page_number_reads_total_pages(server: ScriptedServer) -> None:
    session = fast_session()

    def fetch(p: int) -> tuple[list, dict]:
        body, resp = fetch_json(session, "GET", server.url + "/items", params={"page": p})
        return body, resp.headers

    pages = list(iter_page_number(fetch))
    assert [p for p, _, _ in pages] == [1, 2, 3]
    assert [i["id"] for _, items, _ in pages for i in items] == list(range(1, 8))
    assert [last for _, _, last in pages] == [False, False, True]
    resumed = list(iter_page_number(fetch, start_page=3))
    assert [i["id"] for _, items, _ in resumed for i in items] == [7]


def test_iter_next_token_stops_on_empty_page_even_with_token() -> None:
    book = {None: (["a", "b"], "b"), "b": (["c"], "c"), "c": ([], "c")}
    got = list(
        iter_next_token(
            lambda t: {"data": {"openid": book[t][0]} if book[t][0] else None, "next_openid": book[t][1]},
            items_of=lambda b: (b.get("data") or {}).get("openid", []),
            next_token_of=lambda b: b.get("next_openid"),
        )
    )
    assert [items for _, items, _ in got] == [["a", "b"], ["c"], []]
    assert got[-1][2] is None


def test_iter_keyset() -> None:
    rows = [("2024-01-01", i) for i in range(1, 6)] + [("2024-01-02", 0)]

    def fetch(after: tuple | None, limit: int) -> list[tuple]:
        return [r for r in rows if after is None or r > after][:limit]

    got = list(iter_keyset(fetch, key_of=lambda r: r, limit=2))
    assert [r for batch, _, _ in got for r in batch] == rows
    assert got[-1][2] is True


def test_read_complete_lines_leaves_partial_line(tmp_path: Path) -> None:
    f = tmp_path / "Master.csv"
    f.write_bytes(b'"a",1\n"b",2\n"c",')
    lines, off = read_complete_lines(f, 0)
    assert lines == [b'"a",1', b'"b",2'] and off == 12
    with open(f, "ab") as fh:
        fh.write(b"3\n")
    lines, off2 = read_complete_lines(f, off)
    assert lines == [b'"c",3'] and off2 == f.stat().st_size
    # a small max_bytes still never splits a line
    lines, _ = read_complete_lines(f, 0, max_bytes=3)
    assert lines == [b'"a",1']


class DieAfter:
    """Wraps a connector whose pages() raises after k pages: the process killed between two pages."""

    def __init__(self, inner: Any, k: int) -> None:
        self.inner, self.k = inner, k
        self.system, self.entities = inner.system, inner.entities

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        for n, page in enumerate(self.inner.pages(entity, cursor), 1):
            yield page
            if n >= self.k:
                raise KeyboardInterrupt("killed between pages")

    def push(self, items: list) -> list:
        return self.inner.push(items)


# -- drivers against a real Store ------------------------------------------------------------------------------


class ListConnector:
    """A real (in-process) source: a list of records paged by offset, that can be told to die after k pages."""

    system = "listsrc"
    entities = ("things",)

    def __init__(self, data: list[dict], page_size: int = 3, die_after: int | None = None) -> None:
        self.data = data
        self.page_size = page_size
        self.die_after = die_after
        self.pushed: list[int] = []
        self.push_script: dict[int, PushOutcome] = {}

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        start = (cursor or {}).get("offset", 0) if not (cursor or {}).get("complete") else 0
        served = 0
        while True:
            chunk = self.data[start : start + self.page_size]
            start += len(chunk)
            done = start >= len(self.data)
            yield Page([landing_record(r["id"], r) for r in chunk], {"offset": start, "complete": done})
            served += 1
            if done:
                return
            if self.die_after is not None and served >= self.die_after:
                raise ConnectionError("killed between pages")

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
        out = []
        for it in items:
            self.pushed.append(it.id)
            out.append(self.push_script.pop(it.id, PushOutcome(it.id, "ok")))
        return out


def test_run_pull_resumes_after_kill_and_second_run_lands_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    data = [{"id": i, "name": f"n{i}"} for i in range(10)]
    conn = ListConnector(data, die_after=2)
    with pytest.raises(ConnectionError):
        run_pull(conn, store, "things")
    assert len(store.landed_ids("listsrc", "things")) == 6
    conn.die_after = None
    stats = run_pull(conn, store, "things")
    assert (stats.new, stats.changed, stats.unchanged) == (4, 0, 0)
    assert store.landed_ids("listsrc", "things") == {str(i) for i in range(10)}
    again = run_pull(conn, store, "things")
    assert (again.new, again.changed) == (0, 0) and again.unchanged == 10
    data[3]["name"] = "changed"
    third = run_pull(conn, store, "things")
    assert (third.new, third.changed) == (0, 1)


def test_run_push_retries_errors_and_never_resends_ok(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    store.enqueue_pushes("listsrc", "things", [(str(i), f"G{i}", {"golden_id": f"G{i}"}) for i in range(5)])
    conn = ListConnector([])
    ids = [it.id for it in store.pending_pushes("listsrc")]
    conn.push_script = {ids[1]: PushOutcome(ids[1], "error", "timeout"),
                        ids[2]: PushOutcome(ids[2], "rejected", "no such record")}
    stats = run_push(conn, store, batch_size=2)
    assert (stats.sent, stats.ok, stats.error, stats.rejected, stats.batches) == (5, 3, 1, 1, 3)
    assert [it.id for it in store.pending_pushes("listsrc")] == [ids[1]]
    conn.pushed.clear()
    stats2 = run_push(conn, store)
    assert conn.pushed == [ids[1]] and stats2.ok == 1
    conn.pushed.clear()
    assert run_push(conn, store).sent == 0 and conn.pushed == []


def test_a_push_walks_on_from_its_last_claim_and_still_sends_rows_let_go_behind_it(store: Store) -> None:
    """Each claim starts after the last row claimed (a walk from the first id stepped over every row sent before:
    quadratic on PostgreSQL); a row before it that becomes claimable meanwhile (another pusher held it, then let
    it go in error) is sent in the same run, by a last walk from the start. Every row is sent exactly once."""
    from hub.store import claim_token

    store.enqueue_pushes("listsrc", "things", [(str(i), f"G{i}", {"golden_id": f"G{i}"}) for i in range(30)])
    other = claim_token()
    held = store.claim_pushes("listsrc", other, 5, "other-run")  # the first five rows: another pusher's
    claims: list[int] = []
    real_claim = store.claim_pushes

    def claim(*args: Any, **kwargs: Any) -> list[OutboxItem]:
        claims.append(kwargs.get("after", 0))
        return real_claim(*args, **kwargs)

    class LetsGo(ListConnector):
        def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
            if not self.pushed:  # while the first batch is sent, the other pusher gives its rows up (an error)
                store.record_push_results([(it.id, "error", "timeout") for it in held], token=other)
            return super().push(items)

    conn = LetsGo([])
    store.claim_pushes = claim  # type: ignore[method-assign]
    stats = run_push(conn, store, batch_size=10)
    ids = sorted(it.id for it in held)
    assert sorted(conn.pushed) == sorted(set(conn.pushed)) and len(conn.pushed) == 30
    assert conn.pushed[-5:] == ids and stats.ok == 30  # the rows let go: sent last, by the walk from the start
    assert claims[1:4] == [conn.pushed[9], conn.pushed[19], conn.pushed[24]]  # on from the last claim each time
    assert store.pending_pushes("listsrc") == []


def test_run_push_connector_crash_keeps_rows_pending(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/hub.db")
    store.enqueue_pushes("listsrc", "things", [(str(i), f"G{i}", {"golden_id": f"G{i}"}) for i in range(4)])

    class Down(ListConnector):
        def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
            raise requests.ConnectionError("refused")

    stats = run_push(Down([]), store, batch_size=2)
    assert stats.error == 2 and stats.batches == 1  # stopped after the first failing batch
    assert len(store.pending_pushes("listsrc")) == 4


# --------------------------------------------------------------------------------------------------------------
# landing_record: the stored text and the hash written once, exactly as the general path writes them

# values where a fast JSON writer may differ from the store's json.dumps: non-ASCII, escapes, integers at and
# beyond 64 bits, floats where repr switches to exponent notation, non-finite floats, nesting, tuples
_ODD_VALUES: list[Any] = [
    "王小明 · Zoë", 'quote " back\\ \n\t\x01\x1f\x7f \u2028 😀', 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**70,
    -(2**63), -(2**63) - 1, 0.1, 3.0, 1e-05, 0.00012, 0.0001, 123456789012345.6, 1e16, 1.5e300, 5e-324, -0.0,
    float("nan"), float("inf"), [{"b": 1, "a": [1.5, None, True, False]}], (1, "x"), {"é": {"z": 1, "a": 2}},
    "\ud800",  # a lone surrogate
]


@pytest.mark.parametrize("value", _ODD_VALUES, ids=[repr(v)[:30] for v in _ODD_VALUES])
def test_landing_record_text_and_hash_equal_the_general_paths(value: Any) -> None:
    from hub.connectors.base import landing_record
    from hub.store import json_text, payload_hash

    payload = {"id": 7, "name": "张伟", "value": value, "write_date": "2025-01-01T00:00:00"}
    view = {k: v for k, v in payload.items() if k != "write_date"}
    if value == "\ud800":  # the general path cannot hash it either: the same error
        with pytest.raises(UnicodeEncodeError):
            payload_hash(view)
        with pytest.raises(UnicodeEncodeError):
            landing_record(7, payload, view)
        return
    rec = landing_record(7, payload, view)
    assert rec.payload_hash == payload_hash(view)
    assert rec.payload_text in (None, json_text(payload))  # None: the store encodes it (the general path)
    assert landing_record(7, payload).payload_hash == payload_hash(payload)


def test_landing_record_leaves_the_text_to_the_store_unless_the_payload_was_walked_or_vouched_for() -> None:
    """With a hash view the stored text is written by land_page, for new and changed records only (an unchanged
    record of an incremental pull is hashed, never encoded); a payload that is its own view was walked for the
    hash, and a caller that knows its values are plain (exact) vouches for it: their text comes at once."""
    from hub.connectors.base import landing_record
    from hub.store import json_text, payload_hash

    payload = {"z": "中文", "id": 2**63, "lines": [{"qty": 3.0, "price": "10.50", "b": None, "a": True}]}
    rec = landing_record("1", payload)
    assert rec.payload_text == json_text(payload)  # the text the store writes, not encoded again
    assert rec.payload_hash == payload_hash(payload)
    view = {k: v for k, v in payload.items() if k != "z"}
    rec = landing_record("4", payload, view)
    assert rec.payload_text is None and rec.payload_hash == payload_hash(view)
    plain = {"z": "中文", "id": 7, "lines": [{"price": "10.50", "b": None, "a": True}]}
    rec = landing_record("2", plain, exact=True)
    assert rec.payload_text == json_text(plain)  # the text the store writes, not encoded again
    assert rec.payload_hash == payload_hash(plain)


def test_landed_text_is_what_the_json_column_writes(store: Store) -> None:
    """Records from landing_record (pre-encoded or not) land as the text the store's JSON column writes."""
    import sqlalchemy as sa

    from hub.connectors.base import landing_record
    from hub.store import json_text, landing, orjson_exact

    payloads = {str(i): {"id": i, "名": "王", "v": v} for i, v in enumerate(
        v for v in _ODD_VALUES if v == v and v not in (float("inf"), "\ud800"))}  # PostgreSQL's json: no NaN
    records = [landing_record(sid, p, hub_state={"golden_id": "G1"} if sid == "0" else None,
                              exact=orjson_exact(p) and int(sid) % 2 == 0)
               for sid, p in payloads.items()]
    assert any(r.payload_text is not None for r in records) and any(r.payload_text is None for r in records)
    assert store.land_page("erp", "customers", records, {"after": 1}).new == len(records)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(landing.c.source_id, sa.cast(landing.c.payload, sa.Text),
                                      sa.cast(landing.c.hub_state, sa.Text), landing.c.payload_hash)).all()
    assert {sid: (text, hub) for sid, text, hub, _ in rows} == {
        sid: (json_text(p), json_text({"golden_id": "G1"} if sid == "0" else None)) for sid, p in payloads.items()}
    assert {sid: h for sid, _, _, h in rows} == {r.source_id: r.payload_hash for r in records}
