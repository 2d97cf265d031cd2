"""Vaccinations (substanceAdministration of a manufacturedMaterial) as Immunization resources."""

from __future__ import annotations

from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.parties import ORGANIZATION_OID
from rhip.documents.cda.values import concept, instance_id, number, quantity, string
from rhip.documents.cda.xmlpath import Element, attr, child


def immunization(
    x: Extraction, entry: Element, sbadm: Element, material: Element, recorded: str | None
) -> Resource:
    """Vaccine, date, dose number, lot, maker, route, site, dose and who gave it."""
    name = string(child(material, "name"))
    vaccine = concept(child(material, "code"), name) or {"text": name}
    if name:
        vaccine["text"] = name
    when = x.time(child(sbadm, "effectiveTime"))
    maker = string(child(sbadm, "consumable", "manufacturedProduct", "manufacturerOrganization", "name"))
    repeat = child(sbadm, "repeatNumber")
    dose_number = int(number(attr(repeat, "value"), repeat, integer=True)) if attr(repeat, "value") else None
    status = "not-done" if attr(sbadm, "negationInd") == "true" else "completed"
    resource = x.new(
        "Immunization", entry, status=status, vaccineCode=vaccine, occurrenceDateTime=when,
        recorded=recorded or when, primarySource=True, lotNumber=string(child(material, "lotNumberText")),
        manufacturer={"display": maker} if maker else None, route=concept(child(sbadm, "routeCode")),
        site=concept(child(sbadm, "approachSiteCode")), doseQuantity=quantity(child(sbadm, "doseQuantity")),
        performer=_performers(x, sbadm),
        protocolApplied=[{"doseNumberPositiveInt": dose_number}] if dose_number and dose_number > 0 else None,
    )  # fmt: skip
    if not when:
        resource["occurrenceString"] = "未知"
    return resource


def _performers(x: Extraction, sbadm: Element) -> list[dict[str, object]]:
    """The vaccinating institution: the document's own when it is the same code, else by its identifier."""
    org = child(sbadm, "performer", "assignedEntity", "representedOrganization")
    found = instance_id(child(org, "id")) if org is not None else None
    own = x.doc.header.custodian.code
    if found is None or (found[1] == own and found[0] == ORGANIZATION_OID):
        return [{"actor": {"reference": x.ctx.organization_ref}}] if x.ctx.organization_ref else []
    actor: dict[str, object] = {"identifier": {"system": f"urn:oid:{found[0]}", "value": found[1]}}
    name = string(child(org, "name"))
    if name:
        actor["display"] = name
    return [{"actor": actor}]
