"""The document registry and repository: CDA documents in (checked, stored, registered, extracted), queries out.

``submit`` reads a document (:func:`rhip.documents.cda.header.read_document`), then writes ONE FHIR
transaction through the in-process FhirService: the institution, the patient and the visit (conditional
creates), the original bytes as a Binary, the DocumentReference, the resources extracted from the body and,
for a new version of a document, the old version's DocumentReference as ``superseded``.

``submit_many`` does the same for a batch of documents in one transaction (bulk import); when that
transaction fails, each document is tried alone, so one bad document never blocks the others.

Re-submitting a registered document creates nothing: the batch is first looked up by masterIdentifier
(one search per batch). When two submitters race with the same new document, the DocumentReference's
``ifNoneExist`` lets only one register it and the loser's Binary and extracted resources are deleted.
A refused document is recorded in the rejects sink with its raw bytes before the error is raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from rhip.core.errors import RhipError
from rhip.core.ids import new_resource_id
from rhip.documents import assembly as asm
from rhip.documents import queries
from rhip.documents import registry as reg
from rhip.documents.cda.context import ExtractContext
from rhip.documents.cda.encounter import visit_encounter, visit_identifier
from rhip.documents.cda.errors import BAD_VALUE, CdaRejected
from rhip.documents.cda.extract import extract
from rhip.documents.cda.header import read_document
from rhip.documents.cda.model import CdaDocument
from rhip.documents.facts import facts_of
from rhip.documents.known import Known, lookup
from rhip.documents.model import (
    DocumentConflict,
    DocumentQuery,
    DocumentReceipt,
    DocumentRejected,
    DocumentSummary,
    RejectSink,
    ReplacementRefused,
)
from rhip.documents.resolve import Resolution, other_patient, resolve
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService

log = logging.getLogger("rhip.documents")

# meta.source channel names of the doors (plan: v2, v3, cda, mhd); the rejects store names them otherwise.
SOURCE_CHANNELS = {"hl7v3": "v3", "mllp": "v2"}


Extractor = Callable[[CdaDocument, ExtractContext], list[dict[str, Any]]]
"""The structured entries of a document as FHIR resources (each with its urn:rhip:cda-entry identifier)."""


@dataclass(frozen=True)
class RegistryConfig:
    """How the registry reads documents (bootstrap fills it from the settings)."""

    max_document_bytes: int = 20 * 1024 * 1024
    timezone: str = "Asia/Shanghai"
    # The caller guarantees that nobody else registers documents of the same institutions meanwhile (a
    # bulk import, its processes split by institution): new records are then plain creates, without
    # ifNoneExist, so that a transaction never reads inside its unit of work and import processes can
    # prepare their transactions side by side. Records found by the batch's look-up are reused either way.
    exclusive: bool = False


Outcome = DocumentReceipt | RhipError


class DocumentService:
    """The registry and repository of shared documents (implements the exchange's ``DocumentIntake``)."""

    def __init__(
        self,
        fhir: FhirService,
        config: RegistryConfig | None = None,
        rejects: RejectSink | None = None,
        extractor: Extractor | None = None,
    ) -> None:
        self.fhir = fhir
        self.config = config or RegistryConfig()
        self.zone = ZoneInfo(self.config.timezone)
        self.rejects = rejects
        self.extractor = extractor if extractor is not None else extract

    # -- DocumentIntake ----------------------------------------------------------------------------------
    def submit(self, cda: bytes, *, sender: str, channel: str) -> DocumentReceipt:
        """Check, store, register and extract one CDA document; raises an RhipError when it is refused.

        ``channel`` is the door as the rejects store names it (``cda`` for an import, ``hl7v3``, ``mhd``).
        """
        outcome = self.submit_many([(cda, sender)], channel=channel)[0]
        if isinstance(outcome, RhipError):
            raise outcome
        return outcome

    def query(self, query: DocumentQuery) -> list[DocumentSummary]:
        """Registered documents matching ``query``, newest first."""
        bundle = queries.get(self.fhir, "DocumentReference", queries.search_params(query))
        return [queries.summary(r) for r in queries.matches(bundle)][: query.limit]

    def retrieve(self, document_id: str) -> tuple[bytes, DocumentSummary]:
        """The original bytes of a document (by document id or DocumentReference id) and its summary."""
        resource = queries.find_document(self.fhir, document_id)
        return queries.content(self.fhir, resource), queries.summary(resource)

    # -- batches -------------------------------------------------------------------------------------------
    def submit_many(self, documents: Sequence[tuple[bytes, str]], *, channel: str) -> list[Outcome]:
        """Register (raw bytes, sender) documents in one transaction; per document its receipt or its error
        (already recorded as a reject)."""
        outcomes: list[Outcome | None] = [None] * len(documents)
        pending: dict[int, asm.Pending] = {}
        for i, (raw, sender) in enumerate(documents):
            try:
                pending[i] = self._read(raw, sender, channel)
            except RhipError as error:
                outcomes[i] = self._refused(raw, sender, channel, error)
            except Exception as exc:  # a document nobody foresaw: refused alone, never the whole batch
                outcomes[i] = self._refused(raw, sender, channel, _unreadable(exc, sender, channel))
        if pending:
            resolution = resolve(pending, queries.registered(self.fhir, _lookup_tokens(pending.values())))
            for i, found in resolution.outcomes.items():
                raw, sender = documents[i]
                outcomes[i] = (
                    found
                    if isinstance(found, DocumentReceipt)
                    else self._refused(raw, sender, channel, found)
                )
            self._write(documents, resolution, outcomes, channel)
        return [o if o is not None else RhipError("document not processed") for o in outcomes]

    def _read(self, raw: bytes, sender: str, channel: str) -> asm.Pending:
        doc = read_document(raw, max_bytes=self.config.max_document_bytes, zone=self.zone)
        facts = facts_of(doc)
        source = f"urn:rhip:source:{SOURCE_CHANNELS.get(channel, channel)}:{facts.author_org.code}"
        pending = asm.Pending(raw, sender, facts, source, reg.sha1_base64(raw), new_resource_id())
        pending.doc = doc
        if reg.patient_criteria(facts) is None and visit_identifier(doc) is None:
            raise DocumentRejected(
                "the patient has no person-level identifier (ID card, health card, health record or case "
                "number) and the document names no visit",
                expression=["/ClinicalDocument/recordTarget/patientRole/id"],
            )
        return pending

    def _write(
        self,
        documents: Sequence[tuple[bytes, str]],
        resolution: Resolution,
        outcomes: list[Outcome | None],
        channel: str,
    ) -> None:
        todo = resolution.to_register
        if not todo:
            self._alias(resolution, outcomes)
            return
        assembly = asm.Assembly()
        visits = [reg.token(v) for p in todo.values() if (v := visit_identifier(p.doc))]
        known = lookup(self.fhir, [p.facts for p in todo.values()], visits)
        for i, p in todo.items():
            try:
                self._assemble(assembly, p, known)
            except RhipError as error:
                outcomes[i] = self._refused(p.raw, p.sender, channel, error)
            except Exception as exc:
                outcomes[i] = self._refused(p.raw, p.sender, channel, _unreadable(exc, p.sender, channel))
        registering = {i: p for i, p in todo.items() if outcomes[i] is None}
        if not registering:
            self._alias(resolution, outcomes)
            return
        if self.config.exclusive:
            for entry in assembly.entries:
                entry["request"].pop("ifNoneExist", None)
        try:
            response = self._transaction(assembly.bundle())
        except RhipError as error:
            if len(registering) == 1:
                ((i, p),) = registering.items()
                outcomes[i] = self._refused(p.raw, p.sender, channel, error)
                self._alias(resolution, outcomes)
                return
            # One bad document must not block the others: each alone, looked up again.
            log.info("document batch of %d failed (%s); registering one by one", len(registering), error.code)
            for i in sorted(registering):
                outcomes[i] = self.submit_many([documents[i]], channel=channel)[0]
            self._alias(resolution, outcomes)
            return
        raced = []
        for i, p in registering.items():
            receipt, created = self._receipt(p, response)
            outcomes[i] = receipt
            if not created:
                raced.append(p)
        if raced:
            self._undo(raced, response, outcomes, registering)
        self._alias(resolution, outcomes)

    def _assemble(self, assembly: asm.Assembly, p: asm.Pending, known: Known) -> None:
        refs, staged = asm.people(assembly, p, known)
        refused = other_patient(p, refs.patient)
        if refused is not None:
            raise refused
        ctx = ExtractContext(
            patient_ref=refs.patient,
            encounter_ref=refs.encounter,
            organization_ref=refs.organization,
            practitioner_ref=refs.practitioner,
            source=p.source,
            zone=self.zone,
        )
        p.extracted = self.extractor(p.doc, ctx)
        encounter = asm.visit(p, refs, visit_encounter(p.doc, ctx, p.extracted))
        if encounter is not None:
            staged.append(encounter)
        asm.commit(assembly, p, staged)
        asm.document(assembly, p, refs, self.zone)

    def _transaction(self, bundle: dict[str, object]) -> list[dict[str, object]]:
        try:
            body = orjson.dumps(bundle)
        except orjson.JSONEncodeError as exc:  # a value no JSON can carry: the batch goes in one by one
            raise CdaRejected(BAD_VALUE, f"a value of the document cannot be stored ({exc})") from None
        request = FhirRequest(
            "POST",
            "",
            [],
            {"content-type": "application/fhir+json", "prefer": "return=minimal"},
            body,
            "",
        )
        response = self.fhir.dispatch(self.fhir.repository, request)
        return list(orjson.loads(response.body or b"{}").get("entry", []))

    @staticmethod
    def _receipt(p: asm.Pending, response: list[dict[str, object]]) -> tuple[DocumentReceipt, bool]:
        doc_ref, created = asm.located(response[p.at_document])
        patient_ref = asm.located(response[p.at_patient])[0] if p.at_patient >= 0 else p.patient_ref
        extracted = [asm.located(response[i])[0] for i in p.at_created[1:]]
        replaced = None
        if p.replaces_registered is not None:
            replaced = f"DocumentReference/{p.replaces_registered.id}"
        elif p.replaces_pending is not None:
            replaced = asm.located(response[p.replaces_pending.at_document])[0]
        receipt = DocumentReceipt(
            doc_ref.split("/", 1)[-1], p.binary_id, patient_ref.split("/", 1)[-1], extracted, replaced
        )
        return receipt, created

    def _undo(
        self,
        raced: list[asm.Pending],
        response: list[dict[str, object]],
        outcomes: list[Outcome | None],
        registering: dict[int, asm.Pending],
    ) -> None:
        """Delete what documents registered concurrently by another submitter left behind; their receipt is
        the winner's."""
        entries = []
        for p in raced:
            for i in p.at_created:
                ref, created = asm.located(response[i])
                if created:
                    entries.append({"request": {"method": "DELETE", "url": ref}})
        if entries:
            self._transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
        for i, p in registering.items():
            if p in raced:
                doc_ref, _ = asm.located(response[p.at_document])
                found = queries.as_registered(queries.get(self.fhir, doc_ref))
                outcomes[i] = found.receipt()

    @staticmethod
    def _alias(resolution: Resolution, outcomes: list[Outcome | None]) -> None:
        """Documents given twice in one batch get the first one's outcome."""
        for i, first in resolution.aliases.items():
            outcomes[i] = outcomes[first]

    def _refused(self, raw: bytes, sender: str, channel: str, error: RhipError) -> RhipError:
        """Keep a refused document in the rejects sink. Transient failures (5xx) are not kept when a sender
        retries them, but they are for a bulk import (channel ``cda``): nobody retries those."""
        if self.rejects is not None and (error.http_status < 500 or channel == "cda"):
            self.rejects.record(
                channel=channel,
                sender=sender,
                raw=raw,
                reason_code=error.code,
                reason=error.message or "; ".join(i.diagnostics for i in error.issues()),
                content_type="text/xml",
            )
        return error


def _unreadable(exc: Exception, sender: str, channel: str) -> CdaRejected:
    """The refusal of a document that failed in an unforeseen way (logged by kind only: no personal data)."""
    log.error(
        "document from %s (%s) refused: unexpected %s while reading it",
        sender[:80],
        channel,
        type(exc).__name__,
    )
    return CdaRejected(BAD_VALUE, f"the document could not be read ({type(exc).__name__})")


def _lookup_tokens(pending: Iterable[asm.Pending]) -> list[str]:
    """The identifiers the pre-check looks for: every document's id, setId and the id it replaces."""
    tokens: list[str] = []
    for p in pending:
        tokens.append(p.master_token)
        if p.facts.set_id:
            tokens.append(reg.token(reg.set_identifier(p.facts.set_id)))
        if p.facts.replaces:
            tokens.append(reg.token(reg.document_identifier(p.facts.replaces)))
    return tokens


__all__ = [
    "DocumentConflict",
    "DocumentService",
    "Extractor",
    "RegistryConfig",
    "ReplacementRefused",
]
