"""Phone numbers normalised to digits: mainland mobiles (11 digits, 1[3-9]…) and landlines with their area code.

Placeholders are refused: numbers of one repeated digit (00000000000; a mobile whose ten digits after the
leading 1 are all the same, 13333333333), subscriber numbers of all zeros (13900000000), and the well-known
13800138000. A landline without its area code (2345678) cannot be told apart from other towns' and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rhip.empi.normalize.chinese import nfkc

_EXTENSION = re.compile(r"(?:转|分机|ext\.?|x).*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s\-‐‑–—()\[\].·]+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
# 010 and 02x have 8-digit numbers; other area codes are 0 + three digits with 7- or 8-digit numbers.
_LANDLINE = re.compile(r"0(?:10|2\d)[2-9]\d{7}|0[3-9]\d{2}[2-9]\d{6,7}")
_MANY = re.compile(r"[/,;，；、]|或")
_PLACEHOLDERS = frozenset({"13800138000"})


def normalise_phone(raw: str | None) -> str | None:
    """Digits of a plausible mainland mobile or landline (with area code); None when implausible."""
    if not raw or not isinstance(raw, str):
        return None
    digits = _SEPARATORS.sub("", _EXTENSION.sub("", nfkc(raw).strip().removeprefix("tel:")))
    international = False
    if digits.startswith("+"):
        digits, international = digits[1:], True
    elif digits.startswith("00"):
        digits, international = digits[2:], True
    if not digits.isdigit() or not digits.isascii():
        return None
    if international or (digits.startswith("86") and len(digits) >= 12):
        if not digits.startswith("86"):
            return None  # another country's number
        digits = digits[2:]
        if not digits.startswith(("0", "1")) or digits.startswith("10"):
            digits = "0" + digits  # a landline written without its trunk 0 after +86
    if len(digits) == 12 and digits.startswith("01") and _MOBILE.fullmatch(digits[1:]):
        digits = digits[1:]  # a mobile dialled with a trunk 0
    if _MOBILE.fullmatch(digits):
        subscriber = digits[1:]
    elif _LANDLINE.fullmatch(digits):
        subscriber = digits[3:] if digits[1] in "12" else digits[4:]
    else:
        return None
    if len(set(subscriber)) == 1 or set(digits[3:]) == {"0"} or digits in _PLACEHOLDERS:
        return None
    return digits


def _phone_like(entry: Mapping[str, Any]) -> bool:
    system = entry.get("system")
    return system in ("phone", "sms") or system is None


def phones_from_fhir(telecom: Sequence[Mapping[str, Any]] | None) -> tuple[str, ...]:
    """Normalised phone numbers of a Patient's telecom (system phone, sms, or none), de-duplicated, in order."""
    if not telecom or not isinstance(telecom, Sequence):
        return ()
    found: dict[str, None] = {}
    for entry in telecom:
        if not isinstance(entry, Mapping) or not _phone_like(entry):
            continue
        value = entry.get("value")
        if not isinstance(value, str):
            continue
        for part in _MANY.split(value):
            phone = normalise_phone(part)
            if phone is not None:
                found.setdefault(phone, None)
    return tuple(found)
