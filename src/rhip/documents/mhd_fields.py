"""The DocumentReference metadata of an MHD Provide Document Bundle: checks, completion from the CDA header,
and who sent the Bundle (``rhip.documents.mhd`` prepares the Bundle with these)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents import registry as reg
from rhip.documents.facts import DocumentFacts
from rhip.documents.model import ProvideBundleInvalid

SOURCE_ID_URL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"


def identify(ref: dict[str, Any], facts: DocumentFacts, where: str) -> None:
    """Tie a DocumentReference to its CDA document as the registry does: masterIdentifier = the document id
    (filled when absent, refused when another), the setId identifier and the version extension."""
    expected = reg.document_identifier(facts.document_id)
    master = ref.get("masterIdentifier")
    if master is None:
        ref["masterIdentifier"] = expected
    elif not isinstance(master, dict) or (master.get("system"), master.get("value")) != (
        expected["system"],
        expected["value"],
    ):
        raise ProvideBundleInvalid(
            f"masterIdentifier must be the document's ClinicalDocument/id ({expected['system']}|{expected['value']})",
            expression=[f"{where}.masterIdentifier"],
        )
    identifiers = ref.get("identifier")
    if identifiers is None:
        identifiers = []
    if not isinstance(identifiers, list):
        raise ProvideBundleInvalid("identifier must be a list", expression=[f"{where}.identifier"])
    if facts.set_id:
        set_ident = reg.set_identifier(facts.set_id)
        if set_ident not in identifiers:
            identifiers = [*identifiers, set_ident]
    if identifiers:
        ref["identifier"] = identifiers
    extensions = ref.get("extension")
    if extensions is None:
        extensions = []
    if not isinstance(extensions, list):
        raise ProvideBundleInvalid("extension must be a list", expression=[f"{where}.extension"])
    if not any(isinstance(x, dict) and x.get("url") == reg.VERSION_EXTENSION for x in extensions):
        ref["extension"] = [*extensions, {"url": reg.VERSION_EXTENSION, "valueInteger": facts.version}]


def reference_of(value: Any) -> str:
    """The reference of a Reference ('' when it is none)."""
    return str(value.get("reference") or "") if isinstance(value, dict) else ""


def authors(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The author References of a resource (those that are objects)."""
    authors = resource.get("author")
    return [a for a in authors if isinstance(a, dict)] if isinstance(authors, list) else []


def author_codes(resource: dict[str, Any]) -> set[str]:
    """The institution codes the author organizations of a DocumentReference carry."""
    return {
        str(a["identifier"].get("value"))
        for a in authors(resource)
        if isinstance(a.get("identifier"), dict)
        and a["identifier"].get("system") == reg.ORGANIZATION_SYSTEM
        and a["identifier"].get("value")
    }


def author_orgs(resource: dict[str, Any]) -> set[str]:
    """The ``Organization/<id>`` references among the authors of a DocumentReference."""
    return {r for a in authors(resource) if (r := reference_of(a)).startswith("Organization/")}


def complete(ref: dict[str, Any], facts: DocumentFacts, where: str, zone: ZoneInfo) -> None:
    """Fill the metadata the Document Source left out from the CDA header; a type that names another
    document code than the header's is refused."""
    doc_type = ref.get("type") or {}
    codings = doc_type.get("coding", []) if isinstance(doc_type, dict) else None
    if not isinstance(codings, list) or not all(isinstance(c, dict) for c in codings):
        raise ProvideBundleInvalid("type must be a CodeableConcept", expression=[f"{where}.type"])
    codes = [c.get("code") for c in codings if c.get("system") == reg.DOCUMENT_CODES]
    if codes and facts.code not in codes:
        raise ProvideBundleInvalid(
            f"DocumentReference.type says {codes[0]}, the document's code is {facts.code}",
            expression=[f"{where}.type"],
        )
    coding = {"system": reg.DOCUMENT_CODES, "code": facts.code, "display": facts.code_display}
    if not codes:
        ref["type"] = {"coding": [*codings, coding], "text": facts.title}
    ref.setdefault("date", reg.as_instant(facts.effective_time, zone))
    ref.setdefault("securityLabel", [reg.confidentiality_label(facts.confidentiality)])
    if facts.template_id and "format" not in ref["content"][0]:
        ref["content"][0]["format"] = {"system": reg.URI_SYSTEM, "code": f"urn:oid:{facts.template_id}"}


def master_token(entry: dict[str, Any], i: int) -> str:
    """The masterIdentifier token of entry ``i``'s DocumentReference; refused when it has none."""
    master = (entry.get("resource") or {}).get("masterIdentifier")
    if not isinstance(master, dict) or not master.get("system") or not master.get("value"):
        raise ProvideBundleInvalid(
            "a DocumentReference needs masterIdentifier (system and value): the document's unique id",
            expression=[f"Bundle.entry[{i}].resource.masterIdentifier"],
        )
    return reg.token(master)


def token_text(ref: dict[str, Any]) -> str:
    """``system|value`` of a DocumentReference's masterIdentifier."""
    master = ref.get("masterIdentifier", {})
    return f"{master.get('system')}|{master.get('value')}"


def decode_data(data: Any, where: str) -> bytes:
    """The bytes of a Binary's base64 ``data``; refused when missing or not base64."""
    if not isinstance(data, str):
        raise ProvideBundleInvalid(f"{where} is missing", expression=[where])
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProvideBundleInvalid(f"{where} is not base64", expression=[where]) from exc


def author_ref(ref: dict[str, Any], rtype: str) -> str | None:
    """The first author reference to a ``rtype`` (``Type/id`` or a conditional ``Type?…``)."""
    for author in authors(ref):
        target = reference_of(author)
        if target.startswith((f"{rtype}/", f"{rtype}?")):
            return target
    return None


def sender_of(bundle: dict[str, Any]) -> str:
    """Who sent a Bundle: its SubmissionSet's sourceId (or source), else 'unknown'."""
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "List":
            continue
        for ext in resource.get("extension") or ():
            if isinstance(ext, dict) and ext.get("url") == SOURCE_ID_URL:
                ident = ext.get("valueIdentifier")
                value = ident.get("value") if isinstance(ident, dict) else None
                return str(value)[:200] if isinstance(value, str) and value else "unknown"
        source = resource.get("source")
        if isinstance(source, dict):
            return str(source.get("reference") or source.get("display") or "unknown")
    return "unknown"
