"""One FHIR transaction for several documents: shared entries once, replacements resolved, receipts read back.

Documents of one batch often share an institution, a patient or a visit; their conditional entries are
written once (two ``ifNoneExist`` entries with the same criteria in one transaction would both find nothing
and create two). A document that replaces another of the same batch makes that one ``superseded`` as it
is created; one that replaces a registered document adds a PUT of it (``If-Match`` its version) to the
same transaction, so the new version and the old one's status commit together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents import registry as reg
from rhip.documents.cda.encounter import encounter_criteria, encounter_full_url, visit_identifier
from rhip.documents.cda.identity import full_url
from rhip.documents.cda.values import SHANGHAI
from rhip.documents.facts import DocumentFacts, Institution
from rhip.documents.known import Known, PatientKey, patient_keys
from rhip.documents.model import DocumentRejected
from rhip.documents.queries import Registered


@dataclass
class Pending:
    """One document on its way into a transaction."""

    raw: bytes
    sender: str
    facts: DocumentFacts
    source: str
    sha1: str
    binary_id: str
    doc: Any = None  # the read CdaDocument, for the extraction
    extracted: list[dict[str, Any]] = field(default_factory=list)  # filled once the references are known
    status: str = "current"
    replaces_registered: Registered | None = None
    replaces_pending: Pending | None = None
    url: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    # Positions of its entries in the transaction: filled by the assembly.
    at_document: int = -1
    patient_ref: str = ""  # Patient/id when known, else the fullUrl of its entry
    visit_token: str = ""  # system|value of its visit identifier ('' without a visit)
    facility_type: dict[str, Any] | None = None  # the registered kind of its institution
    at_patient: int = -1
    at_supersede: int = -1
    at_created: list[int] = field(default_factory=list)  # Binary and extracted resources

    @property
    def master_token(self) -> str:
        """``system|value`` of its masterIdentifier."""
        return reg.token(reg.document_identifier(self.facts.document_id))


@dataclass
class Assembly:
    """The entries of one transaction and where each document's entries are."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    shared: dict[str, tuple[str, int]] = field(default_factory=dict)  # criteria -> (fullUrl, position)
    patients: dict[PatientKey, str] = field(default_factory=dict)  # any key of a new Patient -> its fullUrl
    visit_patients: dict[str, str] = field(default_factory=dict)  # visit token -> patient of its documents

    def add(self, entry: dict[str, Any]) -> int:
        """Append an entry; its position."""
        self.entries.append(entry)
        return len(self.entries) - 1

    def url_for(self, entry: dict[str, Any]) -> str:
        """The fullUrl a conditional entry will have: that of an earlier one with the same criteria, or its own."""
        found = self.shared.get(_criteria_key(entry))
        return found[0] if found is not None else str(entry["fullUrl"])

    def share(self, entry: dict[str, Any]) -> tuple[str, int]:
        """A conditional entry once per criteria: (its fullUrl, its position)."""
        key = _criteria_key(entry)
        found = self.shared.get(key)
        if found is None:
            found = (entry["fullUrl"], self.add(entry))
            self.shared[key] = found
        return found

    def position_of(self, url: str) -> int:
        """Where the entry with fullUrl ``url`` is (-1 when none has it)."""
        return next((at for u, at in self.shared.values() if u == url), -1)

    def bundle(self) -> dict[str, Any]:
        """The transaction Bundle."""
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def people(assembly: Assembly, p: Pending, known: Known) -> tuple[reg.Refs, list[dict[str, Any]]]:
    """The references to a document's institution, custodian, patient, author and visit: the stored records
    ``known`` holds, else entries of the transaction. New entries are staged (:func:`commit` adds them once
    the document is known to be good)."""
    f = p.facts
    staged: list[dict[str, Any]] = []

    def stage(entry: dict[str, Any]) -> str:
        staged.append(entry)
        return assembly.url_for(entry)

    def institution(org: Institution) -> str:
        return known.organizations.get(org.code) or stage(reg.organization_entry(org, _new_url(), p.source))

    org_url = institution(f.author_org)
    p.facility_type = known.facility_types.get(f.author_org.code)
    custodian_url = (
        institution(f.custodian) if f.custodian.code and f.custodian.code != f.author_org.code else org_url
    )
    visit_id = visit_identifier(p.doc)
    visit_token = reg.token(visit_id) if visit_id else ""
    keys = patient_keys(f)
    patient_url = next((known.patients[k] for k in keys if k in known.patients), "")
    patient_url = patient_url or next((assembly.patients[k] for k in keys if k in assembly.patients), "")
    if not patient_url and not keys:
        # Only a visit number (住院号) in patientRole: the patient of that visit, when it is known.
        patient_url = known.visit_patients.get(visit_token) or assembly.visit_patients.get(visit_token, "")
        if not patient_url:
            raise DocumentRejected(
                "the patient has no person-level identifier (ID card, health card, health record or case "
                "number), and the visit it names is not registered",
                expression=["/ClinicalDocument/recordTarget/patientRole/id"],
            )
    if not patient_url:
        criteria, identifiers = reg.patient_criteria(f) or ("", [])
        patient_url = stage(reg.patient_entry(f, criteria, identifiers, org_url, _new_url(), p.source))
    p.patient_ref = patient_url
    p.visit_token = visit_token
    practitioner_url = None
    if f.author and f.author.staff_no:
        practitioner_url = known.practitioners.get((f.author_org.code, f.author.staff_no))
        staff = (
            [] if practitioner_url else reg.practitioner_entries(f, org_url, _new_url(), _new_url(), p.source)
        )
        if staff:
            practitioner_url = stage(staff[0])
            staff[1]["resource"]["practitioner"]["reference"] = practitioner_url
            stage(staff[1])
    encounter_url: str | None = None
    if visit_id:
        encounter_url = known.encounters.get(visit_token)
        if encounter_url is None:
            new_url = encounter_full_url(p.doc) or _new_url()
            encounter_url = assembly.shared.get(f"Encounter?{encounter_criteria(p.doc)}", (new_url, 0))[0]
    return reg.Refs(patient_url, org_url, custodian_url, encounter_url, practitioner_url), staged


def visit(p: Pending, refs: reg.Refs, encounter: dict[str, Any] | None) -> dict[str, Any] | None:
    """The conditional create of the document's visit when it is new (the reader builds the Encounter)."""
    criteria = encounter_criteria(p.doc)
    if encounter is None or not criteria or refs.encounter is None or not refs.encounter.startswith("urn:"):
        return None
    return reg.conditional(refs.encounter, encounter, criteria)


def commit(assembly: Assembly, p: Pending, staged: list[dict[str, Any]]) -> None:
    """Add the staged entries of a document (each criteria once per transaction)."""
    for entry in staged:
        url, _ = assembly.share(entry)
        if entry["resource"]["resourceType"] == "Patient":
            p.patient_ref = url
            for key in patient_keys(p.facts):
                assembly.patients.setdefault(key, url)
    if p.patient_ref.startswith("urn:"):
        p.at_patient = assembly.position_of(p.patient_ref)
    if p.visit_token:
        assembly.visit_patients.setdefault(p.visit_token, p.patient_ref)


def document(assembly: Assembly, p: Pending, refs: reg.Refs, zone: ZoneInfo = SHANGHAI) -> None:
    """Add a document's Binary, DocumentReference, extracted resources and the supersede of what it replaces."""
    resource = reg.document_reference(
        p.facts,
        p.raw,
        p.binary_id,
        refs,
        p.source,
        status=p.status,
        facility_type=p.facility_type,
        zone=zone,
    )
    if p.replaces_pending is not None:
        resource["relatesTo"] = [reg.replaces(p.replaces_pending.url)]
    elif p.replaces_registered is not None:
        old = p.replaces_registered
        resource["relatesTo"] = [reg.replaces(f"DocumentReference/{old.id}")]
        superseded = {k: v for k, v in old.resource.items() if k != "meta"}
        superseded["status"] = "superseded"
        if isinstance(old.resource.get("meta"), dict) and "source" in old.resource["meta"]:
            superseded["meta"] = {"source": old.resource["meta"]["source"]}
        p.at_supersede = assembly.add(
            {
                "resource": superseded,
                "request": {
                    "method": "PUT",
                    "url": f"DocumentReference/{old.id}",
                    "ifMatch": f'W/"{old.version}"',
                },
            }
        )
    p.at_document = assembly.add(
        {
            "fullUrl": p.url,
            "resource": resource,
            "request": {
                "method": "POST",
                "url": "DocumentReference",
                "ifNoneExist": reg.criteria(("identifier", p.master_token)),
            },
        }
    )
    p.at_created = [assembly.add(reg.binary_entry(p.raw, p.binary_id, p.url, p.source))]
    for r in p.extracted:
        p.at_created.append(assembly.add(_extracted_entry(r)))


def _extracted_entry(resource: dict[str, Any]) -> dict[str, Any]:
    # No ifNoneExist: the registry created nothing of a document it has not registered (checked first, and
    # undone when a concurrent submission won), and a search per extracted resource would halve the speed.
    return {
        "fullUrl": full_url(resource),
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _criteria_key(entry: dict[str, Any]) -> str:
    return f"{entry['request']['url']}?{entry['request']['ifNoneExist']}"


def _new_url() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def located(response_entry: dict[str, Any]) -> tuple[str, bool]:
    """``Type/id`` a transaction-response entry names, and whether it was created (201)."""
    response = response_entry.get("response", {})
    location = str(response.get("location", ""))
    parts = location.split("/")
    ref = f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else ""
    return ref, str(response.get("status", "")).startswith("201")
