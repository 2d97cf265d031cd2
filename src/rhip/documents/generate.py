"""Generate a CDA shared document (WS/T 500, WS/T 483) from the FHIR store, for systems that want CDA back.

:func:`generate` collects the resources of one Encounter (or, for the person-level types, one Patient)
through a :class:`FhirReader` — the patient, the institution that keeps the record, the physician, the
diagnoses, observations, prescriptions, immunizations, reports, orders, procedures and allergies — into a
:class:`~rhip.cda.write.DocumentContext`, renders it with the ``rhip.cda`` writers and checks the result
with the structural CDA R2 validator before handing it out. :class:`RepositoryReader` adapts a
``FhirRepository`` and the service's search parser to the reader.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rhip.cda.errors import (
    DocumentContentMissing,
    InvalidGeneratedDocument,
    UnknownDocumentType,
    WrongDocumentSubject,
)
from rhip.cda.fhirread import coding, day, ref_id, text
from rhip.cda.schema import validate
from rhip.cda.write import RENDERERS, DocumentContext, render
from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from rhip.fhir.repository import FhirRepository
from rhip.fhir.search.parse import SearchParser
from rhip.xmlsafe import parse_xml

Resource = dict[str, Any]

PATIENT_LEVEL = frozenset({"HSDA00.01", "C0001", "HSDB03.01"})  # may be made from a Patient alone
ENCOUNTER_LEVEL = frozenset(RENDERERS) - {"HSDA00.01"}
_BLOOD_TYPE_CODES = "http://loinc.org|882-1,http://loinc.org|883-9,http://loinc.org|10331-7"
_REFERRAL = "3457005"  # SNOMED CT Patient referral (the ServiceRequest category of a referral)


class FhirReader(Protocol):
    """What the generator needs from the FHIR store."""

    def read(self, resource_type: str, resource_id: str) -> Resource:
        """The current version of a resource; raises ResourceNotFound / ResourceGone."""

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[Resource]:
        """Every match of a search (all pages, up to the reader's limit)."""


@dataclass
class RepositoryReader:
    """A :class:`FhirReader` over a FhirRepository, parsing searches with the FHIR service's parser."""

    repository: FhirRepository
    parser: SearchParser
    limit: int = 1000  # per search: a visit never has more; a runaway search stops here

    def read(self, resource_type: str, resource_id: str) -> Resource:
        """The current version of a resource."""
        return self.repository.read(resource_type, resource_id).resource()

    def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[Resource]:
        """Every match of the search, page by page."""
        query = self.parser.parse(
            resource_type, [*params, ("_count", str(min(self.limit, 200)))], strict=True
        )
        found: list[Resource] = []
        while len(found) < self.limit:
            page = self.repository.search(query)
            found.extend(m.resource() for m in page.matches)
            if not page.next_page:
                break
            query.page = page.next_page
        return found[: self.limit]


def generate(
    reader: FhirReader,
    code: str,
    *,
    encounter_id: str | None = None,
    patient_id: str | None = None,
    report_id: str | None = None,
    document_id: str | None = None,
    now: datetime | None = None,
) -> bytes:
    """The CDA document ``code`` of an Encounter (or of a Patient for HSDA00.01, C0001, HSDB03.01).

    ``report_id`` picks the DiagnosticReport of a C0006/C0007 when the visit has several. The document
    passes the structural CDA R2 validator or InvalidGeneratedDocument is raised.
    """
    if code not in RENDERERS:
        known = ", ".join(sorted(RENDERERS))
        raise UnknownDocumentType(f"unknown document type {code!r}; one of {known}", expression=["type"])
    if (encounter_id is None) == (patient_id is None):
        raise InvalidRequest("give either an Encounter or a Patient to generate a document from")
    if encounter_id is not None and code not in ENCOUNTER_LEVEL:
        raise WrongDocumentSubject(f"{code} is made from a Patient, not from an Encounter")
    if patient_id is not None and code not in PATIENT_LEVEL:
        raise WrongDocumentSubject(
            f"{code} is made from an Encounter; only {', '.join(sorted(PATIENT_LEVEL))} from a Patient"
        )
    when = now or datetime.now(UTC)
    doc_id = document_id or uuid.uuid4().hex
    if encounter_id is not None:
        ctx = _encounter_context(reader, code, encounter_id, doc_id, when, report_id)
    else:
        ctx = _patient_context(reader, code, str(patient_id), doc_id, when)
    document = render(code, ctx)
    problems = validate(parse_xml(document))
    if problems:
        raise InvalidGeneratedDocument(
            f"the generated {code} breaks the CDA R2 model: {'; '.join(problems[:5])}"
        )
    return document


# -- collecting the resources ---------------------------------------------------------------------------
def _read_ref(reader: FhirReader, reference: Resource | None, *types: str) -> Resource | None:
    """The resource a reference points to (``Type/id`` of one of ``types``); None when absent or gone."""
    target = str((reference or {}).get("reference") or "")
    kind, _, rid = target.rpartition("/")
    kind = kind.rpartition("/")[2]
    if not rid or kind not in types:
        return None
    try:
        return reader.read(kind, rid)
    except (ResourceNotFound, ResourceGone):
        return None


def _custodian(reader: FhirReader, *references: Resource | None) -> Resource:
    """The first Organization the references resolve to, else one named by the first display."""
    for ref in references:
        org = _read_ref(reader, ref, "Organization")
        if org is not None:
            return org
    shown = next((r.get("display") for r in references if r and r.get("display")), "")
    return {"resourceType": "Organization", "name": shown}


def _practitioner(reader: FhirReader, reference: Resource | None) -> Resource | None:
    """A Practitioner, following a PractitionerRole to its practitioner."""
    found = _read_ref(reader, reference, "Practitioner", "PractitionerRole")
    if found is not None and found.get("resourceType") == "PractitionerRole":
        found = _read_ref(reader, found.get("practitioner"), "Practitioner")
    return found


def _author(reader: FhirReader, references: Sequence[Resource | None], organization: Resource) -> Resource:
    """The physician: the first reference that resolves, else someone with a role at the institution."""
    for ref in references:
        found = _practitioner(reader, ref)
        if found is not None:
            return found
    org_id = organization.get("id")
    if org_id:
        for role in reader.search(
            "PractitionerRole", [("organization", f"Organization/{org_id}"), ("_sort", "_id")]
        ):
            found = _practitioner(reader, role.get("practitioner"))
            if found is not None:
                return found
    shown = next((r.get("display") for r in references if r and r.get("display")), "")
    return {"resourceType": "Practitioner", "name": [{"text": shown}] if shown else []}


def _live(resources: list[Resource]) -> list[Resource]:
    """Without what was entered in error."""
    return [r for r in resources if r.get("status") != "entered-in-error"]


def _during(imm: Resource, encounter: Resource) -> bool:
    """Whether an Immunization belongs to the visit: by reference, else by time within its period."""
    if imm.get("encounter"):
        return ref_id(imm["encounter"]) == encounter.get("id")
    period = encounter.get("period", {})
    when, start, end = day(imm.get("occurrenceDateTime")), day(period.get("start")), day(period.get("end"))
    if when is None or start is None:
        return False
    return start.date() <= when.date() <= (end or start).date()


def _choose_report(reports: list[Resource], code: str, report_id: str | None) -> Resource:
    """The DiagnosticReport a C0006 (a non-laboratory report) or C0007 (a laboratory one) is about."""
    if report_id is not None:
        chosen = next((r for r in reports if r.get("id") == report_id), None)
        if chosen is None:
            raise DocumentContentMissing(f"DiagnosticReport/{report_id} is not a report of this visit")
        return chosen
    fitting = [r for r in reports if _is_lab(r) == (code == "C0007")]
    if not fitting:
        kind = "laboratory" if code == "C0007" else "examination (non-laboratory)"
        raise DocumentContentMissing(f"{code} needs an {kind} DiagnosticReport of the visit; it has none")
    return fitting[0]


def _report_results(reader: FhirReader, report: Resource, observations: list[Resource]) -> list[Resource]:
    """The visit's Observations plus any result of the report recorded outside the visit."""
    have = {o.get("id") for o in observations}
    extra = [_read_ref(reader, r, "Observation") for r in report.get("result", ()) if ref_id(r) not in have]
    return observations + [o for o in extra if o is not None]


def _orders(reader: FhirReader, report: Resource, requests: list[Resource]) -> list[Resource]:
    """The orders (ServiceRequest) the report answers: its basedOn, read where the visit lacks them."""
    by_id = {str(r.get("id")): r for r in requests}
    found = [
        by_id.get(ref_id(r)) or _read_ref(reader, r, "ServiceRequest") for r in report.get("basedOn", ())
    ]
    return [r for r in found if r is not None]


def _is_lab(report: Resource) -> bool:
    return any(
        c.get("code") in ("LAB", "laboratory")
        for cat in report.get("category", ())
        for c in cat.get("coding", ())
    )


def _referral(reader: FhirReader, requests: list[Resource]) -> tuple[Resource | None, str | None]:
    """The receiving Organization and the reason of the visit's referral order (category Patient referral)."""
    for request in requests:
        category = request.get("category", ())
        is_referral = any(
            c.get("code") == _REFERRAL for cat in category for c in cat.get("coding", ())
        ) or any(cat.get("text") == "转诊" for cat in category)
        if not is_referral:
            continue
        target = next(iter(request.get("performer", ())), None)
        destination = _read_ref(reader, target, "Organization") or (
            {"resourceType": "Organization", "name": target["display"]}
            if target and target.get("display")
            else None
        )
        reasons = [text(r) for r in request.get("reasonCode", ()) if text(r)]
        return destination, "；".join(reasons) or text(request.get("code")) or None
    return None, None


def _encounter_context(
    reader: FhirReader, code: str, encounter_id: str, doc_id: str, now: datetime, report_id: str | None
) -> DocumentContext:
    encounter = reader.read("Encounter", encounter_id)
    patient = _read_ref(reader, encounter.get("subject"), "Patient")
    if patient is None:
        raise DocumentContentMissing(
            f"Encounter/{encounter_id} has no subject Patient to write the document about"
        )
    visit = [("encounter", f"Encounter/{encounter_id}")]
    by_patient = [("patient", f"Patient/{patient['id']}")]
    custodian = _custodian(reader, encounter.get("serviceProvider"), patient.get("managingOrganization"))
    participants = [(p.get("individual") or {}) for p in encounter.get("participant", ())]
    author = _author(reader, participants, custodian)
    conditions = _live(reader.search("Condition", by_patient if code == "C0001" else visit))
    observations = _live(reader.search("Observation", visit))
    reports = _live(reader.search("DiagnosticReport", visit))
    requests = _live(reader.search("ServiceRequest", visit))
    report = _choose_report(reports, code, report_id) if code in ("C0006", "C0007") else None
    if report is not None:
        observations = _report_results(reader, report, observations)
        if code == "C0006":
            requests = _orders(reader, report, requests)
    destination, reason = _referral(reader, requests) if code == "HSDC00.05" else (None, None)
    immunizations = [i for i in _live(reader.search("Immunization", by_patient)) if _during(i, encounter)]
    person_level = code == "C0001"
    return DocumentContext(
        document_id=doc_id,
        effective_time=now,
        patient=patient,
        custodian=custodian,
        author=author,
        encounter=encounter,
        conditions=conditions,
        observations=observations,
        medication_requests=_live(reader.search("MedicationRequest", visit)),
        immunizations=_live(reader.search("Immunization", by_patient)) if person_level else immunizations,
        diagnostic_report=report,
        destination=destination,
        referral_reason=reason,
        allergies=_live(reader.search("AllergyIntolerance", by_patient)) if person_level else (),
        procedures=_live(reader.search("Procedure", visit)),
        service_requests=requests,
        family_history=_live(reader.search("FamilyMemberHistory", by_patient)) if person_level else (),
    )


def _patient_context(
    reader: FhirReader, code: str, patient_id: str, doc_id: str, now: datetime
) -> DocumentContext:
    patient = reader.read("Patient", patient_id)
    by_patient = [("patient", f"Patient/{patient_id}")]
    custodian = _custodian(reader, patient.get("managingOrganization"))
    author = _author(reader, list(patient.get("generalPractitioner", ())), custodian)
    blood = _live(reader.search("Observation", [*by_patient, ("code", _BLOOD_TYPE_CODES)]))
    conditions = [c for c in _live(reader.search("Condition", by_patient)) if _confirmed(c)]
    return DocumentContext(
        document_id=doc_id,
        effective_time=now,
        patient=patient,
        custodian=custodian,
        author=author,
        conditions=conditions,
        observations=blood,
        immunizations=_live(reader.search("Immunization", by_patient)),
        allergies=_live(reader.search("AllergyIntolerance", by_patient)),
        procedures=_live(reader.search("Procedure", by_patient)),
        family_history=_live(reader.search("FamilyMemberHistory", by_patient)),
    )


def _confirmed(condition: Resource) -> bool:
    status = (coding(condition.get("verificationStatus")) or {}).get("code")
    return status not in ("entered-in-error", "refuted")


__all__ = ["ENCOUNTER_LEVEL", "PATIENT_LEVEL", "FhirReader", "RepositoryReader", "generate"]
