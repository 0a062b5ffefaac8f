"""Who may look callers up, how often, and the audit trail of what they looked up.

Tokens come from the environment only (``HUB_API_TOKENS``), never from hub.yaml::

    HUB_API_TOKENS="pbx:7c1f0e…,agent-desk:94b2aa…"

Each comma-separated entry is ``name:token``; the name (letters, digits, ``_ . -``) is what the audit log and
the per-token rate limits (hub.yaml ``serve.token_rate_limits``) refer to. A bare ``token`` without a name
is accepted and named ``token-<first 8 hex of its sha256>``. Tokens are kept as sha256 digests.

Rate limits use the ``limits`` library's moving window in process memory (per uvicorn worker).

The audit log is JSON lines, one per request: time, token name, endpoint, status and the golden ids
answered — never the phone number, e-mail or name asked for. It is written by a background thread
(``QueueListener``), so a slow disk never delays an answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import queue
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

TOKENS_ENV = "HUB_API_TOKENS"
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def parse_tokens(raw: str | None) -> dict[bytes, str]:
    """``HUB_API_TOKENS`` -> {sha256(token): name}. Raises ValueError with a message that never holds a token."""
    tokens: dict[bytes, str] = {}
    for n, entry in enumerate((raw or "").split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, secret = entry.partition(":")
        if not sep:
            name, secret = f"token-{hashlib.sha256(entry.encode()).hexdigest()[:8]}", entry
        if not _NAME_RE.match(name):
            raise ValueError(f"{TOKENS_ENV} entry {n}: the name before ':' may hold letters, digits, _ . - only")
        if not secret or any(ch.isspace() for ch in secret):
            raise ValueError(f"{TOKENS_ENV} entry {n} ({name}): the token is empty or contains whitespace")
        digest = _digest(secret)
        if digest in tokens or name in tokens.values():
            raise ValueError(f"{TOKENS_ENV} entry {n} ({name}): the same name or token appears twice")
        tokens[digest] = name
    return tokens


class TokenRegistry:
    """Bearer-token check: ``name_of("Bearer xyz")`` -> the token's name, or None."""

    def __init__(self, tokens: Mapping[bytes, str]) -> None:
        self._tokens = dict(tokens)

    @property
    def names(self) -> list[str]:
        return sorted(self._tokens.values())

    def name_of(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        return self._tokens.get(_digest(secret.strip()))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int  # seconds until the window admits the next request (0 when allowed)


class RateLimiter:
    """Per-token limits in ``limits`` notation ("50/second", "20/second;600/minute")."""

    def __init__(self, default: str, per_token: Mapping[str, str] | None = None) -> None:
        self._default = parse_many(default)
        self._per_token = {name: parse_many(spec) for name, spec in (per_token or {}).items()}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _items(self, token: str) -> list[RateLimitItem]:
        return self._per_token.get(token, self._default)

    def hit(self, token: str) -> RateDecision:
        items = self._items(token)
        for item in items:
            if not self._limiter.test(item, token):
                reset = self._limiter.get_window_stats(item, token).reset_time
                wait = max(1, int(reset - datetime.now(UTC).timestamp() + 0.999))
                return RateDecision(False, wait)
        for item in items:
            self._limiter.hit(item, token)
        return RateDecision(True, 0)


class AuditLog:
    """Append-only JSON-lines audit of lookups, written off the request path."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._logger = logging.getLogger(f"hub.lookup.audit.{id(self)}")
        self._logger.propagate = False  # never to the console or Dagster: the file is the audit trail
        self._logger.setLevel(logging.INFO)
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = logging.handlers.WatchedFileHandler(self.path, encoding="utf-8")  # survives logrotate
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._listener = logging.handlers.QueueListener(q, handler)
        self._queue_handler = logging.handlers.QueueHandler(q)
        self._logger.addHandler(self._queue_handler)
        self._handler = handler
        self._listener.start()

    def record(self, token: str | None, endpoint: str, status: int, golden_ids: Iterable[str] = ()) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "token": token or "-",
            "endpoint": endpoint,
            "status": status,
            "golden_ids": list(golden_ids),
        }
        self._logger.info(json.dumps(entry, separators=(",", ":")))

    def close(self) -> None:
        self._listener.stop()
        self._logger.removeHandler(self._queue_handler)
        self._handler.close()
