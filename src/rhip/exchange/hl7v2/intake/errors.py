"""Errors of the v2 intake (codes RHIP-V2-0050 to RHIP-V2-0069), each with the HL7 table 0357 code it answers."""

from __future__ import annotations

from rhip.core.errors import InvalidRequest, RhipError


class IntakeError(RhipError):
    """A message the intake refuses; ``hl7_code`` and ``ack_code`` say how it is answered."""

    code = "RHIP-V2-0050"
    http_status = 400
    issue_type = "invalid"
    hl7_code = "207"
    ack_code = "AE"

    def __init__(
        self, message: str, *, segment: str = "", sequence: int = 0, field: int = 0, component: int = 0
    ) -> None:
        super().__init__(message)
        self.segment = segment
        self.sequence = sequence
        self.field = field
        self.component = component


class UnsupportedMessageType(IntakeError):
    """No mapping exists for MSH-9 (code 200), or for its trigger event (code 201)."""

    code = "RHIP-V2-0051"
    hl7_code = "200"
    ack_code = "AR"

    def __init__(self, message: str, *, known_code: bool = False) -> None:
        super().__init__(message, segment="MSH", sequence=1, field=9)
        if known_code:
            self.hl7_code = "201"


class UnsupportedVersion(IntakeError):
    """MSH-12 is not an HL7 version 2.x."""

    code = "RHIP-V2-0052"
    hl7_code = "203"
    ack_code = "AR"


class UnsupportedProcessingId(IntakeError):
    """MSH-11 is not P, T or D."""

    code = "RHIP-V2-0053"
    hl7_code = "202"
    ack_code = "AR"


class StoreRefused(IntakeError):
    """The FHIR store refused the data the message mapped to (an invalid value, a conflict)."""

    code = "RHIP-V2-0054"
    hl7_code = "102"
    ack_code = "AE"


class StorageFailed(IntakeError):
    """The data could not be stored for a reason of the platform's (database unavailable)."""

    code = "RHIP-V2-0055"
    http_status = 503
    issue_type = "transient"
    hl7_code = "207"


class InternalError(IntakeError):
    """An unexpected failure while processing the message; it has been logged."""

    code = "RHIP-V2-0056"
    http_status = 500
    issue_type = "exception"
    hl7_code = "207"


class MergeFailed(IntakeError):
    """The message's data is stored but the master patient index could not merge the two patients."""

    code = "RHIP-V2-0057"
    http_status = 500
    hl7_code = "207"


class ReplayRefused(InvalidRequest):
    """The reject cannot be replayed here (another channel, or already replayed)."""

    code = "RHIP-V2-0058"


class MalformedFrame(IntakeError):
    """An MLLP frame that is not an HL7 v2 message (too large, a start block inside, undecodable)."""

    code = "RHIP-V2-0059"
    hl7_code = "100"
    ack_code = "AR"


class RequiredFieldMissing(IntakeError):
    """A header field the intake needs (MSH-4, the sending facility) is empty."""

    code = "RHIP-V2-0060"
    hl7_code = "101"
    ack_code = "AE"


class NotAuthorised(IntakeError):
    """The connection may not send for the institution in MSH-4 (not a trusted peer, or a client
    certificate registered to another institution)."""

    code = "RHIP-V2-0061"
    hl7_code = "207"
    ack_code = "AR"
