"""CDA R2 shared documents (共享文档) of WS/T 500 (电子病历) and WS/T 483 (健康档案) from FHIR resources.

Each document type has one render function taking a :class:`DocumentContext` and returning the UTF-8
XML (with declaration) of a ``ClinicalDocument``; :data:`RENDERERS` maps the document code (the CDA
``code`` in 2.16.156.10011.2.4) to it. The header follows cn-standards.md §3.3; bodies follow the
public WS/T 500 samples. Built from string templates: no lxml at run time.
"""

from __future__ import annotations

from collections.abc import Callable

from rhip.cda.errors import UnknownDocumentType
from rhip.cda.write import ehr, emr, exam, summary
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.header import DocumentType

Renderer = Callable[[DocumentContext], bytes]

DOCUMENT_TYPES: dict[str, DocumentType] = {
    doc.code: doc
    for doc in (
        summary.MEDICAL_SUMMARY,
        emr.OUTPATIENT_RECORD,
        exam.EXAM_REPORT,
        emr.LAB_REPORT,
        emr.FRONT_PAGE,
        emr.DISCHARGE_SUMMARY,
        ehr.REFERRAL,
        ehr.HYPERTENSION_FOLLOWUP,
        ehr.DIABETES_FOLLOWUP,
        ehr.IMMUNIZATION_REPORT,
        ehr.INFECTIOUS_DISEASE_REPORT,
        summary.PERSONAL_HEALTH_RECORD,
    )
}

RENDERERS: dict[str, Renderer] = {
    "C0001": summary.medical_summary,
    "C0002": emr.outpatient_record,
    "C0006": exam.exam_report,
    "C0007": emr.lab_report,
    "C0032": emr.front_page,
    "C0053": emr.discharge_summary,
    "HSDC00.05": ehr.referral,
    "HSDB04.01": ehr.hypertension_followup,
    "HSDB04.02": ehr.diabetes_followup,
    "HSDB03.01": ehr.immunization_report,
    "HSDB03.02": ehr.infectious_disease_report,
    "HSDA00.01": summary.personal_health_record,
}


def render(code: str, ctx: DocumentContext) -> bytes:
    """Render the shared document with document code ``code`` (C0002, HSDB04.01 …)."""
    try:
        renderer = RENDERERS[code]
    except KeyError:
        raise UnknownDocumentType(f"no CDA writer for document code {code!r}") from None
    return renderer(ctx)


__all__ = ["DOCUMENT_TYPES", "RENDERERS", "DocumentContext", "DocumentType", "Renderer", "render"]
