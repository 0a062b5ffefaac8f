"""Standardisers: pure, cached functions from raw source values to clean values + match keys.

Every public function accepts any input (None, '', junk, huge strings, arbitrary Unicode) and never
raises: it returns a value, or None plus machine-readable flag codes (``phone.invalid``,
``email.invalid``, ``date.impossible``, ``national_id.checksum``, ``name.unparseable`` …).
"""

from hub.standardise._name_data import ROMANISED_SURNAME_PINYIN
from hub.standardise.addresses import (
    Address,
    country_code,
    standardise_address,
    standardise_postal_code,
    standardise_street,
)
from hub.standardise.dates import ParsedDate, standardise_birth_date, standardise_date
from hub.standardise.emails import Email, email_key, standardise_email
from hub.standardise.identifiers import (
    CreditCode,
    NationalId,
    RegionalId,
    Ssn,
    validate_cn_resident_id,
    validate_hk_id,
    validate_ssn,
    validate_tw_id,
    validate_uscc,
)
from hub.standardise.names import (
    Company,
    PersonName,
    given_name_variants,
    nickname_canonical,
    pinyin,
    standardise_company,
    standardise_gender,
    standardise_person_name,
    surname_pinyin,
    surname_variants,
    to_simplified,
)
from hub.standardise.phones import DEFAULT_REGION, Phone, phone_e164, standardise_phone
from hub.standardise.text import as_str, fold_ascii, normalize_text, strip_punctuation, text_key


def clear_caches() -> None:
    """Drop every memoised result (e.g. after a large batch, to give the memory back)."""
    import functools
    import sys

    for name, mod in list(sys.modules.items()):
        if not name.startswith("hub.standardise"):
            continue
        for obj in vars(mod).values():
            if isinstance(obj, functools._lru_cache_wrapper):
                obj.cache_clear()


__all__ = [
    "clear_caches",
    "ROMANISED_SURNAME_PINYIN",
    "Address",
    "CreditCode",
    "NationalId",
    "Ssn",
    "country_code",
    "standardise_address",
    "standardise_postal_code",
    "standardise_street",
    "RegionalId",
    "validate_cn_resident_id",
    "validate_hk_id",
    "validate_ssn",
    "validate_tw_id",
    "validate_uscc",
    "DEFAULT_REGION",
    "Company",
    "Email",
    "ParsedDate",
    "PersonName",
    "Phone",
    "as_str",
    "email_key",
    "fold_ascii",
    "given_name_variants",
    "nickname_canonical",
    "normalize_text",
    "phone_e164",
    "pinyin",
    "standardise_birth_date",
    "standardise_company",
    "standardise_date",
    "standardise_email",
    "standardise_gender",
    "standardise_person_name",
    "standardise_phone",
    "strip_punctuation",
    "surname_pinyin",
    "surname_variants",
    "text_key",
    "to_simplified",
]
