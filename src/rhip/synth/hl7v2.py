"""HL7 v2.5.1 messages a hospital's HIS/LIS sends to the regional platform, from synth's FHIR resources.

Pure string building (no HL7 library): ``adt`` (A01, A04, A08, A03, A40), ``oru_r01`` and ``vxu_v04`` return
one message with CR after every segment; ``frame`` encodes it (UTF-8, GB 18030 or GBK) inside MLLP framing,
so a stream file is exactly the bytes an MLLP client sends. Field values and the patient and visit segments
are in ``synth.hl7v2_segments``.

Conventions, the same in every message, so that the platform's v2 inbound mapping can read them back:

- PID-3 repeats, in this order: the MRN ``value^^^<institution code>^MR``; the resident ID card
  ``value^^^&2.16.156.10011.1.3&ISO^NNCHN`` (table 0203 "national person identifier" + ISO 3166 CHN; an
  old 15-digit number goes the same way); the health card ``…&2.16.156.10011.1.19&ISO^HC``; the insurance
  card ``…&2.16.156.10011.1.15&ISO^SN``; the health-record number ``…&2.16.156.10011.1.2&ISO^PT``. Other
  identifiers are not sent; a patient with none of these is sent under its resource id, type PI.
- MSH-3 the sending system (``sending_app``), MSH-4 the institution code, MSH-5/6 RHIP, MSH-17 CHN, MSH-18
  the character set, or empty with ``charset_field=None`` (hospitals that send GBK without saying so).
- Times ``YYYYMMDDHHMMSS+0800`` (China Standard Time), dates ``YYYYMMDD``.
- PID-5 ``family^given``; PID-8 M/F/O/U; PID-11 ``line^^city^province^postal^CHN^H^district^county`` with
  the 6-digit GB/T 2260 county code (first six digits of the division extension); PID-13
  ``number^PRN^CP`` (mobile) or ``^PRN^PH``, PID-14 the work phone; PID-16 HL7 table 0002 with the
  GB/T 2261.2 code as alternate; PID-22 the GB 3304 code.
- PV1-2 I/E/O (N when the event has no visit), PV1-3 ``dept code^^^institution^^^^^dept name``, PV1-7
  ``staff no^family^given^^^^^^institution``, PV1-19 ``visit no^^^institution^VN``, PV1-44/45 admit and
  discharge (PV1-45 and PV1-36 only in A03 and A08).
- DG1-6 A (admitting) in A01, F (final) in A03, W (working) otherwise.
- ORU: ORC-3/OBR-3 the report number ``value^institution``; OBX NM with UCUM units, the range
  ``low-high``, ``>low`` or ``<high`` and the interpretation as abnormal flag; the components of an
  Observation (blood pressure) become one OBX each, sharing the Observation's position as OBX-4 sub-id.
- VXU: ORC, RXA, RXR per dose; the dose number goes in an OBX (LOINC 30973-2), as 2.5.1 fixes RXA-2 at 1.

A GBK or GB 18030 byte stream may hold 0x5C, 0x5E, 0x7C or 0x7E inside a two-byte character, so a receiver
must decode before it splits on delimiters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rhip.synth import systems as s
from rhip.synth.hl7v2_segments import (
    CS,
    RS,
    Resource,
    cwe,
    dg1,
    finish,
    hl7_ts,
    institution_code,
    mapped_cwe,
    msh,
    name,
    num,
    pid,
    pid3,
    pv1,
    tpl,
    trim,
    xcn,
)

__all__ = ["adt", "charset_codec", "frame", "oru_r01", "vxu_v04"]

_STRUCTURES = {"A01": "ADT_A01", "A04": "ADT_A01", "A08": "ADT_A01", "A03": "ADT_A03", "A40": "ADT_A39"}
_DG1_TYPE = {"A01": "A", "A03": "F"}
_CODECS = {"UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "GB 18030-2000": "gb18030", "GB18030": "gb18030"}
_RESULT_STATUS = {"final": "F", "preliminary": "P", "amended": "C", "corrected": "C", "cancelled": "X"}
_OBX_STATUS = {**_RESULT_STATUS, "entered-in-error": "W", "registered": "I"}
_VALUE_KEYS = frozenset(
    ("valueQuantity", "valueString", "valueCodeableConcept", "valueInteger", "valueBoolean", "valueDateTime")
)
# route (HL7 table 0162) and site (table 0163) codes for the Chinese texts the generator writes
_ROUTES = {
    "肌内注射": "IM",
    "肌肉注射": "IM",
    "皮下注射": "SC",
    "皮内注射": "ID",
    "口服": "PO",
    "静脉注射": "IV",
}
_ROUTES |= {"鼻喷": "IN", "鼻内": "IN", "鼻内喷雾": "IN"}
_SITES = {
    "左上臂": "LA",
    "右上臂": "RA",
    "左上臂三角肌": "LD",
    "右上臂三角肌": "RD",
    "左大腿": "LT",
    "右大腿": "RT",
}
_SITES |= {"左大腿前外侧": "LVL", "右大腿前外侧": "RVL", "左臀部": "LG", "右臀部": "RG"}
_NEW_RECORD, _HISTORICAL = tpl("00^新接种记录^NIP001"), tpl("01^历史接种记录^NIP001")
_DOSE_NUMBER = tpl("30973-2^剂次^LN")
_CC3 = CS * 3


def charset_codec(charset: str) -> str:
    """The Python codec for an MSH-18 value ("UNICODE UTF-8", "GB 18030-2000") or a codec name ("gbk")."""
    return _CODECS.get(charset.upper(), charset)


def frame(message: str, charset: str = "UNICODE UTF-8", *, errors: str = "strict") -> bytes:
    """The message encoded in ``charset`` and wrapped in MLLP framing (0x0B … 0x1C 0x0D)."""
    return b"\x0b" + message.encode(charset_codec(charset), errors) + b"\x1c\r"


def adt(
    event: str,
    patient: Resource,
    org: Resource,
    *,
    control_id: str,
    sent: str | datetime,
    encounter: Resource | None = None,
    practitioner: Resource | None = None,
    conditions: Iterable[Resource] = (),
    prior_patient: Resource | None = None,
    version: str = "2.5.1",
    sending_app: str = "HIS",
    receiving_app: str = "RHIP",
    receiving_facility: str = "RHIP",
    charset_field: str | None = "UNICODE UTF-8",
    processing_id: str = "P",
) -> str:
    """An ADT message: A01 admit, A04 register, A08 update, A03 discharge, A40 merge (prior_patient: MRG)."""
    structure = _STRUCTURES.get(event)
    if structure is None:
        raise ValueError(f"unsupported ADT event {event!r}")
    if event == "A40" and prior_patient is None:
        raise ValueError("A40 needs prior_patient")
    org_code = institution_code(org)
    header = (sending_app, receiving_app, receiving_facility, charset_field, version, processing_id)
    doctor = xcn(practitioner, org_code) if practitioner else ""
    period = (encounter or {}).get("period", {})
    occurred = (
        period.get("end") if event == "A03" else period.get("start") if event in ("A01", "A04") else None
    )
    sent_ts = hl7_ts(sent)
    evn = ["EVN", event, sent_ts, "", "", "", hl7_ts(occurred) if occurred else sent_ts, org_code]
    parts = [
        msh(org_code, f"ADT{CS}{event}{CS}{structure}", control_id, sent_ts, header),
        trim(evn),
        pid(patient, org_code),
    ]
    if prior_patient is not None:
        parts.append(trim(["MRG", pid3(prior_patient, org_code), "", "", "", "", "", name(prior_patient)]))
        if encounter is not None:
            parts.append(pv1(encounter, org_code, doctor, False))
    else:
        parts.append(pv1(encounter, org_code, doctor, event in ("A03", "A08")))
        parts.append(dg1(conditions, _DG1_TYPE.get(event, "W"), practitioner, doctor))
    return finish("".join(parts))


# -- results and immunizations -----------------------------------------------------------------------


def _filler(resource: Resource, org_code: str) -> str:
    idents = resource.get("identifier")
    value = idents[0].get("value", "") if idents else resource.get("id", "")
    return f"{value}{CS}{org_code}"


def _value(item: Resource) -> tuple[str, str, str]:
    """OBX-2 value type, OBX-5 value and OBX-6 units of an Observation or component."""
    q = item.get("valueQuantity")
    if q is not None:
        code, unit = q.get("code"), q.get("unit")
        if code and q.get("system") == s.UCUM:
            units = f"{code}{CS}{unit or code}{CS}UCUM"
        else:
            units = unit or code or ""
        value = num(q["value"]) if "value" in q else ""
        comparator = q.get("comparator")
        return ("SN", f"{comparator}{CS}{value}", units) if comparator else ("NM", value, units)
    if "valueString" in item:
        return "ST", item["valueString"], ""
    if "valueCodeableConcept" in item:
        return "CWE", cwe(item["valueCodeableConcept"]), ""
    if "valueInteger" in item:
        return "NM", str(item["valueInteger"]), ""
    if "valueBoolean" in item:
        return "ST", "Y" if item["valueBoolean"] else "N", ""
    if "valueDateTime" in item:
        return "TS", hl7_ts(item["valueDateTime"]), ""
    return "", "", ""


def _range(ranges: Sequence[Resource] | None) -> str:
    if not ranges:
        return ""
    low = ranges[0].get("low", {}).get("value")
    high = ranges[0].get("high", {}).get("value")
    if low is not None and high is not None:
        return f"{num(low)}-{num(high)}"
    if low is not None:
        return f">{num(low)}"
    if high is not None:
        return f"<{num(high)}"
    return str(ranges[0].get("text", ""))


def _obx(set_id: int, item: Resource, sub_id: str, status: str, when: str) -> str:
    vtype, value, units = _value(item)
    interpretation = item.get("interpretation")
    flags = (
        RS.join([i["coding"][0].get("code", "") for i in interpretation if i.get("coding")])
        if interpretation
        else ""
    )
    f = [
        "OBX",
        str(set_id),
        vtype,
        cwe(item.get("code")),
        sub_id,
        value,
        units,
        _range(item.get("referenceRange")),
    ]
    f += [flags, "", "", status, "", "", when]  # OBX-8 … OBX-14
    return trim(f)


def _observation_obx(observations: Iterable[Resource]) -> str:
    segments = []
    n = 0
    for position, obs in enumerate(observations, 1):
        status = _OBX_STATUS.get(obs.get("status", ""), "F")
        when = hl7_ts(obs.get("effectiveDateTime") or obs.get("effectivePeriod", {}).get("start"))
        components = obs.get("component")
        if not components or not _VALUE_KEYS.isdisjoint(obs):
            n += 1
            segments.append(_obx(n, obs, "", status, when))
        for component in components or ():
            n += 1  # components (systolic, diastolic) share the Observation's position as sub-id
            segments.append(_obx(n, component, str(position), status, when))
    return "".join(segments)


def oru_r01(
    patient: Resource,
    org: Resource,
    *,
    control_id: str,
    sent: str | datetime,
    report: Resource,
    observations: Iterable[Resource],
    encounter: Resource | None = None,
    version: str = "2.5.1",
    sending_app: str = "LIS",
    receiving_app: str = "RHIP",
    receiving_facility: str = "RHIP",
    charset_field: str | None = "UNICODE UTF-8",
    processing_id: str = "P",
) -> str:
    """An ORU^R01 result message: a DiagnosticReport (ORC, OBR) and its Observations (one OBX per value)."""
    org_code = institution_code(org)
    header = (sending_app, receiving_app, receiving_facility, charset_field, version, processing_id)
    filler = _filler(report, org_code)
    issued = hl7_ts(report.get("issued"))
    effective = hl7_ts(report.get("effectiveDateTime") or report.get("effectivePeriod", {}).get("start"))
    category = report.get("category")
    section = category[0].get("coding", [{}])[0].get("code", "") if category else ""
    obr = ["OBR", "1", "", filler, cwe(report.get("code")), "", "", effective] + [""] * 14
    obr += [issued, "", section, _RESULT_STATUS.get(report.get("status", ""), "F")]  # OBR-22, 24, 25
    parts = [
        msh(org_code, f"ORU{CS}R01{CS}ORU_R01", control_id, hl7_ts(sent), header),
        pid(patient, org_code),
    ]
    if encounter is not None:
        parts.append(pv1(encounter, org_code, "", False))
    orc = ["ORC", "RE", "", filler, "", "", "", "", "", issued]
    parts += [trim(orc), trim(obr), _observation_obx(observations)]
    return finish("".join(parts))


def _rxa(imm: Resource, org_code: str) -> str:
    when = hl7_ts(imm.get("occurrenceDateTime"))
    dose = imm.get("doseQuantity") or {}
    units = ""
    if dose.get("code") or dose.get("unit"):
        code = dose.get("code") or dose.get("unit", "")
        units = CS.join((code, dose.get("unit") or code, "UCUM" if dose.get("system") == s.UCUM else "L"))
    amount = num(dose["value"]) if "value" in dose else "999"  # 999: amount unknown
    source = _NEW_RECORD if imm.get("primarySource", True) else _HISTORICAL
    manufacturer = imm.get("manufacturer", {}).get("display")
    done = imm.get("status", "completed") != "not-done"
    f = [
        "RXA",
        "0",
        "1",
        when,
        when,
        cwe(imm.get("vaccineCode")),
        amount,
        units,
        "",
        source,
        "",
        _CC3 + org_code,
    ]
    f += ["", "", "", imm.get("lotNumber", ""), hl7_ts(imm.get("expirationDate"))]  # RXA-12 … RXA-16
    f += [CS + manufacturer if manufacturer else "", "" if done else cwe(imm.get("statusReason")), ""]
    f += ["CP" if done else "NA", "D" if imm.get("status") == "entered-in-error" else "A"]  # RXA-20, RXA-21
    return trim(f)


def vxu_v04(
    patient: Resource,
    org: Resource,
    *,
    control_id: str,
    sent: str | datetime,
    immunizations: Iterable[Resource],
    version: str = "2.5.1",
    sending_app: str = "HIS",
    receiving_app: str = "RHIP",
    receiving_facility: str = "RHIP",
    charset_field: str | None = "UNICODE UTF-8",
    processing_id: str = "P",
) -> str:
    """A VXU^V04 immunization message: ORC, RXA, RXR (and the dose-number OBX) per Immunization."""
    org_code = institution_code(org)
    header = (sending_app, receiving_app, receiving_facility, charset_field, version, processing_id)
    parts = [
        msh(org_code, f"VXU{CS}V04{CS}VXU_V04", control_id, hl7_ts(sent), header),
        pid(patient, org_code),
    ]
    obx = 0
    for imm in immunizations:
        parts.append(trim(["ORC", "RE", "", _filler(imm, org_code)]))
        parts.append(_rxa(imm, org_code))
        route, site = imm.get("route"), imm.get("site")
        if route or site:
            rxr = ["RXR", mapped_cwe(route, _ROUTES, "HL70162"), mapped_cwe(site, _SITES, "HL70163")]
            parts.append(trim(rxr))
        for protocol in imm.get("protocolApplied", ())[:1]:
            dose_number = protocol.get("doseNumberPositiveInt") or protocol.get("doseNumberString")
            if dose_number:
                obx += 1
                value_type = "NM" if isinstance(dose_number, int) else "ST"
                f = [
                    "OBX",
                    str(obx),
                    value_type,
                    _DOSE_NUMBER,
                    "1",
                    str(dose_number),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "F",
                ]
                parts.append(trim(f))
    return finish("".join(parts))
