"""The caller-lookup HTTP API (FastAPI on uvicorn): ``hub serve``.

  GET /v1/callers/{phone}            the caller card of whoever holds the number (``?format=asterisk``: one
                                     text line for the dialplan); several holders -> ``matches``
  GET /v1/customers/{golden_id}      the 360 view; a merged-away id answers with its survivor
  GET /v1/search?email=…             by e-mail (provider-aware key: John.Doe+x@googlemail.com = johndoe@gmail.com)
  GET /v1/search?name=…[&city=…]     by name in any script and order (陈伟 / 陳偉 / WEI CHEN), city likewise
  GET /healthz                       liveness + store reachability (no token needed)
  GET /openapi.json, /docs           the API description

Every /v1 request needs ``Authorization: Bearer <token>`` (``HUB_API_TOKENS``, see hub/lookup/access.py), is
rate-limited per token and written to the audit log. Bad input gets 400 with a message; nothing a client
sends yields a 500 or a stack trace. The request path (which holds the phone number) is never logged.
"""


import json
import logging
import os
import threading
from collections.abc import Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, NamedTuple

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.config import ServeConfig, load_config
from hub.lookup.access import TOKENS_ENV, AuditLog, RateLimiter, TokenRegistry, parse_tokens
from hub.lookup.cards import (
    CallerAnswer,
    CallerMatches,
    SearchAnswer,
    asterisk_line,
    caller_card,
    household_name,
    search_hit,
)
from hub.lookup.keys import holds_phone, key_hash
from hub.lookup.query import (
    BadInput,
    NotAPhoneNumber,
    parse_email,
    parse_golden_id,
    parse_name_city,
    parse_phone,
)
from hub.store import Store, customer_360, lookup_key

log = logging.getLogger(__name__)

PG_TIMEOUT_S = 5  # connect / statement timeout of a lookup query: a dead server must not hold the loop
MAX_HOLDERS = 50  # golden customers returned for one number (a switchboard can be shared by many)


class ApiError(BaseModel):
    error: str
    detail: str


class Refusal(Exception):
    """An answer other than 200, with a machine-readable code and a message for people."""

    def __init__(self, status: int, error: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.headers = status, error, detail, dict(headers or {})


def _error(status: int, error: str, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=dict(headers or {}))


class _Compiled(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # positional drivers (sqlite3): parameter names in order
    defaults: dict[str, Any]  # values bound at compile time (the LIMIT)


class _PgReader:
    """One psycopg (3) connection for the lookup queries of one worker: autocommit, server-side prepared
    statements, reconnect on failure. One round trip per lookup.

    Called on the event loop: a lookup's query takes a fraction of a millisecond, less than handing it to a
    thread would cost. psycopg's asyncio pool was measured too (bench_lookup.py, loaded 2-core machine): more
    requests/s at saturation, but p99 at 200 requests/s of 400-750 ms against ~40 ms for this blocking call
    (cause not pinned down). Timeouts bound how long a dead server can hold the loop; more throughput comes
    from more workers (``hub serve --workers``).
    """

    def __init__(self, url: str) -> None:
        self._conninfo = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        self._lock = threading.Lock()  # one statement at a time on the connection (apps in threads: tests)

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self._conninfo, autocommit=True, connect_timeout=PG_TIMEOUT_S,
                               options=f"-c statement_timeout={PG_TIMEOUT_S * 1000}")

    def rows(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        import psycopg

        with self._lock:
            try:
                return self._execute(sql, params)
            except psycopg.OperationalError:
                # the server restarted or dropped the connection: one more try on a new one; a second failure
                # is a store outage (503)
                self.close()
            try:
                return self._execute(sql, params)
            except psycopg.OperationalError:
                self.close()
                raise

    def _execute(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn.execute(sql, params, prepare=True).fetchall()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class LookupService:
    """Reads the lookup index and the 360 view; one per app.

    The hot path (key -> 360 records) is one join, compiled once for the store's dialect and run on the
    driver directly: SQLAlchemy's per-statement work would cost more than the query itself. SQLite is read
    through a pooled DBAPI connection (in-process, tens of microseconds); PostgreSQL through ``_PgReader``:
    SQLAlchemy's pool cost three round trips per lookup there (pre-ping, query, rollback on return), each a
    wait for the server process to get a CPU on a loaded machine.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        c = customer_360
        self._by_key: dict[int, _Compiled] = {}
        self._by_id = self._compile(sa.select(c.c.golden_id, c.c.record).where(c.c.golden_id == sa.bindparam("g")))
        self._pg = _PgReader(store.url) if store.dialect == "postgresql" else None

    def close(self) -> None:
        if self._pg is not None:
            self._pg.close()

    def _key_query(self, cap: int) -> "_Compiled":
        if cap not in self._by_key:
            k, c = lookup_key, customer_360
            q = self._compile(
                sa.select(c.c.golden_id, c.c.record).select_from(k.join(c, c.c.golden_id == k.c.golden_id))
                .where(k.c.key_hash == sa.bindparam("h")).order_by(c.c.golden_id)
            )
            # the cap written into the statement: a LIMIT parameter leaves the planner of a prepared statement
            # guessing how many rows are wanted
            self._by_key[cap] = q._replace(sql=f"{q.sql} LIMIT {int(cap)}")
        return self._by_key[cap]

    def _compile(self, stmt: sa.Select) -> "_Compiled":
        compiled = stmt.compile(dialect=self.store.engine.dialect)
        order = getattr(compiled, "positiontup", None)
        return _Compiled(str(compiled), tuple(order) if order else None, dict(compiled.params))

    def _rows(self, query: "_Compiled", given: dict[str, Any]) -> list[dict[str, Any]]:
        params = {**query.defaults, **given}
        if self._pg is not None:
            rows = self._pg.rows(query.sql, params)
        else:
            conn = self.store.engine.raw_connection()
            try:
                cur = conn.cursor()
                cur.execute(query.sql, tuple(params[n] for n in query.order) if query.order else params)
                rows = cur.fetchall()
                cur.close()
            finally:
                conn.close()  # back to the pool
        # PostgreSQL's driver decodes json columns itself; SQLite hands back the text
        return [rec if isinstance(rec, dict) else json.loads(rec) for _, rec in rows]

    def ping(self) -> None:
        """Raise if the store cannot be reached (/healthz)."""
        if self._pg is not None:
            self._pg.rows("SELECT 1", {})
            return
        with self.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def views_for_key(self, key: str, cap: int = MAX_HOLDERS) -> list[dict[str, Any]]:
        """The 360 views of the golden customers holding ``key`` (by golden id, at most ``cap``)."""
        return self._rows(self._key_query(cap), {"h": key_hash(key)})

    def view(self, golden_id: str) -> dict[str, Any] | None:
        rows = self._rows(self._by_id, {"g": golden_id})
        return rows[0] if rows else None

    def survivor(self, golden_id: str) -> str | None:
        from hub.golden import resolve  # the golden package loads the matching stack: only for merged ids

        try:
            return resolve(self.store, golden_id)
        except KeyError:
            return None


Endpoint = Literal["callers", "customers", "search"]


def create_app(store: Store, settings: ServeConfig, tokens: TokenRegistry, audit: AuditLog) -> FastAPI:
    """The API on one store. ``tokens`` must name at least one token: the API is never open."""
    if not tokens.names:
        raise ValueError(f"no API tokens: set {TOKENS_ENV} (name:token,…)")
    service = LookupService(store)
    limiter = RateLimiter(settings.rate_limit, settings.token_rate_limits)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        try:
            yield
        finally:
            service.close()
            audit.close()
            store.dispose()

    app = FastAPI(
        title="Customer data hub — caller lookup",
        version="1",
        description="Who is calling: the golden customer behind a phone number, e-mail or name, for phone "
        "systems and agent desktops. Bearer token required on /v1 (HUB_API_TOKENS).",
        lifespan=lifespan,
    )
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ApiError, "description": "bad input (the message says what is wrong)"},
        401: {"model": ApiError, "description": "missing or unknown bearer token"},
        429: {"model": ApiError, "description": "rate limit of this token reached (see Retry-After)"},
    }

    def authorize(endpoint: Endpoint):  # noqa: ANN202 - FastAPI dependency factory
        async def dependency(request: Request) -> str:
            name = tokens.name_of(request.headers.get("authorization"))
            if name is None:
                audit.record(None, endpoint, 401)
                raise Refusal(401, "unauthorized", "a valid bearer token is required (Authorization: Bearer …)",
                              {"WWW-Authenticate": "Bearer"})
            decision = limiter.hit(name)
            if not decision.allowed:
                audit.record(name, endpoint, 429)
                raise Refusal(429, "rate_limited", f"rate limit of token {name!r} reached; retry in "
                              f"{decision.retry_after}s", {"Retry-After": str(decision.retry_after)})
            return name

        return dependency

    @app.exception_handler(Refusal)
    async def _refusal(_request: Request, exc: Refusal) -> JSONResponse:
        return _error(exc.status, exc.error, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 repeats the input; say which parameter is wrong, not what it held
        where = sorted({".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path")) for e in exc.errors()})
        return _error(400, "bad_request", f"invalid parameter(s): {', '.join(w for w in where if w) or 'request'}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def _store_down(_request: Request, exc: Exception) -> JSONResponse:
        log.error("caller lookup: store unavailable (%s)", type(getattr(exc, "orig", exc)).__name__)
        return _error(503, "store_unavailable", "the hub store cannot be reached; try again shortly")

    # the hot path runs on the driver directly: its own OperationalError too (psycopg 3 on PostgreSQL)
    failures: set[type[Exception]] = {sa.exc.OperationalError, store.engine.dialect.loaded_dbapi.OperationalError}
    if store.dialect == "postgresql":
        import psycopg

        failures.add(psycopg.OperationalError)
    for failure in failures:
        app.add_exception_handler(failure, _store_down)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # the type only: exception texts may hold values from the store
        log.error("caller lookup: unexpected %s", type(exc).__name__)
        return _error(500, "internal_error", "the lookup failed on the server; it has been logged")

    @app.get("/healthz", summary="liveness and store reachability", responses={503: {"model": ApiError}})
    async def healthz() -> dict[str, str]:
        service.ping()
        return {"status": "ok", "store": store.dialect}

    @app.get(
        "/v1/callers/{phone:path}",
        summary="who is calling: the caller card of the number's holder",
        response_model=CallerAnswer | CallerMatches,
        responses={**errors, 404: {"model": ApiError, "description": "no golden customer holds this number"},
                   200: {"content": {"text/plain": {"example": "陈伟|G000000042|gold|https://crm.example/c/G000000042"}},
                         "description": "JSON card; with format=asterisk one line "
                                        "`name|golden_id|value_tier|screen_pop_url` (household: empty id)"}},
    )
    async def caller(
        phone: str,
        token: Annotated[str, Depends(authorize("callers"))],
        format: Annotated[Literal["json", "asterisk"], Query(description="asterisk: one text line")] = "json",  # noqa: A002
    ) -> Any:
        try:
            query = parse_phone(phone, settings.phone_region)
        except BadInput as exc:
            audit.record(token, "callers", 400)
            raise Refusal(400, "bad_request", str(exc)) from None
        except NotAPhoneNumber:
            audit.record(token, "callers", 404)
            raise Refusal(404, "not_found", "no golden customer holds this number (not an assigned number)"
                          ) from None
        views = [v for v in service.views_for_key(query.key) if holds_phone(v, query.e164)]
        audit.record(token, "callers", 200 if views else 404, [v["golden_id"] for v in views])
        if not views:
            raise Refusal(404, "not_found", "no golden customer holds this number")
        cards = [caller_card(v, settings.screen_pop_url) for v in views[:MAX_HOLDERS]]
        if format == "asterisk":
            if len(cards) == 1:
                c = cards[0]
                line = asterisk_line(c.display_name, c.golden_id, c.value_tier or "", c.screen_pop_url or "")
            else:
                line = asterisk_line(household_name(cards))
            return PlainTextResponse(line)
        if len(cards) == 1:
            return CallerAnswer(number=query.e164, extension=query.extension, **cards[0].model_dump())
        return CallerMatches(number=query.e164, extension=query.extension, display_name=household_name(cards),
                             matches=cards)

    @app.get(
        "/v1/customers/{golden_id}",
        summary="the 360 view of a golden customer (a merged-away id answers with its survivor)",
        responses={**errors, 404: {"model": ApiError, "description": "unknown, retired or erased golden id"},
                   200: {"description": "the customer_360 record; `requested_id` is set when the id was merged "
                                        "into `golden_id`"}},
    )
    async def customer(golden_id: str, token: Annotated[str, Depends(authorize("customers"))]) -> Response:
        try:
            gid = parse_golden_id(golden_id)
        except BadInput as exc:
            audit.record(token, "customers", 400)
            raise Refusal(400, "bad_request", str(exc)) from None
        view = service.view(gid)
        if view is None:
            survivor = service.survivor(gid)
            view = service.view(survivor) if survivor and survivor != gid else None
        if view is None:
            audit.record(token, "customers", 404)
            raise Refusal(404, "not_found", "no active golden customer has this id")
        if view["golden_id"] != gid:
            view["requested_id"] = gid
        audit.record(token, "customers", 200, [view["golden_id"]])
        return JSONResponse(view)

    @app.get("/v1/search", summary="find golden customers by e-mail, or by name (+ city)",
             response_model=SearchAnswer, responses=errors)
    async def search(
        token: Annotated[str, Depends(authorize("search"))],
        email: Annotated[str | None, Query(description="any spelling of the address")] = None,
        name: Annotated[str | None, Query(description="any script and order: 陈伟, 陳偉, Chen Wei, WEI CHEN")] = None,
        city: Annotated[str | None, Query(description="with name: Shanghai, 上海, 上海市")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = settings.search_limit,
    ) -> SearchAnswer:
        try:
            if email is not None and name is None and city is None:
                keys = [parse_email(email)]
            elif name is not None and email is None:
                keys = parse_name_city(name, city)
            else:
                raise BadInput("search by email=…, or by name=… with an optional city=… (not both, not city alone)")
        except BadInput as exc:
            audit.record(token, "search", 400)
            raise Refusal(400, "bad_request", str(exc)) from None
        found: dict[str, dict[str, Any]] = {}
        for key in keys:
            for v in service.views_for_key(key, limit + 1):
                found.setdefault(v["golden_id"], v)
        hits = [search_hit(found[g]) for g in sorted(found)[:limit]]
        audit.record(token, "search", 200, [h.golden_id for h in hits])
        return SearchAnswer(results=hits, truncated=len(found) > limit)

    return app


def app_from_environment() -> FastAPI:
    """The app as ``hub serve`` runs it (uvicorn factory): hub.yaml ``serve``, HUB_API_TOKENS, HUB_DATABASE_URL."""
    settings = load_config().serve
    tokens = TokenRegistry(parse_tokens(os.environ.get(TOKENS_ENV)))
    return create_app(Store(), settings, tokens, AuditLog(settings.audit_log))
