"""The sandbox WeChat Official Account server over real HTTP: tokens, follower paging, user info, tags."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from hub.sandbox import Endpoints, SandboxWorld


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> SandboxWorld:
    return SandboxWorld.create_or_load(tmp_path_factory.mktemp("wx") / "world", customers=250, seed=11)


@pytest.fixture(scope="module")
def ep(world: SandboxWorld) -> Iterator[Endpoints]:
    with world.serve() as endpoints:
        yield endpoints


def get_token(ep: Endpoints) -> str:
    r = requests.get(ep.wechat_url + "/cgi-bin/token",
                     params={"grant_type": "client_credential", "appid": ep.wechat_appid, "secret": ep.wechat_secret})
    body = r.json()
    assert r.status_code == 200 and body["expires_in"] == 7200
    return body["access_token"]


def call(ep: Endpoints, api: str, token: str, body: dict | None = None, **params: str) -> dict:
    u = f"{ep.wechat_url}/cgi-bin/{api}"
    r = (requests.post(u, params={"access_token": token, **params}, json=body) if body is not None
         else requests.get(u, params={"access_token": token, **params}))
    assert r.status_code == 200  # WeChat reports every error inside an HTTP 200 body
    return r.json()


def test_token_errors(ep: Endpoints) -> None:
    u = ep.wechat_url + "/cgi-bin/token"
    assert requests.get(u, params={"grant_type": "client_credential", "appid": "wxbad", "secret": "x"}).json()[
        "errcode"] == 40013
    assert requests.get(u, params={"grant_type": "client_credential", "appid": ep.wechat_appid,
                                   "secret": "bad"}).json()["errcode"] == 40125
    assert requests.get(u, params={"appid": ep.wechat_appid, "secret": ep.wechat_secret}).json()["errcode"] == 40002


def test_token_invalidation_and_expiry(world: SandboxWorld, ep: Endpoints) -> None:
    old = get_token(ep)
    assert "total" in call(ep, "user/get", old)
    new = get_token(ep)  # a new token retires the previous one after a 5-minute overlap
    assert "total" in call(ep, "user/get", old)
    world.wechat.advance_clock(301)
    try:
        assert call(ep, "user/get", old)["errcode"] == 40001
        assert "total" in call(ep, "user/get", new)
    finally:
        world.wechat.advance_clock(-301)
    world.wechat.token_grace_seconds = 0
    try:
        newer = get_token(ep)
        assert call(ep, "user/get", new)["errcode"] == 40001
        assert "total" in call(ep, "user/get", newer)
        new = newer
    finally:
        world.wechat.token_grace_seconds = 300
    assert call(ep, "user/get", "not-a-token")["errcode"] == 40001
    assert requests.get(ep.wechat_url + "/cgi-bin/user/get").json()["errcode"] == 41001
    world.wechat.advance_clock(7201)
    try:
        body = call(ep, "user/get", new)
        assert body["errcode"] == 42001 and body["errmsg"].startswith("access_token expired")
        assert "total" in call(ep, "user/get", get_token(ep))
    finally:
        world.wechat.advance_clock(-7201)


def test_follower_paging_covers_everyone_once(world: SandboxWorld, ep: Endpoints) -> None:
    tok = get_token(ep)
    expected = world.wechat.followers()
    assert len(expected) > 40
    world.wechat.page_size = 40  # real page size is 10 000; a small one exercises the cursor
    try:
        seen: list[str] = []
        nxt = ""
        calls = 0
        while True:
            body = call(ep, "user/get", tok, next_openid=nxt)
            calls += 1
            assert body["total"] == len(expected)
            if "data" not in body or not body["next_openid"]:
                assert body["count"] == 0 and body["next_openid"] == ""
                break
            assert body["count"] == len(body["data"]["openid"]) <= 40
            seen += body["data"]["openid"]
            nxt = body["next_openid"]
            assert nxt == seen[-1]  # the cursor is the last openid, even on the last page (WeChat quirk)
        assert seen == expected
        assert calls == -(-len(expected) // 40) + 1
        assert call(ep, "user/get", tok, next_openid="oNotAFollower")["errcode"] == 40003
    finally:
        world.wechat.page_size = 10000
    full = call(ep, "user/get", tok)
    assert full["count"] == len(expected) and full["data"]["openid"] == expected


def test_user_info_batchget(world: SandboxWorld, ep: Endpoints) -> None:
    tok = get_token(ep)
    openids = world.wechat.followers()
    body = call(ep, "user/info/batchget", tok, {"user_list": [{"openid": o, "lang": "zh_CN"} for o in openids[:100]]})
    users = body["user_info_list"]
    assert [u["openid"] for u in users] == openids[:100]
    u = users[0]
    for key in ("subscribe", "openid", "nickname", "sex", "language", "city", "province", "country",
                "subscribe_time", "remark", "groupid", "tagid_list", "subscribe_scene", "qr_scene", "qr_scene_str"):
        assert key in u, key
    assert any("unionid" in x for x in users) and not all("unionid" in x for x in users)
    assert "city_zh" not in u
    en = call(ep, "user/info", tok, openid=openids[0], lang="en")
    assert en["openid"] == openids[0]
    too_many = call(ep, "user/info/batchget", tok, {"user_list": [{"openid": o} for o in openids[:101]]})
    assert too_many["errcode"] == 40032
    assert call(ep, "user/info/batchget", tok, {"user_list": [{"openid": "nope"}]})["errcode"] == 40003
    assert requests.get(ep.wechat_url + "/cgi-bin/user/info/batchget",
                        params={"access_token": tok}).json()["errcode"] == 43002
    world.wechat.profile_fields = "current"  # WeChat since 2021-12-27: no nickname/avatar/location
    try:
        cur = call(ep, "user/info", tok, openid=openids[0])
        assert "nickname" not in cur and "headimgurl" not in cur and cur["subscribe"] == 1
    finally:
        world.wechat.profile_fields = "legacy"


def test_tags(world: SandboxWorld, ep: Endpoints) -> None:
    tok = get_token(ep)
    created = call(ep, "tags/create", tok, {"tag": {"name": "hub:vip"}})
    tid = created["tag"]["id"]
    assert created["tag"]["name"] == "hub:vip"
    assert call(ep, "tags/create", tok, {"tag": {"name": "hub:vip"}})["errcode"] == 45157
    assert call(ep, "tags/create", tok, {"tag": {"name": "超长的标签名字超长的标签名字"}})["errcode"] == 45158
    openids = world.wechat.followers()[:51]
    assert call(ep, "tags/members/batchtagging", tok, {"openid_list": openids, "tagid": tid})["errcode"] == 40032
    ok = call(ep, "tags/members/batchtagging", tok, {"openid_list": openids[:50], "tagid": tid})
    assert ok == {"errcode": 0, "errmsg": "ok"}
    assert call(ep, "tags/members/batchtagging", tok, {"openid_list": openids[:2], "tagid": 99999})["errcode"] == 45159
    tags = {t["id"]: t for t in call(ep, "tags/get", tok)["tags"]}
    assert tags[tid]["count"] == 50 and tags[tid]["name"] == "hub:vip"
    assert tid in call(ep, "tags/getidlist", tok, {"openid": openids[0]})["tagid_list"]
    members = call(ep, "user/tag/get", tok, {"tagid": tid, "next_openid": ""})
    assert members["count"] == 50
    assert call(ep, "tags/members/batchuntagging", tok, {"openid_list": openids[:10], "tagid": tid})["errcode"] == 0
    assert {t["id"]: t for t in call(ep, "tags/get", tok)["tags"]}[tid]["count"] == 40
    assert call(ep, "user/info/updateremark", tok, {"openid": openids[0], "remark": "golden G-1"})["errcode"] == 0
    assert call(ep, "user/info", tok, openid=openids[0])["remark"] == "golden G-1"
    assert call(ep, "tags/update", tok, {"tag": {"id": 2, "name": "x"}})["errcode"] == 45058


def test_customer_service_records(world: SandboxWorld, ep: Endpoints) -> None:
    """``customservice/msgrecord/getmsglist``: one-day windows, msgid continuation, number ≤ 10 000."""
    tok = get_token(ep)
    msgs = world.wechat.messages
    assert msgs and all(a["time"] <= b["time"] for a, b in zip(msgs, msgs[1:], strict=False))
    day0 = msgs[len(msgs) // 2]["time"] - 43200
    want = [m for m in msgs if day0 <= m["time"] <= day0 + 86400]
    u = ep.wechat_url + "/customservice/msgrecord/getmsglist"
    got, msgid = [], 1
    while True:
        body = requests.post(u, params={"access_token": tok}, json={
            "starttime": day0, "endtime": day0 + 86400, "msgid": msgid, "number": 2}).json()
        assert set(body) == {"recordlist", "number", "msgid"} and body["number"] == len(body["recordlist"])
        got += body["recordlist"]
        if body["number"] < 2:
            break
        msgid = body["msgid"]
    assert got == want
    r = got[0] if got else msgs[0]
    assert set(r) == {"openid", "opercode", "text", "time", "worker"} and r["opercode"] in (2002, 2003)
    too_long = requests.post(u, params={"access_token": tok}, json={
        "starttime": day0, "endtime": day0 + 86401, "msgid": 1, "number": 10}).json()
    assert too_long["errcode"] == 40097
    assert requests.post(u, json={"starttime": 0, "endtime": 1}).json()["errcode"] == 41001
    followers = set(world.wechat.users)
    assert all(m["openid"] in followers for m in msgs)
