"""The HL7 v3 door: bytes and a content type in, an acknowledgement or a query answer out, never a crash.

``V3Service.handle`` opens the envelope, reads the header, dispatches on the payload's root element through
:data:`~rhip.exchange.hl7v3.registry.HANDLERS`, and wraps the answer the way the request came (plain XML,
SOAP 1.2, SOAP 1.1, HIPMessageServer). Every failure becomes an MCCI_IN000002UV01: ``AR`` when the request
could not be read as a message, ``AE`` when its content could not be accepted (SOAP answers carrying an MCCI
are 200, as SOAP clients only read a 200's body; plain-XML AR answers are 4xx). Only a request whose SOAP
envelope itself is unreadable gets a SOAP Fault (4xx, the MCCI AR in its Detail). Refused requests are kept
in the rejects store with their raw bytes and the answer they got.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol
from zoneinfo import ZoneInfo

from lxml import etree

from rhip.core.clock import Clock, SystemClock
from rhip.core.errors import RhipError
from rhip.exchange.hl7v3.ack import ACK_INTERACTION, AckDetail, Sending, answer_root
from rhip.exchange.hl7v3.context import Accepted, Context, Inbound, Outcome
from rhip.exchange.hl7v3.envelope import Envelope, envelope_of, guess_envelope, open_request, soap_fault, wrap
from rhip.exchange.hl7v3.errors import (
    InteractionMismatch,
    InternalError,
    TooLarge,
    UnknownInteraction,
    V3Error,
)
from rhip.exchange.hl7v3.fhir import FhirGateway, FhirHandler
from rhip.exchange.hl7v3.header import Header, check_interaction_id, read_header, unknown_header
from rhip.exchange.hl7v3.persons import PersonLinks
from rhip.exchange.hl7v3.registry import GROUPS, HANDLERS, SERVICES
from rhip.exchange.hl7v3.xmlread import HL7_NS, Element, local
from rhip.exchange.ports import DocumentIntake, PatientMerger
from rhip.xmlsafe import DEFAULT_MAX_BYTES

log = logging.getLogger("rhip.exchange.hl7v3")
CHANNEL = "hl7v3"  # the rejects-store channel


class RejectRecorder(Protocol):
    """Where refused requests are kept (``rhip.exchange.rejects.RejectStore``)."""

    def record(
        self,
        *,
        channel: str,
        sender: str,
        raw: bytes,
        reason_code: str,
        reason: str,
        control_id: str = "",
        content_type: str = "",
        ack: bytes | None = None,
    ) -> int:
        """Keep one refused input; its reject id."""


@dataclass(frozen=True)
class V3Answer:
    """What goes back to the sender."""

    status: int
    body: bytes
    content_type: str
    ack_code: str  # AA | AE | AR | Fault
    error_code: str = ""
    reject_id: int | None = None


class V3Service:
    """The HL7 v3 interaction services (person, organization, provider, terminology, documents)."""

    def __init__(
        self,
        fhir: FhirHandler,
        *,
        zone: ZoneInfo | None = None,
        rejects: RejectRecorder | None = None,
        merger: PatientMerger | None = None,
        documents: DocumentIntake | None = None,
        persons: PersonLinks | None = None,
        device_institutions: Mapping[str, str] | None = None,
        device_id: str = "RHIP",
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Clock | None = None,
        new_uuid: Callable[[], str] | None = None,
    ) -> None:
        self.zone = zone or ZoneInfo("Asia/Shanghai")
        self.rejects = rejects
        self.device_id = device_id
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self.new_uuid = new_uuid or (lambda: str(uuid.uuid4()))
        self.context = Context(
            fhir=FhirGateway(fhir),
            zone=self.zone,
            merger=merger,
            documents=documents,
            persons=persons,
            device_institutions=dict(device_institutions or {}),
            new_uuid=self.new_uuid,
        )

    # -- the door -----------------------------------------------------------------------------------------

    def handle(self, body: bytes, content_type: str, *, service: str | None = None) -> V3Answer:
        """Answer one request; refused requests are recorded in the rejects store."""
        return self._handle(body, content_type, service, record=True)

    def replay(self, body: bytes, content_type: str) -> V3Answer:
        """Run a kept request through the door again (``rhip exchange replay``) without recording it anew."""
        return self._handle(body, content_type, None, record=False)

    def refuse_oversized(self, content_type: str, head: bytes, limit: int) -> V3Answer:
        """The answer to a body larger than ``limit`` that was not read in full (``head``: its start, kept)."""
        error = TooLarge(f"the body is larger than the limit of {limit:,} bytes")
        return self._refused(
            error, head, content_type, unknown_header(), guess_envelope(head, content_type), True
        )

    def refuse(self, error: RhipError, body: bytes, content_type: str) -> V3Answer:
        """The error acknowledgement of a request refused before it ran (no valid credentials), with the
        error's HTTP status; not kept in the rejects store (anyone can send such requests)."""
        header, envelope = unknown_header(), None
        try:
            payload, envelope = open_request(body, content_type, self.max_bytes)
            header = read_header(payload)
        except Exception:  # noqa: S110 -- what can be read of it only fills in the answer's header
            pass
        wrapped = V3Error(error.message, code=error.code)
        wrapped.ack_code = "AR"
        answer = self._refused(wrapped, body, content_type, header, envelope, False)
        return replace(answer, status=error.http_status)

    def _handle(self, body: bytes, content_type: str, service: str | None, *, record: bool) -> V3Answer:
        header = unknown_header()
        envelope: Envelope | None = None
        try:
            payload, envelope = open_request(body, content_type, self.max_bytes)
            header = read_header(payload)
            self._check(payload, service)
            outcome = HANDLERS[header.interaction](self.context, Inbound(header, payload))
        except V3Error as error:
            return self._refused(error, body, content_type, header, envelope or envelope_of(error), record)
        except RhipError as error:  # refused below the v3 layer (the FHIR service, a port): keep its code
            wrapped = V3Error(
                error.message, location=error.expression[0] if error.expression else "", code=error.code
            )
            return self._refused(wrapped, body, content_type, header, envelope, record)
        except Exception:
            log.exception("v3 %s: unexpected failure", header.interaction or "request")
            internal = InternalError("the message could not be processed; the platform's log has the details")
            return self._refused(internal, body, content_type, header, envelope, record)
        assert envelope is not None
        return self._answer(outcome, header, envelope)

    def _check(self, payload: Element, service: str | None) -> None:
        """AR unless the payload is an interaction served here, as declared, at the path it was posted to."""
        namespace = etree.QName(payload).namespace or ""
        interaction = local(payload)
        if namespace not in (HL7_NS, "") or interaction not in HANDLERS:
            shown = interaction[:60] if interaction else "(none)"
            raise UnknownInteraction(
                f"{shown} is not an HL7 v3 interaction this platform serves", location=shown
            )
        check_interaction_id(payload)
        if service and service not in GROUPS and service.lower() != SERVICES[interaction].action.lower():
            raise InteractionMismatch(f"/hl7v3/{service[:40]} is not a service of this platform")
        if service in GROUPS and SERVICES[interaction].group != service:
            raise InteractionMismatch(
                f"{interaction} belongs to /hl7v3/{SERVICES[interaction].group}, not /hl7v3/{service}",
                location=interaction,
            )

    # -- answers -------------------------------------------------------------------------------------------

    def _sending(self) -> Sending:
        return Sending(self.device_id, self.new_uuid(), self.clock.now(), self.zone)

    def _answer(self, outcome: Outcome, header: Header, envelope: Envelope) -> V3Answer:
        if isinstance(outcome, Accepted):
            root = answer_root(ACK_INTERACTION, header, self._sending(), AckDetail("AA", outcome.text))
        else:
            root = answer_root(outcome.interaction, header, self._sending(), AckDetail("AA", "accepted"))
            root.append(outcome.act)
        etree.cleanup_namespaces(root)
        log.info("v3 %s %s: AA", header.interaction, header.message_id[:64])
        return V3Answer(200, wrap(root, envelope), envelope.content_type, "AA")

    def _refused(
        self,
        error: V3Error,
        raw: bytes,
        content_type: str,
        header: Header,
        envelope: Envelope | None,
        record: bool,
    ) -> V3Answer:
        detail = AckDetail(error.ack_code, error.message, error.code, error.location)
        mcci = answer_root(ACK_INTERACTION, header, self._sending(), detail)
        guessed = envelope or guess_envelope(raw, content_type)
        if envelope is None and guessed.soap:
            body, status, ack = soap_fault(guessed.soap, error, mcci), max(error.status, 400), "Fault"
        else:
            body, ack = wrap(mcci, guessed), error.ack_code
            status = 200 if guessed.soap else error.status
        log.warning(
            "v3 %s %s: %s %s", header.interaction or "request", header.message_id[:64], ack, error.code
        )
        reject_id = self._keep(error, raw, content_type, header, body) if record else None
        return V3Answer(status, body, guessed.content_type, ack, error.code, reject_id)

    def _keep(
        self, error: V3Error, raw: bytes, content_type: str, header: Header, answer: bytes
    ) -> int | None:
        if self.rejects is None:
            return None
        reason = f"{error.message} ({error.location})" if error.location else error.message
        try:
            return self.rejects.record(
                channel=CHANNEL,
                sender=header.sender,
                raw=raw,
                reason_code=error.code,
                reason=reason,
                control_id=header.message_id,
                content_type=content_type[:64],
                ack=answer,
            )
        except Exception:  # the sender still gets its answer; the failure to keep it is logged
            log.exception("v3: could not record a refused request in the rejects store")
            return None
