"""Errors of the CDA writers, with stable codes (RHIP-CDA-0050 … 0079 belong to the writing side)."""

from __future__ import annotations

from rhip.core.errors import InvalidRequest, RhipError


class UnknownDocumentType(InvalidRequest):
    """No writer exists for the document code asked for (C0099, HSDX …)."""

    code = "RHIP-CDA-0050"


class DocumentContentMissing(RhipError):
    """The FHIR data lacks what the document type needs (a referral without its destination …)."""

    code = "RHIP-CDA-0051"
    http_status = 422
    issue_type = "processing"


class InvalidGeneratedDocument(RhipError):
    """A generated document breaks the CDA R2 model: a defect of the writer, reported with the problems."""

    code = "RHIP-CDA-0052"
    http_status = 500
    issue_type = "exception"


class WrongDocumentSubject(InvalidRequest):
    """The document type is not made from that kind of resource (a C0002 asked of a Patient …)."""

    code = "RHIP-CDA-0053"
