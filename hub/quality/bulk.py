"""Reading the store in bulk for the quality passes (every staged customer, every golden record).

The column is selected as its stored text (``as_text``: bytes on SQLite, no str round trip) and decoded by
``loads``, the store's own ``json_value`` rule (orjson where it agrees with ``json.loads``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hub.store import json_value


def as_text(column: Any, dialect: str) -> Any:
    """The JSON column as its stored text, not decoded by the driver or the column type: on SQLite as bytes
    (the driver's UTF-8 decoding to str would only be undone for orjson), elsewhere as text."""
    return sa.cast(column, sa.LargeBinary if dialect == "sqlite" else sa.Text)


def loads(text: str | bytes | None) -> Any:
    """A JSON column's text as the column type (``hub.store.json_value``) and ``json.loads`` read it; None stays
    None."""
    return None if text is None else json_value(text)
