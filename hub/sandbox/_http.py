"""Shared plumbing for the sandbox HTTP servers: JSON responses, fault injection, start/stop."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hub.sandbox.faults import WECHAT_KINDS, FaultController

WECHAT_FAULT_BODIES = {
    "40001": {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"},
    "42001": {"errcode": 42001, "errmsg": "access_token expired"},
    "45009": {"errcode": 45009, "errmsg": "reach max api daily quota limit"},
    "45011": {"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"},
}


class SandboxHandler(BaseHTTPRequestHandler):
    """Base handler: parses the request, applies injected faults, then calls ``route``."""

    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; lets "drop" break a pooled connection
    disable_nagle_algorithm = True  # else every keep-alive response waits ~40 ms for the client's delayed ACK
    server_version = "nginx"
    service = "base"
    server: SandboxServer

    def version_string(self) -> str:
        return self.server_version

    # never log request lines: query strings carry secrets and personal data
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _dispatch(self, method: str) -> None:
        self._truncate = False
        self._stall = 0.0
        parts = urlsplit(self.path)
        self.route_path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        rule = self.server.faults.next_fault(self.service, parts.path)
        if rule is not None:
            if rule.kind == "drop":
                self._drop()
                return
            if rule.kind == "slow":
                time.sleep(rule.delay)
            elif rule.kind == "429":
                self.send_json(429, self.rate_limited_body(), {"Retry-After": f"{rule.retry_after:g}"})
                return
            elif rule.kind.isdigit() and rule.kind.startswith("5"):
                self.send_json(int(rule.kind), self.server_error_body(int(rule.kind)))
                return
            elif rule.kind in WECHAT_KINDS:
                self.send_json(200, WECHAT_FAULT_BODIES[rule.kind])
                return
        self._truncate = rule is not None and rule.kind == "truncate"
        self._stall = rule.delay if rule is not None and rule.kind == "stall" else 0.0
        try:
            self.route(method)
        except OSError:  # the client went away (timeout, reset): nothing left to answer
            self.close_connection = True
        except Exception:  # noqa: BLE001 - a server must answer, not die; no details leak to the client
            try:
                self.send_json(500, self.server_error_body(500))
            except OSError:
                self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def route(self, method: str) -> None:
        raise NotImplementedError

    def rate_limited_body(self) -> Any:
        return {"code": "too_many_requests", "message": "Too Many Requests", "data": {"status": 429}}

    def server_error_body(self, status: int) -> Any:
        return {"code": "internal_server_error", "message": "There has been a critical error on this website.",
                "data": {"status": status}}

    def json_body(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if getattr(self, "_stall", 0.0):
            time.sleep(self._stall)  # the request was carried out; the answer is late
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if getattr(self, "_truncate", False):
            # announce the full length, deliver half, hang up: the client sees an incomplete read
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(data)

    def base_url(self) -> str:
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        return f"http://{host}"


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[SandboxHandler], state: Any, faults: FaultController,
                 host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), handler)
        self.state = state
        self.faults = faults
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver would print a traceback (with request data) to stderr; clients hanging up is normal here
        return

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{self.RequestHandlerClass.service}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def parse_qs_single(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
