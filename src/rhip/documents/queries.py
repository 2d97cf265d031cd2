"""Reads of the registry through the FHIR service: the pre-check of a batch, document queries, retrieval."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson

from rhip.core.errors import ResourceNotFound
from rhip.core.ids import is_valid_fhir_id
from rhip.documents import registry as reg
from rhip.documents.model import (
    AmbiguousDocumentId,
    DocumentNotFound,
    DocumentQuery,
    DocumentReceipt,
    DocumentSummary,
)
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService

# Identifier values per pre-check search: an SQL IN list of this size stays cheap on both databases.
TOKENS_PER_SEARCH = 200
MAX_MATCHES = 1000


@dataclass
class Registered:
    """A DocumentReference already in the store, as the pre-check found it."""

    id: str
    version: int  # meta.versionId
    resource: dict[str, Any]

    @property
    def status(self) -> str:
        """current | superseded | entered-in-error."""
        return str(self.resource.get("status", ""))

    @property
    def document_version(self) -> int:
        """The CDA versionNumber it was registered with (1 when unknown)."""
        for ext in self.resource.get("extension", ()):
            if ext.get("url") == reg.VERSION_EXTENSION and isinstance(ext.get("valueInteger"), int):
                return int(ext["valueInteger"])
        return 1

    @property
    def sha1(self) -> str:
        """The hash of its content."""
        content = self.resource.get("content") or [{}]
        return str(content[0].get("attachment", {}).get("hash", ""))

    def receipt(self) -> DocumentReceipt:
        """What registering it produced, as far as the DocumentReference tells."""
        content = self.resource.get("content") or [{}]
        url = str(content[0].get("attachment", {}).get("url", ""))
        subject = str(self.resource.get("subject", {}).get("reference", ""))
        return DocumentReceipt(self.id, url.rsplit("/", 1)[-1], subject.rsplit("/", 1)[-1])


def get(fhir: FhirService, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A read or search through the FHIR service; its RhipError when it fails."""
    response = fhir.dispatch(fhir.repository, FhirRequest("GET", path, query or [], {}, b"", ""))
    return dict(orjson.loads(response.body or b"{}"))


def matches(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The matched resources of a searchset Bundle (not the included ones)."""
    return [
        e["resource"]
        for e in bundle.get("entry", ())
        if "resource" in e and e.get("search", {}).get("mode", "match") == "match"
    ]


def registered(fhir: FhirService, tokens: list[str]) -> list[Registered]:
    """DocumentReferences whose masterIdentifier or identifier is one of ``tokens`` (``system|value``)."""
    found: dict[str, Registered] = {}
    unique = list(dict.fromkeys(tokens))
    for start in range(0, len(unique), TOKENS_PER_SEARCH):
        chunk = unique[start : start + TOKENS_PER_SEARCH]
        bundle = get(
            fhir, "DocumentReference", [("identifier", ",".join(chunk)), ("_count", str(MAX_MATCHES))]
        )
        for r in matches(bundle):
            found[r["id"]] = as_registered(r)
    return list(found.values())


def as_registered(resource: dict[str, Any]) -> Registered:
    """A stored DocumentReference with its version."""
    return Registered(str(resource["id"]), int(resource.get("meta", {}).get("versionId", "1")), resource)


def master_token(resource: dict[str, Any]) -> str:
    """``system|value`` of a DocumentReference's masterIdentifier ('' without one)."""
    master = resource.get("masterIdentifier")
    if not isinstance(master, dict) or "system" not in master or "value" not in master:
        return ""
    return reg.token(master)


def set_token(resource: dict[str, Any]) -> str:
    """``system|value`` of the setId identifier of a DocumentReference ('' without one)."""
    for ident in resource.get("identifier", ()):
        if str(ident.get("system", "")).startswith(reg.SET_ID_PREFIX) and "value" in ident:
            return reg.token(ident)
    return ""


# -- DocumentIntake: query and retrieve -----------------------------------------------------------------


def search_params(query: DocumentQuery) -> list[tuple[str, str]]:
    """The FHIR search of a document query."""
    params: list[tuple[str, str]] = []
    if query.patient_identifiers:
        values = ",".join(reg.token({"system": s, "value": v}) for s, v in query.patient_identifiers)
        params.append(("patient.identifier", values))
    if query.type_codes:
        params.append(("type", ",".join(f"{reg.DOCUMENT_CODES}|{c}" for c in query.type_codes)))
    if query.date_from:
        params.append(("date", f"ge{query.date_from}"))
    if query.date_to:
        params.append(("date", f"le{query.date_to}"))
    if query.author_organization:
        params.append(
            ("author:Organization.identifier", f"{reg.ORGANIZATION_SYSTEM}|{query.author_organization}")
        )
    params.append(("status", "current,superseded" if query.include_superseded else "current"))
    params.append(("_sort", "-date"))
    params.append(("_count", str(max(1, min(query.limit, MAX_MATCHES)))))
    return params


def summary(resource: dict[str, Any]) -> DocumentSummary:
    """The summary of a stored DocumentReference."""
    master = resource.get("masterIdentifier", {})
    system, value = str(master.get("system", "")), str(master.get("value", ""))
    if system.startswith("urn:oid:"):
        document_id = f"{system[8:]}^{value}"
    else:
        document_id = value[8:] if value.startswith("urn:oid:") else value
    coding = (resource.get("type", {}).get("coding") or [{}])[0]
    author_code = next(
        (
            str(a["identifier"].get("value", ""))
            for a in resource.get("author", ())
            if isinstance(a.get("identifier"), dict)
            and a["identifier"].get("system") == reg.ORGANIZATION_SYSTEM
        ),
        "",
    )
    label = (resource.get("securityLabel") or [{}])[0].get("coding") or [{}]
    attachment = (resource.get("content") or [{}])[0].get("attachment", {})
    return DocumentSummary(
        document_reference_id=str(resource["id"]),
        document_id=document_id,
        type_code=str(coding.get("code", "")),
        type_display=str(coding.get("display", "")),
        patient_id=str(resource.get("subject", {}).get("reference", "")).rsplit("/", 1)[-1],
        author_organization=author_code,
        date=str(resource.get("date", "")),
        status=str(resource.get("status", "")),
        confidentiality=str(label[0].get("code", "")),
        content_type=str(attachment.get("contentType", "")),
        size=int(attachment.get("size", 0)),
        sha1_base64=str(attachment.get("hash", "")),
    )


def find_document(fhir: FhirService, document_id: str) -> dict[str, Any]:
    """A DocumentReference by its id, or by its document id (``root^extension``, the extension alone, or a
    masterIdentifier value)."""
    if is_valid_fhir_id(document_id):
        try:
            return get(fhir, f"DocumentReference/{document_id}")
        except ResourceNotFound:
            pass
    root, sep, ext = document_id.partition("^")
    if sep:
        wanted = reg.document_identifier((root, ext))
        criteria = reg.token(wanted)
    else:
        wanted = {"value": document_id}
        criteria = reg.escape(document_id)  # any system
    found = matches(get(fhir, "DocumentReference", [("identifier", criteria), ("_count", str(MAX_MATCHES))]))
    # ``identifier`` also matches the setId identifiers (urn:rhip:cda-set:…): only the document itself counts.
    found = [
        r
        for r in found
        if isinstance(r.get("masterIdentifier"), dict)
        and all(r["masterIdentifier"].get(k) == v for k, v in wanted.items())
    ]
    systems = {str(r["masterIdentifier"].get("system", "")) for r in found}
    if len(systems) > 1:
        raise AmbiguousDocumentId(
            f"the document id {document_id[:80]!r} is registered under {len(systems)} roots; "
            "give it as root^extension"
        )
    current = [r for r in found if r.get("status") == "current"] or found
    if not current:
        raise DocumentNotFound(f"no registered document has the id {document_id[:80]!r}")
    return current[0]


def content(fhir: FhirService, resource: dict[str, Any]) -> bytes:
    """The bytes of a DocumentReference's first attachment (its Binary, or inline data)."""
    attachment = (resource.get("content") or [{}])[0].get("attachment", {})
    data = attachment.get("data")
    if not isinstance(data, str):
        url = str(attachment.get("url", ""))
        if not url.startswith("Binary/"):
            raise DocumentNotFound(
                f"DocumentReference/{resource.get('id')} has no content in this repository"
            )
        data = get(fhir, url).get("data", "")
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DocumentNotFound(
            f"the content of DocumentReference/{resource.get('id')} is unreadable"
        ) from exc
