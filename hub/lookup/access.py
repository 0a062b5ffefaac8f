"""Who may look callers up, how often, and the audit trail of what they looked up.

Tokens come from the environment only (``HUB_API_TOKENS``), never from hub.yaml::

    HUB_API_TOKENS="pbx:7c1f0e…,agent-desk:94b2aa…"

Each comma-separated entry is ``name:token``; the name (letters, digits, ``_ . -``) is what the audit log and
the per-token rate limits (hub.yaml ``serve.token_rate_limits``) refer to. A bare ``token`` without a name
is accepted and named ``token-<first 8 hex of its sha256>``. Tokens are kept as sha256 digests.

Rate limits: one token bucket per limit and token, in process memory (per uvicorn worker).

The audit log is JSON lines, one per request: time, token name, endpoint, status and the golden ids
answered — never the phone number, e-mail or name asked for. It is written by a background thread, so a
slow disk never delays an answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import queue
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from limits import RateLimitItem, parse_many

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
    retry_after: int  # seconds until the next request would be admitted (0 when allowed)


class _Bucket:
    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity, self.tokens, self.stamp = rate, capacity, capacity, time.monotonic()

    def take(self, now: float) -> float:
        """Admit one request (returns 0) or the seconds until one token is back."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class RateLimiter:
    """Per-token limits in ``limits`` notation ("50/second", "20/second;600/minute"), one token bucket per
    limit: N per period refills at N/period and admits bursts of up to N.

    The notation is parsed by the ``limits`` library; its in-memory storage is not used on the request path:
    it starts a timer thread to expire entries every few milliseconds, which measured ~0.7 ms per request.
    """

    def __init__(self, default: str, per_token: Mapping[str, str] | None = None) -> None:
        self._default = [self._spec(i) for i in parse_many(default)]
        self._per_token = {name: [self._spec(i) for i in parse_many(spec)] for name, spec in (per_token or {}).items()}
        self._buckets: dict[str, list[_Bucket]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _spec(item: RateLimitItem) -> tuple[float, float]:
        return item.amount / item.get_expiry(), float(item.amount)

    def hit(self, token: str) -> RateDecision:
        now = time.monotonic()
        with self._lock:
            buckets = self._buckets.get(token)
            if buckets is None:
                buckets = [_Bucket(rate, cap) for rate, cap in self._per_token.get(token, self._default)]
                self._buckets[token] = buckets
            waits = [b.take(now) for b in buckets]
            if any(waits):
                for b, wait in zip(buckets, waits, strict=True):
                    if not wait:
                        b.tokens += 1  # refused: give back what the other limits took
                return RateDecision(False, max(1, math.ceil(max(waits))))
        return RateDecision(True, 0)


class AuditLog:
    """Append-only JSON-lines audit of lookups, written off the request path.

    A request only appends to a queue; one writer thread drains it and writes what has queued up in one
    write + flush, so a slow disk or a burst never delays an answer.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, name="hub-lookup-audit", daemon=True)
        self._writer.start()

    def record(self, token: str | None, endpoint: str, status: int, golden_ids: Iterable[str] = ()) -> None:
        entry = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "token": token or "-",
            "endpoint": endpoint,
            "status": status,
            "golden_ids": list(golden_ids),
        }
        self._queue.put(json.dumps(entry, separators=(",", ":")))

    def _write(self) -> None:
        done = False
        while not done:
            lines = [self._queue.get()]
            while True:
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in lines
            text = "".join(f"{line}\n" for line in lines if line is not None)
            # reopened per batch: survives logrotate moving the file away
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(text)

    def close(self) -> None:
        self._queue.put(None)
        self._writer.join(10)
