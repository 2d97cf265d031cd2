"""Normalisation of Patient demographics for the EMPI: ID numbers, names, phones and addresses.

Every function here runs on each incoming Patient and on whole batches, so the code tables (``data/``) are read
once, on first use, and regexes are compiled at import.
"""

from rhip.empi.normalize.address import ParsedAddress, address_from_fhir, parse_address
from rhip.empi.normalize.idnumber import (
    IdNumber,
    check_character,
    contradictions,
    is_typo_of,
    parse_id_number,
    upgrade_15,
)
from rhip.empi.normalize.names import PersonName, name_from_fhir, normalise_name, pinyin_of, to_simplified
from rhip.empi.normalize.phones import normalise_phone, phones_from_fhir

__all__ = [
    "IdNumber",
    "ParsedAddress",
    "PersonName",
    "address_from_fhir",
    "check_character",
    "contradictions",
    "is_typo_of",
    "name_from_fhir",
    "normalise_name",
    "normalise_phone",
    "parse_address",
    "parse_id_number",
    "phones_from_fhir",
    "pinyin_of",
    "to_simplified",
    "upgrade_15",
]
