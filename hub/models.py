"""Canonical models: the one vocabulary every stage of the hub speaks.

Source payloads are mapped onto these (``hub/mappings``), standardised values live in them, the matcher,
golden record, 360 view and push-back read them. Keys: a source record is identified by ``record_key`` =
``"<source>:<source_id>"``; a golden customer by its persistent ``golden_id``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Entity = Literal["customers", "orders", "shipments", "interactions"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Address(_Model):
    kind: Literal["billing", "shipping", "home", "work", "other"] = "other"
    street: str | None = None
    district: str | None = None
    city: str | None = None
    region: str | None = None  # province / state
    postal_code: str | None = None
    country: str | None = None  # ISO 3166 alpha-2
    key: str | None = None  # compact comparable form, set by the address standardiser
    # a postcode that does not fit the country (often only the source's default one: a 4-digit Australian code in
    # a file taken as Chinese) as written: never pushed, match evidence only (the matching engine compares it as
    # `hub dedupe` compares a file's postal_code column)
    unverified_postal_code: str | None = None


class Phone(_Model):
    e164: str
    kind: Literal["mobile", "fixed", "voip", "other"] = "other"
    extension: str | None = None
    raw: str | None = None


class Consent(_Model):
    """Marketing consent per channel. None = unknown (never treated as granted). Merged by one rule
    everywhere: the most recent explicit statement per channel wins (``hub.consent``)."""

    email: bool | None = None
    sms: bool | None = None
    phone: bool | None = None
    social: bool | None = None  # WeChat and other social accounts
    post: bool | None = None


class PersonNameParts(_Model):
    display: str | None = None
    family: str | None = None
    given: str | None = None
    script: Literal["han", "latin", "mixed"] | None = None
    han: str | None = None  # simplified hanzi full name
    family_pinyin: str | None = None
    given_pinyin: str | None = None
    name_key: str | None = None  # order-insensitive romanised key: "chen wei"
    given_canonical: str | None = None  # nickname-resolved given name: bob -> robert


class CustomerRecord(_Model):
    """A customer as one source system sees it, after mapping and standardisation."""

    source: str
    source_id: str
    full_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    name: PersonNameParts | None = None
    company: str | None = None
    company_key: str | None = None
    emails: list[str] = Field(default_factory=list)
    email_keys: list[str] = Field(default_factory=list)  # provider-canonical forms, match key only
    phones: list[Phone] = Field(default_factory=list)
    # numbers of a possible length that fail validation (an unallocated prefix, a typo) as written: never called
    # or pushed, match evidence only (the matching engine reads them as `hub dedupe` reads a file's phone column)
    unverified_phones: list[str] = Field(default_factory=list)
    birth_date: date | None = None
    # a birth date that is no date (a typo: 19561345) as written: match evidence only, like unverified_phones
    unverified_birth_date: str | None = None
    gender: Literal["female", "male", "other"] | None = None
    national_id: str | None = None
    national_id_type: str | None = None  # cn_resident | us_ssn | ...
    # an id that failed validation (an unknown region code, a typo) as written: match evidence only, like
    # unverified_birth_date — never the golden record's id, never pushed
    unverified_national_id: str | None = None
    addresses: list[Address] = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)
    language: str | None = None
    source_created_at: datetime | None = None
    source_updated_at: datetime | None = None
    external_ids: dict[str, str] = Field(default_factory=dict)  # e.g. {"wechat_unionid": "..."}

    @property
    def record_key(self) -> str:
        return f"{self.source}:{self.source_id}"


class OrderLine(_Model):
    sku: str | None = None
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    amount: Decimal | None = None


class Order(_Model):
    source: str
    source_id: str
    customer_source_id: str | None = None
    order_number: str | None = None
    status: str | None = None  # normalised: pending | processing | completed | cancelled | refunded | draft
    currency: str | None = None
    total: Decimal | None = None
    ordered_at: datetime | None = None
    updated_at: datetime | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    billing_email: str | None = None
    billing_phone: str | None = None


class Shipment(_Model):
    source: str
    source_id: str
    order_source_id: str | None = None
    customer_source_id: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None  # normalised: draft | waiting | packed | shipped | delivered | cancelled
    planned_date: date | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    delivery_address: Address | None = None
    updated_at: datetime | None = None


class Interaction(_Model):
    """A touch point: a call (CDR) or a social event (follow, message)."""

    source: str
    source_id: str
    kind: Literal["call", "social_follow", "social_message"]
    customer_source_id: str | None = None  # set when the source knows the customer (e.g. openid)
    phone: str | None = None  # E.164 of the caller, the key to customers for calls
    occurred_at: datetime | None = None
    direction: Literal["inbound", "outbound", "internal"] | None = None
    duration_s: int | None = None
    billsec_s: int | None = None
    disposition: str | None = None  # ANSWERED | NO ANSWER | BUSY | FAILED ...
    channel: str | None = None  # queue / extension / official account
    content: str | None = None


class FieldLineage(_Model):
    """Where a golden value came from."""

    record_key: str
    source: str
    rule: str
    source_updated_at: datetime | None = None
    decided_at: datetime | None = None


class GoldenCustomer(_Model):
    golden_id: str
    full_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    name_key: str | None = None
    company: str | None = None
    primary_email: str | None = None
    emails: list[str] = Field(default_factory=list)
    primary_phone: str | None = None
    phones: list[str] = Field(default_factory=list)
    birth_date: date | None = None
    gender: str | None = None
    national_id: str | None = None
    address: Address | None = None
    addresses: list[Address] = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)
    sources: list[str] = Field(default_factory=list)
    record_keys: list[str] = Field(default_factory=list)
    quality_score: float | None = None
    lineage: dict[str, FieldLineage] = Field(default_factory=dict)


class Rfm(_Model):
    recency_days: int | None = None
    frequency: int = 0
    monetary: Decimal = Decimal(0)
    r_score: int | None = None  # 1..5
    f_score: int | None = None
    m_score: int | None = None


class Customer360(_Model):
    golden_id: str
    profile: GoldenCustomer
    orders_count: int = 0
    total_spent: Decimal = Decimal(0)
    currency: str | None = None
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    recent_orders: list[Order] = Field(default_factory=list)
    shipments_count: int = 0
    open_shipments: int = 0
    # the newest open shipments and calls themselves, for the call-center screen pop (hub/lookup)
    open_shipment_list: list[Shipment] = Field(default_factory=list)
    last_shipment_status: str | None = None
    calls_count: int = 0
    last_call_at: datetime | None = None
    recent_calls: list[Interaction] = Field(default_factory=list)
    social_follows: int = 0
    social_accounts: list[str] = Field(default_factory=list)
    rfm: Rfm = Field(default_factory=Rfm)
    value_tier: Literal["platinum", "gold", "silver", "bronze", "none"] = "none"
    lifecycle: Literal["prospect", "new", "active", "at_risk", "lapsed"] = "prospect"
    segment: str | None = None
    consent: Consent = Field(default_factory=Consent)
    computed_at: datetime | None = None
