"""The errors of the HL7 v3 door, each with a stable code and the acknowledgement it earns.

``AR`` (application reject) is for what could not be read as a message at all: malformed or unsafe XML,
an unknown interaction, a wrong content type. ``AE`` (application error) is for a readable message whose
content cannot be accepted: a required element missing, a bad value, a record that does not exist. Every
error names the element it concerns (``location``, a path of local names from the interaction root), which
the acknowledgement repeats in ``acknowledgementDetail``.
"""

from __future__ import annotations

from rhip.core.errors import InvalidRequest


class V3Error(InvalidRequest):
    """A v3 request that cannot be accepted; ``ack_code`` is AE or AR."""

    code = "RHIP-V3-0010"
    ack_code = "AE"
    status = 200  # of a plain-XML answer; SOAP answers carrying an MCCI are always 200
    envelope: object | None = None  # the envelope the error was found in, when that could be read

    def __init__(self, message: str, *, location: str = "", code: str | None = None) -> None:
        super().__init__(message, expression=[location] if location else (), code=code)
        self.location = location


class NotReadable(V3Error):
    """The body is not XML this door can read (malformed, DTD/entities, too deep)."""

    code = "RHIP-V3-0001"
    ack_code = "AR"
    status = 400


class TooLarge(V3Error):
    """The body is larger than the configured limit."""

    code = "RHIP-V3-0002"
    ack_code = "AR"
    status = 413


class WrongContentType(V3Error):
    """The content type is neither SOAP nor XML."""

    code = "RHIP-V3-0003"
    ack_code = "AR"
    status = 415


class NoPayload(V3Error):
    """The envelope holds no HL7 v3 interaction (empty SOAP Body, empty HIPMessageServer message)."""

    code = "RHIP-V3-0004"
    ack_code = "AR"
    status = 400


class UnknownInteraction(V3Error):
    """The payload root is not an interaction this platform serves."""

    code = "RHIP-V3-0005"
    ack_code = "AR"
    status = 400


class InteractionMismatch(V3Error):
    """``interactionId`` or the service path disagrees with the payload root element."""

    code = "RHIP-V3-0006"
    ack_code = "AR"
    status = 400


class MissingElement(V3Error):
    """A required element or attribute is absent or empty."""

    code = "RHIP-V3-0010"


class BadValue(V3Error):
    """An element holds a value that cannot be used (bad date, unknown code, not base64)."""

    code = "RHIP-V3-0011"


class UnknownInstitution(V3Error):
    """The message does not say which institution it speaks for."""

    code = "RHIP-V3-0012"


class RecordNotFound(V3Error):
    """A record the message refers to (a merge's obsolete patient, a document) does not exist."""

    code = "RHIP-V3-0013"


class NoQueryParameters(V3Error):
    """A query without any parameter it can be answered by."""

    code = "RHIP-V3-0014"


class StoreRefused(V3Error):
    """The FHIR store or the document registry refused what the message maps to."""

    code = "RHIP-V3-0016"


class NotConfigured(V3Error):
    """The interaction needs a capability this platform was started without (the document registry)."""

    code = "RHIP-V3-0017"


class InternalError(V3Error):
    """An unexpected failure while processing a readable message (logged; the sender gets an AE)."""

    code = "RHIP-V3-0020"
