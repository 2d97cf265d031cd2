"""Masking of personal data and redaction of secrets in text shown on screens or written to logs.

ID numbers (居民身份证号, 18 characters, or 15 digits for the old cards) keep their first four and last four
characters (``5101**********1234``), mobile numbers their first three and last four (``138****5678``).
``mask_text`` finds them in free text; any other run of 12 or more digits is masked too, since it may be
an ID number or a phone run together with other digits, or a bank card number. Names cannot be told apart
from other Chinese text, so they are not masked: code must not put them in text in the first place.

``redact_secrets`` removes bearer tokens, JWTs, ``password=``-like pairs and the password of URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "*"
REDACTED = "[redacted]"

# A maximal run of ASCII digits (an ID number may end in X). Runs are taken whole so that digits next to
# the masked ones never join with the kept ones into a new number.
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{11,}[Xx]?(?![0-9])")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# A mobile number written in groups: 138-1234-5678, 138 1234 5678.
_GROUPED_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])([ -])[0-9]{4}([ -])([0-9]{4})(?![0-9])")

_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)?")
# "Basic" and "Negotiate" only capitalised, as in headers: lower case they are ordinary words.
_AUTH_SCHEME = re.compile(r"\b([Bb]earer|BEARER|Basic|Negotiate)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_SECRET_WORD = r"(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key)"  # noqa: S105 -- names only
_SECRET_KEY = re.compile(rf"[A-Za-z0-9_.-]*{_SECRET_WORD}", re.IGNORECASE)
# key=value or "key": "value" where the key names a password, secret, token or key. A key starts where a
# word starts (the look-behind), which keeps the search linear in the length of the text.
_SECRET_PAIR = re.compile(
    rf"""(?P<key>(?<![A-Za-z0-9_.-])["']?[A-Za-z0-9_.-]*{_SECRET_WORD}["']?)"""
    r"""(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;"'}\]]+)""",
    re.IGNORECASE,
)
_SCHEME_WORDS = ("earer", "EARER", "Basic", "Negotiate")
_KEY_WORDS = ("pass", "pwd", "secret", "token", "key")
_SECRET_ENDINGS = ("password", "passwd", "pwd", "secret", "token", "key")
# The password runs to the last @ of the authority (an @ in it should be %40, but is not always).
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^/?#\s]*(@)")


def mask_id_number(value: str) -> str:
    """An ID number with only its first four and last four characters shown."""
    return _mask_middle(value, 4, 4)


def mask_phone(value: str) -> str:
    """A phone number with only its first three (after any +86) and last four digits shown."""
    prefix = ""
    for country in ("+86", "0086", "86"):
        # 86 counts as a country code only in front of a whole mobile number.
        if value.startswith(country) and _MOBILE.fullmatch(value[len(country) :]):
            prefix, value = country, value[len(country) :]
            break
    if _MOBILE.fullmatch(value):
        return prefix + value[:3] + MASK * 4 + value[-4:]
    return prefix + _mask_middle(value, 0, 4)


def _mask_middle(value: str, head: int, tail: int) -> str:
    # Short values would be nearly whole with the usual head and tail: show less of them.
    while head + tail and len(value) - head - tail < max(4, len(value) // 2):
        if head >= tail and head:
            head -= 1
        elif tail:
            tail -= 1
    return value[:head] + MASK * (len(value) - head - tail) + value[len(value) - tail :]


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 11:
        # Eleven digits that are no mobile number (a landline with its area code, a count) stay.
        return run[:3] + MASK * 4 + run[-4:] if _MOBILE.fullmatch(run) else run
    for country in ("86", "0086"):
        if run.startswith(country) and _MOBILE.fullmatch(run[len(country) :]):
            return country + run[len(country) : len(country) + 3] + MASK * 4 + run[-4:]
    return _mask_middle(run, 4, 4)


def _mask_grouped(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}{MASK * 4}{match.group(3)}{match.group(4)}"


def mask_text(text: str) -> str:
    """``text`` with every ID number, mobile number and other long digit run masked."""
    if len(text) < 11:
        return text
    masked = _DIGIT_RUN.sub(_mask_run, text)
    return _GROUPED_MOBILE.sub(_mask_grouped, masked)


def _redact_pair(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in {'"', "'"} else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"


def redact_secrets(text: str) -> str:
    """``text`` without bearer tokens, JWTs, password/secret/token pairs or URL passwords."""
    # Substring tests first: most log text holds none of these, and they cost far less than a search.
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if any(scheme in text for scheme in _SCHEME_WORDS):
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    if "=" in text or ":" in text:
        lowered = text.lower()
        if any(word in lowered for word in _KEY_WORDS):
            text = _SECRET_PAIR.sub(_redact_pair, text)
        if "://" in text and "@" in text:
            text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(2)}", text)
    return text


def redact(text: str) -> str:
    """``text`` with secrets removed and personal numbers masked (for log lines)."""
    if len(text) < 11 and "=" not in text and ":" not in text:
        return text  # too short for a number, a token or a URL: only a key=value pair could fit
    return mask_text(redact_secrets(text))


_MAX_DEPTH = 6


def is_secret_name(name: str) -> bool:
    """Whether a field named ``name`` holds a secret (a password, token, key)."""
    return name.lower().endswith(_SECRET_ENDINGS) and _SECRET_KEY.fullmatch(name) is not None


def redact_field(name: str, value: Any) -> Any:
    """A log field's value: withheld whole under a secret's name, otherwise ``redact_value``."""
    return REDACTED if is_secret_name(name) and value is not None else redact_value(value)


def redact_value(value: Any, _depth: int = 0) -> Any:
    """A value with ``redact`` applied to every string in it (and long integers masked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # An integer field can hold a phone number or a 15-digit ID number.
        return value if -(10**10) < value < 10**10 else mask_text(str(value))
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            redact(str(k)): REDACTED if is_secret_name(str(k)) else redact_value(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(v, _depth + 1) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return redact(bytes(value).decode("utf-8", "replace"))
    # Any other object is written as its str(): redact that.
    return redact(str(value))
