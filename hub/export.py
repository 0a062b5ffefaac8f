"""`hub export`: what operations teams take into a spreadsheet — golden records, xref, the 360 view.

Every file is written for Excel and WPS as much as for programs: CSV in UTF-8 (``excel=True`` adds the BOM
Excel needs to read UTF-8 Chinese), XLSX by extension (text cells typed as text), Parquet by extension.
Columns come in a fixed order (also when there are no rows), dates and times in ISO 8601, and any text a
spreadsheet would run as a formula is escaped with a leading apostrophe (OWASP CSV injection) — in CSV and
XLSX alike; ``hub import`` removes that apostrophe again, so export -> import gives back the same values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from hub.standardise.text import escape_cell
from hub.store import Store, customer_360, golden_customer, xref

EXPORTS = ("golden", "xref", "customer360")
ADDRESS_PARTS = ("street", "district", "city", "region", "postal_code", "country")
GOLDEN_COLUMNS: tuple[str, ...] = (
    "golden_id", "full_name", "family_name", "given_name", "company", "primary_email", "emails",
    "primary_phone", "phones", "birth_date", "gender", "national_id", *(f"address_{p}" for p in ADDRESS_PARTS),
    "sources", "record_count", "quality_score",
)
XREF_COLUMNS: tuple[str, ...] = ("source", "source_id", "golden_id", "valid_from", "valid_to")
CUSTOMER360_COLUMNS: tuple[str, ...] = (
    "golden_id", "full_name", "primary_email", "primary_phone", "city", "orders_count", "total_spent",
    "currency", "first_order_at", "last_order_at", "shipments_count", "open_shipments", "calls_count",
    "last_call_at", "social_follows", "recency_days", "r_score", "f_score", "m_score", "value_tier",
    "lifecycle", "segment", "consent_email", "consent_sms", "consent_phone", "consent_social", "sources",
)


def _address_columns(prefix: str, address: dict | None) -> dict[str, Any]:
    address = address or {}
    return {f"{prefix}_{k}": address.get(k) for k in ADDRESS_PARTS}


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
    return pd.DataFrame(out, columns=list(GOLDEN_COLUMNS), dtype=object)


def xref_frame(store: Store) -> pd.DataFrame:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(xref.c.source, xref.c.source_id, xref.c.golden_id, xref.c.valid_from, xref.c.valid_to)
            .order_by(xref.c.source, xref.c.source_id, xref.c.valid_from, xref.c.id)
        ).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(XREF_COLUMNS), dtype=object)


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
                "consent_post": consent.get("post"),
                "sources": ";".join(sorted(profile.get("sources") or [])),
            }
        )
    return pd.DataFrame(out, columns=list(CUSTOMER360_COLUMNS), dtype=object)


def _cell(value: Any) -> Any:
    """One value as a spreadsheet cell: text escaped, dates ISO 8601, missing as None, numbers as numbers."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, str):
        return escape_cell(value) if value else None
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _cell(value.item())
    return value


def spreadsheet_rows(frame: pd.DataFrame) -> Iterable[list[Any]]:
    """The frame's rows as escaped spreadsheet cells (the header is not included)."""
    for row in frame.itertuples(index=False, name=None):
        yield [_cell(v) for v in row]


def write_table(frame: pd.DataFrame, out: Path, *, excel: bool = False) -> None:
    """Write ``frame`` as CSV (UTF-8; with a BOM when ``excel``), XLSX or Parquet, chosen by ``out``'s suffix.

    CSV and XLSX cells are escaped against formula injection; Parquet is typed data for programs and is
    written as it is."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(out, index=False)
        return
    header = [str(c) for c in frame.columns]
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        book = Workbook(write_only=True)
        sheet = book.create_sheet(out.stem[:31] or "export")
        sheet.append(header)
        for row in spreadsheet_rows(frame):
            cells = []
            for value in row:
                if isinstance(value, str):
                    # control characters cannot be stored in XLSX at all; text is typed as text, so
                    # nothing is ever read back as a formula
                    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
                    cell.data_type = "s"
                    cells.append(cell)
                else:
                    cells.append(value)
            sheet.append(cells)
        book.save(out)
        return
    import csv

    with out.open("w", encoding="utf-8-sig" if excel else "utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n" if excel else "\n")
        writer.writerow(header)
        writer.writerows(spreadsheet_rows(frame))


def export(store: Store, what: str, out: Path, *, excel: bool = False) -> int:
    """Write one export (CSV, XLSX or Parquet by ``out``'s suffix); returns the row count."""
    frames = {"golden": golden_frame, "xref": xref_frame, "customer360": customer360_frame}
    if what not in frames:
        raise ValueError(f"unknown export {what!r}; choose one of {', '.join(EXPORTS)}")
    frame = frames[what](store)
    write_table(frame, out, excel=excel)
    return len(frame)
