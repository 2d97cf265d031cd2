"""CDA R2 data types read into their FHIR forms: TS → dateTime, PQ → Quantity, CD → Coding, II, ST."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents.cda.codes import fhir_system
from rhip.documents.cda.errors import BAD_VALUE, CdaRejected
from rhip.documents.cda.xmlpath import Element, attr, child, path, text

SHANGHAI = ZoneInfo("Asia/Shanghai")
_TS = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?(?P<f>\.\d{1,6})?"
    r"(?P<z>[+-]\d{4})?"
)
# Values that samples and vendor systems write where they mean "not known" ("-", 00000000).
_PLACEHOLDERS = frozenset(("", "-", "--", "/", "无"))
UCUM = "http://unitsofmeasure.org"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_placeholder(value: str) -> bool:
    """Whether an identifier extension or text is a stand-in for "unknown"."""
    return value.strip() in _PLACEHOLDERS


def fhir_time(value: str, where: Element | str, zone: ZoneInfo = SHANGHAI) -> str | None:
    """An HL7 TS as a FHIR date or dateTime; None for an all-zero placeholder.

    A TS without offset is local time in ``zone`` (cn convention: Asia/Shanghai). Precision is kept:
    ``20250323`` gives ``2025-03-23``, ``202503231123`` gives ``2025-03-23T11:23:00+08:00``. ``where``
    (the element or its path) names the value in the error.
    """
    try:
        return _fhir_time(value.strip(), zone)
    except ValueError as exc:
        raise CdaRejected(BAD_VALUE, str(exc), where if isinstance(where, str) else path(where)) from None


@lru_cache(maxsize=4096)
def _fhir_time(raw: str, zone: ZoneInfo) -> str | None:
    """The conversion of :func:`fhir_time` (cached: a document repeats its few times many times)."""
    match = _TS.fullmatch(raw)
    if match is None:
        raise ValueError(f"not an HL7 TS value: {raw[:40]!r}")
    if set(raw[:8]) <= {"0"}:
        return None
    g = match.groupdict()
    if g["mi"] is None and g["h"] is None and g["z"] is None:
        try:
            date(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1))
        except ValueError:
            raise ValueError(f"not a valid date: {raw[:40]!r}") from None
        return "-".join(p for p in (g["y"], g["mo"], g["d"]) if p)
    if g["mo"] is None or g["d"] is None:
        raise ValueError(f"a TS with a time needs a full date: {raw[:40]!r}")
    try:
        moment = datetime(
            int(g["y"]), int(g["mo"]), int(g["d"]), int(g["h"] or 0), int(g["mi"] or 0), int(g["s"] or 0),
            int(float(g["f"]) * 1_000_000) if g["f"] else 0,
        )  # fmt: skip
    except ValueError:
        raise ValueError(f"not a valid date or time: {raw[:40]!r}") from None
    if g["z"]:
        sign = 1 if g["z"][0] == "+" else -1
        offset = timedelta(hours=int(g["z"][1:3]), minutes=int(g["z"][3:5])) * sign
        aware = moment.replace(tzinfo=timezone(offset))
    else:
        aware = moment.replace(tzinfo=zone)
    return aware.isoformat(timespec="microseconds" if g["f"] else "seconds")


def time_of(element: Element | None, zone: ZoneInfo = SHANGHAI) -> str | None:
    """The FHIR time of a TS element (its ``value``), or None when absent or nullFlavored."""
    if element is None:
        return None
    value = attr(element, "value")
    return fhir_time(value, element, zone) if value else None


def interval(element: Element | None, zone: ZoneInfo = SHANGHAI) -> tuple[str | None, str | None]:
    """(low, high) of an IVL_TS, or (value, None) for a point in time."""
    if element is None:
        return None, None
    if attr(element, "value"):
        return time_of(element, zone), None
    low, high = child(element, "low"), child(element, "high")
    return time_of(low, zone), time_of(high, zone)


def number(raw: str, where: Element | str) -> int | float:
    """A decimal literal as int (no fraction) or float; rejects anything else, naming ``where``."""
    text_value = raw.strip()
    if not _NUMBER.fullmatch(text_value):
        where_path = where if isinstance(where, str) else path(where)
        raise CdaRejected(BAD_VALUE, f"not a number: {text_value[:40]!r}", where_path)
    if "." not in text_value and "e" not in text_value.lower():
        return int(text_value)
    return float(Decimal(text_value))


def quantity(element: Element | None, printed: str | None = None) -> dict[str, Any] | None:
    """A PQ (or REAL/INT) as a FHIR Quantity; the unit is UCUM unless it is a Chinese count word.

    ``printed`` is the unit as people write it (``10^9/L``, ``mmHg``); it becomes ``unit`` while the
    PQ's UCUM unit becomes ``code``.
    """
    if element is None or not attr(element, "value"):
        return None
    value = number(attr(element, "value"), element)
    unit = attr(element, "unit")
    out: dict[str, Any] = {"value": value}
    if unit and unit != "1":
        if _is_ucum(unit):
            out.update(unit=printed or unit, system=UCUM, code=unit)
        else:
            out["unit"] = printed or unit
    elif printed:
        out["unit"] = printed
    return out


def _is_ucum(unit: str) -> bool:
    """Whether a PQ unit looks like UCUM (ASCII, no spaces): 片, 粒 and 支 are count words, not UCUM."""
    return unit.isascii() and " " not in unit


def coding(element: Element | None) -> dict[str, str] | None:
    """A CD/CE/CV as a FHIR Coding; None without a code (nullFlavor)."""
    if element is None:
        return None
    code = attr(element, "code")
    if not code or attr(element, "nullFlavor"):
        return None
    out = {"code": code}
    system = fhir_system(attr(element, "codeSystem"), attr(element, "codeSystemName"))
    if system:
        out = {"system": system, "code": code}
    display = attr(element, "displayName")
    if display:
        out["display"] = display
    return out


def concept(element: Element | None, fallback_text: str = "") -> dict[str, Any] | None:
    """A coded element as a CodeableConcept (its displayName, else ``fallback_text``, as text)."""
    code = coding(element)
    label = attr(element, "displayName") or fallback_text
    if code is None:
        original = text(child(element, "originalText"))
        label = label or original
        return {"text": label} if label else None
    out: dict[str, Any] = {"coding": [code]}
    if label:
        out["text"] = label
    return out


def string(element: Element | None) -> str:
    """An ST value (or the text of any element), with placeholders treated as empty."""
    value = text(element)
    return "" if is_placeholder(value) else value


def instance_id(element: Element | None) -> tuple[str, str] | None:
    """(root, extension) of an II with a usable extension; None when it names nothing."""
    if element is None or attr(element, "nullFlavor"):
        return None
    root, extension = attr(element, "root"), attr(element, "extension")
    if not root or is_placeholder(extension):
        return None
    return root, extension
