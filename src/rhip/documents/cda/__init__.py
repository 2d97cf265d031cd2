"""Reading CDA R2 shared documents (WS/T 500, WS/T 483) and extracting their structured entries into FHIR.

``read_document(bytes)`` parses with the hardened parser and checks the header (CdaRejected, RHIP-CDA-00nn,
names the element); ``extract(doc, ctx)`` gives the FHIR resources of the structured entries;
``visit_encounter`` the Encounter of the document's visit; ``transaction_entries`` both as Bundle entries.
"""

from __future__ import annotations

from rhip.documents.cda.context import ExtractContext
from rhip.documents.cda.doctypes import DOCUMENT_TYPES, DocumentType
from rhip.documents.cda.encounter import (
    encounter_criteria,
    encounter_full_url,
    visit_encounter,
    visit_identifier,
)
from rhip.documents.cda.errors import CdaRejected, CdaTooLarge
from rhip.documents.cda.extract import EXTRACTORS, extract, transaction_entries
from rhip.documents.cda.header import read_document
from rhip.documents.cda.identity import document_key, entry_system, full_url, if_none_exist
from rhip.documents.cda.model import (
    AuthorInfo,
    CdaDocument,
    CdaHeader,
    Coded,
    EncounterInfo,
    InstanceId,
    OrganizationRef,
    PatientInfo,
    PersonRef,
)

__all__ = [
    "DOCUMENT_TYPES",
    "EXTRACTORS",
    "AuthorInfo",
    "CdaDocument",
    "CdaHeader",
    "CdaRejected",
    "CdaTooLarge",
    "Coded",
    "DocumentType",
    "EncounterInfo",
    "ExtractContext",
    "InstanceId",
    "OrganizationRef",
    "PatientInfo",
    "PersonRef",
    "document_key",
    "encounter_criteria",
    "encounter_full_url",
    "entry_system",
    "extract",
    "full_url",
    "if_none_exist",
    "read_document",
    "transaction_entries",
    "visit_encounter",
    "visit_identifier",
]
