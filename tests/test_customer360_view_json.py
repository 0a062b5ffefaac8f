"""The fast writer of the 360 view (``hub.view_json``) writes what pydantic's validate + dump writes, or declines.

For every model the view holds: any value either comes out exactly as ``model_validate(v).model_dump(mode="json")``
(key order included) or raises ``Slow`` (the build then validates with the model); a value pydantic rejects is
never written. Values in dump form — what staging and the golden stage store — are taken by the fast writer.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from hub.customer360 import _RfmFigures, view_record
from hub.models import (
    Address,
    Consent,
    Customer360,
    GoldenCustomer,
    Interaction,
    Order,
    OrderLine,
    Rfm,
    Shipment,
)
from hub.view_json import Slow, model_writer

# values pydantic reads and writes otherwise, or rejects, beside the forms it writes itself
ODD = st.sampled_from([
    " 1.5", "1e2", "1_000", "NaN", "Infinity", "-0", "0.00", "1E+2", "12", "12.50", "abc", "",
    "2024-01-01T10:00:00", "2024-01-01T10:00:00.123456", "2024-01-01T10:00:00.123", "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00+08:00", "2024-01-01 10:00:00", "2024-01-01", "2024-13-01T00:00:00", "2024-02-30",
    "20240101", "1700000000", "call", "billing", "mobile", "yes", "true", "inbound",
    0, 1, -3, 2**70, True, False, 1.5, 0.1, 1e-05, 1e300, float("nan"), float("inf"), -0.0,
    Decimal("1.50"), Decimal("1E+2"), Decimal("NaN"), datetime(2024, 1, 1, 10), datetime(2024, 1, 1, 10, 0, 0, 5),
    datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=8))), date(2024, 1, 1),
    [], {}, ("a",), ["a", 1], None,
])


def _value(annotation: Any, depth: int = 0, canonical: bool = False) -> st.SearchStrategy[Any]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_value(a, depth, canonical) for a in get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if origin is Literal:
        return st.sampled_from(get_args(annotation))
    if origin is list:
        return st.lists(_value(get_args(annotation)[0], depth + 1, canonical), max_size=3)
    if origin is dict:
        return st.just({})
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _record(annotation, depth + 1, canonical=canonical)
    return {
        str: st.text(max_size=8),
        int: st.integers(),
        bool: st.booleans(),
        float: st.floats(allow_nan=True, allow_infinity=True),
        Decimal: st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
        datetime: st.datetimes(min_value=datetime(1900, 1, 1)).map(datetime.isoformat),
        date: st.dates().map(date.isoformat),
    }[annotation]


def _record(model: type[BaseModel], depth: int = 0, exclude: frozenset[str] = frozenset(),
            canonical: bool = False) -> st.SearchStrategy[dict]:
    """A dict for ``model``: in dump form mostly, now and then a field odd, missing, or an extra key
    (``canonical``: values of the field's type only, no extra key)."""
    fields = {n: f for n, f in model.model_fields.items() if n not in exclude}
    field_value = {n: (_value(f.annotation, depth, True) if canonical
                       else st.one_of(_value(f.annotation, depth), ODD) if depth < 3 else ODD)
                   for n, f in fields.items()}
    return st.fixed_dictionaries(
        {n: s for n, s in field_value.items() if fields[n].is_required()},
        optional={**{n: s for n, s in field_value.items() if not fields[n].is_required()},
                  **({} if canonical else {"not_a_field": st.integers()})},
    )


def _dumped(model: type[BaseModel], value: Any, exclude: Any = None) -> Any:
    return model.model_validate(value).model_dump(mode="json", exclude=exclude)


def _same_or_slow(model: type[BaseModel], writer: Any, value: Any, exclude: Any = None) -> bool:
    try:
        expected = _dumped(model, value, exclude)
    except ValidationError:
        expected = None
    try:
        got = writer(value)
    except Slow:
        return False
    assert expected is not None, "written where pydantic rejects"
    # equal with the key order (the stored text keeps it) and the JSON types
    assert json.dumps(got, allow_nan=True) == json.dumps(expected, allow_nan=True)
    return True


MODELS = [Address, Consent, OrderLine, Order, Shipment, Interaction, Rfm]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_writer_equals_pydantic_or_declines(model: type[BaseModel], data: st.DataObject) -> None:
    _same_or_slow(model, model_writer(model), data.draw(_record(model)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_record(GoldenCustomer, exclude=frozenset({"lineage"})))
def test_fast_profile_writer_equals_pydantic_or_declines(value: dict) -> None:
    _same_or_slow(GoldenCustomer, model_writer(GoldenCustomer, exclude=("lineage",)), value, {"lineage"})


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_dump_form_is_taken(data: st.DataObject) -> None:
    """What the models dump is what the fast writer takes (it would be no faster otherwise)."""
    for model in MODELS:
        try:
            inst = model.model_validate(data.draw(_record(model, canonical=True)))
        except ValidationError:
            continue
        dumped = inst.model_dump(mode="json")
        assert _same_or_slow(model, model_writer(model), dumped), model.__name__


def _data(**over: Any) -> dict[str, Any]:
    order = Order(source="erp", source_id="7", order_number="SO7", status="completed", currency="CNY",
                  total=Decimal("178.00"), ordered_at=datetime(2024, 3, 1, 9, 30),
                  updated_at=datetime(2024, 3, 2, 10, 0, 0, 120000),
                  lines=[OrderLine(sku="7", description="蜂蜜 500g", quantity=Decimal(2), unit_price=Decimal("89.0000"))]
                  ).model_dump(mode="json")
    ship = Shipment(source="erp", source_id="9", order_source_id="7", status="shipped", planned_date=date(2024, 3, 3),
                    delivery_address=Address(kind="shipping", city="上海")).model_dump(mode="json")
    profile = GoldenCustomer(golden_id="G000000001", full_name="陈伟", emails=["a@example.com"],
                             birth_date=date(1980, 2, 29), consent=Consent(email=True), quality_score=0.875,
                             addresses=[Address(kind="home", country="CN")]).model_dump(mode="json")
    profile.pop("lineage")
    data = {
        "golden_id": "G000000001", "profile": profile, "orders_count": 1, "total_spent": Decimal("178.00"),
        "currency": "CNY", "first_order_at": datetime(2024, 3, 1, 9, 30), "last_order_at": datetime(2024, 3, 1, 9, 30),
        "recent_orders": [{**order, "extra_key_filtered": 1}], "shipments_count": 1, "open_shipments": 1,
        "open_shipment_list": [ship], "last_shipment_status": "shipped", "calls_count": 1,
        "last_call_at": datetime(2024, 3, 4, 8, 0, 0, 1),
        "recent_calls": [{"source": "callcenter", "source_id": "1.2", "kind": "call", "phone": "+8613800138000",
                          "occurred_at": datetime(2024, 3, 4, 8, 0, 0, 1), "direction": "inbound", "duration_s": 30}],
        "social_follows": 0, "social_accounts": ["social:o1"],
        "rfm": _RfmFigures(12, 1, Decimal("178.00"), 3, 2, None), "value_tier": "bronze", "lifecycle": "active",
        "segment": "regular", "consent": profile["consent"],
    }
    return {**data, **over}


def _by_model(data: dict[str, Any]) -> dict[str, Any]:
    """What build_360 wrote before the fast writer: the view validated and dumped by pydantic."""
    view = Customer360.model_validate({
        **data,
        "recent_orders": [{k: v for k, v in o.items() if k in Order.model_fields} for o in data["recent_orders"]],
        "open_shipment_list": [{k: v for k, v in s.items() if k in Shipment.model_fields}
                               for s in data["open_shipment_list"]],
        "rfm": Rfm(**data["rfm"]._asdict()),
    })
    return view.model_dump(mode="json", exclude={"computed_at": True, "profile": {"lineage"}})


def test_view_record_equals_the_models_dump() -> None:
    data = _data()
    record, exact = view_record(data)
    assert exact
    assert json.dumps(record, ensure_ascii=False) == json.dumps(_by_model(data), ensure_ascii=False)


@pytest.mark.parametrize("over", [
    {"total_spent": Decimal("1E+2")},                      # written by the fast writer too (str of the Decimal)
    {"first_order_at": datetime(2024, 1, 1, tzinfo=UTC)},  # aware: pydantic writes "Z"
    {"segment": 5},                                        # pydantic rejects an int for a str
    {"lifecycle": "unknown"},
    {"profile": {**_data()["profile"], "quality_score": 1e-05}},  # orjson would write it otherwise
    {"profile": {**_data()["profile"], "birth_date": "1980-2-29"}},
    {"consent": {"email": "yes"}},
])
def test_view_record_odd_values_as_the_model_has_them(over: dict[str, Any]) -> None:
    data = _data(**over)
    try:
        expected = _by_model(data)
    except ValidationError:
        with pytest.raises(ValidationError):
            view_record(data)
        return
    record, _ = view_record(data)
    assert json.dumps(record, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)
