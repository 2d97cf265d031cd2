"""How a failure is answered: AE or AR, the HL7 table 0357 code, where in the message it lies; and kept.

Every refused message goes to the rejects store with its raw bytes and the answer it got, so that nothing
a sender gave is lost and a retransmission gets the same answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from rhip.core.errors import RhipError
from rhip.exchange.hl7v2.ack import AckError, Header, build_ack
from rhip.exchange.hl7v2.charset import UnknownCharset
from rhip.exchange.hl7v2.intake.decoding import CharsetRules
from rhip.exchange.hl7v2.intake.errors import IntakeError, InternalError, StorageFailed
from rhip.exchange.hl7v2.intake.faults import log_fault
from rhip.exchange.hl7v2.intake.messages import Answer, Inbound
from rhip.exchange.hl7v2.intake.refused import OpenRejects, RefusedBefore
from rhip.exchange.hl7v2.message import Message, V2ParseError

log = logging.getLogger("rhip.exchange.v2")
CHANNEL = "mllp"
CONTENT_TYPE = "x-application/hl7-v2+er7"
# HL7 table 0357 codes that say the message itself could not be taken (answered AR, not AE).
REJECT_CODES = frozenset({"100", "200", "201", "202", "203"})


@dataclass(frozen=True)
class Refusal:
    """A failure as the sender will be told of it."""

    ack_code: str  # AE | AR
    error: AckError
    rhip_code: str
    reason: str
    transient: bool = False  # a retransmission is processed again instead of getting the same answer


def _parse_code(error: V2ParseError) -> str:
    if error.field in (9, 10):
        return "101"
    if error.field:
        return "102"
    return "100"


def occurrence(message: Message, segment: str, position: int) -> int:
    """The occurrence among its namesakes (ERR-2.2) of the segment at 1-based ``position``."""
    segments = message.segments
    if not 0 < position <= len(segments) or segments[position - 1].name != segment:
        return position
    return sum(1 for s in segments[:position] if s.name == segment)


def refusal_of(exc: BaseException, message: Message | None = None) -> Refusal:
    """The answer to ``exc`` (anything that is not a platform error is an internal error).

    Mappers and the parser name a segment by its position in the message; with the ``message`` at hand
    that becomes the occurrence HL7's ERR-2 wants (the third OBX is OBX^3, wherever it stands).
    """
    if not isinstance(exc, RhipError):
        exc = InternalError(
            "the message could not be processed because of an internal error; it has been logged"
        )
    segment = str(getattr(exc, "segment", "") or "")
    sequence = int(getattr(exc, "sequence", 0) or 0)
    field = int(getattr(exc, "field", 0) or 0)
    component = int(getattr(exc, "component", 0) or 0)
    repetition = int(getattr(exc, "repetition", 0) or 0)
    if message is not None and segment and sequence and not isinstance(exc, IntakeError):
        sequence = occurrence(message, segment, sequence)
    if isinstance(exc, V2ParseError):
        hl7_code, ack_code = _parse_code(exc), "AR"
        if segment == "MSH":
            sequence = 1
    elif isinstance(exc, UnknownCharset):
        hl7_code, ack_code = "102", "AR"
        segment, sequence, field = "MSH", 1, 18
    elif isinstance(exc, IntakeError):
        hl7_code, ack_code = exc.hl7_code, exc.ack_code
    else:
        hl7_code = str(getattr(exc, "hl7_code", "") or "207")
        ack_code = "AR" if hl7_code in REJECT_CODES else "AE"
    text = exc.message or type(exc).__name__
    error = AckError(
        hl7_code,
        text,
        segment=segment,
        sequence=sequence,
        field=field,
        repetition=repetition,
        component=component,
        rhip_code=exc.code,
    )
    return Refusal(ack_code, error, exc.code, text, transient=isinstance(exc, StorageFailed))


class RejectsPort(OpenRejects, Protocol):
    """What the intake needs of ``rhip.exchange.rejects.RejectStore``."""

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
        application: str = "",
    ) -> int:
        """Keep one refused message."""


def ack_code_of(ack: bytes) -> str:
    """MSA-1 of an encoded acknowledgement."""
    at = ack.find(b"\rMSA")
    return ack[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else ""


class Refuser:
    """Answers refused messages with AE or AR and keeps them in the rejects store."""

    def __init__(
        self, rejects: RejectsPort, refused: RefusedBefore, charsets: CharsetRules, zone: ZoneInfo
    ) -> None:
        self.rejects = rejects
        self.refused = refused
        self.charsets = charsets
        self.zone = zone

    def unread(self, item: Inbound, exc: BaseException) -> Answer:
        """Answer a message that could not even be read (the batch failed around it)."""
        try:
            text, codec = self.charsets.decode(item.raw, item.peer)
            header = Header.salvage(text)
        except Exception:
            codec, header = "utf-8", Header.salvage(item.raw.decode("ascii", "replace"))
        return self.answer(item, header, codec, exc)

    def answer(
        self, item: Inbound, header: Header, codec: str, exc: BaseException, message: Message | None = None
    ) -> Answer:
        """The AE or AR of a message, kept in the rejects store (a retransmission gets the same answer)."""
        refusal = refusal_of(exc, message)
        control_id = header.control_id
        sender = header.facility_code or item.peer or "unknown"
        if not item.replay and control_id and not refusal.transient:
            try:
                stored = self.refused.answer(sender, header.application_name, control_id)
            except Exception:
                stored = None
            if stored is not None:
                return Answer(stored, ack_code_of(stored), control_id, duplicate=True)
        ack = self._ack(refusal.ack_code, header, codec, refusal.error, item.raw)
        reject_id = None
        if not item.replay:  # a replay reports its outcome; the reject it replays stays as it was
            try:
                reject_id = self.rejects.record(
                    channel=CHANNEL,
                    sender=sender,
                    raw=item.raw,
                    reason_code=refusal.rhip_code,
                    reason=refusal.reason,
                    control_id=control_id,
                    application=header.application_name,
                    content_type=CONTENT_TYPE,
                    ack=None if refusal.transient else ack,
                )
            except Exception as failure:
                # Kept nowhere: an AE or AR would let the sender drop it (few resend after one). No answer
                # then; the listener closes the connection and the sender sends the message again.
                log_fault(
                    log,
                    "a refused v2 message could not be kept in the rejects store; no ACK sent, the sender"
                    " must send it again",
                    failure,
                    refused=refusal.rhip_code,
                )
                kept_nowhere = StorageFailed(
                    "the platform could not store or keep the message; send it again"
                )
                error = AckError("207", kept_nowhere.message, rhip_code=kept_nowhere.code)
                ack = self._ack("AE", header, codec, error, item.raw)
                return Answer(
                    ack, "AE", control_id, False, None, kept_nowhere.code, kept_nowhere.message, withheld=True
                )
        log.info(
            "v2 message refused",
            extra={
                "ack": refusal.ack_code,
                "error_code": refusal.rhip_code,
                "hl7_code": refusal.error.hl7_code,
            },
        )
        return Answer(ack, refusal.ack_code, control_id, False, reject_id, refusal.rhip_code, refusal.reason)

    def _ack(self, code: str, header: Header, codec: str, error: AckError, raw: bytes) -> bytes:
        return build_ack(
            code, header, at=datetime.now(UTC), zone=self.zone, codec=codec, error=error, raw=raw
        )
