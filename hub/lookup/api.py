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


import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.config import ServeConfig, load_config
from hub.golden import resolve
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


@dataclass
class LookupService:
    """Reads the lookup index and the 360 view; one per app."""

    store: Store
    settings: ServeConfig

    def holders(self, key: str, cap: int = MAX_HOLDERS) -> list[str]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(
                sa.select(lookup_key.c.golden_id).where(lookup_key.c.key_hash == key_hash(key))
                .order_by(lookup_key.c.golden_id).limit(cap)
            ).scalars())

    def views(self, golden_ids: Sequence[str]) -> list[dict[str, Any]]:
        if not golden_ids:
            return []
        with self.store.engine.connect() as conn:
            rows = dict(conn.execute(
                sa.select(customer_360.c.golden_id, customer_360.c.record)
                .where(customer_360.c.golden_id.in_(list(golden_ids)))
            ).all())
        return [rows[g] for g in golden_ids if g in rows]  # a 360 row deleted since indexing is gone

    def survivor(self, golden_id: str) -> str | None:
        try:
            return resolve(self.store, golden_id)
        except KeyError:
            return None


Endpoint = Literal["callers", "customers", "search"]


def create_app(store: Store, settings: ServeConfig, tokens: TokenRegistry, audit: AuditLog) -> FastAPI:
    """The API on one store. ``tokens`` must name at least one token: the API is never open."""
    if not tokens.names:
        raise ValueError(f"no API tokens: set {TOKENS_ENV} (name:token,…)")
    service = LookupService(store, settings)
    limiter = RateLimiter(settings.rate_limit, settings.token_rate_limits)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202
        yield
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
        def dependency(request: Request) -> str:
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

    @app.exception_handler(sa.exc.OperationalError)
    async def _store_down(_request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.error("caller lookup: store unavailable (%s)", type(exc.orig).__name__)
        return _error(503, "store_unavailable", "the hub store cannot be reached; try again shortly")

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # the type only: exception texts may hold values from the store
        log.error("caller lookup: unexpected %s", type(exc).__name__)
        return _error(500, "internal_error", "the lookup failed on the server; it has been logged")

    @app.get("/healthz", summary="liveness and store reachability", responses={503: {"model": ApiError}})
    def healthz() -> dict[str, str]:
        with store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
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
    def caller(
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
        views = [v for v in service.views(service.holders(query.key)) if holds_phone(v, query.e164)]
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
    def customer(golden_id: str, token: Annotated[str, Depends(authorize("customers"))]) -> Response:
        try:
            gid = parse_golden_id(golden_id)
        except BadInput as exc:
            audit.record(token, "customers", 400)
            raise Refusal(400, "bad_request", str(exc)) from None
        views = service.views([gid])
        if not views:
            survivor = service.survivor(gid)
            views = service.views([survivor]) if survivor and survivor != gid else []
        if not views:
            audit.record(token, "customers", 404)
            raise Refusal(404, "not_found", "no active golden customer has this id")
        view = dict(views[0])
        if view["golden_id"] != gid:
            view["requested_id"] = gid
        audit.record(token, "customers", 200, [view["golden_id"]])
        return JSONResponse(view)

    @app.get("/v1/search", summary="find golden customers by e-mail, or by name (+ city)",
             response_model=SearchAnswer, responses=errors)
    def search(
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
        gids: list[str] = []
        for key in keys:
            gids.extend(g for g in service.holders(key, limit + 1) if g not in gids)
        gids.sort()
        hits = [search_hit(v) for v in service.views(gids[:limit])]
        audit.record(token, "search", 200, [h.golden_id for h in hits])
        return SearchAnswer(results=hits, truncated=len(gids) > limit)

    return app


def app_from_environment() -> FastAPI:
    """The app as ``hub serve`` runs it (uvicorn factory): hub.yaml ``serve``, HUB_API_TOKENS, HUB_DATABASE_URL."""
    settings = load_config().serve
    tokens = TokenRegistry(parse_tokens(os.environ.get(TOKENS_ENV)))
    return create_app(Store(), settings, tokens, AuditLog(settings.audit_log))
