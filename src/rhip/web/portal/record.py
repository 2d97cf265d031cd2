"""A resident's cross-institution record (调阅), assembled for a page: who the person is and which records
are theirs, a summary, vitals, a timeline of encounters, lab results, documents and the institutions that
hold records of them. Shared by the clinician workbench and the resident's own pages.

Every function here runs inside :meth:`Portal.run` (acting as the viewer): each read goes through
``portal.fhir``/``portal.search``, so the security layer decides and audits it like an API call. A section
is one or two searches over every record of the person (``patient=a,b,c`` with ``_count``), never a read
per resource. Refusals surface as :class:`PortalError` (403 without a care relationship).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rhip.security.context import maybe_principal
from rhip.security.operations import ADMINS, OPERATION_ROLES
from rhip.security.principal import Role
from rhip.web.portal.core import Portal, PortalError
from rhip.web.portal.record_shape import (
    ID_NUMBER_SYSTEM,
    code_of,
    concept_text,
    merge_encounters,
    ref_id,
    shape_document,
    shape_encounter,
    shape_labs,
    shape_summary,
    shape_vitals,
)

# How much of each kind a page shows (the newest first).
TIMELINE_COUNT = 200
LAB_COUNT = 500
VITAL_COUNT = 200
DOCUMENT_COUNT = 200
SUMMARY_COUNT = 200
LINKED_COUNT = 100  # a resident's records at every institution


@dataclass(frozen=True)
class Person:
    """A resident as the record pages see them: the Patient asked for and every record of the person."""

    patient: dict[str, Any]  # the Patient resource asked for
    records: tuple[str, ...]  # every Patient id of the person (the one asked for first)
    golden: dict[str, Any] | None  # the resident index's golden record, when the viewer may read it

    @property
    def id(self) -> str:
        """The Patient id asked for."""
        return str(self.patient.get("id", ""))

    @property
    def refs(self) -> str:
        """Every record as a ``patient=`` search value."""
        return ",".join(f"Patient/{r}" for r in self.records)

    @property
    def name(self) -> str:
        """The person's name (the golden record's, else the record's)."""
        return name_of(self.golden or self.patient) or name_of(self.patient)

    @property
    def id_number(self) -> str:
        """The resident ID number (身份证号), or ''."""
        return identifier(self.golden or self.patient, ID_NUMBER_SYSTEM) or identifier(
            self.patient, ID_NUMBER_SYSTEM
        )

    @property
    def phone(self) -> str:
        """The first phone number, or ''."""
        for source in (self.golden or {}, self.patient):
            for t in source.get("telecom") or ():
                if t.get("system") == "phone" and t.get("value"):
                    return str(t["value"])
        return ""


def name_of(patient: Mapping[str, Any]) -> str:
    """A Patient's name as written (text, else family + given)."""
    for name in patient.get("name") or ():
        if name.get("text"):
            return str(name["text"])
        text = str(name.get("family", "")) + "".join(name.get("given") or ())
        if text:
            return text
    return ""


def identifier(resource: Mapping[str, Any], system: str) -> str:
    """The value of the resource's identifier in ``system``, or ''."""
    for ident in resource.get("identifier") or ():
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return ""


def may_invoke(operation: str) -> bool:
    """Whether the current principal's role may invoke a FHIR operation (not asking spares the audit log a
    refusal on every page)."""
    principal = maybe_principal()
    return principal is not None and principal.role in OPERATION_ROLES.get(operation, ADMINS)


def person(portal: Portal, patient_id: str) -> Person:
    """The resident of ``patient_id`` with every record of theirs, as the resident index links them. 404 when
    the viewer cannot see the Patient at all.

    Records are grouped by the index's links only, never by a shared ID number (a newborn registered under a
    parent's number is another person). When the viewer may not ask the index, the page shows the record
    asked for; a resident bound to one record sees the records the security layer links to it.
    """
    patient = portal.fhir("GET", f"Patient/{patient_id}", missing_ok=True)
    if patient is None:
        raise PortalError(404, "error.not_found")
    records = [patient_id]
    golden: dict[str, Any] | None = None
    if may_invoke("empi-master"):
        try:
            golden = portal.fhir("GET", f"Patient/{patient_id}/$empi-master", missing_ok=True)
        except PortalError as exc:
            if exc.status not in (400, 403, 404):
                raise
    if golden is not None:
        records += [ref_id(link.get("other")) for link in golden.get("link") or ()]
    else:
        records += own_linked_records(portal, patient_id)
    return Person(patient, tuple(dict.fromkeys(r for r in records if r)), golden)


def own_linked_records(portal: Portal, patient_id: str) -> list[str]:
    """A resident's other records of themselves (inside ``portal.run``): when their account is bound to this
    one record only, the Patients their searches reach are exactly the resident index's links of it (the
    security layer's scope). With several bound records (a parent with children) they cannot be told apart
    without the index: none. Other roles: none."""
    principal = maybe_principal()
    if principal is None or principal.role is not Role.RESIDENT:
        return []
    bound = tuple(dict.fromkeys(p for p in principal.patients if p))
    if bound != (patient_id,):
        return []
    found = portal.search("Patient", _elements="id", _count=LINKED_COUNT)
    return [str(p.get("id", "")) for p in found]


def door(portal: Portal, who: Person) -> None:
    """The record's door, passed before anything of it is shown (a page, a section, a document): a search the
    policy gates by care relationship, consent or break-the-glass over every record of the person; the 403
    without one asks for the break-the-glass reason. A count: nothing of the record is read."""
    portal.fhir("GET", "Encounter", [("patient", who.refs), ("_summary", "count")])


def summary(portal: Portal, who: Person) -> dict[str, Any]:
    """Active problems, allergies, current medications, immunizations and chronic-disease follow-up.

    The first search is the record's door: without a care relationship it is the 403 that asks for the
    break-the-glass reason.
    """
    refs, n = who.refs, SUMMARY_COUNT
    conditions = portal.search("Condition", patient=refs, _sort="-recorded-date", _count=n)
    allergies = portal.search("AllergyIntolerance", patient=refs, _count=n)
    medications = portal.search("MedicationRequest", patient=refs, _sort="-authoredon", _count=n)
    immunizations = portal.search("Immunization", patient=refs, _sort="-date", _count=n)
    follow_ups = portal.search(
        "Encounter", patient=refs, type="htn-followup,dm-followup", _sort="-date", _count=n
    )
    return shape_summary(conditions, allergies, medications, immunizations, follow_ups)


def vitals(portal: Portal, who: Person) -> dict[str, Any]:
    """The latest value of each vital sign and the blood-pressure series (oldest first)."""
    found = portal.search(
        "Observation", patient=who.refs, category="vital-signs", _sort="-date", _count=VITAL_COUNT
    )
    return shape_vitals(found)


def timeline(portal: Portal, who: Person, count: int = TIMELINE_COUNT) -> list[dict[str, Any]]:
    """The person's encounters at every institution, newest first."""
    found = portal.search("Encounter", patient=who.refs, _sort="-date", _count=count)
    rows = [shape_encounter(e) for e in found]
    unnamed = sorted({ref_id(e.get("serviceProvider")) for e in found} & {r["institution"] for r in rows})
    names = organization_names(portal, unnamed)
    for row in rows:
        row["institution"] = names.get(row["institution"], row["institution"])
    return merge_encounters(rows)


def organization_names(portal: Portal, ids: list[str]) -> dict[str, str]:
    """The names of Organizations by id (one search)."""
    if not ids:
        return {}
    found = portal.search("Organization", _id=",".join(ids), _elements="name", _count=len(ids))
    return {str(o.get("id")): str(o.get("name") or o.get("id")) for o in found}


def labs(portal: Portal, who: Person) -> list[dict[str, Any]]:
    """Lab results grouped by test (LOINC): the latest value, its flag, and the series (oldest first)."""
    found = portal.search(
        "Observation", patient=who.refs, category="laboratory", _sort="-date", _count=LAB_COUNT
    )
    return shape_labs(found)


def documents(portal: Portal, who: Person) -> list[dict[str, Any]]:
    """The person's clinical documents (DocumentReference), newest first."""
    found = portal.search(
        "DocumentReference", patient=who.refs, status="current", _sort="-date", _count=DOCUMENT_COUNT
    )
    return [shape_document(d) for d in found]


def holders(portal: Portal, who: Person) -> list[dict[str, Any]]:
    """The institutions that hold a record of the person: one row per record (institution, MRN, kind)."""
    records = portal.search("Patient", _id=",".join(who.records), _count=len(who.records) or 1)
    org_ids = sorted({ref_id(p.get("managingOrganization")) for p in records} - {""})
    orgs = {
        str(o.get("id")): o
        for o in (
            portal.search("Organization", _id=",".join(org_ids), _count=len(org_ids)) if org_ids else []
        )
    }
    out = []
    for p in records:
        org_id = ref_id(p.get("managingOrganization"))
        org = orgs.get(org_id, {})
        mrn = next(
            (
                str(i.get("value", ""))
                for i in p.get("identifier") or ()
                if str(i.get("system", "")).startswith("urn:rhip:mrn:")
            ),
            "",
        )
        kind = next(
            (concept_text(t) for t in org.get("type") or () if code_of(t, "urn:rhip:cs:institution-kind")),
            "",
        )
        out.append(
            {
                "patient": str(p.get("id", "")),
                "organization": org_id,
                "institution": str(org.get("name") or org_id),
                "kind": kind,
                "mrn": mrn,
                "this": p.get("id") == who.id,
            }
        )
    return sorted(out, key=lambda h: (not h["this"], h["institution"]))


def document(portal: Portal, who: Person, docref_id: str) -> dict[str, Any]:
    """One of the person's documents (404 when it is not theirs): its row and the raw content bytes."""
    found = portal.fhir("GET", f"DocumentReference/{docref_id}", missing_ok=True)
    if found is None or ref_id(found.get("subject")) not in who.records:
        raise PortalError(404, "error.not_found")
    row = shape_document(found)
    data = b""
    if row["binary"]:
        binary = portal.fhir("GET", f"Binary/{row['binary']}", missing_ok=True)
        if binary is None:
            raise PortalError(404, "error.not_found")
        data = binary_bytes(binary)
    return {**row, "data": data}


def binary_bytes(binary: Mapping[str, Any]) -> bytes:
    """The content of a Binary resource (its base64 ``data``)."""
    import base64

    text = binary.get("data")
    return base64.b64decode(str(text)) if text else b""


def document_html(data: bytes, *, lang: str, mask_ids: bool) -> str:
    """A CDA document as an HTML ``<article class="cda">`` (escaped by the renderer); '' when it is not CDA."""
    from rhip.core.errors import RhipError
    from rhip.documents.render import render_html

    if not data:
        return ""
    try:
        return render_html(data, lang="en" if lang == "en" else "zh", full_page=False, mask_ids=mask_ids)
    except RhipError:
        return ""
