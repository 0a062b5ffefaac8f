"""WooCommerce REST v3 connector (``/wp-json/wc/v3``).

Pull:
- ``customers``: the API has no modified-date filter for customers, so every run is a full sweep in id order
  (``page``/``per_page``, ``X-WP-TotalPages``); the payload hash decides what changed. The cursor holds the
  next page, so a killed sweep resumes where it stopped. A sweep read from its first page to its last is also
  the id sweep that finds deleted customers (``pull_sweeps``); a resumed one is followed by ``present_ids``.
- ``orders``: incremental with ``modified_after`` (GMT) = last watermark minus an overlap window, paged in id
  order (stable while we page: a modified order keeps its place). The watermark is the newest
  ``date_modified_gmt`` seen.

Push: golden id, segment, value tier and consent per channel as customer ``meta_data`` (``hub_golden_id``,
``hub_segment``, ``hub_value_tier``, ``hub_consent_email`` = yes / no / "" ...); a withdrawal clears them, an
erasure deletes the customer, up to 100 customers a request with ``POST /customers/batch`` (per-item errors in the
answer). Echo suppression: the hash view drops ``hub_*`` meta and the
``date_modified*`` stamps our own PUT bumps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from hub.connectors.base import (
    ConnectorError,
    Page,
    PushOutcome,
    chunked,
    fetch_json,
    held_value,
    iter_page_number,
    landing_record,
    make_session,
    overlap_start,
    removal,
)
from hub.consent import CONSENT_FIELDS
from hub.privacy.tombstones import SourceIds
from hub.store import LandingRecord, OutboxItem

API = "/wp-json/wc/v3"
HUB_META_PREFIX = "hub_"
# stamps our own PUT changes: kept in the stored payload, not part of the change hash
_VOLATILE = ("date_modified", "date_modified_gmt")
_PUSH_FIELDS = (("hub_golden_id", "golden_id"), ("hub_segment", "segment"), ("hub_value_tier", "value_tier"),
                *((f"hub_{f}", f) for f in CONSENT_FIELDS))
BATCH_LIMIT = 100  # objects per POST /customers/batch (woocommerce_rest_batch_items_limit)


_FIELD_OF_KEY = dict(_PUSH_FIELDS)


def customer_hub_state(customer: dict) -> dict:
    """The hub's fields as a customer carries them in its meta_data (several entries of one key: a list). One
    pass over the entries: a pass per field (eight) was a fifth of an unchanged shop pull's CPU."""
    held: dict[str, list[Any]] = {}
    for m in customer.get("meta_data") or ():
        key = m.get("key")
        field = _FIELD_OF_KEY.get(key) if type(key) is str else None
        if field is not None:
            held.setdefault(field, []).append(m.get("value"))
    return {field: held_value(held[field]) if field in held else None for _, field in _PUSH_FIELDS}


def customer_hash_view(payload: dict) -> dict:
    view = {k: v for k, v in payload.items() if k not in _VOLATILE}
    view["meta_data"] = [m for m in payload.get("meta_data") or []
                         if not str(m.get("key", "")).startswith(HUB_META_PREFIX)]
    return view


class WooCommerceConnector:
    entities: tuple[str, ...] = ("customers", "orders")
    push_batch_size = BATCH_LIMIT  # outbox rows handed to one push() call: one batch request

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        per_page: int = 100,
        *,
        system: str = "webshop",
        requests_per_second: float | None = None,
        overlap_seconds: float = 3 * 3600,
        timeout: tuple[float, float] = (5.0, 30.0),
        session: requests.Session | None = None,
        body_retry_wait: float = 0.5,
    ) -> None:
        if not 1 <= per_page <= 100:
            raise ValueError("per_page must be 1..100 (WordPress limit)")
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + API
        self.per_page = per_page
        self.system = system
        # orders are re-read this far behind the watermark: orders saved late with an older date_modified (and
        # the sandbox, which back-dates new orders by up to 2 h) are not missed; re-reads land as unchanged
        self.overlap = timedelta(seconds=overlap_seconds)
        self.body_retry_wait = body_retry_wait
        # ``session`` (tests, shared pools) replaces the built one, with its own retry/timeout/auth/rate limit
        self.session = session or make_session(
            rate_limit=requests_per_second, timeout=timeout,
            auth=requests.auth.HTTPBasicAuth(consumer_key, consumer_secret),
        )

    def close(self) -> None:
        self.session.close()

    def _get_page(self, path: str, params: dict[str, Any]) -> tuple[list[dict], Mapping[str, str]]:
        body, resp = fetch_json(self.session, "GET", self.api + path, params=params,
                                wait_initial=self.body_retry_wait, source=self.system)
        if not isinstance(body, list):
            raise ConnectorError(f"expected a JSON list from {path}")
        total = resp.headers.get("X-WP-Total", "")
        self.announced = int(total) if total.isdigit() else None  # the progress bar's end
        return [_clean(o) for o in body], resp.headers

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        if entity == "customers":
            yield from self._customers(cursor)
        elif entity == "orders":
            yield from self._orders(cursor)
        else:
            raise ValueError(f"unknown entity {entity!r}")

    def _customers(self, cursor: dict | None) -> Iterator[Page]:
        start = 1 if not cursor or cursor.get("complete") else int(cursor.get("page", 1))
        params = {"per_page": self.per_page, "orderby": "id", "order": "asc"}
        for page, items, is_last in iter_page_number(
            lambda p: self._get_page("/customers", {**params, "page": p}),
            start_page=start,
        ):
            records = [landing_record(c["id"], c, customer_hash_view(c), customer_hub_state(c)) for c in items]
            yield Page(records, {"complete": True} if is_last else {"page": page + 1},
                       total=getattr(self, "announced", None))

    def _orders(self, cursor: dict | None) -> Iterator[Page]:
        cur = dict(cursor or {})
        if not cur or cur.get("complete"):
            wm = cur.get("watermark")
            since = overlap_start(wm, self.overlap)
            cur = {"since": since, "page": 1, "high": wm,
                   "started": datetime.now(UTC).replace(tzinfo=None, microsecond=0).isoformat()}
        params: dict[str, Any] = {"per_page": self.per_page, "orderby": "id", "order": "asc", "status": "any",
                                  "dates_are_gmt": "true"}
        if cur.get("since"):
            params["modified_after"] = cur["since"]
        for page, items, is_last in iter_page_number(
            lambda p: self._get_page("/orders", {**params, "page": p}),
            start_page=int(cur.get("page", 1)),
        ):
            records: list[LandingRecord] = [landing_record(o["id"], o) for o in items]
            stamps = [o.get("date_modified_gmt") or o.get("date_created_gmt") for o in items]
            cur["high"] = max(filter(None, [cur.get("high"), *stamps]), default=None)
            cur["page"] = page + 1
            if is_last:
                # never move the watermark past the moment the run started: an order stamped in the future
                # would otherwise hide every real change until then
                wm = min(filter(None, [cur["high"], cur.get("started")]), default=None)
                yield Page(records, {"complete": True, "watermark": wm})
            else:
                yield Page(records, dict(cur))

    # -- id-only sweep ----------------------------------------------------------------------------------------

    def pull_sweeps(self, entity: str) -> bool:
        """The customer pull reads every customer each run (no modified-date filter): a pull that went from
        the first page to the last saw the ids ``present_ids`` would list, and ``run_sweep`` takes them from it
        (the id-only sweep is as many requests again: 5,500 at 550k customers, ~4.6 min at 20 requests/s)."""
        return entity == "customers"

    def present_ids(self, entity: str) -> SourceIds | None:
        """Customer ids the shop holds now (``_fields=id``: 100 ids a request, no payloads); a deleted
        customer is missing. Orders are not swept: the shop trashes them (a status the order pull sees)."""
        if entity != "customers":
            return None
        params = {"per_page": self.per_page, "orderby": "id", "order": "asc", "_fields": "id"}
        ids: list[Any] = []
        for _, items, _ in iter_page_number(lambda p: self._get_page("/customers", {**params, "page": p})):
            ids += [c["id"] for c in items]
        return SourceIds.of(ids)

    # -- push -------------------------------------------------------------------------------------------------

    def held_view(self, item: OutboxItem) -> dict:
        """The hub meta a customer carries once ``item`` is applied (None: an erasure deletes the customer)."""
        if removal(item.payload) == "erase":
            return None
        return customer_hub_state({"meta_data": hub_meta(item)})

    def held(self, items: list[OutboxItem]) -> dict[int, dict | None]:
        """The hub meta each row's customer carries now (``GET /customers?include=…``); None = no such
        customer."""
        ids = sorted({int(it.target_id) for it in items if str(it.target_id).isdigit()})
        found: dict[str, dict] = {}
        for chunk in chunked(ids, BATCH_LIMIT):
            customers, _ = self._get_page("/customers", {"include": ",".join(map(str, chunk)),
                                                         "per_page": BATCH_LIMIT})
            found.update({str(c["id"]): customer_hub_state(c) for c in customers})
        return {it.id: found.get(str(it.target_id)) for it in items}

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
        """Hub meta onto customers with ``POST /customers/batch`` (<= 100 updates a request); the shop answers
        each item on its own, so one bad row fails alone."""
        outcomes: dict[int, PushOutcome] = {}
        valid, erase = [], []
        for item in items:
            if not str(item.target_id).isdigit():
                outcomes[item.id] = PushOutcome(item.id, "rejected", "target_id is not a customer id")
            elif removal(item.payload) == "erase":
                erase.append(item)
            else:
                valid.append(item)
        self._delete(erase, outcomes)
        for chunk in chunked(valid, BATCH_LIMIT):
            body = {"update": [{"id": int(it.target_id), "meta_data": hub_meta(it)} for it in chunk]}
            try:
                # setting meta by key is idempotent, so a garbled answer may be retried (fetch_json does)
                answer, _ = fetch_json(self.session, "POST", f"{self.api}/customers/batch", json=body,
                                       wait_initial=self.body_retry_wait, source=self.system)
            except requests.HTTPError as exc:  # the whole request refused (auth, size)
                for it in chunk:
                    outcomes[it.id] = _rejection(it.id, exc.response)
                continue
            except (requests.RequestException, ConnectorError) as exc:  # down / 5xx after retries: next run
                for it in chunk:
                    outcomes[it.id] = PushOutcome(it.id, "error", type(exc).__name__)
                continue
            results = (answer or {}).get("update") if isinstance(answer, dict) else None
            for it, result in zip(chunk, results or [], strict=False):
                outcomes[it.id] = _item_outcome(it.id, result)
            for it in chunk[len(results or []):]:
                outcomes[it.id] = PushOutcome(it.id, "error", "batch answer without this item")
        return [outcomes[item.id] for item in items]


    def _delete(self, items: list[OutboxItem], outcomes: dict[int, PushOutcome]) -> None:
        """``hub erase``: delete the customers (``POST /customers/batch`` ``delete``, which WooCommerce runs with
        force=true: customers cannot be trashed). Their orders stay with the shop, as WooCommerce keeps them."""
        for chunk in chunked(items, BATCH_LIMIT):
            try:
                answer, _ = fetch_json(self.session, "POST", f"{self.api}/customers/batch",
                                       json={"delete": [int(it.target_id) for it in chunk]},
                                       wait_initial=self.body_retry_wait, source=self.system)
            except requests.HTTPError as exc:
                for it in chunk:
                    outcomes[it.id] = _rejection(it.id, exc.response)
                continue
            except (requests.RequestException, ConnectorError) as exc:
                for it in chunk:
                    outcomes[it.id] = PushOutcome(it.id, "error", type(exc).__name__)
                continue
            results = (answer or {}).get("delete") if isinstance(answer, dict) else None
            for it, result in zip(chunk, results or [], strict=False):
                outcome = _item_outcome(it.id, result)
                # already gone is what an erasure wants
                outcomes[it.id] = (PushOutcome(it.id, "ok", "customer already deleted")
                                   if outcome.reason == "customer not found" else outcome)
            for it in chunk[len(results or []):]:
                outcomes[it.id] = PushOutcome(it.id, "error", "batch answer without this item")


def hub_meta(item: OutboxItem) -> list[dict[str, Any]]:
    """The customer meta_data entries that carry the hub's fields ("" clears a value; a withdrawal clears
    them all)."""
    if removal(item.payload):
        return [{"key": key, "value": ""} for key, _ in _PUSH_FIELDS]
    payload = {**(item.payload or {}), "golden_id": item.golden_id or (item.payload or {}).get("golden_id")}
    return [{"key": key, "value": payload.get(field) or ""} for key, field in _PUSH_FIELDS]


def _item_outcome(outbox_id: int, result: Any) -> PushOutcome:
    """One entry of a batch answer: the updated customer, or ``{"id", "error": {code, message, data}}``."""
    if not isinstance(result, dict):
        return PushOutcome(outbox_id, "error", "batch answer item is not an object")
    error = result.get("error")
    if not error:
        return PushOutcome(outbox_id, "ok")
    code = str(error.get("code") or "") if isinstance(error, dict) else ""
    data = error.get("data") if isinstance(error, dict) else None
    status = data.get("status", 0) if isinstance(data, dict) else 0
    return _refusal(outbox_id, int(status or 0), code)


def _rejection(outbox_id: int, resp: requests.Response | None) -> PushOutcome:
    """4xx for a whole request: the shop refused it. Auth problems are ours to fix, so they stay 'error'."""
    status = resp.status_code if resp is not None else 0
    try:
        code = resp.json().get("code", "") if resp is not None else ""
    except ValueError:
        code = ""
    return _refusal(outbox_id, status, str(code))


def _refusal(outbox_id: int, status: int, code: str) -> PushOutcome:
    if status in (401, 403):
        return PushOutcome(outbox_id, "error", f"HTTP {status} {code}".strip())
    # a customer update answers woocommerce_rest_invalid_id with 400 (batch) or 404 (single item)
    if status == 404 or code == "woocommerce_rest_invalid_id":
        return PushOutcome(outbox_id, "rejected", "customer not found")
    if status >= 500 or status == 429:
        return PushOutcome(outbox_id, "error", f"HTTP {status} {code}".strip())
    return PushOutcome(outbox_id, "rejected", f"HTTP {status} {code}".strip())


def _clean(obj: dict) -> dict:
    """The record as the shop holds it: ``_links`` carry our own request's host/port, not source data."""
    return {k: v for k, v in obj.items() if k != "_links"}
