"""A faithful local WeChat Official Account API (``/cgi-bin/...``) over stdlib ``http.server``.

Reproduces (see /work/shared/reference/api_shapes.md §2.1): ``cgi-bin/token`` (a new token retires the
previous one — after a 5-minute overlap, as the official access_token doc promises; ``token_grace_seconds=0``
makes it immediate; ``expires_in`` 7200, expiry simulated with ``state.advance_clock``), ``stable_token``,
``user/get`` cursor paging (≤10 000 per page; the last non-empty page still carries ``next_openid`` and the
follow-up call returns ``count: 0`` with no ``data``), ``user/info`` and ``user/info/batchget`` (≤100),
remarks, tags (create/get/update/delete, members/batchtagging ≤50, batchuntagging, getidlist, user/tag/get).
Every error is HTTP 200 with ``{"errcode","errmsg"}``.

``state.profile_fields`` = ``"legacy"`` (default: nickname, sex, city/province/country, headimgurl, as before
2021-12-27) or ``"current"`` (those fields removed, as WeChat does today).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from hub.sandbox._http import SandboxHandler, SandboxServer
from hub.sandbox._io import write_json_atomic
from hub.sandbox.faults import FaultController
from hub.sandbox.people import to_traditional

LEGACY_ONLY = ("nickname", "sex", "city", "province", "country", "headimgurl")
PUBLIC_USER_KEYS = ("subscribe", "openid", "nickname", "sex", "language", "city", "province", "country",
                    "headimgurl", "subscribe_time", "unionid", "remark", "groupid", "tagid_list", "subscribe_scene",
                    "qr_scene", "qr_scene_str")


class WeChatState:
    """Followers, tags and access tokens of one Official Account; JSON-persisted, lock-protected."""

    def __init__(self, users: list[dict], tags: list[dict], appid: str, secret: str, next_tag_id: int | None = None,
                 messages: list[dict] | None = None,
                 token_ttl: int = 7200, page_size: int = 10000, profile_fields: str = "legacy",
                 token_grace_seconds: float = 300):
        self.lock = threading.RLock()
        self.users: dict[str, dict] = {u["openid"]: u for u in users}  # insertion = follow order
        self.tags: dict[int, str] = {t["id"]: t["name"] for t in tags}
        # customer-service chat records in time order; msgid = position + 1 (ids grow with time)
        self.messages: list[dict] = sorted(messages or [], key=lambda m: m["time"])
        self.appid, self.secret = appid, secret
        self.next_tag_id = next_tag_id or max(self.tags, default=99) + 1
        self.token_ttl = token_ttl
        self.token_grace_seconds = token_grace_seconds
        self.page_size = page_size
        self.batch_limit = 100
        self.tagging_limit = 50
        self.profile_fields = profile_fields
        self.clock_offset = 0.0
        self.tokens: dict[str, float] = {}  # token -> expiry (state clock)
        self.retired: dict[str, float] = {}  # token -> end of its overlap with the newer token
        self.current_token: str | None = None
        self.stable_token: tuple[str, float] | None = None
        self._seq = 0

    # time is virtual so tests can expire tokens without sleeping two hours
    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    def issue_token(self) -> str:
        with self.lock:
            self._seq += 1
            tok = hashlib.sha256(f"{self.appid}:{self.secret}:{self._seq}:{time.time_ns()}".encode()).hexdigest()
            tok = ("80_" + tok * 2)[:136]
            # cgi-bin/token: fetching a new token retires the previous one (old and new overlap for the grace)
            if self.current_token in self.tokens:
                self.retired[self.current_token] = self.now() + self.token_grace_seconds
            self.current_token = tok
            self.tokens[tok] = self.now() + self.token_ttl
            return tok

    def rid(self) -> str:
        self._seq += 1
        return hashlib.md5(f"rid{self._seq}".encode()).hexdigest()[:24]  # noqa: S324 - request id, not security

    def followers(self) -> list[str]:
        return [o for o, u in self.users.items() if u.get("subscribe") == 1]

    def render_user(self, u: dict, lang: str) -> dict:
        if u.get("subscribe") != 1:
            out = {"subscribe": 0, "openid": u["openid"]}
            if "unionid" in u:
                out["unionid"] = u["unionid"]
            return out
        out = {k: u[k] for k in PUBLIC_USER_KEYS if k in u}
        if lang in ("zh_CN", "zh_TW"):
            for k in ("city", "province", "country"):
                zh = u.get(f"{k}_zh", "")
                out[k] = to_traditional(zh) if lang == "zh_TW" and zh else zh
        if self.profile_fields == "current":
            for k in LEGACY_ONLY:
                out.pop(k, None)
        return out

    def save(self, path: Path) -> None:
        with self.lock:
            write_json_atomic(path, {"appid": self.appid, "secret": self.secret, "next_tag_id": self.next_tag_id},
                              {"tags": [{"id": k, "name": v} for k, v in self.tags.items()],
                               "users": list(self.users.values()), "messages": self.messages})

    @classmethod
    def load(cls, path: Path) -> WeChatState:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(doc["users"], doc["tags"], doc["appid"], doc["secret"], doc["next_tag_id"],
                   doc.get("messages", []))


POST_ONLY = {"user/info/batchget", "user/info/updateremark", "tags/create", "tags/update", "tags/delete",
             "tags/members/batchtagging", "tags/members/batchuntagging", "tags/getidlist", "user/tag/get",
             "stable_token"}


class WeChatHandler(SandboxHandler):
    service = "wechat"
    server: SandboxServer

    @property
    def st(self) -> WeChatState:
        return self.server.state

    def rate_limited_body(self) -> Any:  # WeChat has no 429 of its own; a gateway in front might
        return {"errcode": 45011, "errmsg": "api minute-quota reach limit  mustslower  retry next minute"}

    def server_error_body(self, status: int) -> Any:
        return {"errcode": -1, "errmsg": "system error"}

    def err(self, code: int, msg: str) -> None:
        self.send_json(200, {"errcode": code, "errmsg": f"{msg} rid: {self.st.rid()}"})

    def ok(self, extra: dict | None = None) -> None:
        self.send_json(200, {"errcode": 0, "errmsg": "ok", **(extra or {})})

    def route(self, method: str) -> None:
        if self.route_path.rstrip("/") == "/customservice/msgrecord/getmsglist":
            self._msgrecord(method)
            return
        if not self.route_path.startswith("/cgi-bin/"):
            self.send_json(404, {"errcode": 404, "errmsg": "not found"})
            return
        api = self.route_path[len("/cgi-bin/"):].strip("/")
        handler = getattr(self, "api_" + api.replace("/", "_"), None)
        if handler is None:
            self.err(40066, "invalid url")
            return
        if api in POST_ONLY and method != "POST":
            self.err(43002, "require POST method")
            return
        with self.st.lock:
            if api in ("token", "stable_token"):
                handler()
                return
            if not self._check_token():
                return
            body: Any = None
            if method == "POST":
                try:
                    body = self.json_body()
                except (ValueError, UnicodeDecodeError):
                    self.err(47001, "data format error")
                    return
                if not isinstance(body, dict):
                    self.err(47001, "data format error")
                    return
            handler(body) if method == "POST" else handler()

    def _check_token(self) -> bool:
        tok = self.query.get("access_token")
        if not tok:
            self.err(41001, "access_token missing")
            return False
        st = self.st
        exp = st.tokens.get(tok)
        if exp is None and st.stable_token and st.stable_token[0] == tok:
            exp = st.stable_token[1]
        if exp is None or st.now() >= st.retired.get(tok, float("inf")):
            self.err(40001, "invalid credential, access_token is invalid or not latest")
            return False
        if st.now() >= exp:
            self.err(42001, "access_token expired")
            return False
        return True

    def _check_app(self, appid: str | None, secret: str | None, grant_type: str | None) -> bool:
        if grant_type != "client_credential":
            self.err(40002, "invalid grant_type")
        elif appid != self.st.appid:
            self.err(40013, "invalid appid")
        elif secret != self.st.secret:
            self.err(40125, "invalid appsecret")
        else:
            return True
        return False

    def _msgrecord(self, method: str) -> None:
        """``POST /customservice/msgrecord/getmsglist``: chats between starttime and endtime (≤ 24 h apart),
        from ``msgid`` on, at most ``number`` (≤ 10 000) records; ``number`` < requested means "no more"."""
        if method != "POST":
            self.err(43002, "require POST method")
            return
        with self.st.lock:
            if not self._check_token():
                return
            try:
                body = self.json_body()
            except (ValueError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                self.err(47001, "data format error")
                return
            try:
                start, end = int(body["starttime"]), int(body["endtime"])
                msgid, number = int(body.get("msgid", 1)), int(body.get("number", 10000))
            except (KeyError, TypeError, ValueError):
                self.err(40097, "invalid args")  # errcode for bad arguments: INFERRED, not from the reference
                return
            if end < start or end - start > 86400 or not 1 <= number <= 10000 or msgid < 1:
                self.err(40097, "invalid args")
                return
            out, next_id = [], msgid
            for i in range(msgid - 1, len(self.st.messages)):
                m = self.st.messages[i]
                if m["time"] > end or len(out) >= number:
                    break
                if m["time"] >= start:
                    out.append(dict(m))
                    next_id = i + 2
            # the returned msgid is where the next call continues (passing it back never repeats a record)
            self.send_json(200, {"recordlist": out, "number": len(out), "msgid": next_id})

    # ------------------------------------------------------------------ token
    def api_token(self) -> None:
        q = self.query
        if self._check_app(q.get("appid"), q.get("secret"), q.get("grant_type")):
            self.send_json(200, {"access_token": self.st.issue_token(), "expires_in": self.st.token_ttl})

    def api_stable_token(self) -> None:
        try:
            body = self.json_body() or {}
        except ValueError:
            self.err(47001, "data format error")
            return
        if not self._check_app(body.get("appid"), body.get("secret"), body.get("grant_type")):
            return
        st = self.st
        with st.lock:
            if body.get("force_refresh") or not st.stable_token or st.stable_token[1] <= st.now():
                st._seq += 1
                tok = ("81_" + hashlib.sha256(f"stable{st._seq}{time.time_ns()}".encode()).hexdigest() * 2)[:136]
                st.stable_token = (tok, st.now() + st.token_ttl)
            tok, exp = st.stable_token
        self.send_json(200, {"access_token": tok, "expires_in": max(int(exp - st.now()), 0)})

    # ------------------------------------------------------------------ users
    def api_user_get(self) -> None:
        st = self.st
        followers = st.followers()
        nxt = self.query.get("next_openid", "")
        start = 0
        if nxt:
            try:
                start = followers.index(nxt) + 1
            except ValueError:
                self.err(40003, "invalid openid")
                return
        page = followers[start:start + st.page_size]
        if not page:
            # WeChat quirk: after the last page the cursor call returns no data and an empty cursor
            self.send_json(200, {"total": len(followers), "count": 0, "next_openid": ""})
            return
        # ... and the last non-empty page still returns its last openid as next_openid
        self.send_json(200, {"total": len(followers), "count": len(page), "data": {"openid": page},
                             "next_openid": page[-1]})

    def api_user_info(self) -> None:
        u = self.st.users.get(self.query.get("openid", ""))
        if u is None:
            self.err(40003, "invalid openid")
            return
        self.send_json(200, self.st.render_user(u, self.query.get("lang", "zh_CN")))

    def api_user_info_batchget(self, body: dict) -> None:
        items = body.get("user_list")
        if not isinstance(items, list) or not items or len(items) > self.st.batch_limit:
            self.err(40032, "invalid openid list size")
            return
        out = []
        for it in items:
            u = self.st.users.get(it.get("openid", "") if isinstance(it, dict) else "")
            if u is None:
                self.err(40003, "invalid openid")
                return
            out.append(self.st.render_user(u, it.get("lang", "zh_CN")))
        self.send_json(200, {"user_info_list": out})

    def api_user_info_updateremark(self, body: dict) -> None:
        u = self.st.users.get(body.get("openid", ""))
        if u is None:
            self.err(40003, "invalid openid")
            return
        remark = str(body.get("remark", ""))
        if len(remark) > 30:
            self.err(45003, "remark too long")  # the doc says "less than 30 chars"
            return
        u["remark"] = remark
        self.ok()

    # ------------------------------------------------------------------ tags
    def api_tags_create(self, body: dict) -> None:
        name = str((body.get("tag") or {}).get("name", ""))
        st = self.st
        if not name or name in st.tags.values():
            self.err(45157, "invalid tag name")
        elif len(name.encode("utf-8")) > 30:
            self.err(45158, "tag name too long")
        elif len(st.tags) >= 100:
            self.err(45056, "too many tags now, no need to add new")
        else:
            tid = st.next_tag_id
            st.next_tag_id += 1
            st.tags[tid] = name
            self.send_json(200, {"tag": {"id": tid, "name": name}})

    def api_tags_get(self) -> None:
        counts: dict[int, int] = {}
        for u in self.st.users.values():
            if u.get("subscribe") == 1:
                for t in u.get("tagid_list", []):
                    counts[t] = counts.get(t, 0) + 1
        self.send_json(200, {"tags": [{"id": i, "name": n, "count": counts.get(i, 0)} for i, n in self.st.tags.items()]})

    def api_tags_update(self, body: dict) -> None:
        tag = body.get("tag") or {}
        tid, name = tag.get("id"), str(tag.get("name", ""))
        if tid in (0, 1, 2):
            self.err(45058, "can't modify sys tag")
        elif tid not in self.st.tags:
            self.err(45159, "invalid tag id")
        elif not name or (name in self.st.tags.values() and self.st.tags[tid] != name):
            self.err(45157, "invalid tag name")
        elif len(name.encode("utf-8")) > 30:
            self.err(45158, "tag name too long")
        else:
            self.st.tags[tid] = name
            self.ok()

    def api_tags_delete(self, body: dict) -> None:
        tid = (body.get("tag") or {}).get("id")
        if tid in (0, 1, 2):
            self.err(45058, "can't modify sys tag")
        elif tid not in self.st.tags:
            self.err(45159, "invalid tag id")
        else:
            del self.st.tags[tid]
            for u in self.st.users.values():
                if tid in u.get("tagid_list", []):
                    u["tagid_list"].remove(tid)
            self.ok()

    def _tagging(self, body: dict, add: bool) -> None:
        openids, tid = body.get("openid_list"), body.get("tagid")
        if not isinstance(openids, list) or not openids or len(openids) > self.st.tagging_limit:
            self.err(40032, "invalid openid list size")
            return
        if tid not in self.st.tags:
            self.err(45159, "invalid tag id")
            return
        users = [self.st.users.get(o) for o in openids]
        if any(u is None or u.get("subscribe") != 1 for u in users):
            self.err(40003, "invalid openid")
            return
        if add and any(len(u["tagid_list"]) >= 20 and tid not in u["tagid_list"] for u in users):  # type: ignore[index]
            self.err(45059, "has too many tags")
            return
        for u in users:
            tl = u["tagid_list"]  # type: ignore[index]
            if add and tid not in tl:
                tl.append(tid)
            elif not add and tid in tl:
                tl.remove(tid)
        self.ok()

    def api_tags_members_batchtagging(self, body: dict) -> None:
        self._tagging(body, True)

    def api_tags_members_batchuntagging(self, body: dict) -> None:
        self._tagging(body, False)

    def api_tags_getidlist(self, body: dict) -> None:
        u = self.st.users.get(body.get("openid", ""))
        if u is None:
            self.err(40003, "invalid openid")
            return
        self.send_json(200, {"tagid_list": list(u.get("tagid_list", []))})

    def api_user_tag_get(self, body: dict) -> None:
        tid = body.get("tagid")
        if tid not in self.st.tags:
            self.err(45159, "invalid tag id")
            return
        members = [o for o, u in self.st.users.items() if u.get("subscribe") == 1 and tid in u.get("tagid_list", [])]
        nxt = body.get("next_openid") or ""
        start = members.index(nxt) + 1 if nxt in members else 0
        page = members[start:start + self.st.page_size]
        out: dict[str, Any] = {"count": len(page), "next_openid": page[-1] if page else ""}
        if page:
            out["data"] = {"openid": page}
        self.send_json(200, out)


def serve_wechat(state: WeChatState, faults: FaultController, port: int = 0) -> SandboxServer:
    """Start the WeChat Official Account server on 127.0.0.1 (free port by default) in a daemon thread."""
    return SandboxServer(WeChatHandler, state, faults, port=port).start()
