"""The sandbox WooCommerce server over real HTTP: shapes, headers, auth and error bodies, paging, writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hub.sandbox import Endpoints, SandboxWorld

API = "/wp-json/wc/v3"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path_factory.mktemp("shop") / "world", customers=150, seed=3)


@pytest.fixture(scope="module")
def ep(world: SandboxWorld) -> Iterator[Endpoints]:
    with world.serve() as endpoints:
        yield endpoints


@pytest.fixture
def s(ep: Endpoints) -> Iterator[requests.Session]:
    with requests.Session() as sess:
        sess.auth = (ep.webshop_key, ep.webshop_secret)
        yield sess


def url(ep: Endpoints, path: str) -> str:
    return ep.webshop_url + API + path


def test_customer_shape(ep: Endpoints, s: requests.Session) -> None:
    r = s.get(url(ep, "/customers"), params={"per_page": 5})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    c = r.json()[0]
    for key in ("id", "date_created", "date_created_gmt", "date_modified", "date_modified_gmt", "email",
                "first_name", "last_name", "role", "username", "billing", "shipping", "is_paying_customer",
                "avatar_url", "meta_data", "_links"):
        assert key in c, key
    assert set(c["billing"]) == {"first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                                 "postcode", "country", "email", "phone"}
    assert "email" not in c["shipping"]
    assert all(set(m) == {"id", "key", "value"} for m in c["meta_data"])
    # naive ISO dates; the site clock is GMT+8
    assert len(c["date_created"]) == 19 and "T" in c["date_created"]
    assert c["_links"]["self"][0]["href"].endswith(f"/customers/{c['id']}")
    one = s.get(url(ep, f"/customers/{c['id']}")).json()
    assert one["id"] == c["id"] and one["email"] == c["email"]


def test_auth_errors(ep: Endpoints) -> None:
    r = requests.get(url(ep, "/customers"))
    assert r.status_code == 401
    assert r.json() == {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.",
                        "data": {"status": 401}}
    r = requests.get(url(ep, "/orders"), auth=("ck_wrong", ep.webshop_secret))
    assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_authentication_error"
    assert r.json()["message"] == "Consumer key is invalid."
    r = requests.get(url(ep, "/orders"), auth=(ep.webshop_key, "cs_wrong"))
    assert r.status_code == 401 and r.json()["message"] == "Consumer secret is invalid."
    # query-string keys, for servers that do not pass the Authorization header through
    r = requests.get(url(ep, "/orders"), params={"consumer_key": ep.webshop_key, "consumer_secret": ep.webshop_secret})
    assert r.status_code == 200
    assert "consumer_secret" not in r.headers.get("Link", "")
    r = requests.put(url(ep, "/customers/25"), json={"first_name": "X"})
    assert r.status_code == 401 and r.json()["code"] == "woocommerce_rest_cannot_edit"


def test_param_errors_and_routes(ep: Endpoints, s: requests.Session) -> None:
    r = s.get(url(ep, "/orders"), params={"per_page": 101})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "rest_invalid_param" and body["message"] == "Invalid parameter(s): per_page"
    assert body["data"]["status"] == 400 and "per_page" in body["data"]["params"]
    assert s.get(url(ep, "/orders"), params={"page": 0}).json()["code"] == "rest_invalid_param"
    assert s.get(url(ep, "/customers"), params={"orderby": "email"}).status_code == 400
    assert s.get(url(ep, "/orders"), params={"modified_after": "yesterday"}).json()["data"]["params"] == {
        "modified_after": "Invalid date."}
    r = s.get(url(ep, "/customers/999999"))
    assert r.status_code == 404 and r.json() == {"code": "woocommerce_rest_invalid_id",
                                                  "message": "Invalid resource ID.", "data": {"status": 404}}
    assert s.get(url(ep, "/orders/1")).json()["code"] == "woocommerce_rest_shop_order_invalid_id"
    r = s.get(ep.webshop_url + "/wp-json/wc/v3/products")
    assert r.status_code == 404 and r.json()["code"] == "rest_no_route"


@pytest.mark.parametrize(("kind", "orderby", "order"), [
    ("customers", None, None), ("customers", "id", "desc"), ("customers", "registered_date", "asc"),
    ("orders", None, None), ("orders", "id", "asc"), ("orders", "modified", "asc"),
])
def test_paging_covers_every_record_once(world: SandboxWorld, ep: Endpoints, s: requests.Session, kind: str,
                                         orderby: str | None, order: str | None) -> None:
    expected = set(world.shop.customers if kind == "customers" else world.shop.orders)
    params: dict[str, object] = {"per_page": 17}
    if orderby:
        params.update(orderby=orderby, order=order)
    seen: list[int] = []
    page, pages = 1, None
    while True:
        r = s.get(url(ep, f"/{kind}"), params={**params, "page": page})
        assert r.status_code == 200
        assert int(r.headers["X-WP-Total"]) == len(expected)
        pages = int(r.headers["X-WP-TotalPages"])
        assert pages == -(-len(expected) // 17)
        seen += [x["id"] for x in r.json()]
        if 'rel="next"' not in r.headers.get("Link", ""):
            break
        page += 1
    assert page == pages
    assert len(seen) == len(set(seen)) and set(seen) == expected
    # past the end: an empty list, headers still there
    r = s.get(url(ep, f"/{kind}"), params={**params, "page": pages + 1})
    assert r.status_code == 200 and r.json() == [] and r.headers["X-WP-Total"] == str(len(expected))


def test_link_header(ep: Endpoints, s: requests.Session) -> None:
    r = s.get(url(ep, "/orders"), params={"per_page": 10, "page": 2})
    links = requests.utils.parse_header_links(r.headers["Link"])
    rels = {x["rel"]: x["url"] for x in links}
    assert set(rels) == {"first", "prev", "next", "last"}
    assert "page=3" in rels["next"] and "per_page=10" in rels["next"]
    assert s.get(rels["next"]).status_code == 200


def test_orders_default_order_and_modified_after(world: SandboxWorld, ep: Endpoints, s: requests.Session) -> None:
    got = s.get(url(ep, "/orders"), params={"per_page": 100}).json()
    created = [o["date_created_gmt"] for o in got]
    assert created == sorted(created, reverse=True)  # default orderby=date, order=desc
    o = got[0]
    assert {"line_items", "billing", "shipping", "customer_id", "total", "currency", "status"} <= set(o)
    assert isinstance(o["total"], str) and "." in o["total"]
    cut = sorted(x["date_modified_gmt"] for x in world.shop.orders.values())[len(world.shop.orders) // 2]
    want = {i for i, x in world.shop.orders.items() if x["date_modified_gmt"] > cut}
    r = s.get(url(ep, "/orders"), params={"modified_after": cut, "dates_are_gmt": "true", "per_page": 100})
    ids = {x["id"] for x in r.json()}
    total = int(r.headers["X-WP-Total"])
    assert total == len(want) and ids <= want
    # the same instant in the site clock (GMT+8) without dates_are_gmt
    from datetime import datetime, timedelta
    local = (datetime.fromisoformat(cut) + timedelta(hours=8)).isoformat()
    assert s.get(url(ep, "/orders"), params={"modified_after": local}).headers["X-WP-Total"] == str(len(want))
    assert s.get(url(ep, "/orders"), params={"modified_after": cut + "Z"}).headers["X-WP-Total"] == str(len(want))
    guest = [x for x in world.shop.orders.values() if x["customer_id"] == 0]
    assert guest, "guest orders (customer_id 0) exist"


def test_put_merges_meta_and_bumps_modified(world: SandboxWorld, ep: Endpoints, s: requests.Session) -> None:
    cid = next(iter(world.shop.customers))
    before = s.get(url(ep, f"/customers/{cid}")).json()
    body = {"meta_data": [{"key": "hub_golden_id", "value": "G-000001"}, {"key": "hub_segment", "value": "vip"}],
            "billing": {"phone": "+86 138-0013-8000"}}
    r = s.put(url(ep, f"/customers/{cid}"), json=body)
    assert r.status_code == 200
    after = r.json()
    meta = {m["key"]: m for m in after["meta_data"]}
    assert meta["hub_golden_id"]["value"] == "G-000001" and isinstance(meta["hub_golden_id"]["id"], int)
    assert after["billing"]["phone"] == "+86 138-0013-8000"
    assert after["billing"]["city"] == before["billing"]["city"]  # partial update keeps other fields
    assert after["date_modified_gmt"] > before["date_modified_gmt"]
    # same key again updates in place instead of adding a second entry
    r = s.post(url(ep, f"/customers/{cid}"), json={"meta_data": [{"key": "hub_golden_id", "value": "G-000002"}]})
    vals = [m["value"] for m in r.json()["meta_data"] if m["key"] == "hub_golden_id"]
    assert vals == ["G-000002"]
    r = s.put(url(ep, f"/customers/{cid}"), json={"email": "not-an-email"})
    assert r.status_code == 400 and r.json()["data"]["params"] == {"email": "Invalid email address."}


def test_create_customer(ep: Endpoints, s: requests.Session) -> None:
    r = s.post(url(ep, "/customers"), json={"email": "New.Person@Example.com", "first_name": "New"})
    assert r.status_code == 201
    c = r.json()
    assert c["email"] == "new.person@example.com" and r.headers["Location"].endswith(f"/customers/{c['id']}")
    r = s.post(url(ep, "/customers"), json={"email": "new.person@example.com"})
    assert r.status_code == 400 and r.json()["code"] == "registration-error-email-exists"


def test_state_persists_after_serve(tmp_path: Path) -> None:
    w = SandboxWorld.create_or_load(tmp_path / "w", customers=30, seed=9)
    with w.serve() as e:
        cid = next(iter(w.shop.customers))
        requests.put(e.webshop_url + API + f"/customers/{cid}", auth=(e.webshop_key, e.webshop_secret),
                     json={"meta_data": [{"key": "hub_golden_id", "value": "G-42"}]}).raise_for_status()
    again = SandboxWorld.create_or_load(tmp_path / "w", customers=30, seed=9)
    assert {m["key"]: m["value"] for m in again.shop.customers[cid]["meta_data"]}["hub_golden_id"] == "G-42"


def test_list_reflects_writes(world: SandboxWorld, ep: Endpoints, s: requests.Session) -> None:
    """List results are cached between writes; a write must show up in the next list call."""
    assert s.get(url(ep, "/customers"), params={"search": "zyxwvu"}).json() == []
    cid = sorted(world.shop.customers)[3]
    s.put(url(ep, f"/customers/{cid}"), json={"last_name": "Zyxwvu"}).raise_for_status()
    assert [c["id"] for c in s.get(url(ep, "/customers"), params={"search": "zyxwvu"}).json()] == [cid]
    before = s.get(url(ep, "/orders"), params={"status": "completed", "per_page": 1}).headers["X-WP-Total"]
    oid = next(i for i, o in world.shop.orders.items() if o["status"] != "completed")
    s.put(url(ep, f"/orders/{oid}"), json={"status": "completed"}).raise_for_status()
    after = s.get(url(ep, "/orders"), params={"status": "completed", "per_page": 1}).headers["X-WP-Total"]
    assert int(after) == int(before) + 1


def test_batch_update(world: SandboxWorld, ep: Endpoints, s: requests.Session) -> None:
    ids = sorted(world.shop.customers)[5:8]
    body = {"update": [{"id": i, "meta_data": [{"key": "hub_segment", "value": "loyal"}]} for i in ids]
            + [{"id": 999999, "first_name": "ghost"}]}
    r = s.post(url(ep, "/customers/batch"), json=body)
    assert r.status_code == 200
    res = r.json()["update"]
    assert [x["id"] for x in res[:3]] == ids
    assert all({m["key"]: m["value"] for m in x["meta_data"]}["hub_segment"] == "loyal" for x in res[:3])
    assert res[3]["error"]["code"] == "woocommerce_rest_invalid_id"
    big = {"update": [{"id": i} for i in range(1, 102)]}
    r = s.post(url(ep, "/customers/batch"), json=big)
    assert r.status_code == 413 and r.json()["code"] == "woocommerce_rest_request_entity_too_large"
    assert requests.post(url(ep, "/customers/batch"), json=body).status_code == 401
