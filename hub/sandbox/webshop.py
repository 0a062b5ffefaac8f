"""A faithful local WooCommerce REST API v3 (``/wp-json/wc/v3``) over stdlib ``http.server``.

Reproduces (see /work/shared/reference/api_shapes.md §1.2): Basic auth with consumer key/secret or
query-string keys; ``page``/``per_page`` (1–100, default 10)/``offset`` paging with ``X-WP-Total``,
``X-WP-TotalPages`` and a ``Link`` header (``rel`` first/prev/next/last); ``modified_after``/``modified_before``
(+``dates_are_gmt``) on orders only; ``orderby``/``order``; WordPress error JSON
``{"code","message","data":{"status"}}``; customers with billing/shipping/meta_data and paired
``date_*``/``date_*_gmt`` naive ISO strings (site timezone Asia/Shanghai, +08:00); ``PUT``/``POST`` updates with
WooCommerce meta_data merge semantics; ``POST /customers``; ``POST /<kind>/batch`` (≤100 objects, else 413).

A page past the end returns ``[]`` with the usual headers (WooCommerce controllers do not reject it the way
the WordPress posts controller does — INFERRED in the reference, chosen here).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from hub.sandbox._http import SandboxHandler, SandboxServer
from hub.sandbox._io import write_json_atomic
from hub.sandbox.faults import FaultController
from hub.sandbox.world_gen import SHOP_TZ_OFFSET, wc_date

API = "/wp-json/wc/v3"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
CUSTOMER_ORDERBY = ("id", "include", "name", "registered_date")
ORDER_ORDERBY = ("date", "id", "include", "title", "slug", "modified")
ORDER_STATUSES = ("any", "pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash")


class WebShopState:
    """In-memory shop data (customers, orders) with JSON persistence and a lock for the server threads."""

    def __init__(self, customers: list[dict], orders: list[dict], consumer_key: str, consumer_secret: str,
                 counters: dict[str, int] | None = None):
        self.lock = threading.RLock()
        self.customers: dict[int, dict] = {c["id"]: c for c in customers}
        self.orders: dict[int, dict] = {o["id"]: o for o in orders}
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.version = 0  # bumped on every write; list results are cached per version
        self.cache_version = 0
        self.list_cache: dict[tuple, list[dict]] = {}
        # updates applied per (kind, id) since start: server-side bookkeeping for tests ("sent once"), not API
        self.updates: Counter[tuple[str, int]] = Counter()
        self.counters = counters or {
            "wc_user": max(self.customers, default=24) + 1,
            "wc_order": max(self.orders, default=699) + 1,
            "wc_meta": 1 + max((m["id"] for c in customers for m in c["meta_data"]), default=12999),
        }

    def next_id(self, key: str) -> int:
        v = self.counters[key]
        self.counters[key] = v + 1
        return v

    def save(self, path: Path) -> None:
        with self.lock:
            write_json_atomic(path, {"consumer_key": self.consumer_key, "consumer_secret": self.consumer_secret,
                                     "counters": self.counters},
                              {"customers": list(self.customers.values()), "orders": list(self.orders.values())})

    @classmethod
    def load(cls, path: Path) -> WebShopState:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(doc["customers"], doc["orders"], doc["consumer_key"], doc["consumer_secret"], doc["counters"])

    def merge_meta(self, meta: list[dict], updates: list[dict]) -> None:
        """WooCommerce semantics: match by meta id, else by key (update first), else add."""
        for u in updates:
            target = None
            if u.get("id") is not None:
                target = next((m for m in meta if m["id"] == u["id"]), None)
            elif "key" in u:
                target = next((m for m in meta if m["key"] == u["key"]), None)
            if target is not None:
                if "key" in u:
                    target["key"] = u["key"]
                if "value" in u:
                    target["value"] = u["value"]
            elif "key" in u:
                meta.append({"id": self.next_id("wc_meta"), "key": u["key"], "value": u.get("value")})

    def touch(self, obj: dict, now: datetime | None = None) -> None:
        """Record a write: bump date_modified(_gmt) and invalidate cached list results."""
        self.version += 1
        now = now or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        obj["date_modified_gmt"] = wc_date(now)
        obj["date_modified"] = wc_date(now + SHOP_TZ_OFFSET)


def _err(code: str, message: str, status: int, **extra: Any) -> dict:
    data: dict[str, Any] = {"status": status}
    data.update(extra)
    return {"code": code, "message": message, "data": data}


def _invalid_param(name: str, message: str, code: str = "rest_invalid_param") -> dict:
    return _err("rest_invalid_param", f"Invalid parameter(s): {name}", 400, params={name: message},
                details={name: {"code": code, "message": message, "data": None}})


class WebShopHandler(SandboxHandler):
    service = "webshop"
    server: SandboxServer

    @property
    def st(self) -> WebShopState:
        return self.server.state

    # ------------------------------------------------------------------ auth
    def _authenticate(self, method: str, what: str) -> dict | None:
        key = secret = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                key = secret = None
        if key is None and "consumer_key" in self.query:
            key, secret = self.query.get("consumer_key"), self.query.get("consumer_secret", "")
        if key is None:
            if method == "GET":
                msg = "Sorry, you cannot list resources." if what == "list" else "Sorry, you cannot view this resource."
                return _err("woocommerce_rest_cannot_view", msg, 401)
            if what == "create":
                return _err("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources.", 401)
            return _err("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource.", 401)
        if key != self.st.consumer_key:
            return _err("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        if secret != self.st.consumer_secret:
            return _err("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401)
        return None

    # ------------------------------------------------------------------ routing
    def route(self, method: str) -> None:
        path = self.route_path.rstrip("/")
        m = re.fullmatch(API + r"/(customers|orders)(?:/(\d+|batch))?", path)
        if m and m[2] == "batch":
            self._route_batch(method, m[1])
            return
        if not m or method not in ("GET", "POST", "PUT", "PATCH", "DELETE") or (
                method in ("PUT", "PATCH", "DELETE") and not m[2]):
            self.send_json(404, _err("rest_no_route", "No route was found matching the URL and request method.", 404))
            return
        kind, oid = m[1], (int(m[2]) if m[2] else None)
        what = "list" if oid is None and method == "GET" else ("create" if oid is None else "item")
        err = self._authenticate(method, what)
        if err:
            self.send_json(401, err)
            return
        with self.st.lock:
            if oid is None and method == "GET":
                self._list(kind)
            elif oid is None:
                self._create(kind)
            elif method == "GET":
                self._get(kind, oid)
            elif method == "DELETE":
                self._delete(kind, oid)
            else:
                self._update(kind, oid)

    def _decorate(self, kind: str, obj: dict) -> dict:
        base = self.base_url() + API
        out = dict(obj)
        out["_links"] = {"self": [{"href": f"{base}/{kind}/{obj['id']}"}], "collection": [{"href": f"{base}/{kind}"}]}
        if kind == "orders" and obj.get("customer_id"):
            out["_links"]["customer"] = [{"href": f"{base}/customers/{obj['customer_id']}"}]
        return out

    def _not_found(self, kind: str) -> None:
        if kind == "customers":
            self.send_json(404, _err("woocommerce_rest_invalid_id", "Invalid resource ID.", 404))
        else:
            self.send_json(404, _err("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404))

    def _get(self, kind: str, oid: int) -> None:
        obj = (self.st.customers if kind == "customers" else self.st.orders).get(oid)
        if obj is None:
            self._not_found(kind)
            return
        self.send_json(200, self._decorate(kind, obj))

    def _delete(self, kind: str, oid: int) -> None:
        """``DELETE /customers/<id>?force=true`` deletes (customers cannot be trashed: 501 without force);
        ``DELETE /orders/<id>`` moves the order to the trash, ``?force=true`` deletes it."""
        rows = self.st.customers if kind == "customers" else self.st.orders
        obj = rows.get(oid)
        if obj is None:
            self._not_found(kind)
            return
        force = self.query.get("force", "").lower() in ("1", "true", "yes")
        if not force:
            if kind == "customers":
                self.send_json(501, _err("woocommerce_rest_trash_not_supported",
                                         "Customers do not support trashing.", 501))
                return
            obj["status"] = "trash"
            self.st.touch(obj)
            self.send_json(200, self._decorate(kind, obj))
            return
        del rows[oid]
        self.st.version += 1
        self.send_json(200, self._decorate(kind, obj))

    # ------------------------------------------------------------------ list + paging
    def _int_param(self, name: str, default: int, lo: int, hi: int | None = None) -> int | dict:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            v = int(raw)
        except ValueError:
            return _invalid_param(name, f"{name} is not of type integer.", "rest_invalid_type")
        if v < lo or (hi is not None and v > hi):
            msg = (f"{name} must be between {lo} (inclusive) and {hi} (inclusive)" if hi is not None
                   else f"{name} must be greater than or equal to {lo}")
            return _invalid_param(name, msg, "rest_out_of_bounds")
        return v

    def _enum_param(self, name: str, default: str, allowed: tuple[str, ...]) -> str | dict:
        v = self.query.get(name, default) or default
        if v not in allowed:
            listed = ", ".join(allowed[:-1]) + ", and " + allowed[-1]
            return _invalid_param(name, f"{name} is not one of {listed}.", "rest_not_in_enum")
        return v

    def _date_param(self, name: str, gmt: bool) -> tuple[str | None, dict | None]:
        """Returns the comparison key (naive ISO, in the site or GMT clock) for a date filter."""
        raw = self.query.get(name)
        if not raw:
            return None, None
        if not _DATE_RE.match(raw):
            return None, _invalid_param(name, "Invalid date.", "rest_invalid_date")
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if dt.tzinfo is not None:
            return wc_date(dt.astimezone(UTC).replace(tzinfo=None)), None
        return wc_date(dt if gmt else dt - SHOP_TZ_OFFSET), None

    def _list(self, kind: str) -> None:
        per_page = self._int_param("per_page", 10, 1, 100)
        page = self._int_param("page", 1, 1)
        offset = self._int_param("offset", -1, 0)
        order = self._enum_param("order", "asc" if kind == "customers" else "desc", ("asc", "desc"))
        orderby = self._enum_param("orderby", "name" if kind == "customers" else "date",
                                   CUSTOMER_ORDERBY if kind == "customers" else ORDER_ORDERBY)
        for v in (per_page, page, offset, order, orderby):
            if isinstance(v, dict):
                self.send_json(400, v)
                return
        assert isinstance(per_page, int) and isinstance(page, int) and isinstance(offset, int)
        include = [int(x) for x in self.query.get("include", "").split(",") if x.strip().isdigit()]
        exclude = {int(x) for x in self.query.get("exclude", "").split(",") if x.strip().isdigit()}
        search = self.query.get("search", "").lower()
        # sorted+filtered id lists are cached per query until the next write: paging 100k orders stays O(page)
        ckey = (kind, tuple(sorted((k, v) for k, v in self.query.items()
                                   if k not in ("page", "offset", "per_page", "consumer_key", "consumer_secret"))))
        if self.st.cache_version != self.st.version:
            self.st.list_cache.clear()
            self.st.cache_version = self.st.version
        rows = self.st.list_cache.get(ckey)
        if rows is None:
            rows = self._sorted_rows(kind, orderby, order, include, exclude, search)
            if rows is None:
                return
            self.st.list_cache[ckey] = rows
        total = len(rows)
        pages = (total + per_page - 1) // per_page
        start = offset if offset >= 0 else (page - 1) * per_page
        chunk = rows[start:start + per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        link = self._link_header(kind, page, pages)
        if link:
            headers["Link"] = link
        fields = [f.strip() for f in self.query.get("_fields", "").split(",") if f.strip()]
        body = [self._decorate(kind, r) for r in chunk]
        if fields:  # WordPress's global _fields parameter: only these top-level keys (id-only sweeps)
            body = [{k: v for k, v in r.items() if k in fields} for r in body]
        self.send_json(200, body, headers)

    def _sorted_rows(self, kind: str, orderby: str, order: str, include: list[int], exclude: set[int],
                     search: str) -> list[dict] | None:
        rows: list[dict] | None
        if kind == "customers":
            rows = self._filter_customers(search)
            key = {"id": lambda c: c["id"], "registered_date": lambda c: (c["date_created_gmt"], c["id"]),
                   "name": lambda c: (f"{c['first_name']} {c['last_name']}".strip() or c["username"], c["id"]),
                   "include": lambda c: (include.index(c["id"]) if c["id"] in include else 0, c["id"])}[orderby]
        else:
            rows = self._filter_orders(search)
            if rows is None:
                return
            key = {"date": lambda o: (o["date_created_gmt"], o["id"]), "id": lambda o: o["id"],
                   "modified": lambda o: (o["date_modified_gmt"], o["id"]),
                   "title": lambda o: (o["id"],), "slug": lambda o: (o["id"],),
                   "include": lambda o: (include.index(o["id"]) if o["id"] in include else 0, o["id"])}[orderby]
        if include:
            rows = [r for r in rows if r["id"] in include]
        rows = [r for r in rows if r["id"] not in exclude]
        rows.sort(key=key, reverse=(order == "desc"))
        return rows

    def _link_header(self, kind: str, page: int, pages: int) -> str:
        # secrets are never echoed back into links
        q = {k: v for k, v in self.query.items() if k not in ("page", "consumer_key", "consumer_secret")}
        base = f"{self.base_url()}{API}/{kind}"

        def url(p: int) -> str:
            return f"{base}?{urlencode({**q, 'page': p})}"

        links = []
        if pages == 0:
            return ""
        if page > 1:
            links.append(f'<{url(1)}>; rel="first"')
            links.append(f'<{url(min(page - 1, pages))}>; rel="prev"')
        if page < pages:
            links.append(f'<{url(page + 1)}>; rel="next"')
            links.append(f'<{url(pages)}>; rel="last"')
        return ", ".join(links)

    def _filter_customers(self, search: str) -> list[dict]:
        role = self.query.get("role", "customer")
        email = self.query.get("email", "").lower()
        rows = list(self.st.customers.values())
        if role not in ("all", "customer"):
            rows = []
        if email:
            rows = [c for c in rows if c["email"].lower() == email]
        if search:
            rows = [c for c in rows if search in c["email"].lower() or search in c["username"].lower()
                    or search in f"{c['first_name']} {c['last_name']}".lower()]
        return rows

    def _filter_orders(self, search: str) -> list[dict] | None:
        gmt = self.query.get("dates_are_gmt", "").lower() in ("1", "true", "yes")
        bounds = {}
        for name in ("after", "before", "modified_after", "modified_before"):
            val, err = self._date_param(name, gmt)
            if err:
                self.send_json(400, err)
                return None
            bounds[name] = val
        statuses = [s.strip() for s in self.query.get("status", "any").split(",") if s.strip()] or ["any"]
        for s in statuses:
            if s not in ORDER_STATUSES:
                self.send_json(400, _invalid_param("status", f"status[0] is not one of {', '.join(ORDER_STATUSES)}."))
                return None
        customer = self.query.get("customer")
        rows = list(self.st.orders.values())
        if "any" not in statuses:
            rows = [o for o in rows if o["status"] in statuses]
        if customer not in (None, ""):
            if not customer.isdigit():
                self.send_json(400, _invalid_param("customer", "customer is not of type integer.", "rest_invalid_type"))
                return None
            rows = [o for o in rows if o["customer_id"] == int(customer)]
        if bounds["after"]:
            rows = [o for o in rows if o["date_created_gmt"] > bounds["after"]]
        if bounds["before"]:
            rows = [o for o in rows if o["date_created_gmt"] < bounds["before"]]
        if bounds["modified_after"]:
            rows = [o for o in rows if o["date_modified_gmt"] > bounds["modified_after"]]
        if bounds["modified_before"]:
            rows = [o for o in rows if o["date_modified_gmt"] < bounds["modified_before"]]
        if search:
            rows = [o for o in rows if search in json.dumps(o["billing"], ensure_ascii=False).lower()
                    or search == o["number"]]
        return rows

    # ------------------------------------------------------------------ writes
    def _apply(self, kind: str, obj: dict, body: dict) -> dict | None:
        st = self.st
        if kind == "customers":
            if "email" in body:
                email = str(body["email"]).strip().lower()
                if not _EMAIL_RE.match(email):
                    return _invalid_param("email", "Invalid email address.", "rest_invalid_email")
                if any(c["email"] == email and c["id"] != obj.get("id") for c in st.customers.values()):
                    return _err("registration-error-email-exists",
                                "An account is already registered with your email address.", 400)
                obj["email"] = email
            for f in ("first_name", "last_name"):
                if f in body:
                    obj[f] = str(body[f])
        elif "status" in body:
            if body["status"] not in ORDER_STATUSES[1:]:
                return _invalid_param("status", "status is not one of " + ", ".join(ORDER_STATUSES[1:]) + ".",
                                      "rest_not_in_enum")
            obj["status"] = body["status"]
        for block in ("billing", "shipping"):
            if isinstance(body.get(block), dict):
                obj[block].update({k: ("" if v is None else v) for k, v in body[block].items()})
        if isinstance(body.get("meta_data"), list):
            st.merge_meta(obj["meta_data"], [m for m in body["meta_data"] if isinstance(m, dict)])
        st.touch(obj)
        return None

    def _read_body(self) -> dict | None:
        try:
            body = self.json_body() or {}
        except (ValueError, UnicodeDecodeError):
            self.send_json(400, _err("rest_invalid_json", "Invalid JSON body passed.", 400))
            return None
        if not isinstance(body, dict):
            self.send_json(400, _err("rest_invalid_json", "Invalid JSON body passed.", 400))
            return None
        return body

    def _update(self, kind: str, oid: int) -> None:
        body = self._read_body()
        if body is not None:
            status, out = self._do_update(kind, oid, body)
            self.send_json(status, out)

    def _create(self, kind: str) -> None:
        body = self._read_body()
        if body is None:
            return
        status, out = self._do_create(kind, body)
        headers = {"Location": f"{self.base_url()}{API}/customers/{out['id']}"} if status == 201 else None
        self.send_json(status, out, headers)

    def _do_update(self, kind: str, oid: object, body: dict) -> tuple[int, dict]:
        # WooCommerce reads the id as (int) $request['id']: "123" and 123 are the same record
        key = int(oid) if isinstance(oid, int | str) and str(oid).strip().isdigit() else None
        obj = (self.st.customers if kind == "customers" else self.st.orders).get(key)  # type: ignore[arg-type]
        if obj is None:
            return 404, (_err("woocommerce_rest_invalid_id", "Invalid resource ID.", 404) if kind == "customers"
                         else _err("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404))
        err = self._apply(kind, obj, body)
        if err:
            return err["data"]["status"], err
        self.st.updates[(kind, obj["id"])] += 1
        return 200, self._decorate(kind, obj)

    def _do_create(self, kind: str, body: dict) -> tuple[int, dict]:
        if kind != "customers":  # orders are created by checkout in this sandbox, not over the API
            return 404, _err("rest_no_route", "No route was found matching the URL and request method.", 404)
        if not body.get("email"):
            return 400, _err("rest_missing_callback_param", "Missing parameter(s): email", 400, params=["email"])
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        blank = {k: "" for k in ("first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                                 "postcode", "country")}
        obj = {"id": None, "date_created": wc_date(now + SHOP_TZ_OFFSET), "date_created_gmt": wc_date(now),
               "date_modified": None, "date_modified_gmt": None, "email": "", "first_name": "", "last_name": "",
               "role": "customer", "username": str(body.get("username") or str(body["email"]).partition("@")[0]),
               "billing": {**blank, "email": "", "phone": ""}, "shipping": dict(blank),
               "is_paying_customer": False, "avatar_url": "", "meta_data": []}
        err = self._apply(kind, obj, body)
        if err:
            return err["data"]["status"], err
        obj["id"] = self.st.next_id("wc_user")
        self.st.customers[obj["id"]] = obj
        return 201, self._decorate(kind, obj)

    def _route_batch(self, method: str, kind: str) -> None:
        """``POST|PUT|PATCH /<kind>/batch`` with ``create``/``update``/``delete`` arrays, ≤100 objects in all."""
        if method not in ("POST", "PUT", "PATCH"):
            self.send_json(404, _err("rest_no_route", "No route was found matching the URL and request method.", 404))
            return
        err = self._authenticate(method, "item")
        if err:
            self.send_json(401, err)
            return
        body = self._read_body()
        if body is None:
            return
        ops = {k: body.get(k) or [] for k in ("create", "update", "delete")}
        if sum(len(v) for v in ops.values() if isinstance(v, list)) > 100:
            self.send_json(413, _err("woocommerce_rest_request_entity_too_large",
                                     "Unable to accept more than 100 items for this request.", 413))
            return
        out: dict[str, list] = {}
        with self.st.lock:
            for item in ops["create"]:
                status, res = self._do_create(kind, item if isinstance(item, dict) else {})
                out.setdefault("create", []).append(res if status < 300 else {"id": 0, "error": res})
            for item in ops["update"]:
                item = item if isinstance(item, dict) else {}
                status, res = self._do_update(kind, item.get("id"), item)
                out.setdefault("update", []).append(res if status < 300 else {"id": item.get("id"), "error": res})
            for oid in ops["delete"]:
                store = self.st.customers if kind == "customers" else self.st.orders
                obj = store.pop(oid, None) if isinstance(oid, int) else None
                if obj is None:
                    out.setdefault("delete", []).append({"id": oid, "error": _err(
                        "woocommerce_rest_invalid_id", "Invalid resource ID.", 404)})
                else:
                    self.st.version += 1
                    out.setdefault("delete", []).append(self._decorate(kind, obj))
        self.send_json(200, out)


def serve_webshop(state: WebShopState, faults: FaultController, port: int = 0) -> SandboxServer:
    """Start the WooCommerce server on 127.0.0.1 (free port by default) in a daemon thread."""
    return SandboxServer(WebShopHandler, state, faults, port=port).start()
