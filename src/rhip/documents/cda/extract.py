"""Structured entries → FHIR resources: one extractor per document type, and the transaction entries.

:data:`EXTRACTORS` maps a document code to the function of its family module. A document type without
one of its own is read by the shared readers alone (diagnoses, signs, results, drugs, vaccinations,
procedures, allergies), which recognise entries by their data elements wherever they stand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rhip.documents.cda import emr, followups, public_health, referral, registration, reports
from rhip.documents.cda.body import read_body
from rhip.documents.cda.context import ExtractContext, Extraction, Resource
from rhip.documents.cda.encounter import encounter_criteria, encounter_full_url, visit_encounter
from rhip.documents.cda.identity import full_url, if_none_exist
from rhip.documents.cda.model import CdaDocument

Extractor = Callable[[Extraction], None]

EXTRACTORS: dict[str, Extractor] = {
    "C0001": emr.summary,
    "C0002": emr.outpatient_record,
    "C0006": reports.exam_report,
    "C0007": reports.lab_report,
    "C0032": emr.front_page,
    "C0053": emr.discharge_summary,
    "HSDA00.01": registration.registration,
    "HSDB03.01": public_health.immunization_report,
    "HSDB03.02": public_health.infectious_disease_report,
    "HSDB04.01": followups.followup,
    "HSDB04.02": followups.followup,
    "HSDC00.05": referral.referral,
}


def _shared_readers(x: Extraction) -> None:
    read_body(x)


def extract(doc: CdaDocument, ctx: ExtractContext) -> list[Resource]:
    """The FHIR resources of the document's structured entries (no Patient, no Encounter, no ids).

    Each carries the entry identifier (``urn:rhip:cda-entry:<document key>|<entry path>``), the
    patient and encounter of ``ctx`` and ``meta.source``; resources that refer to each other do so
    by :func:`rhip.documents.cda.identity.full_url`, which the transaction must use as their fullUrls.
    """
    x = Extraction(doc, ctx)
    EXTRACTORS.get(doc.header.code, _shared_readers)(x)
    return x.resources


def transaction_entries(doc: CdaDocument, ctx: ExtractContext) -> list[dict[str, Any]]:
    """Bundle entries for the visit and the extracted resources, ready for a transaction.

    The Encounter (when the document names a visit) is a conditional update on its visit identifier
    with fullUrl :func:`encounter_full_url`; pass that fullUrl as ``ctx.encounter_ref``. Every extracted
    resource is a conditional create (``ifNoneExist`` on its entry identifier), so that submitting the
    same document twice creates nothing the second time.
    """
    resources = extract(doc, ctx)
    entries: list[dict[str, Any]] = []
    encounter = visit_encounter(doc, ctx, resources)
    criteria = encounter_criteria(doc)
    if encounter is not None and criteria:
        entries.append(
            {
                "fullUrl": encounter_full_url(doc),
                "resource": encounter,
                "request": {"method": "PUT", "url": f"Encounter?{criteria}"},
            }
        )
    for resource in resources:
        entries.append(
            {
                "fullUrl": full_url(resource),
                "resource": resource,
                "request": {
                    "method": "POST",
                    "url": resource["resourceType"],
                    "ifNoneExist": if_none_exist(resource),
                },
            }
        )
    return entries
