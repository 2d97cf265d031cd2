"""componentOf/encompassingEncounter: the visit a document belongs to."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rhip.documents.cda.model import EncounterInfo
from rhip.documents.cda.parties import coded, organization, person
from rhip.documents.cda.values import SHANGHAI, instance_id, interval
from rhip.documents.cda.xmlpath import Element, child, children

OUTPATIENT_NO = "2.16.156.10011.1.11"  # 门诊号
INPATIENT_NO = "2.16.156.10011.1.12"  # 住院号
EMERGENCY_NO = "2.16.156.10011.1.10"  # 门（急）诊号


def encounter_info(element: Element | None, zone: ZoneInfo = SHANGHAI) -> EncounterInfo | None:
    """The visit: number, class, period, department, attending staff, disposition and admission route."""
    if element is None:
        return None
    number, system = "", ""
    for ident in children(element, "id"):
        found = instance_id(ident)
        if found:
            system, number = f"urn:oid:{found[0]}", found[1]
            break
    start, end = interval(child(element, "effectiveTime"), zone)
    facility = child(element, "location", "healthCareFacility", "serviceProviderOrganization")
    department = organization(facility) if facility is not None else None
    attenders = tuple(
        p
        for p in (person(child(ep, "assignedEntity")) for ep in children(element, "encounterParticipant"))
        if p.name or p.id
    )
    if not number and not start:
        return None
    return EncounterInfo(
        visit_number=number,
        visit_system=system,
        type=_class(system, department.name if department else ""),
        start=start,
        end=end,
        department=department if department and (department.code or department.name) else None,
        attenders=attenders,
        discharge_disposition=coded(child(element, "dischargeDispositionCode")),
        admission_route=coded(child(element, "code")),
    )


def _class(system: str, department: str) -> str:
    """FHIR Encounter.class: a 住院号 means a stay; an emergency department an emergency visit."""
    if system.endswith(INPATIENT_NO):
        return "IMP"
    if "急诊" in department or system.endswith(EMERGENCY_NO):
        return "EMER"
    return "AMB"
