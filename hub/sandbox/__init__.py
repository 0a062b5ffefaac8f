"""The sandbox world: generated people and four faithful local source systems.

    world = SandboxWorld.create_or_load(Path(".hub/world"), customers=2000, seed=42)
    with world.serve() as ep:
        ep.erp_url, ep.webshop_url, ep.webshop_key, ep.webshop_secret
        ep.wechat_url, ep.wechat_appid, ep.wechat_secret, ep.cdr_dir
    world.faults = "webshop:429@3-5;wechat:45011@2"   # or env HUB_SANDBOX_FAULTS
    world.mutate(fraction=0.01, seed=7)                # incremental changes in every system

Layout under ``dir``: ``world.json`` (meta, keys), ``erp.sqlite`` (unless another ERP URL was given),
``webshop.json``, ``wechat.json``, ``cdr/Master.csv``, ``people.json`` and ``ground_truth.csv`` (the latter
two are the answer key: never read them from the pipeline).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import random
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

from hub.sandbox import erp as erp_mod
from hub.sandbox import noise as N
from hub.sandbox._io import write_json_atomic
from hub.sandbox.callcenter import CdrDropFolder
from hub.sandbox.faults import FaultController, FaultPlan, FaultRule
from hub.sandbox.people import Person, _cn_address, _cn_mobile, _west_address, _west_mobile, generate_people
from hub.sandbox.social import WeChatState, serve_wechat
from hub.sandbox.webshop import WebShopState, serve_webshop
from hub.sandbox.world_gen import HISTORY_END, Observer, WorldData, build_world_data

__all__ = ["CdrDropFolder", "Endpoints", "FaultPlan", "FaultRule", "GroundTruth", "SandboxWorld",
           "customer_record_truth", "generate_people", "ground_truth_map", "identifiable_followers", "load_ground_truth",
           "score_against_truth"]

WORLD_VERSION = 1
GROUND_TRUTH = "ground_truth.csv"


class GroundTruth(NamedTuple):
    system: str  # erp | webshop | wechat | cdr
    entity: str  # party, sale, shipment | customer, order | follower | call
    source_id: str  # party id, sale id, shipment id | customer id, order id | openid | CDR uniqueid
    person_id: str  # "" for records of nobody we know (unknown callers)


def load_ground_truth(world_dir: Path | str) -> list[GroundTruth]:
    """Read ``ground_truth.csv`` of a world (evaluation only — the pipeline must never read it)."""
    with (Path(world_dir) / GROUND_TRUTH).open(encoding="utf-8", newline="") as fh:
        return [GroundTruth(*row) for row in csv.reader(fh)][1:]


def ground_truth_map(world_dir: Path | str, entity: str | None = None) -> dict[tuple[str, str, str], str]:
    """``{(system, entity, source_id): person_id}``, optionally for one entity type (e.g. ``"party"``).

    The entity is part of the key because ids repeat across tables (ERP party 5 and sale 5).
    """
    return {(g.system, g.entity, g.source_id): g.person_id for g in load_ground_truth(world_dir)
            if entity is None or g.entity == entity}


# the packaged hub.yaml's source names of the sandbox systems whose customer records carry a person
HUB_SOURCES = {"erp": "erp", "webshop": "webshop", "social": "wechat"}
# staging's configuration of the sandbox's sources (kind and mapping), under the packaged hub.yaml's names
SOURCES = {
    "erp": {"kind": "sql_erp", "mapping": "sql_erp_sandbox"},
    "webshop": {"kind": "woocommerce"},
    "social": {"kind": "wechat"},
    "callcenter": {"kind": "asterisk_cdr"},
}


def customer_record_truth(world_dir: Path | str, sources: dict[str, str] | None = None,
                          identifiable_only: bool = False) -> dict[str, str]:
    """``{hub record key: person_id}`` for every customer record the hub stages from the world (evaluation only):
    ERP parties, shop accounts, shop guest checkouts (the hub stages one as ``<shop>:guest-order-<order id>``;
    the truth holds its order) and WeChat followers. ``sources`` maps the hub's source names to the systems;
    ``identifiable_only`` leaves out the followers no matcher can link (``identifiable_followers``)."""
    system_of = sources or HUB_SOURCES
    source_of = {v: k for k, v in system_of.items()}
    hidden = set()
    if identifiable_only:
        hidden = {o for o, ok in identifiable_followers(world_dir).items() if not ok}
    out: dict[str, str] = {}
    for t in load_ground_truth(world_dir):
        src = source_of.get(t.system)
        if not t.person_id or src is None:
            continue
        if t.entity in ("party", "customer") or (t.entity == "follower" and t.source_id not in hidden):
            out[f"{src}:{t.source_id}"] = t.person_id
        elif t.entity == "order":
            out[f"{src}:guest-order-{t.source_id}"] = t.person_id
    return out


def _squash(text: str) -> str:
    """Lower case, ASCII digits, no spaces or separators: the form a name or number is searched in."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def identifiable_followers(world_dir: Path | str) -> dict[str, bool]:
    """``{openid: identifiable}`` for the world's WeChat followers (evaluation only, like the ground truth).

    A follower is identifiable when what the hub's WeChat mapping reads of it names its person: the nickname
    carries the whole name (in characters, pinyin or Latin letters, either order), or the staff remark carries
    the last 8 digits of one of their numbers (the mapping reads phone numbers from the remark, no names). The
    rest (a phrase, a decorated character, a first name, "VIP 陈先生", a name only in the remark) hold nothing
    the hub reads but a city, gender and language that thousands share, yet the ground truth counts their pairs."""
    d = Path(world_dir)
    people = {p["person_id"]: p for p in json.loads((d / "people.json").read_text("utf-8"))["people"]}
    owner = {t.source_id: t.person_id for t in load_ground_truth(d) if t.entity == "follower"}
    out: dict[str, bool] = {}
    for u in json.loads((d / "wechat.json").read_text("utf-8"))["users"]:
        p = people.get(owner.get(u["openid"], ""))
        if p is None:
            continue
        nickname, remark = _squash(u.get("nickname") or ""), _squash(u.get("remark") or "")
        names = {p["family_name"] + p["given_name"], p["given_name"] + p["family_name"]}
        if p.get("family_pinyin"):
            names |= {p["family_pinyin"] + p["given_pinyin"], p["given_pinyin"] + p["family_pinyin"]}
        numbers = [n[-8:] for n in [*p["mobiles"], p.get("landline") or ""] if len(n) >= 8]
        out[u["openid"]] = any(_squash(n) in nickname for n in names if n) or any(n in remark for n in numbers)
    return out


def score_against_truth(pred: dict[str, str], world_dir: Path | str, lost: Iterable[str] = ()) -> dict[str, float]:
    """Pairwise and exact-cluster figures of ``pred`` (hub record key -> cluster or golden id) against the
    world's ground truth (evaluation only), on every customer record with a true person (shop guest checkouts
    included) and, prefixed ``identifiable_``, on the identifiable ones (``identifiable_followers``). The
    ``lost`` records (quarantined: never matched) count as clusters of their own, so their true links are
    missed rather than left out."""
    import pandas as pd

    from hub.dedupe.evaluate import cluster_metrics

    pred = {**{k: f"lost:{k}" for k in lost}, **pred}
    out: dict[str, float] = {}
    for label, only in (("", False), ("identifiable_", True)):
        truth = customer_record_truth(world_dir, identifiable_only=only)
        ks = [k for k in pred if k in truth]
        m = cluster_metrics(pd.Series([pred[k] for k in ks], index=ks), pd.Series([truth[k] for k in ks], index=ks))
        out[label + "records"] = len(ks)
        if not only:
            out["guest_records"] = sum(k.startswith("webshop:guest-order-") for k in ks)
            out["quarantined_records"] = sum(pred[k].startswith("lost:") for k in ks)
        for f in ("pairwise_f1", "pairwise_precision", "pairwise_recall", "cluster_f1", "true_pairs"):
            out[label + f] = m[f]
    return out


@dataclass(frozen=True)
class Endpoints:
    erp_url: str
    webshop_url: str  # base, e.g. http://127.0.0.1:PORT ; the API lives under /wp-json/wc/v3
    webshop_key: str
    webshop_secret: str
    wechat_url: str  # base, e.g. http://127.0.0.1:PORT ; the API lives under /cgi-bin/
    wechat_appid: str
    wechat_secret: str
    cdr_dir: Path

    def connectors(self) -> dict[str, Any]:
        """The hub's connectors for these systems, under the packaged hub.yaml's source names (what a bench or
        a test pulls the world with, outside Dagster)."""
        from hub.connectors.cdr import AsteriskCdrConnector
        from hub.connectors.sql_erp import SqlErpConnector, load_tables
        from hub.connectors.wechat import WeChatConnector
        from hub.connectors.woocommerce import WooCommerceConnector

        return {
            "erp": SqlErpConnector(self.erp_url, load_tables("sandbox")),
            "webshop": WooCommerceConnector(self.webshop_url, self.webshop_key, self.webshop_secret),
            "social": WeChatConnector(self.wechat_url, self.wechat_appid, self.wechat_secret, system="social"),
            "callcenter": AsteriskCdrConnector(self.cdr_dir),
        }


def _derive(seed: int, label: str, n: int) -> str:
    return hashlib.sha256(f"hub-sandbox:{seed}:{label}".encode()).hexdigest()[:n]


class SandboxWorld:
    """A persisted world; see the module docstring."""

    def __init__(self, directory: Path, meta: dict, shop: WebShopState | None = None,
                 wechat: WeChatState | None = None):
        self.dir = Path(directory)
        self.meta = meta
        self.fault_controller = FaultController(FaultPlan.from_env())
        self.shop = shop or WebShopState.load(self.dir / "webshop.json")
        self.wechat = wechat or WeChatState.load(self.dir / "wechat.json")
        self.cdr = CdrDropFolder(self.dir / "cdr", columns=meta["cdr_columns"])
        self._servers: list = []

    # ------------------------------------------------------------------ create / load
    @classmethod
    def create_or_load(cls, directory: Path | str, customers: int = 2000, seed: int = 42,
                       erp_url: str | None = None, cdr_columns: int = 18) -> SandboxWorld:
        """Load the world in ``directory``; generate it first if there is none (never regenerates)."""
        d = Path(directory)
        meta_path = d / "world.json"
        if meta_path.exists():
            return cls(d, json.loads(meta_path.read_text(encoding="utf-8")))
        d.mkdir(parents=True, exist_ok=True)
        people = generate_people(customers, seed)
        data, membership = build_world_data(people, seed)
        url = erp_url or erp_mod.sqlite_url(d / "erp.sqlite")
        erp_mod.create_erp(url, data.erp)
        meta = {
            "version": WORLD_VERSION, "seed": seed, "customers": customers, "erp_url": url,
            "cdr_columns": cdr_columns, "created_at": erp_mod.erp_now().isoformat(timespec="seconds"),
            "mutations": 0, "call_seq": data.counters["call_seq"],
            "cdr_last_end": max((c["end"] for c in data.calls), default=HISTORY_END).isoformat(),
            "webshop_key": "ck_" + _derive(seed, "ck", 40), "webshop_secret": "cs_" + _derive(seed, "cs", 40),
            "wechat_appid": "wx" + _derive(seed, "appid", 16), "wechat_secret": _derive(seed, "appsecret", 32),
        }
        shop = WebShopState(data.shop_customers, data.shop_orders, meta["webshop_key"], meta["webshop_secret"],
                            {"wc_user": data.counters["wc_user"], "wc_order": data.counters["wc_order"],
                             "wc_meta": data.counters["wc_meta"], "wc_line": data.counters["wc_line"]})
        shop.save(d / "webshop.json")
        wechat = WeChatState(data.wechat_users, data.wechat_tags, meta["wechat_appid"], meta["wechat_secret"],
                             messages=data.wechat_messages)
        wechat.save(d / "wechat.json")
        CdrDropFolder(d / "cdr", columns=cdr_columns).append(data.calls)
        _write_people(d, people, membership)
        with (d / GROUND_TRUTH).open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(GroundTruth._fields)
            w.writerows(data.truth)
        # world.json last: its presence means "complete world"
        (meta_path).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return cls(d, meta, shop, wechat)

    @property
    def erp_url(self) -> str:
        return self.meta["erp_url"]

    # ------------------------------------------------------------------ faults
    @property
    def faults(self) -> FaultPlan:
        return self.fault_controller.plan

    @faults.setter
    def faults(self, plan: FaultPlan | str | None) -> None:
        self.fault_controller.plan = plan or FaultPlan()

    # ------------------------------------------------------------------ serving
    @contextlib.contextmanager
    def serve(self, webshop_port: int = 0, wechat_port: int = 0) -> Iterator[Endpoints]:
        """Start the WooCommerce and WeChat servers (daemon threads); stop them and save state on exit."""
        shop = serve_webshop(self.shop, self.fault_controller, webshop_port)
        try:
            wx = serve_wechat(self.wechat, self.fault_controller, wechat_port)
        except BaseException:
            shop.stop()
            raise
        self._servers = [shop, wx]
        try:
            yield Endpoints(
                erp_url=self.erp_url, webshop_url=shop.url, webshop_key=self.shop.consumer_key,
                webshop_secret=self.shop.consumer_secret, wechat_url=wx.url, wechat_appid=self.wechat.appid,
                wechat_secret=self.wechat.secret, cdr_dir=self.cdr.dir.resolve())
        finally:
            for s in self._servers:
                s.stop()
            self._servers = []
            self.save()

    def save(self) -> None:
        self.shop.save(self.dir / "webshop.json")
        self.wechat.save(self.dir / "wechat.json")
        (self.dir / "world.json").write_text(json.dumps(self.meta, indent=2), encoding="utf-8")

    def stats(self) -> dict[str, int]:
        """Record counts per system (for reports and sanity checks)."""
        eng = erp_mod.make_engine(self.erp_url)
        try:
            with eng.connect() as c:
                out = {f"erp.{t}": c.execute(sa.select(sa.func.count()).select_from(erp_mod.metadata.tables[t])
                                             ).scalar() or 0 for t in erp_mod.TABLE_ORDER}
        finally:
            eng.dispose()
        with self.shop.lock, self.wechat.lock:
            out.update({"webshop.customers": len(self.shop.customers), "webshop.orders": len(self.shop.orders),
                        "wechat.followers": len(self.wechat.followers()), "wechat.users": len(self.wechat.users)})
        with self.cdr.master.open("rb") as fh:
            out["cdr.calls_in_master"] = sum(1 for _ in fh)
        out["people"] = self.meta["customers"]
        return out

    # ------------------------------------------------------------------ answer key
    def people(self) -> list[Person]:
        return [Person.from_dict(d) for d in json.loads((self.dir / "people.json").read_text("utf-8"))["people"]]

    def ground_truth(self) -> list[GroundTruth]:
        return load_ground_truth(self.dir)

    # ------------------------------------------------------------------ what people and clerks do by hand
    # (the APIs only expose what the real systems expose: a shop admin deletes a customer, a follower leaves,
    # an ERP clerk switches a party off or deletes one without documents)

    def delete_shop_customer(self, customer_id: int) -> None:
        """A shop admin deletes the customer account (its orders stay, as in WooCommerce)."""
        with self.shop.lock:
            if self.shop.customers.pop(int(customer_id), None) is None:
                raise KeyError(f"no shop customer {customer_id}")
            self.shop.version += 1
        self.save()

    def set_marketing_consent(self, customer_id: int, granted: bool) -> None:
        """The customer ticks / unticks the newsletter box in their shop account (date_modified moves)."""
        with self.shop.lock:
            cust = self.shop.customers[int(customer_id)]
            metas = [m for m in cust["meta_data"] if m.get("key") == "marketing_consent"]
            if metas:
                metas[0]["value"] = "yes" if granted else "no"
            else:
                cust["meta_data"].append({"id": self.shop.next_id("wc_meta"), "key": "marketing_consent",
                                          "value": "yes" if granted else "no"})
            self.shop.touch(cust)
        self.save()

    def unfollow(self, openid: str) -> None:
        """The follower leaves the official account: user/get no longer lists them. Their tags are dropped
        (INFERRED: the tag APIs only ever count and accept followers, so nothing can read or change them)."""
        with self.wechat.lock:
            user = self.wechat.users[openid]
            user["subscribe"] = 0
            user["tagid_list"] = []
        self.save()

    def deactivate_party(self, party_id: int) -> None:
        """An ERP clerk switches the party off (Tryton's ``active``); the ORM bumps its write_date."""
        self._erp_write(erp_mod.party_party.update().where(erp_mod.party_party.c.id == int(party_id))
                        .values(active=False, write_date=erp_mod.erp_now().replace(microsecond=0)))

    def delete_party(self, party_id: int) -> None:
        """An ERP clerk deletes a party with no sales or shipments (an ERP refuses it otherwise)."""
        pid = int(party_id)
        eng = erp_mod.make_engine(self.erp_url)
        try:
            with eng.begin() as conn:
                for table, col in ((erp_mod.sale_sale, "party"), (erp_mod.stock_shipment_out, "customer")):
                    if conn.execute(sa.select(sa.func.count()).select_from(table)
                                    .where(table.c[col] == pid)).scalar():
                        raise ValueError(f"party {pid} has {table.name} rows: an ERP does not delete it")
                for table in (erp_mod.party_party_category_rel, erp_mod.party_identifier,
                              erp_mod.party_contact_mechanism, erp_mod.party_address):
                    conn.execute(table.delete().where(table.c.party == pid))
                if not conn.execute(erp_mod.party_party.delete().where(erp_mod.party_party.c.id == pid)).rowcount:
                    raise KeyError(f"no ERP party {pid}")
        finally:
            eng.dispose()

    def _erp_write(self, statement: sa.Executable) -> None:
        eng = erp_mod.make_engine(self.erp_url)
        try:
            with eng.begin() as conn:
                if not conn.execute(statement).rowcount:
                    raise KeyError("no such ERP row")
        finally:
            eng.dispose()

    # ------------------------------------------------------------------ incremental changes
    def mutate(self, fraction: float = 0.01, seed: int | None = None) -> dict[str, int]:
        """Change ``fraction`` of the customers of every system, with ground truth updated.

        ERP: new mobile, moved address (row updated, ``write_date`` bumped), new sale (+ shipment).
        Web shop: new billing phone or address (``date_modified`` bumped), new orders.
        WeChat: new followers (and a few unfollows). CDR: new calls appended to ``Master.csv``.
        Returns counts of what changed.
        """
        seed = self.meta["mutations"] + 1000 if seed is None else seed
        rng = random.Random(seed)
        doc = json.loads((self.dir / "people.json").read_text("utf-8"))
        people = [Person.from_dict(p) for p in doc["people"]]
        membership: dict[str, list[str]] = doc["membership"]
        by_id = {p.person_id: p for p in people}
        now = erp_mod.erp_now().replace(microsecond=0)
        engine = erp_mod.make_engine(self.erp_url)
        stats = {"erp_updates": 0, "erp_new_sales": 0, "webshop_updates": 0, "webshop_new_orders": 0,
                 "wechat_new_followers": 0, "wechat_unfollows": 0, "wechat_new_chats": 0, "cdr_new_calls": 0}
        try:
            with engine.begin() as conn, self.shop.lock, self.wechat.lock:
                ids = erp_mod.max_ids(conn)
                data = WorldData()
                data.counters.update({
                    "party": ids["party_party"] + 1, "address": ids["party_address"] + 1,
                    "contact": ids["party_contact_mechanism"] + 1, "identifier": ids["party_identifier"] + 1,
                    "sale": ids["sale_sale"] + 1, "sale_line": ids["sale_line"] + 1,
                    "shipment": ids["stock_shipment_out"] + 1, "wc_user": self.shop.counters["wc_user"],
                    "wc_order": self.shop.counters["wc_order"], "wc_meta": self.shop.counters["wc_meta"],
                    "wc_line": self.shop.counters.get("wc_line", 100000), "call_seq": self.meta["call_seq"]})
                obs = Observer(rng, data, now)
                truth = _truth_index(self.dir)

                def pick(system: str) -> list[Person]:
                    members = [p for p in people if system in membership.get(p.person_id, [])]
                    k = min(len(members), max(1, round(fraction * len(members)))) if members else 0
                    return rng.sample(members, k)

                # --- ERP
                for p in pick("erp"):
                    parties = [int(s) for s in truth.get(("erp", "party", p.person_id), [])]
                    if not parties:
                        continue
                    party = rng.choice(parties)
                    r = rng.random()
                    if r < 0.35:
                        p.mobiles.append(_cn_mobile(rng) if p.culture == "cn" else _west_mobile(p.address.country, rng))
                        obs.erp_contact(party, "mobile", N.phone_variant(p.mobiles[-1], rng), now)
                    elif r < 0.7:
                        p.address = _cn_address(rng)[0] if p.culture == "cn" else _west_address(p.address.country, rng)[0]
                        old = conn.execute(sa.select(sa.func.max(erp_mod.party_address.c.id)).where(
                            erp_mod.party_address.c.party == party)).scalar()
                        obs.erp_address(party, p.address, now, written=now)  # inserted below when no row exists
                        if old is not None:  # moving edits the party's address row in place, as a clerk would
                            new = data.erp["party_address"].pop()
                            obs.data.counters["address"] -= 1
                            obs.last_address[party] = old
                            vals = {k: new[k] for k in ("street", "postal_code", "city", "subdivision_name",
                                                        "country_code")}
                            conn.execute(erp_mod.party_address.update().where(erp_mod.party_address.c.id == old)
                                         .values(**vals, write_date=now))
                    else:
                        obs.last_address[party] = conn.execute(sa.select(sa.func.max(erp_mod.party_address.c.id))
                                                               .where(erp_mod.party_address.c.party == party)).scalar()
                        obs.erp_sale(p, party, now - timedelta(minutes=rng.randrange(1, 120)))
                        stats["erp_new_sales"] += 1
                        continue
                    stats["erp_updates"] += 1
                for name in erp_mod.TABLE_ORDER:
                    erp_mod.insert_rows(conn, name, data.erp.get(name, []))
                # --- web shop
                for p in pick("webshop"):
                    cust_ids = [int(s) for s in truth.get(("webshop", "customer", p.person_id), [])]
                    cust = self.shop.customers.get(rng.choice(cust_ids)) if cust_ids else None
                    if cust is not None and rng.random() < 0.5:
                        if rng.random() < 0.5:
                            p.mobiles.append(_cn_mobile(rng) if p.culture == "cn"
                                             else _west_mobile(p.address.country, rng))
                            cust["billing"]["phone"] = N.phone_variant(p.mobiles[-1], rng)
                        else:
                            p.address = _cn_address(rng)[0] if p.culture == "cn" \
                                else _west_address(p.address.country, rng)[0]
                            addr = obs._wc_address(p, cust["billing"]["first_name"], cust["billing"]["last_name"],
                                                   False, False)
                            cust["billing"].update(addr)
                            cust["shipping"].update(addr)
                        self.shop.touch(cust, now)
                        stats["webshop_updates"] += 1
                    else:
                        obs.shop_order(p, cust, now - timedelta(minutes=rng.randrange(1, 120)))
                        o = data.shop_orders.pop()
                        self.shop.orders[o["id"]] = o
                        stats["webshop_new_orders"] += 1
                self.shop.version += 1
                self.shop.counters.update({k: data.counters[k] for k in ("wc_user", "wc_order", "wc_meta", "wc_line")})
                # --- WeChat: newcomers follow, a few followers leave
                outsiders = [p for p in people if "wechat" not in membership.get(p.person_id, [])
                             and (p.culture == "cn" or rng.random() < 0.2)]
                n_new = min(len(outsiders), max(1, round(fraction * len(self.wechat.users))))
                for p in rng.sample(outsiders, n_new):
                    obs.wechat_user(p, now - timedelta(minutes=rng.randrange(1, 120)), [])
                    u = data.wechat_users.pop()
                    self.wechat.users[u["openid"]] = u
                    membership[p.person_id] = sorted({*membership.get(p.person_id, []), "wechat"})
                    stats["wechat_new_followers"] += 1
                followers = self.wechat.followers()
                # new customer-service chats, after the newest stored one (msgids grow with time)
                last_msg = max((m["time"] for m in self.wechat.messages), default=0)
                chat_from = max(now - timedelta(hours=2), datetime.fromtimestamp(last_msg + 1, UTC).replace(tzinfo=None))
                by_openid = {g.source_id: g.person_id for g in load_ground_truth(self.dir) if g.entity == "follower"}
                by_openid.update({sid: pid for (_, ent, sid, pid) in data.truth if ent == "follower"})
                for oid in rng.sample(followers, min(len(followers), round(fraction * len(followers)))):
                    person = by_id.get(by_openid.get(oid, ""))
                    if person is not None:
                        obs.wechat_chat(person, oid, obs.rand_time(chat_from, max(now, chat_from + timedelta(minutes=30))))
                        stats["wechat_new_chats"] += 1
                data.wechat_messages.sort(key=lambda m: m["time"])
                self.wechat.messages.extend(data.wechat_messages)
                for oid in rng.sample(followers, min(len(followers), round(fraction * len(followers) * 0.2))):
                    self.wechat.users[oid]["subscribe"] = 0
                    stats["wechat_unfollows"] += 1
                # --- CDR: new calls start after the last one already written (the file stays in hang-up order)
                last_end = datetime.fromisoformat(self.meta.get("cdr_last_end") or "2000-01-01T00:00:00")
                window = max(now - timedelta(hours=3), last_end + timedelta(seconds=1))
                window_end = max(now, window + timedelta(minutes=30))
                for p in pick("cdr"):
                    for _ in range(rng.randrange(1, 3)):
                        obs.call(p, obs.rand_time(window, window_end))
                for _ in range(max(1, len(data.calls) // 10)):
                    obs.call(None, obs.rand_time(window, window_end), number=obs.cdr_number(_cn_mobile(rng)))
                data.calls.sort(key=lambda c: (c["end"], c["sequence"]))
                if data.calls:
                    self.meta["cdr_last_end"] = data.calls[-1]["end"].isoformat()
                stats["cdr_new_calls"] = self.cdr.append(data.calls)
                self.meta["call_seq"] = data.counters["call_seq"]
        finally:
            engine.dispose()
        self.meta["mutations"] += 1
        _write_people(self.dir, list(by_id.values()), membership)
        with (self.dir / GROUND_TRUTH).open("a", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(data.truth)
        self.save()
        return stats


def _write_people(d: Path, people: list[Person], membership: dict[str, list[str]]) -> None:
    write_json_atomic(d / "people.json", {"membership": membership}, {"people": [p.to_dict() for p in people]})


def _truth_index(d: Path) -> dict[tuple[str, str, str], list[str]]:
    idx: dict[tuple[str, str, str], list[str]] = {}
    for g in load_ground_truth(d):
        idx.setdefault((g.system, g.entity, g.person_id), []).append(g.source_id)
    return idx
