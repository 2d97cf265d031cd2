"""Coded values: CWE/CE/CNE, HL7 tables, sex (GB/T 2261.1), marital status (GB/T 2261.2), patient class."""

from __future__ import annotations

import re
from functools import lru_cache

from rhip.exchange.hl7v2.datatypes.primitives import (
    MARITAL_SYSTEM,
    SEX_SYSTEM,
    V2_TABLE,
    V3_ACT_CODE,
    DataTypeError,
    Json,
    Parts,
    is_oid,
    uri_name,
)
from rhip.exchange.hl7v2.message import Delimiters

# CWE-3 / CE-3 coding-system names (HL7 table 0396 and the names rhip.synth writes) -> FHIR system.
CODING_SYSTEMS: dict[str, str] = {
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
    # Chinese HIS label the national clinical edition (国家临床版) "I10", as the platform's own feeds do;
    # WHO ICD-10 proper arrives as "ICD10".
    "I10": "urn:oid:2.16.156.10011.2.3.3.11",
    "ICD10": "http://hl7.org/fhir/sid/icd-10",
    "I10C": "urn:oid:2.16.156.10011.2.3.3.11",  # ICD-10 national clinical edition
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9CP": "urn:oid:2.16.156.10011.2.3.3.12",  # ICD-9-CM-3 procedures (synth)
    "SCT": "http://snomed.info/sct",
    "SNOMED": "http://snomed.info/sct",
    "SNM": "http://snomed.info/sct",
    "CVX": "http://hl7.org/fhir/sid/cvx",
    "WC": "http://www.whocc.no/atc",
    "ATC": "http://www.whocc.no/atc",
    "ISO3166_1": "urn:iso:std:iso:3166",
    "ISO3166": "urn:iso:std:iso:3166",
    "GB3304": "urn:oid:2.16.156.10011.2.3.3.3",
    "GBT2261.1": SEX_SYSTEM,
    "GBT2261.2": MARITAL_SYSTEM,
    "GBT2659": "urn:oid:2.16.156.10011.2.3.3.1",
    "GBT4658": "urn:oid:2.16.156.10011.2.3.3.6",
    "GBT6565": "urn:oid:2.16.156.10011.2.3.3.7",
    "GBT4761": "urn:oid:2.16.156.10011.2.3.3.8",
    "GBT2260": "urn:rhip:cs:gb-t-2260",
    "99NIP": "urn:rhip:cs:nip-vaccine",
    "99NIDRS": "urn:rhip:cs:notifiable-disease",
}
_TABLE_NAME = re.compile(r"^HL7(\d{4})$")


@lru_cache(maxsize=4096)
def coding_system(name: str, institution: str = "") -> str | None:
    """The FHIR system of a CWE-3 coding-system name; None when the name is empty.

    ``HL7nnnn`` is table nnnn of terminology.hl7.org, an OID becomes ``urn:oid:``, ``L`` and ``99zzz`` are
    the sending institution's own tables (``urn:rhip:cs:local:<institution>[:<table>]``, as synth writes
    them); any other name stays recognisable as ``urn:rhip:cs:v2:<name>``.
    """
    name = name.strip()
    if not name:
        return None
    upper = name.upper()
    known = CODING_SYSTEMS.get(upper)
    if known is not None:
        return known
    table = _TABLE_NAME.match(upper)
    if table is not None:
        return V2_TABLE + table[1]
    if is_oid(name):
        return f"urn:oid:{name}"
    if upper == "L":
        return f"urn:rhip:cs:local:{uri_name(institution)}"
    if upper.startswith("99") and len(name) > 2:
        return f"urn:rhip:cs:local:{uri_name(institution)}:{uri_name(name[2:].lower())}"
    if ":" in name and not any(c.isspace() for c in name):
        return name  # already a URI (a name with spaces and colons is a LOINC-style text, not one)
    return f"urn:rhip:cs:v2:{uri_name(name)}"


def coding(code: str, display: str, system: str | None, version: str = "") -> Json:
    """A Coding with the parts that are present."""
    c: Json = {}
    if system:
        c["system"] = system
    if version:
        c["version"] = version
    c["code"] = code
    if display:
        c["display"] = display
    return c


def cwe_codings(raw: str, d: Delimiters, institution: str, default_system: str | None = None) -> list[Json]:
    """The codings of a CWE/CE/CNE: the identifier triplet, then the alternate one."""
    return _codings(Parts(raw, d), institution, default_system)


def _codings(p: Parts, institution: str, default_system: str | None) -> list[Json]:
    codings = []
    for first, version_at in ((1, 7), (4, 8)):
        code = p(first)
        if code:
            system = coding_system(p(first + 2), institution) or default_system
            codings.append(coding(code, p(first + 1), system, p(version_at)))
    return codings


def cwe_concept(raw: str, d: Delimiters, institution: str, default_system: str | None = None) -> Json | None:
    """A CWE/CE/CNE as a CodeableConcept; text from CWE-9 (original text), else the first display."""
    p = Parts(raw, d)
    codings = _codings(p, institution, default_system)
    text = p(9) or p(2)
    if not codings:
        return {"text": text} if text else None
    concept: Json = {"coding": codings}
    if text:
        concept["text"] = text
    return concept


def table_coding(code: str, table: str, display: str = "") -> Json:
    """A Coding in HL7 table ``table`` (``"0004"``) of terminology.hl7.org."""
    return coding(code, display, V2_TABLE + table)


# -- sex, marital status, patient class ------------------------------------------------------------

# HL7 table 0001 (and the GB/T 2261.1 codes some Chinese HIS send in its place) -> (gender, GB/T 2261.1)
_SEX = {
    "M": ("male", "1"),
    "F": ("female", "2"),
    "O": ("other", "9"),
    "A": ("other", "9"),
    "N": ("other", "9"),
    "U": ("unknown", "0"),
    "1": ("male", "1"),
    "2": ("female", "2"),
    "9": ("unknown", "9"),
    "0": ("unknown", "0"),
    "男": ("male", "1"),
    "女": ("female", "2"),
    "未知": ("unknown", "0"),
}
_SEX_DISPLAY = {"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"}


def _sex(code: str) -> tuple[str, str] | None:
    code = code.strip().upper()
    if not code:
        return None
    found = _SEX.get(code)
    if found is None:
        raise DataTypeError(f"{code[:10]!r} is not an administrative sex (HL7 table 0001)", "103")
    return found


def sex_gender(code: str) -> str | None:
    """HL7 0001 sex (M F O U A N, or a GB/T 2261.1 code) as FHIR ``gender``."""
    found = _sex(code)
    return found[0] if found else None


def sex_coding(code: str) -> Json | None:
    """HL7 0001 sex as a GB/T 2261.1 Coding (1 男性, 2 女性, 0 未知, 9 未说明)."""
    found = _sex(code)
    return coding(found[1], _SEX_DISPLAY[found[1]], SEX_SYSTEM) if found else None


_MARITAL_HL7_TO_GB = {"S": "10", "M": "20", "W": "30", "D": "40", "A": "90", "U": "90", "P": "90"}
_MARITAL_HL7_TO_GB |= {"C": "20", "E": "90", "G": "90", "I": "20", "N": "90", "O": "90", "R": "20", "B": "10"}
_MARITAL_DISPLAY = {"10": "未婚", "20": "已婚", "30": "丧偶", "40": "离婚", "90": "未说明的婚姻状况"}
_MARITAL_DISPLAY |= {"21": "初婚", "22": "再婚", "23": "复婚"}
_V3_MARITAL = frozenset("ACDILMPSTUW")


def marital_status(raw: str, d: Delimiters, institution: str) -> Json | None:
    """PID-16 as a GB/T 2261.2 concept: its GB alternate when sent, else the HL7 0002 code mapped onto GB."""
    codings = cwe_codings(raw, d, institution, V2_TABLE + "0002")
    for c in codings:
        if c.get("system") == MARITAL_SYSTEM:
            return {"coding": [c]}
    if not codings:
        return cwe_concept(raw, d, institution)
    first = codings[0]
    code = str(first["code"]).upper()
    if first.get("system") != V2_TABLE + "0002" or code not in _MARITAL_HL7_TO_GB:
        return {"coding": codings}
    gb = _MARITAL_HL7_TO_GB[code]
    mapped = [coding(gb, _MARITAL_DISPLAY[gb], MARITAL_SYSTEM)]
    if code in _V3_MARITAL:  # the FHIR binding's own code system, for receivers that know no GB codes
        mapped.append(coding(code, "", "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"))
    return {"coding": mapped}


# HL7 table 0004 -> v3 ActCode (the IG's PatientClass[EncounterClass] map); others stay in table 0004
_CLASS = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
}
_CLASS_0004 = {"R": "Recurring patient", "B": "Obstetrics", "C": "Commercial Account", "U": "Unknown"}
_CLASS_0004 |= {"N": "Not Applicable"}


def patient_class(code: str) -> Json | None:
    """PV1-2 patient class as Encounter.class (v3 ActCode AMB/IMP/EMER/PRENC, else HL7 table 0004)."""
    code = code.strip().upper()
    if not code:
        return None
    if code in _CLASS:
        act, display = _CLASS[code]
        return coding(act, display, V3_ACT_CODE)
    if code in _CLASS_0004:
        return table_coding(code, "0004", _CLASS_0004[code])
    raise DataTypeError(f"{code[:10]!r} is not a patient class (HL7 table 0004)", "103")
