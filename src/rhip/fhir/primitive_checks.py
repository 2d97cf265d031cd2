"""Checks of FHIR R4 primitive values in JSON: JSON type, the specification's regex, and a few exact rules.

A checker takes a JSON value and answers None when it is valid, else ``(issue code, what is wrong)``
with ``structure`` for a wrong JSON type and ``value`` for a bad value. The regexes of the structure
table come from XML Schema, where ``\\s`` means only space, tab, CR and LF and patterns are anchored:
they are translated accordingly (so a Chinese name with an ideographic space is a valid ``string``) and
applied with ``fullmatch``. Where a plain string operation is exactly equivalent and cheaper, it is used.
"""

from __future__ import annotations

import binascii
import calendar
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Problem = tuple[str, str]
Checker = Callable[[Any], Problem | None]

MAX_STRING = 1024 * 1024  # "strings SHALL NOT exceed 1MB"
INT32 = (-(2**31), 2**31 - 1)
# Types whose values may appear in diagnostics; free text, identifiers and URIs may carry personal data.
ECHOED_TYPES = frozenset(
    {
        "boolean",
        "code",
        "date",
        "dateTime",
        "decimal",
        "instant",
        "integer",
        "positiveInt",
        "time",
        "unsignedInt",
    }
)

_XML_SPACE = " \t\n\r"
_NOT_XML_SPACE_CLASS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x21-\\U0010ffff"
_WANT_STRING = ("structure", "must be a JSON string")
_WANT_NUMBER = ("structure", "must be a JSON number")
_WANT_BOOLEAN = ("structure", "must be a JSON boolean (true or false)")
_EMPTY = ("value", "must not be empty")
_BLANK = ("value", "must not be only whitespace")
_TOO_LONG = ("value", "is longer than 1 MB")
# Equivalent to the spec's (\s*([0-9a-zA-Z\+/=]){4}\s*)+ without its ambiguous nested whitespace, which
# would backtrack exponentially on long invalid input.
_BASE64 = re.compile("[ \t\n\r]*(?:[0-9a-zA-Z+/=]{4}[ \t\n\r]*)+")
_XHTML_FORBIDDEN = (
    "<script",
    "<form",
    "<iframe",
    "<frame",
    "<object",
    "<embed",
    "<applet",
    "<base",
    "<link",
    "<meta",
    "<head",
    "<body",
    "javascript:",
)
_EVENT_ATTRIBUTE = re.compile(r"<[^<>]*[\s\"'/]on[a-z]+\s*=")


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, for diagnostics."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def xsd_regex(pattern: str) -> re.Pattern[str]:
    """Compile an XML Schema regex for ``fullmatch``: its ``\\s``/``\\S`` cover only space, tab, CR, LF."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            escape = pattern[i : i + 2]
            if escape == "\\s":
                out.append(" \\t\\n\\r" if in_class else "[ \\t\\n\\r]")
            elif escape == "\\S":
                out.append(_NOT_XML_SPACE_CLASS if in_class else "[^ \\t\\n\\r]")
            else:
                out.append(escape)
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return re.compile("".join(out))


def _boolean(value: Any) -> Problem | None:
    return None if type(value) is bool else _WANT_BOOLEAN


def _whole(low: int, high: int, what: str) -> Checker:
    bad = ("value", f"must be {what}")

    def check(value: Any) -> Problem | None:
        if type(value) is int:
            return None if low <= value <= high else bad
        return bad if type(value) is float else _WANT_NUMBER

    return check


def _decimal(value: Any) -> Problem | None:
    kind = type(value)
    if kind is int:
        return None
    if kind is float:
        return None if math.isfinite(value) else ("value", "must be a finite number")
    return _WANT_NUMBER


def _string(value: Any) -> Problem | None:
    # Read with XML Schema semantics the spec's regex [ \r\n\t\S]+ accepts every non-empty string.
    if type(value) is not str:
        return _WANT_STRING
    if not value:
        return _EMPTY
    if value.isspace():
        return _BLANK
    return _TOO_LONG if len(value) > MAX_STRING else None


def _uri(value: Any) -> Problem | None:
    # The spec's \S* (XML Schema whitespace): no space, tab, CR or LF.
    if type(value) is not str:
        return _WANT_STRING
    if not value:
        return _EMPTY
    if " " in value or "\t" in value or "\n" in value or "\r" in value:
        return ("value", "must not contain whitespace")
    return None


def _code(pattern: re.Pattern[str]) -> Checker:
    bad = ("value", "is not a valid code (no leading, trailing or repeated whitespace)")

    def check(value: Any) -> Problem | None:
        if type(value) is not str:
            return _WANT_STRING
        if value and " " not in value and "\t" not in value and "\n" not in value and "\r" not in value:
            return None  # the common case, exactly the regex's language without whitespace
        if not value:
            return _EMPTY
        return None if pattern.fullmatch(value) else bad

    return check


def _pattern(pattern: re.Pattern[str], what: str, calendar_check: bool = False) -> Checker:
    bad = ("value", f"is not a valid {what}")

    def check(value: Any) -> Problem | None:
        if type(value) is not str:
            return _WANT_STRING
        if not value:
            return _EMPTY
        if pattern.fullmatch(value) is None:
            return bad
        # The regex allows day 31 in every month; the calendar does not.
        if calendar_check and len(value) >= 10 and value[8:10] > "28":
            return bad if int(value[8:10]) > calendar.monthrange(int(value[:4]), int(value[5:7]))[1] else None
        return None

    return check


def _base64(value: Any) -> Problem | None:
    if type(value) is not str:
        return _WANT_STRING
    if not value:
        return _EMPTY
    if value.isascii() and not any(c in value for c in " \t\n\r"):
        # The usual case, a Binary's data in one line: decoding in C is three times faster than the pattern.
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except binascii.Error:
            return ("value", "is not valid base64")
        return None
    return None if _BASE64.fullmatch(value) else ("value", "is not valid base64")


def _xhtml(value: Any) -> Problem | None:
    if type(value) is not str:
        return _WANT_STRING
    if not value.lstrip(_XML_SPACE).startswith("<div"):
        return ("value", "must be an XHTML <div> element")
    lowered = value.lower()
    for token in _XHTML_FORBIDDEN:
        if token in lowered:
            return ("value", f"contains markup not allowed in a narrative ('{token}', txt-1)")
    if _EVENT_ATTRIBUTE.search(lowered):
        return ("value", "contains an event handler attribute not allowed in a narrative (txt-1)")
    return None


def checkers(regexes: Mapping[str, str | None]) -> dict[str, Checker]:
    """A checker per primitive type, built from the structure table's regexes."""
    found: dict[str, Checker] = {}
    for name, regex in regexes.items():
        if regex is None:
            found[name] = _string
        elif name == "code":
            found[name] = _code(xsd_regex(regex))
        else:
            found[name] = _pattern(
                xsd_regex(regex), name, calendar_check=name in ("date", "dateTime", "instant")
            )
    found.update(
        boolean=_boolean,
        decimal=_decimal,
        integer=_whole(*INT32, "a 32-bit integer"),
        unsignedInt=_whole(0, INT32[1], "a non-negative 32-bit integer"),
        positiveInt=_whole(1, INT32[1], "a positive 32-bit integer"),
        string=_string,
        markdown=_string,
        uri=_uri,
        url=_uri,
        canonical=_uri,
        base64Binary=_base64,
        xhtml=_xhtml,
    )
    # "Strings SHALL NOT contain Unicode character points below 32, except tab, CR and LF" (all string types).
    for name in list(found):
        if name not in ("boolean", "decimal", "integer", "unsignedInt", "positiveInt"):
            found[name] = _no_controls(found[name])
    return found


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_HAS_CONTROL = ("value", "contains a control character (below U+0020 other than tab, CR and LF)")


def _no_controls(check: Checker) -> Checker:
    def checked(value: Any) -> Problem | None:
        # Printable ASCII (most codes, ids and dates) has no control character; the C checks are cheaper.
        if type(value) is str and not (value.isascii() and value.isprintable()) and _CONTROL.search(value):
            return _HAS_CONTROL
        return check(value)

    return checked
