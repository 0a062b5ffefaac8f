"""Reading the store in bulk for the quality passes (every staged customer, every golden record).

The store's column type decodes each JSON value with ``hub.store.json_value``: orjson, unless a run of 19 digits
(a possible integer beyond 64 bits, which orjson reads as a float) sends it to ``json.loads``. On the staged
customers that digit search (a regular expression over ~1 KB of mostly non-ASCII text) costs three times the
decoding itself. Here the column is selected as its text (``as_text``) and decoded by ``loads``: the same rule,
with the digit runs found by a byte translation and a substring search — ASCII digits only, the only ones a
JSON number is written with. Same values as ``json_value`` and ``json.loads``.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa

_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", b"\0" * 10)
_LONG_RUN = b"\0" * 19  # JSON text holds no raw NUL: only a run of 19 digits reads as this


def as_text(column: Any, dialect: str) -> Any:
    """The JSON column as its stored text, not decoded by the driver or the column type: on SQLite as bytes
    (the driver's UTF-8 decoding to str would only be undone for orjson), elsewhere as text."""
    return sa.cast(column, sa.LargeBinary if dialect == "sqlite" else sa.Text)


def loads(text: str | bytes | None) -> Any:
    """A JSON column's text as ``hub.store.json_value`` (and ``json.loads``) reads it; None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        try:
            raw = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: only json.loads reads it
            return json.loads(text)
    else:
        raw = bytes(text)
    if _LONG_RUN not in raw.translate(_DIGITS_TO_NUL):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # NaN, infinities, ...: json.loads reads them
    return json.loads(raw.decode() if isinstance(text, bytes | bytearray | memoryview) else text)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector over a pass (a context manager or a decorator); reference counting
    still frees everything. A pass keeps hundreds of thousands of small containers alive (identifier tuples,
    name words, golden memberships) and allocates more for every record, so the collector would traverse the
    live ones again and again (the brake at 100k customers: ~0.9 of 3.4 CPU s). A pass makes no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
