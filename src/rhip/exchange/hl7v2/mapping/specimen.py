"""SPM → Specimen (v2-to-FHIR SPM[Specimen]), created once per specimen number of the institution.

The specimen number is SPM-2 (the filler's, else the placer's, of the EIP); a specimen sent without one
is known by its order and position (``<order number>-SPM<n>``), so that a repeated message finds it again.
Identifier system ``urn:rhip:specimen:<institution>`` (标本号, unique within the institution).
"""

from __future__ import annotations

from rhip.exchange.hl7v2.datatypes import V2_TABLE, cwe_concept, part, ts_datetime, uri_name
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    identifier_criteria,
    location,
    reading,
    reference,
)
from rhip.exchange.hl7v2.mapping.groups import Subject
from rhip.exchange.hl7v2.message import Segment

SPECIMEN_PREFIX = "urn:rhip:specimen:"
_AVAILABILITY = {"Y": "available", "N": "unavailable"}


def specimen_identifier(spm: Segment, institution: str, fallback: str) -> Json:
    """SPM-2 (filler-assigned, else placer-assigned id) in the institution's specimen namespace."""
    raw = spm.repetitions(2)[0] if spm.repetitions(2) else ""
    d = spm.delimiters
    value = part(raw, d, 2, 1) or part(raw, d, 1, 1) or fallback
    return {"system": SPECIMEN_PREFIX + uri_name(institution), "value": value}


def map_specimen(builder: BundleBuilder, spm: Segment, subject: Subject, fallback: str) -> str:
    """One SPM → Specimen by conditional create; its fullUrl."""
    d, institution, zone = spm.delimiters, builder.ctx.institution, builder.ctx.zone
    ident = specimen_identifier(spm, institution, fallback)
    specimen: Json = {"resourceType": "Specimen", "identifier": [ident]}
    status = _AVAILABILITY.get(spm.get(20).strip().upper())
    if status:
        specimen["status"] = status
    with reading(spm, 4):
        kind = cwe_concept(spm.raw(4).split(d.repetition)[0], d, institution, V2_TABLE + "0487")
    if kind:
        specimen["type"] = kind
    specimen["subject"] = reference(subject.patient.full_url)
    with reading(spm, 18):
        received = ts_datetime(spm.get(18), zone)
    if received:
        specimen["receivedTime"] = received
    collection: Json = {}
    with reading(spm, 17):
        start, end = ts_datetime(spm.get(17, 1), zone), ts_datetime(spm.get(17, 2), zone)
    if start and end:
        collection["collectedPeriod"] = {"start": start, "end": end}
    elif start:
        collection["collectedDateTime"] = start
    with reading(spm, 7):
        method = cwe_concept(spm.raw(7).split(d.repetition)[0], d, institution, V2_TABLE + "0488")
    if method:
        collection["method"] = method
    with reading(spm, 8):
        site = cwe_concept(spm.raw(8).split(d.repetition)[0], d, institution, V2_TABLE + "0070")
    if site:
        collection["bodySite"] = site
    if collection:
        specimen["collection"] = collection
    conditions = [
        c for c in (cwe_concept(raw, d, institution, V2_TABLE + "0493") for raw in spm.repetitions(24)) if c
    ]
    if conditions:
        specimen["condition"] = conditions
    description = spm.field_text(14).strip()
    if description:
        specimen["note"] = [{"text": description}]
    return builder.create(specimen, identifier_criteria(ident), location(builder.message, spm))
