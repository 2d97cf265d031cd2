"""The input of the CDA writers: the FHIR resources a document is made from, and its own metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rhip.cda.fhirread import Resource


@dataclass(frozen=True, slots=True)
class DocumentContext:
    """One shared document to render: the FHIR resources it is made from and its own metadata.

    ``effective_time`` is when the document was made (a FHIR dateTime string or a datetime). The
    lists hold whatever the document type uses; a type ignores what it has no section for.
    """

    document_id: str
    effective_time: str | datetime
    patient: Resource
    custodian: Resource  # the Organization that keeps the document
    author: Resource  # the Practitioner who wrote and signed it
    encounter: Resource | None = None
    conditions: Sequence[Resource] = ()
    observations: Sequence[Resource] = ()
    medication_requests: Sequence[Resource] = ()
    immunizations: Sequence[Resource] = ()
    diagnostic_report: Resource | None = None
    destination: Resource | None = None  # referrals: the Organization the patient is sent to
    referral_reason: str | None = None
    set_id: str | None = None  # defaults to document_id: every document starts its own set
    version: int = 1
    allergies: Sequence[Resource] = ()  # AllergyIntolerance
    procedures: Sequence[Resource] = ()  # Procedure
    service_requests: Sequence[Resource] = ()  # the orders a report answers (电子申请单)
    family_history: Sequence[Resource] = ()  # FamilyMemberHistory
