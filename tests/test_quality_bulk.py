"""Bulk passes decode JSON columns themselves (``hub.store.as_text``, read by ``json_value``): the values must be
json.loads' (and the store's column type's), on every text the store can hold — including the ones orjson reads
otherwise."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from hub.store import Store, as_text, json_value, staged_record

TEXTS = [
    '{"a":1,"b":[true,false,null],"c":"中文","d":1.5}',
    '{"national_id":12345678901234567890123}',  # beyond 64 bits: orjson would read a float
    '[18446744073709551616, -9223372036854775809]',
    '{"n":1234567890123456789}',  # 19 digits, within 64 bits
    '{"phone":"+8613800138000","id":"１２３４５６７８９０１２３４５６７８９０"}',  # full-width digits in a string
    '{"x":NaN,"y":Infinity,"z":-Infinity}',  # json.loads reads them, orjson does not
    '[1e400]',
    '"\\ud800"',  # a lone surrogate, escaped
    '{"a":"x","a":"y"}',
    '[]',
    'null',
]


def _same(a: object, b: object) -> bool:
    # NaN != NaN: compare the texts json.dumps writes, and the types (1 and 1.0 are equal)
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) and repr(a) == repr(b)


@pytest.mark.parametrize("text", TEXTS)
def test_loads_reads_what_json_loads_reads(text: str) -> None:
    expected = json.loads(text)
    for given in (text, text.encode()):
        assert _same(json_value(given), expected)
    assert _same(json_value(text), expected)
    assert json_value(None) is None


def test_a_lone_surrogate_in_the_text_itself_is_read_by_json_loads() -> None:
    text = '["\ud800"]'
    assert json_value(text) == json.loads(text)


def test_the_column_read_as_text_decodes_to_the_column_value(store: Store) -> None:
    records = [{"source": "erp", "source_id": str(i), "national_id": 10**22 + i, "name": {"display": "陈伟"},
                "score": 0.5, "flags": [None, True]} for i in range(3)]
    with store.begin() as conn:
        conn.execute(staged_record.insert(), [
            {"entity": "customers", "record_key": f"erp:{r['source_id']}", "source": "erp",
             "source_id": r["source_id"], "record": r, "quality_flags": [], "record_hash": "h",
             "staged_at": datetime(2026, 6, 1)} for r in records])
    with store.engine.connect() as conn:
        typed = conn.execute(sa.select(staged_record.c.record, staged_record.c.quality_flags)
                             .order_by(staged_record.c.record_key)).all()
        texts = conn.execute(sa.select(as_text(staged_record.c.record, conn.dialect.name),
                                       as_text(staged_record.c.quality_flags, conn.dialect.name))
                             .order_by(staged_record.c.record_key)).all()
    assert [(json_value(r), json_value(f)) for r, f in texts] == [tuple(row) for row in typed]
    assert [r for r, _ in typed] == records  # the long integers came back exact
