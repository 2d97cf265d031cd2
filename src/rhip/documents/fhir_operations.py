"""FHIR operations of the document capability that answer something other than JSON.

- ``GET Encounter/[id]/$cda?type=C0002`` (every type but HSDA00.01; ``report=`` picks the DiagnosticReport of a
  C0006/C0007) and ``GET Patient/[id]/$cda?type=HSDA00.01`` (also C0001, HSDB03.01): a CDA R2 shared document
  generated from the store, ``application/xml``.
- ``GET DocumentReference/[id]/$html`` and ``GET Binary/[id]/$html`` (``lang=zh|en``): a stored CDA document as
  an HTML page, ``text/html``, with a Content-Security-Policy that forbids scripts and network access.

Errors are the usual OperationOutcome (JSON). :func:`register` adds the operations to the FHIR API; it needs the
service's search parser (the generator searches the store).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Any

from rhip.cda.write import RENDERERS
from rhip.core.errors import InvalidRequest, RhipError
from rhip.documents.generate import ENCOUNTER_LEVEL, PATIENT_LEVEL, RepositoryReader, generate
from rhip.documents.render import CSP, render_html
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.extensions import Extensions, OperationHandler, OperationSpec
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.search.parse import SearchParser

CANONICAL = "https://rhip.dev/fhir/OperationDefinition"
XML = "application/xml"
HTML = "text/html; charset=utf-8"
XML_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-cda+xml", "application/cda+xml"})
_SERVICE_PARAMS = frozenset({"_format", "_pretty"})


class NoCdaContent(RhipError):
    """The DocumentReference or Binary holds no CDA document the server can read."""

    code = "RHIP-CDA-0061"
    http_status = 422
    issue_type = "processing"


def _param(name: str, card: str, type_: str, doc: str, use: str = "in") -> dict[str, Any]:
    low, high = card.split("..")
    return {"name": name, "use": use, "min": int(low), "max": high, "type": type_, "documentation": doc}


CDA_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "documents-cda",
    "url": f"{CANONICAL}/documents-cda",
    "name": "GenerateCda",
    "title": "Generate a CDA shared document (WS/T 500, WS/T 483) from FHIR data",
    "status": "active",
    "kind": "operation",
    "publisher": "rhip",
    "description": (
        "Answers the CDA R2 document of the given type (application/xml), generated from the Encounter's "
        f"resources; on a Patient, the person-level types {', '.join(sorted(PATIENT_LEVEL))}. The document "
        "passes the server's structural CDA R2 check (a hand-written subset of the HL7 schema)."
    ),
    "affectsState": False,
    "code": "cda",
    "resource": ["Encounter", "Patient"],
    "system": False,
    "type": False,
    "instance": True,
    "parameter": [
        _param("type", "1..1", "code", f"The document code: {', '.join(sorted(RENDERERS))}"),
        _param(
            "report", "0..1", "string", "C0006/C0007: the id of the DiagnosticReport (default: the first)"
        ),
        _param("return", "1..1", "Binary", "The ClinicalDocument (application/xml)", use="out"),
    ],
}
HTML_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "documents-html",
    "url": f"{CANONICAL}/documents-html",
    "name": "RenderCdaHtml",
    "title": "Show a stored CDA document as HTML",
    "status": "active",
    "kind": "operation",
    "publisher": "rhip",
    "description": (
        "Answers a stored CDA document (the DocumentReference's attachment, or the Binary) as a self-contained "
        "HTML page (text/html): header, sections and narrative, with everything from the document escaped."
    ),
    "affectsState": False,
    "code": "html",
    "resource": ["DocumentReference", "Binary"],
    "system": False,
    "type": False,
    "instance": True,
    "parameter": [
        _param("lang", "0..1", "code", "Labels in zh (default) or en"),
        _param("return", "1..1", "Binary", "The HTML page (text/html)", use="out"),
    ],
}


def _query(req: FhirRequest, code: str, accepted: Collection[str]) -> dict[str, str]:
    """The operation's URL parameters, each at most once; any other name is refused (400)."""
    values: dict[str, str] = {}
    for name, value in req.query:
        if name in _SERVICE_PARAMS:
            continue
        if name not in accepted:
            raise InvalidRequest(
                f"${code} takes {', '.join(sorted(accepted))}; not '{name}'", expression=[name]
            )
        if name in values:
            raise InvalidRequest(f"${code} takes '{name}' once", expression=[name])
        values[name] = value.strip()
    return values


def _cda_handler(parser: SearchParser, resource_type: str) -> OperationHandler:
    def handle(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        params = _query(req, "cda", {"type", "report"} if resource_type == "Encounter" else {"type"})
        code = params.get("type")
        if not code:
            levels = ENCOUNTER_LEVEL if resource_type == "Encounter" else PATIENT_LEVEL
            raise InvalidRequest(f"$cda needs type, one of {', '.join(sorted(levels))}", expression=["type"])
        reader = RepositoryReader(repo, parser)
        on_encounter = resource_type == "Encounter"
        document = generate(
            reader,
            code,
            encounter_id=rid if on_encounter else None,
            patient_id=None if on_encounter else rid,
            report_id=params.get("report") or None,
        )
        headers = {"content-type": XML, "content-disposition": f'inline; filename="{code}-{rid}.xml"'}
        return FhirResponse(200, document, headers=headers, content_type=XML)

    return handle


def cda_bytes(repo: FhirRepository, resource_type: str, rid: str) -> bytes:
    """The CDA document a DocumentReference (its attachment, inline or in a Binary) or a Binary holds."""
    if resource_type == "Binary":
        return _binary_data(repo.read("Binary", rid).resource())
    reference = repo.read("DocumentReference", rid).resource()
    for content in reference.get("content", ()):
        attachment = content.get("attachment") or {}
        kind = str(attachment.get("contentType") or "").split(";")[0].strip().lower()
        if kind and kind not in XML_TYPES:
            continue
        if attachment.get("data"):
            return _decode(attachment["data"])
        url = str(attachment.get("url") or "")
        _, marker, binary_id = url.rpartition("Binary/")
        if marker and binary_id and "/" not in binary_id:
            return _binary_data(repo.read("Binary", binary_id).resource())
    raise NoCdaContent(f"DocumentReference/{rid} has no XML attachment this server holds")


def _binary_data(binary: dict[str, Any]) -> bytes:
    kind = str(binary.get("contentType") or "").split(";")[0].strip().lower()
    if kind not in XML_TYPES:
        raise NoCdaContent(f"Binary/{binary.get('id')} holds {kind or 'no content type'}, not a CDA document")
    if not binary.get("data"):
        raise NoCdaContent(f"Binary/{binary.get('id')} has no data")
    return _decode(binary["data"])


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoCdaContent("the attachment data is not valid base64") from exc


def _html_handler(resource_type: str) -> OperationHandler:
    def handle(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        params = _query(req, "html", {"lang"})
        page = render_html(cda_bytes(repo, resource_type, str(rid)), lang=params.get("lang") or "zh")
        headers = {
            "content-type": HTML,
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "private, no-store",
        }
        return FhirResponse(200, page.encode("utf-8"), headers=headers, content_type=HTML)

    return handle


def register(extensions: Extensions, parser: SearchParser) -> None:
    """Add ``$cda`` (Encounter, Patient) and ``$html`` (DocumentReference, Binary) to the FHIR API."""
    for resource_type in ("Encounter", "Patient"):
        extensions.add_operation(
            OperationSpec(
                "cda",
                resource_type,
                False,
                True,
                ("GET",),
                _cda_handler(parser, resource_type),
                CDA_DEFINITION,
            )
        )
    for resource_type in ("DocumentReference", "Binary"):
        extensions.add_operation(
            OperationSpec(
                "html", resource_type, False, True, ("GET",), _html_handler(resource_type), HTML_DEFINITION
            )
        )
