"""WeChat Official Account connector (``/cgi-bin/...``).

WeChat answers almost everything with HTTP 200 and an ``errcode`` in the body, so on top of the session's
transport retries this connector adds the vendor rules: 40001/40014/42001 (token invalid/expired) -> fetch a
new token once and repeat the call; 45009/45011 (daily/minute quota) -> back off with growing, jittered
waits and never hammer; after the last wait the run stops with ``QuotaExceeded`` and the cursor keeps the
progress.

Pull ``followers``: a full sweep of ``user/get`` (``next_openid`` cursor, up to 10 000 openids per call),
user info via ``user/info/batchget`` in chunks of 100 (50 if the account answers 40032). One page per chunk;
the cursor (list token + openids done in that list page) makes a killed sweep resume where it stopped.

Push segments as tags: ``hub:seg:<segment>`` and ``hub:tier:<value_tier>`` created once (``tags/create``).
A withdrawal or an erasure (``base.removal``) takes every hub tag off the follower; WeChat offers no way to
delete or anonymise a follower, so that is all an erasure can do here.
What each follower holds is what the hub knows (the hub tags its last pull saw or its last push wrote), read
with ``user/info/batchget`` only for followers it knows nothing of and for removals; then only the changes are
sent: members added with ``tags/members/batchtagging`` and moved off the family's other hub tags with
``batchuntagging`` (<= 50 openids a call, one call per tag). Echo suppression: the hash view leaves hub tags
out of ``tagid_list``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests
import tenacity

from hub.connectors.base import (
    ConnectorError,
    Page,
    PushOutcome,
    SourceAuthError,
    VendorError,
    chunked,
    fetch_json,
    held_value,
    host_of,
    iter_next_token,
    landing_record,
    make_session,
    redact_text,
    removal,
)
from hub.privacy.tombstones import SourceIds
from hub.store import OutboxItem

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
# what /cgi-bin/token answers to a wrong appsecret / appid (40001 there too: "invalid credential")
CREDENTIAL_ERRORS = frozenset({40001, 40013, 40125})
QUOTA_ERRORS = frozenset({45009, 45011})
HUB_TAG_PREFIX = "hub:"
TAG_FAMILIES: tuple[tuple[str, str], ...] = (("segment", "hub:seg:"), ("value_tier", "hub:tier:"))
_TAG_NAME_BYTES = 30
_MEMBER_REJECTIONS = {40003: "not a follower", 45059: "user has too many tags"}


class QuotaExceeded(VendorError):
    """WeChat kept answering 45009/45011 after every back-off: stop this run, resume later."""


def hub_tag_name(prefix: str, value: str) -> str:
    """A tag name of at most 30 UTF-8 bytes (WeChat's limit), cut on a character boundary."""
    name = f"{prefix}{value}"
    while len(name.encode("utf-8")) > _TAG_NAME_BYTES:
        name = name[:-1]
    return name


class WeChatConnector:
    entities: tuple[str, ...] = ("followers",)
    # outbox rows per push() call: one tags/get, a batchget per 100 followers the hub knows nothing of and,
    # per tag, a call per 50 members. Every tag's last call of a batch is part empty (a dozen tags): 100 rows
    # a batch took 144 calls per 1,000 followers in a 20k-person sync, 1,000 rows ~46 (40 full), 5,000 ~41
    push_batch_size = 5000
    push_takes_known = True  # run_push hands push() what the hub knows each follower holds

    def __init__(
        self,
        base_url: str,
        appid: str,
        secret: str,
        *,
        system: str = "wechat",
        requests_per_second: float | None = None,
        batch_size: int = 100,
        lang: str = "zh_CN",
        quota_wait: float = 2.0,
        quota_wait_max: float = 120.0,
        quota_attempts: int = 6,
        timeout: tuple[float, float] = (5.0, 30.0),
        body_retry_wait: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self.system = system
        self.batch_size = batch_size
        self.lang = lang
        self.quota_wait, self.quota_wait_max, self.quota_attempts = quota_wait, quota_wait_max, quota_attempts
        # WeChat's POSTs here are reads or idempotent writes, so fetch_json's retries may repeat them
        self.session = make_session(rate_limit=requests_per_second, timeout=timeout)
        self.body_retry_wait = body_retry_wait
        self._token: str | None = None
        self._token_expires = 0.0
        self.token_fetches = 0

    def close(self) -> None:
        self.session.close()

    # -- calls ------------------------------------------------------------------------------------------------

    def _access_token(self, force: bool = False) -> str:
        if force or self._token is None or time.monotonic() >= self._token_expires:
            body, _ = fetch_json(self.session, "GET", f"{self.base_url}/cgi-bin/token", params={
                "grant_type": "client_credential", "appid": self.appid, "secret": self._secret},
                wait_initial=self.body_retry_wait, source=self.system)
            if "access_token" not in body:
                code = body.get("errcode", "?")
                if code in CREDENTIAL_ERRORS:  # a wrong appid or secret: retrying cannot help
                    raise SourceAuthError(f"{self.system}: {host_of(self.base_url)} refused the appid / secret "
                                          f"(errcode {code}); check the variables hub.yaml's key_env / "
                                          "secret_env name")
                raise VendorError(code, "token request refused")
            self.token_fetches += 1
            self._token = body["access_token"]
            # refresh a little early so a token never expires between our check and WeChat's
            self._token_expires = time.monotonic() + max(60, int(body.get("expires_in", 7200)) - 300)
        return self._token

    def call(self, api: str, body: dict | None = None, params: dict | None = None) -> dict:
        """GET (body None) or POST ``/cgi-bin/<api>``; returns the body, raising ``VendorError`` for errcodes."""

        def once() -> dict:
            for refresh in (False, True):
                token = self._access_token(force=refresh)
                q = {**(params or {}), "access_token": token}
                if body is None:
                    data, _ = fetch_json(self.session, "GET", f"{self.base_url}/cgi-bin/{api}", params=q,
                                         wait_initial=self.body_retry_wait, source=self.system)
                else:
                    # raw UTF-8: WeChat stores \\u escapes literally, so Chinese tag names must not be escaped
                    data, _ = fetch_json(
                        self.session, "POST", f"{self.base_url}/cgi-bin/{api}", params=q,
                        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                        headers={"Content-Type": "application/json; charset=utf-8"},
                        wait_initial=self.body_retry_wait, source=self.system,
                    )
                code = data.get("errcode", 0) if isinstance(data, dict) else 0
                if code in TOKEN_ERRORS and not refresh:
                    continue  # token expired or superseded: fetch a new one, once
                if code in QUOTA_ERRORS:
                    raise QuotaExceeded(code, "quota reached")
                if code:
                    raise VendorError(code, str(data.get("errmsg", "")).split(" rid:")[0])
                return data
            raise VendorError(code, "token refused after refresh")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(QuotaExceeded),
            wait=tenacity.wait_exponential_jitter(initial=self.quota_wait, max=self.quota_wait_max,
                                                  jitter=self.quota_wait),
            stop=tenacity.stop_after_attempt(self.quota_attempts),
            reraise=True,
        )
        try:
            return retrying(once)
        except requests.RequestException as exc:
            # the URL carries the access_token: re-raise without it (and without the chained original)
            raise ConnectorError(f"{type(exc).__name__}: {redact_text(str(exc))}") from None

    # -- pull -------------------------------------------------------------------------------------------------

    def hub_tags(self) -> dict[int, str]:
        """The account's hub tags, id -> name."""
        return {t["id"]: t["name"] for t in self.call("tags/get").get("tags", [])
                if t["name"].startswith(HUB_TAG_PREFIX)}

    def _batchget(self, openids: list[str]) -> list[dict]:
        """User info for ``openids`` in calls of ``batch_size``. An openid WeChat does not know (40003 fails the
        whole call) is found by halving the call, and left out of the answer."""
        out: list[dict] = []
        for chunk in chunked(openids, self.batch_size):
            try:
                body = self.call("user/info/batchget",
                                 {"user_list": [{"openid": o, "lang": self.lang} for o in chunk]})
            except VendorError as exc:
                if exc.code == 40032 and self.batch_size > 50:
                    self.batch_size = 50  # the documented 100 is refused by some accounts: 50 from now on
                    return self._batchget(openids)
                if exc.code != 40003:
                    raise
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    out += self._batchget(list(chunk[:half])) + self._batchget(list(chunk[half:]))
                continue
            out.extend(body.get("user_info_list", []))
        return out

    def pages(self, entity: str, cursor: dict | None) -> Iterator[Page]:
        if entity != "followers":
            raise ValueError(f"unknown entity {entity!r}")
        cur = {} if not cursor or cursor.get("complete") else dict(cursor)
        hub_tags = self.hub_tags()
        start_token, skip = cur.get("next_openid"), int(cur.get("skip", 0))

        def fetch(token: str | None) -> dict:
            try:
                body = self.call("user/get", params={"next_openid": token or ""})
            except VendorError as exc:
                if exc.code == 40003 and token:  # the resume openid unfollowed meanwhile: sweep again
                    raise _RestartSweep from exc
                raise
            total = body.get("total") if isinstance(body, dict) else None
            self.announced = total if isinstance(total, int) else None  # followers in all: the progress bar's end
            return body

        try:
            yield from self._sweep(fetch, start_token, skip, hub_tags)
        except _RestartSweep:  # pages landed so far stay; the rerun lands them as unchanged
            yield from self._sweep(fetch, None, 0, hub_tags)

    def _sweep(self, fetch: Any, start_token: str | None, skip: int, hub_tags: dict[int, str]
               ) -> Iterator[Page]:
        for token, openids, nxt in iter_next_token(
            fetch, start_token=start_token,
            items_of=lambda b: (b.get("data") or {}).get("openid", []),
            next_token_of=lambda b: b.get("next_openid"),
        ):
            step = self.batch_size
            done = skip
            while done < len(openids):
                users = self._batchget(openids[done:done + step])
                done += step
                last = done >= len(openids) and nxt is None
                records = [landing_record(u["openid"], u, _hash_view(u, hub_tags),
                                          follower_hub_state(u.get("tagid_list"), hub_tags)
                                          if u.get("subscribe") == 1 else None) for u in users]
                yield Page(records, {"complete": True} if last else {"next_openid": token, "skip": done},
                           total=getattr(self, "announced", None))
            skip = 0
            if not openids:
                yield Page([], {"complete": True})

    def present_ids(self, entity: str) -> SourceIds:
        """The openids of every follower now (``user/get``, 10 000 a call, openids only); a landed follower
        missing from the list unfollowed the account."""
        if entity != "followers":
            raise ValueError(f"unknown entity {entity!r}")
        openids: list[str] = []
        for _, page, _ in iter_next_token(
            lambda token: self.call("user/get", params={"next_openid": token or ""}),
            items_of=lambda b: (b.get("data") or {}).get("openid", []),
            next_token_of=lambda b: b.get("next_openid"),
        ):
            openids += page
        return SourceIds.of(openids, absent="unfollowed")

    # -- push -------------------------------------------------------------------------------------------------

    def _tag_map(self) -> dict[str, int]:
        return {t["name"]: t["id"] for t in self.call("tags/get").get("tags", [])}

    def _ensure_tag(self, tags: dict[str, int], name: str) -> int:
        if name not in tags:
            try:
                tags[name] = self.call("tags/create", {"tag": {"name": name}})["tag"]["id"]
            except VendorError as exc:
                if exc.code != 45157:  # 45157: exists already (e.g. a retried create): read it back
                    raise
                tags.update(self._tag_map())
                if name not in tags:
                    raise
        return tags[name]

    def _members(self, api: str, tagid: int, items: list[OutboxItem], failed: dict[int, PushOutcome]) -> None:
        """(Un)tag ``items`` in calls of <= 50; a batch refused for some openids (not a follower, too many
        tags) is halved until the refused rows stand alone, so only they fail (one unfollowed member of 50
        costs ~12 calls, not 50)."""
        live = [it for it in items if it.id not in failed]
        for chunk in chunked(live, 50):
            try:
                self.call(f"tags/members/{api}", {"openid_list": [it.target_id for it in chunk], "tagid": tagid})
            except VendorError as exc:
                if exc.code in (40003, 45059) and len(chunk) > 1:
                    half = len(chunk) // 2
                    self._members(api, tagid, list(chunk[:half]), failed)
                    self._members(api, tagid, list(chunk[half:]), failed)
                    continue
                reason = _MEMBER_REJECTIONS.get(exc.code) if isinstance(exc.code, int) else None
                for it in chunk:
                    if reason:
                        failed[it.id] = PushOutcome(it.id, "rejected", reason)
                    else:
                        failed[it.id] = PushOutcome(it.id, "error", f"wechat errcode {exc.code}")

    def current_tags(self, openids: list[str]) -> dict[str, set[int] | None]:
        """The tag ids each follower carries now (``user/info/batchget``, 100 a call); None = not a follower."""
        out: dict[str, set[int] | None] = {o: None for o in openids}
        for user in self._batchget(openids):
            if user.get("subscribe") == 1 and user.get("openid") in out:
                out[user["openid"]] = set(user.get("tagid_list") or [])
        return out

    def held_view(self, item: OutboxItem) -> dict:
        """The hub tags a follower carries once ``item`` is applied (names cut to WeChat's 30 bytes)."""
        payload = item.payload or {}
        return {field: held_value(hub_tag_name(prefix, str(payload[field]))[len(prefix):]
                                  if payload.get(field) not in (None, "") else None)
                for field, prefix in TAG_FAMILIES}

    def held(self, items: list[OutboxItem]) -> dict[int, dict | None]:
        """Each row's follower's hub tags now (one batchget per 100); None = not a follower."""
        names = {tid: name for name, tid in self._tag_map().items()}
        current = self.current_tags(sorted({it.target_id for it in items if it.target_id}))
        return {it.id: None if current.get(it.target_id) is None else
                follower_hub_state(current[it.target_id], names) for it in items}

    def push(self, items: list[OutboxItem], known: Mapping[int, dict | None] | None = None
             ) -> list[PushOutcome]:
        """Move followers into the hub tags of their segment / tier, sending only the tags that change: one
        ``batchuntagging`` / ``batchtagging`` call per tag and 50 followers.

        What a follower holds is what the hub knows (``known``: the hub tags the last pull saw or the last
        push wrote, ``base.known_before``) where it knows it, else read now (one batchget per 100): the read
        was a fifth of a first push's calls (at 20 requests/s and a million people, minutes). A follower who
        left since is refused by the tagging call (rejected: not a follower); hub tags someone else changed
        since the last pull are seen by the next pull, whose drift check queues the follower again.
        Withdrawals and erasures always read (a follower who left holds nothing: ok, not refused)."""
        failed: dict[int, PushOutcome] = {}
        valid = []
        for it in items:
            if it.target_id:
                valid.append(it)
            else:
                failed[it.id] = PushOutcome(it.id, "rejected", "no openid")
        try:
            tags = self._tag_map()
            trusted = {it.target_id: _held_tag_ids(known[it.id], tags) for it in valid
                       if known is not None and isinstance(known.get(it.id), dict) and not removal(it.payload)}
            current = {**self.current_tags(sorted({it.target_id for it in valid} - set(trusted))), **trusted}
            live = []
            for it in valid:
                if current.get(it.target_id) is None and removal(it.payload):
                    # nothing to take off someone who no longer follows: the account holds no tags for them
                    failed[it.id] = PushOutcome(it.id, "ok", "not a follower: nothing held")
                elif current.get(it.target_id) is None:
                    failed[it.id] = PushOutcome(it.id, "rejected", "not a follower")
                else:
                    live.append(it)
            untag: dict[int, list[OutboxItem]] = {}
            tag: dict[int, list[OutboxItem]] = {}
            for field_name, prefix in TAG_FAMILIES:
                family = {tid for name, tid in tags.items() if name.startswith(prefix)}
                for it in live:
                    value = (it.payload or {}).get(field_name)
                    want = (self._ensure_tag(tags, hub_tag_name(prefix, str(value)))
                            if value not in (None, "") else None)
                    held = current[it.target_id] or set()
                    # a follower is in one tag of a family at a time
                    for tid in sorted((held & family) - {want}):
                        untag.setdefault(tid, []).append(it)
                    if want is not None and want not in held:
                        tag.setdefault(want, []).append(it)
            # untag first: a follower carries at most 20 tags
            for tid, members in untag.items():
                self._members("batchuntagging", tid, members, failed)
            for tid, members in tag.items():
                self._members("batchtagging", tid, members, failed)
        except (ConnectorError, requests.RequestException) as exc:
            reason = f"wechat errcode {exc.code}" if isinstance(exc, VendorError) else type(exc).__name__
            for it in valid:
                failed.setdefault(it.id, PushOutcome(it.id, "error", reason))
        return [failed.get(it.id, PushOutcome(it.id, "ok")) for it in items]


class _RestartSweep(ConnectorError):
    """The stored list cursor points at an openid that unfollowed: the sweep starts over."""


def _held_tag_ids(state: Mapping[str, Any], tags: Mapping[str, int]) -> set[int]:
    """The ids of the hub tags a follower's hub state names (``follower_hub_state`` read back, each name made
    by ``hub_tag_name`` as a push makes it; a name no tag carries any more is left out)."""
    held: set[int] = set()
    for field, prefix in TAG_FAMILIES:
        values = state.get(field)
        for value in values if isinstance(values, list) else [values]:
            name = hub_tag_name(prefix, str(value)) if value not in (None, "") else None
            if name in tags:
                held.add(tags[name])
    return held


def follower_hub_state(tag_ids: Iterable[int] | None, names: Mapping[int, str]) -> dict:
    """Segment and tier as a follower's hub tags carry them (the tag name after its family prefix)."""
    held = [names[t] for t in tag_ids or [] if t in names]
    return {field: held_value([n[len(prefix):] for n in held if n.startswith(prefix)])
            for field, prefix in TAG_FAMILIES}


def _hash_view(user: dict, hub_tags: Mapping[int, str]) -> dict:
    view = dict(user)
    if "tagid_list" in view:
        view["tagid_list"] = sorted(t for t in view["tagid_list"] if t not in hub_tags)
    return view
