"""Fault injection fires exactly on the configured calls, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hub.sandbox import Endpoints, FaultPlan, FaultRule, SandboxWorld
from hub.sandbox.faults import ENV_VAR

ORDERS = "/wp-json/wc/v3/orders"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path_factory.mktemp("faults") / "world", customers=60, seed=5)


@pytest.fixture
def ep(world: SandboxWorld) -> Iterator[Endpoints]:
    with world.serve() as endpoints:
        yield endpoints
    world.faults = None


def shop_get(ep: Endpoints, session: requests.Session | None = None, **kw: object) -> requests.Response:
    return (session or requests).get(ep.webshop_url + ORDERS, auth=(ep.webshop_key, ep.webshop_secret),
                                      params={"per_page": 5}, **kw)


def test_parse_spec() -> None:
    plan = FaultPlan.parse("webshop:429@3-5:retry_after=2 ; wechat:45011@2 ; *:503@7:path=/orders")
    assert plan.rules == [FaultRule("webshop", "429", 3, 5, retry_after=2.0),
                          FaultRule("wechat", "45011", 2, 2), FaultRule("*", "503", 7, 7, path="/orders")]
    with pytest.raises(ValueError):
        FaultPlan.parse("webshop:teapot@1")


def test_429_on_calls_3_to_5(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "webshop:429@3-5:retry_after=2"
    codes = [shop_get(ep) for _ in range(7)]
    assert [r.status_code for r in codes] == [200, 200, 429, 429, 429, 200, 200]
    assert codes[2].headers["Retry-After"] == "2"
    assert codes[2].json()["data"]["status"] == 429


def test_5xx_burst_and_path_filter(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = FaultPlan([FaultRule("webshop", "503", 2, 3, path="/orders")])
    customers = requests.get(ep.webshop_url + "/wp-json/wc/v3/customers", auth=(ep.webshop_key, ep.webshop_secret))
    assert customers.status_code == 200  # not counted: the rule is for /orders only
    assert [shop_get(ep).status_code for _ in range(4)] == [200, 503, 503, 200]
    assert [f[1:] for f in world.fault_controller.fired] == [("503", 2), ("503", 3)]


def test_slow_response_times_out(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "webshop:slow@1:delay=1.5"
    with pytest.raises(requests.exceptions.ReadTimeout):
        shop_get(ep, timeout=0.3)
    assert shop_get(ep, timeout=5).status_code == 200


def test_stall_carries_the_write_out_then_answers_late(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "webshop:stall@1:delay=1.5"
    cid = sorted(world.shop.customers)[0]
    url = f"{ep.webshop_url}/wp-json/wc/v3/customers/{cid}"
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.put(url, json={"meta_data": [{"key": "hub_segment", "value": "stalled"}]},
                     auth=(ep.webshop_key, ep.webshop_secret), timeout=0.3)
    meta = {m["key"]: m["value"] for m in world.shop.customers[cid]["meta_data"]}
    assert meta["hub_segment"] == "stalled"  # done, though the client never heard so


def test_truncated_body(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "webshop:truncate@1"
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        shop_get(ep)
    assert shop_get(ep).json()


def test_connection_dropped_between_pages(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "webshop:drop@2"
    with requests.Session() as sess:
        assert shop_get(ep, sess).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            shop_get(ep, sess)
        assert shop_get(ep, sess).status_code == 200  # a retry on a fresh connection works


def test_wechat_errcodes_on_nth_call(world: SandboxWorld, ep: Endpoints) -> None:
    world.faults = "wechat:45011@2;wechat:40001@4"
    tok = requests.get(ep.wechat_url + "/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": ep.wechat_appid, "secret": ep.wechat_secret}).json()
    assert "access_token" in tok  # call 1
    bodies = [requests.get(ep.wechat_url + "/cgi-bin/user/get", params={"access_token": tok["access_token"]})
              for _ in range(4)]  # calls 2..5
    assert all(r.status_code == 200 for r in bodies)
    codes = [r.json().get("errcode", 0) for r in bodies]
    assert codes == [45011, 0, 40001, 0]


def test_env_var(monkeypatch: pytest.MonkeyPatch, world: SandboxWorld) -> None:
    monkeypatch.setenv(ENV_VAR, "wechat:45009@1")
    again = SandboxWorld.create_or_load(world.dir)
    assert again.faults.rules == [FaultRule("wechat", "45009", 1, 1)]
