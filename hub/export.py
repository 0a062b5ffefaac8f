"""`hub export`: what operations teams take into a spreadsheet — golden records, xref, the 360 view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hub.store import Store, customer_360, golden_customer, xref

EXPORTS = ("golden", "xref", "customer360")


def _address_columns(prefix: str, address: dict | None) -> dict[str, Any]:
    address = address or {}
    return {f"{prefix}_{k}": address.get(k) for k in ("street", "district", "city", "region", "postal_code", "country")}


def golden_frame(store: Store) -> pd.DataFrame:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(golden_customer.c.golden_id, golden_customer.c.record, golden_customer.c.quality_score)
            .where(golden_customer.c.status == "active")
            .order_by(golden_customer.c.golden_id)
        ).all()
    out = []
    for golden_id, rec, quality in rows:
        rec = rec or {}
        out.append(
            {
                "golden_id": golden_id,
                "full_name": rec.get("full_name"),
                "family_name": rec.get("family_name"),
                "given_name": rec.get("given_name"),
                "company": rec.get("company"),
                "primary_email": rec.get("primary_email"),
                "emails": ";".join(rec.get("emails") or []),
                "primary_phone": rec.get("primary_phone"),
                "phones": ";".join(rec.get("phones") or []),
                "birth_date": rec.get("birth_date"),
                "gender": rec.get("gender"),
                "national_id": rec.get("national_id"),
                **_address_columns("address", rec.get("address")),
                "sources": ";".join(sorted(rec.get("sources") or [])),
                "record_count": len(rec.get("record_keys") or []),
                "quality_score": quality,
            }
        )
    return pd.DataFrame(out)


def xref_frame(store: Store) -> pd.DataFrame:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(xref.c.source, xref.c.source_id, xref.c.golden_id, xref.c.valid_from, xref.c.valid_to)
            .order_by(xref.c.source, xref.c.source_id, xref.c.valid_from, xref.c.id)
        ).all()
    return pd.DataFrame(rows, columns=["source", "source_id", "golden_id", "valid_from", "valid_to"])


def customer360_frame(store: Store) -> pd.DataFrame:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(customer_360.c.golden_id, customer_360.c.record).order_by(customer_360.c.golden_id)
        ).all()
    out = []
    for golden_id, rec in rows:
        profile = rec.get("profile") or {}
        rfm = rec.get("rfm") or {}
        consent = rec.get("consent") or {}
        out.append(
            {
                "golden_id": golden_id,
                "full_name": profile.get("full_name"),
                "primary_email": profile.get("primary_email"),
                "primary_phone": profile.get("primary_phone"),
                "city": (profile.get("address") or {}).get("city"),
                "orders_count": rec.get("orders_count"),
                "total_spent": rec.get("total_spent"),
                "currency": rec.get("currency"),
                "first_order_at": rec.get("first_order_at"),
                "last_order_at": rec.get("last_order_at"),
                "shipments_count": rec.get("shipments_count"),
                "open_shipments": rec.get("open_shipments"),
                "calls_count": rec.get("calls_count"),
                "last_call_at": rec.get("last_call_at"),
                "social_follows": rec.get("social_follows"),
                "recency_days": rfm.get("recency_days"),
                "r_score": rfm.get("r_score"),
                "f_score": rfm.get("f_score"),
                "m_score": rfm.get("m_score"),
                "value_tier": rec.get("value_tier"),
                "lifecycle": rec.get("lifecycle"),
                "segment": rec.get("segment"),
                "consent_email": consent.get("email"),
                "consent_sms": consent.get("sms"),
                "consent_phone": consent.get("phone"),
                "consent_social": consent.get("social"),
                "sources": ";".join(sorted(profile.get("sources") or [])),
            }
        )
    return pd.DataFrame(out)


def export(store: Store, what: str, out: Path) -> int:
    """Write one export as CSV (or Parquet when ``out`` ends in .parquet); returns the row count."""
    frames = {"golden": golden_frame, "xref": xref_frame, "customer360": customer360_frame}
    if what not in frames:
        raise ValueError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")
    frame = frames[what](store)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False, encoding="utf-8")
    return len(frame)
