"""The reasons a row or a file is refused, in English, by the message key the results carry.

The portal shows the same keys in Chinese or English from its own messages (web/portal/messages); the CLI
prints these.
"""

from __future__ import annotations

from collections.abc import Mapping

REASONS: dict[str, str] = {
    "dir.err.name": "a name is required (at most 200 characters)",
    "dir.err.code": "the institution code is not valid (letters, digits, . _ -)",
    "dir.err.uscc": "the unified social credit code (USCC) is not valid",
    "dir.err.licence": "the licence number is not valid (letters, digits, . _ -)",
    "dir.err.kind": "unknown kind of institution",
    "dir.err.division": "a division code has 2 to 12 digits",
    "dir.err.address": "the address is too long",
    "dir.err.active": "active is yes/no (true/false)",
    "dir.err.gender": "gender is male, female, other or unknown",
    "dir.err.birth_date": "a birth date is YYYY-MM-DD",
    "dir.err.too_long": "too long",
    "dir.err.staff_no": "the staff number is not valid",
    "dir.err.no_institution": "no institution has this code",
    "dir.err.parent": "no other institution has the parent's code",
    "dir.err.no_location": "the institution has no place with this code",
    "dir.err.status": "status is active, suspended or inactive",
    "dir.err.period": "a post's dates are YYYY-MM-DD, the end not before the start, with an institution_code",
    "dir.err.ambiguous": "several records carry this identifier; resolve the duplicates first",
    "error.request": "the FHIR service refused it",
    "error.forbidden": "not allowed",
    "dir.csv.too_big": "the file is too large: at most {limit} KB",
    "dir.csv.too_many": "too many rows: at most {limit} at a time",
    "dir.csv.encoding": "the file is not UTF-8: save it as a UTF-8 CSV and try again",
    "dir.csv.empty": "the file has no data rows",
    "dir.csv.missing": "required columns are missing: {columns} (the columns: {expected})",
    "dir.csv.malformed": "the CSV file cannot be parsed (quotes or separators)",
}


def reason(key: str, detail: str = "", values: Mapping[str, object] | None = None) -> str:
    """The English reason of a message key, with its values and the detail after a colon."""
    text = REASONS.get(key, key).format(**values) if values else REASONS.get(key, key)
    return f"{text}: {detail}" if detail else text
