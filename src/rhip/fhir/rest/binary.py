"""Binary as its native content: ``GET Binary/[id]`` with an Accept that is not FHIR answers the raw bytes.

FHIR R4 §Binary: a read whose Accept header names no FHIR format returns the content with the Binary's own
content type (a CDA document as ``text/xml``, a PDF …), so that a document repository hands out exactly
the bytes it was given. The bytes are served sandboxed: stored content may be HTML or SVG from anywhere.
"""

from __future__ import annotations

import base64
import binascii

from rhip.core.errors import InvalidRequest
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.http import JSON_TYPES, http_date
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

_FHIR_OR_ANY = (*JSON_TYPES, "application/fhir+xml", "*/*", "application/*", "")


def wants_native_binary(req: FhirRequest) -> bool:
    """Whether a request is a read of one Binary asking for its native content."""
    segments = req.segments()
    if req.method.upper() != "GET" or len(segments) != 2 or segments[0] != "Binary":
        return False
    if any(k == "_format" for k, _ in req.query):
        return False
    accept = (req.header("accept") or "").lower()
    if not accept:
        return False
    kinds = [a.split(";", 1)[0].strip() for a in accept.split(",")]
    return not any(k in _FHIR_OR_ANY or k.endswith("+json") for k in kinds)


def native_binary(repo: FhirRepository, req: FhirRequest) -> FhirResponse:
    """The decoded content of ``Binary/[id]`` with its content type, ETag and sandboxing headers."""
    stored = repo.read("Binary", req.segments()[1])
    resource = stored.resource()
    try:
        content = base64.b64decode(resource.get("data", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"Binary/{stored.id} holds data that is not base64") from exc
    content_type = str(resource.get("contentType") or "application/octet-stream")
    headers = {
        "ETag": stored.etag,
        "Last-Modified": http_date(stored),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return FhirResponse(200, content, headers, content_type=content_type, stored=stored)
