"""Shared pieces of the v2 data-type converters: systems, errors, components, TS/DTM and HD."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from rhip.exchange.hl7v2.message import Delimiters, component_of, unescape

Json = dict[str, Any]

MRN_PREFIX = "urn:rhip:mrn:"
ORGANIZATION_OID = "urn:oid:2.16.156.10011.1.5"
STAFF_NO = "urn:oid:2.16.156.10011.1.4"  # 医务人员工号, unique within the assigning institution
DEPARTMENT_NO = "urn:oid:2.16.156.10011.1.26"  # 科室, unique within the institution
ID_CARD = "urn:oid:2.16.156.10011.1.3"
SEX_SYSTEM = "urn:oid:2.16.156.10011.2.3.3.4"  # GB/T 2261.1
MARITAL_SYSTEM = "urn:oid:2.16.156.10011.2.3.3.5"  # GB/T 2261.2
DIVISION_EXTENSION = "urn:rhip:ext:division"
V2_TABLE = "http://terminology.hl7.org/CodeSystem/v2-"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
_DASHED = re.compile(r"^\d{4}-\d{2}(-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,4})?)?)?)?$")
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")


class DataTypeError(ValueError):
    """A value that does not fit its HL7 data type (``hl7_code`` 102) or table (103)."""

    def __init__(self, message: str, hl7_code: str = "102") -> None:
        super().__init__(message)
        self.hl7_code = hl7_code


def part(raw: str, d: Delimiters, component: int, subcomponent: int = 1) -> str:
    """One component (and subcomponent) of a raw repetition, unescaped and stripped."""
    return component_of(raw, d, component, subcomponent).strip()


class Parts:
    """The components of one raw repetition, split once: ``p(3)`` is component 3, ``p(4, 2)`` is 4.2.

    A converter reads ten components of one value; splitting it once instead of ten times is most of
    the cost of mapping a message.
    """

    __slots__ = ("d", "items")

    def __init__(self, raw: str, d: Delimiters) -> None:
        self.d = d
        self.items = raw.split(d.component) if raw else []

    def __call__(self, component: int, subcomponent: int = 1) -> str:
        """Component ``component`` (subcomponent ``subcomponent``), unescaped and stripped; '' when absent."""
        items = self.items
        if component > len(items):
            return ""
        value = items[component - 1]
        d = self.d
        if d.subcomponent in value:
            subs = value.split(d.subcomponent)
            value = subs[subcomponent - 1] if subcomponent <= len(subs) else ""
        elif subcomponent > 1:
            return ""
        if d.escape in value:
            value = unescape(value, d)
        return value.strip()


# -- time ------------------------------------------------------------------------------------------


def _ts_parts(value: str) -> re.Match[str] | None:
    text = value.strip()
    if not text:
        return None
    match = _TS.match(text)
    if match is None and _DASHED.match(text):  # 1987-05-28 or 2025-02-20 15:47:00, as some HIS write them
        match = _TS.match(text.replace("-", "").replace(":", "").replace(" ", "").replace("T", ""))
    if match is None:
        raise DataTypeError(f"{text[:30]!r} is not an HL7 date/time (YYYY[MM[DD[HHMM[SS[.S]]]]][+/-ZZZZ])")
    try:
        year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
        datetime(year, month, day, int(match[4] or 0), int(match[5] or 0), min(int(match[6] or 0), 59))
    except ValueError as error:
        raise DataTypeError(f"{text[:30]!r} is not a valid date/time: {error}") from None
    offset = match[8]
    if offset and (int(offset[1:3]) > 14 or int(offset[3:5]) > 59):
        raise DataTypeError(f"{offset!r} is not a time-zone offset")
    return match


def ts_date(value: str) -> str | None:
    """An HL7 DT/TS/DTM as a FHIR ``date`` (its precision kept, time of day dropped)."""
    m = _ts_parts(value)
    if m is None:
        return None
    return "-".join(p for p in (m[1], m[2], m[3]) if p)


def ts_datetime(value: str, zone: tzinfo) -> str | None:
    """An HL7 TS/DTM as a FHIR ``dateTime``: precision kept, no offset read as local time of ``zone``."""
    m = _ts_parts(value)
    if m is None:
        return None
    if not m[4]:
        return "-".join(p for p in (m[1], m[2], m[3]) if p)
    return _with_time(m, zone)


def ts_instant(value: str, zone: tzinfo) -> str | None:
    """An HL7 TS/DTM as a FHIR ``instant`` (missing parts are the start of the period)."""
    m = _ts_parts(value)
    if m is None:
        return None
    return _with_time(m, zone)


def _with_time(m: re.Match[str], zone: tzinfo) -> str:
    year, month, day = m[1], m[2] or "01", m[3] or "01"
    hour, minute, second = m[4] or "00", m[5] or "00", m[6] or "00"
    offset = m[8]
    if offset:
        sign, hh, mm = offset[0], offset[1:3], offset[3:5]
        tz = f"{sign}{hh}:{mm}"
    else:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), tzinfo=zone)
        delta = moment.utcoffset()
        minutes = int(delta.total_seconds() // 60) if delta is not None else 0
        sign = "-" if minutes < 0 else "+"
        tz = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if second == "60":
        second = "59"  # a leap second, which Python's datetime and most stores cannot hold
    return f"{year}-{month}-{day}T{hour}:{minute}:{second}{m[7] or ''}{tz}"


# -- assigning authorities ---------------------------------------------------------------------


def is_oid(text: str) -> bool:
    """Whether ``text`` is an ISO object identifier (dotted numbers)."""
    return bool(_OID.match(text))


def hd_system(namespace: str, universal_id: str, universal_type: str) -> str | None:
    """The URI an HD (assigning authority) names: an ISO OID as ``urn:oid:``, else a UUID or URI as given."""
    if universal_id and (universal_type.upper() in ("ISO", "") and is_oid(universal_id)):
        return f"urn:oid:{universal_id}"
    if universal_id and universal_type.upper() in ("URI", "URL"):
        return universal_id
    if universal_id and universal_type.upper() == "UUID":
        return f"urn:uuid:{universal_id.lower()}"
    return None


@lru_cache(maxsize=4096)
def uri_name(name: str) -> str:
    """A name (an institution code, a table name) as it goes into a ``urn:rhip:…`` URI: percent-encoded
    where it holds what a URI may not (spaces, ``|``, ``#``…); plain codes such as 510725H01 are unchanged."""
    return quote(name, safe=":.-_~@!$'()*+,;=")


def organization_identifier(code: str) -> Json:
    """The Identifier of an institution by its code (urn:oid:2.16.156.10011.1.5)."""
    return {"system": ORGANIZATION_OID, "value": code}
