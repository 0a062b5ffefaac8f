"""What a caller may ask: raw HTTP input -> lookup keys, or ``BadInput`` with a message a person can act on.

Messages never repeat the input (it is personal data, and echoing it invites injection into logs).
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from hub.lookup.keys import city_key, email_lookup_key, name_keys, phone_key
from hub.standardise import normalize_text, standardise_phone


class BadInput(ValueError):
    """The request cannot be answered as asked (HTTP 400)."""


class NotAPhoneNumber(LookupError):
    """Well-formed digits that no phone plan assigns (an internal extension, a short code): nobody holds it."""


class PhoneQuery(NamedTuple):
    e164: str
    extension: str | None
    key: str


MAX_PHONE_CHARS = 64
MAX_PHONE_DIGITS = 17  # E.164 allows 15; an international prefix (00) may come in front
MAX_TEXT_CHARS = 200
MAX_EMAIL_CHARS = 254

# an extension at the end: "ext. 123", "x123", "#123", ";ext=123" (RFC 3966), "转123", "分机 123"
_EXTENSION_RE = re.compile(r"\s*(?:;\s*ext\s*=|ext(?:ension)?\.?|x|#|转|分机|分機)\s*(\d{1,8})\s*$", re.I)
_PHONE_CHARS_RE = re.compile(r"^\(?\+?[0-9\s\-().\/]+$")  # "(+86) 138…" too
_GOLDEN_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def check_text(value: str | None, what: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Reject what no lookup can mean: empty, too long, control characters, undecodable bytes."""
    if value is None or not value.strip():
        raise BadInput(f"{what} is empty")
    if len(value) > max_chars:
        raise BadInput(f"{what} is too long ({len(value)} characters; at most {max_chars})")
    if "\ufffd" in value:
        # the server decodes percent-escapes as UTF-8 and marks broken sequences with U+FFFD
        raise BadInput(f"{what} is not valid UTF-8")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise BadInput(f"{what} contains control characters")
    return value


def parse_phone(raw: str | None, region: str) -> PhoneQuery:
    """Any way a phone system writes a number -> its E.164 key.

    E.164, national with spaces / dashes / brackets, ``0086…``, ``+86 …``, full-width digits (１３８…), a
    ``tel:`` URI, and an extension at the end. Raises BadInput for what is not written like a phone number,
    NotAPhoneNumber for digits no numbering plan assigns.
    """
    text = normalize_text(check_text(raw, "phone number", MAX_PHONE_CHARS))  # NFKC: full-width -> ASCII
    text = re.sub(r"^tel:", "", text, flags=re.I).strip()
    extension = None
    m = _EXTENSION_RE.search(text)
    if m and m.start() > 0:
        extension, text = m.group(1), text[: m.start()].strip()
    if not _PHONE_CHARS_RE.match(text):
        raise BadInput("a phone number may hold only digits, spaces, a leading +, the separators - ( ) . / "
                       "and an extension at the end (ext. 123)")
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_PHONE_DIGITS:
        raise BadInput(f"too many digits for a phone number ({digits}; E.164 numbers have at most 15)")
    if digits < 3:
        raise BadInput("too few digits for a phone number")
    phone = standardise_phone(text, region)
    if phone.e164 is None:
        raise NotAPhoneNumber("no numbering plan assigns this number")
    return PhoneQuery(phone.e164, extension or phone.extension, phone_key(phone.e164))


def parse_email(raw: str | None) -> str:
    key = email_lookup_key(check_text(raw, "email", MAX_EMAIL_CHARS))
    if key is None:
        raise BadInput("email is not an e-mail address (name@domain)")
    return key


def _check_words(value: str | None, what: str) -> str:
    """Names and cities are words: letters of any script, spaces and . ' ’ - , · ( ) — nothing else."""
    text = check_text(value, what)
    for ch in text:
        if not (unicodedata.category(ch)[0] in "LMZ" or ch in _WORD_PUNCTUATION):
            raise BadInput(f"{what} may hold letters (any script), spaces and . ' - , · ( ) only")
    return text


_WORD_PUNCTUATION = frozenset(".'’-,·・()（）")


def parse_name_city(name: str | None, city: str | None) -> list[str]:
    """Name (any script, any order) with an optional city -> the keys to look up."""
    keys = name_keys(_check_words(name, "name"))
    if not keys:
        raise BadInput("name holds nothing to search by (letters or hanzi of a person's name)")
    if city is None:
        return sorted("n:" + k for k in keys)
    place = city_key(_check_words(city, "city"))
    if place is None:
        raise BadInput("city holds nothing to search by")
    return sorted(f"nc:{k}|{place}" for k in keys)


def parse_golden_id(raw: str | None) -> str:
    value = check_text(raw, "golden id", 64)
    if not _GOLDEN_ID_RE.match(value):
        raise BadInput("a golden id holds letters, digits, _ and - only (e.g. G000000042)")
    return value
