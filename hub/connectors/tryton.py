"""Tryton ERP connector over JSON-RPC (trytond 8.x).

Pull: ``customers`` (party.party with addresses, contact mechanisms, identifiers and categories embedded;
the ERP's own company party and its employees' parties left out: they are not customers),
``orders`` (sale.sale with lines) and ``shipments`` (stock.shipment.out with its outgoing moves).

Push: the hub's golden id as a ``party.identifier`` and segment / value tier / consent as ``party.category``
rows; optionally a new party for a golden customer the ERP does not know yet. A withdrawal takes the hub's
identifier and categories off; an erasure then deletes the party, or deactivates and anonymises it when
documents point at it (``erase_party``).

Incremental reads, and why they look the way they do (measured facts in shared/reference/tryton.md):

* ``write_date`` is NULL on rows never written after creation, so the change window is
  ``write_date >= lb OR create_date >= lb``.
* A child change (address, contact mechanism, identifier, sale line, stock move) does NOT touch the parent's
  ``write_date``; the window therefore also ORs the children's dates over x2many paths
  (``addresses.write_date >= lb`` ...), which Tryton evaluates server side.
* Every row of one transaction carries the transaction *start* time, so a long transaction can commit rows
  older than what we already read: the next sweep starts an ``overlap`` before the high-water mark.

Because a party's effective change time is the max over it and its children (not a sortable column), one
sweep pages by keyset on ``id`` inside a fixed window ``[lb, ∞)``. The high-water mark for the next sweep
is taken *before* the sweep starts (max write/create date over the parent and child tables), so a change
made while the sweep runs is never skipped. The cursor saved after every page is
``{"lb": ..., "hw": ..., "last_id": ...}``: a crash resumes the sweep after ``last_id``;
``last_id`` None means the sweep finished and the next one starts at ``hw - overlap``.

Echo suppression: the hub's own writes (an identifier with code ``hub_golden_id:<golden id>`` and the
``hub:*`` categories) and Tryton's bookkeeping dates are left out of ``payload_hash``, so a push followed by
a pull lands as *unchanged*. And the hub's own writes are not even read again: writing categories moves the
party's ``write_date``, creating an identifier gives it a ``create_date``, so without more every push would
make the next pull re-read every party it wrote. All rows of one Tryton call carry that call's transaction
timestamp, so the push reads back the timestamps its calls produced (``OwnWrites``) and keeps them in the
customers cursor (``record_own_writes``); the next window leaves out rows whose date is one of those
timestamps. A party someone else changed shortly before the hub wrote it (its change may not have been
pulled yet: the hub's write hides its date) is named in the cursor and read again. Custom identifier *types* are not possible: ``party.identifier.type`` is a
selection limited to python-stdnum types, hence the untyped identifier with a recognisable code prefix.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import itertools
import json
import logging
import os
import zlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import requests
import urllib3

from hub.connectors.base import (
    ConnectorError,
    Page,
    PushOutcome,
    SourceAuthError,
    held_value,
    host_of,
    landing_record,
    make_session,
    removal,
    retryable_status,
    send_with_retries,
)
from hub.consent import CONSENT_FIELDS
from hub.privacy.tombstones import SourceIds
from hub.store import OutboxItem

log = logging.getLogger(__name__)

GOLDEN_ID_PREFIX = "hub_golden_id:"
HUB_CATEGORY_PREFIX = "hub:"
ERASED_NAME = "(erased)"
# party.address fields that hold the person (cleared on erasure; which exist depends on the Tryton version)
_ADDRESS_PERSONAL = ("party_name", "attn", "street", "street_unstructured", "street_name", "building_name",
                     "building_number", "unit_number", "floor_number", "room_number", "post_box", "private_bag",
                     "post_office", "postal_code", "city")
NEW_PARTY_PREFIX = "new:"  # outbox target_id for "create this party" (besides the empty target_id)
# Tryton bookkeeping that changes without a business change (a push touches the party's write_date).
_VOLATILE = frozenset({"write_date", "create_date", "write_uid", "create_uid"})


# --------------------------------------------------------------------------------------------------------------
# Errors


class TrytonError(ConnectorError):
    """An error Tryton reported in a JSON-RPC body. ``kind`` is 'UserError', 'UserWarning' or 'error'.

    ``message`` may quote record names (personal data): keep it out of logs; it is fine for outbox reasons.
    """

    def __init__(self, method: str, kind: str, message: str) -> None:
        super().__init__(f"{method}: {kind}")  # message deliberately not in str(): may hold PII
        self.method = method
        self.kind = kind
        self.message = message

    @property
    def is_user_error(self) -> bool:
        return self.kind in ("UserError", "UserWarning")


class TrytonAuthError(SourceAuthError):
    """Login refused (wrong credentials, or the server's login throttle answered 429)."""


class _SessionExpired(Exception):
    pass


class _LoginThrottled(Exception):
    pass


class _NoDatabase(Exception):
    pass


# --------------------------------------------------------------------------------------------------------------
# Wire format


def _decode_hook(obj: dict) -> Any:
    """Tryton's JSON-RPC encodes non-JSON types as {"__class__": ...} objects."""
    cls = obj.get("__class__")
    if cls is None:
        return obj
    if cls == "datetime":
        return dt.datetime(obj["year"], obj["month"], obj["day"], obj.get("hour", 0), obj.get("minute", 0),
                           obj.get("second", 0), obj.get("microsecond", 0))
    if cls == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if cls == "time":
        return dt.time(obj.get("hour", 0), obj.get("minute", 0), obj.get("second", 0), obj.get("microsecond", 0))
    if cls == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    if cls == "Decimal":
        return Decimal(obj["decimal"])
    if cls == "bytes":
        return base64.b64decode(obj["base64"])
    return obj


def encode_value(value: Any) -> Any:
    """Python values -> Tryton JSON-RPC values (the inverse of ``_decode_hook``)."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"__class__": "datetime", "year": value.year, "month": value.month, "day": value.day,
                "hour": value.hour, "minute": value.minute, "second": value.second,
                "microsecond": value.microsecond}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_body(resp: requests.Response) -> Any:
    """Decode a JSON-RPC body read with ``stream=True``, tolerating trytond's gzip quirk.

    trytond labels bodies over ~1,400 chars ``Content-Encoding: gzip`` even when it did not compress them
    (when the client did not ask for gzip). We always ask for gzip, and decode the raw bytes ourselves so a
    mislabelled plain body is still read instead of failing with ContentDecodingError.
    """
    try:
        raw = resp.raw.read(decode_content=False)
    finally:
        resp.close()  # hands the connection back to the pool (stream=True bodies are read by hand)
    if "gzip" in resp.headers.get("Content-Encoding", "").lower():
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            pass  # labelled gzip but sent plain: the quirk
    return json.loads(raw, object_hook=_decode_hook)


# --------------------------------------------------------------------------------------------------------------
# JSON-RPC client


class TrytonRpc:
    """JSON-RPC session against one trytond database: login, session re-login on expiry, typed errors.

    Reads go through the hub's one retry layer (``send_with_retries``: transport/body trouble, 429/5xx, a
    bounded time); writes are sent once (a retried ``create`` could duplicate) — the outbox retries them next
    run. The login is retried only when nothing answered or the server failed, never when it said no (the
    server throttles failed logins).
    """

    def __init__(self, url: str, database: str, username: str, password: str, *,
                 session: requests.Session | None = None, timeout: tuple[float, float] = (5.0, 120.0),
                 read_attempts: int = 4, language: str = "en", extra_context: dict | None = None) -> None:
        self.base_url = url.rstrip("/")
        self.database = database
        self.username = username
        self._password = password
        self.language = language
        self.timeout = timeout
        self.read_attempts = read_attempts
        self.session = session or make_session(timeout=timeout)
        # See decode_body: ask for gzip so the server's Content-Encoding label is truthful.
        self.session.headers["Accept-Encoding"] = "gzip"
        # Makes trytond leave WWW-Authenticate: Basic off its 401s (tryton.md §5): an expired session is
        # answered by a fresh session login here, never by falling back to (slow, argon2-per-call) Basic auth.
        self.session.headers["X-Requested-With"] = "XMLHttpRequest"
        self.context: dict[str, Any] = {}
        self.extra_context: dict[str, Any] = dict(extra_context or {})
        self._ids = itertools.count(1)
        self._auth: str | None = None
        self.logins = 0
        self.source = "tryton"  # the hub's name for this system, for error messages

    @property
    def rpc_url(self) -> str:
        return f"{self.base_url}/{self.database}/rpc/"

    # -- session ----------------------------------------------------------------------------------------------
    def login(self) -> None:
        self._auth = None
        where = f"database {self.database!r} at {host_of(self.base_url)}"
        try:
            # a refusal is never retried: repeated failures trip the server's login throttle (tryton.md §5)
            uid, token = self._call("common.db.login", [self.username, {"password": self._password},
                                                        self.language], retry=True, login=True)[:2]
        except _SessionExpired:
            raise TrytonAuthError(f"{self.source}: Tryton refused the login of user {self.username!r} to {where} "
                                  "(wrong user name or password)") from None
        except _LoginThrottled:
            raise TrytonAuthError(f"{self.source}: Tryton refuses logins of user {self.username!r} to {where} for "
                                  "now: too many failed logins (it lifts after its [session] timeout)") from None
        except _NoDatabase:
            raise ConnectorError(f"{self.source}: {host_of(self.base_url)} has no Tryton database "
                                 f"{self.database!r}") from None
        except TrytonError as exc:
            raise TrytonAuthError(f"{self.source}: Tryton login to {where} failed: {exc.kind}") from None
        token64 = base64.b64encode(f"{self.username}:{uid}:{token}".encode()).decode()
        self._auth = f"Session {token64}"
        self.logins += 1
        prefs = self._call("model.res.user.get_preferences", [True, {}], retry=True)
        # company must be in the context for sales/stock; language keeps translated names stable
        self.context = {"company": prefs.get("company"), "language": prefs.get("language") or self.language,
                        **self.extra_context}

    def logout(self) -> None:
        if self._auth is not None:
            try:
                self._call("common.db.logout", [], retry=False)
            finally:
                self._auth = None

    # -- calls ------------------------------------------------------------------------------------------------
    def call(self, method: str, *params: Any, write: bool = False) -> Any:
        """``model.*`` call; the context argument Tryton requires is appended."""
        if self._auth is None:
            self.login()
        args = [*params, self.context]
        try:
            return self._call(method, args, retry=not write)
        except _SessionExpired:
            # Session timed out (or was logged out server side): log in again once, then repeat the call.
            # Safe for writes too: a 401 means the server rejected the request before running it.
            log.info("tryton session expired; logging in again")
            self.login()
            args[-1] = self.context
            try:
                return self._call(method, args, retry=not write)
            except _SessionExpired as exc:
                raise TrytonAuthError("Tryton rejected a fresh session") from exc

    def _call(self, method: str, params: list, *, retry: bool, login: bool = False) -> Any:
        payload = {"id": next(self._ids), "method": method, "params": encode_value(params)}

        def once() -> Any:
            resp = self.session.post(self.rpc_url, json=payload, headers={"Authorization": self._auth},
                                     stream=True, timeout=self.timeout)
            if resp.status_code == 401 or (login and resp.status_code in (403, 404, 429)):
                resp.close()
                if resp.status_code == 429:
                    raise _LoginThrottled()
                if resp.status_code == 404:
                    raise _NoDatabase()
                raise _SessionExpired()
            retry_error = retryable_status(resp)
            if retry_error is not None:
                raise retry_error
            resp.raise_for_status()
            # with stream=True a cut-off body surfaces from raw.read() as urllib3's ProtocolError/IncompleteRead
            # (requests only wraps those when it reads the body itself): the retry layer knows both
            return decode_body(resp)

        # a write is sent once (attempts=1): the layer only turns a transport failure into a clear error
        body = send_with_retries(once, source=self.source, url=self.rpc_url,
                                 attempts=self.read_attempts if retry else 1)
        if "error" in body:
            kind, message = _parse_error(body["error"])
            raise TrytonError(method, kind, message)
        return body.get("result")

    # -- helpers ----------------------------------------------------------------------------------------------
    def search_read(self, model: str, domain: list, fields: list[str], *, order: list | None = None,
                    offset: int = 0, limit: int | None = None) -> list[dict]:
        return self.call(f"model.{model}.search_read", domain, offset, limit,
                         order if order is not None else [["id", "ASC"]], fields)

    def search(self, model: str, domain: list, *, limit: int | None = None) -> list[int]:
        return self.call(f"model.{model}.search", domain, 0, limit, [["id", "ASC"]])

    def create(self, model: str, values: list[dict]) -> list[int]:
        return self.call(f"model.{model}.create", values, write=True)

    def write(self, model: str, ids: list[int], values: dict) -> None:
        self.call(f"model.{model}.write", ids, values, write=True)

    def fields(self, model: str) -> set[str]:
        return set(self.call(f"model.{model}.fields_get", []))


def _parse_error(err: Any) -> tuple[str, str]:
    # UserError/UserWarning: ["UserError", [message, description, domain]]; others: [str(exc), traceback]
    if isinstance(err, list) and err and err[0] in ("UserError", "UserWarning"):
        detail = err[1] if len(err) > 1 else []
        msg = detail[0] if isinstance(detail, list) and detail else str(detail)
        return err[0], str(msg)
    if isinstance(err, list) and err:
        return "error", str(err[0])
    return "error", str(err)


# --------------------------------------------------------------------------------------------------------------
# Entity declarations


class _Entity:
    """What to read for one landing entity and which child tables can change it."""

    def __init__(self, model: str, fields: list[str], children: dict[str, str],
                 optional_fields: tuple[str, ...] = ()) -> None:
        self.model = model
        self.fields = fields
        # path on the parent -> child model whose rows are embedded in the payload: their write/create
        # dates join the change window and the high-water mark
        self.children = children
        self.optional_fields = optional_fields  # read only when the installed modules define them


_ADDRESS = ["party_name", "street", "postal_code", "city", "country.code", "subdivision.code", "active", "sequence"]

ENTITIES: dict[str, _Entity] = {
    "customers": _Entity(
        "party.party",
        ["code", "name", "active", "lang.code", "create_date", "write_date",
         *[f"addresses.{f}" for f in _ADDRESS], "addresses.create_date", "addresses.write_date",
         "contact_mechanisms.type", "contact_mechanisms.value", "contact_mechanisms.name",
         "contact_mechanisms.active", "contact_mechanisms.create_date", "contact_mechanisms.write_date",
         "identifiers.type", "identifiers.code", "identifiers.active", "identifiers.create_date",
         "identifiers.write_date", "categories.name"],
        {"addresses": "party.address", "contact_mechanisms": "party.contact_mechanism",
         "identifiers": "party.identifier"},
    ),
    "orders": _Entity(
        "sale.sale",
        ["number", "reference", "description", "state", "sale_date", "quotation_date", "shipping_date",
         "create_date", "write_date", "company", "party", "party.code", "invoice_address", "shipment_address",
         *[f"shipment_address.{f}" for f in ("street", "postal_code", "city", "country.code")],
         "currency.code", "untaxed_amount", "tax_amount", "total_amount", "invoice_method", "invoice_state",
         "shipment_method", "shipment_state", "shipments",
         "lines.type", "lines.sequence", "lines.product", "lines.product.code", "lines.description",
         "lines.quantity", "lines.unit.symbol", "lines.unit_price", "lines.amount", "lines.create_date",
         "lines.write_date"],
        # embedded address rows change the order payload too, so their dates are part of the window
        {"lines": "sale.line", "shipment_address": "party.address"},
    ),
    "shipments": _Entity(
        "stock.shipment.out",
        ["number", "reference", "state", "planned_date", "effective_date", "create_date", "write_date",
         "company", "customer", "customer.code", "delivery_address",
         *[f"delivery_address.{f}" for f in ("street", "postal_code", "city", "country.code")],
         "warehouse.code", "origins", "outgoing_moves.product", "outgoing_moves.product.code",
         "outgoing_moves.quantity", "outgoing_moves.state", "outgoing_moves.origin",
         "outgoing_moves.sale"],  # the sale id (sale module): shipment -> order link without parsing origin
        {"moves": "stock.move", "delivery_address": "party.address"},
        # carrier/tracking come from optional modules (sale_shipment_cost, stock_package_shipping)
        optional_fields=("carrier", "carrier.rec_name", "shipping_reference", "tracking_number"),
    ),
}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _max_dt(*values: dt.datetime | None) -> dt.datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _nest(rec: dict) -> dict:
    """Turn Tryton's dotted-read shape ({"addresses": [1], "addresses.": [{...}]}) into plain nesting, and
    make it a landing payload in the same pass (one pass matters: this runs for every row of every page):
    dates as ISO strings, Decimals as strings, ``active`` as a real bool (SQLite hands back 0/1, so payloads
    would otherwise hash differently per backend)."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        if key[-1] == ".":
            base = key[:-1]
            if isinstance(value, list):
                out[base] = [_nest(v) for v in value]
            elif isinstance(value, dict):
                out[base] = _nest(value)
            else:
                out.setdefault(base, value)
        elif key + "." in rec:
            continue  # the nested form replaces the bare id(s)
        elif key == "active" and value is not None:
            out[key] = bool(value)
        else:
            out[key] = _scalar(value)
    return out


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _strip_volatile(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in _VOLATILE}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def is_hub_identifier(ident: dict) -> bool:
    return not ident.get("type") and str(ident.get("code") or "").startswith(GOLDEN_ID_PREFIX)


def is_hub_category(cat: dict) -> bool:
    return str(cat.get("name") or "").startswith(HUB_CATEGORY_PREFIX)


def hash_view(entity: str, payload: dict) -> dict:
    """The part of a payload that counts as a source change: hub-owned fields and bookkeeping dates out."""
    view = _strip_volatile(payload)
    if entity == "customers":
        view["identifiers"] = [i for i in view.get("identifiers") or [] if not is_hub_identifier(i)]
        view["categories"] = [c for c in view.get("categories") or [] if not is_hub_category(c)]
    return view


# --------------------------------------------------------------------------------------------------------------
# Connector


class TrytonConnector:
    """Pull customers / orders / shipments from Tryton; push golden ids and segments back.

    ``page_size`` rows per JSON-RPC page (1,000 measured well on SQLite and PostgreSQL backends);
    ``overlap`` re-reads that much before the last high-water mark (late commits of long transactions).
    """

    entities: tuple[str, ...] = ("customers", "orders", "shipments")

    @property
    def system(self) -> str:
        """The hub's name for this Tryton (landing source, push target; hub.yaml's source name)."""
        return self.rpc.source

    @system.setter
    def system(self, name: str) -> None:
        self.rpc.source = name

    def __init__(self, url: str, database: str, username: str, password: str, *, page_size: int = 1000,
                 overlap: timedelta = timedelta(minutes=5), create_missing_parties: bool = False,
                 session: requests.Session | None = None, timeout: tuple[float, float] = (5.0, 120.0)) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        # active_test=False: deactivated parties/addresses must come through as changes, not vanish
        self.rpc = TrytonRpc(url, database, username, password, session=session, timeout=timeout,
                             extra_context={"active_test": False})
        self.page_size = page_size
        self.overlap = overlap
        self.create_missing_parties = create_missing_parties
        self._fields: dict[str, list[str]] = {}
        self._category_ids: dict[str, int] = {}
        self._own_parties: list[int] | None = None
        self._address_fields: list[str] | None = None
        self.own_writes = OwnWrites()  # what this connector's pushes wrote, until record_own_writes

    @classmethod
    def from_env(cls, prefix: str = "HUB_TRYTON_", **kw: Any) -> TrytonConnector:
        """Build from ``<prefix>URL``, ``DATABASE``, ``USER`` (or ``USERNAME``; default admin) and ``PASSWORD``
        — the names hub.default.yaml documents; secrets stay out of code."""
        env = os.environ
        try:
            user = env.get(f"{prefix}USER") or env.get(f"{prefix}USERNAME") or "admin"
            return cls(env[f"{prefix}URL"], env[f"{prefix}DATABASE"], user, env[f"{prefix}PASSWORD"], **kw)
        except KeyError as exc:
            raise ConnectorError(f"missing environment variable {exc.args[0]}") from None

    # -- pull -------------------------------------------------------------------------------------------------
    def _read_fields(self, entity: str) -> list[str]:
        if entity not in self._fields:
            spec = ENTITIES[entity]
            fields = list(spec.fields)
            if spec.optional_fields:
                available = self.rpc.fields(spec.model)
                fields += [f for f in spec.optional_fields if f.split(".", 1)[0] in available]
            self._fields[entity] = fields
        return self._fields[entity]

    def high_water(self, entity: str) -> dt.datetime | None:
        """Newest write/create timestamp over the entity's table and its child tables, read right now."""
        spec = ENTITIES[entity]
        best: dt.datetime | None = None
        for model in (spec.model, *spec.children.values()):
            for col in ("write_date", "create_date"):
                rows = self.rpc.search_read(model, [[col, "!=", None]], [col], order=[[col, "DESC"]], limit=1)
                if rows:
                    best = _max_dt(best, rows[0][col])
        return best

    def window_domain(self, entity: str, lb: dt.datetime | None, own: dict | None = None) -> list:
        """Rows changed at or after ``lb``, themselves or through a child row; [] = everything.

        For customers, ``own`` (the cursor's record of the hub's own writes) takes out the dates the hub's
        own calls produced: a party's ``write_date`` moved by the hub's categories, an identifier the hub
        created or rewrote — and adds the parties to read again (changed by someone else just before the
        hub wrote them)."""
        if lb is None:
            return []
        spec = ENTITIES[entity]
        stamps = [s for s in (_parse_dt(x) for x in (own or {}).get("stamps") or []) if s is not None and s >= lb]

        def since(column: str) -> list:
            return [[column, ">=", lb], [column, "not in", stamps]] if stamps else [column, ">=", lb]

        if entity != "customers" or not stamps:
            clauses: list = ["OR", ["write_date", ">=", lb], ["create_date", ">=", lb]]
            for path in spec.children:
                clauses += [[f"{path}.write_date", ">=", lb], [f"{path}.create_date", ">=", lb]]
        else:
            # "where": one and the same identifier row must match both (a dotted path would let any two)
            clauses = ["OR", since("write_date"), ["create_date", ">=", lb]]
            for path in spec.children:
                if path == "identifiers":
                    clauses += [[path, "where", since("write_date")], [path, "where", since("create_date")]]
                else:
                    clauses += [[f"{path}.write_date", ">=", lb], [f"{path}.create_date", ">=", lb]]
        reread = [int(i) for i in (own or {}).get("reread") or []]
        if entity == "customers" and reread:
            clauses.append(["id", "in", reread])
        return clauses

    def own_party_ids(self) -> list[int]:
        """The ERP's own parties — its company's party and its employees' — which are not customers (read once
        per connector; a model that is not installed has none)."""
        if self._own_parties is None:
            ids: set[int] = set()
            for model in ("company.company", "company.employee"):
                try:
                    rows = self.rpc.search_read(model, [], ["party"])
                except TrytonError:  # module not activated on this server
                    continue
                ids.update(int(r["party"]) for r in rows if r.get("party"))
            self._own_parties = sorted(ids)
        return self._own_parties

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}")
        written = (cursor or {}).get("own") if entity == "customers" else None
        if cursor and cursor.get("last_id") is not None:  # resume a sweep that was cut short
            lb = _parse_dt(cursor.get("lb"))
            hw = _parse_dt(cursor.get("hw"))
            last_id = int(cursor["last_id"])
        else:
            prev_hw = _parse_dt(cursor.get("hw")) if cursor else None
            lb = prev_hw - self.overlap if prev_hw is not None else None
            # taken BEFORE reading: anything committed during the sweep is >= hw (or inside the overlap)
            hw = self.high_water(entity) or prev_hw
            last_id = 0
        domain_window = self.window_domain(entity, lb, written)
        fields = self._read_fields(entity)
        spec = ENTITIES[entity]
        own = self.own_party_ids() if entity == "customers" else []
        while True:
            domain: list = [["id", ">", last_id]]
            if domain_window:
                domain.append(domain_window)
            if own:  # the ERP's own company and employees are not customers
                domain.append(["id", "not in", own])
            rows = self.rpc.search_read(spec.model, domain, fields, order=[["id", "ASC"]], limit=self.page_size)
            records = []
            for row in rows:
                payload = _nest(row)
                records.append(landing_record(row["id"], payload, hash_view(entity, payload),
                                              party_hub_state(payload) if entity == "customers" else None))
            done = len(rows) < self.page_size
            if rows:
                last_id = rows[-1]["id"]
            page_cursor: dict[str, Any] = {"lb": _iso(lb), "hw": _iso(hw), "last_id": None if done else last_id}
            if written:
                # once the sweep is done its rereads are read, and stamps older than the next window are moot
                page_cursor["own"] = (OwnWrites.pruned(written, hw - self.overlap if hw else None) if done
                                      else written)
            yield Page(records=records, cursor=page_cursor)
            if done:
                return

    # -- id-only sweep (deletes and deactivations) --------------------------------------------------------------
    def present_ids(self, entity: str) -> SourceIds:
        """Every id of the entity's model (``search``, ids only, inactive rows included: the connector's
        context has ``active_test`` off) and, for parties, those with ``active`` false."""
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity {entity!r}")
        model = ENTITIES[entity].model
        inactive = self._all_ids(model, [["active", "=", False]]) if entity == "customers" else []
        return SourceIds.of(self._all_ids(model, []), inactive)

    def _all_ids(self, model: str, domain: list, chunk: int = 10_000) -> list[int]:
        out: list[int] = []
        while True:
            ids = self.rpc.search(model, [["id", ">", out[-1] if out else 0], *domain], limit=chunk)
            out += ids
            if len(ids) < chunk:
                return out

    # -- push -------------------------------------------------------------------------------------------------
    push_batch_size = 100  # parties per push() call: one read, then a few multi-record calls

    def push(self, items: list[OutboxItem]) -> list[PushOutcome]:
        """Write golden id + hub categories onto parties (creating parties when allowed). Idempotent: a row
        already in the desired state causes no write, so pushing twice changes nothing in Tryton.

        Existing parties are written together: one read of their hub fields, then at most one call each to
        create, rewrite and delete identifiers and one multi-record ``party.party.write`` for categories.
        If Tryton refuses such a call, every party of it is retried on its own so one bad row fails alone."""
        outcomes: dict[int, PushOutcome] = {}
        updates: list[tuple[OutboxItem, int, str | None]] = []
        for item in items:
            try:
                checked = self._check(item)
                if isinstance(checked, PushOutcome):
                    outcomes[item.id] = checked
                elif isinstance(checked, str):
                    outcomes[item.id] = self._create_or_find_party(item, checked)
                else:
                    updates.append((item, *checked))
            except (TrytonError, *_TRANSPORT_ERRORS) as exc:
                outcomes[item.id] = _failure(item.id, exc)
        if updates:
            try:
                outcomes.update(self._update_parties(updates))
            except TrytonError as exc:
                if len(updates) == 1:
                    outcomes[updates[0][0].id] = _failure(updates[0][0].id, exc)
                else:  # each party alone, read afresh: whatever part of the batch applied is not redone
                    for item, _, _ in updates:
                        outcomes[item.id] = self.push([item])[0]
            except _TRANSPORT_ERRORS as exc:
                # transport trouble or a garbled answer: unknown what applied, so retry next run (idempotent)
                for item, _, _ in updates:
                    outcomes[item.id] = _failure(item.id, exc)
        for item, pid, _ in updates:  # hub fields are off: now the person goes too
            if removal(item.payload) == "erase" and outcomes.get(item.id, PushOutcome(0, "ok")).status == "ok":
                try:
                    outcomes[item.id] = PushOutcome(item.id, "ok", self.erase_party(pid))
                except (TrytonError, *_TRANSPORT_ERRORS) as exc:
                    outcomes[item.id] = _failure(item.id, exc)
        return [outcomes[item.id] for item in items]

    def held_view(self, item: OutboxItem) -> dict:
        """The hub identifier and categories a party carries once ``item`` is applied (a withdrawal or an
        erasure: none)."""
        if removal(item.payload):
            return party_hub_state({})
        golden_id = item.golden_id or (item.payload or {}).get("golden_id")
        return party_hub_state({"identifiers": [{"type": None, "code": GOLDEN_ID_PREFIX + str(golden_id)}],
                                "categories": [{"name": n} for n in hub_category_names(item.payload or {})]})

    def held(self, items: list[OutboxItem]) -> dict[int, dict | None]:
        """Each row's party's hub fields now; a create's party is found by its golden id. None = no party."""
        party_of: dict[int, int | None] = {}
        for item in items:
            checked = self._check(item)
            if isinstance(checked, tuple):
                party_of[item.id] = checked[0]
            elif isinstance(checked, str):
                party_of[item.id] = self.find_party_by_golden_id(checked)
        parties = self._hub_fields(sorted({p for p in party_of.values() if p is not None}))
        return {it.id: party_hub_state(parties[party_of[it.id]]) if party_of.get(it.id) in parties else None
                for it in items}

    def erase_party(self, party_id: int) -> str:
        """``hub erase`` on a party: deleted when no document points at it (and Tryton agrees), else deactivated
        and anonymised — name replaced, contact mechanisms and identifiers deleted, address fields cleared
        (sales and shipments keep pointing at the address row). Idempotent."""
        documents = (self.rpc.search("sale.sale", [["party", "=", party_id]], limit=1)
                     or self.rpc.search("stock.shipment.out", [["customer", "=", party_id]], limit=1))
        if not documents:
            try:
                self.rpc.call("model.party.party.delete", [party_id], write=True)
                return "party deleted"
            except TrytonError as exc:
                if not exc.is_user_error:
                    raise  # a refusal (something else points at it) falls back to anonymising
        for model in ("party.contact_mechanism", "party.identifier"):
            ids = self.rpc.search(model, [["party", "=", party_id]])
            if ids:
                self.rpc.call(f"model.{model}.delete", ids, write=True)
        if self._address_fields is None:
            have = self.rpc.fields("party.address")
            # Tryton 7+: street is computed from street_unstructured + the structured parts
            self._address_fields = sorted(f for f in _ADDRESS_PERSONAL if f in have
                                          and not (f == "street" and "street_unstructured" in have))
        # only what still holds something is written: Tryton refuses edits of a switched-off party, so a
        # repeated erasure must find nothing left to write
        filled = [a["id"] for a in self.rpc.search_read("party.address", [["party", "=", party_id]],
                                                        self._address_fields) if any(a.get(f) for f in
                                                                                     self._address_fields)]
        if filled:
            self.rpc.write("party.address", filled, dict.fromkeys(self._address_fields))
        party = self.rpc.search_read("party.party", [["id", "=", party_id]], ["name", "active"])
        wanted = {"name": ERASED_NAME, "active": False}
        change = {k: v for k, v in wanted.items() if not party or party[0].get(k) != v}
        if change:
            self.rpc.write("party.party", [party_id], change)
        return "party deactivated and anonymised"

    def _check(self, item: OutboxItem) -> PushOutcome | tuple[int, str | None] | str:
        """A rejection, ``(party id, golden id)`` for an existing party (golden id None: withdraw the hub's
        fields), or the golden id of a create."""
        if item.entity not in ("customers", "customer", "party"):
            return PushOutcome(item.id, "rejected", f"tryton push does not handle entity {item.entity!r}")
        if removal(item.payload):
            target = str(item.target_id or "").strip()
            if not target.isdigit():
                return PushOutcome(item.id, "rejected", "a withdrawal needs a Tryton party id")
            return int(target), None
        golden_id = item.golden_id or item.payload.get("golden_id")
        if not golden_id:
            return PushOutcome(item.id, "rejected", "no golden_id")
        target = str(item.target_id or "").strip()
        # "" per the outbox contract; "new:<golden id>" keeps several pending creates apart in an outbox
        # that de-duplicates pending rows by target_id
        if not target or target.startswith(NEW_PARTY_PREFIX):
            return str(golden_id)
        if not target.isdigit():
            return PushOutcome(item.id, "rejected", f"target_id {target!r} is not a Tryton party id")
        return int(target), str(golden_id)

    def _hub_fields(self, party_ids: list[int]) -> dict[int, dict]:
        """The hub identifiers and categories of these parties, as Tryton holds them now."""
        if not party_ids:
            return {}
        rows = self.rpc.search_read("party.party", [["id", "in", party_ids]],
                                    ["write_date", "identifiers.type", "identifiers.code", "categories.name"])
        return {p["id"]: {**_nest(p), "write_date": p.get("write_date")} for p in rows}

    def _update_parties(self, updates: list[tuple[OutboxItem, int, str | None]]) -> dict[int, PushOutcome]:
        parties = self._hub_fields(sorted({pid for _, pid, _ in updates}))
        outcomes: dict[int, PushOutcome] = {}
        plan = _HubFieldPlan()
        for item, pid, golden_id in updates:
            party = parties.get(pid)
            if party is None:
                outcomes[item.id] = PushOutcome(item.id, "rejected", f"party {pid} does not exist in Tryton")
                continue
            plan.add(pid, party, golden_id, item.payload)
            outcomes[item.id] = PushOutcome(item.id, "ok", None)
        self._apply(plan)
        return outcomes

    def _apply(self, plan: _HubFieldPlan) -> None:
        created: list[int] = []
        if plan.creates:
            created = self.rpc.create("party.identifier", plan.creates)
        if plan.rewrites:  # one call, one (records, values) pair per identifier: each gets its own code
            self.rpc.call("model.party.identifier.write",
                          *[arg for ident, code in plan.rewrites for arg in ([ident], {"code": code})], write=True)
        if plan.deletes:
            self.rpc.call("model.party.identifier.delete", plan.deletes, write=True)
        written: list[int] = []
        if plan.category_ops:
            ids = self.category_ids(sorted({n for add, _ in plan.category_ops for n in add}))
            args: list = []
            for (add, remove), pids in plan.category_ops.items():
                ops: list = []
                if add:
                    ops.append(["add", [ids[n] for n in add]])
                if remove:
                    ops.append(["remove", list(remove)])
                args += [pids, {"categories": ops}]
            # parties already in their desired state are not in the call: their write_date must not move
            self.rpc.call("model.party.party.write", *args, write=True)
            written = sorted({pid for pids in plan.category_ops.values() for pid in pids})
        self._note_own_writes(created, [i for i, _ in plan.rewrites], written, plan.before)

    def _note_own_writes(self, created: list[int], rewritten: list[int], written: list[int],
                         before: dict[int, dt.datetime | None]) -> None:
        """Read back the timestamps the hub's calls just gave the rows they wrote (every row of one call
        carries its transaction's start time): at most one read of identifiers, one of parties."""
        if created or rewritten:
            new = set(created)
            for row in self.rpc.search_read("party.identifier", [["id", "in", sorted(new | set(rewritten))]],
                                            ["create_date", "write_date"]):
                stamp = row.get("create_date") if row["id"] in new else row.get("write_date")
                self.own_writes.note_stamps([stamp] if stamp is not None else [])
        if written:
            rows = self.rpc.search_read("party.party", [["id", "in", written]], ["write_date"])
            self.own_writes.note_stamps([r["write_date"] for r in rows if r.get("write_date") is not None])
            self.own_writes.note_overwritten({pid: before.get(pid) for pid in written})

    def record_own_writes(self, store: Any) -> None:
        """Keep the timestamps of this connector's own writes in the customers cursor, where the next pull
        finds them (called by ``run_push`` after the batches, also when a batch failed)."""
        if not self.own_writes:
            return
        cursor = dict(store.get_cursor(self.system, "customers") or {})
        hw = _parse_dt(cursor.get("hw"))
        lb_next = hw - self.overlap if hw is not None else None
        cursor["own"] = self.own_writes.merged_into(cursor.get("own"), lb_next)
        store.save_cursor(self.system, "customers", cursor)
        self.own_writes = OwnWrites()

    def category_ids(self, names: list[str]) -> dict[str, int]:
        """Ids of top-level hub categories, created on first use: one search and one create for all."""
        missing = sorted(set(names) - set(self._category_ids))
        if missing:
            for row in self.rpc.search_read("party.category", [["name", "in", missing], ["parent", "=", None]],
                                            ["name"]):
                self._category_ids.setdefault(row["name"], row["id"])
            new = [n for n in missing if n not in self._category_ids]
            if new:
                self._category_ids.update(zip(new, self.rpc.create("party.category", [{"name": n} for n in new]),
                                              strict=True))
        return {n: self._category_ids[n] for n in names}

    def find_party_by_golden_id(self, golden_id: str) -> int | None:
        found = self.rpc.search("party.identifier", [["code", "=", GOLDEN_ID_PREFIX + golden_id],
                                                     ["type", "=", None]], limit=1)
        if not found:
            return None
        return self.rpc.call("model.party.identifier.read", found, ["party"])[0]["party"]

    def _create_or_find_party(self, item: OutboxItem, golden_id: str) -> PushOutcome:
        # Re-running after a crash between create and record_push_result must not create a twin: the
        # golden id identifier, created in the same call as the party, is the create's idempotency key.
        existing = self.find_party_by_golden_id(golden_id)
        if existing is not None:
            plan = _HubFieldPlan()
            plan.add(existing, self._hub_fields([existing])[existing], golden_id, item.payload)
            self._apply(plan)
            return PushOutcome(item.id, "ok", f"party {existing} already carries the golden id")
        if not self.create_missing_parties:
            return PushOutcome(item.id, "rejected", "no Tryton party and create_missing_parties is off")
        values = self.party_values(item.payload, golden_id)
        if not values.get("name"):
            return PushOutcome(item.id, "rejected", "payload has no display_name")
        party_id = self.rpc.create("party.party", [values])[0]
        return PushOutcome(item.id, "ok", f"created party {party_id}")

    def party_values(self, payload: dict, golden_id: str) -> dict:
        """party.party create values from a golden customer payload (display_name, phones, emails, address)."""
        address = payload.get("address") or (payload.get("addresses") or [None])[0]
        addr_vals: dict[str, Any] = {}
        if isinstance(address, dict):
            for src, dst in (("street", "street"), ("line1", "street"), ("city", "city"),
                             ("postal_code", "postal_code"), ("postcode", "postal_code")):
                if address.get(src) and dst not in addr_vals:
                    addr_vals[dst] = str(address[src])
            country = address.get("country") or address.get("country_code")
            if country:
                cid = self.rpc.search("country.country", [["code", "=", str(country).upper()]], limit=1)
                if cid:
                    addr_vals["country"] = cid[0]
        elif isinstance(address, str) and address.strip():
            addr_vals["street"] = address.strip()
        mechs = [{"type": "mobile" if _looks_mobile(p) else "phone", "value": p}
                 for p in _as_list(payload.get("phones"))]
        mechs += [{"type": "email", "value": e} for e in _as_list(payload.get("emails"))]
        values: dict[str, Any] = {
            "name": payload.get("display_name") or payload.get("name"),
            "identifiers": [["create", [{"type": None, "code": GOLDEN_ID_PREFIX + golden_id}]]],
        }
        if addr_vals:
            values["addresses"] = [["create", [addr_vals]]]
        if mechs:
            values["contact_mechanisms"] = [["create", mechs]]
        cats = list(self.category_ids(hub_category_names(payload)).values())
        if cats:
            values["categories"] = [["add", cats]]
        return values

    def close(self) -> None:
        try:
            self.rpc.logout()
        except (requests.RequestException, ConnectorError):
            pass
        self.rpc.session.close()


def party_hub_state(party: dict) -> dict:
    """Golden id, segment, tier and consent as a (nested) party carries them in its hub identifier and
    categories."""
    codes = [str(i.get("code"))[len(GOLDEN_ID_PREFIX):] for i in party.get("identifiers") or []
             if is_hub_identifier(i)]
    names = [str(c.get("name") or "") for c in party.get("categories") or [] if is_hub_category(c)]
    state: dict[str, Any] = {"golden_id": held_value(codes, distinct=False)}
    for key in ("segment", "value_tier", *CONSENT_FIELDS):
        family = f"{HUB_CATEGORY_PREFIX}{key}:"
        state[key] = held_value([n[len(family):] for n in names if n.startswith(family)])
    return state


def hub_category_names(payload: dict) -> list[str]:
    """The hub categories a golden customer should carry, e.g. ['hub:segment:vip', 'hub:value_tier:gold',
    'hub:consent_email:yes']."""
    names = []
    for key in ("segment", "value_tier", *CONSENT_FIELDS):
        value = payload.get(key)
        if value:
            names.append(f"{HUB_CATEGORY_PREFIX}{key}:{value}")
    return names


_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    requests.RequestException, urllib3.exceptions.HTTPError, ValueError, ConnectorError)


def _failure(outbox_id: int, exc: BaseException) -> PushOutcome:
    if isinstance(exc, TrytonError):
        # a UserError is Tryton refusing the data: retrying unchanged will not help
        status = "rejected" if exc.is_user_error else "error"
        return PushOutcome(outbox_id, status, f"{exc.kind}: {exc.message}"[:500])
    return PushOutcome(outbox_id, "error", type(exc).__name__)


class OwnWrites:
    """The timestamps of the hub's own writes to Tryton and the parties whose earlier change those writes may
    hide; kept in the customers cursor as ``{"stamps": [iso, ...], "reread": [party id, ...]}``."""

    def __init__(self) -> None:
        self.stamps: set[dt.datetime] = set()
        self.overwritten: dict[int, dt.datetime | None] = {}  # party -> its write_date before the hub's write

    def __bool__(self) -> bool:
        return bool(self.stamps or self.overwritten)

    def note_stamps(self, dates: list[dt.datetime]) -> None:
        self.stamps.update(dates)

    def note_overwritten(self, before: dict[int, dt.datetime | None]) -> None:
        for pid, date in before.items():
            self.overwritten.setdefault(pid, date)  # the first write of a run hides the date that matters

    def merged_into(self, own: dict | None, lb_next: dt.datetime | None) -> dict:
        """This run's writes added to the cursor's ``own``. A party whose date before the hub's write is not
        one of the hub's own and falls in the next window (someone changed it, maybe after the pull read it)
        is read again by the next pull."""
        own = own or {}
        known = {d for d in (_parse_dt(x) for x in own.get("stamps") or []) if d is not None} | self.stamps
        reread = {int(i) for i in own.get("reread") or []}
        reread |= {pid for pid, before in self.overwritten.items()
                   if before is not None and before not in known and (lb_next is None or before >= lb_next)}
        return self.pruned({"stamps": [d.isoformat() for d in known], "reread": list(reread)}, lb_next,
                           keep_reread=True)

    @staticmethod
    def pruned(own: dict, lb: dt.datetime | None, *, keep_reread: bool = False) -> dict:
        """Stamps before ``lb`` dropped (no window reaches back there); rereads dropped unless kept."""
        stamps = sorted(d for d in (_parse_dt(x) for x in own.get("stamps") or [])
                        if d is not None and (lb is None or d >= lb))
        return {"stamps": [d.isoformat() for d in stamps],
                "reread": sorted(int(i) for i in own.get("reread") or []) if keep_reread else []}


class _HubFieldPlan:
    """The writes that bring parties' hub identifier and hub categories to their desired state, gathered so
    a whole batch goes to Tryton in a few calls."""

    def __init__(self) -> None:
        self.creates: list[dict] = []
        self.rewrites: list[tuple[int, str]] = []
        self.deletes: list[int] = []
        # (category names to add, category ids to remove) -> parties needing exactly that
        self.category_ops: dict[tuple[tuple[str, ...], tuple[int, ...]], list[int]] = {}
        self.before: dict[int, dt.datetime | None] = {}  # party -> its write_date before the hub writes it

    def add(self, party_id: int, party: dict, golden_id: str | None, payload: dict) -> None:
        """``golden_id`` None: the party left the hub — its hub identifier and categories go."""
        code = GOLDEN_ID_PREFIX + golden_id if golden_id else None
        hub_idents = [i for i in party.get("identifiers") or [] if is_hub_identifier(i)]
        keep = next((i["id"] for i in hub_idents if i["code"] == code), None)
        # exactly one hub identifier per party (two overlapping syncs could leave two)
        stale = [i["id"] for i in hub_idents if i["id"] != keep]
        if code is None:
            pass
        elif keep is None:  # the current golden id is not there yet
            if stale:  # golden id changed (merge/split upstream): rewrite one, don't pile up stale ids
                self.rewrites.append((stale.pop(0), code))
            else:
                self.creates.append({"party": party_id, "type": None, "code": code})
        self.deletes += stale
        wanted = set(hub_category_names(payload)) if code else set()
        current = {c["name"]: c["id"] for c in party.get("categories") or [] if is_hub_category(c)}
        add = tuple(sorted(wanted - set(current)))
        remove = tuple(sorted(cid for name, cid in current.items() if name not in wanted))
        if add or remove:
            self.category_ops.setdefault((add, remove), []).append(party_id)
            self.before[party_id] = party.get("write_date")


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v]


def _looks_mobile(phone: str) -> bool:
    # Chinese mobiles are +86 1xx...; Tryton accepts either type, the type only drives its UI/SMS features
    digits = "".join(ch for ch in phone if ch.isdigit())
    return digits.startswith("861") and len(digits) == 13


def _parse_dt(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))
