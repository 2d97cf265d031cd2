"""IHE MHD ITI-65 Provide Document Bundle: the Document Recipient's part before the transaction runs.

A transaction Bundle claiming an MHD Provide bundle profile carries a SubmissionSet List, DocumentReferences
and their Binaries. :class:`ProvideBundle` prepares it for the FHIR transaction:

- every DocumentReference whose attachment names a Binary of the Bundle gets that content's ``size`` and
  SHA-1 ``hash`` (given ones must agree), its attachment ``url`` becomes ``Binary/<id>`` (the Binary is
  PUT under an id chosen here: the transaction rewrites references, not attachment URLs);
- a CDA document (content type text/xml, application/xml or application/hl7-v3+xml with a ClinicalDocument
  root) is read with the checks of :func:`~rhip.documents.cda.header.read_document`; its masterIdentifier
  must be the registry's identifier of its ClinicalDocument/id (filled when absent), and it gets the setId
  identifier and version extension the registry gives it, so that a document sent through ``rhip import``
  and through MHD is one document; the resources extracted from its entries are added to the Bundle;
- a document already registered with the same masterIdentifier and hash is not registered again (its
  DocumentReference and Binary resolve to the stored ones); with another hash it is refused (409);
- ``relatesTo`` replaces: the replaced DocumentReference must be current, of the same patient and (when both
  name one) of the same author organization; a PUT making it ``superseded`` (``If-Match`` its version) is
  added to the same transaction.

Added entries go after the client's, so the first entries of the transaction-response answer the client's
entries one for one. A refused Bundle is kept in the rejects sink (channel ``mhd``) with its JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from rhip.core.errors import InvalidRequest, ResourceNotFound, RhipError
from rhip.core.ids import new_resource_id
from rhip.documents import queries
from rhip.documents import registry as reg
from rhip.documents.cda.context import ExtractContext
from rhip.documents.cda.errors import TOO_LARGE, CdaTooLarge
from rhip.documents.cda.header import document_of
from rhip.documents.cda.identity import full_url
from rhip.documents.cda.model import CdaDocument
from rhip.documents.cda.xmlpath import Element
from rhip.documents.facts import DocumentFacts, facts_of
from rhip.documents.mhd_fields import (
    author_codes,
    author_orgs,
    author_ref,
    complete,
    decode_data,
    identify,
    master_token,
    reference_of,
    sender_of,
    token_text,
)
from rhip.documents.model import DocumentConflict, ProvideBundleInvalid, RejectSink, ReplacementRefused
from rhip.documents.service import DocumentService
from rhip.fhir.rest.extensions import BundleHook
from rhip.xmlsafe import XmlRejected, parse_xml

MHD_CANONICAL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
PROVIDE_PROFILES = (
    f"{MHD_CANONICAL}IHE.MHD.Minimal.ProvideBundle",
    f"{MHD_CANONICAL}IHE.MHD.Comprehensive.ProvideBundle",
    f"{MHD_CANONICAL}IHE.MHD.UnContained.Comprehensive.ProvideBundle",
    # MHD 3.x
    "http://ihe.net/fhir/StructureDefinition/IHE_MHD_Provide_Comprehensive_DocumentBundle",
    "http://ihe.net/fhir/StructureDefinition/IHE_MHD_Provide_Minimal_DocumentBundle",
)
CDA_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})
CLINICAL_DOCUMENT = "{urn:hl7-org:v3}ClinicalDocument"

log = logging.getLogger("rhip.documents.mhd")


@dataclass
class _Content:
    """The document content a DocumentReference's attachment names."""

    raw: bytes
    content_type: str
    binary_entry: dict[str, Any] | None  # the Bundle's Binary entry, None for inline data


class ProvideBundle:
    """Prepares ITI-65 Provide Document Bundles for the FHIR transaction."""

    def __init__(self, service: DocumentService, rejects: RejectSink | None = None) -> None:
        self.service = service
        self.rejects = rejects if rejects is not None else service.rejects

    def hooks(self) -> list[BundleHook]:
        """One hook per Provide bundle profile."""
        return [BundleHook(p, self.prepare, self.refused) for p in PROVIDE_PROFILES]

    def prepare(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """The transaction to run for a Provide Document Bundle; refused ones are recorded, then raised."""
        try:
            return self._prepare(bundle)
        except RhipError as error:
            self.refused(bundle, error)
            raise
        except Exception as exc:  # a Bundle of a shape nothing above expected: refused, never a 500
            log.warning("provide bundle refused: unexpected %s while preparing it", type(exc).__name__)
            invalid = ProvideBundleInvalid("the Provide Document Bundle is malformed")
            self.refused(bundle, invalid)
            raise invalid from None

    def refused(self, bundle: dict[str, Any], error: RhipError) -> None:
        """Keep a refused Bundle (not transient failures: the sender retries those)."""
        if self.rejects is None or error.http_status >= 500:
            return
        self.rejects.record(
            channel="mhd",
            sender=sender_of(bundle),
            raw=orjson.dumps(bundle),
            reason_code=error.code,
            reason=error.message or "; ".join(i.diagnostics for i in error.issues()),
            content_type="application/fhir+json",
        )

    def _prepare(self, bundle: dict[str, Any]) -> dict[str, Any]:
        entries = bundle.get("entry")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ProvideBundleInvalid("a Provide Document Bundle needs entries", expression=["Bundle.entry"])
        entries = [dict(e) for e in entries]
        for i, e in enumerate(entries):
            if "resource" in e and not isinstance(e["resource"], dict):
                raise ProvideBundleInvalid(
                    "an entry's resource must be a resource", expression=[f"Bundle.entry[{i}].resource"]
                )
        kinds = [str((e.get("resource") or {}).get("resourceType", "")) for e in entries]
        if "List" not in kinds:
            raise ProvideBundleInvalid("a Provide Document Bundle needs its SubmissionSet List")
        documents = [i for i, k in enumerate(kinds) if k == "DocumentReference"]
        if not documents:
            raise ProvideBundleInvalid("a Provide Document Bundle needs at least one DocumentReference")
        by_url = {e["fullUrl"]: e for e in entries if isinstance(e.get("fullUrl"), str)}
        contents: dict[int, _Content | None] = {}
        cdas: dict[int, CdaDocument | None] = {}
        for i in documents:
            entry = entries[i] = {**entries[i], "resource": dict(entries[i]["resource"])}
            where = f"Bundle.entry[{i}].resource"
            contents[i] = content = self._content(
                entry["resource"], str(entry.get("fullUrl", "")), by_url, where
            )
            cdas[i] = None
            root = _cda_root(content, self.service.config.max_document_bytes) if content else None
            if content is not None and root is not None:
                cdas[i] = doc = document_of(content.raw, root, self.service.zone)
                identify(entry["resource"], facts_of(doc), where)
        masters = {i: master_token(entries[i], i) for i in documents}
        known = {
            queries.master_token(r.resource): r for r in queries.registered(self.fhir, list(masters.values()))
        }
        added: list[dict[str, Any]] = []
        for i in documents:
            added += self._document(entries[i], i, contents[i], cdas[i], known.get(masters[i]))
        return {**bundle, "entry": entries + added}

    @property
    def fhir(self) -> Any:
        """The FHIR service the registry reads through."""
        return self.service.fhir

    def _document(
        self,
        entry: dict[str, Any],
        i: int,
        content: _Content | None,
        doc: CdaDocument | None,
        registered: Any,
    ) -> list[dict[str, Any]]:
        """Complete one DocumentReference entry; the entries it adds."""
        ref = entry["resource"]
        where = f"Bundle.entry[{i}].resource"
        added: list[dict[str, Any]] = []
        if content is not None:
            self._attachment(ref, content, where)
        request = dict(entry.get("request") or {})
        if registered is not None:
            if content is None or registered.sha1 != reg.sha1_base64(content.raw):
                raise DocumentConflict(
                    f"the document {token_text(ref)} is already registered with other content",
                    expression=[f"{where}.masterIdentifier"],
                )
            # A repeated submission: the stored DocumentReference and Binary stand for the given ones.
            entry["request"] = {
                **request,
                "ifNoneExist": reg.criteria(("identifier", reg.token(ref["masterIdentifier"]))),
            }
            if content.binary_entry is not None:
                stored_binary = registered.receipt().binary_id
                content.binary_entry["request"] = {
                    "method": "POST",
                    "url": "Binary",
                    "ifNoneExist": reg.criteria(("_id", stored_binary)),
                }
                ref["content"][0]["attachment"]["url"] = f"Binary/{stored_binary}"
            return added
        if request.get("method", "POST") == "POST":
            entry["request"] = {
                **request,
                "method": "POST",
                "url": "DocumentReference",
                "ifNoneExist": reg.criteria(("identifier", reg.token(ref["masterIdentifier"]))),
            }
        ref.setdefault("status", "current")
        added += self._supersede(ref, where, facts_of(doc) if doc is not None else None)
        if doc is not None:
            added += self._extract(ref, doc, where)
        return added

    @staticmethod
    def _content(
        ref: dict[str, Any], ref_url: str, by_url: dict[str, dict[str, Any]], where: str
    ) -> _Content | None:
        contents = ref.get("content")
        if (
            not isinstance(contents, list)
            or not contents
            or not isinstance(contents[0], dict)
            or not isinstance(contents[0].get("attachment"), dict)
        ):
            raise ProvideBundleInvalid(
                "a DocumentReference needs content.attachment", expression=[f"{where}.content"]
            )
        attachment = {**contents[0], "attachment": dict(contents[0]["attachment"])}
        ref["content"] = [attachment, *contents[1:]]  # copies: the Bundle as sent is what a reject keeps
        att = attachment["attachment"]
        if isinstance(att.get("data"), str):
            return _Content(
                decode_data(att["data"], f"{where}.content[0].attachment.data"),
                str(att.get("contentType", "")),
                None,
            )
        url = att.get("url")
        binary = by_url.get(url) if isinstance(url, str) else None
        if (
            binary is None
            or not isinstance(binary.get("resource"), dict)
            or binary["resource"].get("resourceType") != "Binary"
        ):
            return None  # content kept elsewhere: nothing to check here
        resource = binary["resource"] = dict(binary["resource"])
        raw = decode_data(resource.get("data"), f"Binary {url}.data")
        binary_id = new_resource_id()
        resource["id"] = binary_id
        if ref_url:
            resource.setdefault("securityContext", {"reference": ref_url})
        binary["request"] = {"method": "PUT", "url": f"Binary/{binary_id}"}
        att["url"] = f"Binary/{binary_id}"
        return _Content(raw, str(resource.get("contentType") or att.get("contentType", "")), binary)

    @staticmethod
    def _attachment(ref: dict[str, Any], content: _Content, where: str) -> None:
        att = ref["content"][0]["attachment"]
        digest = reg.sha1_base64(content.raw)
        if "hash" in att and att["hash"] != digest:
            raise ProvideBundleInvalid(
                "attachment.hash is not the SHA-1 of the document",
                expression=[f"{where}.content[0].attachment.hash"],
            )
        if "size" in att and att["size"] != len(content.raw):
            raise ProvideBundleInvalid(
                f"attachment.size is {att['size']}, the document has {len(content.raw)} bytes",
                expression=[f"{where}.content[0].attachment.size"],
            )
        att["hash"], att["size"] = digest, len(content.raw)
        att.setdefault("contentType", content.content_type or "application/octet-stream")

    def _supersede(
        self, ref: dict[str, Any], where: str, facts: DocumentFacts | None
    ) -> list[dict[str, Any]]:
        """PUTs making the documents ``ref`` replaces superseded."""
        out = []
        relations = ref.get("relatesTo") or []
        if not isinstance(relations, list):
            raise ProvideBundleInvalid("relatesTo must be a list", expression=[f"{where}.relatesTo"])
        for k, relation in enumerate(relations):
            if not isinstance(relation, dict) or relation.get("code") != "replaces":
                continue
            target_ref = relation.get("target")
            target = str(target_ref.get("reference", "")) if isinstance(target_ref, dict) else ""
            if not target.startswith("DocumentReference/"):
                raise ProvideBundleInvalid(
                    "relatesTo replaces must name a stored DocumentReference (DocumentReference/id)",
                    expression=[f"{where}.relatesTo[{k}].target"],
                )
            try:
                old = queries.as_registered(queries.get(self.fhir, target))
            except ResourceNotFound as exc:
                raise ProvideBundleInvalid(f"the replaced document {target} does not exist") from exc
            if old.status != "current":
                raise ReplacementRefused(f"the replaced document {target} is {old.status}, not current")
            self._same_owner(ref, old.resource, facts, target, f"{where}.relatesTo[{k}].target")
            superseded = {k2: v for k2, v in old.resource.items() if k2 != "meta"}
            superseded["status"] = "superseded"
            out.append(
                {
                    "resource": superseded,
                    "request": {"method": "PUT", "url": target, "ifMatch": f'W/"{old.version}"'},
                }
            )
        return out

    def _same_owner(
        self,
        ref: dict[str, Any],
        old: dict[str, Any],
        facts: DocumentFacts | None,
        target: str,
        where: str,
    ) -> None:
        """Refuse replacing ``old`` (a stored DocumentReference) unless it is of the same patient and, when
        both name one, of the same author organization."""
        subject = self._patient_of(reference_of(ref.get("subject")))
        if not subject or subject != reference_of(old.get("subject")):
            raise ReplacementRefused(
                f"the replaced document {target} is of another patient", expression=[where]
            )
        new_codes, old_codes = author_codes(ref), author_codes(old)
        if facts is not None:
            new_codes.add(facts.author_org.code)
        new_refs, old_refs = author_orgs(ref), author_orgs(old)
        if (new_codes and old_codes and not new_codes & old_codes) or (
            new_refs and old_refs and not new_refs & old_refs
        ):
            raise ReplacementRefused(
                f"the replaced document {target} is of another institution", expression=[where]
            )

    def _patient_of(self, reference: str) -> str:
        """``Patient/<id>`` a subject reference names (a conditional one looked up); '' when unknown."""
        if reference.startswith("Patient?"):
            query = [tuple(p.split("=", 1)) for p in reference[8:].split("&") if "=" in p]
            found = queries.matches(
                queries.get(self.fhir, "Patient", [(k, unquote(v)) for k, v in query] + [("_count", "2")])
            )
            return f"Patient/{found[0]['id']}" if len(found) == 1 else ""
        return reference.split("/_history", 1)[0]

    def _extract(self, ref: dict[str, Any], doc: CdaDocument, where: str) -> list[dict[str, Any]]:
        """Add the resources extracted from a checked CDA document."""
        patient = reference_of(ref.get("subject"))
        if not patient:
            raise ProvideBundleInvalid("a DocumentReference of a CDA document needs its subject")
        context = ref.get("context")
        encounters = (context.get("encounter") if isinstance(context, dict) else None) or [{}]
        if not isinstance(encounters, list) or not isinstance(encounters[0], dict):
            raise ProvideBundleInvalid(
                "context.encounter must be a list of references", expression=[f"{where}.context.encounter"]
            )
        organization = author_ref(ref, "Organization") or reference_of(ref.get("custodian"))
        source = f"urn:rhip:source:mhd:{doc.header.author.organization.code or doc.header.custodian.code}"
        ref["meta"] = {"source": source, **(ref.get("meta") or {})}
        complete(ref, facts_of(doc), where, self.service.zone)
        extracted = self.service.extractor(
            doc,
            ExtractContext(
                patient,
                encounters[0].get("reference"),
                organization or None,
                author_ref(ref, "Practitioner"),
                source,
                self.service.zone,
            ),
        )
        return [
            {"fullUrl": full_url(r), "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for r in extracted
        ]


def _cda_root(content: _Content, max_bytes: int) -> Element | None:
    """The parsed root of a content that is a CDA document (parsed once: the header checks reuse it)."""
    if content.content_type.split(";", 1)[0].strip().lower() not in CDA_CONTENT_TYPES:
        return None
    try:
        root = parse_xml(content.raw)
    except (XmlRejected, InvalidRequest):
        return None
    if root.tag != CLINICAL_DOCUMENT:
        return None
    if len(content.raw) > max_bytes:
        raise CdaTooLarge(TOO_LARGE, f"the document's {len(content.raw):,} bytes exceed {max_bytes:,}")
    return root
