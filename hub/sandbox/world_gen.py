"""Project persons into the four source systems, with realistic noise, and record the ground truth.

Everything here is pure: ``build_world_data(people, seed)`` returns plain dicts/rows that the ERP loader,
the web-shop / WeChat servers and the CDR writer persist.  ``Observer`` is reused by ``mutate`` so that
incremental changes look exactly like the initial load.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from hub.sandbox import _data as D
from hub.sandbox import noise as N
from hub.sandbox.people import Address, Person, to_traditional, wchoice

SYSTEMS = ("erp", "webshop", "wechat", "cdr")
# History window of the generated world: the three years up to yesterday, so a new world's customers span
# every lifecycle stage (new / active / at risk / lapsed) on the day it is generated. The world is generated
# once and persisted; later mutations use the wall clock, which is after the window.
HISTORY_END = datetime.combine(date.today(), time(0)) - timedelta(hours=1)
HISTORY_START = HISTORY_END - timedelta(days=3 * 365)
SHOP_TZ_OFFSET = timedelta(hours=8)  # WooCommerce site timezone Asia/Shanghai: date_x = date_x_gmt + 8 h
WECHAT_OPENID_PREFIX = "oSbxQ"
CURRENCY_RATE = {"CNY": Decimal("1"), "USD": Decimal("0.14"), "GBP": Decimal("0.11"), "EUR": Decimal("0.13")}
COUNTRY_CURRENCY = {"CN": "CNY", "US": "USD", "GB": "GBP", "DE": "EUR"}


def epoch(dt: datetime) -> int:
    """Naive UTC datetime -> Unix seconds, independent of the machine's time zone."""
    return int(dt.replace(tzinfo=UTC).timestamp())


def wc_date(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")  # naive datetimes: YYYY-MM-DDTHH:MM:SS, faster than strftime


def _token(rng: random.Random, n: int) -> str:
    """n characters of [A-Za-z0-9_-] from the seeded generator (base64url of random bytes)."""
    return base64.urlsafe_b64encode(rng.randbytes((n * 3 + 3) // 4)).decode("ascii")[:n]


@dataclass
class WorldData:
    """All generated source records (before persistence) plus the ground-truth rows."""

    erp: dict[str, list[dict]] = field(default_factory=dict)
    shop_customers: list[dict] = field(default_factory=list)
    shop_orders: list[dict] = field(default_factory=list)
    wechat_users: list[dict] = field(default_factory=list)
    wechat_tags: list[dict] = field(default_factory=list)
    wechat_messages: list[dict] = field(default_factory=list)  # customer-service chat records
    calls: list[dict] = field(default_factory=list)
    truth: list[tuple[str, str, str, str]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)


class Observer:
    """Stateful id allocator + record builder for every source system.

    ``counters`` carries the next ids so a later ``mutate`` continues the same sequences.
    """

    def __init__(self, rng: random.Random, data: WorldData, now: datetime = HISTORY_END):
        self.rng = rng
        self.data = data
        self.now = now  # nothing is written after "now": later timestamps are clamped to it
        c = data.counters
        for key, start in (("party", 1), ("address", 1), ("contact", 1), ("identifier", 1), ("sale", 1),
                           ("sale_line", 1), ("shipment", 1), ("wc_user", 25), ("wc_order", 700),
                           ("wc_line", 300), ("wc_meta", 13000), ("call_seq", 1), ("erp_tx", 0)):
            c.setdefault(key, start)
        for t in ("party_party", "party_address", "party_contact_mechanism", "party_identifier", "party_category",
                  "party_party_category_rel", "sale_sale", "sale_line", "stock_shipment_out", "product_product"):
            data.erp.setdefault(t, [])
        # party -> its newest address id (sales and shipments deliver there)
        self.last_address: dict[int, int] = {a["party"]: a["id"] for a in data.erp["party_address"]}

    def _next(self, key: str) -> int:
        v = self.data.counters[key]
        self.data.counters[key] = v + 1
        return v

    def truth(self, system: str, entity: str, source_id: object, person_id: str) -> None:
        self.data.truth.append((system, entity, str(source_id), person_id))

    def rand_time(self, start: datetime = HISTORY_START, end: datetime = HISTORY_END) -> datetime:
        span = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randrange(max(span, 1)))

    # ------------------------------------------------------------------ ERP (Tryton-style tables)
    def erp_party(self, p: Person, created: datetime, malformed: bool = False) -> int:
        rng = self.rng
        pid = self._next("party")
        r = rng.random()
        if p.culture == "cn":
            if r < 0.7:
                name = p.family_name + p.given_name
            elif r < 0.8:
                name = to_traditional(p.family_name + p.given_name)
            elif r < 0.92:
                name = f"{p.family_pinyin.capitalize()} {p.given_pinyin.capitalize()}"
            else:
                name = f"{p.given_pinyin.upper()} {p.family_pinyin.upper()}"
        else:
            first, last, _ = N.name_variant(p, rng)
            name = f"{first} {last}" if rng.random() < 0.85 else f"{last}, {first}"
        if rng.random() < 0.03:
            name = N.homophone(name, rng) if p.culture == "cn" else N.typo(name, rng)
        elif p.culture == "cn" and rng.random() < 0.02:  # clerk only noted the title: 陈先生 / 王女士
            name = p.family_name + ("先生" if p.gender == "M" else "女士")
        if malformed:
            name = rng.choice(("", " ", "???", "客户"))
        # Tryton writes the party again right after create (code sequence), so write_date is set.
        self.data.erp["party_party"].append({
            "id": pid, "code": str(pid), "name": name, "active": True,
            "create_date": created, "write_date": created + timedelta(milliseconds=rng.randrange(5, 900)),
        })
        self.truth("erp", "party", pid, p.person_id)
        self.erp_address(pid, p.address, created)
        mobiles = p.mobiles if rng.random() < 0.8 else p.mobiles[:1]
        for m in mobiles:
            self.erp_contact(pid, "mobile", N.junk_phone(rng) if malformed and rng.random() < 0.5
                             else N.phone_variant(m, rng), created)
        if p.landline and rng.random() < 0.7:
            self.erp_contact(pid, "phone", N.phone_variant(p.landline, rng), created)
        if rng.random() < 0.75:
            self.erp_contact(pid, "email", N.email_variant(p.emails[0], rng), created)
        if p.national_id and rng.random() < 0.6:
            code = p.national_id.lower() if rng.random() < 0.1 else p.national_id
            self.data.erp["party_identifier"].append({
                "id": self._next("identifier"), "party": pid, "type": "cn_ric", "code": code,
                "create_date": created, "write_date": None,
            })
        return pid

    def erp_address(self, party: int, a: Address, created: datetime, written: datetime | None = None) -> int:
        rng = self.rng
        aid = self._next("address")
        if a.country == "CN":
            street = (a.district + a.street) if rng.random() < 0.7 else a.street
            city, subdivision = a.city, a.province
            if rng.random() < 0.2:
                city, subdivision = city.rstrip("市"), subdivision.rstrip("省市")
            if rng.random() < 0.05:
                street = N.fullwidth(street)
        else:
            street, city, subdivision = a.street, a.city, a.province
            if a.country == "US" and rng.random() < 0.3:
                street = street.replace("Street", "St").replace("Avenue", "Ave")
            if a.country == "DE" and rng.random() < 0.3:
                street = street.replace("straße", "str.")
        self.data.erp["party_address"].append({
            "id": aid, "party": party, "name": None, "street": street,
            "postal_code": a.postcode if rng.random() < 0.93 else None, "city": city,
            "subdivision_name": subdivision or None, "country_code": a.country, "active": True,
            "create_date": created, "write_date": written,  # NULL until first edit, like Tryton
        })
        self.last_address[party] = aid
        return aid

    def erp_contact(self, party: int, ctype: str, value: str, created: datetime) -> int:
        cid = self._next("contact")
        self.data.erp["party_contact_mechanism"].append({
            "id": cid, "party": party, "type": ctype, "value": value, "active": True,
            "create_date": created, "write_date": created,
        })
        return cid

    def erp_sale(self, p: Person, party: int, when: datetime) -> int:
        rng = self.rng
        sid = self._next("sale")
        state = wchoice(rng, ("draft", "quotation", "confirmed", "processing", "done", "cancelled"),
                            (5, 5, 10, 30, 45, 5))
        currency = COUNTRY_CURRENCY[p.address.country]
        total = Decimal("0")
        for _ in range(rng.randrange(1, 5)):
            pidx = rng.randrange(len(D.PRODUCTS))
            qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
            price = (Decimal(D.PRODUCTS[pidx][2]) * CURRENCY_RATE[currency]).quantize(Decimal("0.0001"))
            total += (price * qty).quantize(Decimal("0.01"))
            self.data.erp["sale_line"].append({
                "id": self._next("sale_line"), "sale": sid, "product": pidx + 1, "quantity": float(qty),
                "unit_price": price, "description": D.PRODUCTS[pidx][1],
                "create_date": when, "write_date": None if rng.random() < 0.2 else when + timedelta(seconds=3),
            })
        addr_ids = [self.last_address.get(party)]
        written = None if state == "draft" and rng.random() < 0.5 else \
            min(when + timedelta(minutes=rng.randrange(1, 3000)), self.now)
        self.data.erp["sale_sale"].append({
            "id": sid, "party": party, "number": f"SO{sid:06d}", "reference": None, "sale_date": when.date(),
            "state": state, "currency": currency, "total_amount": total, "shipment_address": addr_ids[0],
            "create_date": when, "write_date": written,
        })
        self.truth("erp", "sale", sid, p.person_id)
        if state in ("processing", "done"):
            self.erp_shipment(p, party, sid, addr_ids[0], when, state)
        return sid

    def erp_shipment(self, p: Person, party: int, sale: int, address: int | None, when: datetime,
                     sale_state: str) -> int:
        rng = self.rng
        shid = self._next("shipment")
        carriers = D.CARRIERS[:6] if p.address.country == "CN" else D.CARRIERS[6:]
        carrier = rng.choice(carriers)
        planned = (when + timedelta(days=rng.randrange(1, 4))).date()
        if sale_state == "done":
            state, effective = "done", planned + timedelta(days=rng.randrange(0, 4))
        else:
            state, effective = rng.choice(("waiting", "assigned", "picked", "packed")), None
        if effective is not None and effective > self.now.date():
            state, effective = "packed", None  # not delivered yet
        tracking = None
        if state in ("done", "packed"):
            tracking = D.CARRIER_PREFIX[carrier] + f"{rng.randrange(10**12):012d}"
        created = min(when + timedelta(hours=rng.randrange(1, 30)), self.now)
        self.data.erp["stock_shipment_out"].append({
            "id": shid, "number": f"WH/OUT/{shid:06d}", "customer": party, "delivery_address": address,
            "carrier": carrier, "reference": tracking, "state": state, "planned_date": planned,
            "effective_date": effective, "origin_sale": sale, "create_date": created,
            "write_date": min(created + timedelta(days=(effective - planned).days + 1), self.now) if effective
            else created,
        })
        self.truth("erp", "shipment", shid, p.person_id)
        return shid

    # ------------------------------------------------------------------ WooCommerce
    def _wc_address(self, p: Person, first: str, last: str, with_contact: bool, malformed: bool) -> dict:
        rng = self.rng
        a = p.address
        if a.country == "CN" and rng.random() < 0.25:  # typed in English
            addr1, city, state = a.street_en, a.city_en, rng.choice((a.state_code, a.province_en))
            addr2 = a.district_en + " District"
        elif a.country == "CN":
            addr1, city, state, addr2 = a.district + a.street, a.city, rng.choice((a.state_code, a.province)), ""
        else:
            addr1, city, state, addr2 = a.street, a.city, a.state_code, ""
        if a.country == "CN" and rng.random() < 0.1:
            addr1, city = to_traditional(addr1), to_traditional(city)
        out = {"first_name": first, "last_name": last, "company": "", "address_1": addr1, "address_2": addr2,
               "city": city, "state": state, "postcode": a.postcode if rng.random() < 0.9 else "",
               "country": a.country}
        if with_contact:
            phone = rng.choice(p.mobiles) if rng.random() < 0.85 or not p.landline else p.landline
            out["email"] = N.email_variant(p.emails[0], rng)
            out["phone"] = N.junk_phone(rng) if malformed and rng.random() < 0.6 else (
                N.phone_variant(phone, rng) if rng.random() < 0.95 else "")
        return out

    def _meta(self, key: str, value: object) -> dict:
        return {"id": self._next("wc_meta"), "key": key, "value": value}

    def shop_customer(self, p: Person, created: datetime, second_account: bool = False,
                      malformed: bool = False) -> int:
        rng = self.rng
        cid = self._next("wc_user")
        first, last, _ = N.name_variant(p, rng)
        if p.culture == "cn" and rng.random() < 0.03:
            first = N.homophone(first, rng)
        if malformed and rng.random() < 0.5:
            first, last = "", ""
        email = p.emails[-1] if second_account and len(p.emails) > 1 else p.emails[0]
        if second_account and len(p.emails) == 1:
            local, _, dom = email.partition("@")
            email = f"{local}{rng.randrange(1, 99)}@{dom}"
        email = N.email_variant(email, rng).strip().lower()  # WordPress lower-cases and trims user_email
        billing = self._wc_address(p, first, last, True, malformed)
        shipping = self._wc_address(p, first, last, False, False) if rng.random() < 0.8 else \
            {k: "" for k in ("first_name", "last_name", "company", "address_1", "address_2", "city", "state",
                             "postcode", "country")}
        meta = []
        if rng.random() < 0.5:
            bd = N.impossible_date(rng) if malformed and rng.random() < 0.5 else \
                N.date_variant(p.birth_date, rng, p.culture)
            meta.append(self._meta("birthday", bd))
        if rng.random() < 0.4:
            g = {"M": ("male", "男", "m"), "F": ("female", "女", "f")}[p.gender]
            if p.culture != "cn":
                g = g[::2]
            meta.append(self._meta("gender", rng.choice(g)))
        meta.append(self._meta("marketing_consent", "yes" if p.consent_email else "no"))
        if p.culture == "cn" and rng.random() < 0.2:
            meta.append(self._meta("wechat_id", f"wxid_{p.given_pinyin}{rng.randrange(100, 999)}"))
        modified = min(created + timedelta(minutes=rng.randrange(0, 60 * 24 * 90)), self.now)
        username = email.partition("@")[0] if rng.random() < 0.7 else f"{p.family_pinyin or p.family_name.lower()}{cid}"
        self.data.shop_customers.append({
            "id": cid, "date_created": wc_date(created + SHOP_TZ_OFFSET), "date_created_gmt": wc_date(created),
            "date_modified": wc_date(modified + SHOP_TZ_OFFSET), "date_modified_gmt": wc_date(modified),
            "email": email, "first_name": first, "last_name": last, "role": "customer", "username": username,
            "billing": billing, "shipping": shipping, "is_paying_customer": False,
            "avatar_url": "https://secure.gravatar.com/avatar/"
                          f"{hashlib.md5(email.encode()).hexdigest()}?s=96&d=mm&r=g",  # noqa: S324 - not security
            "meta_data": meta,
        })
        self.truth("webshop", "customer", cid, p.person_id)
        return cid

    def shop_order(self, p: Person, customer: dict | None, when: datetime) -> int:
        rng = self.rng
        oid = self._next("wc_order")
        status = wchoice(rng, ("completed", "processing", "on-hold", "pending", "cancelled", "refunded", "failed"),
                             (55, 15, 5, 5, 10, 5, 5))
        currency = COUNTRY_CURRENCY[p.address.country]
        if customer is not None and rng.random() < 0.6:
            billing = dict(customer["billing"])
            shipping = dict(customer["shipping"]) if customer["shipping"].get("address_1") else \
                {k: v for k, v in billing.items() if k not in ("email", "phone")}
        else:  # typed again at checkout
            first, last, _ = N.name_variant(p, rng)
            billing = self._wc_address(p, first, last, True, False)
            shipping = self._wc_address(p, first, last, False, False)
        lines, subtotal = [], Decimal("0")
        for _ in range(rng.randrange(1, 4)):
            pidx = rng.randrange(len(D.PRODUCTS))
            qty = rng.choice((1, 1, 2, 3))
            price = (Decimal(D.PRODUCTS[pidx][2]) * CURRENCY_RATE[currency]).quantize(Decimal("0.01"))
            tot = price * qty
            subtotal += tot
            lines.append({"id": self._next("wc_line"), "name": D.PRODUCTS[pidx][1], "product_id": 90 + pidx,
                          "variation_id": 0, "quantity": qty, "tax_class": "", "subtotal": f"{tot:.2f}",
                          "subtotal_tax": "0.00", "total": f"{tot:.2f}", "total_tax": "0.00", "taxes": [],
                          "meta_data": [], "sku": D.PRODUCTS[pidx][0], "price": float(price)})
        ship = Decimal("0.00") if subtotal > 199 * CURRENCY_RATE[currency] else \
            (Decimal("12.00") * CURRENCY_RATE[currency]).quantize(Decimal("0.01"))
        modified = min(when + timedelta(minutes=rng.randrange(1, 60 * 24 * 10)), self.now)
        paid = status in ("completed", "processing", "refunded")
        pay = rng.choice((("alipay", "Alipay 支付宝"), ("wechatpay", "WeChat Pay 微信支付"),
                          ("bacs", "Direct Bank Transfer"), ("stripe", "Credit Card (Stripe)"), ("paypal", "PayPal")))
        order = {
            "id": oid, "parent_id": 0, "number": str(oid),
            "order_key": f"wc_order_{rng.getrandbits(52):013x}",
            "created_via": "checkout", "version": "9.4.2", "status": status, "currency": currency,
            "date_created": wc_date(when + SHOP_TZ_OFFSET), "date_created_gmt": wc_date(when),
            "date_modified": wc_date(modified + SHOP_TZ_OFFSET), "date_modified_gmt": wc_date(modified),
            "discount_total": "0.00", "discount_tax": "0.00", "shipping_total": f"{ship:.2f}", "shipping_tax": "0.00",
            "cart_tax": "0.00", "total": f"{subtotal + ship:.2f}", "total_tax": "0.00", "prices_include_tax": False,
            "customer_id": customer["id"] if customer is not None else 0,
            "customer_ip_address": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "customer_user_agent": "Mozilla/5.0", "customer_note": "",
            "billing": billing, "shipping": shipping, "payment_method": pay[0], "payment_method_title": pay[1],
            "transaction_id": f"{rng.randrange(10**15, 10**16)}" if paid else "",
            "date_paid": wc_date(when + SHOP_TZ_OFFSET + timedelta(minutes=1)) if paid else None,
            "date_paid_gmt": wc_date(when + timedelta(minutes=1)) if paid else None,
            "date_completed": wc_date(modified + SHOP_TZ_OFFSET) if status == "completed" else None,
            "date_completed_gmt": wc_date(modified) if status == "completed" else None,
            "cart_hash": "", "meta_data": [], "line_items": lines, "tax_lines": [],
            "shipping_lines": [{"id": self._next("wc_line"), "method_title": "Flat Rate", "method_id": "flat_rate",
                                "total": f"{ship:.2f}", "total_tax": "0.00", "taxes": [], "meta_data": []}],
            "fee_lines": [], "coupon_lines": [], "refunds": [],
        }
        self.data.shop_orders.append(order)
        if customer is not None and paid:
            customer["is_paying_customer"] = True
        self.truth("webshop", "order", oid, p.person_id)
        return oid

    # ------------------------------------------------------------------ WeChat
    def new_openid(self) -> str:
        return WECHAT_OPENID_PREFIX + _token(self.rng, 23)

    def wechat_user(self, p: Person, subscribed_at: datetime, tag_ids: list[int]) -> str:
        rng = self.rng
        openid = self.new_openid()
        r = rng.random()
        if p.culture == "cn":
            if r < 0.25:
                nick = rng.choice(D.WECHAT_NICK_WORDS) + p.given_name[-1] + rng.choice(D.WECHAT_NICK_DECOR)
            elif r < 0.45:
                nick = p.family_name + p.given_name
            elif r < 0.6:
                nick = f"{p.given_pinyin.capitalize()} {p.family_pinyin.capitalize()}"
            elif r < 0.75:
                nick = f"{p.family_pinyin}{p.given_pinyin}_{p.birth_date:%y}"
            else:
                nick = rng.choice(("快乐每一天", "Lucky🍀", "静待花开", "A～", "追风少年", "平安是福", "Sunny"))
        else:
            nick = p.nicknames[0] if p.nicknames and r < 0.4 else p.given_name
        a = p.address
        if rng.random() < 0.85:
            if a.country == "CN":
                loc = {"city": a.city_en, "province": a.province_en, "country": "China",
                       "city_zh": a.city.rstrip("市"), "province_zh": a.province.rstrip("省市"), "country_zh": "中国"}
            else:
                loc = {"city": a.city, "province": "", "country": D.COUNTRY_NAMES[a.country],
                       "city_zh": "", "province_zh": "", "country_zh": {"US": "美国", "GB": "英国", "DE": "德国"}[a.country]}
        else:
            loc = {"city": "", "province": "", "country": "", "city_zh": "", "province_zh": "", "country_zh": ""}
        remark = ""
        if rng.random() < 0.25:  # staff notes often carry the real name and phone number
            nm = p.family_name + p.given_name if p.culture == "cn" else p.full_name
            remark = rng.choice((nm, f"{nm} {N.phone_variant(p.mobiles[0], rng)}",
                                 f"VIP {p.family_name}{'先生' if p.gender == 'M' else '女士'}"))
        sex = 0 if rng.random() < 0.15 else (1 if p.gender == "M" else 2)
        user = {
            "subscribe": 1, "openid": openid, "nickname": nick, "sex": sex,
            "language": wchoice(rng, ("zh_CN", "en", "zh_TW"), (85, 10, 5)) if p.culture == "cn" else "en",
            **loc,
            "headimgurl": f"http://thirdwx.qlogo.cn/mmopen/{hashlib.sha1(openid.encode()).hexdigest()}/132",
            "subscribe_time": epoch(subscribed_at),
            "remark": remark, "groupid": 0, "tagid_list": sorted(tag_ids),
            "subscribe_scene": rng.choice(D.WECHAT_SCENES), "qr_scene": 0, "qr_scene_str": "",
        }
        if rng.random() < 0.35:  # only when the account is bound to an Open Platform account
            user["unionid"] = "oR5Gj" + _token(rng, 23)
        self.data.wechat_users.append(user)
        self.truth("wechat", "follower", openid, p.person_id)
        return openid

    def wechat_chat(self, p: Person, openid: str, when: datetime) -> None:
        """One customer-service session (msgrecord shape): the follower writes (2003), an agent answers (2002).

        Customers often quote their phone number or an order number, which links the chat to other systems.
        """
        rng = self.rng
        worker = rng.choice(("kf2001@shop", "kf2002@shop", "kf2003@shop"))
        t = epoch(when)
        lines = [(2003, rng.choice(D.WECHAT_CHAT_OPENERS))]
        if rng.random() < 0.4:
            lines.append((2003, rng.choice(D.WECHAT_CHAT_PHONE).format(phone=N.phone_variant(p.mobiles[0], rng))))
        lines.append((2002, rng.choice(D.WECHAT_CHAT_REPLIES)))
        if rng.random() < 0.5:
            lines.append((2003, rng.choice(("好的，谢谢", "收到", "谢谢！", "OK thanks"))))
        for opercode, text in lines:
            t += rng.randrange(5, 240)
            self.data.wechat_messages.append({"openid": openid, "opercode": opercode, "text": text, "time": t,
                                              "worker": worker})

    # ------------------------------------------------------------------ Asterisk CDR
    def cdr_number(self, e164: str) -> str:
        """Caller-id as a trunk delivers it: digits only, national or international prefixes vary."""
        rng = self.rng
        if e164.startswith("+86"):
            nat = e164[3:]
            if nat.startswith("1"):
                return wchoice(rng, (nat, "+86" + nat, "0086" + nat, "86" + nat, "0" + nat), (50, 15, 10, 15, 10))
            return wchoice(rng, ("0" + nat, "+86" + nat, "0086" + nat), (70, 15, 15))
        return wchoice(rng, (e164, "00" + e164[1:], e164[1:]), (50, 35, 15))

    def call(self, p: Person | None, when: datetime, number: str | None = None) -> str:
        rng = self.rng
        seq = self._next("call_seq")
        uniqueid = f"{epoch(when)}.{seq}"
        if p is not None:
            phones = p.mobiles + ([p.landline] if p.landline else [])
            number = self.cdr_number(rng.choice(phones))
        number = number or ""
        inbound = p is None or rng.random() < 0.8
        agent = rng.choice(("2001", "2002", "2003", "2005", "2010"))
        disposition = wchoice(rng, ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"), (70, 18, 6, 4, 2))
        ring = rng.randrange(2, 30)
        talk = rng.randrange(15, 900) if disposition == "ANSWERED" else 0
        answer = when + timedelta(seconds=ring) if disposition == "ANSWERED" else None
        end = when + timedelta(seconds=ring + talk)
        chan_id = f"{seq:08x}"
        if inbound:
            cname = number
            if p is not None and rng.random() < 0.15:
                cname = (f"{p.family_pinyin} {p.given_pinyin}".upper() if p.culture == "cn" else p.full_name.upper())
            if not number:
                cname, number = "Anonymous", "anonymous"
            row = {"accountcode": "", "src": number, "dst": rng.choice(("4000", "s", "4001")),
                   "dcontext": "from-trunk", "clid": f'"{cname}" <{number}>',
                   "channel": f"PJSIP/trunk-{chan_id}",
                   "dstchannel": f"PJSIP/{agent}-{seq + 1:08x}" if answer else "",
                   "lastapp": "Queue" if answer else rng.choice(("Queue", "Hangup")),
                   "lastdata": "support,t,,,300" if answer else "",
                   }
        else:
            row = {"accountcode": "sales" if rng.random() < 0.3 else "", "src": agent, "dst": number,
                   "dcontext": "from-internal", "clid": f'"Agent {agent}" <{agent}>',
                   "channel": f"PJSIP/{agent}-{chan_id}", "dstchannel": f"PJSIP/trunk-{seq + 1:08x}",
                   "lastapp": "Dial", "lastdata": f"PJSIP/{number}@trunk,60,tT"}
        row.update({"start": when, "answer": answer, "end": end, "duration": ring + talk, "billsec": talk,
                    "disposition": disposition, "amaflags": "DOCUMENTATION", "uniqueid": uniqueid, "userfield": "",
                    "peeraccount": "", "linkedid": uniqueid, "sequence": seq})
        self.data.calls.append(row)
        self.truth("cdr", "call", uniqueid, p.person_id if p else "")
        return uniqueid


def _choose_systems(p: Person, rng: random.Random) -> list[str]:
    k = wchoice(rng, (1, 2, 3, 4), (30, 35, 23, 12))
    weights = {"erp": 5, "webshop": 6, "wechat": 6 if p.culture == "cn" else 1, "cdr": 4}
    pool = list(SYSTEMS)
    chosen: list[str] = []
    for _ in range(k):
        s = wchoice(rng, pool, [weights[x] for x in pool])
        chosen.append(s)
        pool.remove(s)
    return sorted(chosen, key=SYSTEMS.index)


def initial_wechat_tags() -> list[dict]:
    return [{"id": 2, "name": "星标组"}, {"id": 100, "name": "VIP"}, {"id": 101, "name": "广东"},
            {"id": 102, "name": "老客户"}]


def build_world_data(people: list[Person], seed: int, malformed_share: float = 0.01,
                     duplicate_share: float = 0.06, unknown_call_share: float = 0.1) -> tuple[WorldData, dict]:
    """Build every source record for ``people``; returns the data and ``{person_id: [systems]}``."""
    rng = random.Random(seed * 7919 + 1)
    data = WorldData(wechat_tags=initial_wechat_tags())
    obs = Observer(rng, data)
    for i, (code, name, price) in enumerate(D.PRODUCTS, start=1):
        data.erp["product_product"].append({"id": i, "code": code, "name": name, "list_price": Decimal(price),
                                            "create_date": HISTORY_START, "write_date": HISTORY_START})
    data.erp["party_category"].append({"id": 1, "name": "Wholesale", "parent": None, "active": True,
                                       "create_date": HISTORY_START, "write_date": HISTORY_START})
    membership: dict[str, list[str]] = {}
    tag_ids = [t["id"] for t in data.wechat_tags]
    for p in people:
        systems = _choose_systems(p, rng)
        membership[p.person_id] = systems
        malformed = rng.random() < malformed_share
        first_seen = obs.rand_time(HISTORY_START, HISTORY_END - timedelta(days=30))
        if "erp" in systems:
            parties = [obs.erp_party(p, first_seen, malformed)]
            if rng.random() < duplicate_share:  # duplicate account created later by another clerk
                parties.append(obs.erp_party(p, obs.rand_time(first_seen), False))
            for _ in range(min(int(rng.expovariate(0.6)), 8)):
                obs.erp_sale(p, rng.choice(parties), obs.rand_time(first_seen))
        if "webshop" in systems:
            customers: list[dict] = []
            if rng.random() < 0.85:
                obs.shop_customer(p, first_seen, malformed=malformed)
                customers.append(data.shop_customers[-1])
                if rng.random() < duplicate_share:
                    obs.shop_customer(p, obs.rand_time(first_seen), second_account=True)
                    customers.append(data.shop_customers[-1])
            n_orders = min(int(rng.expovariate(0.5)), 10) + (0 if customers else 1)
            for _ in range(n_orders):
                cust = rng.choice(customers) if customers and rng.random() < 0.9 else None  # guest checkout
                when = obs.rand_time(first_seen)
                if cust is not None and wc_date(when) < cust["date_created_gmt"]:  # no orders before sign-up
                    when = datetime.fromisoformat(cust["date_created_gmt"]) + timedelta(hours=1)
                obs.shop_order(p, cust, when)
        if "wechat" in systems:
            tags = [t for t in tag_ids if rng.random() < 0.08]
            openid = obs.wechat_user(p, first_seen, tags)
            for _ in range(wchoice(rng, (0, 1, 2, 3), (65, 22, 9, 4))):
                obs.wechat_chat(p, openid, obs.rand_time(first_seen))
            if rng.random() < 0.02:  # second WeChat account (work phone)
                obs.wechat_user(p, obs.rand_time(first_seen), [])
        if "cdr" in systems:
            for _ in range(rng.randrange(1, 6)):
                obs.call(p, obs.rand_time(first_seen))
    # callers nobody knows (wrong numbers, sales calls, withheld numbers)
    n_unknown = int(len(data.calls) * unknown_call_share)
    for _ in range(n_unknown):
        num = "" if rng.random() < 0.15 else obs.cdr_number(
            "+86" + rng.choice(D.CN_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}")
        obs.call(None, obs.rand_time(), number=num)
    data.calls.sort(key=lambda c: (c["end"], c["sequence"]))  # Asterisk appends at hang-up
    data.wechat_users.sort(key=lambda u: u["subscribe_time"])
    data.wechat_messages.sort(key=lambda m: m["time"])
    return data, membership
