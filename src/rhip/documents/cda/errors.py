"""Why a CDA document is refused: one error class, a stable code per kind of fault (RHIP-CDA-0001…0049)."""

from __future__ import annotations

from rhip.core.errors import InvalidRequest

# Stable codes. The message names the element with an XPath-like path (``/ClinicalDocument/typeId``).
MALFORMED = "RHIP-CDA-0001"  # not well-formed, or unsafe (DTD, entities, too deep)
TOO_LARGE = "RHIP-CDA-0002"  # larger than the size limit
NOT_CDA = "RHIP-CDA-0003"  # root is not ClinicalDocument in urn:hl7-org:v3
TYPE_ID = "RHIP-CDA-0004"  # typeId missing or not 2.16.840.1.113883.1.3 / POCD_HD000040
TEMPLATE_ID = "RHIP-CDA-0005"  # no templateId
TEMPLATE_MISMATCH = "RHIP-CDA-0006"  # no templateId of the document type's template
DOCUMENT_ID = "RHIP-CDA-0007"  # id missing, without root, or an OID root without a usable extension
DOCUMENT_CODE = "RHIP-CDA-0008"  # code missing or not in codeSystem 2.16.156.10011.2.4
UNKNOWN_TYPE = "RHIP-CDA-0009"  # document code not in the table of WS/T 500 / WS/T 483 types
EFFECTIVE_TIME = "RHIP-CDA-0010"  # effectiveTime missing or not a valid TS
CONFIDENTIALITY = "RHIP-CDA-0011"  # confidentialityCode missing or not an HL7 Confidentiality code
RECORD_TARGET = "RHIP-CDA-0012"  # recordTarget/patientRole missing
PATIENT_ID = "RHIP-CDA-0013"  # no usable patient identifier
AUTHOR = "RHIP-CDA-0014"  # author missing or without assignedAuthor / time
CUSTODIAN = "RHIP-CDA-0015"  # custodian missing or its organization without an institution id
VERSION = "RHIP-CDA-0016"  # setId / versionNumber malformed
BAD_VALUE = "RHIP-CDA-0020"  # a header or entry value of the wrong form (a TS, a PQ …)


class CdaRejected(InvalidRequest):
    """The document is not an acceptable WS/T 500 / WS/T 483 CDA R2 shared document."""

    code = MALFORMED

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(
            f"{message} ({path})" if path else message, expression=(path,) if path else (), code=code
        )
        self.path = path


class CdaTooLarge(CdaRejected):
    """The document is larger than the configured limit."""

    http_status = 413
    issue_type = "too-costly"
