"""Placeholder contact values: what an ERP holds where nobody knew the real one.

A first sync of an ERP meets ``noemail@…``, ``test@test.com``, ``n/a``, ``0000000``, ``13800000000`` and
numbers from the ranges that are fictional by standard (North American 555-0100..0199). Such a value is
*missing*, never a shared identifier: two parties with ``13800000000`` are not one person.

Two grades:

* **placeholder** — not a contact value at all (a dummy, a "none" written as an address): the standardisers
  return no match key for it and flag it (``email.placeholder``, ``phone.placeholder``).
* **reserved** — a syntactically real value from a range reserved for examples and tests (``@example.com``,
  555-01xx): it names a *record* (a test party, a migrated party numbered ``customer00017``), not a person.
  It keeps its key, flagged ``email.reserved_domain`` / ``phone.fictional``; the matching engine lets only an
  exact copy count and never reads a near miss (customer00017 / customer00018) or a difference as evidence.

Values that are too frequent to be anyone's own identifier are found by the matching engine from the data
itself (``hub.dedupe.prepare``); these lists are only what no frequency can show (a dummy on one record).
"""

from __future__ import annotations

import re

# local parts that say "no address" (compared after removing dots, dashes and underscores)
_EMAIL_PLACEHOLDER_LOCAL = frozenset({
    "noemail", "nomail", "noaddress", "none", "no", "na", "nil", "null", "nan", "test", "testing", "tester",
    "test1", "test123", "dummy", "fake", "unknown", "unknow", "noreply", "donotreply", "donotuse", "donotmail",
    "donotemail", "invalid", "sample", "xxx", "xx", "x", "abc", "asdf", "asdfgh", "qwerty", "nobody", "noone",
    "empty", "blank", "notprovided", "notavailable", "notgiven", "noname", "placeholder", "nomailbox",
    "noemailaddress", "noemailprovided", "withheld", "declined", "refused", "default",
    "keine", "kein", "keineangabe", "ka", "nv", "unbekannt",
})
_EMAIL_PLACEHOLDER_DOMAINS = frozenset({
    "none.com", "noemail.com", "nomail.com", "no-email.com", "test.com", "testing.com",
    "fake.com", "dummy.com", "invalid.com", "null.com", "unknown.com", "donotreply.com", "na.com", "xxx.com",
    "abc.com", "asdf.com", "mailinator.com", "localhost", "localdomain",
})
# RFC 2606 / RFC 6761 names reserved for documentation and testing
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org", "example.edu"})
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})
_LOCAL_SEPARATORS = re.compile(r"[._\-+]")


def email_placeholder(address: str | None) -> str | None:
    """``'email.placeholder'``, ``'email.reserved_domain'`` or None for a syntactically valid address."""
    if not address or "@" not in address:
        return None
    local, _, domain = address.lower().rpartition("@")
    bare = _LOCAL_SEPARATORS.sub("", local)
    if (bare in _EMAIL_PLACEHOLDER_LOCAL or domain in _EMAIL_PLACEHOLDER_DOMAINS or not bare
            or (len(bare) >= 3 and len(set(bare)) == 1)):  # xxxxx@, 00000@
        return "email.placeholder"
    if domain in _RESERVED_DOMAINS or domain.rsplit(".", 1)[-1] in _RESERVED_TLDS \
            or any(domain.endswith("." + d) for d in _RESERVED_DOMAINS):
        return "email.reserved_domain"
    return None


_DIGITS = re.compile(r"\D+")
_SEQUENCES = ("0123456789012345", "9876543210987654")
# North American numbers reserved for fiction: NXX 555, line 0100-0199 (with or without area code)
_NANP_FICTIONAL = re.compile(r"^(?:1?\d{3}|1)?55501\d\d$")


def phone_placeholder(raw_or_e164: str | None) -> str | None:
    """``'phone.placeholder'`` (a dummy: every digit the same, a prefix followed by zeros, a counting
    sequence), ``'phone.fictional'`` (NANP 555-0100..0199) or None. Reads the digits only, so it applies to
    raw values, E.164 strings and digit keys alike."""
    if not raw_or_e164:
        return None
    d = _DIGITS.sub("", str(raw_or_e164))
    if not d:
        return None
    national = d
    for cc in ("0086", "86", "001", "1"):
        if national.startswith(cc) and len(national) - len(cc) >= 7:
            national = national[len(cc):]
            break
    national = national.lstrip("0") or "0"
    if len(set(d)) == 1 or len(set(national)) == 1:
        return "phone.placeholder"
    if len(national) >= 9 and national[-7:] == "0000000":  # 13800000000, 13900000000
        return "phone.placeholder"
    if len(national) >= 6 and any(national in s for s in _SEQUENCES):
        return "phone.placeholder"  # 1234567, 123456789, 12345678901, 987654321
    if _NANP_FICTIONAL.match(d[-11:] if len(d) > 11 else d):
        return "phone.fictional"
    return None


_TEXT_PLACEHOLDERS = frozenset({
    "n/a", "na", "n.a.", "none", "null", "nil", "nan", "unknown", "unknow", "-", "--", "---", "?", "??", "x",
    "xx", "xxx", "tbd", "tba", "test", "dummy", "not available", "not provided", "no", "0", "未知", "无", "不详",
    "暂无", "没有", "空", "测试",
    # German clerks: keine Angabe, nicht vorhanden, nicht verfügbar, unbekannt, entfällt
    "k.a.", "k. a.", "ka", "k.a", "keine", "kein", "keine angabe", "keine angaben", "n.v.", "n. v.", "nv", "n/v",
    "nicht vorhanden", "nicht verfügbar", "unbekannt", "entfällt", "/", ".", "..", "...", "*", "none.", "n.a",
})


def is_placeholder_text(value: str | None) -> bool:
    """A whole field that says "no value" (``n/a``, ``unknown``, ``-``, ``k.A.``, ``keine``, ``未知``). Not for name
    fields: ``Na`` is a given name (李娜)."""
    return value is not None and " ".join(value.strip().lower().split()) in _TEXT_PLACEHOLDERS


# Mailboxes of a function, not of a person (RFC 2142 and what companies actually use): held by whoever does
# the job, so several parties of one company share them. Compared without digits and separators
# (einkauf3@, info-de@, sales.cn@).
ROLE_LOCAL_PARTS = frozenset({
    "info", "information", "office", "mail", "email", "post", "postmaster", "hostmaster", "webmaster", "contact",
    "contacts", "kontakt", "sales", "sale", "vertrieb", "verkauf", "einkauf", "purchase", "purchasing",
    "procurement", "buying", "orders", "order", "bestellung", "bestellungen", "service", "services",
    "kundenservice", "customerservice", "support", "help", "helpdesk", "hotline", "admin", "administration",
    "verwaltung", "hr", "jobs", "career", "careers", "personal", "bewerbung", "buchhaltung", "accounting",
    "accounts", "finance", "finanzen", "billing", "invoice", "invoices", "rechnung", "rechnungen", "payment",
    "team", "zentrale", "empfang", "reception", "sekretariat", "secretary", "marketing", "presse", "press",
    "logistik", "logistics", "versand", "shipping", "lager", "warehouse", "export", "import", "legal", "it",
    "technik", "general", "enquiries", "inquiries", "enquiry", "inquiry", "hello", "hallo", "business",
    "采购", "销售", "客服", "财务", "行政", "人事", "市场", "前台", "服务", "业务", "总机", "办公室",
})
_ROLE_TOKENS = re.compile(r"[._\-+\d]+")


def is_role_address(address: str | None) -> bool:
    """An address of a function (``info@``, ``einkauf3@``, ``sales.de@``, ``采购@``) rather than of a person:
    its local part, without digits and separators, is a role word, or its first word is one followed only by
    a short code (``info-de``, ``sales.cn``)."""
    if not address or "@" not in address:
        return False
    local = address.rpartition("@")[0].lower()
    words = [w for w in _ROLE_TOKENS.split(local) if w]
    if not words:
        return False
    return "".join(words) in ROLE_LOCAL_PARTS or (words[0] in ROLE_LOCAL_PARTS and all(len(w) <= 3 for w in words[1:]))

