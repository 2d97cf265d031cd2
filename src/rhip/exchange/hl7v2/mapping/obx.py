"""OBX → Observation as results carry it: the value by OBX-2, units, reference range, flags and status.

Follows the v2-to-FHIR IG's OBX[Observation] map: NM → valueQuantity (units through
:mod:`~rhip.exchange.hl7v2.mapping.units`), SN → valueQuantity with comparator, valueRange or valueRatio,
ST/TX/FT → valueString, CWE/CE/CNE → valueCodeableConcept, DT/DTM/TS → valueDateTime, TM → valueTime,
NR → valueRange. ED and RP (embedded or referenced documents) are attachments, which the callers place
(DiagnosticReport.presentedForm, DocumentReference.content). OBX-7 ``low-high``, ``>low``, ``<high`` or
``low to high`` becomes low/high in OBX-6 units, anything else the range's text; OBX-8 flags are
ObservationInterpretation codes; OBX-11 is the status (HL7 table 0085).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from rhip.exchange.hl7v2.datatypes import DataTypeError, coding, cwe_concept, part, ts_datetime
from rhip.exchange.hl7v2.mapping.base import BundleBuilder, Json, reading
from rhip.exchange.hl7v2.mapping.units import quantity_unit
from rhip.exchange.hl7v2.message import Segment, unescape

V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# HL7 table 0085 -> Observation.status (the IG's ObservationResultStatusCodesInterpretation map, with
# the codes it leaves open given their nearest FHIR status)
OBSERVATION_STATUS = {"F": "final", "C": "corrected", "A": "amended", "B": "amended", "D": "entered-in-error"}
OBSERVATION_STATUS |= {"W": "entered-in-error", "P": "preliminary", "R": "preliminary", "S": "preliminary"}
OBSERVATION_STATUS |= {"I": "registered", "O": "registered", "X": "cancelled", "U": "final", "V": "final"}
OBSERVATION_STATUS |= {"N": "final"}
_ABSENT = {"N": "not-asked", "X": "error"}  # data-absent-reason when such an OBX carries no value
# ObservationInterpretation codes that HL7 table 0078 shares with the v3 code system
_V3_FLAGS = frozenset(
    (
        "<", ">", "A", "AA", "B", "D", "E", "EX", "H", "HH", "HU", "HX", "I", "IE", "L", "LL", "LU", "LX",
        "MS", "N", "NEG", "ND", "NR", "NS", "POS", "R", "RR", "S", "SDD", "SYN-R", "SYN-S", "U", "VS", "W",
        "DET", "IND", "CAR", "EXP", "HM", "ON", "OBX", "QCF", "TOX", "WR",
    )
)  # fmt: skip
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_COMPARED = re.compile(r"^(<=|>=|<|>|≤|≥)\s*([+-]?(?:\d+\.?\d*|\.\d+))$")
_RANGE = re.compile(r"^([+-]?\d+(?:\.\d+)?)\s*(?:-|~|–|—|_|－|～|至|to|TO)\s*([+-]?\d+(?:\.\d+)?)$")
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "≤": "<=", "≥": ">="}
_CODED = frozenset(("CWE", "CE", "CNE", "CF", "IS", "ID"))
_TEXT = frozenset(("ST", "TX", "FT"))
_MIME_TOP = {"AP": "application", "APPLICATION": "application", "IM": "image", "IMAGE": "image"}
_MIME_TOP |= {"AU": "audio", "AUDIO": "audio", "TEXT": "text", "TX": "text", "VIDEO": "video"}
_MIME_TOP |= {"SD": "application", "SI": "image", "NS": "application", "MULTIPART": "multipart"}
_MIME_SUB = {"jpg": "jpeg", "tif": "tiff", "txt": "plain", "doc": "msword", "ascii": "plain"}


def number(text: str) -> int | float | None:
    """An NM value as a JSON number (an integer when written without a decimal point); None if not one."""
    text = text.strip()
    if not _NUMBER.match(text):
        return None
    value = float(text)
    return int(value) if "." not in text and value.is_integer() and abs(value) < 2**53 else value


def _units(obx: Segment) -> dict[str, str]:
    reps = obx.repetitions(6)
    raw = reps[0] if reps else ""
    d = obx.delimiters
    return quantity_unit(part(raw, d, 1), part(raw, d, 2), part(raw, d, 3))


def _quantity(value: int | float, units: dict[str, str], comparator: str = "") -> Json:
    q: Json = {"value": value}
    if comparator in _COMPARATORS:
        q["comparator"] = _COMPARATORS[comparator]
    q.update(units)
    return q


def _text(obx: Segment, reps: list[str]) -> Json:
    text = "\n".join(t for t in (unescape(r, obx.delimiters).strip() for r in reps) if t)
    return {"valueString": text} if text else {}


def _numeric(obx: Segment, raw: str, kind: str) -> Json:
    d = obx.delimiters
    units = _units(obx)
    if kind == "NM":
        text = part(raw, d, 1)
        value = number(text)
        if value is not None:
            return {"valueQuantity": _quantity(value, units)}
        compared = _COMPARED.match(text)
        if compared:  # "<5" in an NM: what the sender meant is a comparator
            return {"valueQuantity": _quantity(number(compared[2]) or 0, units, compared[1])}
        return _text(obx, [raw])
    comparator, first, separator, second = (part(raw, d, i) for i in (1, 2, 3, 4))
    low, high = number(first), number(second)
    if comparator == "<>" or low is None or separator == "+":
        return _text(obx, [raw])
    if separator in (":", "/") and high is not None:
        return {"valueRatio": {"numerator": {"value": low}, "denominator": {"value": high}}}
    if separator == "-" and high is not None:
        return {"valueRange": {"low": _quantity(low, units), "high": _quantity(high, units)}}
    return {"valueQuantity": _quantity(low, units, comparator)}


def _time(obx: Segment, raw: str) -> Json:
    text = part(raw, obx.delimiters, 1)
    digits = re.match(r"^(\d{2})(\d{2})?(\d{2})?", text)
    if digits is None or int(digits[1]) > 23 or int(digits[2] or 0) > 59 or int(digits[3] or 0) > 59:
        raise DataTypeError(f"{text[:20]!r} is not an HL7 time (HHMM[SS])")
    return {"valueTime": f"{digits[1]}:{digits[2] or '00'}:{digits[3] or '00'}"}


def observation_value(obx: Segment, builder: BundleBuilder) -> Json:
    """The value[x] of an OBX (empty when OBX-5 is); MappingError 102 for a value its type cannot hold."""
    reps = [r for r in obx.repetitions(5) if r.strip()]
    if not reps:
        return {}
    d, kind = obx.delimiters, obx.get(2).strip().upper()
    with reading(obx, 5):
        if kind in ("NM", "SN"):
            return _numeric(obx, reps[0], kind) if len(reps) == 1 else _text(obx, reps)
        if kind in _CODED:
            if len(reps) > 1:
                return _text(obx, [part(r, d, 2) or part(r, d, 1) for r in reps])
            concept = cwe_concept(reps[0], d, builder.ctx.institution)
            return {"valueCodeableConcept": concept} if concept else {}
        if kind in ("DT", "DTM", "TS"):
            when = ts_datetime(part(reps[0], d, 1), builder.ctx.zone)
            return {"valueDateTime": when} if when else {}
        if kind == "TM":
            return _time(obx, reps[0])
        if kind == "NR":
            low, high = number(part(reps[0], d, 1)), number(part(reps[0], d, 2))
            bounds = {k: {"value": v} for k, v in (("low", low), ("high", high)) if v is not None}
            return {"valueRange": bounds} if bounds else _text(obx, reps)
    return _text(obx, reps)


def reference_range(obx: Segment) -> Json | None:
    """OBX-7 as a referenceRange: low/high in the result's unit when it reads as a range, else text."""
    text = obx.field_text(7).strip()
    if not text:
        return None
    unit = _units(obx).get("unit")

    def bound(value: int | float | None) -> Json:
        return {"value": value, "unit": unit} if unit else {"value": value}

    between = _RANGE.match(text)
    if between:
        return {"low": bound(number(between[1])), "high": bound(number(between[2]))}
    compared = _COMPARED.match(text)
    if compared:
        side = "low" if compared[1] in (">", ">=", "≥") else "high"
        return {side: bound(number(compared[2]))}
    return {"text": text}


def interpretation(obx: Segment) -> list[Json]:
    """OBX-8 abnormal flags as ObservationInterpretation concepts (HL7 table 0078 when v3 lacks the code)."""
    out = []
    for raw in obx.repetitions(8):
        code = part(raw, obx.delimiters, 1)
        if code:
            system = (
                V3_INTERPRETATION
                if code.upper() in _V3_FLAGS
                else "http://terminology.hl7.org/CodeSystem/v2-0078"
            )
            out.append(
                {"coding": [coding(code.upper() if system == V3_INTERPRETATION else code, "", system)]}
            )
    return out


def status_code(obx: Segment) -> str:
    """OBX-11, upper case."""
    return obx.get(11).strip().upper()


def observation_status(obx: Segment, default: str) -> str:
    """OBX-11 (HL7 table 0085) as Observation.status; ``default`` when empty or unknown."""
    return OBSERVATION_STATUS.get(status_code(obx), default)


def absent_reason(obx: Segment) -> Json | None:
    """dataAbsentReason of an OBX without a value whose status says why (N not asked, X not obtained)."""
    reason = _ABSENT.get(status_code(obx))
    return {"coding": [coding(reason, "", DATA_ABSENT)]} if reason else None


def is_attachment(obx: Segment) -> bool:
    """Whether the OBX carries a document (ED, embedded; RP, referenced) rather than a result value."""
    return obx.get(2).strip().upper() in ("ED", "RP")


def _content_type(kind: str, subtype: str) -> str:
    top = _MIME_TOP.get(kind.strip().upper())
    sub = subtype.strip().lower()
    sub = _MIME_SUB.get(sub, sub)
    if top is None:
        return "application/octet-stream"
    if not sub or not re.match(r"^[a-z0-9][a-z0-9.+-]*$", sub):
        sub = "plain" if top == "text" else "octet-stream"
    return f"{top}/{sub}"


def _decoded(encoding: str, data: str) -> bytes:
    encoding = encoding.strip().upper()
    if encoding == "BASE64":
        try:
            return base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DataTypeError("ED-5 is not valid Base64") from None
    if encoding == "HEX":
        try:
            return bytes.fromhex(data)
        except ValueError:
            raise DataTypeError("ED-5 is not valid hexadecimal") from None
    return data.encode("utf-8")


def attachment(obx: Segment) -> Json | None:
    """An ED or RP OBX-5 as an Attachment (data with size and SHA-1, or the url); None when it is empty."""
    reps = obx.repetitions(5)
    if not reps:
        return None
    raw, d = reps[0], obx.delimiters
    if obx.get(2).strip().upper() == "RP":
        pointer = part(raw, d, 1)
        if not pointer:
            return None
        out: Json = {"contentType": _content_type(part(raw, d, 3), part(raw, d, 4)), "url": pointer}
        return out
    data = part(raw, d, 5)
    if not data:
        return None
    with reading(obx, 5):
        content = _decoded(part(raw, d, 4), data)
    return bytes_attachment(content, _content_type(part(raw, d, 2), part(raw, d, 3)))


def bytes_attachment(content: bytes, content_type: str, **extra: Any) -> Json:
    """An Attachment holding ``content`` (Base64 data, size, SHA-1 hash as FHIR defines it)."""
    return {
        "contentType": content_type,
        "data": base64.b64encode(content).decode("ascii"),
        "size": len(content),
        "hash": base64.b64encode(hashlib.sha1(content).digest()).decode("ascii"),  # noqa: S324 - FHIR says SHA-1
        **extra,
    }
