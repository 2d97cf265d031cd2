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
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# FHIR integer is 32-bit; a quantity beyond 10^15 (or more than 40 characters written) is no measurement
# but a typing error, and would not survive the JSON round trip (orjson: 64-bit integers, finite floats).
FHIR_INTEGER_MAX = 2**31 - 1
QUANTITY_MAX = Decimal(10) ** 15
_NUMBER_MAX_CHARS = 40


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


def number(raw: str, where: Element | str, *, integer: bool = False) -> int | float:
    """A decimal literal as int (no fraction) or float; rejects anything else, naming ``where``.

    With ``integer`` the value must fit a FHIR integer (32 bits); otherwise (a quantity) its magnitude must
    stay below 10^15. Non-finite values, overlong literals and absurd magnitudes are refused (RHIP-CDA-0020).
    """
    text_value = raw.strip()
    where_path = where if isinstance(where, str) else path(where)
    if len(text_value) > _NUMBER_MAX_CHARS or not _NUMBER.fullmatch(text_value):
        raise CdaRejected(BAD_VALUE, f"not a number: {text_value[:40]!r}", where_path)
    exact = Decimal(text_value)
    limit = Decimal(FHIR_INTEGER_MAX) if integer else QUANTITY_MAX
    if not exact.is_finite() or abs(exact) > limit:
        kind = "a FHIR integer" if integer else "a quantity"
        raise CdaRejected(BAD_VALUE, f"{text_value[:40]!r} is out of range for {kind}", where_path)
    if "." not in text_value and "e" not in text_value.lower():
        return int(text_value)
    return float(exact)


def quantity(element: Element | None, printed: str | None = None) -> dict[str, Any] | None:
    """A PQ (or REAL/INT) as a FHIR Quantity: ``system``/``code`` only for a unit known as UCUM.

    ``printed`` is the unit as people write it (``10^9/L``, ``mmHg``); it becomes ``unit`` while the
    PQ's unit, in its UCUM form (``10*9/L``, ``mm[Hg]``), becomes ``code``. A unit not recognised (片, 粒,
    a vendor's own abbreviation) is given as ``unit`` alone.
    """
    if element is None or not attr(element, "value"):
        return None
    value = number(attr(element, "value"), element)
    unit = attr(element, "unit")
    out: dict[str, Any] = {"value": value}
    if unit and unit != "1":
        code = ucum_code(unit)
        if code is not None:
            out.update(unit=printed or unit, system=UCUM, code=code)
        else:
            out["unit"] = printed or unit
    elif printed:
        out["unit"] = printed
    return out


# UCUM codes the documents of the region use, and the ways people write some of them.
_UCUM_CODES = frozenset(
    (
        "%", "/min", "Cel", "mm[Hg]", "cm[H2O]", "a", "mo", "wk", "d", "h", "min", "s",
        "kg", "g", "mg", "ug", "ng", "pg", "m", "cm", "mm", "L", "dL", "mL", "uL", "fL",
        "kg/m2", "mmol/L", "umol/L", "nmol/L", "pmol/L", "mol/L", "g/L", "g/dL", "mg/L", "mg/dL", "ug/L",
        "ng/mL", "ng/L", "pg/mL", "U/L", "U/mL", "[IU]/L", "[IU]/mL", "m[IU]/L", "m[IU]/mL", "mL/min",
        "mm/h", "L/min", "mg/d", "g/d", "mL/d", "[pH]", "/[HPF]", "/[LPF]",
    )
)  # fmt: skip
_UCUM_ALIASES = {
    "mmHg": "mm[Hg]",
    "cmH2O": "cm[H2O]",
    "℃": "Cel",
    "°C": "Cel",
    "次/分": "/min",
    "次/min": "/min",
    "bpm": "/min",
    "岁": "a",
    "月": "mo",
    "周": "wk",
    "天": "d",
    "μmol/L": "umol/L",
    "µmol/L": "umol/L",
    "μg/L": "ug/L",
    "µg/L": "ug/L",
    "μL": "uL",
    "IU/L": "[IU]/L",
    "IU/mL": "[IU]/mL",
    "mIU/L": "m[IU]/L",
    "mIU/mL": "m[IU]/mL",
    "kg/m²": "kg/m2",
    "pH": "[pH]",
}
_POWER_OF_TEN = re.compile(r"10(?:\^|\*|E)([0-9]{1,2})/(L|mL|uL|μL|µL)")


def ucum_code(unit: str) -> str | None:
    """The UCUM code of a unit as written (``mmHg`` → ``mm[Hg]``, ``10^9/L`` → ``10*9/L``); None when the
    unit is not one known to be UCUM (片 and 粒 are count words, not units)."""
    unit = unit.strip()
    if unit in _UCUM_CODES:
        return unit
    if unit in _UCUM_ALIASES:
        return _UCUM_ALIASES[unit]
    power = _POWER_OF_TEN.fullmatch(unit)
    if power:
        per = {"μL": "uL", "µL": "uL"}.get(power.group(2), power.group(2))
        return f"10*{power.group(1)}/{per}"
    return None


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
