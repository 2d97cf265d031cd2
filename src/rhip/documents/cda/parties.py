"""The people and institutions of a CDA header: patient, persons, organizations and addresses."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents.cda.codes import fhir_system
from rhip.documents.cda.model import Coded, OrganizationRef, PatientInfo, PersonRef
from rhip.documents.cda.values import SHANGHAI, instance_id, string, time_of
from rhip.documents.cda.xmlpath import Element, attr, child, children, local, text

ORGANIZATION_OID = "2.16.156.10011.1.5"
# GB/T 2261.1 sex → FHIR gender (the inverse of what the platform's CDA writer does).
_GENDER = {"1": "male", "2": "female", "0": "unknown", "9": "other"}
# AD parts, in the order a Chinese address reads (state → house number); township is the WS/T samples' own
# element, precinct where core-schema writers put the 乡镇.
_LINE_PARTS = ("township", "precinct", "streetName", "streetAddressLine", "houseNumber", "additionalLocator")
# patientRole ids that name a report, request, specimen or prescription (the WS/T 500 samples put them
# there), not the patient: 病理号, 标本号, 处方编号, 电子申请单编号, 检查报告单号, 检验报告单号.
RECORD_ROOTS = frozenset(f"2.16.156.10011.1.{n}" for n in (8, 14, 20, 24, 32, 33))
_USES = {"H": "home", "HP": "home", "WP": "work", "TMP": "temp", "PHYS": "home"}


def coded(element: Element | None) -> Coded | None:
    """A coded header element as (FHIR system, code, display)."""
    if element is None or not attr(element, "code") or attr(element, "nullFlavor"):
        return None
    system = fhir_system(attr(element, "codeSystem"), attr(element, "codeSystemName")) or ""
    return Coded(system, attr(element, "code"), attr(element, "displayName"))


def address(element: Element | None) -> dict[str, Any] | None:
    """An AD as a FHIR Address: state, city, district, one line (乡镇 + street + house number), text."""
    if element is None:
        return None
    parts = {local(c): text(c) for c in element if local(c) and text(c)}
    line = "".join(parts.get(p, "") for p in _LINE_PARTS)
    if not parts:
        loose = text(element)
        return {"text": loose} if loose else None
    out: dict[str, Any] = {}
    use = _USES.get(attr(element, "use"))
    if use:
        out["use"] = use
    full = "".join(parts.get(p, "") for p in ("state", "city", "county")) + line
    if full:
        out["text"] = full
    if line:
        out["line"] = [line]
    for cda, fhir in (
        ("city", "city"),
        ("county", "district"),
        ("state", "state"),
        ("postalCode", "postalCode"),
    ):
        if parts.get(cda):
            out[fhir] = parts[cda]
    if parts.get("country"):
        out["country"] = parts["country"]
    return out


def telecoms(owner: Element | None) -> tuple[str, ...]:
    """Phone numbers of the telecom children, without the ``tel:`` scheme."""
    out = []
    for element in children(owner, "telecom"):
        value = attr(element, "value")
        if value.lower().startswith("tel:"):
            value = value[4:]
        if value and not value.lower().startswith(("mailto:", "fax:")):
            out.append(value)
    return tuple(out)


def organization(element: Element | None) -> OrganizationRef | None:
    """An organization with its institution code (2.16.156.10011.1.5 id, else any id) and name."""
    if element is None:
        return None
    code = ""
    for ident in children(element, "id"):
        found = instance_id(ident)
        if found and (found[0] == ORGANIZATION_OID or not code):
            code = found[1]
    phones = telecoms(element)
    return OrganizationRef(
        code, string(child(element, "name")), phones[0] if phones else "", address(child(element, "addr"))
    )


def person(entity: Element | None, person_tag: str = "assignedPerson") -> PersonRef:
    """A person of an assigned role: staff number, name and the role named in ``code``."""
    if entity is None:
        return PersonRef()
    found = instance_id(child(entity, "id"))
    return PersonRef(
        found[1] if found else "",
        string(child(entity, person_tag, "name")),
        attr(child(entity, "code"), "displayName"),
    )


def role_identifiers(role: Element, *, records: bool = False) -> tuple[tuple[str, str], ...]:
    """(FHIR system, value) of the usable ids of patientRole and its patient: the patient's own, or
    with ``records`` the report, request and specimen numbers written there."""
    ids = [*children(role, "id"), *children(child(role, "patient"), "id")]
    out: list[tuple[str, str]] = []
    for element in ids:
        found = instance_id(element)
        if found is None or (found[0] in RECORD_ROOTS) != records:
            continue
        pair = (f"urn:oid:{found[0]}", found[1])
        if pair not in out:
            out.append(pair)
    return tuple(out)


def patient(role: Element, zone: ZoneInfo = SHANGHAI) -> PatientInfo:
    """The patient of recordTarget/patientRole."""
    person_el = child(role, "patient")
    sex = coded(child(person_el, "administrativeGenderCode"))
    birth = time_of(child(person_el, "birthTime"), zone)
    return PatientInfo(
        identifiers=role_identifiers(role),
        name=string(child(person_el, "name")),
        gender=_GENDER.get(sex.code, "unknown") if sex else "",
        gender_code=sex,
        birth_date=birth[:10] if birth else None,
        telecom=telecoms(role),
        address=address(child(role, "addr")),
        marital_status=coded(child(person_el, "maritalStatusCode")),
        ethnicity=coded(child(person_el, "ethnicGroupCode")),
    )
