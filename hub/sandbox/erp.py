"""The sandbox ERP: a SQL database with Tryton-style table and column names.

SQLite file by default; any SQLAlchemy URL works (PostgreSQL, MariaDB).  Tables (all with ``id``,
``create_date``, ``write_date``; timestamps are naive UTC like Tryton's):

- ``party_party`` (code, name, active)
- ``party_address`` (party, name, street, postal_code, city, subdivision_name, country_code, active)
  — Tryton keeps subdivision/country as foreign keys; here they are denormalised to name / ISO code.
- ``party_contact_mechanism`` (party, type ``phone``/``mobile``/``email``, value, active)
- ``party_identifier`` (party, type e.g. ``cn_ric`` or ``hub_golden_id``, code)
- ``party_category`` (name, parent, active) + ``party_party_category_rel`` (party, category)
- ``product_product`` (code, name, list_price)
- ``sale_sale`` (party, number, reference, sale_date, state, currency (ISO code), total_amount, shipment_address)
- ``sale_line`` (sale, product, quantity, unit_price, description)
- ``stock_shipment_out`` (number, customer, delivery_address, carrier, reference = tracking number, state,
  planned_date, effective_date, origin_sale)

Faithful to Tryton (reference tryton.md §5): ``write_date`` is NULL on rows never written after creation
(most addresses, identifiers, some sales and sale lines), so incremental readers need
``coalesce(write_date, create_date)``; a child row's change does not touch its parent's ``write_date``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()


def _stamps() -> list[sa.Column]:
    # the ORM fills create_date in Tryton; a server default does it for plain SQL inserts here
    return [sa.Column("create_date", sa.DateTime, nullable=False, server_default=sa.func.current_timestamp()),
            sa.Column("write_date", sa.DateTime)]


party_party = sa.Table(
    "party_party", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(64), unique=True),
    sa.Column("name", sa.String(255)),
    sa.Column("active", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    *_stamps(),
)
party_address = sa.Table(
    "party_address", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.Integer, sa.ForeignKey("party_party.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("name", sa.String(255)),
    sa.Column("street", sa.String(512)),
    sa.Column("postal_code", sa.String(32)),
    sa.Column("city", sa.String(128)),
    sa.Column("subdivision_name", sa.String(128)),
    sa.Column("country_code", sa.String(2)),
    sa.Column("active", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    *_stamps(),
)
party_contact_mechanism = sa.Table(
    "party_contact_mechanism", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.Integer, sa.ForeignKey("party_party.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("value", sa.String(255)),
    sa.Column("active", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    *_stamps(),
)
party_identifier = sa.Table(
    "party_identifier", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.Integer, sa.ForeignKey("party_party.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("type", sa.String(64)),
    sa.Column("code", sa.String(255), nullable=False),
    *_stamps(),
)
party_category = sa.Table(
    "party_category", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("parent", sa.Integer, sa.ForeignKey("party_category.id")),
    sa.Column("active", sa.Boolean, nullable=False, default=True, server_default=sa.true()),
    *_stamps(),
)
party_party_category_rel = sa.Table(
    "party_party_category_rel", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.Integer, sa.ForeignKey("party_party.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("category", sa.Integer, sa.ForeignKey("party_category.id", ondelete="CASCADE"), nullable=False),
    *_stamps(),
    sa.UniqueConstraint("party", "category", name="party_party_category_rel_uniq"),
)
product_product = sa.Table(
    "product_product", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(64)),
    sa.Column("name", sa.String(255)),
    sa.Column("list_price", sa.Numeric(16, 4)),
    *_stamps(),
)
sale_sale = sa.Table(
    "sale_sale", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party", sa.Integer, sa.ForeignKey("party_party.id"), nullable=False, index=True),
    sa.Column("number", sa.String(64)),
    sa.Column("reference", sa.String(255)),
    sa.Column("sale_date", sa.Date),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total_amount", sa.Numeric(16, 2)),
    sa.Column("shipment_address", sa.Integer, sa.ForeignKey("party_address.id")),
    *_stamps(),
)
sale_line = sa.Table(
    "sale_line", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sale", sa.Integer, sa.ForeignKey("sale_sale.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("product", sa.Integer, sa.ForeignKey("product_product.id")),
    sa.Column("quantity", sa.Float),
    sa.Column("unit_price", sa.Numeric(16, 4)),
    sa.Column("description", sa.Text),
    *_stamps(),
)
stock_shipment_out = sa.Table(
    "stock_shipment_out", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("number", sa.String(64)),
    sa.Column("customer", sa.Integer, sa.ForeignKey("party_party.id"), nullable=False, index=True),
    sa.Column("delivery_address", sa.Integer, sa.ForeignKey("party_address.id")),
    sa.Column("carrier", sa.String(128)),
    sa.Column("reference", sa.String(128)),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("planned_date", sa.Date),
    sa.Column("effective_date", sa.Date),
    sa.Column("origin_sale", sa.Integer, sa.ForeignKey("sale_sale.id")),
    *_stamps(),
)

# insertion order respects foreign keys
TABLE_ORDER = ("party_party", "party_address", "party_contact_mechanism", "party_identifier", "party_category",
               "party_party_category_rel", "product_product", "sale_sale", "sale_line", "stock_shipment_out")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def erp_now() -> datetime:
    """Tryton-style naive UTC timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def make_engine(url: str) -> sa.Engine:
    return sa.create_engine(url, future=True)


def has_schema(engine: sa.Engine) -> bool:
    return sa.inspect(engine).has_table("party_party")


def create_erp(url: str, tables: dict[str, list[dict]], chunk: int = 5000) -> None:
    """Create the schema and bulk-load generated rows (explicit ids, then sequences are fixed up)."""
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for name in TABLE_ORDER:
                rows = tables.get(name, [])
                for i in range(0, len(rows), chunk):
                    conn.execute(metadata.tables[name].insert(), rows[i:i + chunk])
            if engine.dialect.name == "postgresql":
                # explicit ids do not advance serial sequences on PostgreSQL
                for name in TABLE_ORDER:
                    conn.execute(sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"))
    finally:
        engine.dispose()


def insert_rows(conn: sa.Connection, name: str, rows: list[dict]) -> None:
    if rows:
        conn.execute(metadata.tables[name].insert(), rows)


def max_ids(conn: sa.Connection) -> dict[str, int]:
    return {name: conn.execute(sa.select(sa.func.max(metadata.tables[name].c.id))).scalar() or 0
            for name in TABLE_ORDER}


def drop_erp(url: str) -> None:
    engine = make_engine(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()
