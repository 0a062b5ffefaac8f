"""The caller card: what an agent sees while the phone rings, cut from the customer's 360 view.

Pure functions on the stored 360 record (a JSON dict); the response shapes are pydantic models so the
OpenAPI document describes exactly what is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, Field

from hub.models import Consent

MAIN_ITEMS = 3  # order lines shown per order, largest amount first


class OrderSummary(BaseModel):
    order_number: str | None = None
    ordered_at: str | None = None
    status: str | None = None
    total: str | None = None
    currency: str | None = None
    source: str | None = None
    main_items: list[str] = Field(default_factory=list, description="up to 3 line descriptions, largest first")


class ShipmentSummary(BaseModel):
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    shipped_at: str | None = None
    planned_date: str | None = None


class CallSummary(BaseModel):
    occurred_at: str | None = None
    direction: str | None = None
    disposition: str | None = None
    duration_s: int | None = None
    channel: str | None = None


class CallerCard(BaseModel):
    golden_id: str
    display_name: str
    company: str | None = None
    value_tier: str | None = None
    segment: str | None = None
    lifecycle: str | None = None
    consent: Consent = Field(default_factory=Consent)
    orders_count: int = 0
    total_spent: str | None = None
    currency: str | None = None
    last_order_at: str | None = None
    recent_orders: list[OrderSummary] = Field(default_factory=list)
    open_shipments: list[ShipmentSummary] = Field(default_factory=list)
    calls_count: int = 0
    last_call_at: str | None = None
    recent_calls: list[CallSummary] = Field(default_factory=list)
    screen_pop_url: str | None = Field(None, description="the agent desktop page of this customer (serve.screen_pop_url)")


class CallerAnswer(CallerCard):
    """One golden customer holds the number."""

    number: str = Field(description="the number asked for, in E.164")
    extension: str | None = None


class CallerMatches(BaseModel):
    """Several golden customers hold the number (a household, a company switchboard)."""

    number: str
    extension: str | None = None
    display_name: str = Field(description="a short line for CALLERID(name): the first names, '+N' for more")
    matches: list[CallerCard]


class SearchHit(BaseModel):
    golden_id: str
    display_name: str
    city: str | None = None
    value_tier: str | None = None
    segment: str | None = None
    lifecycle: str | None = None


class SearchAnswer(BaseModel):
    results: list[SearchHit]
    truncated: bool = Field(description="more customers matched than `limit`")


def display_name(view: Mapping[str, Any]) -> str:
    profile = view.get("profile") or {}
    return (profile.get("full_name") or profile.get("company") or f"Customer {view.get('golden_id', '')}").strip()


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def _main_items(order: Mapping[str, Any]) -> list[str]:
    lines = [ln for ln in order.get("lines") or [] if isinstance(ln, Mapping)]
    lines.sort(key=lambda ln: _amount(ln.get("amount") or _amount(ln.get("unit_price")) * _amount(ln.get("quantity"))),
               reverse=True)
    return [str(ln.get("description") or ln.get("sku")) for ln in lines if ln.get("description") or ln.get("sku")
            ][:MAIN_ITEMS]


def caller_card(view: Mapping[str, Any], screen_pop_url: str | None = None) -> CallerCard:
    profile = view.get("profile") or {}
    gid = str(view.get("golden_id"))
    return CallerCard(
        golden_id=gid,
        display_name=display_name(view),
        company=profile.get("company"),
        value_tier=view.get("value_tier"),
        segment=view.get("segment"),
        lifecycle=view.get("lifecycle"),
        consent=Consent.model_validate(view.get("consent") or {}),
        orders_count=int(view.get("orders_count") or 0),
        total_spent=_str(view.get("total_spent")),
        currency=view.get("currency"),
        last_order_at=view.get("last_order_at"),
        recent_orders=[
            OrderSummary(order_number=o.get("order_number"), ordered_at=o.get("ordered_at"), status=o.get("status"),
                         total=_str(o.get("total")), currency=o.get("currency"), source=o.get("source"),
                         main_items=_main_items(o))
            for o in view.get("recent_orders") or []
        ],
        open_shipments=[
            ShipmentSummary(carrier=s.get("carrier"), tracking_number=s.get("tracking_number"), status=s.get("status"),
                            shipped_at=s.get("shipped_at"), planned_date=_str(s.get("planned_date")))
            for s in view.get("open_shipment_list") or []
        ],
        calls_count=int(view.get("calls_count") or 0),
        last_call_at=view.get("last_call_at"),
        recent_calls=[
            CallSummary(occurred_at=c.get("occurred_at"), direction=c.get("direction"),
                        disposition=c.get("disposition"), duration_s=c.get("duration_s"), channel=c.get("channel"))
            for c in view.get("recent_calls") or []
        ],
        screen_pop_url=screen_pop_url.format(golden_id=gid) if screen_pop_url else None,
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def search_hit(view: Mapping[str, Any]) -> SearchHit:
    profile = view.get("profile") or {}
    address = profile.get("address") or {}
    return SearchHit(golden_id=str(view.get("golden_id")), display_name=display_name(view),
                     city=address.get("city") if isinstance(address, Mapping) else None,
                     value_tier=view.get("value_tier"), segment=view.get("segment"), lifecycle=view.get("lifecycle"))


def household_name(cards: Sequence[CallerCard], shown: int = 2) -> str:
    names = [c.display_name for c in cards[:shown]]
    more = len(cards) - shown
    return " / ".join(names) + (f" +{more}" if more > 0 else "")


# CALLERID(name) travels in SIP headers and through the dialplan's CUT(): no field separator, quotes or
# control characters, and short enough for a phone display.
_CALLERID_UNSAFE = re.compile(r"[|\"\\\x00-\x1f\x7f]+")
CALLERID_MAX = 40


def asterisk_line(name: str, golden_id: str = "", value_tier: str = "", screen_pop_url: str = "") -> str:
    """``name|golden_id|value_tier|screen_pop_url`` — four fields the dialplan splits with CUT()."""
    safe = _CALLERID_UNSAFE.sub(" ", name).strip()[:CALLERID_MAX]
    return "|".join([safe, golden_id, value_tier, _CALLERID_UNSAFE.sub("", screen_pop_url)])
