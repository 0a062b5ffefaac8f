"""The connector base: one HTTP session recipe, one rate limiter, paging helpers, and the pull/push drivers.

Every source system gets a small class on this base (see ``Connector``): it declares ``system`` and
``entities``, yields ``Page`` objects from ``pages(entity, cursor)`` and answers ``push(items)`` with one
``PushOutcome`` per outbox row. Where the source can list its ids cheaply it also has ``present_ids(entity)``
(an id-only sweep that finds deleted and deactivated records); one whose pull of an entity reads all of it
every run says so with ``pull_sweeps(entity)``, and a pull read from start to end stands for that sweep. The
drivers ``run_pull`` / ``run_sweep`` / ``run_push`` are the only code that talks to the store, so resumability
(page + cursor in one transaction), tombstones and outbox bookkeeping live in one place.

Outbox payloads that take something away (``removal(payload)``): ``{"action": "withdraw"}`` — remove every
field the hub wrote on the target record (the record left the hub: deactivated, quarantined, merged away);
``{"action": "erase", ...}`` — the person was erased: withdraw, then delete or anonymise the record where the
target allows it (each connector says what it does).

Retry policy: ONE layer, ``send_with_retries`` (used by ``fetch_json`` and the Tryton client). It retries what
passes — read timeouts, 429 (waiting as Retry-After asks, capped), 5xx, bodies cut off or not JSON — up to
``attempts`` times within ``max_seconds``; a source that does not answer at all (connection refused, host
not found, connect timeout) gets one retry only. The sessions themselves never retry (urllib3 ``Retry(0)``):
retries inside retries multiplied into minutes before a down source was reported. When it gives up it raises
``SourceUnavailable`` naming the source and the URL's host, never the URL's query (tokens) nor a secret; 401
and 403 are not transient: ``SourceAuthError`` at once. Vendor error codes in an HTTP 200 (WeChat's) are the
connector's business.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from hub.store import (  # noqa: F401 - chunked is re-exported to connectors
    ANALYZE_AFTER_ROWS,
    ORJSON_STRICT,
    LandingRecord,
    OutboxItem,
    chunked,
    claim_token,
    json_value,
    jsonable,
    landing,
    orjson_exact,
    payload_hash,
)

log = logging.getLogger(__name__)

PushStatus = Literal["ok", "rejected", "error"]

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)  # (connect, read) seconds
RETRY_STATUSES: tuple[int, ...] = (429, 500, 502, 503, 504)
AUTH_STATUSES: tuple[int, ...] = (401, 403)
DEFAULT_ATTEMPTS = 4  # one request and three retries
DEFAULT_MAX_SECONDS = 60.0  # the whole retry budget of one call, waits included
CONNECT_ATTEMPTS = 2  # nothing answers at all: one retry, then the source is reported down
RETRY_AFTER_MAX = 120.0


# --------------------------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True, slots=True)
class Page:
    """One unit of progress: landed together with ``cursor`` in one transaction by ``run_pull``."""

    records: list[LandingRecord]
    cursor: dict
    total: int | None = None  # records of the entity the source announced (a progress bar's end), if it says


@dataclass(frozen=True, slots=True)
class PushOutcome:
    outbox_id: int
    status: PushStatus
    reason: str | None = None


@dataclass(slots=True)
class PullStats:
    source: str
    entity: str
    pages: int = 0
    records: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    suppressed: int = 0  # records of erased people left out (hub.privacy.suppression)
    seconds: float = 0.0
    # the ids a pull that read the whole entity from its first page to its last saw (``Connector.pull_sweeps``):
    # what an id-only sweep would find, so ``run_sweep`` does not ask the source again; else None
    present: Any = None

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class PushStats:
    target: str
    sent: int = 0
    ok: int = 0
    rejected: int = 0
    error: int = 0
    batches: int = 0
    reconciled: int = 0  # rows left in doubt by a killed run that the target already held: not sent again
    drift: int = 0  # records a target read whole showed changed or lost since the hub wrote them: queued again
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """The shape every connector has. ``system`` is the landing ``source`` name and the push ``target``."""

    system: str
    entities: tuple[str, ...]

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]: ...

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]: ...


REMOVALS = ("withdraw", "erase")


def removal(payload: Mapping[str, Any] | None) -> str | None:
    """'withdraw' / 'erase' when an outbox payload takes the hub's fields (or the record) away, else None.
    (A directory payload with ``lifecycle: deleted`` is the older spelling of a withdrawal.)"""
    p = payload or {}
    action = p.get("action")
    if action in REMOVALS:
        return str(action)
    if p.get("lifecycle") in ("deleted", "erased"):
        return "erase" if p["lifecycle"] == "erased" else "withdraw"
    return None


class ConnectorError(RuntimeError):
    """A source answered in a way the connector cannot recover from in this run (the cursor is kept)."""


class SourceUnavailable(ConnectorError):
    """The source did not answer, or kept failing, through every retry. The message names the source and the
    URL's host and says what happened; it never holds a query string or a secret."""


class SourceAuthError(ConnectorError):
    """The source refused the credentials (HTTP 401/403, or its own login said no): not retried."""


class VendorError(ConnectorError):
    """An error the vendor reports in the body (e.g. WeChat errcode); ``code`` is the vendor's code."""

    def __init__(self, code: int | str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else str(code))
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------------------------
# Rate limiting


class TokenBucket:
    """Thread-safe token bucket: ``rate`` requests per second sustained, bursts of up to ``capacity``.

    ``acquire`` blocks (sleeps) rather than failing, so a connector never exceeds the vendor's budget even
    when several threads share one session.
    """

    def __init__(self, rate: float, capacity: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0 requests/second")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(1.0, rate))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self, tokens: float = 1.0) -> float:
        """Take ``tokens``; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return waited
                need = (tokens - self._tokens) / self.rate
            self._sleep(need)
            waited += need


# --------------------------------------------------------------------------------------------------------------
# HTTP session


class _HubAdapter(HTTPAdapter):
    """HTTPAdapter that applies a default timeout and the system's rate limiter to every request."""

    def __init__(self, *, timeout: tuple[float, float], limiter: TokenBucket | None, **kw: Any) -> None:
        self._default_timeout = timeout
        self._limiter = limiter
        super().__init__(**kw)

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        if kw.get("timeout") is None:
            kw["timeout"] = self._default_timeout
        if self._limiter is not None:
            self._limiter.acquire()
        return super().send(request, **kw)


def make_session(
    *,
    rate_limit: float | None = None,
    burst: float | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    retry: Retry | None = None,
    auth: Any = None,
    headers: Mapping[str, str] | None = None,
    pool_size: int = 4,
) -> requests.Session:
    """A ``requests.Session`` with default timeouts and an optional token bucket, and no retries of its own:
    the hub retries in one place, ``send_with_retries`` (``retry`` only for callers outside the connectors).

    ``rate_limit`` is requests per second for this system (None = unlimited).
    """
    session = requests.Session()
    limiter = TokenBucket(rate_limit, burst) if rate_limit else None
    adapter = _HubAdapter(
        timeout=timeout,
        limiter=limiter,
        max_retries=retry if retry is not None else Retry(0, read=False),
        pool_connections=pool_size,
        pool_maxsize=pool_size,
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if auth is not None:
        session.auth = auth
    session.headers.update({"Accept": "application/json", "User-Agent": "customer-data-hub/0.1"})
    if headers:
        session.headers.update(headers)
    return session


# What passes: a body that did not arrive whole or is not JSON, a read that timed out, a dropped connection
# (requests raises these after urllib3 hands back the response; with stream=True urllib3's own errors).
BODY_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.JSONDecodeError,
    json.JSONDecodeError,  # a body decoded by hand
    urllib3.exceptions.HTTPError,
)


class RetryableHTTPError(ConnectorError):
    """A status worth retrying (429, 5xx); ``retry_after`` is the server's Retry-After in seconds, if any."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


def retryable_status(resp: requests.Response) -> RetryableHTTPError | None:
    """The error to retry for a 429/5xx answer (closing it), else None."""
    if resp.status_code not in RETRY_STATUSES:
        return None
    resp.close()
    return RetryableHTTPError(resp.status_code, _retry_after(resp.headers.get("Retry-After")))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def host_of(url: str) -> str:
    """host[:port] of a URL: what an error may name (no credentials, path or query)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _no_answer(exc: BaseException) -> str | None:
    """Why nothing answered at all (refused, unknown host, connect timeout), or None if something did."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect timed out"
    if not isinstance(exc, requests.exceptions.ConnectionError):
        return None
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:  # walk the causes: requests wraps urllib3's MaxRetryError wraps NewConnectionError ...
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, urllib3.exceptions.NameResolutionError) or "Name or service not known" in str(e):
            return "host name not found"
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, urllib3.exceptions.NewConnectionError):
            return "connection refused" if "refused" in str(e).lower() else "cannot connect"
        if isinstance(e, urllib3.exceptions.ConnectTimeoutError):
            return "connect timed out"
        todo += [getattr(e, "reason", None), e.__cause__, e.__context__, *[a for a in getattr(e, "args", ())
                                                                          if isinstance(a, BaseException)]]
    return None


def _what_failed(exc: BaseException) -> str:
    """A short, secret-free description of a transient failure."""
    if isinstance(exc, RetryableHTTPError):
        return f"answered HTTP {exc.status}"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "read timed out"
    if isinstance(exc, json.JSONDecodeError):  # requests' JSONDecodeError is one too
        return "answer was not JSON"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | urllib3.exceptions.ProtocolError):
        return "answer cut off"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection dropped"
    return type(exc).__name__


def send_with_retries(
    send: Callable[[], Any],
    *,
    source: str,
    url: str,
    attempts: int = DEFAULT_ATTEMPTS,
    wait_initial: float = 0.5,
    wait_max: float = 8.0,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    transient: tuple[type[BaseException], ...] = (*BODY_ERRORS, RetryableHTTPError),
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Call ``send()`` until it returns, retrying ``transient`` failures with jittered exponential backoff
    (a 429/503's Retry-After is waited as asked, up to ``RETRY_AFTER_MAX``); at most ``attempts`` calls, and
    no wait that would end past ``max_seconds`` after the first call. A source that does not answer at all
    is tried ``CONNECT_ATTEMPTS`` times. Gives up with ``SourceUnavailable`` naming ``source`` and the host."""
    import random

    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return send()
        except transient as exc:
            no_answer = _no_answer(exc)
            what = no_answer or _what_failed(exc)
            limit = min(attempts, CONNECT_ATTEMPTS) if no_answer else attempts
            wait = min(wait_max, wait_initial * 2 ** (attempt - 1)) + random.uniform(0, wait_initial)
            asked = getattr(exc, "retry_after", None)
            if asked is not None:
                wait = min(float(asked), RETRY_AFTER_MAX)
            elapsed = time.monotonic() - started
            if attempt >= limit or elapsed + wait > max_seconds:
                failure = f"cannot reach {host_of(url)} ({what})" if no_answer else f"{host_of(url)} {what}"
                # from None: the chained requests/urllib3 errors quote the whole URL, query (tokens) included
                raise SourceUnavailable(f"{source}: {failure} — gave up after {attempt} attempt"
                                        f"{'s' if attempt > 1 else ''} in {elapsed:.1f}s") from None
            log.warning("%s: %s %s; retrying in %.1fs (attempt %d of %d)", source, host_of(url), what, wait,
                        attempt + 1, limit)
            sleep(wait)


def fetch_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    source: str = "source",
    attempts: int = DEFAULT_ATTEMPTS,
    wait_initial: float = 0.5,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    **kw: Any,
) -> tuple[Any, requests.Response]:
    """Send a request and decode its JSON body, through the one retry layer (``send_with_retries``).

    Returns ``(json, response)``. 401/403 raise ``SourceAuthError`` at once (wrong key or secret: retrying
    only hammers the server); any other 4xx raises ``requests.HTTPError`` at once (a bad request stays bad).
    """

    def once() -> tuple[Any, requests.Response]:
        resp = session.request(method, url, **kw)
        retry = retryable_status(resp)
        if retry is not None:
            raise retry
        if resp.status_code in AUTH_STATUSES:
            resp.close()
            raise SourceAuthError(f"{source}: {host_of(url)} refused the credentials (HTTP {resp.status_code}); "
                                  "check the key / secret / password the source's hub.yaml *_env variables name")
        resp.raise_for_status()
        if (resp.encoding or "utf-8").lower() in ("utf-8", "utf8"):
            # the store's reader: orjson where it reads as json.loads does (a third of a shop pull's CPU went
            # to json.loads of the pages)
            return json_value(resp.content), resp
        return resp.json(), resp

    return send_with_retries(once, source=source, url=url, attempts=attempts, wait_initial=wait_initial,
                             max_seconds=max_seconds)


def _redact(url: str) -> str:
    """Drop the query string: it may carry access tokens or keys, which must never reach the logs."""
    return url.split("?", 1)[0]


_QUERY = re.compile(r"\?[^\s'\"()]*")


# The line a pull reports its progress with: the pull step writes it (hub.assets.pull_progress), relays the newest
# of each source and entity from its threads, and `hub sync` draws a bar from it (hub.sync.Progress)
PROGRESS_RE = re.compile(r"^progress (?P<step>\w+) (?P<entity>\w+) (?P<done>\d+)(?:/(?P<total>\d+))? records$")


def progress_line(step: str, entity: str, done: int, total: int | None = None) -> str:
    """The progress line of ``step`` (``raw_<source>``): ``done`` records of ``entity`` (of ``total``)."""
    return f"progress {step} {entity} {done}{f'/{total}' if total is not None else ''} records"


def redact_text(text: str) -> str:
    """Remove every URL query string from a message (urllib3 and requests put whole URLs, tokens included,
    into log lines and exception texts)."""
    return _QUERY.sub("?<redacted>", text)


class RedactQueryFilter(logging.Filter):
    """Logging filter for urllib3's retry warnings, which print the full URL (WeChat's access_token, openids)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(redact_text(a) if isinstance(a, str) else
                                _Verbatim(redact_text(repr(a))) if isinstance(a, BaseException) else a
                                for a in args)
        return True


class _Verbatim:
    """Formats as the given text under both %s and %r (keeps a redacted exception repr unquoted)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    if not any(isinstance(f, RedactQueryFilter) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(RedactQueryFilter())


# --------------------------------------------------------------------------------------------------------------
# Paging helpers (each yields enough to build a resumable cursor after every page)


def iter_page_number(
    fetch: Callable[[int], tuple[list, Mapping[str, str]]],
    *,
    start_page: int = 1,
    total_pages_header: str = "X-WP-TotalPages",
) -> Iterator[tuple[int, list, bool]]:
    """Page-number paging (WordPress/WooCommerce style): ``fetch(page)`` returns ``(items, headers)``.
    Yields ``(page, items, is_last)``.

    The total page count is re-read from every response (records may be added while we page); an empty
    page or a page at/after the advertised total ends the run.
    """
    page = start_page
    while True:
        items, headers = fetch(page)
        total_raw = headers.get(total_pages_header)
        total = int(total_raw) if total_raw and total_raw.isdigit() else None
        is_last = not items or (total is not None and page >= total)
        yield page, items, is_last
        if is_last:
            return
        page += 1


def iter_next_token(
    fetch: Callable[[str | None], dict],
    *,
    start_token: str | None = None,
    items_of: Callable[[dict], list],
    next_token_of: Callable[[dict], str | None],
) -> Iterator[tuple[str | None, list, str | None]]:
    """Cursor/next-token paging (WeChat ``next_openid``, Graph ``after``...). Yields
    ``(token_sent, items, next_token)``; ``next_token`` is None on the last page.

    A page with no items ends the run even if the vendor still returns a token (WeChat does exactly that).
    """
    token = start_token
    while True:
        body = fetch(token)
        items = items_of(body) or []
        nxt = next_token_of(body) or None
        if not items:
            nxt = None
        yield token, items, nxt
        if nxt is None or nxt == token:
            return
        token = nxt


def iter_keyset(
    fetch_after: Callable[[tuple | None, int], Sequence[Any]],
    *,
    key_of: Callable[[Any], tuple],
    after: tuple | None = None,
    limit: int = 1000,
) -> Iterator[tuple[Sequence[Any], tuple | None, bool]]:
    """Keyset paging on a composite key such as (updated_at, id): ``fetch_after(after, limit)`` must return
    rows ordered by that key strictly after ``after``. Yields ``(rows, last_key, is_last)``."""
    while True:
        rows = fetch_after(after, limit)
        if rows:
            after = key_of(rows[-1])
        is_last = len(rows) < limit
        yield rows, after, is_last
        if is_last:
            return


def read_complete_lines(path: str | os.PathLike[str], offset: int, max_bytes: int = 4 << 20) -> tuple[list[bytes], int]:
    """Byte-offset reading of an append-only file: the complete lines after ``offset`` (at most about
    ``max_bytes``) and the offset just past the last newline. A partial last line (the writer is mid-append)
    is left for the next read."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read(max_bytes)
        if len(chunk) == max_bytes:
            # the chunk may have cut a line: read on to the next newline so no line is split
            rest = fh.readline()
            chunk += rest
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    complete = chunk[: end + 1]
    return complete.splitlines(), offset + len(complete)


def overlap_start(watermark: str | None, overlap: timedelta) -> str | None:
    """The lower bound of the next incremental run: the stored watermark minus the overlap window, which
    catches rows committed late with an earlier timestamp (long transactions, clock skew)."""
    if not watermark:
        return None
    return (datetime.fromisoformat(watermark) - overlap).isoformat()


# --------------------------------------------------------------------------------------------------------------
# Landing records


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """Source values -> JSON values: datetimes/dates as ISO strings, Decimal as str, bytes as hex."""
    if type(value) in _PLAIN:  # the common case first: this runs for every column of every row
        return value
    if isinstance(value, dict):
        return {str(k): v if type(v) in _PLAIN else to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _PLAIN else to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def landing_record(source_id: Any, payload: dict, hash_view: dict | None = None,
                   hub_state: dict | None = None, *, exact: bool = False) -> LandingRecord:
    """Build a LandingRecord. ``hash_view`` is the payload with hub-owned fields removed (echo suppression):
    the stored payload keeps them, the hash ignores them. ``hub_state`` is what the record holds of the
    hub's own fields (the connector's held view), for the drift check.

    The hash's canonical text is written here by orjson where it writes exactly what ``json.dumps`` would
    (``orjson_exact``): the encodings were the largest share of a pull's CPU (json.dumps ~20-50 us a record).
    Anything else takes the general path. The payload's stored text is written here too when the payload
    itself was found exact (no ``hash_view``, or ``exact``): one more orjson call. With a ``hash_view`` the
    text is left to ``land_page`` (``json_text``, orjson where exact too), which writes it only for a new or
    changed record: most records of an incremental pull are unchanged, and walking and encoding each one's
    payload besides its view was a tenth of an unchanged shop pull.
    ``exact``: the caller knows both pass ``orjson_exact`` (the SQL ERP, from its page's column types), so
    they are not walked; ``ORJSON_STRICT`` still makes orjson raise on a type it would write otherwise."""
    view = payload if hash_view is None else hash_view
    if exact or orjson_exact(view):
        try:
            # the payload was walked (it is the view) or vouched for: its text costs one orjson call, and
            # land_page would walk it again to write a new record's
            text = orjson.dumps(payload, option=ORJSON_STRICT).decode() if exact or view is payload else None
            canonical = orjson.dumps(view, option=ORJSON_STRICT | orjson.OPT_SORT_KEYS)
        except TypeError:  # an integer beyond 64 bits
            pass
        else:
            return LandingRecord(str(source_id), payload, hashlib.sha256(canonical).hexdigest(), hub_state, text)
    return LandingRecord(str(source_id), payload, payload_hash(view), hub_state)


# --------------------------------------------------------------------------------------------------------------
# Drivers


def run_pull(connector: Connector, store: Any, entity: str, *, max_pages: int | None = None, full: bool = False,
             progress: Callable[..., None] | None = None) -> PullStats:
    """Pull ``entity`` from the stored cursor onwards; each page and its cursor land in one transaction.

    ``max_pages`` bounds one run (the next run resumes from the cursor). A crash between pages loses nothing:
    the cursor saved with the last landed page is where the next run starts. ``full`` ignores the stored
    cursor: every record is read again (unchanged ones are still not re-landed). ``progress(stats, total)``
    is called after every landed page (``total``: the records the source announced, when it says).
    """
    if entity not in connector.entities:
        raise ValueError(f"{connector.system} has no entity {entity!r} (has {connector.entities})")
    from hub.privacy import suppression

    stats = PullStats(source=connector.system, entity=entity)
    started = time.perf_counter()
    cursor = None if full else store.get_cursor(connector.system, entity)
    sup = suppression.load(store)
    # a pull that reads the whole entity every run keeps the ids it saw when it reads it from the first page
    # (not resuming a sweep an earlier run left half done) to the last: an id-only sweep after it would ask the
    # source the same again (WooCommerce customers: as many requests as the pull itself)
    seen: list[str] | None = [] if _sweeps_from_start(connector, entity, cursor) else None
    last_cursor: dict | None = None
    try:
        for page in connector.pages(entity, cursor):
            if seen is not None:
                seen.extend(str(r.source_id) for r in page.records)  # before suppression: still at the source
            last_cursor = page.cursor
            records = page.records
            if not sup.empty:  # an erased person's records never land again
                records = [r for r in records if not sup.listed(
                    "landing", suppression.landing_key(connector.system, entity, r.source_id))]
                stats.suppressed += len(page.records) - len(records)
            counts = store.land_page(connector.system, entity, records, jsonable(page.cursor))
            stats.pages += 1
            stats.records += len(page.records)
            stats.new += counts.new
            stats.changed += counts.changed
            stats.unchanged += counts.unchanged
            if progress is not None:
                progress(stats, page.total)
            if max_pages is not None and stats.pages >= max_pages:
                break
        if stats.new + stats.changed >= ANALYZE_AFTER_ROWS:  # after a pull that went through (a failing one
            store.refresh_statistics(landing)  # keeps its own error): the next lookups plan with what landed
        if seen is not None and (last_cursor or {}).get("complete") is True:
            from hub.privacy.tombstones import SourceIds

            stats.present = SourceIds.of(seen)
    finally:
        stats.seconds = time.perf_counter() - started
        log.info(
            "pull %s/%s: %d pages, %d new, %d changed, %d unchanged in %.2fs",
            connector.system, entity, stats.pages, stats.new, stats.changed, stats.unchanged, stats.seconds,
        )
    return stats


def held_value(values: Any, *, distinct: bool = True) -> Any:
    """One value as a target holds it: '' and missing are None; several values a sorted list (a record
    carrying two golden ids or two segments of one family is not in its desired state). ``distinct=False``
    keeps repeats: two identifier rows with the same golden id are still one too many."""
    if isinstance(values, list | tuple | set | frozenset):
        held = [str(v) for v in values if v not in (None, "")]
        held = sorted(set(held) if distinct else held)
        return None if not held else held[0] if len(held) == 1 else held
    return None if values in (None, "") else values


def field_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list]:
    """``{field: [before, after]}`` for the fields whose value differs (None = not held / removed)."""
    b, a = before or {}, after or {}
    out = {}
    for key in sorted(set(a) | set(b)):
        old, new = held_value(b.get(key)), held_value(a.get(key))
        if old != new:
            out[key] = [old, new]
    return out


def held_view(connector: Any, item: OutboxItem) -> dict | None:
    """What the target holds of the hub's fields once ``item`` is applied (None: the record is removed).
    Connectors that do not say fall back to the payload itself."""
    view = getattr(connector, "held_view", None)
    return view(item) if view is not None else dict(item.payload or {})


def known_before(connector: Any, store: Any, target: str, items: list[OutboxItem]) -> dict[int, dict | None]:
    """What the hub knows each row's target record holds now: the hub fields the last pull saw (or the last
    push wrote) on the landing record, else the held view of the last payload pushed there, else None."""
    ids = sorted({it.target_id for it in items if it.target_id})
    states, last = store.holdings(target, getattr(connector, "system", target), ids, {it.entity for it in items})
    out: dict[int, dict | None] = {}
    for it in items:
        if it.target_id in states:
            out[it.id] = states[it.target_id]
        elif it.target_id in last:
            gid, payload = last[it.target_id]
            out[it.id] = held_view(connector, it._replace(golden_id=gid, payload=payload))
        else:
            out[it.id] = None
    return out


def _sweeps_from_start(connector: Any, entity: str, cursor: dict | None) -> bool:
    """Whether ``connector.pages(entity, cursor)`` reads every record of the entity from the first page: the
    connector says its pull of the entity is a full sweep (``pull_sweeps``) and the cursor starts a new one
    (none, or the last sweep's ``{"complete": True, ...}``)."""
    sweeps = getattr(connector, "pull_sweeps", None)
    return bool(sweeps is not None and sweeps(entity) and (not cursor or cursor.get("complete") is True))


def run_sweep(connector: Any, store: Any, entity: str, pulled: PullStats | None = None) -> Any:
    """Sweep ``entity``'s ids at the source (``connector.present_ids``) and record tombstones for records the
    source deleted or deactivated (``hub.privacy.tombstones``). Returns ``SweepStats``, or None when the
    connector cannot list ids for this entity. ``pulled``: the pull of the entity just run; when it read the
    whole entity (``PullStats.present``) its ids are the sweep's and the source is not asked again."""
    from hub.privacy.tombstones import record_sweep

    lister = getattr(connector, "present_ids", None)
    started = time.perf_counter()
    if pulled is not None and pulled.present is not None and pulled.entity == entity:
        ids = pulled.present
    else:
        ids = lister(entity) if lister is not None else None
    if ids is None:
        return None
    stats = record_sweep(store, connector.system, entity, ids)
    stats.seconds = time.perf_counter() - started
    if stats.refused:
        log.warning("sweep %s/%s: %s", connector.system, entity, stats.refused)
    else:
        log.info("sweep %s/%s: %d present, %d newly gone, %d deactivated, %d back in %.2fs", connector.system,
                 entity, stats.present, stats.deleted, stats.deactivated, stats.revived, stats.seconds)
    return stats


def run_push(connector: Connector, store: Any, target: str | None = None, *,
             batch_size: int | None = None, run_id: str | None = None) -> PushStats:
    """Send the target's waiting outbox rows in batches and record every row's outcome.

    ``batch_size`` rows go to one ``connector.push`` call (default: the connector's ``push_batch_size``,
    what its API takes in one request or transaction; 1 sends row by row).

    Each batch is claimed atomically before it is sent (status 'sending', see ``Store.claim_pushes``), so
    two pushers on one store never send the same row. 'ok'/'rejected' close a row; 'error' makes it wait for
    the next run. A row left 'sending' by a pusher that died between sending and recording is in doubt: the
    next run asks the target what it holds (``connector.held``) and records the rows it already holds as
    ok without sending them again — a half-finished push is finished, never repeated. If ``connector.push``
    raises or every row of a batch errors (system down), the run stops: the rest keep waiting.
    """
    target = target or connector.system
    batch_size = batch_size or getattr(connector, "push_batch_size", 100)
    token = claim_token()
    stats = PushStats(target=target)
    started = time.perf_counter()
    try:
        stats.drift = verify_holdings(connector, store, target)
        doubt = store.take_over_in_doubt(target, token, run_id)
        if doubt:
            doubt = _reconcile(connector, store, target, doubt, token, run_id, stats)
        # each claim walks on from the last row claimed: a walk from the first waiting id stepped over every row
        # sent before it, which PostgreSQL keeps in the index until a vacuum (55k shop rows in claims of 100:
        # 6.6 ms a claim at first, 46 ms at the end, 11.7 s in all; quadratic). The rows before it are walked
        # once more when it finds nothing: a row another pusher held then, or let go in error, is sent now.
        after = 0
        while True:
            if doubt:
                batch, doubt = doubt[:batch_size], doubt[batch_size:]
            else:
                batch = store.claim_pushes(target, token, batch_size, run_id, after=after)
                if not batch and after:
                    after = 0
                    batch = store.claim_pushes(target, token, batch_size, run_id)
                after = max((item.id for item in batch), default=after)
            if not batch or not _send(connector, store, target, batch, token, run_id, stats):
                break
    finally:
        # a connector whose own writes look like changes at its source notes them for its next pull (Tryton:
        # the timestamps of its calls); also after a failed batch, for what did get written
        record_own = getattr(connector, "record_own_writes", None)
        if record_own is not None:
            record_own(store)
        stats.seconds = time.perf_counter() - started
        log.info("push %s: %d sent, %d ok, %d rejected, %d error, %d reconciled, %d drift in %.2fs", target,
                 stats.sent, stats.ok, stats.rejected, stats.error, stats.reconciled, stats.drift, stats.seconds)
    return stats


def verify_holdings(connector: Any, store: Any, target: str) -> int:
    """What the hub wrote is verified, for a target no pull reads (the PBX directory file): a connector that
    can read everything it holds (``holdings()``, target id -> held view) is compared with what the hub last
    wrote there; records changed or lost since are queued again (cause 'drift'). Targets the hub pulls are
    verified by their pull instead (landing hub_state, ``push_plan``). Returns the records queued."""
    read = getattr(connector, "holdings", None)
    if read is None:
        return 0
    queued = 0
    for entity, items in store.drifted_holdings(target, read()).items():
        queued += store.enqueue_pushes(target, entity, items, force=[tid for tid, _, _ in items])
    if queued:
        log.warning("push %s: %d records changed or lost in the target since the hub wrote them: queued again",
                    target, queued)
    return queued


def _reconcile(connector: Any, store: Any, target: str, doubt: list[OutboxItem], token: str,
               run_id: str | None, stats: PushStats) -> list[OutboxItem]:
    """Record the in-doubt rows the target already holds as ok (not sent again); return the others."""
    read = getattr(connector, "held", None)
    if read is None:
        return doubt  # no way to ask: the connector's push is idempotent, the rows are sent again
    try:
        held = read(doubt)
    except Exception as exc:  # noqa: BLE001 - cannot read the target now: the rows stay in doubt for later
        log.warning("push %s: cannot check %d in-doubt rows (%s)", target, len(doubt), type(exc).__name__)
        return []
    done = [it for it in doubt if it.id in held and held[it.id] == held_view(connector, it)]
    if done:
        views = {it.id: held_view(connector, it) for it in done}
        store.record_push_results([(it.id, "ok", "reconciled: the target already held it") for it in done],
                                  token=token, run_id=run_id, held=views, held_source=connector.system)
        stats.reconciled += len(done)
        stats.ok += len(done)
    finished = {it.id for it in done}
    return [it for it in doubt if it.id not in finished]


def _send(connector: Any, store: Any, target: str, batch: list[OutboxItem], token: str, run_id: str | None,
          stats: PushStats) -> bool:
    """Push one claimed batch and record it; False when the run should stop (the target is down)."""
    stats.batches += 1
    stats.sent += len(batch)
    before = known_before(connector, store, target, batch)
    # what each row leaves in the target (a function of the row): the log's changes, and push_state once ok
    after = {it.id: held_view(connector, it) for it in batch}
    changes = {it.id: field_changes(before[it.id], after[it.id]) for it in batch}
    try:
        # a connector that would read the target first takes what the hub knows instead (``known_before``)
        outcomes = (connector.push(batch, known=before) if getattr(connector, "push_takes_known", False)
                    else connector.push(batch))
    except Exception as exc:  # any failure of the target means: retry next run
        reason = f"{type(exc).__name__}: push failed"
        log.warning("push %s: batch of %d failed (%s); stopping this run", target, len(batch), type(exc).__name__)
        store.record_push_results([(item.id, "error", reason) for item in batch], token=token, run_id=run_id,
                                  changes=changes)
        stats.error += len(batch)
        stats.reasons[reason] = stats.reasons.get(reason, 0) + len(batch)
        return False
    by_id = {o.outbox_id: o for o in outcomes}
    rows: list[tuple[int, str, str | None]] = []
    views: dict[int, dict | None] = {}
    for item in batch:
        o = by_id.get(item.id) or PushOutcome(item.id, "error", "connector returned no outcome")
        rows.append((item.id, o.status, o.reason))
        if o.status == "ok":
            views[item.id] = after[item.id]
        setattr(stats, o.status, getattr(stats, o.status) + 1)
        if o.status != "ok" and o.reason:
            stats.reasons[o.reason] = stats.reasons.get(o.reason, 0) + 1
    store.record_push_results(rows, token=token, run_id=run_id, changes=changes, held=views,
                              held_source=connector.system)
    if all(status == "error" for _, status, _ in rows):
        log.warning("push %s: every row of a batch failed; stopping this run", target)
        return False  # the target is down or refusing us: the rest wait for the next run
    return True
