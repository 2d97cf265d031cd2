"""Building blocks of synth.hl7v2: raw text and escaping, field values, the patient and visit segments.

Segments are built *raw*: delimiters are written as placeholders (FS, CS, RS, SS, EOS: lone surrogates,
which no valid text holds) and data is inserted as it is. ``finish`` then escapes the data's delimiters in
one pass over the whole message and turns the placeholders into ``| ^ ~ &`` and CR. Every value is thus
escaped by construction, for a few ``str.replace`` over the message instead of one call per value.

Coding-system names (CWE-3): LN, UCUM, I10 (ICD-10, national clinical edition), I9CP, WC (ATC), SCT, CVX,
GB3304, GBT2261.1, GBT2261.2, 99NIP (immunization programme vaccines), 99NIDRS (notifiable diseases), and
``99`` + the table name in upper case for an institution's own tables (the institution is MSH-4); else L.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from rhip.cda.fhirread import ref_id
from rhip.synth import systems as s

Resource = Mapping[str, Any]

FS, CS, RS, SS, EOS, ENC = "\ud800", "\ud801", "\ud802", "\ud803", "\ud804", "\ud805"  # | ^ ~ & CR ^~\&
_TO_RAW = str.maketrans({"|": FS, "^": CS, "~": RS, "&": SS, "\r": EOS})
_SPECIAL = re.compile(r"[\\|^&~\r\n]").search
_CST = timezone(timedelta(hours=8))
_SYSTEM_NAMES: dict[str, str] = {
    s.LOINC: "LN",
    s.UCUM: "UCUM",
    s.ICD10: "I10",
    s.ICD9CM3: "I9CP",
    s.ATC: "WC",
    s.ETHNICITY: "GB3304",
    s.SEX: "GBT2261.1",
    s.MARITAL: "GBT2261.2",
    s.NIP_VACCINE: "99NIP",
    s.NOTIFIABLE_DISEASE: "99NIDRS",
    "http://snomed.info/sct": "SCT",
    "http://hl7.org/fhir/sid/cvx": "CVX",
}
_LOCAL_PREFIX = "urn:rhip:cs:local:"


def tpl(text: str) -> str:
    """A constant written with real delimiters, as raw (placeholder) text."""
    return text.translate(_TO_RAW)


def escape(text: str) -> str:
    """Text with the HL7 delimiters (and CR, LF) replaced by escape sequences."""
    if not _SPECIAL(text):
        return text
    return (
        text.replace("\\", "\\E\\")  # first, so that the backslashes added below stay as they are
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", "\\X0D\\")
        .replace("\n", "\\X0A\\")
    )


def finish(raw: str) -> str:
    """A raw message as HL7 text: data escaped, placeholders turned into delimiters."""
    return (
        escape(raw)
        .replace(FS, "|")
        .replace(CS, "^")
        .replace(RS, "~")
        .replace(SS, "&")
        .replace(EOS, "\r")
        .replace(ENC, "^~\\&")
    )


def trim(fields: list[str]) -> str:
    """Raw fields joined into a segment (with its terminator), without trailing empty fields."""
    return FS.join(fields).rstrip(FS) + EOS


def hl7_ts(value: str | datetime | None) -> str:
    """A FHIR date/dateTime (or a datetime) as HL7 TS: YYYY[MM[DD]] or YYYYMMDDHHMMSS+0800."""
    if not value:
        return ""
    if isinstance(value, str):
        n = len(value)
        if n == 25 and value.endswith("+08:00"):  # the generator's own form needs no parsing
            v = value
            return f"{v[0:4]}{v[5:7]}{v[8:10]}{v[11:13]}{v[14:16]}{v[17:19]}+0800"
        if n <= 10:
            return value.replace("-", "")
        value = datetime.fromisoformat(value)
    # A naive time is taken to be local (China Standard Time), as a hospital system would.
    value = value.replace(tzinfo=_CST) if value.tzinfo is None else value.astimezone(_CST)
    return value.strftime("%Y%m%d%H%M%S+0800")


def num(value: Any) -> str:
    """A number as NM text (no exponent)."""
    text = str(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def system_name(system: str) -> str:
    """The HL7 coding-system name (CWE-3) for a FHIR code system URI."""
    name = _SYSTEM_NAMES.get(system)
    if name is None:
        name = "99" + system.rsplit(":", 1)[1].upper() if system.startswith(_LOCAL_PREFIX) else "L"
        _SYSTEM_NAMES[system] = name  # bounded: one entry per institution table
    return name


def coding(c: Resource, text: str = "") -> str:
    """A Coding as code^display^system (``text`` stands in for a missing display)."""
    return f"{c.get('code', '')}{CS}{c.get('display') or text}{CS}{system_name(c.get('system', ''))}"


def cwe(concept: Resource | None) -> str:
    """A CodeableConcept as CWE: first coding, second coding as the alternate; text alone when uncoded."""
    if not concept:
        return ""
    codings = concept.get("coding")
    text = concept.get("text", "")
    if not codings:
        return CS + text if text else ""
    if len(codings) == 1:
        return coding(codings[0], text)
    return f"{coding(codings[0], text)}{CS}{coding(codings[1])}"


def mapped_cwe(concept: Resource | None, table: Mapping[str, str], table_name: str) -> str:
    """A CodeableConcept known only by its text, coded through ``table`` when the text is in it."""
    if not concept or concept.get("coding"):
        return cwe(concept)
    text = concept.get("text", "")
    code = table.get(text)
    return f"{code}{CS}{text}{CS}{table_name}" if code else cwe(concept)


def institution_code(org: Resource) -> str:
    """The institution code (Organization identifier under the organization OID), else the resource id."""
    for ident in org.get("identifier", ()):
        if ident.get("system") == s.ORGANIZATION_OID:
            return str(ident["value"])
    return str(org.get("id", ""))


def name(person: Resource) -> str:
    """A Patient's or Practitioner's name as raw XPN family^given (official name first)."""
    names = person.get("name")
    if not names:
        return ""
    chosen = next((n for n in names if n.get("use") == "official"), names[0])
    given: list[str] = chosen.get("given") or []
    if len(given) == 1:
        joined = given[0]
    else:  # Chinese given names are written without a space, Latin ones with one
        joined = ("" if all(not g.isascii() for g in given) else " ").join(given)
    family = str(chosen.get("family", ""))
    if not family and not joined:
        return str(chosen.get("text", ""))
    return f"{family}{CS}{joined}" if joined else family


def xcn(practitioner: Resource | None, org_code: str, display: str = "") -> str:
    """A Practitioner as raw XCN staff no^family^given^^^^^^institution (``^display``: only a name known)."""
    if practitioner is None:
        return CS + display if display else ""
    staff_no = ""
    for ident in practitioner.get("identifier", ()):
        if ident.get("system") == s.STAFF_NO:
            staff_no = ident.get("value", "")
    person = name(practitioner)
    if CS not in person:
        person += CS
    return f"{staff_no}{CS}{person}{CS * 6}{org_code}"


# -- segments of the patient and the visit --------------------------------------------------------

_PID3 = (  # identifier system, raw CX after the value: assigning authority and identifier type (table 0203)
    (s.ID_CARD, tpl("^^^&2.16.156.10011.1.3&ISO^NNCHN")),
    (s.HEALTH_CARD, tpl("^^^&2.16.156.10011.1.19&ISO^HC")),
    (s.INSURANCE_CARD, tpl("^^^&2.16.156.10011.1.15&ISO^SN")),
    (s.HEALTH_RECORD, tpl("^^^&2.16.156.10011.1.2&ISO^PT")),
)
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_MARITAL_GB_TO_HL7 = {"10": "S", "20": "M", "21": "M", "22": "M", "23": "M", "30": "W", "40": "D", "90": "U"}
_ADDRESS_USE = {"home": "H", "work": "O", "temp": "C", "billing": "BI", "old": "BA"}
_PATIENT_CLASS = {"IMP": "I", "ACUTE": "I", "NONAC": "I", "EMER": "E", "AMB": "O", "OBSENC": "O", "HH": "O"}
_MOBILE, _PHONE, _WORK, _EMAIL = tpl("^PRN^CP"), tpl("^PRN^PH"), tpl("^WPN^PH"), tpl("^NET^Internet^")
_CC3, _CC5 = CS * 3, CS * 5

# MSH-3, MSH-5, MSH-6, MSH-18 (None: left empty), MSH-12, MSH-11
Header = tuple[str, str, str, str | None, str, str]


def msh(org_code: str, msg_type: str, control_id: str, sent: str, header: Header) -> str:
    """The MSH segment (raw); ``sent`` is already an HL7 time."""
    app, rapp, rfac, charset, version, processing = header
    f = ["MSH", ENC, app, org_code, rapp, rfac, sent, "", msg_type, control_id, processing, version]
    f += ["", "", "", "", "CHN", charset or ""]  # MSH-13 … MSH-18
    return trim(f)


def pid3(patient: Resource, org_code: str) -> str:
    """PID-3 (or MRG-1): the patient's identifiers as raw CX repeats, MRN first."""
    by_system = {i.get("system"): i.get("value") for i in patient.get("identifier", ()) if i.get("value")}
    reps = []
    mrn = by_system.get(s.mrn_system(org_code))
    if mrn:
        reps.append(f"{mrn}{_CC3}{org_code}{CS}MR")
    for system, suffix in _PID3:
        value = by_system.get(system)
        if value:
            reps.append(value + suffix)
    if not reps:
        reps.append(f"{patient.get('id', '')}{_CC3}{org_code}{CS}PI")
    return RS.join(reps)


def _xad(address: Resource) -> str:
    county = ""
    for ext in address.get("extension", ()):
        if ext.get("url") == "urn:rhip:ext:division":
            county = ext.get("valueCode", "")[:6]
    parts = [
        "".join(address.get("line") or ()) or address.get("text", ""),
        "",
        address.get("city", ""),
        address.get("state", ""),
        address.get("postalCode", ""),
        address.get("country") or "CHN",
        _ADDRESS_USE.get(address.get("use", "home"), "H"),
        address.get("district", ""),
        county,
    ]
    return CS.join(parts)


def _telecoms(patient: Resource) -> tuple[str, str]:
    home: list[str] = []
    work: list[str] = []
    for tel in patient.get("telecom", ()):
        value = tel.get("value", "")
        use = tel.get("use")
        if tel.get("system") == "email":
            home.append(_EMAIL + value)
        elif use == "work":
            work.append(value + _WORK)
        else:
            home.append(value + (_MOBILE if use == "mobile" else _PHONE))
    return RS.join(home), RS.join(work)


def _marital(concept: Resource | None) -> str:
    for c in (concept or {}).get("coding", ()):
        if c.get("system") == s.MARITAL:
            gb, display = c.get("code", ""), c.get("display", "")
            return CS.join((_MARITAL_GB_TO_HL7.get(gb, "U"), display, "HL70002", gb, display, "GBT2261.2"))
    return cwe(concept)


def pid(patient: Resource, org_code: str) -> str:
    """The PID segment (raw)."""
    f = [""] * 31
    f[0], f[1], f[3] = "PID", "1", pid3(patient, org_code)
    f[5] = name(patient)
    f[7] = hl7_ts(patient.get("birthDate"))
    f[8] = _SEX.get(patient.get("gender", ""), "U")
    f[11] = RS.join([_xad(a) for a in patient.get("address", ())])
    f[13], f[14] = _telecoms(patient)
    f[16] = _marital(patient.get("maritalStatus"))
    for ext in patient.get("extension", ()):
        if ext.get("url") == "urn:rhip:ext:ethnicity":
            f[22] = cwe(ext.get("valueCodeableConcept"))
    if patient.get("deceasedDateTime"):
        f[29], f[30] = hl7_ts(patient["deceasedDateTime"]), "Y"
    elif patient.get("deceasedBoolean"):
        f[30] = "Y"
    return trim(f)


def _pl(encounter: Resource, org_code: str) -> str:
    locations = encounter.get("location")
    if not locations:
        return ""
    location = locations[0].get("location", {})
    loc_id = ref_id(location)
    prefix = f"loc-{org_code}-"  # the generator's Location ids end with the department code
    code = loc_id[len(prefix) :] if loc_id.startswith(prefix) else loc_id
    return f"{code}{_CC3}{org_code}{_CC5}{location.get('display', '')}"


def pv1(encounter: Resource | None, org_code: str, doctor: str, discharge: bool) -> str:
    """The PV1 segment (raw); ``doctor`` is PV1-7 (XCN), ``discharge`` adds PV1-36 and PV1-45."""
    if encounter is None:
        return f"PV1{FS}1{FS}N{EOS}"  # "not applicable": the event concerns the person, not a visit
    f = [""] * 46
    f[0], f[1] = "PV1", "1"
    f[2] = _PATIENT_CLASS.get(encounter.get("class", {}).get("code", ""), "U")
    f[3] = _pl(encounter, org_code)
    if not doctor and encounter.get("participant"):
        doctor = xcn(None, org_code, encounter["participant"][0].get("individual", {}).get("display", ""))
    f[7] = doctor
    idents = encounter.get("identifier")
    if idents:
        f[19] = f"{idents[0].get('value', '')}{_CC3}{org_code}{CS}VN"
    f[39] = org_code
    period = encounter.get("period", {})
    f[44] = hl7_ts(period.get("start"))
    if discharge:
        f[45] = hl7_ts(period.get("end"))
        disposition = encounter.get("hospitalization", {}).get("dischargeDisposition", {}).get("coding")
        if disposition:
            f[36] = disposition[0].get("code", "")
    return trim(f)


def dg1(conditions: Iterable[Resource], kind: str, practitioner: Resource | None, doctor: str) -> str:
    """DG1 segments (raw), ``doctor`` as DG1-16 where ``practitioner`` recorded the condition."""
    segments = []
    author = f"Practitioner/{practitioner.get('id')}" if practitioner else None
    for i, condition in enumerate(conditions, 1):
        f = ["DG1", str(i), "", cwe(condition.get("code")), "", hl7_ts(condition.get("recordedDate")), kind]
        if author is not None and condition.get("recorder", {}).get("reference") == author:
            f += ["", "", "", "", "", "", "", "", "", doctor]  # DG1-16 diagnosing clinician
        segments.append(trim(f))
    return "".join(segments)
