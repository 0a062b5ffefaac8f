"""E-mail addresses: cleaned display value + a provider-aware match key.

Syntax only (``email-validator`` with ``check_deliverability=False``): the hub never does DNS look-ups
while standardising — it must be deterministic and offline.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from hub.standardise.placeholders import email_placeholder, is_placeholder_text, is_role_address
from hub.standardise.text import as_str, normalize_text

_MAX_EMAIL_LEN = 320  # RFC 3696 errata: 64 + 1 + 255


class Email(NamedTuple):
    address: str | None   # trimmed, lower-cased display value ('john.doe+news@gmail.com')
    key: str | None       # match key with provider rules applied ('johndoe@gmail.com'); never display it
    domain: str | None
    flags: tuple[str, ...]


# Domains that are the same mailbox namespace → one canonical domain for the key.
_DOMAIN_ALIASES = {
    "googlemail.com": "gmail.com",
    "me.com": "icloud.com",
    "mac.com": "icloud.com",
    "protonmail.com": "proton.me",
    "protonmail.ch": "proton.me",
    "pm.me": "proton.me",
    # 12345@vip.qq.com is the same QQ number as 12345@qq.com. (hotmail/outlook and foxmail/qq are NOT
    # merged: they are separate namespaces and the same local part can be a different person.)
    "vip.qq.com": "qq.com",
}
# Misspelt domains of the big providers (typed on phones, never valid mail domains in practice). The key
# uses the intended domain so the record still meets the customer's other records; flagged.
_DOMAIN_TYPOS = {
    "gmial.com": "gmail.com", "gamil.com": "gmail.com", "gmai.com": "gmail.com", "gmail.co": "gmail.com",
    "gmail.con": "gmail.com", "gmail.cm": "gmail.com", "gmail.om": "gmail.com", "gmaill.com": "gmail.com",
    "gnail.com": "gmail.com", "hotmial.com": "hotmail.com", "hotmai.com": "hotmail.com",
    "hotmail.con": "hotmail.com", "hotmal.com": "hotmail.com", "outlook.con": "outlook.com",
    "outlok.com": "outlook.com", "yahoo.con": "yahoo.com", "yaho.com": "yahoo.com", "yahooo.com": "yahoo.com",
    "qq.con": "qq.com", "qq.cm": "qq.com", "qq.co": "qq.com", "163.con": "163.com", "163.cm": "163.com",
    "163.co": "163.com", "126.con": "126.com", "126.cm": "126.com", "sina.con": "sina.com",
    "foxmail.con": "foxmail.com", "icloud.con": "icloud.com", "iclould.com": "icloud.com",
}
# Providers that ignore dots in the local part.
_DOTLESS = frozenset({"gmail.com"})
# Providers that deliver user+tag@ to user@ (sub-addressing).
_PLUS_TAGS = frozenset({
    "gmail.com", "outlook.com", "hotmail.com", "live.com", "icloud.com", "proton.me", "fastmail.com", "fastmail.fm",
    "yandex.ru", "yandex.com", "zoho.com", "gmx.de", "gmx.net", "web.de", "posteo.de", "mailbox.org",
})

_MAILTO_RE = re.compile(r"^mailto:", re.I)
_ANGLE_RE = re.compile(r"<([^<>]*)>")
# Chinese keyboards produce full-width ＠ and 。 (NFKC maps ＠ but not 。).
_CN_DOT = str.maketrans({"。": ".", "，": ",", "；": ";"})

# Fast path for the overwhelmingly common plain-ASCII shape. It accepts only a strict subset of what
# email-validator accepts (dot-atom local part, LDH labels, alphabetic TLD), so the result is the same;
# anything else — Unicode, quoted local parts, odd TLDs — goes to email-validator.
_PLAIN_RE = re.compile(
    r"^([a-z0-9_%+\-]{1,64}(?:\.[a-z0-9_%+\-]{1,64})*)@((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+([a-z]{2,63}))$"
)
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)

_MISSING = Email(None, None, None, ("email.missing",))
_INVALID = Email(None, None, None, ("email.invalid",))
_PLACEHOLDER = Email(None, None, None, ("email.placeholder",))


def _key(local: str, domain: str) -> str:
    domain = _DOMAIN_ALIASES.get(domain, domain)
    if domain in _PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in _DOTLESS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


@lru_cache(maxsize=200_000)
def _standardise_email(raw: str) -> Email:
    s = normalize_text(raw).translate(_CN_DOT)
    if not s:
        return _MISSING
    m = _ANGLE_RE.search(s)          # 'Chen Wei <chen.wei@example.com>'
    if m:
        s = m.group(1)
    s = _MAILTO_RE.sub("", s).strip().strip(",;").rstrip(".").replace(" ", "")  # "…at a@b.com."
    if not s:
        return _MISSING
    low = s.lower()
    m = _PLAIN_RE.match(low) if len(low) <= 254 else None
    # "--" in a label is IDNA territory (xn--…, and "ab--" is reserved): left to email-validator
    if m and len(m.group(1)) <= 64 and m.group(3) not in _SPECIAL_TLDS and "--" not in m.group(2):
        local, domain = m.group(1), m.group(2)
    else:
        try:
            v = validate_email(s, check_deliverability=False)
        except EmailNotValidError:
            return _INVALID
        local = v.local_part.lower()
        domain = v.domain.lower()
    flags: tuple[str, ...] = ()
    grade = email_placeholder(f"{local}@{domain}")
    if grade == "email.placeholder":  # noemail@…, test@test.com: no address at all
        return _PLACEHOLDER
    if grade:  # @example.com: names a test record, not a person's mailbox
        flags = (grade,)
    if is_role_address(local + "@"):  # info@, einkauf3@, 采购@: a function's mailbox, shared by its holders
        flags = (*flags, "email.role")
    key_domain = _DOMAIN_TYPOS.get(domain)
    if key_domain:
        flags = (*flags, "email.domain_typo")
    else:
        key_domain = domain
    if key_domain in ("qq.com", "vip.qq.com", "foxmail.com") and not local.isdigit():
        # QQ mail allows aliases, but a non-numeric qq.com local part cannot be joined to a QQ number.
        flags = (*flags, "email.qq_alias")
    return Email(f"{local}@{domain}", _key(local, key_domain), domain, flags)


_MULTI_SEP_RE = re.compile(r"[;,，；、\s]+")


def standardise_email(raw: object) -> Email:
    """Trim, lower-case and syntax-check an e-mail address; compute its provider-aware match key.

    Never raises: ``Email(None, None, None, ('email.invalid',))`` for bad input. A field holding
    several addresses gives the first valid one, flagged ``email.multiple``. A placeholder (``noemail@…``,
    ``test@test.com``) is no address: ``Email(None, None, None, ('email.placeholder',))``; an address at a
    domain reserved for examples keeps its key, flagged ``email.reserved_domain`` (see ``placeholders``).
    """
    s = as_str(raw)
    if s is None or not s.strip():
        return _MISSING
    if len(s) > _MAX_EMAIL_LEN * 2:
        return _INVALID
    if is_placeholder_text(s):  # "n.a.", "keine", "-" typed where no address was known
        return _PLACEHOLDER
    try:
        e = _standardise_email(s)
        if e.address is None and s.count("@") > 1:
            # "a@x.com; b@y.com": keep the first valid address, say so
            for part in _MULTI_SEP_RE.split(s):
                if "@" in part:
                    e2 = _standardise_email(part)
                    if e2.address:
                        return e2._replace(flags=(*e2.flags, "email.multiple"))
        return e
    except Exception:  # defensive: the validator on pathological Unicode
        return Email(None, None, None, ("email.invalid", "standardise.error"))


def email_key(raw: object) -> str | None:
    """Shortcut: the match key or None."""
    return standardise_email(raw).key
