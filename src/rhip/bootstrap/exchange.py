"""Wires the exchange doors (HL7 v2, HL7 v3) and the document registry onto the platform's FHIR service.

The doors store through the in-process FhirService, so what they write is validated, versioned, indexed
and seen by the master patient index like any FHIR write; refused input goes to the rejects store.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rhip.bootstrap.adapters import EmpiPatientMerger, EmpiPersonLinks, RegistryIntake
from rhip.bootstrap.settings import Settings
from rhip.db.engine import Database
from rhip.documents import fhir_api as documents_api
from rhip.documents import fhir_operations as cda_operations
from rhip.documents.service import DocumentService, RegistryConfig
from rhip.empi.service import EmpiService
from rhip.exchange.hl7v2.intake.decoding import CharsetRules
from rhip.exchange.hl7v2.pipeline import PipelineConfig, V2Pipeline
from rhip.exchange.hl7v3.service import V3Service
from rhip.exchange.rejects import RejectStore
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.service import FhirService
from rhip.fhir.search.parse import SearchParser


@dataclass
class ExchangeServices:
    """The doors and the registry of one platform."""

    rejects: RejectStore
    documents: DocumentService
    hl7v3: V3Service
    v2: V2Pipeline


def build_exchange(
    settings: Settings,
    db: Database,
    fhir: FhirService,
    extensions: Extensions,
    parser: SearchParser,
    empi: EmpiService | None,
) -> ExchangeServices:
    """The rejects store, the document registry (with MHD and $cda/$html), the HL7 v3 services and the HL7 v2
    intake pipeline (the MLLP listener of ``rhip serve`` feeds it)."""
    rejects = RejectStore(db)
    max_xml = settings.exchange.max_xml_mb * 1024 * 1024
    documents = DocumentService(
        fhir, RegistryConfig(max_document_bytes=max_xml, timezone=settings.timezone), rejects=rejects
    )
    documents_api.register(extensions, documents, rejects)
    cda_operations.register(extensions, parser)
    hl7v3 = V3Service(
        fhir,
        zone=ZoneInfo(settings.timezone),
        rejects=rejects,
        merger=EmpiPatientMerger(empi) if empi is not None else None,
        persons=EmpiPersonLinks(empi) if empi is not None else None,
        documents=RegistryIntake(documents),
        device_institutions=dict(settings.exchange.hl7v3_devices),
        max_bytes=max_xml,
    )
    mllp = settings.exchange.mllp
    v2 = V2Pipeline(
        fhir,
        rejects,
        PipelineConfig(
            zone=ZoneInfo(settings.timezone),
            charsets=CharsetRules(mllp.default_charset, dict(mllp.charsets)),
            max_bundle_entries=settings.fhir.max_bundle_entries,
        ),
        merger=EmpiPatientMerger(empi) if empi is not None else None,
    )
    return ExchangeServices(rejects, documents, hl7v3, v2)
