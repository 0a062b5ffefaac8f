"""Plain words for every machine-readable code the stages write: quarantine reasons and field quality flags.

Staging stores flags as ``<field>:<code>`` (``phones:phone.invalid``) and quarantine reasons as bare codes
(``required.name_missing``). ``describe(code)`` gives the label and the suggested action an operator can act on.
``tests/test_quality_codes.py`` scans the stages' source and the mapping declarations and fails when a code
has no entry here.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class CodeText(NamedTuple):
    label: str
    action: str


_FIX_SOURCE = "Correct it in the source system; the next sync picks it up."

CODES: dict[str, CodeText] = {
    # -- quarantine: the record could not be staged ------------------------------------------------------------
    "required.name_missing": CodeText(
        "No usable name (person or company)",
        "Add the customer's name in the source system; records without a name cannot be matched safely."),
    "required.contact_missing": CodeText(
        "No usable phone number or e-mail address",
        "Add a phone number or e-mail in the source system (the flags next to it say why a value was unusable)."),
    "required.reachable_missing": CodeText(
        "No way to reach the customer: no usable e-mail, phone or address (street, city or postcode)",
        "Add an e-mail, a phone number or an address in the source system."),
    "required.identifiable_missing": CodeText(
        "Nothing but a name: no usable e-mail, phone, address, birth date or id number to tell the customer apart",
        "Add an e-mail, a phone number, an address or a birth date in the source system."),
    "required.matchable_missing": CodeText(
        "Nothing to match the customer by: no name, company, e-mail, phone or id number",
        "Add the customer's name, an e-mail or a phone number in the source system."),
    "required.source_id_missing": CodeText(
        "The source sent a record without its id",
        "Check the connector's mapping of the id field; a record without an id cannot be tracked or written back."),
    "required.customer_source_id_missing": CodeText(
        "Order, shipment or event without its customer",
        "Link the record to a customer in the source system, or check the mapping of the customer reference."),
    "required.phone_missing": CodeText(
        "Call without a usable caller number",
        "Usually an anonymous or internal call; nothing to fix unless many calls are affected (then check the "
        "call center's caller-id setting)."),
    "required.occurred_at_missing": CodeText(
        "Event without a usable date and time",
        "Check the time field of the source's export (format, time zone)."),
    "required.ordered_at_missing": CodeText(
        "Order without a usable order date",
        "Fill in the order date in the source system or check the mapping of the date field."),
    "required.key_missing": CodeText(
        "Imported row without a record id",
        "Fill the id column of the file (or name the id column with --key) and import it again."),
    "key.duplicate": CodeText(
        "The same record id appears twice in the imported file",
        "Remove or renumber the duplicate row in the file and import it again."),
    "encoding.undecodable": CodeText(
        "Imported row whose bytes are not text in the file's encoding",
        "Its raw bytes are kept in quarantine: fix the row (or give the file's encoding with --encoding) and "
        "import the file again."),
    "encoding.mixed": CodeText(
        "Imported row in another encoding than the rest of the file (UTF-8 inside a GB18030/Big5 file)",
        "Save the whole file in one encoding (UTF-8 is safest) and import it again; the raw bytes are kept."),
    "cell.oversized": CodeText(
        "Imported row with a cell over 32,767 characters (Excel's own limit)",
        "Look at the cell in the file (often a broken export or pasted data); shorten it and import again."),
    "payload.malformed": CodeText(
        "The source sent data the mapping cannot read",
        "Look at the record in quarantine; if many are affected the source's API or export format changed — "
        "update the mapping in hub/mappings."),
    "mapping.missing": CodeText(
        "No mapping is declared for this kind of record",
        "Declare the entity in the source's mapping (hub/mappings) or stop pulling it."),
    "text.formula_like": CodeText(
        "Value a spreadsheet would run as a formula (=…, +…, -…, @…)",
        "Nothing breaks: every export escapes it. Check the source — such values are often pasted by mistake, "
        "sometimes planted to attack whoever opens an export (CSV injection)."),
    "value.invalid": CodeText(
        "A value does not have the type the mapping expects",
        "Check the mapping of the field named in the quarantine detail."),
    "value.unmapped": CodeText(
        "A code value has no translation in the mapping (e.g. an unknown order status)",
        "Add the value to the field's `values:` table in the mapping."),
    # -- names --------------------------------------------------------------------------------------------------
    "name.missing": CodeText("Name is empty", _FIX_SOURCE),
    "name.unparseable": CodeText("Name could not be read as a person's name",
                                 "Check the name in the source (symbols, a placeholder like 'N/A', a company?)."),
    "name.note": CodeText("The name field carried a note of the ERP's (#00999, (old account), 测试) — split off",
                          "Nothing to do: matching reads the name without it; clean the name field in the source "
                          "when convenient."),
    "name.note_duplicate": CodeText("The ERP marked this party as a duplicate in its name (DUPLICATE, 重复)",
                                    "Check the golden customer it joined; merge or deactivate the party in the ERP."),
    "name.note_test": CodeText("The ERP marked this party as a test party in its name (test, 测试)",
                               "Deactivate or delete test parties in the source system."),
    "name.note_inactive": CodeText("The ERP marked this party as old or not to be used (old account, 停用, 作废)",
                                   "Deactivate the party in the source system if it is no longer used."),
    "name.note_code": CodeText("The name field carried a code or number (#00999, [12345]) — split off",
                               "Move the code to the party's code or reference field in the source system."),
    "name.organisation": CodeText("The party is an organisation (legal form GmbH, Ltd., 有限公司) — matched as one",
                                  "Nothing to do: organisations are matched on company name, ids and address."),
    "name.rejected": CodeText("Nickname was not taken as a name (no known surname, or symbols)",
                              "Nothing to do: the record still matches on its other details."),
    "name.title": CodeText("Title removed from the name (Mr, Dr, 先生 …)", "Nothing to do; informational."),
    "name.suffix": CodeText("Suffix removed from the name (Jr, III …)", "Nothing to do; informational."),
    "name.honorific": CodeText("Honorific removed from a Chinese name (先生, 女士 …)",
                               "Nothing to do; informational."),
    "name.familiar": CodeText("Familiar form of address (老王, 小李) read as a surname only",
                              "Replace the nickname with the customer's full name in the source if you know it."),
    "name.initial": CodeText("Name given with an initial only (J. Smith)",
                             "Add the full given name in the source where known; initials match weakly."),
    "name.single_token": CodeText("Name has one word only", "Add the full name in the source where known."),
    "name.single_field": CodeText("Given and family name arrived in one field and were split by the hub",
                                  "Nothing to do; check a few records if names look swapped."),
    "name.order_guessed": CodeText("Order of given and family name was guessed",
                                   "Nothing to do unless names look swapped; then use separate name fields."),
    "name.mixed_script": CodeText("Name mixes Chinese characters and Latin letters",
                                  "Check the name in the source; keep one script per field where possible."),
    "name.other_script": CodeText("Name in Japanese or Korean script next to Chinese characters",
                                  "Nothing to do; informational."),
    "name.transliterated": CodeText("Chinese name given in pinyin, read as Chinese",
                                    "Nothing to do; informational."),
    "name.unknown_surname": CodeText("Surname not in the list of known surnames",
                                     "Check the name; it may be a nickname or a typo."),
    "name.unusual_length": CodeText("Name unusually long or short for a person's name",
                                    "Check the name in the source (a company, a note, or a truncated value?)."),
    "name.family_only": CodeText("Only a family name was given", "Add the given name in the source where known."),
    "name.symbols": CodeText("Name contains symbols or emoji", "Clean the name in the source system."),
    "company.missing": CodeText("Company name is empty", _FIX_SOURCE),
    "company.unparseable": CodeText("Company name could not be read", _FIX_SOURCE),
    "company.no_legal_form": CodeText("Company name without a legal form (Ltd, GmbH, 有限公司)",
                                      "Nothing to do; informational."),
    # -- e-mail ---------------------------------------------------------------------------------------------------
    "email.invalid": CodeText("E-mail address is not a valid address and was left out",
                              "Correct the e-mail address in the source system."),
    "email.missing": CodeText("No e-mail address", "Ask for an e-mail address at the next contact."),
    "email.placeholder": CodeText("E-mail field held a placeholder (noemail@…, test@test.com) — left out",
                                  "Leave the field empty in the source system when there is no address."),
    "email.reserved_domain": CodeText("E-mail at a domain reserved for examples (@example.com)",
                                      "A test or migration placeholder: ask for the real address at the next "
                                      "contact."),
    "email.role": CodeText("E-mail of a function (info@, einkauf@, 采购@), not of a person",
                           "Nothing to do; add the person's own address in the source where known."),
    "email.domain_typo": CodeText("E-mail domain typo corrected (gmial.com → gmail.com)",
                                  "Correct the address in the source so both systems agree."),
    "email.multiple": CodeText("Several e-mail addresses in one field, split by the hub",
                               "Nothing to do; use one field per address in the source if you can."),
    "email.qq_alias": CodeText("QQ number address and alias address recognised as the same mailbox",
                               "Nothing to do; informational."),
    # -- phone ------------------------------------------------------------------------------------------------------
    "phone.invalid": CodeText("Phone number is not a valid number and was left out",
                              "Correct the phone number in the source system."),
    "phone.placeholder": CodeText("Phone field held a dummy number (13800000000, 0000000, 1234567) — left out",
                                  "Leave the field empty in the source system when there is no number."),
    "phone.fictional": CodeText("Phone number from a range reserved for fiction (555-0100…0199)",
                                "A test or migration placeholder: ask for the real number at the next contact."),
    "phone.possible": CodeText("Phone number has a plausible length but no valid number range",
                               "Check the number with the customer; it may have a typo."),
    "phone.missing": CodeText("No phone number", "Ask for a phone number at the next contact."),
    "phone.foreign": CodeText("Phone number from another country than the source's home country",
                              "Nothing to do if the customer lives abroad; otherwise check the country code."),
    "phone.multiple": CodeText("Several phone numbers in one field, split by the hub",
                               "Nothing to do; use one field per number in the source if you can."),
    "phone.plus_added": CodeText("International number without a leading + (read as international)",
                                 "Store numbers with their + in the source."),
    # -- dates ------------------------------------------------------------------------------------------------------
    "date.missing": CodeText("Date is empty", _FIX_SOURCE),
    "date.unparseable": CodeText("Date could not be read", "Check the date format of the source field."),
    "date.impossible": CodeText("Date does not exist (31 February, month 13)", _FIX_SOURCE),
    "date.future": CodeText("Birth date in the future", _FIX_SOURCE),
    "date.partial": CodeText("Date incomplete (year or month only)", "Complete the date in the source if known."),
    "date.zero": CodeText("Placeholder date (0000-00-00, 1900-01-01) left out", _FIX_SOURCE),
    "datetime.unparseable": CodeText("Date and time could not be read",
                                     "Check the timestamp format of the source field."),
    "datetime.impossible": CodeText("Date and time does not exist", _FIX_SOURCE),
    "birth_date.from_national_id": CodeText("Birth date taken from the national id number",
                                            "Nothing to do; informational."),
    # -- identifiers -------------------------------------------------------------------------------------------------
    "national_id.invalid": CodeText("National id number is not valid and was left out", _FIX_SOURCE),
    "national_id.format": CodeText("National id number has the wrong length or characters", _FIX_SOURCE),
    "national_id.checksum": CodeText("National id number fails its check digit (a typo)", _FIX_SOURCE),
    "national_id.region": CodeText("National id number has an unknown region code", _FIX_SOURCE),
    "national_id.birth_date": CodeText("National id number holds an impossible birth date", _FIX_SOURCE),
    "national_id.legacy15": CodeText("Old 15-digit national id number, converted to 18 digits",
                                     "Nothing to do; informational."),
    "national_id.missing": CodeText("No national id number", "Nothing to do unless your process requires one."),
    "national_id.unverified": CodeText(
        "Identifier of an undeclared kind (not a Chinese resident id), kept as written without a check",
        "Nothing to do; map its type in the source's mapping to have it validated."),
    "national_id.unknown_type": CodeText("Identifier of a type the hub does not know",
                                         "Map the identifier type in the source's mapping."),
    "national_id.birth_date_mismatch": CodeText(
        "Birth date disagrees with the birth date in the national id number",
        "Check both with the customer and correct the wrong one in the source."),
    "national_id.gender_mismatch": CodeText("Gender disagrees with the national id number",
                                            "Check both and correct the wrong one in the source."),
    "hk_id.format": CodeText("Hong Kong identity card number has the wrong format", _FIX_SOURCE),
    "hk_id.checksum": CodeText("Hong Kong identity card number fails its check digit", _FIX_SOURCE),
    "hk_id.missing": CodeText("No Hong Kong identity card number", "Nothing to do; informational."),
    "tw_id.format": CodeText("Taiwan id number has the wrong format", _FIX_SOURCE),
    "tw_id.checksum": CodeText("Taiwan id number fails its check digit", _FIX_SOURCE),
    "tw_id.missing": CodeText("No Taiwan id number", "Nothing to do; informational."),
    "ssn.format": CodeText("US social security number has the wrong format", _FIX_SOURCE),
    "ssn.invalid": CodeText("US social security number is not a valid number", _FIX_SOURCE),
    "ssn.sample": CodeText("US social security number is a known sample or advertising number", _FIX_SOURCE),
    "ssn.missing": CodeText("No US social security number", "Nothing to do; informational."),
    "uscc.format": CodeText("Company credit code (USCC) has the wrong format", _FIX_SOURCE),
    "uscc.checksum": CodeText("Company credit code (USCC) fails its check digit", _FIX_SOURCE),
    "uscc.org_code_checksum": CodeText("Organisation code inside the company credit code fails its check",
                                       _FIX_SOURCE),
    "uscc.region": CodeText("Company credit code has an unknown region code", _FIX_SOURCE),
    "uscc.missing": CodeText("No company credit code", "Nothing to do; informational."),
    # -- addresses ---------------------------------------------------------------------------------------------------
    "address.missing": CodeText("No address", "Ask for an address at the next order or contact."),
    "address.unparseable": CodeText("Address could not be read", _FIX_SOURCE),
    "address.division_unknown": CodeText("Province or city not recognised",
                                         "Check the spelling of the province / city in the source."),
    "address.ambiguous_division": CodeText("City name exists in several provinces; the province decided",
                                           "Add the province in the source if it is missing."),
    "postal_code.invalid": CodeText("Postal code is not valid for the country and was left out", _FIX_SOURCE),
    "country.unknown": CodeText("Country not recognised", "Use a standard country name or ISO code in the source."),
    "country.defaulted": CodeText("No country given; the source's home country was assumed",
                                  "Nothing to do unless the customer lives abroad."),
    # -- other values --------------------------------------------------------------------------------------------------
    "gender.invalid": CodeText("Gender value not recognised", "Add the value to the mapping or fix it at source."),
    "gender.from_national_id": CodeText("Gender taken from the national id number", "Nothing to do; informational."),
    "language.invalid": CodeText("Language code not recognised", _FIX_SOURCE),
    "number.invalid": CodeText("Amount or quantity is not a number", _FIX_SOURCE),
    "bool.invalid": CodeText("Yes/no value not recognised", "Add the value to the mapping or fix it at source."),
    "text.truncated": CodeText("Text longer than the hub keeps; it was shortened", "Nothing to do; informational."),
    "standardise.error": CodeText("The hub could not standardise this value (an internal error, value left out)",
                                  "Report it with the quarantine row's source id; the value was kept raw."),
}

# `required.<rule>_missing` for rules a deployment's own mapping declares
_REQUIRED = re.compile(r"^required\.(?P<rule>[a-z0-9_]+)_missing$")
# codes written with a detail after them: "key.duplicate (first at row 3)"
_DETAIL = re.compile(r"^(?P<code>[a-z0-9_]+(?:\.[a-z0-9_]+)+)(?:\s*\(.*\))?$")


def bare_code(code: str) -> str:
    """'phones:phone.invalid' -> 'phone.invalid'; 'key.duplicate (first at row 3)' -> 'key.duplicate'."""
    code = code.split(":", 1)[1] if ":" in code and not code.startswith("required.") else code
    m = _DETAIL.match(code.strip())
    return m.group("code") if m else code.strip()


def describe(code: str) -> CodeText:
    """Label and suggested action for a reason or flag code; an unknown code says so plainly."""
    bare = bare_code(code)
    if bare in CODES:
        return CODES[bare]
    m = _REQUIRED.match(bare)
    if m:
        what = m.group("rule").replace("_", " ")
        return CodeText(f"Required field '{what}' is empty",
                        f"Fill '{what}' in the source system, or drop the rule from the mapping's `required`.")
    return CodeText(f"Unlisted code {bare}", "Add a label for this code to hub/quality/codes.py.")


def is_known(code: str) -> bool:
    return bare_code(code) in CODES
