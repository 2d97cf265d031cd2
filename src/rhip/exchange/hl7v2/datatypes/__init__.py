"""HL7 v2 data types as FHIR R4 data types, following the v2-to-FHIR IG and the platform's conventions.

Every converter takes one *raw* repetition (as ``Segment.repetitions`` returns it, escapes intact) and the
message's :class:`Delimiters`, so that the same code reads a field, a component of another type (PL-4 is
an HD) or an OBX-5 value. They return ``None`` for an empty value and raise :class:`DataTypeError` for a
value that cannot be read (HL7 error 102, or 103 for a code missing from its table).

The conventions invert ``rhip.synth.hl7v2``: ``value^^^<institution>^MR`` is the institution's MRN
(``urn:rhip:mrn:<institution>``), ``value^^^&<oid>&ISO^…`` a national identifier (``urn:oid:<oid>``), a TS
without offset is local time of the platform's zone, Chinese names are written family then given without
a space, and the coding-system names of CWE-3 map onto the systems ``rhip.synth.systems`` writes.
"""

from __future__ import annotations

from rhip.exchange.hl7v2.datatypes.codes import (
    CODING_SYSTEMS,
    coding,
    coding_system,
    cwe_codings,
    cwe_concept,
    marital_status,
    patient_class,
    sex_coding,
    sex_gender,
    table_coding,
)
from rhip.exchange.hl7v2.datatypes.people import (
    LOCAL_ID_TYPES,
    cx_identifier,
    ei_identifier,
    has_cjk,
    person_name,
    pl_reference,
    xad_address,
    xcn_practitioner,
    xcn_reference,
    xpn_name,
    xtn_contact,
)
from rhip.exchange.hl7v2.datatypes.primitives import (
    DEPARTMENT_NO,
    DIVISION_EXTENSION,
    ID_CARD,
    MARITAL_SYSTEM,
    MRN_PREFIX,
    ORGANIZATION_OID,
    SEX_SYSTEM,
    STAFF_NO,
    V2_TABLE,
    V3_ACT_CODE,
    DataTypeError,
    Json,
    hd_system,
    is_oid,
    organization_identifier,
    part,
    ts_date,
    ts_datetime,
    ts_instant,
    uri_name,
)

__all__ = [
    "CODING_SYSTEMS",
    "DEPARTMENT_NO",
    "DIVISION_EXTENSION",
    "ID_CARD",
    "LOCAL_ID_TYPES",
    "MARITAL_SYSTEM",
    "MRN_PREFIX",
    "ORGANIZATION_OID",
    "SEX_SYSTEM",
    "STAFF_NO",
    "V2_TABLE",
    "V3_ACT_CODE",
    "DataTypeError",
    "Json",
    "coding",
    "coding_system",
    "cwe_codings",
    "cwe_concept",
    "cx_identifier",
    "ei_identifier",
    "has_cjk",
    "hd_system",
    "is_oid",
    "marital_status",
    "organization_identifier",
    "part",
    "patient_class",
    "person_name",
    "pl_reference",
    "sex_coding",
    "sex_gender",
    "table_coding",
    "ts_date",
    "ts_datetime",
    "ts_instant",
    "uri_name",
    "xad_address",
    "xcn_practitioner",
    "xcn_reference",
    "xpn_name",
    "xtn_contact",
]
